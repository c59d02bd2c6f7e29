"""Losses: MSE / perceptual / composite, VGG weight sources, WGAN-GP terms, finite gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spectbone.train import losses
from spectbone.models.vgg import RANDOM_SOURCE, VGG_KEYS, load_vgg16_relu1_2
from spectbone.models.wgan_vgg import WGANCritic


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pair(seed=0, size=32):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(2, 1, size, size, generator=g)
    out = (clean + 0.1 * torch.randn(2, 1, size, size, generator=g)).requires_grad_(True)
    return out, clean


def _fake_vgg_state(seed=1):
    g = torch.Generator().manual_seed(seed)
    return {
        "features.0.weight": torch.randn(64, 3, 3, 3, generator=g) * 0.1,
        "features.0.bias": torch.randn(64, generator=g) * 0.1,
        "features.2.weight": torch.randn(64, 64, 3, 3, generator=g) * 0.05,
        "features.2.bias": torch.randn(64, generator=g) * 0.1,
        "features.5.weight": torch.randn(128, 64, 3, 3, generator=g),   # deeper layers are ignored
        "classifier.0.weight": torch.randn(4, 4, generator=g),
    }


def test_vgg_loads_from_state_dict_file(tmp_path):
    state = _fake_vgg_state()
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    vgg, source = load_vgg16_relu1_2(str(path))
    assert str(path) in source
    for key in VGG_KEYS:
        assert torch.equal(vgg.state_dict()[key], state[key])
    assert not any(p.requires_grad for p in vgg.parameters()) and not vgg.training


def test_vgg_random_only_when_asked_and_labelled():
    a, source = load_vgg16_relu1_2("random")
    b, _ = load_vgg16_relu1_2("random")
    assert source == RANDOM_SOURCE and source.startswith("random (ablation)")
    for key in VGG_KEYS:
        assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    _, default = load_vgg16_relu1_2()
    assert default.startswith("imagenet")


def test_vgg_rejects_wrong_file(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="bad.pth"):
        load_vgg16_relu1_2(str(path))
    with pytest.raises(FileNotFoundError):
        load_vgg16_relu1_2(str(tmp_path / "missing.pth"))


def test_composite_lambda_edges(tmp_path):
    path = tmp_path / "vgg.pth"
    torch.save(_fake_vgg_state(), path)
    out, clean = _pair()
    mse = losses.CompositeLoss(lam=0.0, vgg_weights=str(path))
    assert mse.perceptual is None and mse.weights_source == "none"
    assert torch.allclose(mse(out, clean), F.mse_loss(out, clean))
    perc = losses.PerceptualLoss(str(path))
    pure = losses.CompositeLoss(lam=1.0, vgg_weights=str(path))
    assert torch.allclose(pure(out, clean), perc(out, clean))
    mix = losses.CompositeLoss(lam=0.2, vgg_weights=str(path))
    assert mix.weights_source == perc.weights_source and mix.weights_source.startswith(f"file: {path}")
    expected = 0.8 * F.mse_loss(out, clean) + 0.2 * perc(out, clean)
    assert torch.allclose(mix(out, clean), expected)
    with pytest.raises(ValueError):
        losses.CompositeLoss(lam=1.5)


def test_perceptual_zero_on_identical_and_grey_replication():
    perc = losses.PerceptualLoss()
    _, clean = _pair()
    assert float(perc(clean, clean)) == 0.0
    feats = perc.features(clean)
    assert feats.shape == (2, 64, 32, 32)
    assert torch.allclose(feats, perc.features(clean.expand(-1, 3, -1, -1)))


def test_build_loss():
    assert losses.build_loss("mse").weights_source == "none"
    assert isinstance(losses.build_loss("perceptual"), losses.PerceptualLoss)
    assert losses.build_loss("composite", lam=0.3).lam == 0.3
    with pytest.raises(ValueError):
        losses.build_loss("l1")


@pytest.mark.parametrize("name,lam", [("mse", 0.0), ("perceptual", 1.0), ("composite", 0.2), ("composite", 0.0)])
def test_one_step_has_finite_gradients(name, lam):
    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    loss_fn = losses.build_loss(name, lam=lam)
    out, clean = _pair()
    loss = loss_fn(net(out.detach()), clean)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    vgg = getattr(loss_fn, "vgg", None) or getattr(getattr(loss_fn, "perceptual", None), "vgg", None)
    if vgg is not None:
        assert all(p.grad is None for p in vgg.parameters())        # frozen


def test_wgan_gp_losses_have_finite_gradients():
    torch.manual_seed(0)
    critic = WGANCritic(channels=8)
    gen = torch.nn.Conv2d(1, 1, 3, padding=1)
    fake_in, real = _pair()
    d_loss = losses.critic_loss_wgan_gp(critic, real, gen(fake_in.detach()), gp_weight=10.0)
    d_loss.backward()
    assert torch.isfinite(d_loss)
    assert all(torch.isfinite(p.grad).all() for p in critic.parameters())
    assert all(p.grad is None for p in gen.parameters())           # fake is detached for the critic
    critic.zero_grad()
    g_loss = losses.generator_adversarial_loss(critic, gen(fake_in.detach()))
    g_loss.backward()
    assert torch.isfinite(g_loss) and all(torch.isfinite(p.grad).all() for p in gen.parameters())


def test_gradient_penalty_of_a_1_lipschitz_linear_critic_is_zero():
    class Linear(torch.nn.Module):
        def forward(self, x):
            w = torch.zeros_like(x[0])
            w.view(-1)[0] = 1.0                                      # gradient norm exactly 1
            return (x * w).flatten(1).sum(1)

    real, fake = torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8)
    assert float(losses.gradient_penalty(Linear(), real, fake)) == pytest.approx(0.0, abs=1e-6)


def test_perceptual_is_eq13_sum_over_channels_per_pixel():
    """Paper eq. 13: squared relu1_2 differences summed over the 64 channels, divided by w*h."""
    out, clean = _pair()
    paper = losses.PerceptualLoss()
    wgan = losses.PerceptualLoss(channels="mean")
    diff = (paper.features(out) - paper.features(clean)).pow(2)
    assert torch.allclose(paper(out, clean), diff.sum(1).mean())
    assert torch.allclose(paper(out, clean), 64 * wgan(out, clean))
    with pytest.raises(ValueError):
        losses.PerceptualLoss(channels="max")


def test_balanced_unit_makes_the_two_terms_equal_on_the_calibration_pairs():
    """The balanced feature unit: perceptual == MSE on the pairs it was measured on, and the eq. 13
    form (sum over channels) is unchanged, only scaled; noise costs far more as features than pixels."""
    g = torch.Generator().manual_seed(3)
    clean = torch.rand(6, 1, 32, 32, generator=g)
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=g)
    paper = losses.PerceptualLoss()
    ratio = losses.perceptual_balance(paper, noisy, clean, batch_size=4)
    assert ratio > 100                                             # ImageNet relu1_2 amplifies pixel noise
    assert paper.scale == 1.0                                      # measuring leaves the loss as it was
    balanced = losses.PerceptualLoss(scale=1 / ratio)
    assert float(balanced(noisy, clean)) == pytest.approx(float(losses.mse_loss(noisy, clean)), rel=1e-4)
    assert float(balanced(noisy, clean)) == pytest.approx(float(paper(noisy, clean)) / ratio, rel=1e-6)
    with pytest.raises(ValueError, match="no noise"):
        losses.perceptual_balance(paper, clean, clean)
    with pytest.raises(ValueError, match="positive"):
        losses.PerceptualLoss(scale=0.0)
