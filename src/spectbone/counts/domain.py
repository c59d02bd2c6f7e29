"""Counts in, counts out: how the count-domain family feeds its networks.

- Count scale ``S``: the mean count of the body (pixels whose heavily blurred counts exceed a tenth of
  the blurred frame's 99.5th percentile) times ``UNIT``. The network sees u = counts / S, so bone sits
  near 1 whatever the acquisition time, camera or matrix; a thinned copy (fraction f) has S scaled by f.
- Level map from the counts' own Poisson statistics: a count's variance is its mean, so the noise
  standard deviation of u at each pixel is sqrt(lambda) / S, estimated by sqrt(blur(u) / S). This is
  the stage-1 level map of this family: exact in expectation for Poisson data, free, and unaffected by
  a camera or organ the network never saw (a learned stage-1 network is what misread NM1 in the
  paper-protocol family).
- Residual base: the network predicts a correction to the input smoothed by a Gaussian of
  ``base_sigma`` px (`estimate`), not to the raw counts: EMANet's own residual form (denoised = base -
  predicted noise) with a low-pass base. Its zero-initialised head makes a fresh model a Gaussian
  filter, so a short CPU training starts where a classical filter ends instead of at the raw counts.
  The network still sees the raw counts and the level map; 0 turns the base off (the paper's form).
- Whole frames are denoised at native sampling inside a mirrored margin, as the mean of the estimates
  of the frame and of its left-right mirror image (a left-right flip is a training augmentation, so
  both are in-distribution; averaging removes part of the error the two do not share), mapped back by S; the
  output is clipped at 0 (expected counts cannot be negative) and is exactly 0 where the input has no
  count in a whole neighbourhood (outside the patient).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

UNIT = 8.0  # S = UNIT x body mean: bone peaks (about 8-10x the body mean on NM1) land near 1
BODY_BLUR = 4.0  # px: blur that finds the body whatever the count level
BODY_SHARE = 0.1  # body = blurred counts above this share of the blurred 99.5th percentile
LEVEL_BLUR = 1.0  # px: the local mean under the Poisson level map
FAMILY = "count-domain"
BASE_SIGMA = 1.5  # px, default Gaussian of the residual base


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B, 1, H, W] with mirrored borders (truncated at 3 sigma)."""
    if sigma <= 0:
        return x
    r = max(1, int(3 * sigma + 0.5))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) ** 2 / (2 * sigma**2))
    k = k / k.sum()
    x = F.pad(x, (r, r, r, r), mode="reflect")
    return F.conv2d(F.conv2d(x, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))


def estimate(model, u: torch.Tensor, level: torch.Tensor, base_sigma: float) -> torch.Tensor:
    """The count-domain EMANet's estimate of expected counts / S: the smoothed input minus a correction."""
    return gaussian_blur(u, base_sigma) - model.predict_noise(u, level)


def body_mask(counts: np.ndarray) -> np.ndarray:
    """Pixels inside the patient (and its near scatter), from heavily blurred counts."""
    blurred = ndi.gaussian_filter(np.asarray(counts, np.float64), BODY_BLUR)
    if not np.any(blurred > 0):
        return np.zeros(blurred.shape, bool)
    return blurred > BODY_SHARE * np.percentile(blurred[blurred > 0], 99.5)


def count_scale(counts: np.ndarray) -> float:
    """S = UNIT x the mean count of the body; 0 for a frame without counts."""
    c = np.asarray(counts, np.float64)
    body = body_mask(c)
    return float(UNIT * c[body].mean()) if body.any() else 0.0


def level_map(u: np.ndarray, scale: float) -> np.ndarray:
    """Poisson noise standard deviation of u = counts / S per pixel: sqrt(blur(u) / S)."""
    local = np.clip(ndi.gaussian_filter(np.asarray(u, np.float64), LEVEL_BLUR), 0.0, None)
    return np.sqrt(local / scale).astype(np.float32)


def network_input(counts: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(u, level map, S) of a count image; ``scale`` given when the image is a window of a larger frame."""
    s = count_scale(counts) if scale is None else float(scale)
    if s <= 0:
        z = np.zeros(np.shape(counts), np.float32)
        return z, z, 0.0
    u = (np.asarray(counts, np.float64) / s).astype(np.float32)
    return u, level_map(u, s), s


def empty_neighbourhood(counts: np.ndarray, radius: int = 4) -> np.ndarray:
    """Pixels with no count anywhere within `radius` (a square): outside the patient and the scatter."""
    return ~ndi.binary_dilation(np.asarray(counts) > 0, structure=np.ones((3, 3), bool), iterations=radius)


@torch.no_grad()
def denoise_frame(model, counts: np.ndarray, device, base_sigma: float) -> np.ndarray:
    """Expected counts of one frame (same scale as the input) by a count-domain EMANet."""
    from spectbone.infer.apply import mirror_pad

    counts = np.asarray(counts, np.float32)
    u, m, s = network_input(counts)
    if s <= 0:
        return np.zeros_like(counts)
    (pu, inside), (pm, _) = mirror_pad(u), mirror_pad(m)
    x = torch.from_numpy(pu)[None, None].to(device)
    lv = torch.from_numpy(pm)[None, None].to(device)
    x, lv = torch.cat([x, x.flip(-1)]), torch.cat([lv, lv.flip(-1)])  # the frame and its mirror image
    both = estimate(model, x, lv, base_sigma)
    out = (0.5 * (both[0, 0] + both[1, 0].flip(-1))).float().cpu().numpy()[inside]
    out = np.clip(out * s, 0.0, None).astype(np.float32)
    out[empty_neighbourhood(counts)] = 0.0
    return out
