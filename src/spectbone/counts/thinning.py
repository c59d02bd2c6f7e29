"""Binomial count splitting: train and score on real counts without any clean image.

For counts c ~ Poisson(lambda), y1 ~ Binomial(c, p) and y2 = c - y1 are independent Poisson with
means p lambda and (1 - p) lambda. For any estimate x of p lambda made from y1 alone, with
k = (1 - p) / p,

    E[(k x - y2)^2 - y2] = E[(k x - (1 - p) lambda)^2]

because y2 is independent of x with variance equal to its mean. The left side needs only the counts,
so it scores any method on a real scan (per pixel, in the held-out part's count units); averaged
over pixels, tiles and thinning seeds it is an unbiased estimate of the mean squared error of the
scaled estimate against the held-out part's expected counts.
"""

from __future__ import annotations

import numpy as np

#: count fractions of the dose-reduction table (share of the acquired counts the method sees)
FRACTIONS = (0.5, 0.25, 0.1)


def integer_counts(counts: np.ndarray) -> np.ndarray:
    """Counts as int64, refusing what cannot be Poisson counts (negative or non-integer values)."""
    c = np.asarray(counts)
    if c.size and (np.any(c < 0) or not np.all(np.isfinite(c))):
        raise ValueError("counts must be finite and non-negative")
    ci = np.rint(c).astype(np.int64)
    if c.size and np.any(np.abs(ci - c) > 1e-3):
        raise ValueError("counts must be whole numbers (a count image, not a rescaled or filtered one)")
    return ci


def binomial_split(counts: np.ndarray, p: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(y1, y2): y1 ~ Binomial(counts, p) and y2 = counts - y1, as float32."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"the kept fraction p must be in (0, 1), got {p}")
    c = integer_counts(counts)
    y1 = rng.binomial(c, p)
    return y1.astype(np.float32), (c - y1).astype(np.float32)


def excess_error_map(estimate: np.ndarray, held_out: np.ndarray, p: float) -> np.ndarray:
    """Per pixel (k x - y2)^2 - y2: unbiased for (k x - (1 - p) lambda)^2, in held-out count units^2."""
    k = (1.0 - p) / p
    x = np.asarray(estimate, dtype=np.float64)
    y2 = np.asarray(held_out, dtype=np.float64)
    if x.shape != y2.shape:
        raise ValueError(f"estimate {x.shape} and held-out part {y2.shape} differ in shape")
    return (k * x - y2) ** 2 - y2


def true_error_map(estimate: np.ndarray, expected: np.ndarray, p: float) -> np.ndarray:
    """(k x - (1 - p) lambda)^2: what :func:`excess_error_map` estimates, where the truth lambda is known."""
    k = (1.0 - p) / p
    return (k * np.asarray(estimate, np.float64) - (1.0 - p) * np.asarray(expected, np.float64)) ** 2


def tile_grid(shape: tuple[int, int], tile: int) -> list[tuple[slice, slice]]:
    """Non-overlapping square tiles covering the frame (the last row/column of tiles may be smaller)."""
    h, w = shape
    return [(slice(r, min(r + tile, h)), slice(c, min(c + tile, w)))
            for r in range(0, h, tile) for c in range(0, w, tile)]


def tile_sums(error_map: np.ndarray, tiles: list[tuple[slice, slice]]) -> tuple[np.ndarray, np.ndarray]:
    """(sum of the map, pixel count) per tile: a frame's mean is sum(sums) / sum(pixels)."""
    sums = np.array([float(error_map[t].sum()) for t in tiles])
    pixels = np.array([error_map[t].size for t in tiles], dtype=np.float64)
    return sums, pixels


def bootstrap_mean(sums: np.ndarray, pixels: np.ndarray, n_boot: int = 1000, seed: int = 0,
                   alpha: float = 0.05) -> tuple[float, float, float]:
    """(mean per pixel, lo, hi) of a ratio estimate over units (tile x seed), resampling the units.

    Each unit carries its error sum and its pixel count, so the point estimate is the pooled per-pixel
    mean and every resample is too; the interval is the percentile bootstrap over units."""
    sums, pixels = np.asarray(sums, np.float64).ravel(), np.asarray(pixels, np.float64).ravel()
    if sums.size == 0 or pixels.sum() <= 0:
        return (float("nan"),) * 3
    mean = float(sums.sum() / pixels.sum())
    if sums.size == 1:
        return mean, mean, mean
    idx = np.random.default_rng(seed).integers(0, sums.size, size=(n_boot, sums.size))
    means = sums[idx].sum(axis=1) / pixels[idx].sum(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return mean, float(lo), float(hi)
