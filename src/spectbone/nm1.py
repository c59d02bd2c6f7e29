"""The real NEMA WG04 whole-body bone scan "NM1" (pydicom-data), for blind denoising beside the phantom.

NM1 has no noiseless truth: the paper's blind-denoising protocol (visual comparison, noise maps) is
all that applies. It is read through the same DICOM and crop code as any hospital study.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("spectbone.nm1")


def nm1_path(path: str = "auto") -> Path:
    """`auto` = pydicom-data's lossless JPEG copy of NM1 (JPEG-LL.dcm)."""
    if path != "auto":
        return Path(path)
    import data_store

    found = Path(data_store.__file__).parent / "data" / "JPEG-LL.dcm"
    if not found.exists():
        raise FileNotFoundError(f"NEMA NM1 not found at {found}: install pydicom-data==1.0.0")
    return found


def nm1_grey(path: str = "auto", size: int = 256) -> tuple[np.ndarray, float]:
    """NM1 cropped shoulder-to-pelvis, resized and grey-mapped like every study: (grey, counts_per_grey)."""
    from spectbone.crop import preprocess_view
    from spectbone.dicom_read import read_nm_images

    images = read_nm_images(nm1_path(path))
    grey, box, cpg, _ = preprocess_view(images[0].counts, size)
    log.info("NM1 crop box rows %d-%d cols %d-%d, %.3g counts per grey level", box.top, box.bottom, box.left,
             box.right, cpg)
    return grey, cpg


def blind_denoise_nm1(path, model_paths, estimator_path, size, device) -> dict:
    """Each learned model blind-denoises NM1; the stage-1 estimator supplies EMANet's level map."""
    from spectbone.infer import denoise_batch, estimate_levels
    from spectbone.models import load_model
    from spectbone.tables import DISPLAY

    grey, _ = nm1_grey(path, size)
    estimator, _ = load_model(estimator_path, map_location=device)
    sigma = estimate_levels(estimator.to(device), grey[None], device)
    log.info("NM1 estimated noise level: %.2f grey levels", float(sigma[0]))
    names, outputs = [], []
    for model_path in model_paths:
        model, meta = load_model(model_path, map_location=device)
        outputs.append(denoise_batch(model.to(device), meta.get("kind", ""), grey[None], sigma, device)[0])
        names.append(DISPLAY.get(Path(model_path).stem, "EMANet"))
    return dict(original=grey, names=np.array(names), denoised=np.stack(outputs), sigma=sigma)
