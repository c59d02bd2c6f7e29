"""The count-domain family: count splitting, the native-frame set, training, fine-tuning, the registry."""

import numpy as np
import pandas as pd
import pydicom
import pytest

from conftest import run_cli
from spectbone.counts import thinning
from spectbone.counts.domain import body_mask, count_scale, network_input
from spectbone.counts.methods import METHODS, Context, choose_gaussian_sigma
from spectbone.counts.registry import SPECS
from spectbone.counts.sites import Case, holdout_masks, nm1_cases
from spectbone.dicom.nm1 import nm1_path


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    """Four phantom patients at native sampling: 2 train, 1 val, 1 test."""
    root = tmp_path_factory.mktemp("countviews")
    run_cli("synthesize", "--out", root / "cohort", "--truth", root / "truth", "--n-patients", 4, "--seed", 3,
            "--problem-fraction", 0)
    run_cli("count-views", "--cohort", root / "cohort", "--truth", root / "truth", "--out", root / "views.npz",
            "--val-patients", 1, "--test-patients", 1, "--seed", 0)
    return root


def test_binomial_split_is_poisson_thinning():
    rng = np.random.default_rng(0)
    lam = np.full((200, 200), 12.0)
    counts = rng.poisson(lam).astype(np.float32)
    y1, y2 = thinning.binomial_split(counts, 0.25, np.random.default_rng(1))
    assert np.array_equal(y1 + y2, counts)
    assert abs(y1.mean() - 3.0) < 0.05 and abs(y1.var() - 3.0) < 0.15  # Poisson(p lambda): mean = variance
    assert abs(np.corrcoef(y1.ravel(), y2.ravel())[0, 1]) < 0.02  # independent halves
    with pytest.raises(ValueError, match="whole numbers"):
        thinning.binomial_split(counts + 0.5, 0.25, rng)
    with pytest.raises(ValueError, match="fraction"):
        thinning.binomial_split(counts, 1.0, rng)


def test_excess_error_is_unbiased_for_any_estimate():
    """Averaged over splits, (k x - y2)^2 - y2 equals the true squared error of k x, for a smoother too."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(2)
    lam = 4.0 + 20.0 * (np.add.outer(np.arange(128), np.arange(128)) % 32 < 16)
    est, true = [], []
    for seed in range(40):  # a new acquisition and a new split each time: unbiased over both
        y1, y2 = thinning.binomial_split(rng.poisson(lam), 0.25, np.random.default_rng(seed))
        x = ndi.gaussian_filter(y1.astype(float), 1.0)
        est.append(thinning.excess_error_map(x, y2, 0.25).mean())
        true.append(thinning.true_error_map(x, lam, 0.25).mean())
    assert abs(np.mean(est) - np.mean(true)) < 3 * np.std(est) / np.sqrt(len(est))


def test_count_split_estimate_agrees_with_true_error_on_phantom(views):
    """On the phantom, where truth exists, the count-split score's interval holds the true error."""
    from spectbone.counts.evaluate import score_method
    from spectbone.counts.sites import phantom_cases

    cases = phantom_cases(views / "views.npz")
    for key in ("raw", "gaussian", "anscombe_bm3d"):
        ctx = Context()
        seeds = [0, 1, 2] if key != "anscombe_bm3d" else [0]
        tiles, frames, _ = score_method(key, cases, ctx, [0.5, 0.25], seeds, progress=False)
        for p, grp in tiles.groupby("fraction"):
            mean, lo, hi = thinning.bootstrap_mean(grp["excess_sum"], grp["pixels"], 1000, 0)
            true = grp["true_sum"].sum() / grp["pixels"].sum()
            assert lo <= true <= hi, (key, p, mean, lo, hi, true)
        if key == "gaussian":
            assert frames["gaussian_sigma"].between(0.5, 4).all()
        assert frames["psnr"].notna().all() and (frames["ssim"] <= 1).all()


def test_native_views_and_scale(views):
    from spectbone.counts.views import load_views

    v = load_views(views / "views.npz")
    assert v["counts"].shape[1:] == (1024, 256) and v["counts"].shape == v["expected"].shape
    assert sorted(set(v["set"])) == ["test", "train", "val"]
    for study in set(v["study"]):
        assert len(set(v["set"][v["study"] == study])) == 1  # a patient's views on one side
    c = v["counts"][0]
    rng = np.random.default_rng(0)
    thinned = rng.binomial(c.astype(np.int64), 0.1)
    assert abs(count_scale(thinned) / (0.1 * count_scale(c)) - 1) < 0.03  # S follows the count fraction
    u, m, s = network_input(thinned)
    body = body_mask(c)
    assert 0.05 < float(np.median(u[body])) < 0.5 and s > 0
    # the Poisson level map is the noise of u: compare with the truth's sqrt(0.1 lambda) / S in the body
    true_sd = np.sqrt(0.1 * v["expected"][0]) / s
    assert abs(np.median(m[body] / np.maximum(true_sd[body], 1e-6)) - 1) < 0.15


def test_gaussian_width_chosen_without_the_scored_split():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    lam = 30 * np.exp(-((xx - 64) ** 2 + (yy - 64) ** 2) / 900.0)
    counts = rng.poisson(lam)
    low = choose_gaussian_sigma(counts, 0.5, [1000])
    lower = choose_gaussian_sigma(counts, 0.1, [1000])
    assert lower >= low  # fewer counts, wider filter


