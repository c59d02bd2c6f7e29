"""`spectbone convert INPUT_DIR --out DIR [--phantom] [--log FILE]`.

Reads every file under INPUT_DIR (recursively, whatever its name; DICOMDIR and desktop junk
skipped) and writes one float32 count image per whole-body planar view:

- ``DIR/images/<image_id>.npy``: float32 counts (rescale slope/intercept applied, signed pixel
  data decoded as signed);
- ``DIR/manifest.csv``: image_id, patient_id, study_id, view, frame, rows, cols,
  pixel_spacing_mm, total_counts, source_sha256, status, reason, image_path, series_class,
  transfer_syntax, lossy, image_type, patient_position, view_orientation, header_orientation,
  n_energy_windows, signed, position, duplicate_of, sop_instance_id;
- ``DIR/rejects.csv``: position, file_id, source_sha256, reason.

Hospital exports hold more than the whole-body sweep. Each readable NM file is classified from its
header before anything is decoded (`spectbone.dicom.series.classify`: whole_body, tomo, spot,
recon, other); only whole-body files are decoded and get ``status`` ``ok``. Any other file is one
manifest row with ``status`` ``skipped``, its ``series_class``, a ``reason`` ("series class tomo:
not a whole-body planar view (...)"), no image (empty ``image_path`` and ``frame``, NaN
``total_counts``). Readers of the manifest use the ``ok`` rows only. Nothing is propagated within
a study: a skipped or rejected file never removes a good view of the same study.

What came in is recorded per row (`spectbone.dicom.series.describe`): ``transfer_syntax`` (UID),
``lossy`` (a lossy transfer syntax, or LossyImageCompression 01; lossy views are kept out of
training unless ``data.allow_lossy_training``), ``image_type`` (values joined by backslashes),
``patient_position`` (HFS, FFS... or empty), ``view_orientation`` (PatientOrientation, e.g.
``L\\F``, or empty), ``header_orientation`` (head_first / feet_first / empty: whether the header
says rows run head to feet; `spectbone preprocess` checks it against the image and flips
feet-first views), ``header_mirrored`` (True when PatientOrientation shows the view left-right
mirrored against the reading convention, empty when it cannot tell), ``n_energy_windows`` and
``signed`` (PixelRepresentation 1).

``image_id`` is ``<study_id>_<view>`` (``<study_id>_frame<N>`` when the view is unknown), with
``_2``, ``_3``... appended if a study holds the same view more than once. ``patient_id`` and
``study_id`` are pseudonyms: the first 12 hex digits of HMAC-SHA256(key, PatientID /
StudyInstanceUID) (`spectbone.util.pseudonym`). The key is the secret in ``$SPECTBONE_ID_KEY``,
or in the file ``--id-key-file`` names; without one (unset, or shorter than 16 characters) the run
refuses, before reading anything.
Only ``--phantom`` (the embedded synthetic cohort, which the workflow passes itself) uses the
built-in public demo key, and then every file must be a spectbone phantom file.

No input path is written anywhere, logs included (export folders are often named after patients):
a rejected file is named by its ``position`` in the sorted recursive listing of INPUT_DIR (1-based)
and by ``file_id``, a pseudonym of its path relative to INPUT_DIR, which the key holder can
recompute. Sizes are checked before anything is inflated or decoded (`spectbone.dicom.safety`;
``--max-rows/--max-cols/--max-frames/--max-mb``, config ``data.decode_limits``). No name, ID or date from a header is written either. ``pixel_spacing_mm`` is the mean
of the row and column spacing (NaN when absent). A byte-identical copy of a file already
read is rejected (it would leak across the split).

One image per SOP instance: a file whose SOPInstanceUID was already read (a second export run of
the same image, one attribute different) is listed with ``status`` ``duplicate``, no image, and
``duplicate_of`` = the position of the file kept, and ``reason`` says why that one was kept: a
lossless copy wins over a lossy one, otherwise the first in the listing. ``sop_instance_id`` is
the pseudonym of the SOPInstanceUID (`spectbone split` checks no instance is on two sides).

Any file name is read: the folder is walked as bytes and ``file_id`` is the pseudonym of the
relative path's own bytes, so names that are not UTF-8 (Latin-1 from a Windows share), with
spaces or that look like options are ordinary files. What cannot be read is one reject row with
its reason and the run goes on: a symbolic link to a folder (never followed, so a link loop
cannot make the walk endless), a link that loops or dangles, a folder that cannot be listed or
a path too long to open, a file that vanished between listing and reading. Every output is written atomically; an
OSError or MemoryError while writing (a full disk) stops the run with exit status 1 and leaves no
partial file. Exit status 0 even with rejects; 1 if INPUT_DIR is missing or nothing converted;
2 without a usable key.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spectbone.dicom.read import (UNKNOWN, DicomRejected, frame_views, nm_images_from_dataset, pixel_spacing,
                                  read_nm_dataset)
from spectbone.dicom.safety import DEFAULT_LIMITS, DecodeLimits
from spectbone.dicom.series import classify, describe, header_mirrored
from spectbone.dicom.write import PHANTOM_MODEL_NAME
from spectbone.util.atomic import save_csv, save_npy
from spectbone.util.hashing import sha256_file
from spectbone.util.pseudonym import MissingKey, PseudonymKey, demo_key, secret_key
from spectbone.util.runtime import add_common_arguments, error_reason, setup_logging

log = logging.getLogger("spectbone.prep.convert")

MANIFEST_COLUMNS = ["image_id", "patient_id", "study_id", "view", "frame", "rows", "cols",
                    "pixel_spacing_mm", "total_counts", "source_sha256", "status", "reason", "image_path",
                    "series_class", "transfer_syntax", "lossy", "image_type", "patient_position",
                    "view_orientation", "header_orientation", "header_mirrored", "n_energy_windows", "signed",
                    "position", "duplicate_of", "sop_instance_id"]
OK, SKIPPED, DUPLICATE = "ok", "skipped", "duplicate"
REJECT_COLUMNS = ["position", "file_id", "source_sha256", "reason"]
SKIP_NAMES = {"DICOMDIR", ".DS_STORE", "THUMBS.DB", "DESKTOP.INI"}


def add_arguments(parser, verb: str = "convert") -> None:
    parser.add_argument("input_dir", metavar="INPUT_DIR", help="folder of DICOM files (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder (images/, manifest.csv, rejects.csv)")
    parser.add_argument("--phantom", action="store_true",
                        help="INPUT_DIR is the embedded synthetic phantom: use the public demo key for its "
                             "pseudonyms (any other file is rejected). Real data take the secret key from "
                             "$SPECTBONE_ID_KEY")
    parser.add_argument("--id-key-file", default=None,
                        help="file holding the secret pseudonym key (instead of $SPECTBONE_ID_KEY); only its "
                             "path is given here, never the key")
    d = DEFAULT_LIMITS
    parser.add_argument("--max-rows", type=int, default=d.max_rows, help="decoding limit: rows per frame")
    parser.add_argument("--max-cols", type=int, default=d.max_cols, help="decoding limit: columns per frame")
    parser.add_argument("--max-frames", type=int, default=d.max_frames, help="decoding limit: frames per file")
    parser.add_argument("--max-mb", type=float, default=d.max_mb,
                        help="decoding limit: MiB of decoded pixel data per file (also bounds deflated data sets)")
    add_common_arguments(parser, log=True)


def list_input_files(root: Path) -> list[Path]:
    """Every entry under root that convert must account for, in walk order (a folder's entries
    sorted by their bytes, then its subfolders, each in the same way).

    Regular files and links to files, and also what will not be read but must still be reported
    (each becomes a reject row): symbolic links to folders or links that loop or dangle (never
    followed, so a link back up the tree cannot make the walk endless) and folders that could not
    be listed (no permission, or a path longer than the system allows). The walk runs on bytes,
    so any file name survives (one that is not UTF-8 comes back as surrogate escapes, which
    `os.fsencode` turns back into its bytes). DICOMDIR and OS junk files are left out."""
    entries: list[bytes] = []

    def unlistable(err: OSError) -> None:
        if err.filename is not None:
            entries.append(os.fsencode(err.filename))

    for dirpath, dirnames, filenames in os.walk(os.fsencode(root), onerror=unlistable, followlinks=False):
        dirnames.sort()
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(filenames + links):
            text = os.fsdecode(name)
            if text.upper() in SKIP_NAMES or text.startswith("._"):
                continue
            entries.append(os.path.join(dirpath, name))
    return [Path(os.fsdecode(e)) for e in entries]


def entry_problem(path: Path) -> str | None:
    """Why a listed entry cannot be read as a file (None when it is a regular file, or a link to one).

    Looks at the entry itself first (`lstat`), so a link is judged as a link, never walked into."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "the file vanished between listing the folder and reading it (moved or deleted meanwhile)"
    except OSError as exc:
        return _os_problem(exc)
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "a symbolic link that loops (it leads back to itself through other links): not followed"
            if exc.errno == errno.ENOENT:
                return "a symbolic link that points to nothing (dangling): no file to read"
            return "a symbolic link whose target cannot be reached: " + _os_problem(exc)
        if stat.S_ISDIR(target.st_mode):
            return ("a symbolic link to a folder: not followed (a link can lead back into the tree and make the "
                    "walk endless); copy the folder in if its files belong to the input")
        if not stat.S_ISREG(target.st_mode):
            return "a symbolic link to something that is not a regular file (a device, pipe or socket)"
        return None
    if stat.S_ISDIR(st.st_mode):
        return "a folder whose contents could not be listed, so its files were not read"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a device, pipe or socket)"
    return None


