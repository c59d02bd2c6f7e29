"""Classical noise-level estimators compared in the paper's Table 6: HBNE and DWTNE.

Both take one noisy image in grey levels (0..255) and return a single sigma in grey levels. Both
assume additive white Gaussian noise of one sigma everywhere, and the paper applies them as they
are to Poisson-noisy bone scans; so do we (no adaptation to our noise model). Our noise is Poisson,
signal dependent, with image RMS sigma (docs/design.md, Noise model): its local std is sqrt(x / k), large in bright
bone and small in the dark soft tissue and background. A Gaussian estimator therefore reports a
typical *local* noise level, weighted toward the flat (mostly dark) regions it relies on, and
underestimates the image-RMS sigma, more so the larger the share of dark pixels. That is the
behaviour Table 6 is meant to show against the learned estimator.

- :func:`hbne` (histogram-based noise estimation): the local standard deviation in every w x w
  window (default 7 x 7, sliding, Bessel-corrected), the histogram of those values, and its mode
  (the peak bin, on a lightly smoothed histogram) as sigma. Edges and texture put their windows in
  the long upper tail; the peak is made by the homogeneous ("flat") windows, whose std is the noise.
  Windows that are exactly constant (zero variance: empty background, clipped areas) carry no
  noise sample and are left out of the histogram.
- :func:`dwtne` (discrete-wavelet-transform noise estimation, Donoho's MAD estimator):
  sigma = median(|HH1|) / 0.6745 over the finest diagonal detail coefficients of a Daubechies
  wavelet transform; this is exactly ``skimage.restoration.estimate_sigma`` (db2), which, like
  HBNE above, leaves out exactly-zero coefficients (constant areas); a constant image gives 0.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter


def local_std(img: np.ndarray, window: int = 7) -> np.ndarray:
    """Sliding-window standard deviation (ddof=1) over the valid interior (no border windows)."""
    x = np.asarray(img, dtype=np.float64)
    n = window * window
    mean = uniform_filter(x, window, mode="reflect")
    mean_sq = uniform_filter(x * x, window, mode="reflect")
    var = np.clip(mean_sq - mean * mean, 0.0, None) * n / (n - 1)
    h = window // 2
    return np.sqrt(var[h:x.shape[0] - h, h:x.shape[1] - h])


def hbne(img: np.ndarray, window: int = 7, bins: int = 200, exclude_constant: bool = True) -> float:
    """Histogram-based noise estimate: the mode of the local-std histogram (grey levels)."""
    s = local_std(img, window).ravel()
    if exclude_constant:
        s = s[s > 1e-6 * max(1.0, float(np.abs(img).max()))]
    if s.size == 0:
        return 0.0
    hi = float(np.percentile(s, 99.0))
    if hi <= 0:
        return 0.0
    counts, edges = np.histogram(s, bins=bins, range=(0.0, hi))
    counts = gaussian_filter1d(counts.astype(np.float64), 1.5, mode="nearest")
    k = int(np.argmax(counts))
    return float(0.5 * (edges[k] + edges[k + 1]))


def dwtne(img: np.ndarray) -> float:
    """Wavelet MAD noise estimate (grey levels): skimage.restoration.estimate_sigma, db2, HH1."""
    from skimage.restoration import estimate_sigma

    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-zero detail band: no noise sample
        sigma = float(estimate_sigma(np.asarray(img, dtype=np.float64), channel_axis=None))
    return sigma if np.isfinite(sigma) else 0.0
