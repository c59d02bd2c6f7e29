"""DnCNN (Zhang et al., IEEE TIP 2017): the paper's Table 7 baseline.

``depth`` 3x3 conv layers of ``channels`` filters: conv-ReLU, (depth - 2) x conv-BN-ReLU, conv to
one channel. The network predicts the noise; the output is ``noisy - noise`` (residual learning).
The last layer starts at zero, so the untrained network is the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from spectbone.models.blocks import zero_init_


class DnCNN(nn.Module):
    """``DnCNN(depth=17, channels=64, in_ch=1)``; ``forward(noisy, level_map=None) -> denoised`` (map ignored)."""

    def __init__(self, depth: int = 17, channels: int = 64, in_ch: int = 1):
        super().__init__()
        if depth < 3:
            raise ValueError("DnCNN needs depth >= 3")
        layers: list[nn.Module] = [nn.Conv2d(in_ch, channels, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(channels, in_ch, 3, padding=1))
        self.body = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        zero_init_(layers[-1])  # predicted noise 0 at step 0: the network starts as the identity

    def predict_noise(self, noisy: torch.Tensor, level_map=None) -> torch.Tensor:
        return self.body(noisy)

    def forward(self, noisy: torch.Tensor, level_map=None) -> torch.Tensor:
        return noisy - self.body(noisy)
