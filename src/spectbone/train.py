"""One training engine for every model: RAdam, seeded epochs, resumable checkpoints, best weights.

Tasks (the first argument of `spectbone train`):
  estimator  stage-1 noise-level U-Net, cross-entropy over levels 1..50
  pretrain   a denoiser on CT pairs (Mayo or simulated) or natural images, MSE
  denoiser   EMANet / DnCNN / RED-CNN on bone scans, composite loss (1-lambda) MSE + lambda perceptual
  wgan       WGAN-VGG: critic with gradient penalty, 4 critic steps per generator step
  segmenter  residual SE U-Net on the phantom's lesion masks

Resuming: after every epoch the full state (weights, optimisers, best weights, history) goes to
`--ckpt-dir`; each epoch re-seeds torch and the data from (seed, epoch), so a rerun after a kill
continues from the last finished epoch and ends with the very weights an uninterrupted run gives.
Only the best-on-validation weights are written to `--out` (the rule's declared output).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from spectbone.augment import load_images, load_truth, parse_levels, split_ids
from spectbone.datasets import LesionDataset, NoisyImageDataset, PairedImageDataset, epoch_order
from spectbone.noise import MAX_GREY, add_poisson_level_noise, noise_seed
from spectbone.runtime import add_common_arguments, pick_device, seed_everything, set_threads, setup_logging

log = logging.getLogger("spectbone.train")
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
    """What one kind of training needs: its models, optimisers, a step and a validation score."""

    primary = "model"

    def __init__(self, models: dict, lr: float):
        self.models = models
        self.optimizers = {name: torch.optim.RAdam(m.parameters(), lr=lr) for name, m in models.items()}

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
        from spectbone import losses

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


# ---------------------------------------------------------------- checkpoints
def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _state(task: Task):
    return {"models": {k: m.state_dict() for k, m in task.models.items()},
            "optimizers": {k: o.state_dict() for k, o in task.optimizers.items()}}


def _clone_state_dict(module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def fit(task: Task, dataset, *, epochs: int, samples_per_epoch: int | None, batch_size: int, seed: int,
        ckpt_dir: Path, device) -> tuple[dict, pd.DataFrame]:
    """Train `task` for `epochs`, resuming from `ckpt_dir/last.pt`; returns best weights and history."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / "last.pt"
    start, best, best_state, history = 0, float("inf"), None, []
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        for k, m in task.models.items():
            m.load_state_dict(state["models"][k])
        for k, o in task.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        start, best, best_state, history = state["epoch"] + 1, state["best"], state["best_state"], state["history"]
        log.info("resuming from %s after epoch %d of %d", ckpt, start, epochs)
    for epoch in range(start, epochs):
        torch.manual_seed(noise_seed(seed, -3, -3, epoch))
        dataset.set_epoch(epoch)
        order = epoch_order(len(dataset), samples_per_epoch, seed, epoch)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=order.tolist(), num_workers=0,
                            drop_last=len(order) > batch_size)
        task.train(True)
        t0, sums, n = time.perf_counter(), {}, 0
        for batch in tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False):
            for k, v in task.step(batch).items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
        task.train(False)
        val = task.validate()
        row = {"epoch": epoch + 1, **{f"train_{k}": v / max(n, 1) for k, v in sums.items()}, "val": val,
               "seconds": time.perf_counter() - t0}
        history.append(row)
        if val < best:
            best, best_state = val, _clone_state_dict(task.models[task.primary])
        log.info("epoch %d/%d %s", epoch + 1, epochs, " ".join(f"{k}={v:.5g}" for k, v in row.items()))
        _atomic_save({"epoch": epoch, "best": best, "best_state": best_state, "history": history,
                      **_state(task)}, ckpt)
    if best_state is None:  # zero epochs asked: keep the initial weights
        best_state = _clone_state_dict(task.models[task.primary])
    return best_state, pd.DataFrame(history)


def plot_history(history: pd.DataFrame, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spectbone.outputs import save_figure

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for col in [c for c in history.columns if c.startswith("train_")] + ["val"]:
        if col in history:
            ax.plot(history["epoch"], history[col], marker="o", ms=3, label=col)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)


