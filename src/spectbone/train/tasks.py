"""What each kind of training optimises and how it is validated (one Task class per kind).

  estimator  stage-1 noise-level U-Net, cross-entropy over levels 1..50
  denoiser   EMANet / DnCNN / RED-CNN (and pretraining), composite loss (1-lambda) MSE + lambda perceptual
  wgan       WGAN-VGG: critic with gradient penalty, several critic steps per generator step
  segmenter  residual SE U-Net on the phantom's lesion masks
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from spectbone.noise.poisson import MAX_GREY, add_poisson_level_noise, noise_seed

VAL_LEVELS = (10, 25, 40)


# ---------------------------------------------------------------- validation data
def validation_pairs(images: np.ndarray, seed: int, levels=VAL_LEVELS):
    """Fixed noisy copies of the validation images, so every epoch is scored on the same pixels."""
    noisy, clean, lv = [], [], []
    for n, img in enumerate(images):
        for level in levels:
            noisy.append(add_poisson_level_noise(img, level, noise_seed(seed, n, level, epoch=-2)))
            clean.append(img)
            lv.append(level)
    return (torch.from_numpy(np.stack(noisy) / MAX_GREY).float()[:, None],
            torch.from_numpy(np.stack(clean) / MAX_GREY).float()[:, None],
            torch.tensor(lv, dtype=torch.long))


def level_plane(level_over_255: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Constant noise-level map sigma/255 for each sample of a batch (FFDNet convention)."""
    return level_over_255.to(like).view(-1, 1, 1, 1).expand_as(like)