def _os_problem(exc: OSError) -> str:
    """An OSError in words, without the file name the OS put into it."""
    if exc.errno == errno.ENAMETOOLONG:
        return ("its path is longer than this system can open (ENAMETOOLONG); move the study to a shorter "
                "folder path")
    return f"it could not be read ({exc.strerror or type(exc).__name__})"


def _patient_key(ds) -> str:
    pid = str(ds.get("PatientID", "") or "").strip()
    if pid:
        return "patient:" + pid
    # No patient ID: each study is its own patient (never merge unknown patients into one).
    return "study:" + _study_key(ds)


def _study_key(ds) -> str:
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = str(ds.get(kw, "") or "").strip()
        if value:
            return value
    return ""


def is_phantom_file(ds) -> bool:
    """True for a file the embedded phantom wrote (the only files the public demo key may name)."""
    return str(ds.get("ManufacturerModelName", "")) == PHANTOM_MODEL_NAME


def _scrub(text: str, *paths: Path | str) -> str:
    """Remove any input path a library put into an error message (and any undecodable byte)."""
    for p in sorted({str(p) for p in paths if str(p) not in ("", ".")}, key=len, reverse=True):
        text = text.replace(p, "<input file>")
    return text.encode("utf-8", "replace").decode("utf-8")


@dataclass
class _Kept:
    """The file kept for one SOP instance: where it is in the listing and what it produced."""
    position: int
    lossy: bool
    rows: list[dict]


