"""One scoring rule for every method: Table 7 recomputed from the saved arrays with the stated rule, the blind
table's equal-terms and oracle rows, and the segmenter reading clipped inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spectbone.evaluate.rows import ESTIMATED, ORACLE, select_rows
from spectbone.evaluate.rule import SCORE_RANGE, SCORING_RULE, as_scored
from spectbone.evaluate.score import denoising_scores
from spectbone.noise.augment import load_testset
from spectbone.paper.tables import Results, table7, table_blind
from spectbone.util.methods import display_name

LEVELS = np.array([5, 20, 40])
MAIN = "emanet_ct_full_lam0.2"
SETTINGS = {"bootstrap": 50, "seed": 0, "synthetic": True, "main": MAIN, "test_levels": [int(v) for v in LEVELS]}
# how far each method's output strays outside [0, 255]: BM3D undershoots the dark background, EMANet barely
OVERSHOOT = {"bm3d": 25.0, "bm3d_anscombe": 0.0, "dncnn": 8.0, "redcnn": 0.0, "wgan": 4.0, MAIN: 1.0}


def _saved_run(tmp_path, n=4, size=24):
    """A test set and every method's inference files written the way the DAG writes them."""
    rng = np.random.default_rng(0)
    truth = np.clip(rng.uniform(-20, 280, (n, size, size)), 0, 255).astype(np.float32)  # saturated, like the map
    clean = np.clip(truth + rng.normal(0, 4, truth.shape), 0, 255).astype(np.float32)
    noisy = np.stack([clean + rng.normal(0, lv, clean.shape) for lv in LEVELS]).astype(np.float32)
    testset = tmp_path / "testset.npz"
    np.savez(testset, clean=clean, truth=truth, noisy=noisy, levels=LEVELS,
             image_id=np.array([f"im{i}" for i in range(n)]))
    parts = {"noisy": []}

    def output(images, level, method):
        """A denoiser's output: pulled toward the truth, then pushed outside the range by its overshoot."""
        out = 0.5 * images + 0.5 * truth + rng.normal(0, 1 + level / 10, images.shape)
        dark, bright = truth < 30, truth > 225
        out[dark] -= OVERSHOOT[method]
        out[bright] += OVERSHOOT[method]
        return out.astype(np.float32)

    for method in ("bm3d", "bm3d_anscombe"):
        parts[method] = []
        for li, lv in enumerate(LEVELS):
            path = tmp_path / f"{method}_{lv}.npz"
            np.savez(path, level=np.int32(lv), denoised=output(noisy[li], lv, method),
                     sigma_used=np.full(n, lv, np.float32))
            parts[method].append(path)
        for chunk, which in (("blind", ESTIMATED), ("oracle", ORACLE)):
            path = tmp_path / f"{method}_{chunk}.npz"
            np.savez(path, level=np.int32(0), denoised=output(clean, 0, method), blind_level=np.array(which),
                     sigma_used=np.full(n, 3.0 if which == ESTIMATED else 4.0, np.float32))
            parts[method].append(path)
    for method in ("dncnn", "redcnn", "wgan", MAIN):
        path = tmp_path / f"{method}.npz"
        takes_level = method == MAIN
        extra = dict(blind_oracle=output(clean, 0, method), blind_oracle_sigma=np.full(n, 4.0, np.float32)) \
            if takes_level else {}
        np.savez(path, denoised=np.stack([output(noisy[li], lv, method) for li, lv in enumerate(LEVELS)]),
                 levels=LEVELS, sigma_used=np.tile(LEVELS[:, None], (1, n)).astype(np.float32),
                 takes_level=np.bool_(takes_level), blind=output(clean, 0, method),
                 blind_sigma=np.full(n, 3.0, np.float32), **extra)
        parts[method] = [path]
    evals = []
    for method, files in parts.items():
        (tmp_path / "eval").mkdir(exist_ok=True)
        csv = tmp_path / "eval" / f"{method}.csv"
        denoising_scores(method, load_testset(testset), [str(p) for p in files]).to_csv(csv, index=False)
        evals.append(csv)
    return testset, parts, evals


def _psnr(ref, test) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((np.asarray(ref, np.float64) - test) ** 2)))


def _output(parts, method, li, testset):
    """The saved array a method produced at test level index li (the noisy input for 'noisy')."""
    if method == "noisy":
        return testset["noisy"][li]
    files = parts[method]
    if len(files) == 1:
        with np.load(files[0]) as z:
            return z["denoised"][li]
    with np.load(files[li]) as z:
        return z["denoised"]


def test_table7_is_reproduced_from_the_saved_arrays_with_the_stated_rule(tmp_path):
    testset_path, parts, evals = _saved_run(tmp_path)
    table, _, notes = table7(Results(evals, SETTINGS))
    assert SCORING_RULE in notes
    testset = load_testset(testset_path)
    differs = 0
    for method in parts:
        for li, level in enumerate(LEVELS):
            out = _output(parts, method, li, testset)
            ours = np.mean([_psnr(t, np.clip(o, 0, 255)) for t, o in zip(testset["truth"], out)])
            unclipped = np.mean([_psnr(t, o) for t, o in zip(testset["truth"], out)])
            row = table[(table["method"] == display_name(method)) & (table["noise_level"] == level)].iloc[0]
            assert row["psnr_truth"] == pytest.approx(ours, abs=0.01), (method, level)
            differs += abs(unclipped - ours) > 0.01
    assert differs >= len(LEVELS) * 3  # the rule is not a no-op here: outputs do leave [0, 255]


def test_every_method_is_clipped_alike():
    image = np.array([[-18.0, 0.0], [128.5, 300.0]])
    assert SCORE_RANGE == (0.0, 255.0)
    assert np.array_equal(as_scored(image), [[0.0, 0.0], [128.5, 255.0]])  # clipped, never rounded


def test_blind_table_has_equal_terms_and_oracle_rows(tmp_path):
    _, _, evals = _saved_run(tmp_path)
    table, _, notes = table_blind(Results(evals, SETTINGS))
    estimated = table[table["level"] == ESTIMATED]
    oracle = table[table["level"] == ORACLE]
    assert set(oracle["method"]) == {"BM3D (oracle level)", f"{display_name('bm3d_anscombe')} (oracle level)",
                                      "EMANet (oracle level)"}
    # every level-taking method got the same estimate on the originals; the others none
    given = estimated.set_index("method")["level_given"]
    assert given[["BM3D", display_name("bm3d_anscombe"), "EMANet"]].tolist() == [3.0, 3.0, 3.0]
    assert given[["Original", "DnCNN", "RED-CNN", "WGAN"]].isna().all()
    assert (oracle["level_given"] == 4.0).all()
    assert notes[0].startswith("Blind denoising of the originals (every level-taking method given the same")
    # the claims and tables read the equal-terms rows unless told otherwise
    df = pd.read_csv(tmp_path / "eval" / f"{MAIN}.csv")
    assert (select_rows(df, [0])["blind_level"] == ESTIMATED).all()
    assert (select_rows(df, [0], ORACLE)["blind_level"] == ORACLE).all()
