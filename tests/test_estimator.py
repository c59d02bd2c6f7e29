"""Stage-1 noise-level estimator: noise features, the level head's start, the training loss, a short run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spectbone.models import load_model, save_model
from spectbone.models.noise_estimator import NoiseEstimator
from spectbone.noise.poisson import MAX_GREY, add_poisson_level_noise
from spectbone.train.tasks import EstimatorTask

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _smooth_image(size=64, seed=0) -> np.ndarray:
    """A smooth 'body' in grey levels (a wide bump on a low background), no noise of its own."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    cy, cx = rng.uniform(0.35, 0.65, 2)
    img = 20 + 180 * np.exp(-(((yy - cy) / 0.3) ** 2 + ((xx - cx) / 0.25) ** 2))
    return img.astype(np.float32)


def _noisy_batch(levels, size=64, seed=0) -> torch.Tensor:
    imgs = [add_poisson_level_noise(_smooth_image(size, seed + i), lv, seed + 100 + i) for i, lv in enumerate(levels)]
    return torch.from_numpy(np.stack(imgs) / MAX_GREY).float()[:, None]


def test_noise_stats_measure_the_added_level():
    est = NoiseEstimator(base=4)
    noisy = _noisy_batch([5, 20, 40], size=128)
    stats = est.noise_stats(noisy, est.residual(noisy))
    rms = torch.exp(stats[:, 0] + np.log(10.0))
    # unit-gain high-pass on a smooth image: its RMS is the noise's RMS, sigma
    assert torch.allclose(rms, torch.tensor([5.0, 20.0, 40.0]), rtol=0.08), rms
    mean = torch.exp(stats[:, 1] + np.log(60.0))
    assert torch.allclose(mean, noisy.mean(dim=(1, 2, 3)) * MAX_GREY, rtol=1e-4)


def test_untrained_estimator_starts_at_the_residual_rms():
    """The level head starts as 'sigma = RMS of the high-pass residual': sensible before any training."""
    torch.manual_seed(0)
    est = NoiseEstimator(base=4).eval()
    with torch.no_grad():
        sigma = est.estimate_sigma(_noisy_batch([8, 25, 40], size=64))
    assert torch.allclose(sigma, torch.tensor([8.0, 25.0, 40.0]), rtol=0.15), sigma


def test_bare_paper_network_still_builds():
    est = NoiseEstimator(base=4, noise_features=False)
    assert est.enc0.head[0].in_channels == 1 and est.level_head is None
    assert est(torch.rand(2, 1, 32, 32)).shape == (2, 50)


def test_window_crops_only_the_unet():
    torch.manual_seed(0)
    est = NoiseEstimator(base=4).train()
    noisy = _noisy_batch([10, 30], size=64)
    assert est(noisy, window=32).shape == (2, 50)
    assert est(noisy, window=64).shape == (2, 50)     # window >= image: the whole image


@pytest.mark.parametrize("kwargs", [{"base": 4}, {"base": 4, "noise_features": False}, {"base": 4, "level_head": False}])
def test_save_load_round_trip(tmp_path, kwargs):
    torch.manual_seed(0)
    model = NoiseEstimator(**kwargs)
    model(_noisy_batch([10, 30], size=32))          # move BN running statistics off their init
    model.eval()
    save_model(tmp_path / "est.pt", model, "estimator", kwargs)
    loaded, _ = load_model(tmp_path / "est.pt")
    x = _noisy_batch([15, 35], size=32, seed=5)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_loss_soft_targets_and_one_hot():
    torch.manual_seed(0)
    model = NoiseEstimator(base=4)
    logits, level = torch.randn(3, 50), torch.tensor([1, 20, 50])
    one_hot = EstimatorTask(model, None, 1e-3, "cpu", 8, label_sigma=0.0, reg_weight=0.0)
    assert torch.allclose(one_hot.loss(logits, level), F.cross_entropy(logits, level - 1))
    soft = EstimatorTask(model, None, 1e-3, "cpu", 8, label_sigma=1.5, reg_weight=0.0)
    # a prediction peaked one level off costs less under the soft target than under the one-hot one
    off = torch.full((1, 50), -20.0)
    off[0, 20] = 0.0                                 # predicts level 21, truth 20
    assert soft.loss(off, torch.tensor([20])) < one_hot.loss(off, torch.tensor([20]))
    reg = EstimatorTask(model, None, 1e-3, "cpu", 8, label_sigma=1.5, reg_weight=1.0)
    assert reg.loss(off, torch.tensor([20])) > soft.loss(off, torch.tensor([20]))


def test_short_training_run_lowers_the_loss():
    """Images carrying Poisson noise of their own (as acquired scans do), noise drawn per step, the
    U-Net on windows: a short run lowers the training loss and keeps the estimate finite."""
    torch.manual_seed(0)
    model = NoiseEstimator(base=4)
    task = EstimatorTask(model, None, 3e-3, "cpu", 8, window=16)
    task.set_total_steps(60)
    rng = np.random.default_rng(0)
    imgs = [add_poisson_level_noise(_smooth_image(32, s) * rng.uniform(0.4, 1.0), 6.0, rng) for s in range(8)]
    losses = []
    for step in range(60):
        r = np.random.default_rng(step)
        lv = r.integers(1, 51, 8)
        noisy = np.stack([add_poisson_level_noise(imgs[i], lv[i], r) for i in range(8)])
        losses.append(task.step({"noisy": torch.from_numpy(noisy / MAX_GREY).float()[:, None],
                                 "level": torch.from_numpy(lv)})["loss"])
        task.after_batch()
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10]), losses[::10]
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model.estimate_sigma(_noisy_batch([10, 30], size=32))).all()
