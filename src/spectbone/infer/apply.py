"""Applying trained networks to grey images: the stage-1 level estimate, then the denoiser.

Shared by test-set inference, blind denoising of NM1 and `spectbone denoise`, so that every path
feeds the networks exactly as training did (grey 0..255 scaled to [0, 1], level map sigma/255).
"""

from __future__ import annotations

import numpy as np
import torch

from spectbone.noise.poisson import MAX_GREY


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
