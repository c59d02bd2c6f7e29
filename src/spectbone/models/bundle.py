"""`spectbone bundle --model EMANET.pt --estimator ESTIMATOR.pt -o OUT.pt`: one file for the two stages.

A hospital should be handed one weights file, not two that must be kept together: EMANet's level
map comes from the stage-1 estimator it was fine-tuned with, and the wrong estimator silently gives
wrong levels. The bundle is the denoiser's own weights file with the estimator (kind, kwargs,
state_dict and the sha256 of the file it came from) inside ``meta["estimator"]``, plain data that
the weights-only unpickler reads; `spectbone denoise --model OUT.pt` then needs nothing else.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from spectbone.util.atomic import atomic_path
from spectbone.util.hashing import sha256_file
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.models.bundle")


def _blob(path: Path) -> dict:
    from spectbone.models import WeightsRejected

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsRejected(f"{path.name}: not loadable with the safe (weights-only) loader "
                              f"({type(exc).__name__})") from None
    if not isinstance(blob, dict) or not {"kind", "kwargs", "state_dict"} <= set(blob):
        raise WeightsRejected(f"{path.name}: not a spectbone weights file")
    return blob


def embed_estimator(model_path, estimator_path, out_path) -> None:
    """Write `out_path`: the denoiser of `model_path` carrying the estimator of `estimator_path`."""
    model_path, estimator_path = Path(model_path), Path(estimator_path)
    model, est = _blob(model_path), _blob(estimator_path)
    if model["kind"] != "emanet":
        raise ValueError(f"{model_path.name} is a {model['kind']!r} network; only EMANet takes a level map")
    if est["kind"] != "estimator":
        raise ValueError(f"{estimator_path.name} is a {est['kind']!r} network, not a stage-1 noise estimator")
    model.setdefault("meta", {})["estimator"] = {"kind": "estimator", "kwargs": est["kwargs"],
                                                 "state_dict": est["state_dict"],
                                                 "sha256": sha256_file(estimator_path)}
    with atomic_path(out_path) as tmp:
        torch.save(model, tmp)


def add_arguments(parser, verb):
    parser.add_argument("--model", required=True, help="EMANet weights (models/emanet_*.pt)")
    parser.add_argument("--estimator", required=True, help="the stage-1 weights it was fine-tuned with")
    parser.add_argument("-o", "--out", required=True, help="the one-file two-stage model to write")
    add_common_arguments(parser, log=True)


def run(args) -> int:
    setup_logging(args.log)
    embed_estimator(args.model, args.estimator, args.out)
    log.info("wrote %s: %s with its stage-1 estimator inside", Path(args.out).name, Path(args.model).name)
    return 0
