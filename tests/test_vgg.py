"""The shipped ImageNet VGG-16 (up to relu1_2) weights and their loader: integrity, API, real-weights properties."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from spectbone.models.vgg import (DEFAULT_WEIGHTS, IMAGENET_MEAN, IMAGENET_STD, RANDOM_SOURCE, VGG_KEYS,
                                  VGG16Relu12, load_vgg16_relu1_2, sha256_file, weights_info)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPES = {"features.0.weight": (64, 3, 3, 3), "features.0.bias": (64,),
          "features.2.weight": (64, 64, 3, 3), "features.2.bias": (64,)}


def _recorded_sha256() -> str:
    text = (DEFAULT_WEIGHTS.parent / "VGG16_WEIGHTS.md").read_text()
    found = re.findall(r"^\| sha256 \| `([0-9a-f]{64})` \|$", text, flags=re.M)
    assert len(found) == 1, "VGG16_WEIGHTS.md must record exactly one sha256 row for the shipped file"
    return found[0]


def _adjacent_tap_correlation(w: torch.Tensor) -> float:
    """Mean over (filter, input channel) of corr(w[..., :, :-1], w[..., :, 1:]): horizontal neighbours."""
    w = w.detach().double().reshape(-1, 3, 3)
    a = w[:, :, :-1].reshape(len(w), -1)
    b = w[:, :, 1:].reshape(len(w), -1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return float(((a * b).sum(1) / ((a * a).sum(1) * (b * b).sum(1)).sqrt()).mean())


def _normalise(rgb01: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (rgb01 - mean) / std


@pytest.fixture(scope="module")
def imagenet():
    return load_vgg16_relu1_2()


def test_shipped_file_matches_recorded_sha256():
    assert DEFAULT_WEIGHTS.is_file()
    assert sha256_file(DEFAULT_WEIGHTS) == _recorded_sha256()


def test_shipped_file_is_a_plain_state_dict_of_38720_numbers():
    state = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
    assert list(state) == list(VGG_KEYS)
    for key, shape in SHAPES.items():
        assert tuple(state[key].shape) == shape and state[key].dtype == torch.float32
        assert torch.isfinite(state[key]).all()
    assert sum(t.numel() for t in state.values()) == 38_720


def test_default_is_the_shipped_imagenet_file_frozen_and_in_eval(imagenet):
    vgg, source = imagenet
    assert isinstance(vgg, VGG16Relu12) and not vgg.training
    assert not any(p.requires_grad for p in vgg.parameters())
    assert source.startswith("imagenet") and _recorded_sha256() in source and "random" not in source
    assert load_vgg16_relu1_2("imagenet")[1] == source == weights_info()["source"]
    info = weights_info(None)
    assert info["path"] == str(DEFAULT_WEIGHTS) and info["sha256"] == _recorded_sha256()
    state = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
    for key in VGG_KEYS:
        assert torch.equal(vgg.state_dict()[key], state[key])


def test_random_front_end_only_when_asked_and_labelled(imagenet):
    a, source = load_vgg16_relu1_2("random")
    b, _ = load_vgg16_relu1_2("random")
    assert source == RANDOM_SOURCE and source.startswith("random (ablation)")
    assert weights_info("random") == {"source": RANDOM_SOURCE, "path": "", "sha256": ""}
    assert not a.training and not any(p.requires_grad for p in a.parameters())
    for key in VGG_KEYS:
        assert torch.equal(a.state_dict()[key], b.state_dict()[key])           # fixed seed
    assert not torch.equal(a.state_dict()["features.0.weight"], imagenet[0].state_dict()["features.0.weight"])


def test_state_dict_file_full_vgg16_layout_loads(tmp_path):
    g = torch.Generator().manual_seed(1)
    state = {k: torch.randn(s, generator=g) for k, s in SHAPES.items()}
    state["features.5.weight"] = torch.randn(128, 64, 3, 3, generator=g)      # deeper layers are ignored
    state["classifier.0.weight"] = torch.randn(4, 4, generator=g)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    vgg, source = load_vgg16_relu1_2(path)
    assert source.startswith(f"file: {path}") and sha256_file(path) in source
    for key in VGG_KEYS:
        assert torch.equal(vgg.state_dict()[key], state[key])
    assert not vgg.training and not any(p.requires_grad for p in vgg.parameters())


def test_missing_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "nope" / "vgg16.pth"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_vgg16_relu1_2(str(path))
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        weights_info(path)


def test_bad_state_dicts_are_errors_naming_the_file(tmp_path):
    cases = {
        "missing_keys.pth": {"conv.weight": torch.zeros(1)},
        "wrong_shapes.pth": {k: torch.zeros(2, 2) for k in VGG_KEYS},
        "not_a_dict.pth": torch.zeros(3),
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
    torch.save(nn.Conv2d(3, 64, 3), tmp_path / "pickled_module.pth")   # needs weights_only=False: refused
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
    for name in [*cases, "pickled_module.pth", "garbage.pth"]:
        path = tmp_path / name
        with pytest.raises(ValueError, match=re.escape(str(path))):
            load_vgg16_relu1_2(path)


def test_weights_are_trained_filters_not_random(imagenet):
    """Trained VGG conv1 filters are smooth (oriented edge / colour blobs); random init has ~0 correlation."""
    vgg, _ = imagenet
    random_vgg, _ = load_vgg16_relu1_2("random")
    w1, w2 = vgg.features[0].weight, vgg.features[2].weight
    assert _adjacent_tap_correlation(w1) > 0.3
    assert _adjacent_tap_correlation(w2) > 0.3
    assert abs(_adjacent_tap_correlation(random_vgg.features[0].weight)) < 0.15
    assert abs(_adjacent_tap_correlation(random_vgg.features[2].weight)) < 0.15
    # the torchvision-convention conv1_1 is no longer mean-free per colour: it carries the Caffe->torchvision fold
    assert float(w1.abs().max()) > 1.0 and float(vgg.features[0].bias.abs().max()) > 0.5


def test_natural_image_gives_nontrivial_features(imagenet):
    from skimage import data
    cam = torch.from_numpy(data.camera()[::4, ::4].astype(np.float32) / 255.0)   # 128x128 grey, natural
    x = _normalise(cam.expand(1, 3, *cam.shape).contiguous())
    vgg, _ = imagenet
    with torch.no_grad():
        feat = vgg(x)[0]                                                         # [64, H, W]
    assert feat.shape == (64, 128, 128) and torch.isfinite(feat).all()
    active = (feat > 0).float().mean().item()
    assert 0.05 < active < 0.95                                                  # sparse, not dead, not all-on
    per_channel = feat.mean(dim=(1, 2))
    assert (per_channel > 0).sum() >= 32                                         # most channels respond somewhere
    assert float(per_channel.std()) > 0.1 * float(per_channel.mean().abs())      # channels differ
    spatial = feat.flatten(1).std(dim=1)
    assert (spatial > 1e-3).sum() >= 32                                          # responses follow the image
    # edge energy: the features change more where the image changes (gradient magnitude correlates)
    gy, gx = torch.gradient(cam)
    grad = (gx ** 2 + gy ** 2).sqrt()[2:-2, 2:-2].flatten()
    energy = feat.std(dim=0)[2:-2, 2:-2].flatten()
    corr = torch.corrcoef(torch.stack([grad, energy]))[0, 1].item()
    assert corr > 0.4                                                            # random front end: about -0.1
