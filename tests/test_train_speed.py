"""The faster training step keeps the numerics, and the learning curves say when a run was still improving."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from conftest import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_windows_are_gathered_exactly_as_sliced():
    from spectbone.models.blocks import crop_windows

    x = torch.randn(5, 2, 20, 24)
    tops, lefts = torch.tensor([0, 3, 7, 12, 1]), torch.tensor([0, 9, 2, 16, 5])
    sliced = torch.stack([x[i, :, t:t + 8, l:l + 8] for i, (t, l) in enumerate(zip(tops.tolist(), lefts.tolist()))])
    assert torch.equal(crop_windows(x, tops, lefts, 8), sliced)


def test_folded_estimator_computes_the_same_function():
    from spectbone.models import build_model
    from spectbone.train.speed import fold_batchnorm

    torch.manual_seed(0)
    est = build_model("estimator", base=4)
    for m in est.modules():  # non-trivial BN statistics, as after training
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    est.eval()
    folded = fold_batchnorm(est)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) < \
        sum(isinstance(m, nn.BatchNorm2d) for m in est.modules())
    x = torch.rand(3, 1, 32, 32) * 0.5 + 0.1
    with torch.no_grad():
        torch.testing.assert_close(folded(x), est(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels_last,dtype,tol", [(True, None, 1e-5), (True, torch.bfloat16, 3e-2),
                                                     (False, torch.bfloat16, 3e-2)])
def test_fast_step_gives_the_fp32_loss(channels_last, dtype, tol):
    """channels_last (exact up to rounding) and bf16 autocast (to bf16 precision) give fp32's loss and gradients."""
    from spectbone.models import build_model
    from spectbone.train.losses import CompositeLoss
    from spectbone.train.speed import FP32, StepSettings
    from spectbone.train.tasks import DenoiserTask

    torch.manual_seed(0)
    clean = torch.rand(2, 1, 32, 32) * 0.6 + 0.2
    batch = {"noisy": clean + 0.05 * torch.randn_like(clean), "clean": clean, "map_level": torch.full((2,), 0.05)}
    losses, grads = [], []
    for speed in (FP32, StepSettings("cpu", channels_last=channels_last, autocast_dtype=dtype)):
        torch.manual_seed(1)
        task = DenoiserTask(build_model("emanet", base=4), CompositeLoss(lam=0.2), None, 1e-3, "cpu", 2,
                            patch=16, speed=speed)
        torch.manual_seed(2)  # the same windows
        model = task.models["model"]
        model.train()
        noisy, target = batch["noisy"], batch["clean"]
        from spectbone.train.tasks import level_plane, random_patches

        noisy, target = random_patches(16, noisy, target)
        noisy = speed.to_format(noisy)
        with speed.autocast():
            out = model(noisy, level_plane(batch["map_level"], noisy))
        loss = task.loss_fn(out.float(), speed.to_format(target))
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert losses[1] == pytest.approx(losses[0], rel=tol)
    cosine = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cosine > 1 - tol


def test_step_settings_follow_the_device():
    from spectbone.train.speed import FP32, has_amx, step_settings

    assert step_settings("cpu", "fp32") == FP32
    auto = step_settings("cpu", "auto")
    assert (auto.autocast_dtype is torch.bfloat16) == has_amx() and auto.channels_last == has_amx()
    with pytest.raises(ValueError):
        step_settings("cpu", "fp16")


