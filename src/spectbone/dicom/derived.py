"""A denoised image as DICOM that says what it is: a derived image of the same acquisition.

What a PACS and a validator expect of a processed copy (PS3.3 C.7.6.1 General Image, C.8.4 NM):
- a deep copy of the source, so the source dataset in memory is never touched;
- Image Type DERIVED\\PRIMARY (denoising keeps the acquisition's meaning; SECONDARY is for images
  made for display, such as screen captures), the source's remaining values kept;
- a new series and instance (new UIDs), its own Content Date/Time, Counts Accumulated recomputed;
- Source Image Sequence naming the source instance (purpose DCM 121322 "Source image for image
  processing operation") and a Derivation Code Sequence: CID 7203 has no "denoising" entry, so the
  nearest standard code, DCM 113087 "Smoothing", with Derivation Description naming the model,
  the package version and the weights' sha256;
- attributes that describe the old pixels (smallest/largest value, icon) removed;
- the denoised values are estimates of expected counts, fractional: by default they are stored with
  sub-count precision, 16-bit integers times a Rescale Slope (full range / 65535, Rescale Type "US").
  Rounding to whole counts would add a quantisation error of variance 1/12 count^2 per pixel, as large
  as a good denoiser's own error at short acquisitions. The NM IOD defines no Modality LUT, so dciodvfy
  calls such a file a Standard Extended SOP Class (a warning, not an error); ``whole_counts=True`` keeps
  the strict NM form (integer counts, a slope only when the maximum exceeds 65535).
"""

from __future__ import annotations

import copy
from datetime import datetime

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DERIVATION_CODE = ("113087", "DCM", "Smoothing")  # CID 7203 Image Derivation
PURPOSE_CODE = ("121322", "DCM", "Source image for image processing operation")  # CID 7202
STALE = ("SmallestImagePixelValue", "LargestImagePixelValue", "IconImageSequence", "LossyImageCompressionRatio",
         "LossyImageCompressionMethod", "SmallestPixelValueInSeries", "LargestPixelValueInSeries")


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def derived_dataset(source: pydicom.Dataset, frames: np.ndarray, description: str,
                    series_description: str = "denoised", whole_counts: bool = False) -> pydicom.Dataset:
    """A new derived NM instance holding `frames` (counts, shape (n, rows, cols)); `source` untouched."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim == 2:
        frames = frames[None]
    out = copy.deepcopy(source)
    rounded = np.round(np.clip(frames, 0, None)) if whole_counts else np.clip(frames, 0, None)
    peak = float(rounded.max()) if rounded.size else 0.0
    slope = max(1.0, peak / 65535.0) if whole_counts or peak <= 0 else peak / 65535.0
    slope = float(f"{slope:.6g}")  # the value written (DS): pixels are computed with it
    pixels = np.round(rounded / slope).clip(0, 65535).astype(np.uint16)

    out.file_meta = copy.deepcopy(source.file_meta)
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.SOPInstanceUID = generate_uid()
    out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    out.SeriesInstanceUID = generate_uid()
    out.SeriesNumber = int(source.get("SeriesNumber", 0) or 0) + 1000
    out.InstanceNumber = 1
    now = datetime.now()
    out.ContentDate, out.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    out.SeriesDate, out.SeriesTime = out.ContentDate, out.ContentTime
    image_type = list(source.get("ImageType", []) or [])
    out.ImageType = ["DERIVED", "PRIMARY"] + image_type[2:]
    out.SeriesDescription = (str(source.get("SeriesDescription", "")) + " " + series_description).strip()[:64]
    out.DerivationDescription = description[:1024]
    out.DerivationCodeSequence = Sequence([_code(*DERIVATION_CODE)])
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    ref.PurposeOfReferenceCodeSequence = Sequence([_code(*PURPOSE_CODE)])
    out.SourceImageSequence = Sequence([ref])
    if "CountsAccumulated" in source:
        out.CountsAccumulated = int(round(float(rounded.sum())))
    for key in STALE:
        if key in out:
            del out[key]

    out.BitsAllocated, out.BitsStored, out.HighBit, out.PixelRepresentation = 16, 16, 15, 0
    out.SamplesPerPixel, out.PhotometricInterpretation = 1, "MONOCHROME2"
    if slope != 1.0:
        out.RescaleSlope, out.RescaleIntercept, out.RescaleType = f"{slope:.6g}", "0", "US"
    else:
        for key in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
            if key in out:
                del out[key]
    out.PixelData = (pixels if pixels.shape[0] > 1 else pixels[0]).astype("<u2").tobytes()
    out["PixelData"].VR = "OW"
    return out
