"""`spectbone finetune-counts`: adapt the count-domain EMANet to a site's own scans, no clean image needed.

Noise2Noise on binomial count splits: a window's counts c give y1 ~ Binomial(c, q) as the input and
y2 = c - y1 as the target, scaled by q / (1 - q) so that it is an unbiased, independent copy of the
expected counts q lambda the model must predict from y1. The MSE against it is the MSE against q lambda
plus a constant, so its minimiser is the same; nothing but the site's counts is used. q is drawn
log-uniformly over ``--fractions`` so the model stays one for short and full-time scans.

Only pixels outside the held-out part (`sites.holdout_masks`) are ever read; the held-out part is
scored later (`spectbone count-split`). The rest is cut into a training part and a validation part
(`sites.finetune_masks`): the best epoch is chosen by the count-split score on fixed splits of the
validation part, pixels the fine-tuning never trains on, and the starting model competes too: unless
an epoch beats it by more than KEEP_MARGIN, the output is the starting model unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from spectbone.counts.domain import count_scale, denoise_frame, estimate, level_map
from spectbone.counts.sites import finetune_masks, load_cases
from spectbone.counts.thinning import FRACTIONS, binomial_split, excess_error_map, integer_counts
from spectbone.counts.training import parse_fractions
from spectbone.train.tasks import Task
from spectbone.util.runtime import add_common_arguments, start_training_job

log = logging.getLogger("spectbone.counts.finetune")
VALIDATION_SEEDS = (2000,)  # splits that pick the best epoch (never the scored seeds)
MAX_VALIDATION_FRAMES = 8
KEEP_MARGIN = 0.02  # relative improvement on the validation part needed to keep the fine-tuned weights


def window_origins(allowed: np.ndarray, counted: np.ndarray, patch: int) -> np.ndarray:
    """Top-left corners of the patch x patch windows wholly inside `allowed` that hold some count."""
    def window_sums(a):
        ii = np.pad(np.cumsum(np.cumsum(a.astype(np.int64), 0), 1), ((1, 0), (1, 0)))
        return ii[patch:, patch:] - ii[:-patch, patch:] - ii[patch:, :-patch] + ii[:-patch, :-patch]

    if min(allowed.shape) < patch:
        return np.zeros((0, 2), int)
    return np.argwhere((window_sums(allowed) == patch * patch) & (window_sums(counted) > 0))


class SplitWindows(Dataset):
    """Noise2Noise pairs from windows of the site's frames that lie wholly outside the held-out part."""

    def __init__(self, frames: list[np.ndarray], train_masks: list[np.ndarray], patch: int,
                 fractions: tuple[float, float], seed: int, draws: int):
        self.frames = [integer_counts(f) for f in frames]
        self.scales = [count_scale(f) for f in frames]
        self.patch, self.fractions, self.seed, self.epoch = patch, fractions, seed, 0
        self.origins = [window_origins(m, f > 0, patch) for f, m in zip(frames, train_masks)]
        self.usable = [i for i, o in enumerate(self.origins) if len(o) and self.scales[i] > 0]
        if not self.usable:
            raise ValueError(f"no {patch} x {patch} window of the site's frames lies outside the held-out part")
        self.draws = max(1, int(draws))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.usable) * self.draws

    def __getitem__(self, j: int):
        rng = np.random.default_rng([self.seed, self.epoch, j, 0xF7])
        i = self.usable[j % len(self.usable)]
        top, left = self.origins[i][rng.integers(len(self.origins[i]))]
        c = self.frames[i][top:top + self.patch, left:left + self.patch]
        lo, hi = self.fractions
        q = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        y1 = rng.binomial(c, q)
        s = q * self.scales[i]
        u = (y1 / s).astype(np.float32)
        target = ((c - y1) * q / (1.0 - q) / s).astype(np.float32)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))[None]  # noqa: E731
        return {"u": t(u), "level": t(level_map(u, s)), "target": t(target)}


