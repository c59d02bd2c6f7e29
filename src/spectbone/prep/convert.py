"""`spectbone convert INPUT_DIR --out DIR [--salt TEXT] [--log FILE]`.

Reads every file under INPUT_DIR (recursively, whatever its name; DICOMDIR and desktop junk
skipped) and writes one float32 count image per view:

- ``DIR/images/<image_id>.npy``: float32 counts (rescale slope/intercept applied);
- ``DIR/manifest.csv``: image_id, patient_id, study_id, view, frame, rows, cols,
  pixel_spacing_mm, total_counts, source_sha256, status, image_path;
- ``DIR/rejects.csv``: source (path relative to INPUT_DIR), source_sha256, reason.

``image_id`` is ``<study_id>_<view>`` (``<study_id>_frame<N>`` when the view is unknown), with
``_2``, ``_3``... appended if a study holds the same view more than once. ``patient_id`` and
``study_id`` are the first 12 hex digits of sha256(salt + PatientID / StudyInstanceUID); with
real patients, pass a secret ``--salt``. ``pixel_spacing_mm`` is the mean of the row and column
spacing (NaN when absent). No name, ID or date from a header is written anywhere, logs included.
A byte-identical copy of a file already converted is rejected (it would leak across the split).
Exit status 0 even with rejects; 1 if INPUT_DIR is missing or nothing converted.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from spectbone.dicom.read import UNKNOWN, DicomRejected, anonymise, read_nm_images
from spectbone.util.hashing import sha256_file
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.prep.convert")

MANIFEST_COLUMNS = ["image_id", "patient_id", "study_id", "view", "frame", "rows", "cols",
                    "pixel_spacing_mm", "total_counts", "source_sha256", "status", "image_path"]
REJECT_COLUMNS = ["source", "source_sha256", "reason"]
DEFAULT_SALT = "spectbone-v1"
SKIP_NAMES = {"DICOMDIR", ".DS_STORE", "THUMBS.DB", "DESKTOP.INI"}


def add_arguments(parser, verb: str = "convert") -> None:
    parser.add_argument("input_dir", metavar="INPUT_DIR", help="folder of DICOM files (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder (images/, manifest.csv, rejects.csv)")
    parser.add_argument("--salt", default=DEFAULT_SALT,
                        help="salt for the anonymised patient/study ids (keep it secret for real data)")
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


def convert(input_dir: str | os.PathLike, out_dir: str | os.PathLike, salt: str = DEFAULT_SALT,
            progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert a folder; returns (manifest, rejects) and writes them under out_dir."""
    from tqdm import tqdm

    root, out = Path(input_dir), Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"input folder {root} does not exist or is not a folder")
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows, rejects = [], []
    seen_sha: dict[str, str] = {}
    used_ids: set[str] = set()
    files = list_input_files(root)
    log.info("found %d files under %s", len(files), root)
    for path in tqdm(files, desc="convert", unit="file", disable=not progress, file=sys.stderr):
        rel = path.relative_to(root).as_posix()
        try:
            sha = sha256_file(path)
        except OSError as exc:
            rejects.append({"source": rel, "source_sha256": "", "reason": f"the file could not be read: {exc.strerror}"})
            continue
        if sha in seen_sha:
            rejects.append({"source": rel, "source_sha256": sha,
                            "reason": f"byte-identical copy of {seen_sha[sha]}, which was already converted"})
            continue
        try:
            images = read_nm_images(path)
        except DicomRejected as exc:
            rejects.append({"source": rel, "source_sha256": sha, "reason": str(exc)})
            log.warning("rejected %s: %s", rel, exc)
            continue
        except Exception as exc:  # anything unforeseen still must not stop the run
            reason = f"unexpected error while reading the file ({type(exc).__name__}: {exc})"
            rejects.append({"source": rel, "source_sha256": sha, "reason": reason})
            log.warning("rejected %s: %s", rel, reason)
            continue
        seen_sha[sha] = rel
        ds = images[0].dataset
        patient_id = anonymise(_patient_key(ds), salt)
        study_id = anonymise(_study_key(ds) or ("file:" + sha), salt)
        for img in images:
            label = img.view if img.view != UNKNOWN else f"frame{img.frame}"
            image_id = f"{study_id}_{label}"
            k = 2
            while image_id in used_ids:
                image_id = f"{study_id}_{label}_{k}"
                k += 1
            used_ids.add(image_id)
            image_path = f"images/{image_id}.npy"
            np.save(out / image_path, np.ascontiguousarray(img.counts, dtype=np.float32))
            spacing = float(np.mean(img.pixel_spacing)) if np.all(np.isfinite(img.pixel_spacing)) else float("nan")
            rows.append({
                "image_id": image_id, "patient_id": patient_id, "study_id": study_id, "view": img.view,
                "frame": img.frame, "rows": img.counts.shape[0], "cols": img.counts.shape[1],
                "pixel_spacing_mm": spacing, "total_counts": float(img.counts.sum(dtype=np.float64)),
                "source_sha256": sha, "status": "ok", "image_path": image_path,
            })
        log.info("converted %s -> %s", rel, ", ".join(r["image_id"] for r in rows[-len(images):]))
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    rejected = pd.DataFrame(rejects, columns=REJECT_COLUMNS)
    manifest.to_csv(out / "manifest.csv", index=False)
    rejected.to_csv(out / "rejects.csv", index=False)
    log.info("%d images from %d files; %d files rejected", len(manifest), len(seen_sha), len(rejected))
    return manifest, rejected


def run(args) -> int:
    setup_logging(args.log)
    try:
        manifest, rejected = convert(args.input_dir, args.out, salt=args.salt)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 1
    if manifest.empty:
        log.error("nothing converted: all %d files under %s were rejected (see %s)", len(rejected),
                  args.input_dir, Path(args.out) / "rejects.csv")
        return 1
    return 0
