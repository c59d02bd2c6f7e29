"""The claims check: its verdicts on the paper's own tables, and the paired bootstrap on data with a known answer."""

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from spectbone.evaluate.score import segmentation_counts, segmentation_scores
from spectbone.paper.claims import (
    CLAIMS,
    NO_TRUTH,
    PAPER_MEANS,
    base_verdict,
    check_claims,
    check_paper_tables,
    load_sources,
    paper_settings,
    paper_tables,
)
from spectbone.paper.evidence import POINT_ONLY, TableMeans
from spectbone.paper.tables import emanet_name
from spectbone.paper.verdicts import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Comparison,
    Resampler,
    all_hold,
    at_least,
    maximum,
)

ARCHS = ["plain", "rdc", "rdc_md", "rdc_md_rcag", "full"]
LEVELS = [5, 10, 15, 20, 25, 30, 35, 40]


def _row(df, fragment):
    rows = df[df["claim"].str.contains(fragment, regex=False)]
    assert len(rows) == 1, fragment
    return rows.iloc[0]


# --- the paper's own numbers ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def paper_check():
    return check_paper_tables()


@pytest.mark.parametrize("fragment", ["Noise-region SSIM rises", "CT pretraining beats", "Every module adds",
                                      "MSE scores highest", "Our noise estimator", "EMANet's PSNR barely falls",
                                      "higher PSNR and SSIM than BM3D", "EMANet has the best PSNR",
                                      "RED-CNN scores slightly above"])
def test_paper_tables_support_their_text(paper_check, fragment):
    row = _row(paper_check, fragment)
    assert row["verdict_paper_protocol"] == HOLDS, row["evidence_paper_protocol"]
    assert row["verdict_truth"] == NO_TRUTH


def test_paper_table7_emanet_best_at_five_of_eight_levels(paper_check):
    row = _row(paper_check, "EMANet has the best PSNR")
    assert "EMANet best at 5, not best at 3" in row["evidence_paper_protocol"]


def test_paper_table8_contradicts_its_text(paper_check):
    """RED-CNN's IoU (0.4979) is below the original's (0.4982); DnCNN's recall (0.6240) beats EMANet's (0.6229)."""
    gain = _row(paper_check, "each of the four deep models improves")
    best = _row(paper_check, "segment best")
    for row, culprit in [(gain, "iou RED-CNN - Original -0.0003"), (best, "recall EMANet - best other -0.0011")]:
        assert base_verdict(row["verdict_paper_protocol"]) == FAILS
        assert "paper's own Table 8 contradicts its text" in row["verdict_paper_protocol"]
        assert culprit in row["evidence_paper_protocol"]
    assert "recall DnCNN" in best["evidence_paper_protocol"]


def test_paper_tables_are_point_verdicts(paper_check):
    tabled = paper_check[paper_check["table"] != "blind"]
    assert (tabled["interval_paper_protocol"] == PAPER_MEANS).all()
    assert len(paper_check) == len(CLAIMS)
    # the paper gives no numbers for blind denoising: that claim is untested on its tables, not failed
    blind = paper_check.loc[paper_check["table"] == "blind", "verdict_paper_protocol"].iloc[0]
    assert blind.startswith("not tested") and "no blind-denoising scores" in blind


# --- the bootstrap machinery ---------------------------------------------------------------------------------

def _images(n=30, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"img{i:02d}" for i in range(n)]
    return ids, rng


def test_clear_win_holds_clear_loss_fails_tie_is_inconclusive():
    ids, rng = _images()
    res = Resampler(ids, n_boot=2000, seed=0)
    base = pd.Series(30 + rng.normal(0, 1, len(ids)), index=ids)
    win = base + 2 + rng.normal(0, 0.3, len(ids))
    tie = base + rng.normal(0, 0.3, len(ids))
    tie = tie - tie.mean() + base.mean()  # identical mean, per-image noise
    assert Comparison("win", res.mean(win) - res.mean(base)).verdict == HOLDS
    assert Comparison("loss", res.mean(base) - res.mean(win)).verdict == FAILS
    assert Comparison("tie", res.mean(tie) - res.mean(base)).verdict == INCONCLUSIVE
    assert Comparison("below", res.mean(base) - res.mean(win), "<").verdict == HOLDS
    lo, hi = (res.mean(win) - res.mean(base)).interval()
    assert lo < 2 < hi


def test_pairing_decides_where_unpaired_resampling_cannot():
    """Large shared per-image variation, small consistent gain: decisive only when paired."""
    ids, rng = _images(40)
    shared = pd.Series(rng.normal(30, 5, len(ids)), index=ids)
    a = shared + 0.3 + rng.normal(0, 0.1, len(ids))
    b = shared + rng.normal(0, 0.1, len(ids))
    paired = Resampler(ids, 2000, seed=0)
    assert Comparison("paired", paired.mean(a) - paired.mean(b)).verdict == HOLDS
    unpaired = Resampler(ids, 2000, seed=1).mean(a) - Resampler(ids, 2000, seed=2).mean(b)
    assert Comparison("unpaired", unpaired).verdict == INCONCLUSIVE


