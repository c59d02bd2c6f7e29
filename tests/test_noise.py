"""The paper's noise model: Poisson with image RMS sigma, reproducible, never clipped."""

import numpy as np
import pytest

from spectbone.evaluate.metrics import psnr
from spectbone.noise.poisson import PoissonLevelNoise, add_poisson_level_noise, expected_noisy_psnr, level_map, noise_seed


@pytest.fixture(scope="module")
def image():
    """A bone-scan-like grey image: dim body, brighter skeleton, a few hot spots."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    body = 40 * np.exp(-(((xx - 64) / 40.0) ** 2 + ((yy - 64) / 60.0) ** 2))
    spine = 120 * np.exp(-(((xx - 64) / 4.0) ** 2))
    spots = sum(230 * np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / 9.0)) for cx, cy in rng.integers(20, 108, (5, 2)))
    return np.clip(body + spine * (body > 5) + spots, 0, 255).astype(np.float32)


@pytest.mark.parametrize("sigma", [10, 15, 20, 25, 30, 35, 40])
def test_noisy_psnr_follows_sigma(image, sigma):
    """Noisy PSNR within 0.3 dB of 20 log10(255 / sigma) (the paper's Table 7 'noisy' row, 10..40)."""
    values = [psnr(add_poisson_level_noise(image, sigma, seed), image) for seed in range(8)]
    assert abs(np.mean(values) - expected_noisy_psnr(sigma)) < 0.3


def test_noise_rms_equals_sigma(image):
    noisy = add_poisson_level_noise(image, 20, seed=1)
    assert np.sqrt(np.mean((noisy - image) ** 2)) == pytest.approx(20, rel=0.03)


def test_signal_dependent_and_unclipped(image):
    noisy = add_poisson_level_noise(image, 40, seed=2)
    assert noisy.max() > 255  # never clipped
    assert not np.allclose(noisy, np.round(noisy))  # never rounded to grey levels
    bright, dark = image > 150, (image > 5) & (image < 30)
    assert np.std((noisy - image)[bright]) > 2 * np.std((noisy - image)[dark])


def test_reproducible_and_seed_sensitive(image):
    a = add_poisson_level_noise(image, 15, noise_seed(0, 3, 15))
    b = add_poisson_level_noise(image, 15, noise_seed(0, 3, 15))
    c = add_poisson_level_noise(image, 15, noise_seed(0, 3, 15, epoch=1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_gain_and_level_map(image):
    noise = PoissonLevelNoise(10)
    assert noise.gain(image) == pytest.approx(image.mean() / 100)
    plane = level_map(25, (4, 4))
    assert plane.dtype == np.float32 and np.allclose(plane, 25 / 255)
    with pytest.raises(ValueError):
        PoissonLevelNoise(0).gain(image)
