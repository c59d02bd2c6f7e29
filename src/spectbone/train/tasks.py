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

from spectbone.models.blocks import crop_windows
from spectbone.noise.poisson import MAX_GREY, add_poisson_level_noise, noise_seed
from spectbone.train.level_maps import sigma_over_255
from spectbone.train.speed import FP32, StepSettings, fold_batchnorm

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


def psnr_per_image(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(MSE, PSNR in dB) of each image of a batch in [0, 1] units (peak 1: the grey 0..255 PSNR)."""
    mse = (output.float() - target.float()).pow(2).flatten(1).mean(dim=1)
    return mse, 10 * torch.log10(1 / mse.clamp_min(1e-12))


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

    def __init__(self, models: dict, lr: float, betas: dict | None = None, speed: StepSettings = FP32):
        self.models, self.speed = models, speed
        for m in models.values():
            speed.prepare(m)
        self.optimizers = {name: speed.adam(m.parameters(), lr, (betas or {}).get(name, self.betas))
                           for name, m in models.items()}
        self.schedulers: dict = {}
        self.steps_done = 0

    def cosine(self, optimizer, total: int):
        """A schedule decaying `optimizer`'s rate along a half cosine to LR_FLOOR over `total` of its steps."""
        total = max(int(total), 1)

        def factor(step: int) -> float:
            progress = min(step / total, 1.0)
            return self.LR_FLOOR + (1 - self.LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def set_total_steps(self, total: int) -> None:
        """Cosine decay of every optimiser's learning rate over `total` optimiser steps."""
        self.schedulers = {k: self.cosine(o, total) for k, o in self.optimizers.items()}

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
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def validate(self) -> float:
        raise NotImplementedError

    def evaluate(self) -> tuple[float, np.ndarray | None, str | None]:
        """(validation loss, per-validation-image score where higher is better, the score's name).

        The engine logs both; the per-image scores give `tables/training.csv` its `still_improving`
        interval. A task without per-image scores returns (validate(), None, None)."""
        return self.validate(), None, None


def random_patches(patch: int | None, *images: torch.Tensor) -> list[torch.Tensor]:
    """The same random ``patch`` x ``patch`` window of each image of a batch (one window per sample).

    Noise is drawn on the whole image before cropping, so patches carry the test-time noise statistics.
    Offsets come from torch's generator, which the engine seeds per epoch.
    """
    size = images[0].shape[-1]
    if not patch or patch >= size:
        return list(images)
    n, rows = images[0].shape[0], images[0].shape[-2]
    tops = torch.randint(0, rows - patch + 1, (n,))
    lefts = torch.randint(0, size - patch + 1, (n,))
    return [crop_windows(img, tops, lefts, patch) for img in images]


class DenoiserTask(Task):
    """Denoised = model(noisy, level map); loss on the denoised image against the clean one.

    ``estimator`` (frozen stage-1 network): when given, the level map is the estimator's sigma on the
    whole noisy image, exactly what the denoiser receives at test time, in training and validation;
    otherwise the true level (pretraining pairs, baselines, which ignore the map). ``level_maps``
    (``level_maps.LevelMaps``): those same estimator maps computed once for every fine-tune, looked up
    instead of recomputed. ``patch``: train on random windows of the whole noisy image.
    """

    def __init__(self, model, loss_fn, val, lr, device, batch_size, estimator=None, patch: int | None = None,
                 speed: StepSettings = FP32, level_maps=None):
        super().__init__({"model": model}, lr, speed=speed)
        self.loss_fn, self.val, self.device, self.batch_size = loss_fn, val, device, batch_size
        if estimator is not None and speed.fold_frozen:  # frozen: BN folded into its convolutions
            estimator = fold_batchnorm(estimator)
        self.estimator, self.patch, self.level_maps, self._val_levels = estimator, patch, level_maps, None

    @torch.no_grad()
    def map_levels(self, noisy: torch.Tensor, given: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        """sigma/255 per sample: the estimator's on the whole image (from the shared level maps where the
        task has them and the batch names its samples), else the level given."""
        if self.level_maps is not None and batch is not None:
            return self.level_maps.lookup(batch["epoch"], batch["sample"]).to(noisy)
        if self.estimator is None:
            return given.to(noisy)
        return sigma_over_255(self.estimator, noisy)

    @torch.no_grad()
    def val_levels(self) -> torch.Tensor:
        """sigma/255 of each validation image: fixed pairs and a frozen estimator, so computed once (in
        the batches of ``evaluate``) or read from the shared level maps."""
        if self._val_levels is None:
            noisy, _, levels = self.val
            if self.level_maps is not None:
                self._val_levels = torch.from_numpy(self.level_maps.val)
            else:
                bs = self.batch_size
                self._val_levels = torch.cat([self.map_levels(noisy[i:i + bs].to(self.device),
                                                              levels[i:i + bs].float() / MAX_GREY).cpu()
                                              for i in range(0, len(noisy), bs)])
        return self._val_levels

    def step(self, batch):
        noisy, clean = batch["noisy"].to(self.device), batch["clean"].to(self.device)
        levels = self.map_levels(noisy, batch["map_level"], batch)
        noisy, clean = random_patches(self.patch, noisy, clean)
        noisy = self.speed.to_format(noisy)
        with self.speed.autocast():
            out = self.models["model"](noisy, level_plane(levels, noisy))
        return self.optimise(self.loss_fn(out.float(), self.speed.to_format(clean)))

    @torch.no_grad()
    def evaluate(self):
        """Validation MSE in [0,1] units on whole images (lower is better) and each image's PSNR (dB).

        Always fp32 (as inference is), whatever the training step's precision."""
        model = self.models[self.primary]
        noisy, clean, _ = self.val
        levels = self.val_levels()
        mse = []
        for i in range(0, len(noisy), self.batch_size):
            n = noisy[i:i + self.batch_size].to(self.device)
            lv = levels[i:i + self.batch_size].to(n)
            out = model(self.speed.to_format(n), level_plane(lv, n))
            mse.append(psnr_per_image(out, clean[i:i + self.batch_size].to(self.device))[0].cpu())
        mse = torch.cat(mse).double()
        return float(mse.mean()), (10 * torch.log10(1 / mse.clamp_min(1e-12))).numpy(), "psnr_db"

    def validate(self):
        return self.evaluate()[0]


class EstimatorTask(Task):
    """Cross-entropy over the 50 level classes; validation = mean absolute error of the sigma estimate.

    The cross-entropy's target is soft: a Gaussian of width ``label_sigma`` levels around the true
    level (neighbouring levels are near-identical images, so a one-hot target mostly teaches noise);
    ``label_sigma=0`` is the paper's one-hot target. ``reg_weight`` adds a Huber term on the sigma
    estimate itself (the expectation over the classes, in grey levels), the quantity Table 6 scores.
    ``window``: the network's U-Net sees random windows of this size in training (its global noise
    statistics always the whole image); validation and inference use whole images.
    """

    def __init__(self, model, val, lr, device, batch_size, label_sigma: float = 1.5, reg_weight: float = 0.1,
                 reg_beta: float = 1.0, window: int | None = None, speed: StepSettings = FP32):
        super().__init__({"model": model}, lr, speed=speed)
        self.val, self.device, self.batch_size = val, device, batch_size
        self.label_sigma, self.reg_weight, self.reg_beta = float(label_sigma), float(reg_weight), float(reg_beta)
        self.window = window

    def loss(self, logits: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """Soft-target cross-entropy over levels 1..n plus ``reg_weight`` x Huber(expected sigma, level)."""
        model = self.models["model"]
        if self.label_sigma > 0:
            classes = model.levels.to(logits.device)
            target = torch.softmax(-0.5 * ((classes[None] - level.float()[:, None]) / self.label_sigma) ** 2, dim=1)
            loss = -(target * torch.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()
        else:
            loss = F.cross_entropy(logits.float(), level - 1)
        if self.reg_weight:
            loss = loss + self.reg_weight * F.smooth_l1_loss(model.sigma_from_logits(logits), level.float(),
                                                             beta=self.reg_beta)
        return loss

    def step(self, batch):
        with self.speed.autocast():
            logits = self.models["model"](self.speed.to_format(batch["noisy"].to(self.device)), window=self.window)
        return self.optimise(self.loss(logits.float(), batch["level"].to(self.device)))

    @torch.no_grad()
    def evaluate(self):
        """Mean absolute error of the sigma estimate (grey levels) and, per image, minus that error."""
        model = self.models["model"]
        noisy, _, levels = self.val
        est = torch.cat([model.sigma_from_logits(model(self.speed.to_format(noisy[i:i + self.batch_size].to(
            self.device)))).cpu() for i in range(0, len(noisy), self.batch_size)])
        error = (est.double() - levels.double()).abs()
        return float(error.mean()), (-error).numpy(), "minus_level_error"

    def validate(self):
        return self.evaluate()[0]


class WGANTask(Task):
    """WGAN-VGG (Yang et al. 2018): critic with gradient penalty, generator = adversarial + perceptual.

    Made stable the usual way: the residual generator starts as the identity and is warm-started on
    MSE + perceptual for the first ``warmup`` share of the steps before the critic's term joins;
    Adam with betas (0.5, 0.9) for both networks (Gulrajani et al.), gradient penalty 10, several
    critic steps per generator step. The MSE term stays in the generator loss so the adversarial
    term sharpens the image without drifting from it.
    """

    primary = "generator"

    def __init__(self, generator, critic, perceptual, val, lr, device, batch_size, critic_steps, gp_weight,
                 perceptual_weight, adversarial_weight=1e-3, warmup=0.3, patch: int | None = None,
                 speed: StepSettings = FP32):
        from spectbone.train import losses

        super().__init__({"generator": generator, "critic": critic}, lr,
                         betas={"generator": (0.5, 0.9), "critic": (0.5, 0.9)}, speed=speed)
        self.losses, self.perceptual, self.val = losses, perceptual, val
        self.device, self.batch_size, self.estimator, self.patch = device, batch_size, None, patch
        self.level_maps, self._val_levels = None, None
        self.critic_steps, self.gp_weight, self.perceptual_weight = critic_steps, gp_weight, perceptual_weight
        self.adversarial_weight, self.warmup, self.total_steps = adversarial_weight, warmup, 1

    def set_total_steps(self, total: int) -> None:
        """The generator's cosine spans the whole run, the critic's only the adversarial steps after warm-up."""
        self.total_steps = max(int(total), 1)
        self.schedulers = {"generator": self.cosine(self.optimizers["generator"], self.total_steps),
                           "critic": self.cosine(self.optimizers["critic"], self.total_steps - self.warmup_steps)}

    @property
    def warmup_steps(self) -> int:
        return int(math.ceil(self.warmup * self.total_steps))

    def after_batch(self) -> None:
        """Advance the generator's schedule every batch, the critic's only once the critic trains."""
        adversarial = self.steps_done >= self.warmup_steps
        self.steps_done += 1
        self.schedulers["generator"].step()
        if adversarial:
            self.schedulers["critic"].step()

    def step(self, batch):
        gen, critic = self.models["generator"], self.models["critic"]
        noisy, clean = random_patches(self.patch, batch["noisy"].to(self.device), batch["clean"].to(self.device))
        noisy, clean = self.speed.to_format(noisy), self.speed.to_format(clean)
        adversarial = self.steps_done >= self.warmup_steps
        d_loss = torch.zeros(())
        if adversarial:  # the critic and its gradient penalty (a double backward) stay in fp32
            for _ in range(self.critic_steps):
                self.optimizers["critic"].zero_grad(set_to_none=True)  # fresh gradients every critic step
                with torch.no_grad(), self.speed.autocast():
                    fake = gen(noisy).float()
                d_loss = self.losses.critic_loss_wgan_gp(critic, clean, fake, gp_weight=self.gp_weight)
                d_loss.backward()
                self.optimizers["critic"].step()
        self.optimizers["generator"].zero_grad(set_to_none=True)
        with self.speed.autocast():
            fake = gen(noisy)
        fake = fake.float()
        g_loss = self.losses.mse_loss(fake, clean) + self.perceptual_weight * self.perceptual(fake, clean)
        if adversarial:
            g_loss = g_loss + self.adversarial_weight * self.losses.generator_adversarial_loss(critic, fake)
        g_loss.backward()
        self.optimizers["generator"].step()
        return {"loss": float(g_loss.detach()), "critic_loss": float(d_loss.detach())}

    map_levels = DenoiserTask.map_levels
    val_levels = DenoiserTask.val_levels
    evaluate = DenoiserTask.evaluate  # scores the generator (the primary model)
    validate = DenoiserTask.validate


THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 .. 0.95


class SegmenterTask(Task):
    """Binary lesion segmentation: BCE + Tversky (``losses.lesion_segmentation_loss``).

    Trained on windows (``LesionDataset`` with ``patch``, many centred on lesions), validated like
    Table 8 applies it: on the whole validation images, the loss's soft counts pooled over all of them.
    """

    def __init__(self, model, val, lr, device, batch_size, speed: StepSettings = FP32):
        from spectbone.train.losses import lesion_segmentation_loss

        super().__init__({"model": model}, lr, speed=speed)
        self.val, self.device, self.batch_size = val, device, batch_size
        self.loss = lesion_segmentation_loss

    def step(self, batch):
        with self.speed.autocast():
            logits = self.models["model"](self.speed.to_format(batch["image"].to(self.device)))
        return self.optimise(self.loss(logits.float(), self.speed.to_format(batch["mask"].to(self.device))))

    @torch.no_grad()
    def _val_logits(self) -> torch.Tensor:
        images, _ = self.val
        model = self.models["model"]
        return torch.cat([model(self.speed.to_format(images[i:i + self.batch_size].to(self.device))).float().cpu()
                          for i in range(0, len(images), self.batch_size)]).contiguous()

    def evaluate(self):
        """The pooled loss, and each validation image's soft Dice (probabilities, not a threshold)."""
        logits, mask = self._val_logits(), self.val[1]
        prob = torch.sigmoid(logits).flatten(1).double()
        truth = mask.flatten(1).double()
        dice = (2 * (prob * truth).sum(1) + 1) / (prob.sum(1) + truth.sum(1) + 1)
        return float(self.loss(logits, mask)), dice.numpy(), "soft_dice"

    def validate(self):
        return self.evaluate()[0]

    def pick_threshold(self) -> tuple[float, float]:
        """(threshold, IoU): the probability cut with the best pooled IoU on the validation images.

        Table 8 needs a binary mask; the paper names no cut, and 0.5 is only right for a calibrated
        model, which a Tversky-trained one is not. Chosen on validation, never on the test images."""
        from spectbone.evaluate.score import segmentation_scores

        self.train(False)
        prob = torch.sigmoid(self._val_logits())[:, 0].numpy()
        truth = self.val[1][:, 0].numpy()
        scores = [(segmentation_scores(prob, truth, t)["iou"], -abs(t - 0.5), t) for t in THRESHOLD_GRID]
        iou, _, threshold = max(scores)
        return float(threshold), float(iou)