def test_holdout_bands_of_a_single_scan_and_patients_of_a_site():
    nm1 = nm1_cases()
    (mask,) = holdout_masks(nm1, seed=0)
    assert 0.3 < mask.mean() < 0.36 and mask[64:128].all() and not mask[:64].any() and not mask[128:192].any()
    cases = [Case(f"c{i}", f"p{i // 2}", np.ones((8, 8))) for i in range(8)]
    masks = holdout_masks(cases, seed=0)
    by_patient = {}
    for c, m in zip(cases, masks):
        assert m.all() or not m.any()
        by_patient.setdefault(c.patient_id, set()).add(bool(m.all()))
    assert all(len(v) == 1 for v in by_patient.values())  # both views of a patient on one side
    assert sum(v == {True} for v in by_patient.values()) == 2


def test_registry_is_the_one_list_of_methods():
    assert [s.key for s in SPECS] == list(METHODS)
    assert {s.model for s in SPECS} == {None, "paper", "counts", "finetuned"}
    for key in ("raw", "gaussian", "anscombe_bm3d"):
        ctx = Context(gaussian_sigma=1.0)
        out = METHODS[key].apply(np.random.default_rng(0).poisson(5.0, (64, 64)).astype(np.float32), ctx)
        assert out.shape == (64, 64) and np.isfinite(out).all() and abs(out.mean() / 5.0 - 1) < 0.1


@pytest.fixture(scope="module")
def count_model(views, tmp_path_factory):
    out = tmp_path_factory.mktemp("countmodel")
    run_cli("train-counts", "--views", views / "views.npz", "--width", 8, "--patch", 32, "--epochs", 1,
            "--samples-per-epoch", 16, "--batch-size", 4, "--threads", 1, "--out", out / "counts.pt",
            "--ckpt-dir", out / "ckpt", "--history", out / "h.csv", "--curve", out / "h")
    return out / "counts.pt"


def test_count_model_records_its_family_and_denoise_says_it(count_model, views, tmp_path):
    from spectbone.models import load_model

    _, meta = load_model(count_model)
    assert meta["family"] == "count-domain" and meta["level_map"].startswith("Poisson")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "study.dcm").write_bytes((views / "cohort" / "study_0001.dcm").read_bytes())
    run_cli("denoise", folder, "-o", tmp_path / "out", "--model", count_model, "--log", tmp_path / "d.log")
    index = pd.read_csv(tmp_path / "out" / "denoise.csv")
    assert index.loc[0, "family"] == "count-domain" and index.loc[0, "status"] == "ok"
    src, out = pydicom.dcmread(folder / "study.dcm"), pydicom.dcmread(tmp_path / "out" / "study.dcm")
    assert out.NumberOfFrames == src.NumberOfFrames and "count-domain" in out.DerivationDescription
    denoised = out.pixel_array * float(out.RescaleSlope)
    assert abs(denoised.sum() / src.pixel_array.sum() - 1) < 0.1  # counts preserved, sub-count precision kept
    refused = run_cli("denoise", folder, "-o", tmp_path / "o2", "--model", count_model, "--level", "10", check=False)
    assert refused.returncode != 0 and "paper-protocol" in refused.stderr


def test_finetune_reads_only_the_training_part_and_never_gets_worse(count_model, tmp_path):
    from spectbone.counts.finetune import window_origins

    allowed = np.ones((256, 64), bool)
    allowed[100:150] = False
    origins = window_origins(allowed, np.ones_like(allowed), 32)
    assert len(origins) and all(allowed[t:t + 32, l:l + 32].all() for t, l in origins)
    run_cli("finetune-counts", "--model", count_model, "--dataset", "nm1", "--epochs", 1, "--samples-per-epoch", 8,
            "--batch-size", 4, "--patch", 32, "--threads", 1, "--out", tmp_path / "ft.pt", "--ckpt-dir", tmp_path / "ck",
            "--history", tmp_path / "h.csv", "--curve", tmp_path / "h")
    from spectbone.models import load_model

    _, meta = load_model(tmp_path / "ft.pt")
    assert meta["family"] == "count-domain" and meta["finetuned_on"] == "nm1"
    assert meta["finetune_best_val"] < meta["finetune_start_val"] or not meta["finetune_kept"]


def test_bundled_model_beats_the_hindsight_gaussian_on_nm1(tmp_path):
    """#18's bar, as a user meets it: NM1 thinned to 25 % (numpy seed 0) written as DICOM, `spectbone denoise`
    with no --model (the bundled count-domain EMANet), the output read back and scored against the held-out
    75 %: at most 1.48 counts^2 per pixel, the best Gaussian's score chosen with hindsight."""
    from spectbone.infer.denoise import BUNDLED_MODEL
    from spectbone.models import load_model

    _, meta = load_model(BUNDLED_MODEL)
    assert meta["family"] == "count-domain" and meta["task"] == "train-counts"
    ds = pydicom.dcmread(nm1_path())
    ds.decompress()
    counts = ds.pixel_array.astype(np.int64)
    y1 = np.random.default_rng(0).binomial(counts, 0.25)
    ds.PixelData = y1.astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(tmp_path / "nm1_25.dcm")
    run_cli("denoise", tmp_path / "nm1_25.dcm", "-o", tmp_path / "out.dcm", "--threads", 2)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    x = out.pixel_array.astype(np.float64) * float(out.get("RescaleSlope", 1))
    score = thinning.excess_error_map(x, counts - y1, 0.25).mean()
    assert score <= 1.48, score
