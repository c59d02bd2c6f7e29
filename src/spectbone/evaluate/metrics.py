"""Image-quality metrics on grey-level images (0..255) and a bootstrap confidence interval.

PSNR = 10 log10(255^2 / MSE); SSIM is Wang et al.'s (2004): a Gaussian window of sigma 1.5 (11 x 11),
population covariances, K1 = 0.01, K2 = 0.03, data_range = 255 (scikit-image with
``gaussian_weights=True, use_sample_covariance=False``); regions smaller than 11 pixels fall back to
the largest odd uniform window that fits. RMSE in grey levels. The metrics compare the floats they are given;
the one scoring rule (clip to [0, 255] like the references) is applied by their caller, ``evaluate.rule``
(docs/design.md, Scoring). Argument order is (reference, test) throughout.
"""

from __future__ import annotations

import numpy as np

DATA_RANGE = 255.0


def _pair(ref, test) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(ref, dtype=np.float64), np.asarray(test, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return a, b


def rmse(ref, test) -> float:
    a, b = _pair(ref, test)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def psnr(ref, test, data_range: float = DATA_RANGE) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical images)."""
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _pair(ref, test)
    return float(peak_signal_noise_ratio(a, b, data_range=data_range))


SSIM_SIGMA = 1.5
SSIM_WINDOW = 11  # skimage's Gaussian window for sigma 1.5 (truncated at 3.5 sigma)


def ssim(ref, test, data_range: float = DATA_RANGE) -> float:
    """Mean SSIM with Wang et al.'s Gaussian window (uniform odd window on regions under 11 pixels)."""
    from skimage.metrics import structural_similarity

    a, b = _pair(ref, test)
    if min(a.shape) >= SSIM_WINDOW:
        return float(structural_similarity(a, b, data_range=data_range, gaussian_weights=True, sigma=SSIM_SIGMA,
                                           use_sample_covariance=False))
    win_size = min(a.shape) - (min(a.shape) + 1) % 2  # largest odd window that fits
    return float(structural_similarity(a, b, data_range=data_range, win_size=win_size, use_sample_covariance=False))


def noise_region_ssim(a, b, box: tuple[int, int, int, int], data_range: float = DATA_RANGE) -> float:
    """SSIM inside a rectangle (paper Table 2): box = (row0, row1, col0, col1), half-open."""
    r0, r1, c0, c1 = (int(v) for v in box)
    a, b = _pair(a, b)
    ra, rb = a[r0:r1, c0:c1], b[r0:r1, c0:c1]
    if min(ra.shape) < 3:
        raise ValueError(f"box {box} gives a region {ra.shape}: need at least 3 x 3 pixels")
    return ssim(ra, rb, data_range=data_range)


def bootstrap_indices(n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """[n_boot, n] indices of n items drawn with replacement, one row per resample.

    Shared by every bootstrap of the package, so that quantities computed on the same rows are paired."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_ci(values, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean and its percentile-bootstrap (1 - alpha) confidence interval."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (float("nan"),) * 3
    mean = float(v.mean())
    if v.size == 1:
        return mean, mean, mean
    means = v[bootstrap_indices(v.size, n_boot, seed)].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return mean, float(lo), float(hi)
