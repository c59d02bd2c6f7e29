"""Process-wide helpers every verb shares: logging to the rule's log file, seeding, device choice."""

from __future__ import annotations

import logging
import os
import random
import sys
from pathlib import Path

import numpy as np

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def error_reason(exc: BaseException) -> str:
    """The operating system's words for an OSError ('No space left on device'), else the error's type name:
    what a log line may say about a failed read or write without quoting a path."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__


def setup_logging(log_file: str | os.PathLike | None = None, level: int = logging.INFO) -> logging.Logger:
    """Log to stderr and, when given, to the rule's `log:` file (created with its folder)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)
    return logging.getLogger("spectbone")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if imported) torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False


def pick_device(requested: str = "auto"):
    """CUDA when present (or asked for), else CPU; never assumed."""
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def set_threads(threads: int | None) -> None:
    """Match torch's intra-op threads to the cores Snakemake gave the job."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def start_training_job(args):
    """What every training verb does first: log to the rule's file, match torch's threads to the job's cores,
    pick the device (and say which, with CUDA_VISIBLE_DEVICES), seed everything. Returns the device."""
    setup_logging(args.log)
    set_threads(args.threads)
    device = pick_device(args.device)
    import torch

    logging.getLogger("spectbone").info("device=%s CUDA_VISIBLE_DEVICES=%s threads=%d", device,
                                        os.environ.get("CUDA_VISIBLE_DEVICES", "unset"), torch.get_num_threads())
    seed_everything(args.seed)
    return device


def add_common_arguments(parser, *, log: bool = True, seed: bool = False, threads: bool = False,
                         device: bool = False) -> None:
    """The arguments many verbs share: --log, and on request --seed, --threads, --device."""
    if device:
        parser.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when present)")
    if log:
        parser.add_argument("--log", help="log file (the rule's log:)")
    if seed:
        parser.add_argument("--seed", type=int, default=0, help="random seed")
    if threads:
        parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
