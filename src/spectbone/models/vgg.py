"""VGG-16 up to relu1_2 (conv1_1, ReLU, conv1_2, ReLU), the feature extractor of the perceptual loss
(paper eqs. 13-14).

Plain ``torch.nn`` (no torchvision), numbered like torchvision's ``vgg16().features[0..3]``, so a
torchvision-format state_dict loads straight in. Inputs: RGB in [0, 1] normalised by ``IMAGENET_MEAN`` /
``IMAGENET_STD``. Weights (``load_vgg16_relu1_2``): by default the ImageNet VGG-16 weights shipped with the
package (``DEFAULT_WEIGHTS``; source, conversion and CC BY 4.0 attribution in ``data/VGG16_WEIGHTS.md``);
or a torchvision-format VGG-16 state_dict file; or, only when asked for by name, ``"random"``: a
fixed-seed random front end for ablations. Nothing is downloaded and nothing falls back silently.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import torch
from torch import nn

from spectbone.util.hashing import sha256_file

VGG_KEYS = ("features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias")
VGG_SHAPES = {"features.0.weight": (64, 3, 3, 3), "features.0.bias": (64,),
              "features.2.weight": (64, 64, 3, 3), "features.2.bias": (64,)}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_WEIGHTS = Path(str(files("spectbone.models").joinpath("data", "vgg16_imagenet_relu1_2.pt")))
IMAGENET_SOURCE = "imagenet (VGG-16 ImageNet weights of Simonyan & Zisserman, CC BY 4.0, via Keras)"
RANDOM_SOURCE = "random (ablation): fixed-seed Kaiming init (seed 0), not ImageNet weights"


class VGG16Relu12(nn.Module):
    """VGG-16 ``features[0..3]``: [B,3,H,W] (ImageNet-normalised) -> relu1_2 features [B,64,H,W]."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)



def random_vgg16_relu1_2() -> VGG16Relu12:
    """The fixed-seed (0) Kaiming-initialised front end, identical on every machine (ablation only)."""
    gen = torch.Generator().manual_seed(0)
    module = VGG16Relu12()
    for m in module.features:
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                m.bias.zero_()
    return module


def _resolve(weights: str | os.PathLike | None) -> tuple[str, Path | None]:
    """``(kind, path)``: kind "imagenet", "file" or "random"."""
    if weights is None or (isinstance(weights, str) and weights in ("", "imagenet")):
        return "imagenet", DEFAULT_WEIGHTS
    if isinstance(weights, str) and weights == "random":
        return "random", None
    return "file", Path(weights)


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """The 4 relu1_2 tensors of a torchvision-format VGG-16 state_dict file (full vgg16 or just those keys)."""
    if not path.is_file():
        raise FileNotFoundError(f"VGG-16 weights file {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"VGG-16 weights file {path} is not a state_dict readable with "
                         f"torch.load(weights_only=True): {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"VGG-16 weights file {path} holds a {type(state).__name__}, not a state_dict")
    missing = [k for k in VGG_KEYS if k not in state]
    if missing:
        raise ValueError(f"VGG-16 weights file {path} is not a torchvision-format VGG-16 state_dict: "
                         f"missing {missing}")
    bad = [f"{k} {tuple(state[k].shape) if torch.is_tensor(state[k]) else type(state[k]).__name__}"
           for k in VGG_KEYS if not torch.is_tensor(state[k]) or tuple(state[k].shape) != VGG_SHAPES[k]]
    if bad:
        raise ValueError(f"VGG-16 weights file {path}: wrong shapes {bad}, expected {VGG_SHAPES}")
    return {k: state[k].float() for k in VGG_KEYS}


def weights_info(weights: str | os.PathLike | None = None) -> dict[str, str]:
    """``{"source", "path", "sha256"}`` of a ``weights`` choice (as in ``load_vgg16_relu1_2``), not loading it.

    ``path`` and ``sha256`` are "" for ``"random"``.
    """
    kind, path = _resolve(weights)
    if kind == "random":
        return {"source": RANDOM_SOURCE, "path": "", "sha256": ""}
    if not path.is_file():
        raise FileNotFoundError(f"VGG-16 weights file {path} not found")
    digest = sha256_file(path)
    if kind == "imagenet":  # package-relative name: the same string on every machine
        source = f"{IMAGENET_SOURCE}: spectbone/models/data/{path.name} (sha256 {digest})"
    else:
        source = f"file: {path} (sha256 {digest})"
    return {"source": source, "path": str(path), "sha256": digest}


def load_vgg16_relu1_2(weights: str | os.PathLike | None = None) -> tuple[VGG16Relu12, str]:
    """``(module, source)``: VGG-16 up to relu1_2, frozen and in eval mode, and where its weights came from.

    ``weights``: None or "imagenet" (the shipped ImageNet weights, ``DEFAULT_WEIGHTS``); a path to a
    torchvision-format VGG-16 state_dict (read with ``weights_only=True``); or "random" (ablation).
    ``source`` is ``weights_info(weights)["source"]``: it starts with "imagenet", "file: PATH" or
    "random (ablation)", and names the file's sha256. A missing file raises FileNotFoundError, an
    unreadable or wrong one ValueError, both naming the file.
    """
    kind, path = _resolve(weights)
    if kind == "random":
        module = random_vgg16_relu1_2()
    else:
        module = VGG16Relu12()
        module.load_state_dict(_read_state(path))
    source = weights_info(weights)["source"]
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module, source
