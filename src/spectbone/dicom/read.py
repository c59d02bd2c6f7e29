"""Reading planar nuclear-medicine (NM) DICOM into per-view count images.

One file may hold one view (single-frame NM, or a secondary capture such as NEMA NM1) or
several (multi-frame NM from a dual-head camera: one frame per detector, ANT and POST).
`read_nm_images(path)` returns, for each frame, the view label, the counts (float32, rescale
slope/intercept applied), the pixel spacing and the dataset it came from. Anything a reader
cannot trust raises `DicomRejected` with a sentence a person understands; the caller (the
`convert` verb, or `denoise`) records it and moves on.

The view comes from, in order of trust:
1. the frame's detector item: DetectorVector -> DetectorInformationSequence item ->
   ViewCodeSequence (code meaning, then code value); also ViewCodeSequence at the top level;
2. per-frame labels: FrameComments / FrameLabel in PerFrameFunctionalGroupsSequence;
3. image labels: ImageComments, ImageID (0054,0400), SeriesDescription, ProtocolName
   (a label naming exactly one of ANT/ANTERIOR or POST/POSTERIOR); for multi-frame files these
   only count when there is one frame, because one label cannot name two frames;
4. otherwise ``unknown``.

No patient-identifying header value (names, IDs, dates) is returned in a message or logged.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from spectbone.dicom.errors import DicomRejected
from spectbone.dicom.safety import (DEFAULT_LIMITS, DecodeLimits, check_deflated, check_dimensions,
                                    check_encapsulated, check_file_size)
from spectbone.util.runtime import error_reason

__all__ = ["ANT", "POST", "UNKNOWN", "DecodeLimits", "DicomRejected", "NMImage", "frame_views",
           "nm_images_from_dataset", "pixel_spacing", "read_nm_dataset", "read_nm_images", "transfer_syntax"]

ANT, POST, UNKNOWN = "ANT", "POST", "unknown"

# SOP classes whose pixel data we accept as a planar NM count image.
NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
NM_MODALITIES = {"NM"}

_ANT_WORDS = {"ANT", "ANTERIOR", "AP", "ANTEROPOSTERIOR", "ANTERO-POSTERIOR"}
_POST_WORDS = {"POST", "POSTERIOR", "PA", "POSTEROANTERIOR", "POSTERO-ANTERIOR"}
# Coded projections, current SNOMED CT (SCT) and the old SNOMED-RT (SRT) forms a camera may write:
# CID 26 anterior / posterior projection (SCT 399321004 / 399001007, SRT G-5215 / G-5216) and the
# antero-posterior / postero-anterior qualifiers (SCT 399348003, SRT R-10206 / R-10214). Code
# meanings are matched as words first, so other code systems work whenever their meaning says the view.
_ANT_CODES = {"399321004", "G-5215", "399348003", "R-10206"}
_POST_CODES = {"399001007", "G-5216", "R-10214"}


@contextlib.contextmanager
def _quiet_pydicom():
    """pydicom logs decoder tracebacks itself; our reasons say it once, in words."""
    logger = logging.getLogger("pydicom")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(old)


@dataclass
class NMImage:
    view: str                 # ANT, POST or unknown
    counts: np.ndarray        # float32 (rows, cols), rescale applied
    pixel_spacing: tuple[float, float]  # (row, col) mm; NaN when the header has none
    dataset: pydicom.Dataset  # the dataset (pixel data still inside; never log its PHI)
    frame: int                # frame index inside the file

    def __iter__(self):       # unpacks as (view, counts, pixel_spacing, dataset)
        return iter((self.view, self.counts, self.pixel_spacing, self.dataset))



def _ts_name(ts: UID) -> str:
    name = ts.name if ts.is_valid else str(ts)
    return f"{name} ({ts})" if name != str(ts) else str(ts)


def _view_from_words(text: str) -> str | None:
    """ANT/POST if the text names exactly one of them as a word, else None."""
    if not text:
        return None
    tokens = set(re.split(r"[^A-Z\-]+", str(text).upper())) | set(re.split(r"[^A-Z]+", str(text).upper()))
    ant, post = bool(tokens & _ANT_WORDS), bool(tokens & _POST_WORDS)
    if ant and not post:
        return ANT
    if post and not ant:
        return POST
    return None


def _view_from_code_sequence(seq) -> str | None:
    for item in seq or []:
        view = _view_from_words(str(item.get("CodeMeaning", "")))
        if view:
            return view
        value = str(item.get("CodeValue", "") or item.get("LongCodeValue", "")).strip().upper()
        if value in _ANT_CODES:
            return ANT
        if value in _POST_CODES:
            return POST
        view = _view_from_words(value)
        if view:
            return view
    return None


def _frame_view(ds: pydicom.Dataset, frame: int, n_frames: int) -> str:
    # 1. detector item of this frame
    detectors = ds.get("DetectorInformationSequence")
    vector = ds.get("DetectorVector")
    if detectors:
        idx = None
        if vector is not None:
            vec = list(vector) if isinstance(vector, (list, tuple, pydicom.multival.MultiValue)) else [vector]
            if frame < len(vec):
                idx = int(vec[frame]) - 1
        elif len(detectors) == n_frames:
            idx = frame
        elif len(detectors) == 1:
            idx = 0
        if idx is not None and 0 <= idx < len(detectors):
            item = detectors[idx]
            view = _view_from_code_sequence(item.get("ViewCodeSequence"))
            if view:
                return view
            for kw in ("DetectorDescription", "ImageComments"):
                view = _view_from_words(str(item.get(kw, "")))
                if view:
                    return view
    if n_frames == 1:
        view = _view_from_code_sequence(ds.get("ViewCodeSequence"))
        if view:
            return view
    # 2. per-frame labels (enhanced-style functional groups)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        for content in per_frame[frame].get("FrameContentSequence", []) or []:
            for kw in ("FrameComments", "FrameLabel"):
                view = _view_from_words(str(content.get(kw, "")))
                if view:
                    return view
    # 3. image-level labels only when they cannot be about another frame
    if n_frames == 1:
        for kw in ("ImageComments", "ImageID", "SeriesDescription", "ProtocolName"):
            view = _view_from_words(str(ds.get(kw, "")))
            if view:
                return view
    return UNKNOWN


def _expected_native_bytes(ds: pydicom.Dataset, n_frames: int) -> int:
    rows, cols = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.BitsAllocated)
    n_bits = rows * cols * n_frames * samples * bits
    return (n_bits + 7) // 8


def _check_pixel_module(ds: pydicom.Dataset) -> int:
    """Validate the header fields pixel decoding depends on; return the number of frames."""
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise DicomRejected("the image stores float pixel data, which is not a count image")
        raise DicomRejected(
            "the file has no pixel data element (7FE0,0010): there is no image to read "
            "(not an image object, or the file was cut short before its pixel data)"
        )
    missing = [kw for kw in ("Rows", "Columns", "BitsAllocated") if kw not in ds or ds.get(kw) in (None, "")]
    if missing:
        raise DicomRejected(f"the image header lacks {', '.join(missing)}, so the pixel data cannot be laid out")
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1:
        raise DicomRejected(f"the image has {samples} samples per pixel (colour), not a single-channel count image")
    try:
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        raise DicomRejected("the NumberOfFrames header value is not a number") from None
    if n_frames < 1 or int(ds.Rows) < 1 or int(ds.Columns) < 1:
        raise DicomRejected(f"the header gives an empty image ({ds.Rows}x{ds.Columns}, {n_frames} frames)")
    return n_frames


def _read_dataset(path: Path, limits: DecodeLimits) -> pydicom.Dataset:
    if path.stat().st_size == 0:
        raise DicomRejected("the file is empty (0 bytes)")
    check_file_size(path, limits)
    check_deflated(path, limits)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            # Files without the 128-byte preamble are still DICOM if they parse to an image.
            try:
                ds = pydicom.dcmread(path, force=True)
            except Exception:
                ds = None
            if ds is None or not ("SOPClassUID" in ds and ("PixelData" in ds or "Modality" in ds)):
                raise DicomRejected(
                    "not a DICOM file: it has no 'DICM' marker and does not parse as a DICOM data set"
                ) from None
        except (EOFError, OSError) as exc:
            detail = error_reason(exc)
            raise DicomRejected(f"the file ends before its DICOM data set is complete (truncated): {detail}") from None
        except Exception as exc:  # pydicom raises assorted errors on corrupt headers
            raise DicomRejected(f"the DICOM header could not be parsed ({type(exc).__name__}: {exc})") from None
    for w in caught:
        msg = str(w.message)
        if "End of file" in msg or "truncat" in msg.lower():
            raise DicomRejected(
                "the file is truncated: it ends in the middle of a data element "
                "(pixel data lost), as a broken copy or interrupted transfer leaves it"
            )
    if len(ds) == 0:
        raise DicomRejected("the file holds a DICOM header but no data set elements (truncated or empty)")
    return ds


def _check_modality(ds: pydicom.Dataset) -> None:
    modality = str(ds.get("Modality", "")).strip().upper()
    sop = str(ds.get("SOPClassUID", ""))
    if modality in NM_MODALITIES or sop == NM_IMAGE_STORAGE:
        return
    what = f"modality {modality!s}" if modality else "no modality"
    sop_name = UID(sop).name if sop else "unknown SOP class"
    raise DicomRejected(
        f"the file is {sop_name} with {what}, not a nuclear-medicine (NM) image"
    )


def transfer_syntax(ds: pydicom.Dataset) -> UID:
    """The file's Transfer Syntax UID (empty when the file meta has none)."""
    meta = getattr(ds, "file_meta", None)
    return UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")


