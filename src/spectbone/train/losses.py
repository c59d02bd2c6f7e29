"""Losses of the paper (Sec. 1.2.3) and of the WGAN-VGG baseline.

- :func:`mse_loss`: eq. 12.
- :class:`PerceptualLoss`: eq. 13, squared VGG-16 relu1_2 feature difference ("the first two layers")
  summed over channels, per pixel; grey images are replicated to 3 channels and normalised with the
  ImageNet mean/std; the VGG is frozen.
- :class:`CompositeLoss`: eq. 14, ``(1 - lam) * MSE + lam * perceptual`` (paper lambda = 0.2).
- :func:`perceptual_balance`: the "balanced" feature unit (see :class:`PerceptualLoss`).
- :func:`critic_loss_wgan_gp`, :func:`generator_adversarial_loss`: WGAN with gradient penalty
  (Gulrajani et al. 2017) as WGAN-VGG uses it.

Every loss object has ``.weights_source``: which VGG weights it uses ("none" when it uses none).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spectbone.models.vgg import IMAGENET_MEAN, IMAGENET_STD, load_vgg16_relu1_2


def mse_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over pixels (paper eq. 12)."""
    return F.mse_loss(output, target)


class MSELoss(nn.Module):
    weights_source = "none"

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mse_loss(output, target)


class PerceptualLoss(nn.Module):
    """``PerceptualLoss(vgg_weights=None)``: the paper's eq. 13 on VGG-16 relu1_2 features.

    L = 1/(w h) * sum_c sum_{x,y} (phi_c(output) - phi_c(target))^2 (averaged over the batch): the squared
    feature difference is summed over the 64 channels, not averaged over them. phi is VGG-16 up to
    relu1_2 on the grey image replicated to RGB and ImageNet-normalised; its ImageNet weights (Caffe
    lineage) respond on the 0..255 input scale, so phi is divided by 255 (``FEATURE_UNIT``) to express
    features per unit of the [0, 1] images the networks see, the unit of the MSE term.
    ``vgg_weights``: None = the shipped ImageNet weights, a torchvision-format state_dict file, or
    ``"random"`` for the labelled random-feature ablation (see :mod:`spectbone.models.vgg`).
    ``channels="mean"`` averages over channels instead: WGAN-VGG's own definition (Yang et al. 2018,
    1/(w h d)), used for that baseline.

    ``scale`` multiplies the term; it carries the *feature unit*, which eq. 13 leaves open. In the
    input unit (scale 1) a noise-like error costs about 1200x more as features than as pixels, so at
    lambda = 0.2 eq. 14 would be ~300 : 1 perceptual, not the balance the paper's lambda is said to
    strike ("用于平衡两项损失函数"). The default "balanced" unit (``scale = 1 / perceptual_balance(...)``)
    makes the two terms equal on the training set's own noisy/clean pairs; the form of eq. 13 is unchanged.
    """

    FEATURE_UNIT = 255.0

    def __init__(self, vgg_weights: str | None = None, channels: str = "sum", scale: float = 1.0):
        super().__init__()
        if channels not in ("sum", "mean"):
            raise ValueError(f"channels must be 'sum' (paper eq. 13) or 'mean' (WGAN-VGG), got {channels!r}")
        if not scale > 0:
            raise ValueError(f"the perceptual scale must be positive, got {scale}")
        self.channels, self.scale = channels, float(scale)
        self.vgg, self.weights_source = load_vgg16_relu1_2(vgg_weights)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):  # the VGG stays frozen in eval mode
        super().train(mode)
        self.vgg.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.vgg((x - self.mean) / self.std) / self.FEATURE_UNIT

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_feat = self.features(target)
        squared = (self.features(output) - target_feat).pow(2)
        return self.scale * (squared.sum(dim=1).mean() if self.channels == "sum" else squared.mean())