# ---------------------------------------------------------------- tasks
class Task:
    """What one kind of training needs: its models, optimisers, a step and a validation score.

    Optimiser: Adam with betas (0.9, 0.99) and no warm-up, so a short run moves from its first
    steps; the learning rate follows a cosine from ``lr`` down to ``lr * LR_FLOOR`` over the whole
    run (``set_total_steps``), which suits a 200-epoch paper run as well as a few hundred steps.
    """

    primary = "model"
    betas = (0.9, 0.99)
    LR_FLOOR = 0.05

    def __init__(self, models: dict, lr: float, betas: dict | None = None):
        self.models = models
        self.optimizers = {name: torch.optim.Adam(m.parameters(), lr=lr, betas=(betas or {}).get(name, self.betas))
                           for name, m in models.items()}
        self.schedulers: dict = {}
        self.steps_done = 0

    def set_total_steps(self, total: int) -> None:
        """Cosine decay of every optimiser's learning rate over `total` optimiser steps."""
        total = max(int(total), 1)

        def factor(step: int) -> float:
            progress = min(step / total, 1.0)
            return self.LR_FLOOR + (1 - self.LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress))

        self.schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, factor) for k, o in self.optimizers.items()}

    def after_batch(self) -> None:
        """Advance the schedules by one batch (called by the engine)."""
        self.steps_done += 1
        for s in self.schedulers.values():
            s.step()

    def state_dict(self) -> dict:
        return {"models": {k: m.state_dict() for k, m in self.models.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.models.items():
            m.load_state_dict(state["models"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        self.steps_done = state["steps_done"]

    def train(self, flag: bool = True):
        for m in self.models.values():
            m.train(flag)

    def step(self, batch) -> dict:
        raise NotImplementedError

    def optimise(self, loss, name: str = "model") -> dict:
        """One optimiser step of `name` on `loss`; returns the loss for the epoch log."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": float(loss)}

    @torch.no_grad()
    def validate(self) -> float:
        raise NotImplementedError


class DenoiserTask(Task):
    """Denoised = model(noisy, level map); loss on the denoised image against the clean one."""

    def __init__(self, model, loss_fn, val, lr, device, batch_size):
        super().__init__({"model": model}, lr)
        self.loss_fn, self.val, self.device, self.batch_size = loss_fn, val, device, batch_size

    def step(self, batch):
        noisy, clean = batch["noisy"].to(self.device), batch["clean"].to(self.device)
        out = self.models["model"](noisy, level_plane(batch["map_level"], noisy))
        return self.optimise(self.loss_fn(out, clean))

    @torch.no_grad()
    def validate(self):
        """Validation MSE in [0,1] units (lower is better; PSNR is monotone in it)."""
        model = self.models[self.primary]
        noisy, clean, levels = self.val
        total = 0.0
        for i in range(0, len(noisy), self.batch_size):
            n = noisy[i:i + self.batch_size].to(self.device)
            lv = levels[i:i + self.batch_size].float() / MAX_GREY
            out = model(n, level_plane(lv, n))
            total += float(F.mse_loss(out, clean[i:i + self.batch_size].to(self.device), reduction="sum"))
        return total / clean.numel()


class EstimatorTask(Task):
    """Cross-entropy over the 50 level classes; validation = mean absolute error of the sigma estimate."""

    def __init__(self, model, val, lr, device, batch_size):
        super().__init__({"model": model}, lr)
        self.val, self.device, self.batch_size = val, device, batch_size

    def step(self, batch):
        logits = self.models["model"](batch["noisy"].to(self.device))
        return self.optimise(F.cross_entropy(logits, (batch["level"] - 1).to(self.device)))

    @torch.no_grad()
    def validate(self):
        model = self.models["model"]
        noisy, _, levels = self.val
        est = torch.cat([model.sigma_from_logits(model(noisy[i:i + self.batch_size].to(self.device))).cpu()
                         for i in range(0, len(noisy), self.batch_size)])
        return float((est - levels.float()).abs().mean())


class WGANTask(Task):
    """WGAN-VGG (Yang et al. 2018): critic with gradient penalty, generator = adversarial + perceptual."""

    primary = "generator"

    def __init__(self, generator, critic, perceptual, val, lr, device, batch_size, critic_steps, gp_weight,
                 perceptual_weight):
        from spectbone.train import losses

        super().__init__({"generator": generator, "critic": critic}, lr)
        self.losses, self.perceptual, self.val = losses, perceptual, val
        self.device, self.batch_size = device, batch_size
        self.critic_steps, self.gp_weight, self.perceptual_weight = critic_steps, gp_weight, perceptual_weight

    def step(self, batch):
        gen, critic = self.models["generator"], self.models["critic"]
        noisy, clean = batch["noisy"].to(self.device), batch["clean"].to(self.device)
        for _ in range(self.critic_steps):
            self.optimizers["critic"].zero_grad(set_to_none=True)  # fresh gradients every critic step
            with torch.no_grad():
                fake = gen(noisy)
            d_loss = self.losses.critic_loss_wgan_gp(critic, clean, fake, gp_weight=self.gp_weight)
            d_loss.backward()
            self.optimizers["critic"].step()
        self.optimizers["generator"].zero_grad(set_to_none=True)
        fake = gen(noisy)
        g_adv = self.losses.generator_adversarial_loss(critic, fake)
        g_loss = g_adv + self.perceptual_weight * self.perceptual(fake, clean)
        g_loss.backward()
        self.optimizers["generator"].step()
        return {"loss": float(g_loss), "critic_loss": float(d_loss)}

    validate = DenoiserTask.validate  # scores the generator (the primary model)


class SegmenterTask(Task):
    """Binary lesion segmentation: BCE + soft Dice (lesions are a tiny share of pixels)."""

    def __init__(self, model, val, lr, device, batch_size):
        super().__init__({"model": model}, lr)
        self.val, self.device, self.batch_size = val, device, batch_size

    @staticmethod
    def loss(logits, mask):
        prob = torch.sigmoid(logits)
        dice = 1 - (2 * (prob * mask).sum() + 1) / (prob.sum() + mask.sum() + 1)
        return F.binary_cross_entropy_with_logits(logits, mask) + dice

    def step(self, batch):
        logits = self.models["model"](batch["image"].to(self.device))
        return self.optimise(self.loss(logits, batch["mask"].to(self.device)))

    @torch.no_grad()
    def validate(self):
        images, masks = self.val
        model = self.models["model"]
        losses = [float(self.loss(model(images[i:i + self.batch_size].to(self.device)),
                                  masks[i:i + self.batch_size].to(self.device)))
                  for i in range(0, len(images), self.batch_size)]
        return float(np.mean(losses))