def _duplicate_reason(kept_position: int, kept_lossy: bool, this_lossy: bool) -> str:
    """Why the other file of one SOP instance is the one kept: lossless over lossy, then the first."""
    why = ("it is lossless and this copy is lossy" if this_lossy and not kept_lossy
           else "both are lossless, and it was read first" if not kept_lossy
           else "both are lossy, and it was read first")
    return (f"the same SOP instance (SOPInstanceUID) as file #{kept_position}, a re-export of one image: "
            f"file #{kept_position} is kept ({why}); one image per SOP instance and frame")


def _as_duplicate(row: dict, kept_position: int, reason: str) -> dict:
    """A manifest row turned into a duplicate listing: no image, no image id, the kept file named."""
    return {**row, "image_id": "", "status": DUPLICATE, "reason": reason, "image_path": "",
            "total_counts": float("nan"), "duplicate_of": kept_position}


def _mean_spacing(spacing: tuple[float, float]) -> float:
    """Mean of the row and column spacing (NaN when either is unknown)."""
    return float(np.mean(spacing)) if np.all(np.isfinite(spacing)) else float("nan")


def _unique_id(used: set[str], study_id: str, label: str) -> str:
    """``<study>_<label>``, with ``_2``, ``_3``... when a study holds the label more than once."""
    image_id, k = f"{study_id}_{label}", 2
    while image_id in used:
        image_id = f"{study_id}_{label}_{k}"
        k += 1
    used.add(image_id)
    return image_id


