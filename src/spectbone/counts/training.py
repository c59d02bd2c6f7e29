"""`spectbone train-counts`: the count-domain EMANet, trained on thinned phantom counts at native sampling.

Same two-stage design as the paper's EMANet (the full backbone of RDC, MD, RCAG and CF blocks, fed the
image and a noise-level map), in the count domain:

- input: a window of a native phantom frame, binomially thinned to a fraction f drawn log-uniformly
  over ``--fractions`` (mixed-count training: one model for full-time and short-time scans). Thinning
  the acquired counts c ~ Poisson(lambda) gives exactly Poisson(f lambda), the statistics of a scan f
  times as long;
- target: f x the phantom's noiseless expected counts of the same window;
- level map: the counts' own Poisson statistics (`domain.level_map`), not a learned stage-1 network;
- units: counts / S with S from the whole thinned frame (`domain.count_scale`), as at inference;
- output: the input smoothed by a Gaussian minus EMANet's predicted correction (`domain.estimate`);
- loss: squared error in those units, each window weighted by its count scale S (relative to the
  batch): the noise variance of u falls as 1/S, so the weight puts every count level on the footing of
  its own noise instead of letting the shortest scans dominate. The count-split score the family is
  judged by is a squared error, and Table 5 of the paper-protocol family shows the perceptual term
  costing PSNR.
Validation: fixed thinned windows of the validation patients at 50 / 25 / 10 %, the best epoch kept.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from spectbone.counts.domain import BASE_SIGMA, FAMILY, LEVEL_BLUR, UNIT, body_mask, count_scale, estimate, level_map
from spectbone.counts.thinning import FRACTIONS, integer_counts
from spectbone.train.tasks import Task
from spectbone.util.runtime import add_common_arguments, start_training_job

log = logging.getLogger("spectbone.counts.training")
VAL_WINDOW = 128  # px, validation windows (a multiple of 8)
VAL_WINDOWS_PER_FRAME = 2


def parse_fractions(text: str) -> tuple[float, float]:
    lo, hi = (float(v) for v in text.split(":"))
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"--fractions {text}: need 0 < low <= high <= 1")
    return lo, hi


class ThinnedWindows(Dataset):
    """Windows of native frames centred on the body, thinned to a random fraction on every draw.

    Item j of epoch e is drawn from its own stream (seed, e, j): frame j mod N, a body pixel as centre,
    f log-uniform in ``fractions``, a left-right flip; returns u, its Poisson level map and the target,
    all in units of the thinned frame's count scale."""

    def __init__(self, counts: np.ndarray, expected: np.ndarray, patch: int, fractions: tuple[float, float],
                 seed: int, draws: int = 1):
        if patch % 8 or patch > min(counts.shape[-2:]):
            raise ValueError(f"window {patch} must be a multiple of 8 and fit the {counts.shape[-2:]} frames")
        self.counts = [integer_counts(c) for c in counts]
        self.expected, self.patch, self.fractions = expected, patch, fractions
        self.scales = np.array([count_scale(c) for c in counts])
        self.centres = [np.argwhere(body_mask(c)) for c in counts]
        self.seed, self.draws, self.epoch = seed, max(1, int(draws)), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.counts) * self.draws

    def window(self, rng: np.random.Generator, i: int, size: int) -> tuple[slice, slice]:
        h, w = self.counts[i].shape
        cy, cx = self.centres[i][rng.integers(len(self.centres[i]))]
        top = int(np.clip(cy - size // 2, 0, h - size))
        left = int(np.clip(cx - size // 2, 0, w - size))
        return slice(top, top + size), slice(left, left + size)

    def __getitem__(self, j: int):
        rng = np.random.default_rng([self.seed, self.epoch, j])
        i = j % len(self.counts)
        lo, hi = self.fractions
        f = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        win = self.window(rng, i, self.patch)
        y = rng.binomial(self.counts[i][win], f) if f < 1 else self.counts[i][win]
        s = f * self.scales[i]
        u = (y / s).astype(np.float32)
        target = (f * self.expected[i][win] / s).astype(np.float32)
        m = level_map(u, s)
        if rng.random() < 0.5:
            u, m, target = u[:, ::-1], m[:, ::-1], target[:, ::-1]
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))[None]  # noqa: E731
        return {"u": t(u), "level": t(m), "target": t(target), "S": float(s)}


def validation_windows(counts: np.ndarray, expected: np.ndarray, seed: int, fractions=FRACTIONS,
                       size: int = VAL_WINDOW) -> tuple[torch.Tensor, ...]:
    """Fixed thinned windows of the validation frames: (u, level map, target, S) stacks, as in training."""
    size = min(size, *(d // 8 * 8 for d in counts.shape[-2:]))
    data = ThinnedWindows(counts, expected, size, (1.0, 1.0), seed)
    us, ms, ts, ss = [], [], [], []
    for i in range(len(counts)):
        for k in range(VAL_WINDOWS_PER_FRAME):
            for f in fractions:
                rng = np.random.default_rng([seed, 0x7A1, i, k, int(round(f * 1000))])
                win = data.window(rng, i, size)
                s = f * data.scales[i]
                u = (rng.binomial(data.counts[i][win], f) / s).astype(np.float32)
                us.append(u)
                ms.append(level_map(u, s))
                ts.append((f * expected[i][win] / s).astype(np.float32))
                ss.append(s)
    stack = lambda a: torch.from_numpy(np.stack(a))[:, None]  # noqa: E731
    return stack(us), stack(ms), stack(ts), torch.tensor(ss, dtype=torch.float32)


def weighted_mse(out: torch.Tensor, target: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Mean squared error with each sample weighted by its count scale S over the batch's mean S."""
    w = (scale / scale.mean()).to(out).view(-1, 1, 1, 1)
    return (w * (out - target) ** 2).mean()


class CountDenoiserTask(Task):
    """`domain.estimate` (Gaussian base - EMANet correction) -> expected counts / S; S-weighted MSE."""

    def __init__(self, model, val, lr, device, batch_size, base_sigma: float = BASE_SIGMA):
        super().__init__({"model": model}, lr)
        self.val, self.device, self.batch_size, self.base_sigma = val, device, batch_size, base_sigma
        self.val_weights = val[3] / val[3].mean()  # the whole validation set's weights, fixed

    def step(self, batch):
        out = estimate(self.models["model"], batch["u"].to(self.device), batch["level"].to(self.device),
                       self.base_sigma)
        return self.optimise(weighted_mse(out, batch["target"].to(self.device), batch["S"].float()))

    @torch.no_grad()
    def evaluate(self):
        """(S-weighted MSE over the fixed validation windows, each window's PSNR in u units, "psnr").

        The per-window PSNR (peak 1: bone) gives `tables/training.csv` its still-improving interval."""
        model = self.models[self.primary]
        u, m, target, _ = self.val
        total, psnr = 0.0, []
        for i in range(0, len(u), self.batch_size):
            sl = slice(i, i + self.batch_size)
            out = estimate(model, u[sl].to(self.device), m[sl].to(self.device), self.base_sigma).cpu()
            err = (out - target[sl]) ** 2
            total += float((self.val_weights[sl].view(-1, 1, 1, 1) * err).sum())
            psnr.append(-10 * torch.log10(err.mean(dim=(1, 2, 3)).double().clamp_min(1e-12)))
        return total / target.numel(), torch.cat(psnr).numpy(), "psnr"

    def validate(self):
        return self.evaluate()[0]


def family_meta(**extra) -> dict:
    """What every count-domain model file records about how to feed it (read back by `denoise`)."""
    return {"family": FAMILY, "unit": UNIT, "output": "Gaussian(u, base_sigma) - EMANet correction, x S", "level_map": f"Poisson statistics: sqrt(blur(u, {LEVEL_BLUR:g} px) / S)",
            "input": "counts / S, S = unit x body mean count of the frame (native sampling)", **extra}


def add_arguments(parser, verb):
    parser.add_argument("--views", required=True, help="npz from `spectbone count-views`")
    parser.add_argument("--out", required=True, help="best-on-validation weights (declared output)")
    parser.add_argument("--ckpt-dir", required=True, help="resumable checkpoints (not a declared output)")
    parser.add_argument("--history", required=True, help="per-epoch CSV log")
    parser.add_argument("--curve", required=True, help="loss-curve figure stem (PNG + PDF)")
    parser.add_argument("--width", type=int, default=16, help="base channels of EMANet")
    parser.add_argument("--patch", type=int, default=64, help="training window (px, multiple of 8)")
    parser.add_argument("--fractions", default="0.03:1", help="count fractions drawn log-uniformly, LOW:HIGH")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples-per-epoch", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--base-sigma", type=float, default=BASE_SIGMA,
                        help="px, Gaussian of the residual base (0: the paper's residual on the raw input)")
    parser.add_argument("--data-label", default="synthetic phantom cohort", help="what the frames are (for outputs)")
    add_common_arguments(parser, seed=True, threads=True, device=True)


def run(args) -> int:
    from spectbone.counts.views import load_views
    from spectbone.models import build_model, save_model
    from spectbone.models.emanet import EMANET_ABLATIONS
    from spectbone.train import checkpoint
    from spectbone.train.engine import fit, plot_history

    device = start_training_job(args)
    fractions = parse_fractions(args.fractions)
    train, val = load_views(args.views, "train"), load_views(args.views, "val")
    draws = -(-args.samples_per_epoch // len(train["counts"]))
    dataset = ThinnedWindows(train["counts"], train["expected"], args.patch, fractions, args.seed, draws)
    val_data = validation_windows(val["counts"], val["expected"], args.seed)
    kwargs = {"base": args.width, **EMANET_ABLATIONS["full"]}
    model = build_model("emanet", **kwargs).to(device)
    fingerprint = checkpoint.fingerprint(checkpoint.training_params(args), [args.views], checkpoint.code_version())
    task = CountDenoiserTask(model, val_data, args.lr, device, args.batch_size, args.base_sigma)
    log.info("count-domain EMANet: %d training frames %s, windows %d, fractions %g..%g, %d validation windows",
             len(train["counts"]), train["counts"].shape[1:], args.patch, *fractions, len(val_data[0]))
    best_state, history = fit(task, dataset, epochs=args.epochs, samples_per_epoch=args.samples_per_epoch,
                              batch_size=args.batch_size, seed=args.seed, ckpt_dir=Path(args.ckpt_dir),
                              device=device, fingerprint=fingerprint)
    model.load_state_dict(best_state)
    meta = family_meta(task="train-counts", kind="emanet", data_source=args.data_label, fractions=list(fractions),
                       patch=args.patch, base_sigma=args.base_sigma, seed=args.seed, epochs=args.epochs, samples_per_epoch=args.samples_per_epoch,
                       batch_size=args.batch_size, lr=args.lr, loss="S-weighted MSE (counts / S)",
                       frame_shape=list(train["counts"].shape[1:]), fingerprint=fingerprint["digest"],
                       best_val=float(history["val"].min()) if len(history) else None,
                       best_epoch=int(history["val"].idxmin()) + 1 if len(history) else 0)
    Path(args.history).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(args.history, index=False)
    plot_history(history, args.curve, f"count-domain EMANet ({Path(args.out).stem})")
    save_model(args.out, model.cpu(), "emanet", kwargs, meta)
    log.info("saved %s: %s", args.out, json.dumps({k: meta[k] for k in ("best_epoch", "best_val")}))
    return 0
