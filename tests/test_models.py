"""Networks: shapes, EMANet switches, residual identity, estimator expectation, save/load, overfitting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spectbone.train.losses import critic_loss_wgan_gp
from spectbone.models import MODEL_CLASSES, EMANET_ABLATIONS, build_model, count_parameters, load_model, save_model
from spectbone.models.blocks import RCAG, CFBlock, CoordinateAttention, MDBlock, RDCBlock
from spectbone.models.emanet import EMANet
from spectbone.models.noise_estimator import NoiseEstimator

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = {
    "estimator": {"base": 8},
    "emanet": {"base": 8},
    "dncnn": {"depth": 5, "channels": 16},
    "redcnn": {"channels": 16},
    "wgan_generator": {"channels": 16},
    "wgan_critic": {"channels": 8},
    "segmenter": {"base": 8},
}


def _images(n=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, 1, size, size, generator=g)
    noisy = clean + 0.1 * torch.randn(n, 1, size, size, generator=g)
    level = torch.full((n, 1, size, size), 25 / 255)
    return clean, noisy, level


def _run(kind, model, noisy, level):
    if kind == "emanet":
        return model(noisy, level)
    if kind in ("estimator", "segmenter", "wgan_critic"):
        return model(noisy)
    return model(noisy, None)


EXPECTED = {"estimator": (2, 50), "wgan_critic": (2,)}


@pytest.mark.parametrize("kind", sorted(MODEL_CLASSES))
def test_output_shapes_64(kind):
    torch.manual_seed(0)
    _, noisy, level = _images()
    out = _run(kind, build_model(kind, **SMALL[kind]), noisy, level)
    assert tuple(out.shape) == EXPECTED.get(kind, (2, 1, 64, 64))
    assert torch.isfinite(out).all()


def test_default_sizes_build():
    sizes = {k: count_parameters(build_model(k)) for k in MODEL_CLASSES}
    assert sizes["dncnn"] == 556_097            # the reference DnCNN-17, 64 channels
    assert sizes["emanet"] > sizes["estimator"] > 0


def test_paper_size_emanet_forward_64():
    _, noisy, level = _images(1)
    out = EMANet()(noisy, level)
    assert out.shape == noisy.shape


def test_blocks_shapes():
    x = torch.rand(2, 16, 32, 24)
    assert CoordinateAttention(16)(x).shape == x.shape
    assert RDCBlock(16, 8)(x).shape == (2, 8, 32, 24)
    assert MDBlock(16, 8, (5, 7, 9))(x).shape == (2, 8, 16, 12)
    assert MDBlock(16, 8, (2, 3, 5), pool=False)(x).shape == (2, 8, 32, 24)
    assert RCAG(16)(x, x).shape == x.shape
    assert RCAG(16, n_inputs=1)(x).shape == x.shape
    feats = [torch.rand(2, 8, 32, 32), torch.rand(2, 16, 16, 16), torch.rand(2, 32, 8, 8)]
    assert CFBlock([8, 16, 32])(feats).shape == (2, 1, 32, 32)


def test_coordinate_attention_gates_are_directional():
    ca = CoordinateAttention(8).eval()
    x = torch.rand(1, 8, 12, 20)
    g_h, g_w = ca.gates(x)
    assert g_h.shape == (1, 8, 12, 1) and g_w.shape == (1, 8, 1, 20)
    assert ((g_h > 0) & (g_h < 1)).all() and ((g_w > 0) & (g_w < 1)).all()
    assert torch.allclose(ca(x), x * g_h * g_w, atol=1e-6)


@pytest.mark.parametrize("switch", ["use_rdc", "use_md", "use_rcag", "use_cf"])
def test_each_emanet_switch_changes_the_network(switch):
    _, noisy, level = _images()
    full = dict(EMANET_ABLATIONS["full"])
    outs, counts = [], []
    for on in (True, False):
        torch.manual_seed(0)
        m = EMANet(base=8, **{**full, switch: on}).eval()
        head = m.head.head if m.use_cf else m.head
        torch.nn.init.constant_(head.weight, 0.1)  # the zero-initialised head would hide every difference
        counts.append(count_parameters(m))
        with torch.no_grad():
            outs.append(m(noisy, level))
    assert counts[0] != counts[1]
    assert not torch.allclose(outs[0], outs[1])


@pytest.mark.parametrize("kind,kwargs", [("dncnn", {"depth": 4, "channels": 8}), ("redcnn", {"channels": 8}),
                                         ("wgan_generator", {"channels": 8}), ("emanet", {"base": 8}),
                                         ("emanet", {"base": 8, **EMANET_ABLATIONS["plain"]})])
def test_untrained_denoisers_are_the_identity(kind, kwargs):
    """Zero-initialised residual heads: a short run starts at the noisy input, not below it."""
    _, noisy, level = _images()
    noisy = noisy.clamp(min=0)  # Poisson counts are never negative (RED-CNN ends in a ReLU)
    with torch.no_grad():
        assert torch.equal(build_model(kind, **kwargs).eval()(noisy, level), noisy)


def test_rcag_without_md_is_a_single_input_gate():
    on = EMANet(base=8, use_rdc=False, use_md=False, use_rcag=True, use_cf=False)
    off = EMANet(base=8, use_rdc=False, use_md=False, use_rcag=False, use_cf=False)
    assert all(f.n_inputs == 1 for f in on.fusions)
    assert count_parameters(on) > count_parameters(off)


def test_ablation_presets_grow_monotonically():
    counts = [count_parameters(EMANet(base=8, **EMANET_ABLATIONS[k]))
              for k in ("plain", "rdc", "rdc_md", "rdc_md_rcag", "full")]
    assert counts == sorted(counts) and len(set(counts)) == 5


def test_plain_is_a_plain_unet():
    m = EMANet(base=8, **EMANET_ABLATIONS["plain"])
    assert m.md is None and m.fusions is None and isinstance(m.head, torch.nn.Conv2d)
    assert not any(isinstance(x, (RDCBlock, CoordinateAttention)) for x in m.modules())


@pytest.mark.parametrize("preset", sorted(EMANET_ABLATIONS))
def test_residual_identity(preset):
    torch.manual_seed(0)
    _, noisy, level = _images()
    m = EMANet(base=8, **EMANET_ABLATIONS[preset]).eval()
    with torch.no_grad():
        assert torch.equal(m(noisy, level), noisy - m.predict_noise(noisy, level))


def test_level_map_broadcast_forms_agree():
    torch.manual_seed(0)
    _, noisy, level = _images()
    m = EMANet(base=8).eval()
    with torch.no_grad():
        ref = m(noisy, level)
        assert torch.allclose(m(noisy, torch.full((2,), 25 / 255)), ref)
        assert torch.allclose(m(noisy, torch.full((2, 1, 1, 1), 25 / 255)), ref)
        assert torch.allclose(m(noisy, 25 / 255), ref)


def test_emanet_rejects_sizes_not_divisible_by_8():
    with pytest.raises(ValueError):
        EMANet(base=8)(torch.rand(1, 1, 36, 36), 0.1)


def test_estimator_sigma_expectation():
    est = NoiseEstimator(base=8)
    logits = torch.full((3, 50), -1e4)
    for row, level in enumerate((1, 17, 50)):
        logits[row, level - 1] = 0.0                 # class index level-1 <-> level
    assert torch.allclose(est.sigma_from_logits(logits), torch.tensor([1.0, 17.0, 50.0]))
    assert torch.allclose(est.sigma_from_logits(torch.zeros(1, 50)), torch.tensor([25.5]))


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    _, noisy, level = _images()
    kwargs = {"base": 8, **EMANET_ABLATIONS["rdc_md"]}
    model = build_model("emanet", **kwargs)
    model(noisy, level)                              # move BN running statistics off their init
    model.eval()
    path = tmp_path / "sub" / "m.pt"
    save_model(path, model, "emanet", kwargs, {"epochs": 3, "data_source": "test"})
    loaded, meta = load_model(path)
    assert meta == {"epochs": 3, "data_source": "test"}
    assert not loaded.training
    blob = torch.load(path, weights_only=True)
    assert set(blob) == {"kind", "kwargs", "state_dict", "meta"} and blob["kind"] == "emanet"
    with torch.no_grad():
        assert torch.equal(loaded(noisy, level), model(noisy, level))


def test_build_model_unknown_kind():
    with pytest.raises(ValueError):
        build_model("unet3000")


# ------------------------------------------------------------------ tiny overfitting runs
def _overfit(kind, loss_fn, steps=40, size=32, lr=3e-3):
    torch.manual_seed(0)
    model = build_model(kind, **SMALL[kind])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("kind", ["emanet", "dncnn", "redcnn", "wgan_generator"])
def test_denoisers_overfit_two_images(kind):
    clean, noisy, level = _images(2, 32)
    losses = _overfit(kind, lambda m: F.mse_loss(_run(kind, m, noisy, level), clean), steps=120)
    assert losses[-1] < 0.3 * losses[0], losses[::10]


def test_estimator_overfits_two_levels():
    _, noisy, _ = _images(2, 32)
    target = torch.tensor([4, 39])
    losses = _overfit("estimator", lambda m: F.cross_entropy(m(noisy), target), steps=60)
    assert losses[-1] < 0.3 * losses[0], losses[::10]


def test_segmenter_overfits_a_mask():
    img, _, _ = _images(2, 32)
    mask = (img > 0.8).float()
    losses = _overfit("segmenter", lambda m: F.binary_cross_entropy_with_logits(m(img), mask), steps=60)
    assert losses[-1] < 0.3 * losses[0], losses[::10]


def test_critic_learns_to_separate():
    real, fake, _ = _images(2, 32)
    fake = fake.clamp(0, 1)
    losses = _overfit("wgan_critic", lambda m: critic_loss_wgan_gp(m, real, fake, gp_weight=10.0), steps=40,
                      lr=1e-3)
    assert losses[-1] < losses[0] - 0.5, losses[::10]
