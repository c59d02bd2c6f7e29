"""Training-step speed against this machine's matmul peak (`spectbone bench peak`).

``bench peak``: the fp32 matmul peak of this machine (best of a few large ``torch.matmul``), then,
for EMANet (paper size) and DnCNN at each image size, one training step (forward + backward +
RAdam step, batch 8 or smaller if memory runs out): images/s and the achieved FLOP/s as a share of
the matmul peak. FLOPs are those of the convolutions / matmuls of one forward + backward pass as
``torch.utils.flop_counter.FlopCounterMode`` counts them (element-wise ops, BN and pooling count
nothing). Step times are the best of ``--steps`` timed steps after ``--warmup`` untimed ones, and
the peak is the best of its runs before and after the networks, so a noisy shared machine biases
the share down, not up.
"""

from __future__ import annotations

import logging
import statistics
import time
from spectbone.util.runtime import pick_device

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- helpers
def _sync(device) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(device="cpu", n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 ``torch.matmul`` rate (GFLOP/s) of an n x n product over ``repeats`` runs (TF32 off)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.matmul(a, b)
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def _is_oom(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text \
        or "not enough memory" in text


def train_step_benchmark(model, size: int, batch: int, steps: int = 3, warmup: int = 1, device="cpu",
                         needs_level: bool = True) -> dict:
    """Time ``steps`` RAdam training steps of ``model`` on [batch,1,size,size]; count its FLOPs.

    Returns step times (best, median), images/s, forward and forward+backward GFLOP per step.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    device = torch.device(device)
    model = model.to(device).train()
    opt = torch.optim.RAdam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(batch, 1, size, size, generator=gen).to(device)
    noisy = (clean + 0.05 * torch.randn(batch, 1, size, size, generator=gen).to(device))
    level = torch.full((batch, 1, size, size), 10 / 255, device=device)

    def forward():
        return model(noisy, level) if needs_level else model(noisy, None)

    with FlopCounterMode(display=False) as fwd_counter:
        out = forward()
        loss = F.mse_loss(out, clean)
    with FlopCounterMode(display=False) as bwd_counter:
        loss.backward()
    fwd_flops = fwd_counter.get_total_flops()
    total_flops = fwd_flops + bwd_counter.get_total_flops()
    opt.zero_grad(set_to_none=True)
    del out, loss

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(forward(), clean)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {"batch": batch, "step_s": best, "step_s_median": statistics.median(times),
            "images_per_s": batch / best, "gflop_fwd": fwd_flops / 1e9, "gflop_step": total_flops / 1e9,
            "gflops_achieved": total_flops / best / 1e9}


# ---------------------------------------------------------------- bench peak
def add_train_arguments(p) -> None:
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="image sizes (divisible by 8)")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per network and size (best counts)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--batch", type=int, default=8, help="batch size (halved on out-of-memory)")
    p.add_argument("--models", nargs="+", default=["emanet", "dncnn"], choices=["emanet", "dncnn"])
    p.add_argument("--emanet-base", type=int, default=32)
    p.add_argument("--dncnn-channels", type=int, default=64)
    p.add_argument("--dncnn-depth", type=int, default=17)
    p.add_argument("--peak-n", type=int, default=None, help="matmul size for the peak (2048 CPU, 8192 GPU)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--out", default=None, help="CSV to write (a Markdown twin is written beside it)")


def _build(name: str, args):
    from spectbone.models import build_model

    if name == "emanet":
        return build_model("emanet", base=args.emanet_base), f"EMANet(base={args.emanet_base})", True
    return (build_model("dncnn", depth=args.dncnn_depth, channels=args.dncnn_channels),
            f"DnCNN(depth={args.dncnn_depth}, channels={args.dncnn_channels})", False)


def run_train(args) -> int:
    import pandas as pd
    import torch

    device = pick_device(args.device)
    threads = torch.get_num_threads()
    peak_n = args.peak_n or (8192 if device.type == "cuda" else 2048)
    peaks = [matmul_peak_gflops(device, peak_n)]
    log.info("matmul fp32 peak (n=%d): %.1f GFLOP/s on %s, %d threads", peak_n, peaks[0], device, threads)
    results = []
    for size in args.sizes:
        for name in args.models:
            batch = args.batch
            while True:
                torch.manual_seed(0)
                model, label, needs_level = _build(name, args)
                try:
                    r = train_step_benchmark(model, size, batch, args.steps, args.warmup, device, needs_level)
                    break
                except (RuntimeError, MemoryError) as exc:
                    if not _is_oom(exc) or batch == 1:
                        raise
                    log.warning("%s at %d px, batch %d: out of memory, halving the batch", label, size, batch)
                    del model
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    batch //= 2
            log.info("%s %dpx batch %d: %.3f s/step, %.2f img/s, %.1f GFLOP/s", label, size, r["batch"],
                     r["step_s"], r["images_per_s"], r["gflops_achieved"])
            results.append({"network": label, "size": size, **r})
            del model
    peaks.append(matmul_peak_gflops(device, peak_n))
    peak = max(peaks)
    rows = [{"network": f"matmul fp32 {peak_n}x{peak_n} (peak)", "size": None, "batch": None, "step_s": None,
             "step_s_median": None, "images_per_s": None, "gflop_fwd": None, "gflop_step": None,
             "gflops_achieved": peak, "pct_of_peak": 100.0}]
    for r in results:
        rows.append({**r, "pct_of_peak": 100.0 * r["gflops_achieved"] / peak})
    df = pd.DataFrame(rows)
    df.insert(1, "device", str(device))
    df.insert(2, "threads", threads if device.type == "cpu" else None)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        from spectbone.util.outputs import write_table

        write_table(df, args.out, "Training-step speed against the fp32 matmul peak", notes=[
            f"Device {device}, {threads} threads; peak = best fp32 matmul ({peak_n}x{peak_n}) over "
            f"{len(peaks)} runs of 5 ({', '.join(f'{p:.1f}' for p in peaks)} GFLOP/s).",
            "FLOPs per step: convolutions and matmuls of one forward + backward pass (FlopCounterMode); "
            "step = forward + MSE + backward + RAdam step; times are the best of the timed steps.",
        ])
    return 0