@torch.no_grad()
def perceptual_balance(perceptual: PerceptualLoss, noisy: torch.Tensor, clean: torch.Tensor,
                       batch_size: int = 8) -> float:
    """Ratio of the perceptual term (at scale 1) to the MSE over noisy/clean pairs: the balanced unit.

    Pooled over all pairs (sums, not a mean of ratios), so a near-clean pair cannot dominate it."""
    old, perceptual.scale = perceptual.scale, 1.0
    try:
        device = perceptual.mean.device
        per = mse = 0.0
        for i in range(0, len(noisy), batch_size):
            y, x = noisy[i:i + batch_size].to(device), clean[i:i + batch_size].to(device)
            per += float(perceptual(y, x)) * len(y)
            mse += float(mse_loss(y, x)) * len(y)
    finally:
        perceptual.scale = old
    if not mse > 0:
        raise ValueError("cannot balance the perceptual term: the calibration pairs hold no noise")
    return per / mse


class CompositeLoss(nn.Module):
    """``CompositeLoss(lam=0.2, vgg_weights=None, perceptual_scale=1.0)``: (1 - lam) * MSE + lam * perceptual
    (paper eq. 14).

    lam = 0 builds no VGG (weights_source "none"); lam = 1 is the pure perceptual loss.
    """

    def __init__(self, lam: float = 0.2, vgg_weights: str | None = None, perceptual_scale: float = 1.0):
        super().__init__()
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lambda must lie in [0, 1], got {lam}")
        self.lam = float(lam)
        self.perceptual = PerceptualLoss(vgg_weights, scale=perceptual_scale) if self.lam > 0 else None
        self.weights_source = self.perceptual.weights_source if self.perceptual is not None else "none"

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.perceptual is None:
            return mse_loss(output, target)
        if self.lam == 1.0:
            return self.perceptual(output, target)
        return (1 - self.lam) * mse_loss(output, target) + self.lam * self.perceptual(output, target)


def build_loss(name: str = "composite", lam: float = 0.2, vgg_weights: str | None = None) -> nn.Module:
    """'mse' | 'perceptual' | 'composite' (with ``lam``)."""
    if name == "mse":
        return MSELoss()
    if name == "perceptual":
        return PerceptualLoss(vgg_weights)
    if name == "composite":
        return CompositeLoss(lam=lam, vgg_weights=vgg_weights)
    raise ValueError(f"unknown loss {name!r} (mse, perceptual, composite)")


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x critic(x_hat)||_2 - 1)^2] on random interpolates x_hat of real and fake."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    score = critic(x_hat)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def critic_loss_wgan_gp(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                        gp_weight: float = 10.0) -> torch.Tensor:
    """Critic loss E[D(fake)] - E[D(real)] + gp_weight * gradient penalty (fake is detached)."""
    fake = fake.detach()
    return critic(fake).mean() - critic(real).mean() + gp_weight * gradient_penalty(critic, real, fake)


def generator_adversarial_loss(critic: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """Generator's adversarial term -E[D(G(z))]."""
    return -critic(fake).mean()


def lesion_segmentation_loss(logits: torch.Tensor, mask: torch.Tensor, fp_weight: float = 0.3,
                             fn_weight: float = 0.7, smooth: float = 1.0) -> torch.Tensor:
    """Lesion segmentation (Table 8): pixel BCE + Tversky loss, soft counts pooled over the batch.

    Lesions are well under 1 % of a scan's pixels, so BCE alone settles on "no lesion"; the Tversky
    term (Salehi et al. 2017) scores the overlap itself, 1 - (TP + s) / (TP + a FP + b FN + s) with
    soft counts summed over the whole batch (so windows without a lesion still add their false
    alarms). b > a weighs a missed lesion pixel above a false alarm, which evens out precision and
    recall at Table 8's fixed threshold 0.5; a = b = 0.5 is the soft Dice loss.
    """
    prob = torch.sigmoid(logits)
    tp = (prob * mask).sum()
    fp = (prob * (1 - mask)).sum()
    fn = ((1 - prob) * mask).sum()
    tversky = 1 - (tp + smooth) / (tp + fp_weight * fp + fn_weight * fn + smooth)
    return F.binary_cross_entropy_with_logits(logits, mask) + tversky
