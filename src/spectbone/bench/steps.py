"""`spectbone bench train`: the default training step of each network beside the old fp32 NCHW step.

For each network both paths start from the same weights and train on the same batches (same data,
same random windows), one step of each in turn, so a shared, drifting machine slows both alike; the
speed-up is the median of the per-step time ratios. After the short run each path is validated in
fp32 on the same validation pairs: mean PSNR with its 95 % bootstrap interval over validation
images; a step choice keeps "the same numerics" when the default path's PSNR lies inside the fp32
path's interval (``within_fp32_interval``). The paired difference (default - fp32) and its interval
are printed too: any change of rounding moves every image a little the same way, so that interval
is narrow and shows the size of the change rather than whether there is one.

The networks are built as the default config trains them (width 16 EMANet with the stage-1 estimator's
level map and the composite loss on 64-px windows of 128-px images; DnCNN, RED-CNN and WGAN-VGG at
width 32); images are bone-scan-like smooth blobs (content does not change cost).

EMANet's old step runs the frozen estimator on every batch; its default step looks the maps up, as the
DAG's fine-tunes do (``spectbone level-maps`` computes them once for all of them; here, once over the
bench's batches with the folded estimator). That one pass is not free: ``amortized_images_per_s``
charges each step its share of it, one pass per ``--fine-tunes`` runs (10 in the default DAG).
"""

from __future__ import annotations

import logging
import statistics
import time

import numpy as np
import pandas as pd
import torch

log = logging.getLogger("spectbone.bench.steps")

NETWORKS = ("emanet", "dncnn", "redcnn", "wgan")


def add_arguments(p) -> None:
    p.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    p.add_argument("--steps", type=int, default=30, help="training steps of each path (timed after --warmup)")
    p.add_argument("--warmup", type=int, default=2, help="untimed first steps of each path")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=128, help="whole-image size (the default config's)")
    p.add_argument("--patch", type=int, default=64, help="training window (the default config's)")
    p.add_argument("--width", type=int, default=16, help="EMANet / estimator width (the default config's)")
    p.add_argument("--baseline-width", type=int, default=32, help="DnCNN / RED-CNN / WGAN width")
    p.add_argument("--val-images", type=int, default=12, help="validation images (x 3 levels)")
    p.add_argument("--fine-tunes", type=int, default=10,
                   help="EMANet fine-tunes sharing one level-map pass (the default DAG's 10): its amortised cost")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--out", default=None, help="CSV to write (a Markdown twin is written beside it)")


def _data(args):
    """Training batches (noisy/clean/levels) and fixed validation pairs, the same for both paths."""
    from torch.utils.data import DataLoader

    from spectbone.bench.pipeline import _smooth_images
    from spectbone.data.datasets import NoisyImageDataset
    from spectbone.train.tasks import validation_pairs

    images = _smooth_images(32, args.size, seed=1)
    samples = np.array([(i, lv) for i in range(len(images)) for lv in range(1, 51)])
    dataset = NoisyImageDataset(images, samples, seed=0, level_jitter=1.0)
    order = np.random.default_rng(0).permutation(len(dataset))[:(args.steps + args.warmup) * args.batch]
    batches = list(DataLoader(dataset, batch_size=args.batch, sampler=order.tolist()))
    val = validation_pairs(_smooth_images(args.val_images, args.size, seed=2), seed=0)
    return images, batches, val


def _task(name: str, speed, args, images, val, device):
    """The task of network `name` as the default config builds it, with step settings `speed`."""
    from spectbone.models import build_model
    from spectbone.train import losses
    from spectbone.train.tasks import DenoiserTask, WGANTask, validation_pairs

    torch.manual_seed(0)
    w = args.baseline_width
    if name == "wgan":
        gen, critic = build_model("wgan_generator", channels=w).to(device), build_model("wgan_critic", channels=w)
        perceptual = losses.PerceptualLoss(channels="mean").to(device)
        return WGANTask(gen, critic.to(device), perceptual, val, 5e-4, device, args.batch, critic_steps=4,
                        gp_weight=10.0, perceptual_weight=0.1, warmup=0.0, patch=args.patch, speed=speed)
    estimator = None
    if name == "emanet":
        model = build_model("emanet", base=args.width)
        estimator = build_model("estimator", base=args.width).to(device).eval().requires_grad_(False)
        loss = losses.CompositeLoss(lam=0.2)
        noisy, clean, _ = validation_pairs(images[:16], seed=0)
        loss.perceptual.scale = 1.0 / losses.perceptual_balance(loss.perceptual, noisy, clean)
    else:
        model = build_model(name, channels=w, **({"depth": 17} if name == "dncnn" else {}))
        loss = losses.CompositeLoss(lam=0.0)
    return DenoiserTask(model.to(device), loss.to(device), val, 1e-3, device, args.batch, estimator=estimator,
                        patch=args.patch, speed=speed)


