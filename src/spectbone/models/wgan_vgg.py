"""WGAN-VGG (Yang et al., IEEE TMI 2018): generator and critic for the paper's Table 7 baseline.

Generator: eight 3x3 conv layers, ``channels`` (32) filters in the first seven, one in the last,
ReLU after the first seven. Here it is residual (denoised = noisy + body(noisy)) with the last layer
starting at zero, so the untrained generator is the identity and the adversarial game starts from
the noisy image rather than from noise; the reference's final ReLU is left out for the same reason.
Critic: six 3x3 conv layers with ``c, c, 2c, 2c, 4c, 4c`` filters (c = 64), strides 1, 2, 1, 2,
1, 2, LeakyReLU(0.2), no batch norm (the gradient penalty forbids it), then FC 1024 - LeakyReLU -
FC 1. The reference critic takes fixed 64x64 patches and flattens the 8x8 feature grid; here an
adaptive average pool to a 4x4 grid before the first FC lets it score any image size.
"""

from __future__ import annotations

import torch
from torch import nn

from spectbone.models.blocks import zero_init_


class WGANGenerator(nn.Module):
    """``WGANGenerator(channels=32, depth=8, in_ch=1)``; ``forward(noisy, level_map=None) -> denoised``."""

    def __init__(self, channels: int = 32, depth: int = 8, in_ch: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_ch
        for i in range(depth):
            cout = in_ch if i == depth - 1 else channels
            layers.append(nn.Conv2d(cin, cout, 3, padding=1))
            if i < depth - 1:
                layers.append(nn.ReLU(inplace=True))
            cin = cout
        self.body = nn.Sequential(*layers)
        zero_init_(layers[-1])

    def forward(self, noisy: torch.Tensor, level_map=None) -> torch.Tensor:
        return noisy + self.body(noisy)


class WGANCritic(nn.Module):
    """``WGANCritic(channels=64, in_ch=1, fc=1024)``; ``forward(image) -> score [B]`` (unbounded)."""

    def __init__(self, channels: int = 64, in_ch: int = 1, fc: int = 1024):
        super().__init__()
        c = channels
        widths = [c, c, 2 * c, 2 * c, 4 * c, 4 * c]
        strides = [1, 2, 1, 2, 1, 2]
        layers: list[nn.Module] = []
        cin = in_ch
        for w, s in zip(widths, strides):
            layers += [nn.Conv2d(cin, w, 3, stride=s, padding=1), nn.LeakyReLU(0.2)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(cin * 16, fc), nn.LeakyReLU(0.2), nn.Linear(fc, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(image))).squeeze(1)
