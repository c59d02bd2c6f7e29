"""Reader for real AAPM/Mayo low-dose CT data: full-dose / quarter-dose slice pairs in HU.

Layouts handled (all seen in the wild):

- the 2016 Grand Challenge: ``ROOT/L067/full_1mm/*.IMA`` and ``ROOT/L067/quarter_1mm/*.IMA``
  (also ``full_3mm`` / ``quarter_3mm``, ``..._FD_...`` / ``..._QD_...`` file names);
- TCIA "LDCT-and-Projection-data": ``ROOT/<patient>/<study>/<n>-Full Dose Images-<uid>/*.dcm`` and
  ``...-Low Dose Images-...``.

Every readable DICOM file under ROOT is classified as full or quarter dose by its
SeriesDescription ("full dose", "quarter dose", "low dose") or, failing that, by the words of its
path below ROOT (``full``, ``FD``, ``quarter``, ``QD``, ``low``, ``LD`` as separate tokens). The
patient is PatientID (else the first folder below ROOT). Slices are paired per patient and slice
thickness by table position: ImagePositionPatient z (else SliceLocation), rounded to 0.01 mm.
Pixel values become HU with RescaleSlope / RescaleIntercept.
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

log = logging.getLogger("spectbone.data.mayo")

_FULL = re.compile(r"(?:^|[^a-z])(full|fd)(?:[^a-z]|$)")
_QUARTER = re.compile(r"(?:^|[^a-z])(quarter|qd|low|ld)(?:[^a-z]|$)")


@dataclass(frozen=True)
class MayoPair:
    patient: str
    z: float
    slice_thickness: float | None
    full_path: Path
    quarter_path: Path


def classify_dose(text: str) -> str | None:
    """'full', 'quarter' or None from a SeriesDescription or a path (case-insensitive tokens)."""
    t = text.lower()
    full, quarter = bool(_FULL.search(t)), bool(_QUARTER.search(t))
    if full == quarter:
        return None
    return "full" if full else "quarter"


def _slice_z(ds) -> float | None:
    ipp = ds.get("ImagePositionPatient")
    if ipp is not None and len(ipp) == 3:
        return round(float(ipp[2]), 2)
    loc = ds.get("SliceLocation")
    return None if loc is None else round(float(loc), 2)


def _dose_of(ds, rel: Path) -> str | None:
    dose = classify_dose(str(ds.get("SeriesDescription", "")))
    if dose is None:
        # nearest folder/file name first: a study folder may say "low dose CT" for both series
        for part in reversed(rel.parts):
            dose = classify_dose(part)
            if dose:
                break
    return dose


def find_mayo_pairs(root: str | os.PathLike) -> list[MayoPair]:
    """All full/quarter slice pairs under root, sorted by patient and z; ValueError if none."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"Mayo folder {root} does not exist or is not a folder")
    table: dict[tuple[str, float | None, str], dict[float, Path]] = defaultdict(dict)
    n_files = n_dicom = 0
    unclassified = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        n_files += 1
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError):
            continue
        if ds.get("Rows") is None:  # not an image (DICOMDIR, structured report, ...)
            continue
        n_dicom += 1
        rel = path.relative_to(root)
        dose = _dose_of(ds, rel)
        z = _slice_z(ds)
        if dose is None or z is None:
            unclassified.append(str(rel))
            continue
        patient = str(ds.get("PatientID", "") or rel.parts[0])
        thick = ds.get("SliceThickness")
        thick = None if thick in (None, "") else round(float(thick), 2)
        table[(patient, thick, dose)][z] = path
    pairs = []
    for (patient, thick, dose), slices in table.items():
        if dose != "full":
            continue
        quarter = table.get((patient, thick, "quarter"), {})
        for z in sorted(set(slices) & set(quarter)):
            pairs.append(MayoPair(patient, z, thick, slices[z], quarter[z]))
    if not pairs:
        n_full = sum(len(v) for (_, _, d), v in table.items() if d == "full")
        n_quarter = sum(len(v) for (_, _, d), v in table.items() if d == "quarter")
        raise ValueError(
            f"no full-dose/quarter-dose slice pairs under {root}: {n_files} files, {n_dicom} DICOM images, "
            f"{n_full} full dose, {n_quarter} quarter dose, {len(unclassified)} unclassified "
            f"(e.g. {unclassified[:3]}). Expected per-patient folders holding full-dose and quarter-dose "
            f"series (folder names with 'full'/'FD' and 'quarter'/'QD', or SeriesDescription) whose slices "
            f"share ImagePositionPatient z or SliceLocation.")
    pairs.sort(key=lambda p: (p.patient, p.slice_thickness or 0.0, p.z))
    log.info("Mayo: %d slice pairs from %d patients under %s", len(pairs), len({p.patient for p in pairs}), root)
    return pairs


def read_hu(path: str | os.PathLike) -> np.ndarray:
    """One CT slice in Hounsfield units (float32), RescaleSlope/Intercept applied."""
    ds = pydicom.dcmread(path)
    img = ds.pixel_array.astype(np.float64)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return (img * slope + intercept).astype(np.float32)


def read_pair(pair: MayoPair) -> tuple[np.ndarray, np.ndarray]:
    full, quarter = read_hu(pair.full_path), read_hu(pair.quarter_path)
    if full.shape != quarter.shape:
        raise ValueError(f"full/quarter shapes differ for {pair}: {full.shape} vs {quarter.shape}")
    return full, quarter


def iter_mayo_pairs(root: str | os.PathLike) -> Iterator[tuple[np.ndarray, np.ndarray, MayoPair]]:
    """Yield (full_dose_hu, quarter_dose_hu, pair) for every pair under root."""
    for pair in find_mayo_pairs(root):
        full, quarter = read_pair(pair)
        yield full, quarter, pair
