"""The first two VGG-16 conv layers (up to relu1_2), for the perceptual loss (paper eqs. 13-14).

Built with plain ``torch.nn`` (no torchvision): ``features[0..3]`` = conv3-64, ReLU, conv3-64, ReLU,
so a torchvision-format VGG-16 state_dict (keys ``features.0.weight``, ``features.0.bias``,
``features.2.weight``, ``features.2.bias``) loads straight into it.

Weights, in order of preference: the file given; a torchvision VGG-16 checkpoint in the torch hub
cache (``torch.hub.get_dir()/checkpoints/vgg16-*.pth``); else a fixed-seed random initialisation
(seed 0, Kaiming), with a warning, since nothing is downloaded.
"""

from __future__ import annotations

import glob
import logging
import os
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

VGG_KEYS = ("features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias")
RANDOM_SOURCE = "random-init (seed 0): no ImageNet VGG-16 weights found"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16Relu12(nn.Module):
    """VGG-16 ``features[0..3]``: [B,3,H,W] (ImageNet-normalised) -> relu1_2 features [B,64,H,W]."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _hub_checkpoints() -> list[str]:
    return sorted(glob.glob(os.path.join(torch.hub.get_dir(), "checkpoints", "vgg16-*.pth")))


def _load_state(module: VGG16Relu12, path: str | os.PathLike) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # older pickles
        state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    missing = [k for k in VGG_KEYS if k not in state]
    if missing:
        raise KeyError(f"{path} is not a torchvision-format VGG-16 state_dict: missing {missing}")
    module.load_state_dict({k: state[k] for k in VGG_KEYS})


def random_vgg16_relu1_2() -> VGG16Relu12:
    """The fixed-seed (0) Kaiming-initialised stand-in, identical on every machine."""
    gen = torch.Generator().manual_seed(0)
    module = VGG16Relu12()
    for m in module.features:
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                m.bias.zero_()
    return module


def load_vgg16_relu1_2(weights_path: str | os.PathLike | None = None) -> tuple[VGG16Relu12, str]:
    """``(module, source)``: frozen VGG-16 up to relu1_2, in eval mode, and where its weights came from."""
    module = VGG16Relu12()
    if weights_path:
        if not Path(weights_path).is_file():
            raise FileNotFoundError(f"VGG-16 weights {weights_path} not found")
        _load_state(module, weights_path)
        source = f"file: {weights_path}"
    else:
        source = ""
        for ckpt in _hub_checkpoints():
            try:
                _load_state(module, ckpt)
                source = f"torch hub cache: {ckpt}"
                break
            except Exception as exc:  # a broken cache file: try the next, else fall back
                log.warning("could not read VGG-16 checkpoint %s: %s", ckpt, exc)
        if not source:
            module = random_vgg16_relu1_2()
            source = RANDOM_SOURCE
            log.warning("perceptual loss: %s; using a fixed random VGG-16 front end "
                        "(pass --vgg-weights with a torchvision vgg16 state_dict for the paper's setting)", RANDOM_SOURCE)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module, source
