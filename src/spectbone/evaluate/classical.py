"""Classical denoisers: BM3D (the paper's Table 7 baseline) and Anscombe + BM3D for Poisson data.

Units. Our images are grey levels 0..255 and the noise level sigma is in grey levels
(docs/design.md, Noise model). The `bm3d` package (4.0.3) expects intensities on a [0, 1] scale: its
block-matching thresholds are fixed for that scale (profiles.py rescales tau_match by
bs^2 / 255^2), while its hard threshold and Wiener weights scale with sigma_psd. So both functions
divide by the image scale before BM3D and multiply back afterwards; callers pass grey levels.

- :func:`bm3d_denoise` is BM3D as the paper used it: Gaussian BM3D with sigma = the noise level
  (the image-RMS sigma of our signal-dependent Poisson noise, known at test time).
- :func:`anscombe_bm3d` is the variance-stabilised variant for Poisson data (an extra, stronger
  classical reference the paper does not report). Our noise is y = Poisson(k x) / k with
  k = mean(x) / sigma^2, so counts c = k y are Poisson. The caller knows sigma and gets k from the
  noisy image itself, k = mean(y) / sigma^2 (:func:`gain_from_noisy`; E[y] = x, so mean(y) is an
  unbiased estimate of mean(x)). Anscombe f(c) = 2 sqrt(c + 3/8) makes the noise ~N(0, 1); BM3D
  with sigma 1; the exact unbiased inverse (Makitalo & Foi 2011, closed-form approximation) maps
  the estimate of E[f(c)] back to counts; / k gives grey levels.
"""

from __future__ import annotations

import numpy as np

SQRT_3_2 = np.sqrt(1.5)


def _bm3d(z01: np.ndarray, sigma01: float, profile: str = "np") -> np.ndarray:
    """BM3D on one thread: the package's default (num_threads=0, one per core) aggregates in a varying
    order, which changes outputs by up to 0.03 grey levels from run to run (its block matching flips on
    near-ties); single-threaded it is bit-reproducible. Each DAG job owns one core anyway."""
    import bm3d

    settings = {"np": bm3d.BM3DProfile, "refilter": bm3d.BM3DProfileRefilter, "vn": bm3d.BM3DProfileVN,
                "high": bm3d.BM3DProfileHigh}[profile]()
    settings.num_threads = 1
    return np.asarray(bm3d.bm3d(z01, sigma_psd=float(sigma01), profile=settings), dtype=np.float64)


def bm3d_denoise(noisy_grey: np.ndarray, sigma: float, profile: str = "np") -> np.ndarray:
    """BM3D of a grey-level image with noise std `sigma` grey levels; float32 grey levels out."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    z = np.asarray(noisy_grey, dtype=np.float64)
    return (_bm3d(z / 255.0, sigma / 255.0, profile) * 255.0).astype(np.float32)


def gain_from_noisy(noisy_grey: np.ndarray, sigma: float) -> float:
    """Counts per grey level k = mean(y) / sigma^2 of the noise model, estimated from the noisy image."""
    mean = float(np.mean(noisy_grey))
    if sigma <= 0 or mean <= 0:
        raise ValueError(f"need sigma > 0 and a positive image mean (sigma={sigma}, mean={mean})")
    return mean / sigma**2


def anscombe(counts: np.ndarray) -> np.ndarray:
    """Anscombe transform 2 sqrt(c + 3/8): Poisson counts -> approximately unit-variance Gaussian."""
    return 2.0 * np.sqrt(np.clip(counts, 0.0, None) + 0.375)


def inverse_anscombe_unbiased(d: np.ndarray) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse Anscombe (Makitalo & Foi 2011).

    I(D) = D^2/4 + sqrt(3/2)/4 D^-1 - 11/8 D^-2 + 5/8 sqrt(3/2) D^-3 - 1/8, set to 0 for
    D < 2 sqrt(3/8) (the transform of zero counts), where the expansion is not valid.
    """
    d = np.asarray(d, dtype=np.float64)
    safe = np.maximum(d, 2.0 * np.sqrt(0.375))
    out = (0.25 * safe**2 + 0.25 * SQRT_3_2 / safe - 1.375 / safe**2
           + 0.625 * SQRT_3_2 / safe**3 - 0.125)
    return np.where(d < 2.0 * np.sqrt(0.375), 0.0, np.maximum(out, 0.0))


def anscombe_bm3d(noisy_grey: np.ndarray, gain_k: float, profile: str = "np") -> np.ndarray:
    """Poisson denoising of y = Poisson(k x) / k: Anscombe, BM3D (sigma 1), unbiased inverse, / k."""
    if gain_k <= 0:
        raise ValueError(f"gain_k must be > 0, got {gain_k}")
    d = anscombe(gain_k * np.asarray(noisy_grey, dtype=np.float64))
    lo, span = float(d.min()), float(d.max() - d.min()) or 1.0
    d_hat = _bm3d((d - lo) / span, 1.0 / span, profile) * span + lo
    return (inverse_anscombe_unbiased(d_hat) / gain_k).astype(np.float32)