def _check_pixel_data(ds: pydicom.Dataset, n_frames: int, limits: DecodeLimits) -> UID:
    """Everything about the stored pixel data that can be checked without decoding it (transfer
    syntax, limits, native length, encapsulated frames and markers); returns the transfer syntax."""
    ts = transfer_syntax(ds)
    if not ts:
        raise DicomRejected("the file does not say how its pixel data is encoded (no Transfer Syntax UID)")
    if not ts.is_transfer_syntax:
        raise DicomRejected(f"the transfer syntax {ts} is not one DICOM defines, so the pixels cannot be decoded")
    decoded_bytes = check_dimensions(ds, n_frames, limits)
    if not ts.is_compressed:
        expected = _expected_native_bytes(ds, n_frames)
        actual = len(ds.PixelData)
        if actual < expected or actual > expected + 1:
            raise DicomRejected(
                f"the pixel data holds {actual:,} bytes but the header ({ds.Rows}x{ds.Columns}, "
                f"{n_frames} frame(s), {ds.BitsAllocated} bits) needs {expected:,}: the file is truncated "
                "or its header is wrong"
            )
    else:
        check_encapsulated(ds, n_frames, ts, decoded_bytes)
    return ts


def _decode(ds: pydicom.Dataset, n_frames: int) -> np.ndarray:
    """The pixel array of a data set whose stored pixel data `_check_pixel_data` has already passed."""
    ts = transfer_syntax(ds)
    if ts.is_compressed:
        from pydicom.pixels import get_decoder

        try:
            decoder = get_decoder(ts)
        except NotImplementedError:
            raise DicomRejected(
                f"no installed decoder handles transfer syntax {_ts_name(ts)}"
            ) from None
        if not decoder.is_available:
            missing = "; ".join(f"{k}: {v}" for k, v in decoder.missing_dependencies.items()) if isinstance(
                decoder.missing_dependencies, dict) else "; ".join(decoder.missing_dependencies)
            raise DicomRejected(
                f"no installed decoder handles transfer syntax {_ts_name(ts)}"
                + (f" (would need {missing})" if missing else "")
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except Exception as exc:
        detail = " ".join(str(exc).split())
        detail = detail.replace("Unable to decode as exceptions were raised by all available plugins: ", "")
        if ts.is_compressed:
            raise DicomRejected(
                f"no installed decoder could decode the pixel data in transfer syntax {_ts_name(ts)}: {detail}"
            ) from None
        raise DicomRejected(f"the pixel data could not be decoded: {detail}") from None
    arr = np.asarray(arr)
    if n_frames == 1 and arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape != (n_frames, int(ds.Rows), int(ds.Columns)):
        raise DicomRejected(
            f"decoded pixel array has shape {arr.shape}, expected {n_frames} frame(s) of {ds.Rows}x{ds.Columns}"
        )
    return arr


def pixel_spacing(ds: pydicom.Dataset) -> tuple[float, float]:
    """(row, column) spacing in mm from the first spacing attribute present; NaN when none is usable."""
    for kw in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        value = ds.get(kw)
        if value is not None:
            try:
                vals = [float(v) for v in (value if len(value) >= 2 else [value[0], value[0]])]
                if all(np.isfinite(vals)) and all(v > 0 for v in vals):
                    return float(vals[0]), float(vals[1])
            except (TypeError, ValueError, IndexError):
                continue
    return float("nan"), float("nan")


def _rescale(ds: pydicom.Dataset, arr: np.ndarray) -> np.ndarray:
    slope = ds.get("RescaleSlope", 1.0)
    intercept = ds.get("RescaleIntercept", 0.0)
    try:
        slope = float(slope) if slope not in (None, "") else 1.0
        intercept = float(intercept) if intercept not in (None, "") else 0.0
    except (TypeError, ValueError):
        raise DicomRejected("the rescale slope/intercept header values are not numbers") from None
    out = arr.astype(np.float64) * slope + intercept
    return out.astype(np.float32)


def read_nm_dataset(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> pydicom.Dataset:
    """The parsed NM data set of one file, pixel data not yet decoded.

    Lets a caller look at the header (series class, transfer syntax) before paying for, or
    risking, decoding. Raises `DicomRejected` for files that are not readable NM images, whose
    header promises more than the decoding limits allow, or whose stored pixel data is visibly
    broken (wrong length, cut or lying compressed frames), whatever series they belong to: a
    broken file says so in rejects.csv rather than passing as a skipped series."""
    path = Path(path)
    with _quiet_pydicom():
        ds = _read_dataset(path, limits)
        _check_modality(ds)
        _check_pixel_data(ds, _check_pixel_module(ds), limits)
    return ds


def nm_images_from_dataset(ds: pydicom.Dataset) -> list[NMImage]:
    """Decode a data set from `read_nm_dataset` (which ran every check) into one `NMImage` per frame."""
    with _quiet_pydicom():
        n_frames = _check_pixel_module(ds)
        arr = _decode(ds, n_frames)
    counts = _rescale(ds, arr)
    if not np.all(np.isfinite(counts)):
        raise DicomRejected("the rescaled pixel values are not all finite numbers")
    spacing = pixel_spacing(ds)
    return [
        NMImage(view=_frame_view(ds, f, n_frames), counts=counts[f], pixel_spacing=spacing, dataset=ds, frame=f)
        for f in range(n_frames)
    ]


def read_nm_images(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> list[NMImage]:
    """All count images in one DICOM file, one per frame.

    Each item unpacks as ``(view, counts, pixel_spacing, dataset)`` (and has ``.frame``).
    Raises `DicomRejected` with a readable reason when the file cannot be used; sizes are checked
    against `limits` before anything is inflated or decoded (`spectbone.dicom.safety`).
    """
    return nm_images_from_dataset(read_nm_dataset(path, limits))


def frame_views(ds: pydicom.Dataset) -> list[str]:
    """The view label of each frame, from the header alone (for series that are not decoded)."""
    try:
        n_frames = max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        n_frames = 1
    return [_frame_view(ds, f, n_frames) for f in range(min(n_frames, 1024))]
