"""Stage 1 of EMANet: the noise-level estimation network (paper Sec. 1.2.1, Fig. 2a).

A 3-level U-Net of RDC blocks (full, 1/2 and 1/4 resolution; widths base, 2*base, 4*base),
max pooling down, 2x2 transposed convolutions up, skip connections by concatenation; then global
average pooling and a fully connected layer give logits over ``n_levels`` noise-level classes.
Class index k (0..n_levels-1) is noise level k+1 grey levels (levels 1..50 on the 0..255 scale).
Trained with cross-entropy; the sigma estimate is the expectation of the level under the softmax.
"""

from __future__ import annotations

import torch
from torch import nn

from spectbone.models.blocks import ConvBlock, RDCBlock


class NoiseEstimator(nn.Module):
    """``NoiseEstimator(base=32, n_levels=50, in_ch=1, use_rdc=True)``: [B,in_ch,H,W] in [0,1] -> logits [B,n_levels].

    H and W must be divisible by 4. ``use_rdc=False`` swaps the RDC blocks for plain ConvBlocks.
    """

    def __init__(self, base: int = 32, n_levels: int = 50, in_ch: int = 1, use_rdc: bool = True):
        super().__init__()
        self.n_levels = n_levels
        block = RDCBlock if use_rdc else ConvBlock
        b = base
        self.enc0 = block(in_ch, b)
        self.enc1 = block(b, 2 * b)
        self.bottleneck = block(2 * b, 4 * b)
        self.pool = nn.MaxPool2d(2)
        self.up1 = nn.ConvTranspose2d(4 * b, 2 * b, 2, stride=2)
        self.dec1 = block(4 * b, 2 * b)
        self.up0 = nn.ConvTranspose2d(2 * b, b, 2, stride=2)
        self.dec0 = block(2 * b, b)
        self.fc = nn.Linear(b, n_levels)
        self.register_buffer("levels", torch.arange(1, n_levels + 1, dtype=torch.float32), persistent=False)

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        e0 = self.enc0(noisy)
        e1 = self.enc1(self.pool(e0))
        bt = self.bottleneck(self.pool(e1))
        d1 = self.dec1(torch.cat([self.up1(bt), e1], dim=1))
        d0 = self.dec0(torch.cat([self.up0(d1), e0], dim=1))
        return self.fc(d0.mean(dim=(2, 3)))

    def sigma_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Expected noise level in grey levels: sum_k softmax(logits)_k * (k + 1), shape [B]."""
        probs = torch.softmax(logits.float(), dim=-1)
        return probs @ self.levels.to(probs.device)

    @torch.no_grad()
    def estimate_sigma(self, noisy: torch.Tensor) -> torch.Tensor:
        """Convenience: sigma estimate [B] (grey levels) for a batch of noisy images."""
        return self.sigma_from_logits(self(noisy))