def _file_rows(ds, series, images, common: dict, used_ids: set[str], study_id: str, out: Path | None) -> list[dict]:
    """The manifest rows of one read file: one per decoded frame (whose image is written under
    `out`, unless out is None for a duplicate), or one ``skipped`` row for a series not decoded."""
    if not series.is_whole_body:
        views = set(frame_views(ds))
        view = views.pop() if len(views) == 1 else UNKNOWN
        image_id = _unique_id(used_ids, study_id, series.name) if out is not None else ""
        return [{**common, "image_id": image_id, "view": view, "frame": "",
                 "rows": int(ds.get("Rows", 0) or 0), "cols": int(ds.get("Columns", 0) or 0),
                 "pixel_spacing_mm": _mean_spacing(pixel_spacing(ds)), "total_counts": float("nan"),
                 "status": SKIPPED, "reason": series.skip_reason(), "image_path": "", "header_mirrored": ""}]
    rows = []
    for img in images:
        image_id, image_path = "", ""
        if out is not None:
            image_id = _unique_id(used_ids, study_id, img.view if img.view != UNKNOWN else f"frame{img.frame}")
            image_path = f"images/{image_id}.npy"
            save_npy(out / image_path, np.ascontiguousarray(img.counts, dtype=np.float32))
        mirrored = header_mirrored(ds, img.view)
        rows.append({**common, "image_id": image_id, "view": img.view, "frame": img.frame,
                     "rows": img.counts.shape[0], "cols": img.counts.shape[1],
                     "pixel_spacing_mm": _mean_spacing(img.pixel_spacing),
                     "total_counts": float(img.counts.sum(dtype=np.float64)), "status": OK, "reason": "",
                     "image_path": image_path, "header_mirrored": "" if mirrored is None else mirrored})
    return rows


