"""RED-CNN (Chen et al., IEEE TMI 2017, "Low-dose CT with a residual encoder-decoder CNN").

Five 5x5 convolutions (valid padding, ``channels`` filters, ReLU) shrink the image by 4 pixels each;
five 5x5 transposed convolutions grow it back. Three shortcuts, as in the reference implementation:
the conv4 output is added after deconv1, the conv2 output after deconv3, and the input image after
deconv5 (each before its ReLU). The last deconvolution starts at zero, so the untrained network is
the identity on non-negative images.
"""

from __future__ import annotations

import torch
from torch import nn

from spectbone.models.blocks import zero_init_


class REDCNN(nn.Module):
    """``REDCNN(channels=96, in_ch=1)``; ``forward(noisy, level_map=None) -> denoised`` (map ignored).

    Needs H, W > 20 (five valid 5x5 convolutions).
    """

    def __init__(self, channels: int = 96, in_ch: int = 1):
        super().__init__()
        c = channels
        self.conv = nn.ModuleList([nn.Conv2d(in_ch, c, 5)] + [nn.Conv2d(c, c, 5) for _ in range(4)])
        self.deconv = nn.ModuleList([nn.ConvTranspose2d(c, c, 5) for _ in range(4)] + [nn.ConvTranspose2d(c, in_ch, 5)])
        self.relu = nn.ReLU()
        zero_init_(self.deconv[-1])  # output = ReLU(0 + input) = input at step 0 (inputs are >= 0)

    def forward(self, noisy: torch.Tensor, level_map=None) -> torch.Tensor:
        r1 = noisy
        out = self.relu(self.conv[0](noisy))
        out = self.relu(self.conv[1](out))
        r2 = out
        out = self.relu(self.conv[2](out))
        out = self.relu(self.conv[3](out))
        r3 = out
        out = self.relu(self.conv[4](out))
        out = self.relu(self.deconv[0](out) + r3)
        out = self.relu(self.deconv[1](out))
        out = self.relu(self.deconv[2](out) + r2)
        out = self.relu(self.deconv[3](out))
        return self.relu(self.deconv[4](out) + r1)
