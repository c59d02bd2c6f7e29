"""Screening rules: on the real NM1 scan (kept, and made bad in known ways) and against the
phantom cohort's problem labels (precision and recall >= 0.9), through the real CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from conftest import phantom_through_preprocess

from spectbone.cli import main
from spectbone.prep.crop import find_landmarks
from spectbone.dicom.read import read_nm_images
from spectbone.prep.screen import EXTRAVASATION, LOW_COUNTS, TRUNCATED, URINE, screen_view


@pytest.fixture(scope="module")
def nm1() -> np.ndarray:
    import data_store

    path = Path(data_store.__file__).resolve().parent / "data" / "JPEG-LL.dcm"
    return read_nm_images(path)[0].counts


def _with_spot(counts: np.ndarray, row: int, col: int, share: float, sigma: float = 3.0, seed: int = 0):
    """Add a compact hot source holding `share` of the final counts, Poisson sampled."""
    spot = np.zeros_like(counts, dtype=np.float64)
    spot[row, col] = 1.0
    spot = ndi.gaussian_filter(spot, sigma)
    total = counts.sum(dtype=np.float64)
    spot *= share * total / (1 - share) / spot.sum()
    rng = np.random.default_rng(seed)
    return (counts + rng.poisson(spot)).astype(np.float32)


def test_nm1_is_kept(nm1):
    verdict = screen_view(nm1)
    assert verdict.keep and verdict.reason == ""


def test_nm1_thinned_has_too_few_counts(nm1):
    rng = np.random.default_rng(1)
    thin = rng.binomial(nm1.astype(np.int64), 0.08).astype(np.float32)  # ~290k counts
    verdict = screen_view(thin)
    assert not verdict.keep and verdict.problem == LOW_COUNTS and "too few counts" in verdict.reason


@pytest.mark.parametrize("rows", [slice(0, 240), slice(420, None)])
def test_nm1_cut_scan_is_truncated(nm1, rows):
    cut = nm1.copy()
    cut[rows] = 0
    verdict = screen_view(cut)
    assert not verdict.keep and verdict.problem == TRUNCATED and "truncated" in verdict.reason


def test_nm1_injection_site_is_extravasation(nm1):
    lm = find_landmarks(nm1)
    # antecubital fossa of the arm lying along the trunk: NM1's left arm at column ~25, row ~380
    hot = _with_spot(nm1, 380, 25, 0.05)
    verdict = screen_view(hot)
    assert not verdict.keep and verdict.problem == EXTRAVASATION, verdict.reason
    assert lm.shoulder < 380 < lm.pelvis_bottom


def test_nm1_urine_on_thigh_and_table(nm1):
    thigh = _with_spot(nm1, 545, 90, 0.01, sigma=2.0)  # upper thigh, below the crotch
    verdict = screen_view(thigh)
    assert not verdict.keep and verdict.problem == URINE, verdict.reason
    table = _with_spot(nm1, 700, 245, 0.025, sigma=2.0, seed=3)  # spill on the table by the shin
    verdict = screen_view(table)
    assert not verdict.keep and verdict.problem == URINE, verdict.reason


def _with_spots(counts: np.ndarray, spots, seed: int = 0) -> np.ndarray:
    """Add several compact sources (row, col, share of the counts, sigma), Poisson sampled."""
    src = np.zeros(counts.shape)
    total = counts.sum(dtype=np.float64)
    for row, col, share, sigma in spots:
        s = np.zeros(counts.shape)
        s[row, col] = 1.0
        s = ndi.gaussian_filter(s, sigma)
        src += s / s.sum() * share * total
    return (counts + np.random.default_rng(seed).poisson(src)).astype(np.float32)


@pytest.mark.parametrize("name, spots, problem", [
    # not what the phantom's problem generator draws: a drop on the table beside the shoulder,
    # urine in the groin next to the bladder, a splash of three droplets on the thigh, a pool by the feet
    ("table beside the shoulder", [(230, 252, 0.015, 2.0)], EXTRAVASATION),
    ("groin beside the bladder", [(470, 150, 0.012, 2.0)], URINE),
    ("splash on the thigh", [(560, 160, 0.005, 1.5), (566, 166, 0.004, 1.2), (552, 170, 0.003, 1.0)], URINE),
    ("pool by the feet", [(880, 200, 0.02, 3.0)], URINE),
])
def test_nm1_with_contamination_it_was_not_built_from(nm1, name, spots, problem):
    """Screening is tuned on the phantom; the real scan made bad in other ways must be caught too,
    in either orientation (the mirrored frame stands in for a posterior view)."""
    assert screen_view(nm1[:, ::-1].copy()).keep
    verdict = screen_view(_with_spots(nm1, spots))
    assert not verdict.keep and verdict.problem == problem, (name, verdict.reason)
    mirrored = _with_spots(nm1[:, ::-1].copy(), [(r, 255 - c, s, g) for r, c, s, g in spots])
    assert not screen_view(mirrored).keep, name


@pytest.mark.parametrize("name, spots", [
    ("injection-site residue at the elbow", [(380, 25, 0.002, 1.5)]),
    ("degenerative knee", [(640, 100, 0.0015, 2.0)]),
    ("healed rib fractures in a row", [(280, 60, 0.0007, 1.2), (290, 58, 0.0007, 1.2), (300, 57, 0.0007, 1.2)]),
])
def test_nm1_with_benign_uptake_is_kept(nm1, name, spots):
    """Benign foci a reader ignores (the phantom draws them too) are not contamination."""
    verdict = screen_view(_with_spots(nm1, spots))
    assert verdict.keep, (name, verdict.reason)


def test_small_lesion_is_not_contamination(nm1):
    # a one-sided rib lesion: hot but a small share of the counts
    lesion = _with_spot(nm1, 300, 90, 0.001, sigma=2.0)
    assert screen_view(lesion).keep


def test_phantom_screening_precision_recall(tmp_path):
    log = tmp_path / "preprocess.log"
    cohort, truth, conv, pre = phantom_through_preprocess(tmp_path, n_patients=32, seed=2718, size=64,
                                                          problem_fraction=0.5, workers=2, log=log)
    ev = pd.read_csv(pre / "screening_eval.csv").iloc[0]
    assert ev["n"] == 64 and ev["tp"] + ev["fn"] == 32
    assert ev["precision"] >= 0.9 and ev["recall"] >= 0.9, ev.to_dict()
    table = pd.read_csv(pre / "preprocess.csv", keep_default_na=False)
    assert list(table.columns) == ["image_id", "patient_id", "study_id", "view", "crop_top", "crop_bottom",
                                   "crop_left", "crop_right", "counts_per_grey", "keep", "reason", "lossy",
                                   "orientation", "orientation_source", "lr_flipped"]
    # the phantom is stored head-up, lossless, and its headers say head first
    assert (table["orientation"] == "head_first").all() and (table["lossy"].astype(str) == "False").all()
    dropped = table[table["keep"].astype(str) == "False"]
    assert (dropped["reason"] != "").all()
    kept = table[table["keep"].astype(str) == "True"]
    assert (kept["reason"] == "").all()
    # every problem type shows up in the reasons
    reasons = " ".join(dropped["reason"])
    for word in ("too few counts", "truncated", "extravasation", "urine"):
        assert word in reasons
    assert "clean views have IoU" in log.read_text()


def test_one_broken_view_does_not_stop_the_run(nm1, tmp_path):
    conv = tmp_path / "conv"
    (conv / "images").mkdir(parents=True)
    np.save(conv / "images" / "s1_ANT.npy", nm1)
    (conv / "images" / "s2_ANT.npy").write_bytes(b"not an array")
    rows = [dict(image_id=f"s{i}_ANT", patient_id=f"p{i}", study_id=f"s{i}", view="ANT", frame=0, rows=1024,
                 cols=256, pixel_spacing_mm=2.26, total_counts=0.0, source_sha256=f"{i}" * 64, status="ok",
                 image_path=f"images/s{i}_ANT.npy") for i in (1, 2)]
    pd.DataFrame(rows).to_csv(conv / "manifest.csv", index=False)
    assert main(["preprocess", "--manifest", str(conv / "manifest.csv"), "--out", str(tmp_path / "pre")]) == 0
    table = pd.read_csv(tmp_path / "pre" / "preprocess.csv", keep_default_na=False).set_index("image_id")
    assert str(table.loc["s1_ANT", "keep"]) == "True"
    assert str(table.loc["s2_ANT", "keep"]) == "False"
    assert table.loc["s2_ANT", "reason"].startswith("preprocessing failed")
    assert table.loc["s2_ANT", "crop_top"] == ""