def _share_level_maps(task, batches, device) -> float:
    """Give `task` the level maps of its folded estimator, computed once over `batches` and the validation
    images (what ``spectbone level-maps`` does for the DAG); returns that pass's median seconds per batch."""
    from spectbone.train.level_maps import LevelMaps, sigma_over_255

    train = np.full((1, max(int(b["sample"].max()) for b in batches) + 1), np.nan, dtype=np.float32)
    seconds = []
    for b in batches:
        _sync(device)
        t0 = time.perf_counter()
        sigma = sigma_over_255(task.estimator, b["noisy"].to(device))
        _sync(device)
        seconds.append(time.perf_counter() - t0)
        train[b["epoch"].numpy(), b["sample"].numpy()] = sigma.cpu().numpy()
    task.level_maps = LevelMaps(train, task.val_levels().numpy())
    return statistics.median(seconds)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare(name: str, args, device, data) -> list[dict]:
    """Both paths of network `name` trained step by step in turn; speed, then validation PSNR, of each."""
    from spectbone.evaluate.metrics import bootstrap_ci
    from spectbone.train.speed import FP32, step_settings

    images, batches, val = data
    paths = {"fp32 NCHW (old)": FP32, "default": step_settings(device, "auto")}
    tasks = {label: _task(name, s, args, images, val, device) for label, s in paths.items()}
    total = args.steps + args.warmup
    shared_pass = {label: 0.0 for label in paths}  # seconds per batch of the once-per-DAG level-map pass
    if name == "emanet":
        shared_pass["default"] = _share_level_maps(tasks["default"], batches[:total], device) / args.fine_tunes
    times = {label: [] for label in paths}
    for task in tasks.values():
        task.set_total_steps(total)
        task.train(True)
    for i, batch in enumerate(batches[:total]):
        for label, task in tasks.items():
            torch.manual_seed(i)  # the same random windows for both paths
            _sync(device)
            t0 = time.perf_counter()
            task.step(batch)
            task.after_batch()
            _sync(device)
            if i >= args.warmup:
                times[label].append(time.perf_counter() - t0)
    old_label = next(iter(paths))
    scores = {}
    for label, task in tasks.items():
        task.train(False)
        scores[label] = task.evaluate()[1]
    rows = []
    for label, s in paths.items():
        psnr, lo, hi = bootstrap_ci(scores[label])
        diff, dlo, dhi = bootstrap_ci(scores[label] - scores[old_label])
        ratio = statistics.median(a / b for a, b in zip(times[old_label], times[label]))
        amortized = statistics.median(times[label]) + shared_pass[label]
        if label == old_label:
            old_lo, old_hi = lo, hi
        step = s.label + (", shared level maps" if shared_pass[label] else "")
        rows.append({"network": name, "path": label, "step": step, "device": str(device),
                     "threads": torch.get_num_threads() if device.type == "cpu" else None,
                     "images_per_s": args.batch / statistics.median(times[label]), "speedup_vs_fp32": ratio,
                     "amortized_images_per_s": args.batch / amortized,
                     "amortized_speedup_vs_fp32": statistics.median(times[old_label]) / amortized,
                     "val_psnr": psnr, "val_psnr_ci": f"[{lo:.3f}, {hi:.3f}]",
                     "within_fp32_interval": bool(old_lo <= psnr <= old_hi), "psnr_minus_fp32": diff,
                     "psnr_minus_fp32_ci": f"[{dlo:.3f}, {dhi:.3f}]"})
        log.info("%s %s (%s): %.2f img/s, x%.2f (x%.2f with the shared level-map pass), "
                 "val PSNR %.3f [%.3f, %.3f] dB, minus fp32 %.3f [%.3f, %.3f]", name, label, step,
                 rows[-1]["images_per_s"], ratio, rows[-1]["amortized_speedup_vs_fp32"], psnr, lo, hi, diff, dlo, dhi)
    return rows


def run(args) -> int:
    from spectbone.util.runtime import pick_device

    device = pick_device(args.device)
    data = _data(args)
    rows = [r for name in args.networks for r in compare(name, args, device, data)]
    df = pd.DataFrame(rows)
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        from spectbone.util.outputs import write_table

        write_table(df, args.out, "Training step: the default path beside the old fp32 NCHW path", notes=[
            f"{args.steps} timed steps per path after {args.warmup} untimed, batch {args.batch}, {args.patch}-px windows "
            f"of {args.size}-px images, the two paths in turn on the same batches; images/s from the median step, "
            "speed-up = median of the per-step time ratios.",
            f"EMANet's default step looks its level maps up (computed once per DAG for every fine-tune); amortized_*: "
            f"the step plus 1/{args.fine_tunes} of that pass per batch (the default DAG shares it among "
            f"{args.fine_tunes} fine-tunes).",
            "val_psnr: fp32 validation after the short run, 95 % bootstrap interval over validation images; "
            "within_fp32_interval: the default path's PSNR lies in the old path's interval; psnr_minus_fp32: paired "
            "difference to the old path and its interval (the size of the change of rounding).",
        ])
    return 0
