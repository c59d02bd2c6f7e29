"""How a training step runs on this device: memory format, autocast precision, optimiser kernel, frozen nets.

``step_settings(device, mode)`` picks what measurably helps where it helps (``spectbone bench train``
measures each choice side by side with the plain fp32 NCHW path, and the short-run validation PSNR):

- CUDA: channels_last, bfloat16 autocast (where the card has bf16) and TF32 matmuls/convolutions.
- CPU with AMX tiles (Sapphire Rapids and later): channels_last + bfloat16 autocast, which oneDNN
  runs on the AMX units.
- any other CPU (AVX2 / AVX-512 without AMX): fp32 NCHW. There bfloat16 is emulated (6-30x slower
  per step, measured on an AVX2 EPYC) and channels_last alone was slower than NCHW for these
  small-width networks; the fused CPU Adam saved ~1 % of a step and changed the rounding, so the
  CPU keeps the plain Adam loop. torch.compile (inductor) is not used: on a 2-core CPU it had not
  finished compiling EMANet's forward + backward after 8 minutes, longer than a default-config run.

Losses are always computed in fp32 on the fp32 copy of the network's output (``Task`` does the cast),
so autocast changes only the convolutions' arithmetic. ``mode="fp32"`` is the old path (NCHW, fp32,
plain Adam loop), kept for the bench and as an escape hatch (``spectbone train --precision fp32``).

Frozen networks used inside a step (EMANet's stage-1 estimator, about a third of its fp32 step) get
their BatchNorms folded into the preceding convolutions (exact up to float rounding; ~1.4x faster).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger("spectbone.train.speed")

MODES = ("auto", "fp32")


@dataclass(frozen=True)
class StepSettings:
    """The numerics and kernels of one training step (the defaults are the old fp32 NCHW path)."""

    device_type: str = "cpu"
    channels_last: bool = False
    autocast_dtype: torch.dtype | None = None   # None: fp32 everywhere
    fused_optimizer: bool = False
    fold_frozen: bool = False                   # BN folded into the convolutions of frozen networks

    @property
    def label(self) -> str:
        parts = ["channels_last" if self.channels_last else "NCHW",
                 str(self.autocast_dtype).replace("torch.", "") + " autocast" if self.autocast_dtype else "fp32"]
        if self.fused_optimizer:
            parts.append("fused Adam")
        if self.fold_frozen:
            parts.append("folded frozen BN")
        return ", ".join(parts)

    def autocast(self):
        """The autocast context of the forward pass (a no-op context in fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)

    def to_format(self, x: torch.Tensor) -> torch.Tensor:
        """A 4-d batch in the step's memory format."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def prepare(self, module: nn.Module) -> nn.Module:
        """The module's parameters in the step's memory format (in place; returns it)."""
        if self.channels_last:
            module.to(memory_format=torch.channels_last)
        return module

    def adam(self, params, lr: float, betas) -> torch.optim.Optimizer:
        """Adam; the fused kernel (one pass over all parameters) where the settings ask for it."""
        if self.fused_optimizer:
            return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        return torch.optim.Adam(params, lr=lr, betas=betas)


FP32 = StepSettings()


def has_amx() -> bool:
    """Whether this CPU has AMX tiles (bfloat16 matrix units oneDNN uses for bf16 convolutions)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe()) if probe is not None else False


def step_settings(device, mode: str = "auto") -> StepSettings:
    """The fastest settings of this device whose short-run validation PSNR matches fp32 (see module doc)."""
    device = torch.device(device)
    if mode not in MODES:
        raise ValueError(f"unknown precision mode {mode!r} ({', '.join(MODES)})")
    if mode == "fp32":
        return StepSettings(device_type=device.type)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        bf16 = torch.cuda.is_bf16_supported()
        return StepSettings("cuda", channels_last=True, autocast_dtype=torch.bfloat16 if bf16 else None,
                            fused_optimizer=True, fold_frozen=True)
    amx = device.type == "cpu" and has_amx()
    return StepSettings(device.type, channels_last=amx, autocast_dtype=torch.bfloat16 if amx else None,
                        fold_frozen=True)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode network with every Conv2d -> BatchNorm2d pair of an nn.Sequential folded into
    one convolution (the BN's affine map absorbed in its weights): the same function, one pass fewer."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    for seq in folded.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = nn.Identity()
    return folded.requires_grad_(False)
