"""metrics.py against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from spectbone.evaluate.metrics import bootstrap_ci, noise_region_ssim, psnr, rmse, ssim


def test_psnr_rmse_of_known_mse():
    a = np.full((16, 16), 100.0)
    b = a.copy()
    b[::2] += 10.0  # half the pixels off by 10: MSE 50
    assert rmse(a, b) == pytest.approx(np.sqrt(50.0))
    assert psnr(a, b) == pytest.approx(10 * np.log10(255.0**2 / 50.0))
    assert psnr(a, a + 255.0) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        rmse(a, a[:8])


def test_ssim_identity_and_order():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (32, 32))
    assert ssim(a, a) == pytest.approx(1.0)
    s_small = ssim(a, a + rng.normal(0, 5, a.shape))
    s_big = ssim(a, a + rng.normal(0, 40, a.shape))
    assert 1.0 > s_small > s_big
    # constant images: SSIM = (C1)(C2) / ((mu_a^2 + mu_b^2 + C1)(C2)) by hand
    c1 = (0.01 * 255) ** 2
    x, y = np.full((16, 16), 100.0), np.full((16, 16), 120.0)
    assert ssim(x, y) == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1), rel=1e-6)


def test_ssim_is_wang_gaussian_window_with_population_covariance():
    """Wang et al. (2004) by hand: Gaussian weights sigma 1.5 (11 x 11), biased (population) moments."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(2)
    a = rng.uniform(0, 255, (40, 40))
    b = a + rng.normal(0, 30, a.shape)
    g = lambda x: gaussian_filter(x, 1.5, truncate=3.5)  # noqa: E731 - the window, as a filter
    mu_a, mu_b = g(a), g(b)
    var_a, var_b, cov = g(a * a) - mu_a**2, g(b * b) - mu_b**2, g(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    assert ssim(a, b) == pytest.approx(s[5:-5, 5:-5].mean(), rel=1e-6)
    assert 0.0 < ssim(a[:8, :8], b[:8, :8]) < 1.0  # under 11 pixels: the uniform-window fallback


def test_noise_region_ssim_uses_only_the_box():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (40, 40))
    b = a.copy()
    b[20:, :] = 0  # differs only outside the box
    assert noise_region_ssim(a, b, (0, 20, 0, 40)) == pytest.approx(1.0)
    assert noise_region_ssim(a, b, (10, 30, 0, 40)) < 0.9
    with pytest.raises(ValueError):
        noise_region_ssim(a, b, (0, 2, 0, 40))


def test_bootstrap_ci():
    v = np.random.default_rng(2).normal(10, 2, 400)
    mean, lo, hi = bootstrap_ci(v, n_boot=2000, seed=0)
    assert mean == pytest.approx(v.mean())
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert lo < mean < hi
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert bootstrap_ci(v, seed=3) == bootstrap_ci(v, seed=3)
    assert bootstrap_ci([5.0]) == (5.0, 5.0, 5.0)
