"""Stage 1 of EMANet: the noise-level estimation network (paper Sec. 1.2.1, Fig. 2a).

A 3-level U-Net of RDC blocks (full, 1/2 and 1/4 resolution; widths base, 2*base, 4*base),
max pooling down, 2x2 transposed convolutions up, skip connections by concatenation; then global
average pooling and a fully connected layer give logits over ``n_levels`` noise-level classes.
Class index k (0..n_levels-1) is noise level k+1 grey levels (levels 1..50 on the 0..255 scale).
Trained with cross-entropy; the sigma estimate is the expectation of the level under the softmax.

Additions the paper leaves open (``noise_features=True``, the default; ``False`` is the bare
network above, which on a CPU budget does not learn: the noise is a small perturbation of the
image, and the global average of ReLU features follows the anatomy, not the noise):

- A fixed high-pass residual ``r`` of the noisy image (Immerkaer's 3x3 kernel
  [[1,-2,1],[-2,4,-2],[1,-2,1]] / 6: unit gain on white noise, nearly blind to the smooth
  anatomy of a bone scan). The level is defined by the image's own mean (k = mean / sigma^2,
  docs/design.md, Noise model), so the U-Net sees two scale-free channels: the image divided by its
  own mean and ``r`` divided by its own RMS.
- Global noise statistics of the whole image, in grey levels: log RMS of ``r`` over the interior
  (global pooling of squared responses: the total noise RMS, i.e. the added noise plus the
  scan's own Poisson noise) and log mean intensity. They enter the head through a small MLP and
  raw, beside the U-Net's GAP features: the head has to take the scan's own acquisition noise
  (RMS of 3 to 13 grey levels on the phantom cohort at 128 px, growing with the mean) off the total.
- A level head (``level_head=True``): log sigma regressed from the same features adds a Gaussian
  bump in log-level to the FC's 50 logits. It starts as "sigma = RMS of the residual" (and the FC
  at zero), a classical estimator that short runs only have to correct. The outputs stay the
  paper's: 50 class logits, cross-entropy, sigma = expectation under the softmax.
- ``forward(noisy, window=w)`` (training): the U-Net runs on a random w x w window of each image
  while the statistics still come from the whole image; inference always takes whole images.
- Trained (``EstimatorTask``) with soft Gaussian targets over neighbouring levels plus a Huber
  term on the expected sigma.

H and W divisible by 4. The global level depends on the whole image's mean: estimate on whole images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from spectbone.models.blocks import ConvBlock, RDCBlock, crop_windows

N_STATS = 2  # log RMS of the high-pass residual, log mean intensity (grey levels)


class NoiseEstimator(nn.Module):
    """``NoiseEstimator(base=32, n_levels=50, in_ch=1, use_rdc=True, noise_features=True, stats_hidden=32,
    level_head=True)``: [B,in_ch,H,W] in [0,1] -> logits [B,n_levels].

    H and W must be divisible by 4. ``use_rdc=False`` swaps the RDC blocks for plain ConvBlocks;
    ``noise_features=False`` drops the residual channel, the global noise statistics and the level
    head (the bare paper network); ``level_head=False`` keeps the features but only the FC's logits.
    """

    def __init__(self, base: int = 32, n_levels: int = 50, in_ch: int = 1, use_rdc: bool = True,
                 noise_features: bool = True, stats_hidden: int = 32, level_head: bool = True):
        super().__init__()
        self.n_levels, self.noise_features = n_levels, bool(noise_features)
        block = RDCBlock if use_rdc else ConvBlock
        b = base
        self.enc0 = block(in_ch * (2 if self.noise_features else 1), b)
        self.enc1 = block(b, 2 * b)
        self.bottleneck = block(2 * b, 4 * b)
        self.pool = nn.MaxPool2d(2)
        self.up1 = nn.ConvTranspose2d(4 * b, 2 * b, 2, stride=2)
        self.dec1 = block(4 * b, 2 * b)
        self.up0 = nn.ConvTranspose2d(2 * b, b, 2, stride=2)
        self.dec0 = block(2 * b, b)
        fc_in = b
        if self.noise_features:
            hp = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]]) / 6.0
            self.register_buffer("highpass", hp.view(1, 1, 3, 3), persistent=False)
            self.stats_mlp = nn.Sequential(nn.Linear(N_STATS, stats_hidden), nn.GELU(),
                                           nn.Linear(stats_hidden, stats_hidden), nn.GELU())
            fc_in += stats_hidden + N_STATS
        self.fc = nn.Linear(fc_in, n_levels)
        self.level_head = None
        if self.noise_features and level_head:
            # log sigma regressed from the same features; starts as "sigma = RMS of the residual"
            self.level_head = nn.Linear(fc_in, 1)
            nn.init.zeros_(self.level_head.weight)
            with torch.no_grad():
                self.level_head.weight[0, -N_STATS] = 1.0
                self.level_head.bias.fill_(math.log(10.0))
            self.log_width = nn.Parameter(torch.tensor(math.log(0.1)))
            nn.init.zeros_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)
        self.register_buffer("levels", torch.arange(1, n_levels + 1, dtype=torch.float32), persistent=False)

    # ------------------------------------------------------------ fixed noise features
    def residual(self, noisy: torch.Tensor) -> torch.Tensor:
        """High-pass residual of each channel, in grey levels, same size (reflect padding)."""
        x = noisy.float() * 255.0
        c = x.shape[1]
        k = self.highpass.to(x).expand(c, 1, 3, 3)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k, groups=c)

    def noise_stats(self, noisy: torch.Tensor, res: torch.Tensor) -> torch.Tensor:
        """[B, N_STATS]: log RMS of the residual over the interior, log mean intensity (grey levels), centred."""
        rms = res[..., 1:-1, 1:-1].pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-4).sqrt()
        mean = (noisy.float() * 255.0).mean(dim=(1, 2, 3)).clamp_min(1e-2)
        return torch.stack([torch.log(rms) - math.log(10.0), torch.log(mean) - math.log(60.0)], dim=1)

    def forward(self, noisy: torch.Tensor, window: int | None = None) -> torch.Tensor:
        """Logits [B, n_levels]. ``window`` (training only, a multiple of 4): the U-Net sees a random
        window x window crop of each image, the noise statistics still the whole image."""
        x, stats = noisy, None
        if self.noise_features:
            res = self.residual(noisy)
            stats = self.noise_stats(noisy, res)
            mean = noisy.float().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-4)
            rms = stats[:, :1].add(math.log(10.0)).exp().view(-1, 1, 1, 1)
            x = torch.cat([noisy / mean, res / rms], dim=1).to(noisy.dtype)
        if window and window < min(x.shape[-2:]):
            tops = torch.randint(0, x.shape[-2] - window + 1, (len(x),))
            lefts = torch.randint(0, x.shape[-1] - window + 1, (len(x),))
            x = crop_windows(x, tops, lefts, window)
        e0 = self.enc0(x)
        e1 = self.enc1(self.pool(e0))
        bt = self.bottleneck(self.pool(e1))
        d1 = self.dec1(torch.cat([self.up1(bt), e1], dim=1))
        d0 = self.dec0(torch.cat([self.up0(d1), e0], dim=1))
        feats = d0.mean(dim=(2, 3))
        if stats is not None:
            stats = stats.to(feats.dtype)
            feats = torch.cat([feats, self.stats_mlp(stats), stats], dim=1)
        logits = self.fc(feats)
        if self.level_head is not None:
            log_sigma = self.level_head(feats).float()
            log_levels = torch.log(self.levels.to(log_sigma.device))[None]
            logits = logits + (-0.5 * ((log_sigma - log_levels) / self.log_width.exp()) ** 2).to(logits.dtype)
        return logits

    def sigma_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Expected noise level in grey levels: sum_k softmax(logits)_k * (k + 1), shape [B]."""
        probs = torch.softmax(logits.float(), dim=-1)
        return probs @ self.levels.to(probs.device)

    @torch.no_grad()
    def estimate_sigma(self, noisy: torch.Tensor) -> torch.Tensor:
        """Convenience: sigma estimate [B] (grey levels) for a batch of noisy images."""
        return self.sigma_from_logits(self(noisy))
