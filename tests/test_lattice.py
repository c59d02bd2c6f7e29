"""The synthetic noise's lattice gives its level away; rounding and a sub-lattice dither break it."""

from __future__ import annotations

import numpy as np
import pytest

from spectbone.noise.lattice import AS_DRAWN, DITHERED, ROUNDED, break_lattice, lattice_level
from spectbone.noise.poisson import PoissonLevelNoise, add_poisson_level_noise


def _scan(seed=0, size=64):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    body = np.clip(40 + 180 * np.exp(-((yy - 32) ** 2 + (xx - 20) ** 2) / 60) + rng.normal(0, 3, (size, size)), 0, 255)
    return np.where(xx < size - 16, body, 0.3)  # a dark background strip, as around a patient


@pytest.mark.parametrize("level", [5, 20, 40])
def test_the_lattice_gives_the_level_away_until_dithered(level):
    x = _scan()
    spacing = 1.0 / PoissonLevelNoise(level).gain(x)
    rng = np.random.default_rng(1)
    noisy = add_poisson_level_noise(x, level, seed=2)
    assert lattice_level(noisy) == pytest.approx(level, rel=0.05)  # read off, no noise estimated
    dithered = break_lattice(noisy, DITHERED, spacing, rng)
    assert np.abs(dithered - noisy).max() <= spacing / 2 + 1e-4  # within one lattice cell
    assert abs(lattice_level(dithered) - level) > 0.3 * level  # the read-off is gone


def test_rounding_gives_8_bit_images_and_as_drawn_is_untouched():
    noisy = add_poisson_level_noise(_scan(), 10, seed=3)
    rounded = break_lattice(noisy, ROUNDED, 1.0, np.random.default_rng(0))
    assert np.array_equal(rounded, np.clip(np.round(noisy), 0, 255)) and rounded.max() <= 255
    assert np.array_equal(break_lattice(noisy, AS_DRAWN, 1.0, np.random.default_rng(0)), noisy)
    with pytest.raises(ValueError, match="unknown lattice variant"):
        break_lattice(noisy, "blurred", 1.0, np.random.default_rng(0))