# ---------------------------------------------------------------- assembling a run
def model_kwargs(kind: str, width: int, arch: str | None, depth: int | None) -> dict:
    from spectbone.models.emanet import EMANET_ABLATIONS

    if kind == "emanet":
        return {"base": width, **EMANET_ABLATIONS[arch or "full"]}
    if kind in ("dncnn", "wgan_generator", "wgan_critic", "redcnn"):
        kw = {"channels": width}
        if kind == "dncnn" and depth:
            kw["depth"] = depth
        return kw
    return {"base": width}


def _bone_arrays(args, which):
    ids = split_ids(args.split, which)
    if not ids:
        raise ValueError(f"{args.split} has no {which} images")
    return ids, load_images(args.preprocess_dir, ids)


def build_task(args, device):
    from spectbone import losses
    from spectbone.models import build_model, load_model

    kind = {"estimator": "estimator", "segmenter": "segmenter", "wgan": "wgan_generator"}.get(args.task, args.model)
    kwargs = model_kwargs(kind, args.width, args.arch, args.depth)
    model = build_model(kind, **kwargs).to(device)
    meta = {"task": args.task, "kind": kind, "seed": args.seed, "epochs": args.epochs,
            "samples_per_epoch": args.samples_per_epoch, "batch_size": args.batch_size, "lr": args.lr}
    if args.init:
        init_model, init_meta = load_model(args.init, map_location=device)
        model.load_state_dict(init_model.state_dict())
        meta["init"] = {"path": str(args.init), "data_source": init_meta.get("data_source", "")}
        log.info("initialised from %s (%s)", args.init, init_meta.get("data_source", ""))
    levels = parse_levels(args.levels)
    if args.task == "pretrain":
        with np.load(args.pretrain_data) as z:
            arrays = {k: z[k] for k in z.files}
        meta["data_source"] = str(arrays.get("source", "pretraining images"))
        n_val = max(1, len(arrays["clean"]) // 10)
        if "noisy" in arrays:
            dataset = PairedImageDataset(arrays["noisy"][n_val:], arrays["clean"][n_val:], arrays["level"][n_val:],
                                         args.seed)
            val = (torch.from_numpy(arrays["noisy"][:n_val]).float()[:, None],
                   torch.from_numpy(arrays["clean"][:n_val]).float()[:, None],
                   torch.from_numpy(np.clip(np.round(arrays["level"][:n_val]), 1, 50)).long())
        else:
            grey = arrays["clean"] * MAX_GREY
            samples = [(i, lv) for i in range(n_val, len(grey)) for lv in levels]
            dataset = NoisyImageDataset(grey, np.array(samples), args.seed, args.level_jitter)
            val = validation_pairs(grey[:n_val], args.seed)
    else:
        meta["data_source"] = args.data_label
    if args.task == "segmenter":
        ids, images = _bone_arrays(args, "train")
        _, masks = load_truth(args.preprocess_dir, ids)
        vids, vimages = _bone_arrays(args, "val")
        _, vmasks = load_truth(args.preprocess_dir, vids)
        if masks is None or vmasks is None:
            raise ValueError("segmentation needs lesion masks (preprocess --truth); none found")
        dataset = LesionDataset(images, masks, args.seed)
        val = (torch.from_numpy(vimages / MAX_GREY).float()[:, None], torch.from_numpy(vmasks).float()[:, None])
        return SegmenterTask(model, val, args.lr, device, args.batch_size), kind, kwargs, meta, dataset
    if args.task != "pretrain":
        ids, images = _bone_arrays(args, "train")
        _, vimages = _bone_arrays(args, "val")
        samples = [(i, lv) for i in range(len(ids)) for lv in levels]
        dataset = NoisyImageDataset(images, np.array(samples), args.seed, args.level_jitter)
        val = validation_pairs(vimages, args.seed)
    if args.task == "estimator":
        dataset.level_jitter = 0.0
        return EstimatorTask(model, val, args.lr, device, args.batch_size), kind, kwargs, meta, dataset
    if args.task == "wgan":
        critic = build_model("wgan_critic", channels=args.critic_width).to(device)
        perceptual = losses.PerceptualLoss(args.vgg_weights).to(device)
        meta.update(vgg_weights=perceptual.weights_source, loss="wgan-gp + perceptual",
                    perceptual_weight=args.perceptual_weight)
        task = WGANTask(model, critic, perceptual, val, args.lr, device, args.batch_size, args.critic_steps,
                        args.gp_weight, args.perceptual_weight)
        return task, kind, kwargs, meta, dataset
    lam = 0.0 if args.task == "pretrain" else args.lam
    loss_fn = losses.CompositeLoss(lam=lam, vgg_weights=args.vgg_weights).to(device)
    meta.update(loss=f"composite lambda={lam:g}", lam=lam, vgg_weights=loss_fn.weights_source)
    return DenoiserTask(model, loss_fn, val, args.lr, device, args.batch_size), kind, kwargs, meta, dataset


def add_arguments(parser, verb):
    parser.add_argument("task", choices=["estimator", "pretrain", "denoiser", "wgan", "segmenter"])
    parser.add_argument("--out", required=True, help="best-on-validation weights (declared output)")
    parser.add_argument("--ckpt-dir", required=True, help="resumable checkpoints (not a declared output)")
    parser.add_argument("--history", required=True, help="per-epoch CSV log")
    parser.add_argument("--curve", required=True, help="loss-curve figure stem (PNG + PDF)")
    parser.add_argument("--model", default="emanet", choices=["emanet", "dncnn", "redcnn"])
    parser.add_argument("--arch", default="full", help="EMANet ablation preset (plain, rdc, rdc_md, rdc_md_rcag, full)")
    parser.add_argument("--width", type=int, default=32, help="base channels of the network")
    parser.add_argument("--depth", type=int, default=None, help="DnCNN depth")
    parser.add_argument("--critic-width", type=int, default=64)
    parser.add_argument("--preprocess-dir", help="preprocessed bone scans")
    parser.add_argument("--split", help="split CSV")
    parser.add_argument("--pretrain-data", help="npz from `spectbone pretrain-data`")
    parser.add_argument("--data-label", default="bone scans", help="what the bone-scan data are (for outputs)")
    parser.add_argument("--init", help="weights to start from (transfer learning)")
    parser.add_argument("--levels", default="1:50", help="training noise levels")
    parser.add_argument("--level-jitter", type=float, default=1.0)
    parser.add_argument("--lam", type=float, default=0.2, help="perceptual weight lambda of the composite loss")
    parser.add_argument("--vgg-weights", default=None, help="torchvision-format VGG-16 state_dict")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--samples-per-epoch", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--critic-steps", type=int, default=4)
    parser.add_argument("--gp-weight", type=float, default=10.0)
    parser.add_argument("--perceptual-weight", type=float, default=0.1)
    parser.add_argument("--device", default="auto")
    add_common_arguments(parser, seed=True, threads=True)


