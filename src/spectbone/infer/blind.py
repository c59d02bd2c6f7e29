"""Blind denoising of the real NEMA NM1 scan (no truth): each learned model, level map from stage 1.

NM1 is read through the same DICOM and crop code as any hospital study.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("spectbone.infer.blind")


def nm1_grey(path: str = "auto", size: int = 256) -> tuple[np.ndarray, float]:
    """NM1 cropped shoulder-to-pelvis, resized and grey-mapped like every study: (grey, counts_per_grey)."""
    from spectbone.dicom.nm1 import nm1_path
    from spectbone.dicom.read import read_nm_images
    from spectbone.prep.crop import preprocess_view

    images = read_nm_images(nm1_path(path))
    grey, box, cpg, _ = preprocess_view(images[0].counts, size)
    log.info("NM1 crop box rows %d-%d cols %d-%d, %.3g counts per grey level", box.top, box.bottom, box.left,
             box.right, cpg)
    return grey, cpg


def blind_denoise_nm1(path, model_paths, estimator_path, size, device) -> dict:
    """Each learned model blind-denoises NM1; the stage-1 estimator supplies EMANet's level map."""
    from spectbone.infer.apply import denoise_batch, estimate_levels
    from spectbone.models import load_model
    from spectbone.util.methods import display_name

    grey, _ = nm1_grey(path, size)
    estimator, _ = load_model(estimator_path, map_location=device)
    sigma = estimate_levels(estimator.to(device), grey[None], device)
    log.info("NM1 estimated noise level: %.2f grey levels", float(sigma[0]))
    names, outputs = [], []
    for model_path in model_paths:
        model, meta = load_model(model_path, map_location=device)
        outputs.append(denoise_batch(model.to(device), meta.get("kind", ""), grey[None], sigma, device)[0])
        names.append(display_name(Path(model_path).stem))
    return dict(original=grey, names=np.array(names), denoised=np.stack(outputs), sigma=sigma)
