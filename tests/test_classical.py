"""BM3D and Anscombe + BM3D on Poisson-level noise (classical.py)."""

from __future__ import annotations

import numpy as np
import pytest

from spectbone.evaluate.classical import (anscombe, anscombe_bm3d, bm3d_denoise, gain_from_noisy,
                                 inverse_anscombe_unbiased)
from spectbone.evaluate.metrics import psnr
from spectbone.noise.poisson import add_poisson_level_noise


def _smooth_image(size=96):
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 40 + 140 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.45) ** 2) / 0.06)
    img += 30 * np.sin(5 * xx) * np.cos(3 * yy)
    img[((xx - 0.25) ** 2 + (yy - 0.7) ** 2) < 0.006] += 60  # a "lesion"
    return img


@pytest.fixture(scope="module")
def clean_noisy():
    x = _smooth_image()
    return x, add_poisson_level_noise(x, 20.0, seed=0)


def test_bm3d_improves_psnr(clean_noisy):
    x, y = clean_noisy
    d = bm3d_denoise(y, 20.0)
    assert d.shape == y.shape and d.dtype == np.float32
    assert psnr(x, d) > psnr(x, y) + 6.0
    with pytest.raises(ValueError):
        bm3d_denoise(y, 0.0)


def test_anscombe_bm3d_improves_psnr_and_preserves_mean(clean_noisy):
    x, y = clean_noisy
    k = gain_from_noisy(y, 20.0)
    assert k == pytest.approx(x.mean() / 400.0, rel=0.02)
    d = anscombe_bm3d(y, k)
    assert psnr(x, d) > psnr(x, y) + 6.0
    assert d.mean() == pytest.approx(x.mean(), rel=0.01)


def test_inverse_anscombe_is_unbiased():
    rng = np.random.default_rng(0)
    for lam in (1.0, 3.0, 10.0, 50.0):
        c = rng.poisson(lam, 400_000)
        assert inverse_anscombe_unbiased(np.array(anscombe(c).mean())) == pytest.approx(lam, rel=0.01)
        if lam >= 10:  # the transform stabilises the variance only for moderate counts
            assert anscombe(c).std() == pytest.approx(1.0, abs=0.03)
    assert inverse_anscombe_unbiased(np.array([0.0, 1.0])).tolist() == [0.0, 0.0]
