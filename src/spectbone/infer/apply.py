"""Applying trained networks to grey images: the stage-1 level estimate, then the denoiser.

Shared by test-set inference, blind denoising of NM1 and `spectbone denoise`, so that every path
feeds the networks exactly as training did (grey 0..255 scaled to [0, 1], level map sigma/255).
"""

from __future__ import annotations

import numpy as np
import torch

from spectbone.noise.poisson import MAX_GREY

DIVISOR = 8  # the U-Nets pool three times
MARGIN = 16  # mirrored rows/columns around a frame: its own borders never meet the networks' zero padding


def mirror_pad(img: np.ndarray, m: int = DIVISOR, margin: int = MARGIN) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Mirror-pad by `margin`, then up to a multiple of `m`; returns (padded, slices of the frame).

    Mirroring, not edge replication: a run of identical copied rows is a noise-free stripe that the
    network turns into a band, and a frame border inside the padded image sees real-looking
    surroundings instead of the convolutions' zeros (which made a bright rim). Shared by both model
    families' whole-frame inference."""
    h, w = img.shape
    ph, pw = margin + (-(h + 2 * margin)) % m, margin + (-(w + 2 * margin)) % m
    inside = (slice(margin, margin + h), slice(margin, margin + w))
    return np.pad(img, ((margin, ph), (margin, pw)), mode="symmetric"), inside


@torch.no_grad()
def estimate_levels(estimator, images: np.ndarray, device, batch: int = 8) -> np.ndarray:
    """Stage-1 sigma estimates (grey levels) for grey images [N, H, W]."""
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i:i + batch] / MAX_GREY).float()[:, None].to(device)
        out.append(estimator.sigma_from_logits(estimator(x)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


@torch.no_grad()
def denoise_batch(model, kind: str, images: np.ndarray, sigmas: np.ndarray, device, batch: int = 8) -> np.ndarray:
    """Denoise grey images [N, H, W]; EMANet gets the constant level map sigma/255."""
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i:i + batch] / MAX_GREY).float()[:, None].to(device)
        level_map = None
        if kind == "emanet":
            s = torch.as_tensor(sigmas[i:i + batch] / MAX_GREY, dtype=torch.float32, device=device)
            level_map = s.view(-1, 1, 1, 1).expand_as(x)
        out.append((model(x, level_map) * MAX_GREY)[:, 0].float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)
