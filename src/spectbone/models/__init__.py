"""The networks: EMANet (noise estimator + backbone), the baselines, and the lesion segmenter.

``build_model(kind, **kwargs)`` builds one by name; ``save_model`` / ``load_model`` write and read
``{"kind", "kwargs", "state_dict", "meta"}`` so a weights file rebuilds its own network.
One network per file; shared building blocks (RDC, MD, RCAG, CF, coordinate attention) in ``blocks``.
Built by workflow/rules/train.smk jobs, loaded by infer.smk jobs and `spectbone denoise`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from spectbone.models.dncnn import DnCNN
from spectbone.models.emanet import EMANET_ABLATIONS, EMANet
from spectbone.models.noise_estimator import NoiseEstimator
from spectbone.models.redcnn import REDCNN
from spectbone.models.resunet_se import ResUNetSE
from spectbone.models.wgan_vgg import WGANCritic, WGANGenerator

MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "estimator": NoiseEstimator,
    "emanet": EMANet,
    "dncnn": DnCNN,
    "redcnn": REDCNN,
    "wgan_generator": WGANGenerator,
    "wgan_critic": WGANCritic,
    "segmenter": ResUNetSE,
}

__all__ = ["MODEL_CLASSES", "EMANET_ABLATIONS", "EMANet", "NoiseEstimator", "DnCNN", "REDCNN", "WGANGenerator",
           "WGANCritic", "ResUNetSE", "build_model", "save_model", "load_model", "count_parameters", "WeightsRejected"]


def build_model(kind: str, **kwargs) -> nn.Module:
    """A fresh network of ``kind`` (one of MODEL_CLASSES) with constructor ``kwargs``."""
    try:
        cls = MODEL_CLASSES[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}; one of {sorted(MODEL_CLASSES)}") from None
    return cls(**kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def plain(value):
    """`value` as plain Python (dict/list/str/int/float/bool/None, tensors kept), which the
    weights-only unpickler accepts: numpy scalars become numbers, anything else its string."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if value is None or isinstance(value, (str, bool, int, float, torch.Tensor)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return plain(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def save_model(path: str | os.PathLike, model: nn.Module, kind: str, kwargs: dict, meta: dict | None = None) -> None:
    """``torch.save({"kind", "kwargs", "state_dict", "meta"})`` (tensors moved to CPU), creating the folder.

    kwargs and meta are stored as plain Python, so `load_model` never needs the unsafe unpickler."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"kind": kind, "kwargs": plain(dict(kwargs)), "state_dict": state, "meta": plain(dict(meta or {}))},
               path)


class WeightsRejected(ValueError):
    """A weights file the safe loader refuses or that is not a spectbone model."""


def load_model(path: str | os.PathLike, map_location="cpu") -> tuple[nn.Module, dict]:
    """``(model in eval mode on map_location, meta)`` from a :func:`save_model` file.

    Always ``weights_only=True``: a weights file can come from anyone, and the full unpickler runs
    whatever code the file names."""
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise WeightsRejected(f"{Path(path).name}: not loadable with the safe (weights-only) loader "
                              f"({type(exc).__name__}); spectbone only loads plain weights files") from None
    if not isinstance(blob, dict) or not {"kind", "kwargs", "state_dict"} <= set(blob):
        raise WeightsRejected(f"{Path(path).name}: not a spectbone weights file (no kind/kwargs/state_dict)")
    model = build_model(blob["kind"], **blob["kwargs"])
    model.load_state_dict(blob["state_dict"])
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    model.eval()
    return model, blob.get("meta", {})
