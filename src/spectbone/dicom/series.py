"""What kind of NM series a file belongs to, and what its header says about how it came in.

A hospital export of a bone-scan study holds more than the whole-body sweep: SPECT projections
(TOMO), their reconstructions, static spot views, dynamic or gated series, screen captures. Only
whole-body planar views are training and denoising material; everything else must be listed (so
nothing disappears silently) but not converted. `classify(ds)` decides from the header alone,
before any pixel data is decoded, in this order of trust:

1. the SOP class: NM Image Storage carries the NM image type; a secondary capture (e.g. NEMA NM1)
   has no trustworthy type and counts as whole body only with modality NM and whole-body geometry;
   any other SOP class with modality NM (PET/NM recon, enhanced objects...) is ``other``;
2. ImageType value 3, the NM image type: WHOLE BODY, STATIC (spot, unless its geometry is a whole
   body's: some cameras file a stitched sweep as STATIC), TOMO / GATED TOMO (projections),
   RECON TOMO / RECON GATED TOMO (slices), DYNAMIC / GATED (other); value 4 TRANSMISSION is
   ``other`` whatever value 3 says;
3. geometry when the type is missing or unknown: rotation information or many frames = TOMO,
   a tall frame (rows >= 2 x columns, or rows x row spacing > 1000 mm) = whole body.

`describe(ds)` gives the manifest's record of what came in: transfer syntax, lossy or not, image
type, patient position, view orientation, energy windows, signedness, and what the header says
about head-first / feet-first and left-right display (the image decides in the end:
`spectbone.prep.crop.head_end`). No patient-identifying value is ever returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.uid import UID

from spectbone.dicom.read import pixel_spacing, transfer_syntax

WHOLE_BODY, TOMO, SPOT, RECON, OTHER = "whole_body", "tomo", "spot", "recon", "other"
SERIES_CLASSES = (WHOLE_BODY, TOMO, SPOT, RECON, OTHER)
HEAD_FIRST, FEET_FIRST = "head_first", "feet_first"

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
SECONDARY_CAPTURE = {"1.2.840.10008.5.1.4.1.1.7",        # Secondary Capture Image Storage
                     "1.2.840.10008.5.1.4.1.1.7.1",      # multi-frame single bit
                     "1.2.840.10008.5.1.4.1.1.7.2",      # multi-frame grayscale byte
                     "1.2.840.10008.5.1.4.1.1.7.3"}      # multi-frame grayscale word
WHOLE_BODY_ASPECT = 2.0      # rows / columns of a whole-body frame (NM1: 1024 / 256 = 4)
WHOLE_BODY_LENGTH_MM = 1000.0
TOMO_MIN_FRAMES = 8          # a planar whole-body file holds views x energy windows frames, a TOMO dozens
_ROTATION_KEYWORDS = ("RotationInformationSequence", "NumberOfRotations", "AngularViewVector", "RotationVector")

# Transfer syntaxes whose encoding discards information (or may: JPEG 2000 / HTJ2K "lossy or
# lossless" are treated as lossy, since nothing in the stream promises reversibility).
LOSSY_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended",
    **{f"1.2.840.10008.1.2.4.{n}": "retired lossy JPEG" for n in (52, 53, 54, 55, 56, 59, 60, 61, 62, 63, 64)},
    "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000 (irreversible allowed)",
    "1.2.840.10008.1.2.4.93": "JPEG 2000 Part 2 multi-component (irreversible allowed)",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.4.203": "HTJ2K (irreversible allowed)",
    **{f"1.2.840.10008.1.2.4.{n}": "MPEG/HEVC video" for n in range(100, 110)},
}

# Patient-gantry relationship codes (CID 21): SCT and the old SNOMED-RT forms.
_FEET_FIRST_CODES = {"102541007", "F-10480"}
_HEAD_FIRST_CODES = {"102540008", "F-10470"}


@dataclass(frozen=True)
class SeriesClass:
    name: str   # one of SERIES_CLASSES
    why: str    # what decided it, in words (no header value that could identify anyone)

    @property
    def is_whole_body(self) -> bool:
        return self.name == WHOLE_BODY

    def skip_reason(self) -> str:
        return f"series class {self.name}: not a whole-body planar view ({self.why})"


def image_type(ds: pydicom.Dataset) -> list[str]:
    """ImageType values, upper-cased and stripped (empty list when absent)."""
    value = ds.get("ImageType")
    if value is None or value == "":
        return []
    values = [value] if isinstance(value, str) else list(value)
    return [str(v).strip().upper() for v in values]


def _int(ds: pydicom.Dataset, keyword: str, default: int = 0) -> int:
    try:
        return int(ds.get(keyword, default) or default)
    except (TypeError, ValueError):
        return default


def whole_body_geometry(ds: pydicom.Dataset) -> tuple[bool, str]:
    """(is the frame shaped like a whole-body sweep, the measurement that says so)."""
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    if rows < 1 or cols < 1:
        return False, "no image size in the header"
    spacing = pixel_spacing(ds)[0]
    length = rows * spacing if np.isfinite(spacing) else None
    shape = f"{rows}x{cols}" + (f", {length:.0f} mm long" if length else "")
    if rows >= WHOLE_BODY_ASPECT * cols:
        return True, f"tall frame {shape}"
    if length is not None and length > WHOLE_BODY_LENGTH_MM and rows > cols:
        return True, f"frame {shape}"
    return False, f"frame {shape} is not whole-body shaped"


def _tomo_geometry(ds: pydicom.Dataset) -> str | None:
    found = [kw for kw in _ROTATION_KEYWORDS if kw in ds]
    if found:
        return f"rotation information ({found[0]})"
    n_frames = _int(ds, "NumberOfFrames", 1)
    if n_frames >= TOMO_MIN_FRAMES:
        return f"{n_frames} frames"
    return None


def classify(ds: pydicom.Dataset) -> SeriesClass:
    """The series class of one NM file, from its header only (see the module docstring)."""
    sop = str(ds.get("SOPClassUID", "")).strip()
    modality = str(ds.get("Modality", "")).strip().upper()
    types = image_type(ds)
    wb, shape = whole_body_geometry(ds)
    if sop in SECONDARY_CAPTURE:
        if modality == "NM" and wb:
            return SeriesClass(WHOLE_BODY, f"secondary capture, modality NM, {shape}")
        return SeriesClass(OTHER, f"secondary capture, modality {modality or 'none'}, {shape}")
    if sop and sop != NM_IMAGE_STORAGE:
        name = UID(sop).name if UID(sop).is_valid else sop
        return SeriesClass(OTHER, f"SOP class {name}, not NM Image Storage")
    if len(types) >= 4 and types[3] == "TRANSMISSION":
        return SeriesClass(OTHER, "transmission image (image type value 4)")
    nm_type = types[2] if len(types) >= 3 else ""
    if nm_type == "WHOLE BODY":
        return SeriesClass(WHOLE_BODY, "NM image type WHOLE BODY")
    if nm_type in ("TOMO", "GATED TOMO"):
        return SeriesClass(TOMO, f"NM image type {nm_type}: SPECT projections")
    if nm_type.startswith("RECON"):
        return SeriesClass(RECON, f"NM image type {nm_type}: reconstructed slices")
    if nm_type == "STATIC":
        if wb:
            return SeriesClass(WHOLE_BODY, f"NM image type STATIC with whole-body geometry ({shape})")
        return SeriesClass(SPOT, f"NM image type STATIC, {shape}")
    if nm_type in ("DYNAMIC", "GATED"):
        return SeriesClass(OTHER, f"NM image type {nm_type}: a time series, not a sweep")
    what = f"unknown NM image type {nm_type}" if nm_type else "no NM image type"
    tomo = _tomo_geometry(ds)
    if tomo:
        return SeriesClass(TOMO, f"{what}; {tomo}")
    if wb:
        return SeriesClass(WHOLE_BODY, f"{what}; {shape}")
    if _int(ds, "NumberOfFrames", 1) <= 2:
        return SeriesClass(SPOT, f"{what}; {shape}")
    return SeriesClass(OTHER, f"{what}; {shape}")


def is_lossy(ds: pydicom.Dataset) -> tuple[bool, str]:
    """(lossy, why): a lossy transfer syntax, or LossyImageCompression 01 (lossy once, whatever now)."""
    ts = str(transfer_syntax(ds))
    if ts in LOSSY_TRANSFER_SYNTAXES:
        return True, f"transfer syntax {LOSSY_TRANSFER_SYNTAXES[ts]}"
    if str(ds.get("LossyImageCompression", "")).strip() == "01":
        return True, "LossyImageCompression 01 (compressed lossily before this encoding)"
    return False, ""


def _code_words(seq) -> tuple[set[str], str]:
    values, meanings = set(), []
    for item in seq or []:
        values.add(str(item.get("CodeValue", "")).strip().upper())
        meanings.append(str(item.get("CodeMeaning", "")).lower())
        for kw in ("PatientOrientationModifierCodeSequence", "PatientGantryRelationshipCodeSequence"):
            v, m = _code_words(item.get(kw))
            values |= v
            meanings.append(m)
    return values, " ".join(meanings)


def _orientation_values(ds: pydicom.Dataset) -> list[str]:
    """PatientOrientation (0020,0020) values, upper-cased (empty list when absent)."""
    po = ds.get("PatientOrientation")
    values = [] if po in (None, "") else ([po] if isinstance(po, str) else list(po))
    return [str(v).strip().upper() for v in values]


def header_orientation(ds: pydicom.Dataset) -> tuple[str, str]:
    """(head_first / feet_first / '', which field said so): does the header say rows run head -> feet?

    PatientOrientation (0020,0020) describes the image itself (its second value is the direction
    of increasing rows: F = towards the feet); PatientPosition and the patient-gantry codes describe
    how the patient lay, which a camera may already have undone on display, so they come second."""
    values = _orientation_values(ds)
    if len(values) >= 2:
        down = values[1]
        if "F" in down and "H" not in down:
            return HEAD_FIRST, "PatientOrientation"
        if "H" in down and "F" not in down:
            return FEET_FIRST, "PatientOrientation"
    position = str(ds.get("PatientPosition", "")).strip().upper()
    if position.startswith("FF"):
        return FEET_FIRST, "PatientPosition"
    if position.startswith("HF"):
        return HEAD_FIRST, "PatientPosition"
    for kw in ("PatientGantryRelationshipCodeSequence", "PatientOrientationCodeSequence"):
        codes, meaning = _code_words(ds.get(kw))
        if codes & _FEET_FIRST_CODES or "feet-first" in meaning or "feetfirst" in meaning or "feet first" in meaning:
            return FEET_FIRST, kw
        if codes & _HEAD_FIRST_CODES or "head-first" in meaning or "headfirst" in meaning or "head first" in meaning:
            return HEAD_FIRST, kw
    return "", ""


def header_mirrored(ds: pydicom.Dataset, view: str) -> bool | None:
    """Is the view shown left-right mirrored against the reading convention? None when unknown.

    Convention: ANT shows the patient's right on the viewer's left (columns run towards the
    patient's left, PatientOrientation value 1 = L); POST shows it on the right (value 1 = R)."""
    values = _orientation_values(ds)
    if not values or view not in ("ANT", "POST"):
        return None
    across = values[0]
    if ("L" in across) == ("R" in across):
        return None
    expected = "L" if view == "ANT" else "R"
    return expected not in across


def describe(ds: pydicom.Dataset) -> dict:
    """Manifest fields saying what came in (never a name, ID, date or path)."""
    if "NumberOfEnergyWindows" in ds and ds.get("NumberOfEnergyWindows") not in (None, ""):
        n_windows = _int(ds, "NumberOfEnergyWindows")
    else:
        n_windows = len(ds.get("EnergyWindowInformationSequence") or [])
    lossy, _ = is_lossy(ds)
    orientation, _ = header_orientation(ds)
    return {
        "transfer_syntax": str(transfer_syntax(ds)),
        "lossy": lossy,
        "image_type": "\\".join(image_type(ds)),
        "patient_position": str(ds.get("PatientPosition", "") or "").strip().upper(),
        "view_orientation": "\\".join(_orientation_values(ds)),
        "n_energy_windows": n_windows,
        "signed": _int(ds, "PixelRepresentation") == 1,
        "header_orientation": orientation,
    }