def run(args):
    setup_logging(args.log)
    set_threads(args.threads)
    device = pick_device(args.device)
    log.info("device=%s CUDA_VISIBLE_DEVICES=%s threads=%d", device, os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
             torch.get_num_threads())
    seed_everything(args.seed)
    task, kind, kwargs, meta, dataset = build_task(args, device)
    log.info("task=%s model=%s kwargs=%s samples=%d meta=%s", args.task, kind, kwargs, len(dataset), json.dumps(meta))
    best_state, history = fit(task, dataset, epochs=args.epochs, samples_per_epoch=args.samples_per_epoch,
                              batch_size=args.batch_size, seed=args.seed, ckpt_dir=Path(args.ckpt_dir),
                              device=device)
    from spectbone.models import save_model

    model = task.models[task.primary]
    model.load_state_dict(best_state)
    meta.update(best_val=float(history["val"].min()) if len(history) else None,
                best_epoch=int(history["val"].idxmin()) + 1 if len(history) else 0)
    Path(args.history).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(args.history, index=False)
    plot_history(history, args.curve, f"{args.task} {kind} ({Path(args.out).stem})")
    save_model(args.out, model.cpu(), kind, kwargs, meta)
    log.info("saved %s (best epoch %s, val %.5g)", args.out, meta["best_epoch"], meta["best_val"] or float("nan"))
    return 0
