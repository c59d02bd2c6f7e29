"""`spectbone convert INPUT_DIR --out DIR [--phantom] [--log FILE]`.

Reads every file under INPUT_DIR (recursively, whatever its name; DICOMDIR and desktop junk
skipped) and writes one float32 count image per whole-body planar view:

- ``DIR/images/<image_id>.npy``: float32 counts (rescale slope/intercept applied, signed pixel
  data decoded as signed);
- ``DIR/manifest.csv``: image_id, patient_id, study_id, view, frame, rows, cols,
  pixel_spacing_mm, total_counts, source_sha256, status, reason, image_path, series_class,
  transfer_syntax, lossy, image_type, patient_position, view_orientation, header_orientation,
  n_energy_windows, signed;
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
read is rejected (it would leak across the split). Every output is written atomically; an
OSError or MemoryError while writing (a full disk) stops the run with exit status 1 and leaves no
partial file. Exit status 0 even with rejects; 1 if INPUT_DIR is missing or nothing converted;
2 without a usable key.
"""

from __future__ import annotations

import logging
import os
import sys
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
                    "view_orientation", "header_orientation", "header_mirrored", "n_energy_windows", "signed"]
OK, SKIPPED = "ok", "skipped"
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
    """Every regular file under root, sorted, minus DICOMDIR and OS junk files."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if name.upper() in SKIP_NAMES or name.startswith("._"):
                continue
            p = Path(dirpath) / name
            if p.is_file():
                files.append(p)
    return files


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
    """Remove any input path a library put into an error message."""
    for p in sorted({str(p) for p in paths if str(p) not in ("", ".")}, key=len, reverse=True):
        text = text.replace(p, "<input file>")
    return text


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
    used_ids: set[str] = set()
    files = list_input_files(root)
    log.info("found %d files in the input folder; pseudonyms keyed by the %s", len(files), key.label)
    for position, path in enumerate(tqdm(files, desc="convert", unit="file", disable=not progress,
                                         file=sys.stderr), start=1):
        rel = path.relative_to(root).as_posix()
        file_id = key.pseudonym("file:" + rel)
        where = f"file #{position} ({file_id})"

        def reject(sha: str, reason: str) -> None:
            reason = _scrub(reason, path, path.resolve(), root, root.resolve(), rel, path.name)
            rejects.append({"position": position, "file_id": file_id, "source_sha256": sha, "reason": reason})
            log.warning("rejected %s: %s", where, reason)

        try:
            sha = sha256_file(path)
        except OSError as exc:
            reject("", f"the file could not be read: {exc.strerror}")
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
        except MemoryError:
            raise  # within the decoding limits: the machine is short of memory, fail loudly
        except Exception as exc:  # anything unforeseen still must not stop the run
            reject(sha, f"unexpected error while reading the file ({type(exc).__name__}: {exc})")
            continue
        seen_sha[sha] = position
        patient_id = key.pseudonym(_patient_key(ds))
        study_id = key.pseudonym(_study_key(ds) or ("file:" + sha))
        came_in = describe(ds)
        if not series.is_whole_body:
            views = set(frame_views(ds))
            view = views.pop() if len(views) == 1 else UNKNOWN
            rows.append({
                "image_id": _unique_id(used_ids, study_id, series.name), "patient_id": patient_id,
                "study_id": study_id, "view": view,
                "frame": "", "rows": int(ds.get("Rows", 0) or 0), "cols": int(ds.get("Columns", 0) or 0),
                "pixel_spacing_mm": _mean_spacing(pixel_spacing(ds)), "total_counts": float("nan"),
                "source_sha256": sha, "status": SKIPPED, "reason": series.skip_reason(), "image_path": "",
                "series_class": series.name, **came_in, "header_mirrored": "",
            })
            log.info("skipped %s (%s): %s", where, rows[-1]["image_id"], series.skip_reason())
            continue
        for img in images:
            image_id = _unique_id(used_ids, study_id, img.view if img.view != UNKNOWN else f"frame{img.frame}")
            image_path = f"images/{image_id}.npy"
            save_npy(out / image_path, np.ascontiguousarray(img.counts, dtype=np.float32))
            mirrored = header_mirrored(ds, img.view)
            rows.append({
                "image_id": image_id, "patient_id": patient_id, "study_id": study_id, "view": img.view,
                "frame": img.frame, "rows": img.counts.shape[0], "cols": img.counts.shape[1],
                "pixel_spacing_mm": _mean_spacing(img.pixel_spacing),
                "total_counts": float(img.counts.sum(dtype=np.float64)),
                "source_sha256": sha, "status": OK, "reason": "", "image_path": image_path,
                "series_class": series.name, **came_in, "header_mirrored": "" if mirrored is None else mirrored,
            })
        log.info("converted %s -> %s%s", where, ", ".join(r["image_id"] for r in rows[-len(images):]),
                 " (lossy encoding)" if came_in["lossy"] else "")
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    rejected = pd.DataFrame(rejects, columns=REJECT_COLUMNS)
    save_csv(out / "manifest.csv", manifest)
    save_csv(out / "rejects.csv", rejected)
    n_ok = int((manifest["status"] == OK).sum())
    log.info("%d images from %d files; %d files skipped (not whole-body planar); %d files rejected", n_ok,
             len(seen_sha), int((manifest["status"] == SKIPPED).sum()), len(rejected))
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