def test_resampler_matches_the_point_and_is_seeded():
    ids, rng = _images(10)
    v = pd.Series(rng.normal(size=10), index=ids)
    e = Resampler(ids, 500, seed=3).mean(v)
    assert e.point == pytest.approx(v.mean())
    assert np.array_equal(e.samples, Resampler(ids, 500, seed=3).mean(v.sample(frac=1, random_state=1)).samples)
    with pytest.raises(ValueError):
        Resampler(ids, 500).mean(v.iloc[:-1])  # an image without a score is an error, not a smaller sample


def test_compound_and_counting_rules():
    assert all_hold([HOLDS, HOLDS]) == HOLDS
    assert all_hold([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert all_hold([HOLDS, INCONCLUSIVE, FAILS]) == FAILS
    assert at_least(5, [HOLDS] * 5 + [FAILS] * 3) == HOLDS
    assert at_least(5, [HOLDS] * 4 + [INCONCLUSIVE] + [FAILS] * 3) == INCONCLUSIVE
    assert at_least(5, [HOLDS] * 4 + [FAILS] * 4) == FAILS
    assert at_least(5, [INCONCLUSIVE] * 4 + [FAILS] * 4) == FAILS


def test_maximum_is_taken_per_resample():
    ids, rng = _images(20)
    res = Resampler(ids, 1000, seed=0)
    a, b = (res.mean(pd.Series(rng.normal(size=20), index=ids)) for _ in range(2))
    m = maximum([a, b])
    assert m.point == max(a.point, b.point)
    assert np.array_equal(m.samples, np.maximum(a.samples, b.samples))


def test_segmentation_counts_pool_to_the_table8_scores():
    rng = np.random.default_rng(0)
    prob, truth = rng.random((3, 16, 16)), (rng.random((3, 16, 16)) > 0.8).astype(np.uint8)
    counts = segmentation_counts(prob, truth)
    assert len(counts) == 3
    tp, fp, fn = counts.sum()
    assert segmentation_scores(prob, truth)["iou"] == pytest.approx(tp / (tp + fp + fn))


# --- end to end on synthetic per-image files ------------------------------------------------------------------

SETTINGS = {"main": emanet_name("ct", "full", 0.2), "lam": 0.2, "archs": ARCHS, "test_levels": LEVELS,
            "table_level": 20, "bootstrap": 500, "seed": 0, "synthetic": True}


def _write_run(tmp_path, truth=True, n=24):
    """Per-image scores where EMANet wins clearly everywhere, BM3D is clearly worst, the rest tie."""
    rng = np.random.default_rng(1)
    ids = [f"p{i:02d}_ANT" for i in range(n)]
    difficulty = rng.normal(0, 2, n)
    gains = {"noisy": -6.0, "bm3d": -3.0, "bm3d_anscombe": -2.0, "dncnn": 0.0, "redcnn": 0.0, "wgan": 0.0}
    variants = {emanet_name(p, "full", 0.2) for p in ["none", "natural", "ct"]}
    variants |= {emanet_name("ct", a, 0.2) for a in ARCHS} | {emanet_name("ct", "full", lam) for lam in (0.0, 1.0)}
    gains.update({v: 3.0 for v in variants})
    evals = []
    for method, gain in gains.items():
        rows = []
        for lv in LEVELS:
            psnr = 40 - lv / 4 + difficulty + gain + rng.normal(0, 0.05, n)
            row = {"method": method, "image_id": ids, "noise_level": lv, "psnr": psnr, "ssim": psnr / 50}
            if truth:
                row.update({"psnr_truth": psnr + 1, "ssim_truth": psnr / 50 + 0.01})
            rows.append(pd.DataFrame(row))
        if truth:  # blind rows: the denoised originals, scored against the truth only
            blind = 35 + difficulty + gain + rng.normal(0, 0.05, n)
            rows.append(pd.DataFrame({"method": method, "image_id": ids, "noise_level": 0, "psnr": np.nan,
                                      "ssim": np.nan, "psnr_truth": blind, "ssim_truth": blind / 50}))
        path = tmp_path / f"{method}.csv"
        pd.concat(rows).to_csv(path, index=False)
        evals.append(path)
    total = {(lv, i): lv + 0.5 for lv in LEVELS for i in ids}  # the original's own noise adds to the level
    noise = pd.DataFrame([{"image_id": i, "noise_level": lv, "method": m, "estimate": total[lv, i] + rng.normal(0, sd),
                           "true_noise": total[lv, i] if truth else np.nan}
                          for lv in LEVELS for i in ids for m, sd in [("HBNE", 3), ("DWTNE", 2), ("Ours", 0.3)]])
    noise.to_csv(tmp_path / "noise_estimates.csv", index=False)
    seg = pd.DataFrame([{"method": m, "image_id": i, "tp": int(tp + rng.integers(0, 5)), "fp": 20, "fn": 30}
                        for m, tp in [("Original", 50), ("BM3D", 30), ("DnCNN", 60), ("RED-CNN", 60), ("WGAN", 60),
                                      ("EMANet", 90)] for i in ids])
    seg.to_csv(tmp_path / "segmentation_per_image.csv", index=False)
    pd.DataFrame({"noise_level": [0, 5, 10, 15, 20, 30, 40], "ssim": [0.3, 0.35, 0.4, 0.42, 0.45, 0.35, 0.3]}) \
        .to_csv(tmp_path / "table2.csv", index=False)
    return evals


def test_cli_judges_both_references_from_declared_files(tmp_path):
    import json

    evals = _write_run(tmp_path)
    out = tmp_path / "claims.md"
    run_cli("claims", "--tables", tmp_path / "table2.csv", "--evals", *evals,
            "--noise-estimates", tmp_path / "noise_estimates.csv",
            "--segmentation", tmp_path / "segmentation_per_image.csv",
            "--settings", json.dumps(SETTINGS), "--out", out, "--csv", tmp_path / "claims.csv")
    claims = pd.read_csv(tmp_path / "claims.csv")
    for ref in ("truth", "paper_protocol"):
        assert {f"evidence_{ref}", f"interval_{ref}", f"verdict_{ref}"} <= set(claims.columns)
        assert _row(claims, "EMANet has the best PSNR")[f"verdict_{ref}"] == HOLDS
        assert _row(claims, "higher PSNR and SSIM than BM3D")[f"verdict_{ref}"] == HOLDS
        assert _row(claims, "RED-CNN scores slightly above")[f"verdict_{ref}"] == INCONCLUSIVE  # tied by design
        assert _row(claims, "Our noise estimator")[f"verdict_{ref}"] == HOLDS
        assert _row(claims, "segment best")[f"verdict_{ref}"] == HOLDS
        assert _row(claims, "each of the four deep models improves")[f"verdict_{ref}"] == HOLDS
        assert "[" in _row(claims, "EMANet has the best PSNR")[f"interval_{ref}"]
    assert _row(claims, "closer to the noiseless truth")["verdict_truth"] == HOLDS
    assert _row(claims, "closer to the noiseless truth")["verdict_paper_protocol"].startswith("not tested")
    assert _row(claims, "Noise-region SSIM")["interval_paper_protocol"] == POINT_ONLY
    assert _row(claims, "Noise-region SSIM")["verdict_truth"] == NO_TRUTH
    text = out.read_text()
    assert "B = 500" in text and "synthetic" in text.lower() and "## Summary" in text


def test_no_truth_columns_give_no_truth_verdicts(tmp_path):
    evals = _write_run(tmp_path, truth=False)
    sources = load_sources([tmp_path / "table2.csv"], evals, tmp_path / "noise_estimates.csv", None, SETTINGS)
    claims = check_claims(sources, SETTINGS)
    assert (claims["verdict_truth"] == NO_TRUTH).all()
    assert _row(claims, "segment best")["verdict_paper_protocol"].startswith("not tested")


def test_table_means_alone_give_labelled_point_verdicts():
    s = paper_settings()
    claims = check_claims({"paper_protocol": TableMeans(paper_tables(s), "paper", s)}, s)
    claims = claims[claims["table"] != "blind"]  # no table of the paper's behind it
    assert (claims["interval_paper_protocol"] == POINT_ONLY).all()
    assert set(claims["verdict_paper_protocol"].map(base_verdict)) <= {HOLDS, FAILS}


def test_table2_spread_over_noise_draws_gives_an_interval():
    s = {**paper_settings(), "bootstrap": 1000, "seed": 0}
    t2 = pd.DataFrame({"noise_level": [0, 10, 20, 30, 40], "ssim": [0.30, 0.40, 0.45, 0.38, 0.30],
                       "ssim_sd": [0.01, 0.01, 0.01, 0.01, 0.01], "n_draws": 10})
    clear = check_claims({"paper_protocol": TableMeans({"2": t2}, "paper", s)}, s)
    row = _row(clear, "Noise-region SSIM")
    assert row["verdict_paper_protocol"] == HOLDS and "[" in row["interval_paper_protocol"]
    noisy = check_claims({"paper_protocol": TableMeans({"2": t2.assign(ssim_sd=0.5)}, "paper", s)}, s)
    assert _row(noisy, "Noise-region SSIM")["verdict_paper_protocol"] == INCONCLUSIVE


def test_estimator_truth_verdict_judges_against_true_noise(tmp_path):
    """Table 6's truth column: an estimator that reports the added level exactly, while the images' true total
    noise is 3 grey levels higher, holds under the paper's protocol and fails against the truth."""
    evals = _write_run(tmp_path)
    noise = pd.read_csv(tmp_path / "noise_estimates.csv")
    ours = noise["method"] == "Ours"
    noise.loc[ours, "estimate"] = noise.loc[ours, "noise_level"].astype(float)
    noise["true_noise"] = noise["noise_level"] + 3.0
    noise.to_csv(tmp_path / "noise_estimates.csv", index=False)
    sources = load_sources([tmp_path / "table2.csv"], evals, tmp_path / "noise_estimates.csv", None, SETTINGS)
    row = _row(check_claims(sources, SETTINGS), "Our noise estimator")
    assert row["verdict_paper_protocol"] == HOLDS
    assert row["verdict_truth"] == FAILS
