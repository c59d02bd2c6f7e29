"""HBNE and DWTNE on Gaussian noise of known sigma (their own model) and on our Poisson noise."""

from __future__ import annotations

import numpy as np
import pytest

from spectbone.noise.poisson import add_poisson_level_noise
from spectbone.noise.estimators import dwtne, hbne, local_std


def _flatish(size=128):
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 60 + 120 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.1)
    img[40:60, 30:90] += 50  # one bright bar: edges in the upper tail of the histogram
    return img


def test_local_std_of_white_noise():
    x = np.random.default_rng(0).normal(0, 7.0, (200, 200))
    assert np.median(local_std(x)) == pytest.approx(7.0, rel=0.05)


@pytest.mark.parametrize("sigma", [5.0, 15.0, 30.0])
def test_estimators_on_gaussian_noise(sigma):
    img = _flatish() + np.random.default_rng(int(sigma)).normal(0, sigma, (128, 128))
    assert hbne(img) == pytest.approx(sigma, rel=0.15)
    assert dwtne(img) == pytest.approx(sigma, rel=0.1)


def test_estimators_on_poisson_level_noise_are_naive():
    # signal-dependent noise: the Gaussian estimators give a typical local level, below the RMS
    x = _flatish()
    x[:, :40] = 5.0  # a dark region, like soft tissue/background in a bone scan
    y = add_poisson_level_noise(x, 20.0, seed=0)
    for est in (hbne(y), dwtne(y)):
        assert 5.0 < est < 22.0


def test_constant_image():
    assert hbne(np.zeros((32, 32))) == 0.0
    assert dwtne(np.full((32, 32), 9.0)) == pytest.approx(0.0, abs=1e-9)
