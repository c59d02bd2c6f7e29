"""`spectbone denoise`: apply a trained EMANet to new NM studies and write derived NM DICOM.

Each frame is mapped to grey levels with the study's own factor (the preprocessing's 99.5th
percentile rule, without clipping, so no counts are lost), its noise level estimated by the stage-1
network (or given with --level), denoised at its native sampling (the networks are fully
convolutional), and mapped back to counts. The output keeps the original's rows, columns, frames and
pixel spacing, with new UIDs, ImageType DERIVED and a description of the processing; a PNG preview
shows the original beside the denoised study. Patient attributes are carried over unchanged into the
derived DICOM (it belongs in the same patient record) but never into logs or previews.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from spectbone.util.runtime import add_common_arguments, pick_device, set_threads, setup_logging

log = logging.getLogger("spectbone.infer.denoise")
DIVISOR = 8  # the U-Nets pool three times


def _pad_to_multiple(img: np.ndarray, m: int = DIVISOR) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = img.shape
    ph, pw = (-h) % m, (-w) % m
    return np.pad(img, ((0, ph), (0, pw)), mode="edge"), (h, w)


def denoise_counts(counts: np.ndarray, model, kind: str, estimator, device, level: float | None):
    """Counts in, counts out: grey mapping, level estimate, denoising, inverse mapping."""
    from spectbone.prep.crop import GREY_MAX, GREY_PERCENTILE
    from spectbone.infer.apply import denoise_batch, estimate_levels

    body = counts[counts > 0]
    cpg = float(np.percentile(body if body.size else counts, GREY_PERCENTILE)) / GREY_MAX or 1.0
    grey, (h, w) = _pad_to_multiple(counts.astype(np.float32) / cpg)
    sigma = np.array([level], np.float32) if level else estimate_levels(estimator, grey[None], device)
    out = denoise_batch(model, kind, grey[None], sigma, device)[0][:h, :w]
    return np.clip(out * cpg, 0, None), float(sigma[0])


def derived_dataset(ds: pydicom.Dataset, frames: np.ndarray, description: str) -> pydicom.Dataset:
    """A copy of `ds` holding `frames` (uint16 counts) as a new derived series, same geometry."""
    out = ds.copy()
    scaled = np.round(frames).astype(np.float64)
    slope = max(1.0, float(scaled.max()) / 65535.0)
    pixels = np.round(scaled / slope).astype(np.uint16)
    out.file_meta = ds.file_meta.copy()
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.SOPInstanceUID = generate_uid()
    out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    out.SeriesInstanceUID = generate_uid()
    out.SeriesNumber = int(ds.get("SeriesNumber", 0) or 0) + 1000
    out.ImageType = ["DERIVED", "SECONDARY"] + list(ds.get("ImageType", ["", ""])[2:])
    out.SeriesDescription = (str(ds.get("SeriesDescription", "")) + " EMANet denoised").strip()[:64]
    out.DerivationDescription = description[:1024]
    out.BitsAllocated, out.BitsStored, out.HighBit, out.PixelRepresentation = 16, 16, 15, 0
    out.SamplesPerPixel, out.PhotometricInterpretation = 1, "MONOCHROME2"
    if slope != 1.0:
        out.RescaleSlope, out.RescaleIntercept = f"{slope:.6g}", "0"
    else:
        for key in ("RescaleSlope", "RescaleIntercept"):
            if key in out:
                del out[key]
    out.PixelData = (pixels if pixels.shape[0] > 1 else pixels[0]).tobytes()
    out["PixelData"].VR = "OW"
    return out


def preview(original: np.ndarray, denoised: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(original)
    fig, axes = plt.subplots(1, 2 * n, figsize=(2.2 * 2 * n, 7), squeeze=False)
    vmax = float(np.percentile(original, 99.5)) or 1.0
    for i in range(n):
        for j, (img, label) in enumerate([(original[i], "original"), (denoised[i], "EMANet")]):
            ax = axes[0, 2 * i + j]
            ax.imshow(img, cmap="gray_r", vmin=0, vmax=vmax)
            ax.set_title(f"frame {i + 1}: {label}", fontsize=8)
            ax.axis("off")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def inputs_of(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    if not path.exists():
        raise SystemExit(f"{path}: no such file or folder")
    return [path]


def add_arguments(parser, verb):
    parser.add_argument("input", help="a DICOM file or a folder of them")
    parser.add_argument("-o", "--out", required=True, help="output .dcm (one input file) or folder")
    parser.add_argument("--model", required=True, help="EMANet weights (models/emanet_*.pt)")
    parser.add_argument("--estimator", help="stage-1 weights (models/estimator.pt); needed unless --level")
    parser.add_argument("--level", type=float, default=None, help="noise level in grey levels (skip estimation)")
    add_common_arguments(parser, threads=True, device=True)


def run(args):
    from spectbone.dicom.read import DicomRejected, read_nm_images
    from spectbone.models import load_model

    setup_logging(args.log)
    set_threads(args.threads)
    if args.level is None and not args.estimator:
        raise SystemExit("give --estimator (stage-1 weights) or a fixed --level")
    device = pick_device(args.device)
    model, meta = load_model(args.model, map_location=device)
    model.to(device)
    estimator = load_model(args.estimator, map_location=device)[0].to(device) if args.estimator else None
    src = Path(args.input)
    files = inputs_of(src)
    out = Path(args.out)
    single = len(files) == 1 and out.suffix.lower() == ".dcm"
    failures = 0
    for n, path in enumerate(files):
        try:
            images = read_nm_images(path)
        except DicomRejected as err:
            log.warning("%s: skipped: %s", path.name, err)
            failures += 1
            continue
        results = [denoise_counts(im.counts, model, meta.get("kind", "emanet"), estimator, device, args.level)
                   for im in images]
        frames = np.stack([r[0] for r in results])
        levels = ", ".join(f"{r[1]:.1f}" for r in results)
        description = (f"EMANet denoising (spectbone): model {Path(args.model).name}, noise level "
                       f"{'given' if args.level else 'estimated by the stage-1 network'} {levels} grey levels; "
                       "counts mapped to grey by the 99.5th percentile, denoised, mapped back.")
        target = out if single else out / f"denoised_{n:04d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        derived_dataset(images[0].dataset, frames, description).save_as(target, enforce_file_format=True)
        preview(np.stack([im.counts for im in images]), frames, target.with_suffix(".png"))
        log.info("study %d: %d frame(s), level %s -> %s", n + 1, len(images), levels, target)
    if failures == len(files):
        raise SystemExit(f"{src}: no readable NM image among {len(files)} file(s)")
    return 0