def _history(gains, n=12, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(30, 2, n)
    rows = []
    for step, g in zip(range(10, 10 * (len(gains) + 1), 10), gains):
        scores = base + g + rng.normal(0, noise, n)
        rows.append({"step": step, "val": 10 ** (-scores.mean() / 10), "val_score": scores.mean(), "score": "psnr_db",
                     "val_scores": " ".join(f"{v:.6g}" for v in scores)})
    return pd.DataFrame(rows)


def test_still_improving_compares_the_last_quarter_per_image():
    from spectbone.train.curves import improving_note, still_improving

    rising = still_improving(_history([0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]))
    assert rising["still_improving"] and rising["gain"] == pytest.approx(1.0, abs=0.1)
    assert (rising["from_step"], rising["to_step"]) == (60, 80)    # last validation at or before 3/4 of 80 steps
    flat = still_improving(_history([0, 1, 2, 2, 2, 2, 2, 2]))
    assert not flat["still_improving"] and flat["gain_lo"] < 0 < flat["gain_hi"]
    assert not still_improving(pd.DataFrame({"step": [1], "val": [0.1]}))["still_improving"]
    note = improving_note({"emanet_x": _history([0, 1, 2, 3, 4, 5, 6, 7]), "dncnn": _history([0, 1, 1, 1, 1, 1, 1, 1])})
    assert "emanet_x" in note and "dncnn" not in note


def test_history_rows_every_n_steps_leave_the_weights_unchanged(tiny_bone_data, tmp_path):
    """--val-every adds validation rows (with per-image PSNRs) without touching the trained weights."""
    from test_train import train_args

    extra = ["--model", "dncnn", "--depth", "3", "--lam", "0"]
    run_cli(*train_args(tiny_bone_data, tmp_path / "epochs", epochs=2, extra=extra))
    run_cli(*train_args(tiny_bone_data, tmp_path / "steps", epochs=2, extra=[*extra, "--val-every", "10"]))
    per_epoch = pd.read_csv(tmp_path / "epochs" / "history.csv")
    per_step = pd.read_csv(tmp_path / "steps" / "history.csv")
    steps_per_epoch = 96 // 4
    assert per_epoch["step"].tolist() == [steps_per_epoch, 2 * steps_per_epoch]
    assert per_step["step"].tolist() == [10, 20, 24, 30, 40, 48]
    assert per_step["epoch"].iloc[-1] == 2 and (per_step["score"] == "psnr_db").all()
    n_val = len(per_step["val_scores"].iloc[0].split())
    assert n_val == 2 * 3  # the two validation images at three levels
    psnr = per_step["val_scores"].map(lambda s: np.mean([float(v) for v in s.split()]))
    np.testing.assert_allclose(psnr, per_step["val_score"], rtol=1e-5)
    a = torch.load(tmp_path / "epochs" / "w.pt", weights_only=False)
    b = torch.load(tmp_path / "steps" / "w.pt", weights_only=False)
    assert b["meta"]["best_step"] in per_step["step"].tolist()
    if a["meta"]["best_step"] == b["meta"]["best_step"]:  # the same best row: the very same weights
        for k in a["state_dict"]:
            assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k


def test_curves_figure_and_training_table(tiny_bone_data, tmp_path):
    from spectbone.cli import main

    run_cli(*train_args_for(tiny_bone_data, tmp_path))
    assert main(["curves", "--histories", str(tmp_path / "training" / "dncnn.csv"), "--title", "t",
                 "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").exists() and (tmp_path / "curves.pdf").exists()
    assert main(["table", "training", "--inputs", str(tmp_path / "models" / "dncnn.pt"),
                 str(tmp_path / "training" / "dncnn.csv"), "--out", str(tmp_path / "training.csv")]) == 0
    table = pd.read_csv(tmp_path / "training.csv")
    assert {"still_improving", "last_quarter_gain", "last_quarter_gain_ci", "best_step", "steps"} <= set(table.columns)
    assert table["val_score"].iloc[0] == "psnr_db" and np.isfinite(table["last_quarter_gain"].iloc[0])


def train_args_for(data, out):
    return ["train", "denoiser", "--model", "dncnn", "--depth", "3", "--lam", "0", "--preprocess-dir", data,
            "--split", data / "split.csv", "--out", out / "models" / "dncnn.pt", "--ckpt-dir", out / "ckpt",
            "--history", out / "training" / "dncnn.csv", "--curve", out / "curve", "--epochs", 2,
            "--samples-per-epoch", 32, "--batch-size", 4, "--width", 4, "--threads", 1, "--val-every", 2,
            "--log", out / "train.log"]


def test_bench_train_compares_the_paths(tmp_path):
    from spectbone.cli import main

    out = tmp_path / "bench.csv"
    assert main(["bench", "train", "--networks", "emanet", "dncnn", "--steps", "2", "--warmup", "1", "--size", "64",
                 "--patch", "32", "--width", "4", "--baseline-width", "4", "--val-images", "2", "--threads", "1",
                 "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 4 and (tmp_path / "bench.md").exists()
    assert (df["images_per_s"] > 0).all() and (df.loc[df["path"] == "fp32 NCHW (old)", "speedup_vs_fp32"] == 1).all()
    assert np.isfinite(df["val_psnr"]).all() and df["psnr_minus_fp32_ci"].str.startswith("[").all()
    assert df["within_fp32_interval"].all()  # the default step keeps the fp32 validation PSNR


def test_per_model_curves_keep_the_dot_in_their_name(tmp_path):
    """emanet_..._lam0.2 and emanet_..._lam0 write two curve figures, not one overwriting the other."""
    from spectbone.train.engine import plot_history

    history = pd.DataFrame({"step": [1, 2], "epoch": [1.0, 2.0], "train_loss": [0.2, 0.1], "val": [0.3, 0.2]})
    plot_history(history, str(tmp_path / "emanet_ct_full_lam0.2"), "a")
    plot_history(history, str(tmp_path / "emanet_ct_full_lam0"), "b")
    assert {p.name for p in tmp_path.glob("*.png")} == {"emanet_ct_full_lam0.2.png", "emanet_ct_full_lam0.png"}
