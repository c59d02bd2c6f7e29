"""Building blocks shared by the networks (one home per paper concept, KAIR ``basicblock`` style).

Paper: "Research on denoising method of two-stage SPECT bone imaging based on U-Net" (EMANet), 2023.

- :class:`ConvBlock`: the plain U-Net block, (3x3 conv - BN - ReLU) x 2.
- :class:`CoordinateAttention`: CA of Hou et al. 2021 (paper Fig. 3a).
- :class:`RDCBlock`: dense residual block with CA (paper Fig. 3b, "RDC block").
- :class:`MDBlock`: multi-scale dilated block (paper Fig. 4, "MD block").
- :class:`RCAG`: residual coordinate-attention gate, two inputs (paper Fig. 5, eqs. 4-11).
- :class:`CFBlock`: coordinate fusion of every decoder output into the noise map (paper Fig. 2b).
- :func:`crop_windows`: one random training window per image, gathered in one indexing op.

Every block keeps the device and dtype of its input and works in either memory format
(contiguous NCHW or channels_last); nothing here calls ``.cuda()``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn



def zero_init_(layer: nn.Module) -> nn.Module:
    """Zero a residual head's weights and bias, so the network's correction is 0 at step 0."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer

def conv_bn_act(in_ch: int, out_ch: int, kernel: int = 3, dilation: int = 1, act: bool = True) -> nn.Sequential:
    """``kernel x kernel`` conv (same padding, no bias: BN follows) - BN - ReLU."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ConvBlock(nn.Module):
    """The plain U-Net block: (3x3 conv - BN - ReLU) x 2."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_act(in_ch, out_ch), conv_bn_act(out_ch, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class CoordinateAttention(nn.Module):
    """Coordinate attention (Hou, Zhou & Feng, CVPR 2021), the paper's "CA" (Fig. 3a).

    Average-pool along W (giving a [B,C,H,1] profile) and along H ([B,C,1,W]), concatenate the two
    profiles along the spatial axis, 1x1 conv to ``mid = max(min_mid, C // reduction)`` channels,
    BN, non-linearity (h-swish as in Hou et al.; the RCAG uses ReLU, paper eq. 7), split back into
    the H and W parts, a 1x1 conv each back to C channels and a sigmoid: two gates
    ``g_h [B,C,H,1]`` and ``g_w [B,C,1,W]``. Output ``x * g_h * g_w`` (paper eq. 10).

    The pooled profiles are tiny (C x (H+W)), so the block costs two full-size multiplies; the
    two gates are multiplied first (one broadcast product) to keep that to one extra pass.
    """

    def __init__(self, channels: int, reduction: int = 32, min_mid: int = 8, act: str = "hswish"):
        super().__init__()
        mid = max(min_mid, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        if act == "hswish":
            self.act: nn.Module = nn.Hardswish()
        elif act == "relu":
            self.act = nn.ReLU()
        else:
            raise ValueError(f"unknown activation {act!r} (hswish, relu)")
        self.conv_h = nn.Conv2d(mid, channels, 1)
        self.conv_w = nn.Conv2d(mid, channels, 1)

    def gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two attention gates: g_h [B,C,H,1] (eq. 8) and g_w [B,C,1,W] (eq. 9)."""
        h, w = x.shape[-2:]
        z_h = x.mean(dim=3, keepdim=True)                        # eq. 5: [B,C,H,1]
        z_w = x.mean(dim=2, keepdim=True).transpose(2, 3)        # eq. 6: [B,C,W,1]
        f = self.act(self.bn1(self.conv1(torch.cat([z_h, z_w], dim=2))))   # eq. 7: [B,mid,H+W,1]
        f_h, f_w = torch.split(f, [h, w], dim=2)
        g_h = torch.sigmoid(self.conv_h(f_h))                     # [B,C,H,1]
        g_w = torch.sigmoid(self.conv_w(f_w)).transpose(2, 3)     # [B,C,1,W]
        return g_h, g_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g_h, g_w = self.gates(x)
        return x * (g_h * g_w)                                    # eq. 10


class RDCBlock(nn.Module):
    """Dense residual block with coordinate attention, the paper's "RDC block" (Fig. 3b).

    ``x0 = conv3x3-BN-ReLU(x)`` (in_ch -> out_ch) extracts features; ``n_layers`` dense 3x3
    conv-BN-ReLU layers each see the concatenation of all earlier features and add ``growth``
    channels; a 1x1 conv (+BN) fuses the concatenation back to out_ch ("汇聚统一尺度下的不同特征");
    CA reweights it; the residual ``x0 + ...`` closes the block, followed by ReLU.
    ``growth`` defaults to out_ch // 2 (at least 8).
    """

    def __init__(self, in_ch: int, out_ch: int, n_layers: int = 3, growth: int | None = None, use_ca: bool = True):
        super().__init__()
        growth = growth or max(8, out_ch // 2)
        self.head = conv_bn_act(in_ch, out_ch)
        self.dense = nn.ModuleList(conv_bn_act(out_ch + i * growth, growth) for i in range(n_layers))
        self.fuse = nn.Sequential(nn.Conv2d(out_ch + n_layers * growth, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))
        self.ca = CoordinateAttention(out_ch) if use_ca else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.head(x)
        feats = [x0]
        for layer in self.dense:
            feats.append(layer(torch.cat(feats, dim=1) if len(feats) > 1 else x0))
        y = self.ca(self.fuse(torch.cat(feats, dim=1)))
        return self.act(x0 + y)


class MDBlock(nn.Module):
    """Multi-scale dilated block, the paper's "MD block" (Fig. 4).

    Three parallel 3x3 conv-BN-ReLU branches with dilations ``dilations`` (paper: {5,7,9},
    {4,5,6}, {2,3,5} from the top level down: all-odd or mixed parity against gridding),
    concatenated (3 * out_ch), CA, 1x1 conv to out_ch, BN, ReLU, then 2x2 average pooling
    (the paper's "average pooling for downsampling"). With ``pool=False`` the block keeps the
    input resolution.
    """

    def __init__(self, in_ch: int, out_ch: int, dilations: tuple[int, int, int] = (2, 3, 5), pool: bool = True):
        super().__init__()
        self.dilations = tuple(int(d) for d in dilations)
        self.branches = nn.ModuleList(conv_bn_act(in_ch, out_ch, 3, dilation=d) for d in self.dilations)
        self.ca = CoordinateAttention(out_ch * len(self.dilations))
        self.fuse = conv_bn_act(out_ch * len(self.dilations), out_ch, kernel=1)
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([branch(x) for branch in self.branches], dim=1)
        return self.pool(self.fuse(self.ca(y)))


class RCAG(nn.Module):
    """Residual coordinate-attention gate (paper Fig. 5, eqs. 4-11).

    Two inputs of C channels each (x1: max-pooled encoder features, x2: MD block output):
    ``x_c = concat(x1, x2)`` (eq. 4, 2C channels); CA on x_c with ReLU as the non-linearity
    (eqs. 5-9: pool along W and H, 1x1 conv to 2C/r, BN + ReLU, split, 1x1 convs + sigmoid);
    ``x_c' = x_c * g_h * g_w`` (eq. 10); ``x_out = ReLU(BN(conv1x1(x_c + x_c')))`` back to C
    channels (eq. 11).

    ``n_inputs=1`` is the degenerate single-input gate EMANet uses when the MD blocks are
    switched off: x_c = x1 (C channels) and the rest is unchanged.
    """

    def __init__(self, channels: int, n_inputs: int = 2, reduction: int = 32):
        super().__init__()
        self.n_inputs = n_inputs
        self.ca = CoordinateAttention(channels * n_inputs, reduction=reduction, act="relu")
        self.out = conv_bn_act(channels * n_inputs, channels, kernel=1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        if (x2 is None) != (self.n_inputs == 1):
            raise ValueError(f"this RCAG takes {self.n_inputs} input(s)")
        x_c = x1 if x2 is None else torch.cat([x1, x2], dim=1)    # eq. 4
        g_h, g_w = self.ca.gates(x_c)                              # eqs. 5-9
        return self.out(x_c * (1 + g_h * g_w))                     # eqs. 10-11: x_c + x_c'


class CFBlock(nn.Module):
    """Coordinate fusion block, the paper's "CF block" (Fig. 2b): every decoder output -> noise map.

    Layer by layer from the deepest decoder output to the full-resolution one: the running fused
    feature is brought to the size and width of the next decoder output by a 1x1 conv and bilinear
    interpolation (the two commute exactly, so the 1x1 runs at the lower resolution), added to it
    ("feature fusion"), and reweighted by a CA module after each fusion. A final 1x1 conv maps the
    full-resolution fused features to the 1-channel noise map. Every decoder output thus reaches
    full size through bilinear upsampling + 1x1 + CA.

    ``channels`` lists the decoder widths from full resolution down, e.g. (32, 64, 128).
    """

    def __init__(self, channels: tuple[int, ...] | list[int], out_ch: int = 1):
        super().__init__()
        self.channels = tuple(channels)
        # proj[i] maps level i+1 (coarser) to level i's width
        self.proj = nn.ModuleList(nn.Conv2d(self.channels[i + 1], self.channels[i], 1)
                                  for i in range(len(self.channels) - 1))
        self.ca = nn.ModuleList(CoordinateAttention(c) for c in self.channels[:-1])
        self.head = nn.Conv2d(self.channels[0], out_ch, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """``feats``: decoder outputs, full resolution first."""
        g = feats[-1]
        for i in range(len(feats) - 2, -1, -1):
            up = F.interpolate(self.proj[i](g), size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
            g = self.ca[i](feats[i] + up)
        return self.head(g)


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): GAP, FC-ReLU-FC-sigmoid, channel reweighting."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        mid = max(4, channels // reduction)
        self.fc1 = nn.Conv2d(channels, mid, 1)
        self.fc2 = nn.Conv2d(mid, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


def as_level_plane(level_map: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """The noise-level map as a [B,1,H,W] plane matching ``like`` (a scalar, [B], [B,1,1,1] or a plane)."""
    b, _, h, w = like.shape
    lv = torch.as_tensor(level_map, dtype=like.dtype, device=like.device)
    if lv.dim() == 0:
        lv = lv.expand(b)
    if lv.dim() == 1:
        lv = lv.view(-1, 1, 1, 1)
    if lv.dim() != 4:
        raise ValueError(f"level_map must be a scalar, [B], [B,1,1,1] or [B,1,H,W], got {tuple(lv.shape)}")
    return lv.expand(b, 1, h, w)


def crop_windows(images: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor, size: int) -> torch.Tensor:
    """Window i of ``images`` [N,C,H,W] at (tops[i], lefts[i]), ``size`` x ``size``: one gather, no Python loop."""
    n = images.shape[0]
    rows = (tops.view(n, 1) + torch.arange(size)).to(images.device)            # [N, size]
    cols = (lefts.view(n, 1) + torch.arange(size)).to(images.device)
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    out = images[batch, :, rows.view(n, size, 1), cols.view(n, 1, size)]      # [N, size, size, C]
    return out.permute(0, 3, 1, 2).contiguous()