def convert(input_dir: str | os.PathLike, out_dir: str | os.PathLike, key: PseudonymKey,
            limits: DecodeLimits = DEFAULT_LIMITS, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert a folder; returns (manifest, rejects) and writes them under out_dir.

    Input paths never reach a log or an output: files are named by position and pseudonym."""
    from tqdm import tqdm

    root, out = Path(input_dir), Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError("the input folder does not exist or is not a folder (path not shown: "
                                "folder names can carry patient names)")
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows, rejects = [], []
    seen_sha: dict[str, int] = {}
    kept_sop: dict[str, _Kept] = {}
    used_ids: set[str] = set()
    files = list_input_files(root)
    root_forms = [root, os.path.abspath(root), root.resolve()]
    log.info("found %d files in the input folder; pseudonyms keyed by the %s", len(files), key.label)
    for position, path in enumerate(tqdm(files, desc="convert", unit="file", disable=not progress,
                                         file=sys.stderr), start=1):
        rel = path.relative_to(root).as_posix()
        file_id = key.pseudonym(b"file:" + os.fsencode(rel))  # the name's own bytes, whatever its encoding
        where = f"file #{position} ({file_id})"

        def reject(sha: str, reason: str) -> None:
            reason = _scrub(reason, path, os.path.abspath(path), *root_forms, rel, path.name)
            rejects.append({"position": position, "file_id": file_id, "source_sha256": sha, "reason": reason})
            log.warning("rejected %s: %s", where, reason)

        problem = entry_problem(path)
        if problem:
            reject("", problem)
            continue
        try:
            sha = sha256_file(path)
        except FileNotFoundError:
            reject("", "the file vanished between listing the folder and reading it (moved or deleted meanwhile)")
            continue
        except OSError as exc:
            reject("", _os_problem(exc))
            continue
        if sha in seen_sha:
            reject(sha, f"byte-identical copy of file #{seen_sha[sha]}, which was already read")
            continue
        try:
            ds = read_nm_dataset(path, limits)
            if key.is_demo and not is_phantom_file(ds):
                reject(sha, "not a file of the embedded synthetic phantom: --phantom (the public demo key) only "
                            "converts the phantom; real studies need a secret key in $SPECTBONE_ID_KEY")
                continue
            series = classify(ds)
            images = nm_images_from_dataset(ds) if series.is_whole_body else []
        except DicomRejected as exc:
            reject(sha, str(exc))
            continue
        except FileNotFoundError:
            reject(sha, "the file vanished between listing the folder and reading it (moved or deleted meanwhile)")
            continue
        except MemoryError:
            raise  # within the decoding limits: the machine is short of memory, fail loudly
        except OSError as exc:
            reject(sha, _os_problem(exc))
            continue
        except Exception as exc:  # anything unforeseen still must not stop the run
            reject(sha, f"unexpected error while reading the file ({type(exc).__name__}: {exc})")
            continue
        seen_sha[sha] = position
        patient_id = key.pseudonym(_patient_key(ds))
        study_id = key.pseudonym(_study_key(ds) or ("file:" + sha))
        came_in = describe(ds)
        sop_uid = str(ds.get("SOPInstanceUID", "") or "").strip()
        common = {"patient_id": patient_id, "study_id": study_id, "source_sha256": sha,
                  "series_class": series.name, **came_in, "position": position, "duplicate_of": "",
                  "sop_instance_id": key.pseudonym("sop:" + sop_uid) if sop_uid else ""}
        kept = kept_sop.get(sop_uid) if sop_uid else None
        if kept is not None and not (kept.lossy and not came_in["lossy"]):
            # A re-export of an instance already kept: listed, never a second image.
            reason = _duplicate_reason(kept.position, kept.lossy, bool(came_in["lossy"]))
            file_rows = _file_rows(ds, series, images, common, used_ids, study_id, out=None)
            rows.extend(_as_duplicate(r, kept.position, reason) for r in file_rows)
            log.info("%s is a duplicate of file #%d: %s", where, kept.position, reason)
            continue
        if kept is not None:
            # This copy is lossless, the one kept so far lossy: it takes over, the lossy one is listed.
            reason = _duplicate_reason(position, False, True)
            for r in kept.rows:
                used_ids.discard(r["image_id"])
                if r["image_path"]:
                    (out / r["image_path"]).unlink(missing_ok=True)
                r.update(_as_duplicate(r, position, reason))
            log.info("file #%d is a duplicate of %s: %s", kept.position, where, reason)
        file_rows = _file_rows(ds, series, images, common, used_ids, study_id, out=out)
        rows.extend(file_rows)
        if sop_uid:
            kept_sop[sop_uid] = _Kept(position, bool(came_in["lossy"]), file_rows)
        if not series.is_whole_body:
            log.info("skipped %s (%s): %s", where, file_rows[-1]["image_id"], series.skip_reason())
        else:
            log.info("converted %s -> %s%s", where, ", ".join(r["image_id"] for r in file_rows),
                     " (lossy encoding)" if came_in["lossy"] else "")
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    rejected = pd.DataFrame(rejects, columns=REJECT_COLUMNS)
    save_csv(out / "manifest.csv", manifest)
    save_csv(out / "rejects.csv", rejected)
    n_ok = int((manifest["status"] == OK).sum())
    log.info("%d images from %d files; %d files skipped (not whole-body planar); %d duplicate SOP instances; "
             "%d files rejected", n_ok, len(seen_sha), int((manifest["status"] == SKIPPED).sum()),
             manifest.loc[manifest["status"] == DUPLICATE, "position"].nunique(), len(rejected))
    return manifest, rejected


def run(args) -> int:
    setup_logging(args.log)
    try:
        key = demo_key() if args.phantom else secret_key(key_file=args.id_key_file)
    except MissingKey as exc:
        log.error("refusing to convert: %s", exc)
        return 2
    try:
        limits = DecodeLimits(args.max_rows, args.max_cols, args.max_frames, args.max_mb)
        manifest, rejected = convert(args.input_dir, args.out, key, limits)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 1
    except (OSError, MemoryError) as exc:
        what = error_reason(exc)
        log.error("convert failed (%s: disk full or out of memory?): no partial file was left; rerun once "
                  "there is room", what)
        return 1
    if not (manifest["status"] == OK).any():
        log.error("nothing converted: of the files in the input folder %d were rejected (see rejects.csv) and "
                  "%d are not whole-body planar views (manifest.csv, status skipped)", len(rejected), len(manifest))
        return 1
    return 0
