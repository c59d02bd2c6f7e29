"""The training engine: every task runs, and a killed run resumes to the very same weights."""

import signal
import subprocess
import time

import pandas as pd
import pytest
import torch

from conftest import BIN, run_cli


def train_args(data, out, task="denoiser", epochs=3, extra=()):
    return ["train", task, "--preprocess-dir", data, "--split", data / "split.csv", "--out", out / "w.pt",
            "--ckpt-dir", out / "ckpt", "--history", out / "history.csv", "--curve", out / "curve",
            "--epochs", epochs, "--samples-per-epoch", 96, "--batch-size", 4, "--width", 8, "--threads", 1,
            "--seed", 3, "--log", out / "train.log", *extra]


@pytest.mark.parametrize("task,extra", [
    ("estimator", []),
    ("denoiser", ["--model", "emanet", "--arch", "full", "--lam", "0.2"]),
    ("denoiser", ["--model", "redcnn", "--lam", "0"]),
    ("wgan", ["--critic-width", "8", "--critic-steps", "2"]),
    ("segmenter", []),
])
def test_every_task_trains_and_saves(tiny_bone_data, tmp_path, task, extra):
    run_cli(*train_args(tiny_bone_data, tmp_path, task, epochs=1, extra=extra))
    from spectbone.models import load_model

    model, meta = load_model(tmp_path / "w.pt")
    assert meta["task"] == task and meta["best_epoch"] == 1
    assert (tmp_path / "history.csv").exists() and (tmp_path / "curve.png").exists() and (tmp_path / "curve.pdf").exists()
    assert "device=cpu" in (tmp_path / "train.log").read_text()


def test_emanet_fine_tune_takes_the_estimators_level_map_on_patches(tiny_bone_data, tmp_path):
    """EMANet is trained with the level map it gets at test time (stage-1 estimate), on windows."""
    from spectbone.models import build_model, load_model, save_model

    est = tmp_path / "estimator.pt"
    save_model(est, build_model("estimator", base=8), "estimator", {"base": 8}, {"task": "estimator"})
    run_cli(*train_args(tiny_bone_data, tmp_path, epochs=1,
                        extra=["--model", "emanet", "--arch", "full", "--lam", "0", "--estimator", est, "--patch", 16]))
    _, meta = load_model(tmp_path / "w.pt")
    assert meta["level_map"].startswith("stage-1 estimator") and meta["patch"] == 16
    with pytest.raises(AssertionError, match="other denoisers take no map"):
        run_cli(*train_args(tiny_bone_data, tmp_path / "dncnn", epochs=1,
                            extra=["--model", "dncnn", "--depth", "3", "--estimator", est]))


def test_shared_level_maps_train_the_very_weights_of_the_in_step_estimator(tiny_bone_data, tmp_path):
    """`spectbone level-maps` computes the frozen estimator's maps once for every fine-tune: a fine-tune
    reading them ends with bit-identical weights (and history) to one running the estimator in its step;
    a table made for other settings is refused, naming the field."""
    from spectbone.models import build_model, load_model, save_model

    est = tmp_path / "estimator.pt"
    torch.manual_seed(0)
    save_model(est, build_model("estimator", base=8), "estimator", {"base": 8}, {"task": "estimator"})
    emanet = ["--model", "emanet", "--arch", "full", "--lam", "0.2", "--patch", 16, "--val-every", 5]
    maps = tmp_path / "maps.npz"
    run_cli("level-maps", "--estimator", est, "--preprocess-dir", tiny_bone_data, "--split",
            tiny_bone_data / "split.csv", "--epochs", 2, "--samples-per-epoch", 96, "--batch-size", 4, "--seed", 3,
            "--threads", 1, "--out", maps, "--log", tmp_path / "maps.log")
    run_cli(*train_args(tiny_bone_data, tmp_path / "in_step", epochs=2, extra=[*emanet, "--estimator", est]))
    run_cli(*train_args(tiny_bone_data, tmp_path / "shared", epochs=2, extra=[*emanet, "--level-maps", maps]))
    a = torch.load(tmp_path / "in_step" / "w.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "shared" / "w.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    drop = ["seconds"]
    h_in = pd.read_csv(tmp_path / "in_step" / "history.csv").drop(columns=drop)
    h_sh = pd.read_csv(tmp_path / "shared" / "history.csv").drop(columns=drop)
    pd.testing.assert_frame_equal(h_in, h_sh)
    _, meta = load_model(tmp_path / "shared" / "w.pt")
    assert "computed once" in meta["level_map"]

    refused = r"maps.npz: level maps computed for another run \(epochs: table 2, this run 3"
    with pytest.raises(AssertionError, match=refused):
        run_cli(*train_args(tiny_bone_data, tmp_path / "other", epochs=3, extra=[*emanet, "--level-maps", maps]))


def test_killed_run_resumes_to_identical_weights(tiny_bone_data, tmp_path):
    extra = ["--model", "dncnn", "--depth", "4", "--lam", "0"]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    run_cli(*train_args(tiny_bone_data, whole, epochs=3, extra=extra))

    args = [str(a) for a in train_args(tiny_bone_data, broken, epochs=3, extra=extra)]
    proc = subprocess.Popen([str(BIN / "spectbone"), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = broken / "ckpt" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-way: after epoch 1's checkpoint, during epoch 2
    proc.wait()
    assert ckpt.exists() and not (broken / "w.pt").exists()

    run_cli(*args)
    assert "resuming from" in (broken / "train.log").read_text()
    a = torch.load(whole / "w.pt", weights_only=False)["state_dict"]
    b = torch.load(broken / "w.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_wgan_critic_schedule_starts_when_the_critic_does():
    """Warm-up steps leave the critic's rate at its peak; its cosine then spans the adversarial steps only."""
    from torch import nn

    from spectbone.train.tasks import WGANTask

    task = WGANTask(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3), perceptual=None, val=None, lr=1e-3,
                    device="cpu", batch_size=2, critic_steps=1, gp_weight=10.0, perceptual_weight=0.1, warmup=0.3)
    task.set_total_steps(10)
    lr = lambda name: task.optimizers[name].param_groups[0]["lr"]  # noqa: E731
    for _ in range(task.warmup_steps):
        task.optimizers["generator"].step()
        task.after_batch()
    assert lr("critic") == 1e-3 and lr("generator") < 1e-3
    for _ in range(10 - task.warmup_steps):
        task.optimizers["generator"].step()
        task.optimizers["critic"].step()
        task.after_batch()
    assert lr("critic") == pytest.approx(1e-3 * task.LR_FLOOR) and lr("generator") == pytest.approx(1e-3 * task.LR_FLOOR)
