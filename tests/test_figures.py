"""Figures and Table 2: their protocol pieces (curve shape, caption, zoom windows, noise region).

That each figure and table runs on its declared inputs alone is checked, for every reporting rule,
in tests/test_workflow.py (test_reporting_job_reads_only_its_declared_inputs).
"""


import numpy as np
import pandas as pd
import pytest

from spectbone.paper import table2 as t2
from spectbone.paper import zooms



def test_curve_shape_is_read_from_the_numbers():
    sem = np.full(5, 0.01)
    assert t2.shape_of_curve([0, 5, 10, 20, 40], [0.38, 0.42, 0.46, 0.40, 0.30], sem) == "rises then falls"
    assert t2.shape_of_curve([0, 5, 10, 20, 40], [0.9, 0.7, 0.5, 0.3, 0.1], sem) == "falls"
    assert t2.shape_of_curve([0, 5, 10, 20, 40], [0.1, 0.2, 0.3, 0.4, 0.5], sem) == "rises"
    assert t2.shape_of_curve([0, 5, 10, 20, 40], [0.40, 0.41, 0.40, 0.40, 0.40], sem) == "flat"


def test_caption_follows_the_table():
    table = pd.DataFrame({"noise_level": [0, 5, 10], "ssim": [0.3, 0.5, 0.2], "ssim_sd": [0.0, 0.01, 0.01],
                          "n_draws": [1, 20, 20], "noise_sd": [1.0, 5.0, 10.0], "paper_ssim": [0.382, 0.406, 0.440]})
    text = " ".join(t2.caption(table, high_sd=3.0))
    assert "peaks at level 5" in text and "rises then falls" in text and "at level 2.5" in text


def _body(size, seed=0):
    """A crude anterior view: trunk, spine, a lesion on the left chest, Poisson noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    trunk = 60.0 * ((np.abs(xx - 0.5) < 0.38) & (yy > 0.02))
    spine = 120.0 * np.exp(-((xx - 0.5) / 0.03) ** 2)
    lesion = (np.hypot(xx - 0.3, yy - 0.3) < 0.04).astype(np.uint8)
    image = np.random.default_rng(seed).poisson(trunk + spine + 100.0 * lesion).astype(np.float32)
    return image, lesion


@pytest.mark.parametrize("size", [64, 128, 256])
def test_zoom_windows_follow_the_anatomy_at_every_size(size):
    image, lesion = _body(size)
    lbox = zooms.lesion_box(lesion)
    r0, r1, c0, c1 = lbox
    assert r1 - r0 == zooms.zoom_side(image.shape) and r0 <= 0.3 * size <= r1 and c0 <= 0.3 * size <= c1
    rbox = zooms.ribs_box(image, avoid=lbox)
    assert (rbox[2] + rbox[3]) / 2 > 0.5 * size, "ribs window on the side away from the lesion"
    assert rbox[0] < 0.5 * size, "ribs window in the upper chest"
    assert zooms.lesion_box(np.zeros_like(lesion)) is None


@pytest.mark.parametrize("size", [64, 128])
def test_noise_region_is_inside_both_bodies_and_scales_with_the_image(size):
    low, _ = _body(size, seed=1)
    high, _ = _body(size, seed=2)
    r0, r1, c0, c1 = t2.noise_region_box(low, high)
    assert r1 - r0 == c1 - c0 == t2.region_side(low.shape)
    assert low[r0:r1, c0:c1].mean() > 20 and high[r0:r1, c0:c1].mean() > 20
