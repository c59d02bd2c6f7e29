"""Residual U-Net with squeeze-and-excitation, the lesion segmenter of the paper's Table 8.

Four resolutions (widths base, 2, 4, 8 x base, bottleneck 16 x base at 1/16; H, W divisible by 16).
Each block: conv3x3-BN-ReLU-conv3x3-BN, squeeze-and-excitation, plus a (1x1-projected) shortcut,
ReLU. Max pooling down, 2x2 transposed convolutions up, concatenated skips, 1x1 conv to one logit
channel.
"""

from __future__ import annotations

import torch
from torch import nn

from spectbone.models.blocks import SqueezeExcitation


class ResSEBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
            SqueezeExcitation(out_ch))
        self.short = nn.Identity() if in_ch == out_ch else nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.short(x))


class ResUNetSE(nn.Module):
    """``ResUNetSE(base=16, in_ch=1, depth=4)``: image [B,1,H,W] in [0,1] -> lesion logits [B,1,H,W].

    H and W must be divisible by 2**depth.
    """

    def __init__(self, base: int = 16, in_ch: int = 1, depth: int = 4):
        super().__init__()
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.depth = depth
        self.encoders = nn.ModuleList(ResSEBlock(cin, cout) for cin, cout in zip([in_ch] + widths[:-1], widths))
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth))
        self.decoders = nn.ModuleList(ResSEBlock(2 * widths[i], widths[i]) for i in range(depth))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2 ** self.depth or x.shape[-2] % 2 ** self.depth:
            raise ValueError(f"ResUNetSE needs H and W divisible by {2 ** self.depth}, got {tuple(x.shape)}")
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x)
            if i < self.depth:
                skips.append(x)
                x = self.pool(x)
        for i in range(self.depth - 1, -1, -1):
            x = self.decoders[i](torch.cat([self.ups[i](x), skips[i]], dim=1))
        return self.head(x)
