"""Stage 2 of EMANet: the backbone denoising network (paper Sec. 1.2.2, Fig. 2b).

A 4-resolution U-Net (full, 1/2, 1/4, 1/8; widths base, 2, 4, 8 x base; three poolings, so H and
W must be divisible by 8). Input: concat(noisy image, noise-level plane sigma/255), 2 channels.
Output of :meth:`EMANet.predict_noise` is the noise map; :meth:`EMANet.forward` returns
``noisy - noise`` (residual learning, paper eq. 3).

Module switches (paper Table 4 ablation):

- ``use_rdc``: RDC blocks (dense + 1x1 fuse + residual + CA) instead of plain ConvBlocks, in the
  encoder, bottleneck and decoder.
- ``use_md``: an MD block at the input of each of the three upper levels (dilations {5,7,9},
  {4,5,6}, {2,3,5} from the top level down) takes that level's input, extracts multi-scale
  features and average-pools them to the next level, in parallel with the block + max pooling.
- ``use_rcag``: the RCAG (eqs. 4-11) fuses the max-pooled block features with the MD features
  before they enter the next level.
  Without RCAG but with MD, the two are fused by concatenation + 1x1 conv-BN-ReLU (the RCAG
  minus its attention gate). With RCAG but without MD there is no second input: the RCAG then
  runs as a single-input residual coordinate-attention gate on the pooled features
  (x_c = x1, eqs. 5-11 unchanged). With neither, the pooled features go straight on (plain U-Net).
- ``use_cf``: the CF block fuses every decoder output into the noise map; otherwise a final
  1x1 conv on the full-resolution decoder output does.

With every switch off the network is a plain U-Net of the same depth and widths.
"""

from __future__ import annotations

import torch
from torch import nn

from spectbone.models.blocks import (RCAG, CFBlock, ConvBlock, MDBlock, RDCBlock, as_level_plane, conv_bn_act,
                                     zero_init_)

#: MD-block dilation rates from the top level down (paper Sec. 1.2.2).
MD_DILATIONS = ((5, 7, 9), (4, 5, 6), (2, 3, 5))

#: Paper Table 4 rows -> EMANet switches.
EMANET_ABLATIONS: dict[str, dict[str, bool]] = {
    "plain": dict(use_rdc=False, use_md=False, use_rcag=False, use_cf=False),       # "/" (U-Net)
    "rdc": dict(use_rdc=True, use_md=False, use_rcag=False, use_cf=False),          # RDC block
    "rdc_md": dict(use_rdc=True, use_md=True, use_rcag=False, use_cf=False),        # RDC + MD
    "rdc_md_rcag": dict(use_rdc=True, use_md=True, use_rcag=True, use_cf=False),    # RDC + MD + RCAG
    "full": dict(use_rdc=True, use_md=True, use_rcag=True, use_cf=True),            # + CF block (EMANet)
}

#: Paper Table 4 labels of the presets.
EMANET_ABLATION_LABELS = {
    "plain": "/",
    "rdc": "RDC block",
    "rdc_md": "RDC block + MD",
    "rdc_md_rcag": "RDC block + MD + RCAG",
    "full": "RDC block + MD + RCAG + CF block",
}


class EMANet(nn.Module):
    """``EMANet(base=32, use_rdc=True, use_md=True, use_rcag=True, use_cf=True, in_ch=2)``.

    ``forward(noisy, level_map) -> denoised``, both images [B,1,H,W] in [0,1]; ``level_map`` is the
    constant plane sigma/255 ([B,1,H,W]; a scalar, [B] or [B,1,1,1] is broadcast to it).
    """

    n_down = 3

    def __init__(self, base: int = 32, use_rdc: bool = True, use_md: bool = True, use_rcag: bool = True,
                 use_cf: bool = True, in_ch: int = 2):
        super().__init__()
        self.config = dict(base=base, use_rdc=use_rdc, use_md=use_md, use_rcag=use_rcag, use_cf=use_cf)
        self.use_md, self.use_rcag, self.use_cf = use_md, use_rcag, use_cf
        block = RDCBlock if use_rdc else ConvBlock
        widths = [base * 2 ** i for i in range(self.n_down + 1)]          # b, 2b, 4b, 8b
        in_widths = [in_ch] + widths[:-1]                                  # input width of each level
        self.widths = widths
        self.encoders = nn.ModuleList(block(cin, cout) for cin, cout in zip(in_widths, widths))
        self.pool = nn.MaxPool2d(2)
        self.md = nn.ModuleList(MDBlock(in_widths[i], widths[i], MD_DILATIONS[i]) for i in range(self.n_down)) \
            if use_md else None
        if use_rcag:
            self.fusions = nn.ModuleList(RCAG(widths[i], n_inputs=2 if use_md else 1) for i in range(self.n_down))
        elif use_md:
            self.fusions = nn.ModuleList(conv_bn_act(2 * widths[i], widths[i], kernel=1) for i in range(self.n_down))
        else:
            self.fusions = None
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in range(self.n_down))
        self.decoders = nn.ModuleList(block(2 * widths[i], widths[i]) for i in range(self.n_down))
        self.head: nn.Module = CFBlock(widths[:-1]) if use_cf else nn.Conv2d(widths[0], 1, 1)
        zero_init_(self.head.head if use_cf else self.head)  # noise 0 at step 0: starts as the identity

    def _down(self, i: int, x_in: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        """Input of level i+1 from level i's input ``x_in`` (for MD) and block output ``feat``."""
        pooled = self.pool(feat)
        if self.md is None:
            return self.fusions[i](pooled) if self.fusions is not None else pooled
        multi = self.md[i](x_in)
        if self.use_rcag:
            return self.fusions[i](pooled, multi)
        return self.fusions[i](torch.cat([pooled, multi], dim=1))

    def predict_noise(self, noisy: torch.Tensor, level_map) -> torch.Tensor:
        """The predicted noise map [B,1,H,W] (the network's own output, paper Fig. 2b)."""
        if noisy.shape[-1] % 2 ** self.n_down or noisy.shape[-2] % 2 ** self.n_down:
            raise ValueError(f"EMANet needs H and W divisible by {2 ** self.n_down}, got {tuple(noisy.shape)}")
        if level_map is None:
            raise ValueError("EMANet needs the noise-level map (sigma/255), e.g. from the NoiseEstimator")
        x = torch.cat([noisy, as_level_plane(level_map, noisy)], dim=1)
        skips = []
        for i, enc in enumerate(self.encoders):
            feat = enc(x)
            if i == self.n_down:
                break
            skips.append(feat)
            x = self._down(i, x, feat)
        d = feat
        decoded = []
        for i in range(self.n_down - 1, -1, -1):
            d = self.decoders[i](torch.cat([self.ups[i](d), skips[i]], dim=1))
            decoded.append(d)
        decoded.reverse()                                                  # full resolution first
        return self.head(decoded) if self.use_cf else self.head(decoded[0])

    def forward(self, noisy: torch.Tensor, level_map) -> torch.Tensor:
        """Denoised image = noisy - predicted noise (paper eq. 3)."""
        return noisy - self.predict_noise(noisy, level_map)
