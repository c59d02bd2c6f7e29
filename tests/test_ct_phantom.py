"""Simulated low-dose CT (ct_phantom.py): plausible HU, quarter dose noisier, size-independent noise."""

from __future__ import annotations

import time

import numpy as np

from spectbone.data.ct_phantom import LowDoseCT, phantom_slice, simulate_pairs, window


def test_phantom_hu_ranges_plausible():
    for seed, z in [(0, 0.15), (1, 0.5), (2, 0.8)]:
        hu = phantom_slice(128, np.random.default_rng(seed), z=z)
        assert hu.shape == (128, 128) and hu.dtype == np.float32
        assert -1001 <= hu.min() and hu.max() <= 1500
        assert (hu < -950).mean() > 0.2  # air around the body
        assert hu.max() > 700  # bone (vertebral cortex, ribs)
        body = hu > -500
        assert 0.2 < body.mean() < 0.8
        assert -150 < np.median(hu[body]) < 80 or z < 0.3  # fat and soft tissue dominate the abdomen
    thorax = phantom_slice(128, np.random.default_rng(3), z=0.1)
    assert ((thorax > -950) & (thorax < -700)).mean() > 0.05  # lungs


def test_slices_vary_with_seed_and_are_reproducible():
    a = phantom_slice(64, np.random.default_rng(5))
    b = phantom_slice(64, np.random.default_rng(5))
    c = phantom_slice(64, np.random.default_rng(6))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_quarter_dose_noisier_than_full_dose():
    sim = LowDoseCT(size=128)
    full, quarter, truth = sim.pair(0, z=0.6, return_truth=True)
    ref = sim.noiseless(truth)
    body = truth > -500
    e_full = np.sqrt(np.mean((full - ref)[body] ** 2))
    e_quarter = np.sqrt(np.mean((quarter - ref)[body] ** 2))
    assert 5 < e_full < 60
    assert 1.7 < e_quarter / e_full < 2.4  # variance ~ 1/dose: ratio 2 expected
    assert abs(np.mean((full - ref)[body])) < 5  # no bias
    for img in (full, quarter):  # still a CT image
        assert -1300 < img.min() and img.max() < 2000
        assert abs(np.median(img[body]) - np.median(truth[body])) < 30


def test_noise_level_independent_of_size():
    stds = []
    for size in (64, 128):
        sim = LowDoseCT(size=size)
        c = (np.arange(size) - (size - 1) / 2) * sim.pixel_mm
        X, Y = np.meshgrid(c, c)
        water = np.where(np.hypot(X, Y) < 150, 0.0, -1000.0)
        sino = sim.project(water)
        noisy = sim.reconstruct(sim.noisy_sinogram(sino, 0.25, np.random.default_rng(1)))
        centre = np.hypot(X, Y) < 80
        stds.append(float((noisy - sim.noiseless(water))[centre].std()))
    assert 0.75 < stds[0] / stds[1] < 1.33, stds


def test_pair_fast_and_window():
    t = time.perf_counter()
    full, quarter = next(simulate_pairs(1, 128, seed=0))
    assert time.perf_counter() - t < 2.0
    w = window(quarter)
    assert w.dtype == np.float32 and w.min() >= 0 and w.max() <= 1
    assert np.isclose(window(np.array([40.0]))[0], 0.5)