class Noise2NoiseTask(Task):
    """MSE against the scaled held-back half; validation = count-split score on the validation part."""

    def __init__(self, model, frames, val_masks, lr, device, base_sigma: float):
        super().__init__({"model": model}, lr)
        self.device, self.base_sigma = device, base_sigma
        self.val = [(f, m) for f, m in zip(frames, val_masks) if m.any()][:MAX_VALIDATION_FRAMES]

    def step(self, batch):
        out = estimate(self.models["model"], batch["u"].to(self.device), batch["level"].to(self.device),
                       self.base_sigma)
        return self.optimise(F.mse_loss(out, batch["target"].to(self.device)))

    @torch.no_grad()
    def validate(self) -> float:
        """Count-split score on the validation part relative to the raw counts', averaged over the fractions.

        Relative, so that each fraction counts alike: in count units the shortest scan's error is ten times
        the longest's and would alone decide which epoch is kept."""
        model = self.models[self.primary]
        model.eval()
        ratios = []
        for p in FRACTIONS:
            model_err, raw_err = 0.0, 0.0
            for frame, mask in self.val:
                for seed in VALIDATION_SEEDS:
                    y1, y2 = binomial_split(frame, p, np.random.default_rng([seed, int(p * 1000)]))
                    x = denoise_frame(model, y1, self.device, self.base_sigma)
                    model_err += float(excess_error_map(x, y2, p)[mask].sum())
                    raw_err += float(excess_error_map(y1, y2, p)[mask].sum())
            ratios.append(model_err / raw_err)
        return float(np.mean(ratios))


def add_arguments(parser, verb):
    parser.add_argument("--model", required=True, help="the count-domain EMANet to start from")
    parser.add_argument("--dataset", required=True, choices=["nm1", "site"])
    parser.add_argument("--manifest", default=None, help="site: the convert manifest of data.dicom_dir")
    parser.add_argument("--holdout-seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="fine-tuned weights")
    parser.add_argument("--ckpt-dir", required=True)
    parser.add_argument("--history", required=True)
    parser.add_argument("--curve", required=True)
    parser.add_argument("--patch", type=int, default=32, help="window (px); at most the band height of a single scan")
    parser.add_argument("--fractions", default="0.1:0.6", help="split fractions q drawn log-uniformly, LOW:HIGH")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--samples-per-epoch", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-4)
    add_common_arguments(parser, seed=True, threads=True, device=True)


def run(args) -> int:
    from spectbone.models import load_model, save_model
    from spectbone.train import checkpoint
    from spectbone.train.engine import fit, plot_history

    device = start_training_job(args)
    model, meta = load_model(args.model, map_location=device)
    if meta.get("family") != "count-domain":
        raise SystemExit(f"{Path(args.model).name} is not a count-domain model (family {meta.get('family', 'paper')!r})")
    cases = load_cases(args.dataset, args.manifest)
    train_masks, val_masks = finetune_masks(cases, args.holdout_seed)
    frames = [c.counts for c in cases]
    dataset = SplitWindows(frames, train_masks, args.patch, parse_fractions(args.fractions), args.seed,
                           draws=-(-args.samples_per_epoch // max(1, len(frames))))
    task = Noise2NoiseTask(model.to(device), frames, val_masks, args.lr, device, float(meta.get("base_sigma", 0.0)))
    start_val = task.validate()
    start_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    inputs = [args.model] + ([args.manifest] if args.manifest else [])
    fingerprint = checkpoint.fingerprint(checkpoint.training_params(args), inputs, checkpoint.code_version())
    share = lambda masks: 100 * sum(m.sum() for m in masks) / sum(m.size for m in masks)  # noqa: E731
    log.info("fine-tuning on %d frame(s) of %s (%d patient(s)): %.1f%% of the pixels train, %.1f%% choose the epoch, "
             "the rest is held out; start score %.4g", len(frames), args.dataset, len({c.patient_id for c in cases}),
             share(train_masks), share(val_masks), start_val)
    best_state, history = fit(task, dataset, epochs=args.epochs, samples_per_epoch=args.samples_per_epoch,
                              batch_size=args.batch_size, seed=args.seed, ckpt_dir=Path(args.ckpt_dir),
                              device=device, fingerprint=fingerprint)
    best_val = float(history["val"].min()) if len(history) else float("inf")
    kept = best_val < start_val * (1 - KEEP_MARGIN)
    model.load_state_dict(best_state if kept else start_state)
    log.info("best epoch score %.4g vs start %.4g: %s", best_val, start_val,
             "fine-tuned weights kept" if kept else "no epoch beat the starting model; it is kept unchanged")
    history.insert(len(history.columns), "start_val", start_val)
    Path(args.history).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(args.history, index=False)
    plot_history(history.drop(columns=["start_val"]), args.curve, f"site fine-tuning ({args.dataset})")
    meta = dict(meta, task="finetune-counts", finetuned_on=args.dataset, finetune_start_val=start_val,
                finetune_best_val=best_val, finetune_kept=kept, finetune_epochs=args.epochs,
                finetune_fractions=args.fractions, fingerprint=fingerprint["digest"],
                data_source=f"{meta.get('data_source', '')} + Noise2Noise on {args.dataset} count splits")
    save_model(args.out, model.cpu(), "emanet", dict(model.config), meta)
    return 0
