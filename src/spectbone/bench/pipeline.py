"""Pipeline benchmarks behind `spectbone bench {loader,bm3d,dag,all}` (issue: cluster and scale).

loader  one paper-scale epoch of training data (270 images, 256x256, 13,500 samples, noise drawn on
        the fly): peak memory and throughput, against EMANet's training consumption measured here
bm3d    BM3D seconds per 256x256 image, one process vs one per core (the DAG runs one job per level)
dag     the whole test-scale DAG from scratch: wall time, how busy the cores were
        (CPU time / wall / cores) and the peak RSS of each stage, from Snakemake's benchmark files
"""

from __future__ import annotations

import logging
import os
import resource
import subprocess
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("spectbone.bench.pipeline")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _smooth_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Bone-scan-like grey images (smooth blobs on a body) as loader input; content does not change cost."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        out[i] = np.clip(gaussian_filter(rng.random((size, size)) * 255, 3) * 3 - 250, 0, 255)
    return out


def loader_benchmark(n_images=270, size=256, levels=50, batch=8, emanet_base=32, train_steps=2) -> dict:
    """Peak RSS and images/s of one streamed epoch, and the ratio to EMANet's training images/s."""
    import torch
    from torch.utils.data import DataLoader

    from spectbone.data.datasets import NoisyImageDataset, epoch_order

    rss0 = _peak_rss_mb()
    images = _smooth_images(n_images, size)
    samples = np.array([(i, lv) for i in range(n_images) for lv in range(1, levels + 1)])
    dataset = NoisyImageDataset(images, samples, seed=0, level_jitter=1.0)
    loader = DataLoader(dataset, batch_size=batch, sampler=epoch_order(len(dataset), None, 0, 0).tolist())
    t0, n = time.perf_counter(), 0
    for b in loader:
        n += len(b["noisy"])
    load_s = time.perf_counter() - t0
    loading_peak = _peak_rss_mb()  # before the training step, whose activations would dominate
    from spectbone.bench.training import train_step_benchmark
    from spectbone.models import build_model

    torch.manual_seed(0)
    train = train_step_benchmark(build_model("emanet", base=emanet_base), size, batch, train_steps, 1, "cpu", True)
    return {"samples": n, "load_seconds": load_s, "loader_images_per_s": n / load_s,
            "train_images_per_s": train["images_per_s"], "loader_over_training": n / load_s / train["images_per_s"],
            "peak_rss_mb": loading_peak, "peak_rss_mb_before_loading": rss0}


def _bm3d_one(args):
    from spectbone.evaluate.classical import bm3d_denoise

    img, sigma = args
    return bm3d_denoise(img, sigma)


def bm3d_benchmark(n_images=4, size=256, sigma=20.0, workers=2) -> dict:
    from spectbone.noise.poisson import add_poisson_level_noise

    images = [add_poisson_level_noise(img, sigma, i) for i, img in enumerate(_smooth_images(n_images, size))]
    t0 = time.perf_counter()
    for img in images:
        _bm3d_one((img, sigma))
    serial = time.perf_counter() - t0
    with get_context("spawn").Pool(workers) as pool:
        pool.map(_bm3d_one, [(images[0], sigma)] * workers)  # warm the workers' imports
        t0 = time.perf_counter()
        pool.map(_bm3d_one, [(img, sigma) for img in images])
        parallel = time.perf_counter() - t0
    return {"images": n_images, "size": size, "seconds_per_image": serial / n_images,
            "seconds_per_image_parallel": parallel / n_images, "workers": workers, "speedup": serial / parallel}


def dag_benchmark(configfile="config/test.yaml", name="bench", cores=2) -> tuple[dict, pd.DataFrame]:
    """Run the whole DAG of `configfile` from scratch under run name `name`; wall, busy share, RSS per stage."""
    root = Path.cwd()
    out = root / "results" / name
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [str(Path(sys.executable).parent / "snakemake"), "--configfile", configfile, "--config", f"name={name}",
           "--cores", str(cores), "--resources", "gpu=1", "--forceall", "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"the benchmark DAG failed:\n{proc.stderr[-3000:]}")
    rows = []
    for tsv in sorted((out / "benchmarks").rglob("*.tsv")):
        b = pd.read_csv(tsv, sep="\t").iloc[-1]
        rows.append({"stage": tsv.parent.name, "job": tsv.stem, "seconds": b["s"], "cpu_time": b["cpu_time"],
                     "max_rss_mb": b["max_rss"]})
    jobs = pd.DataFrame(rows)
    stages = jobs.groupby("stage").agg(jobs=("job", "size"), seconds=("seconds", "sum"),
                                       cpu_time=("cpu_time", "sum"), peak_rss_mb=("max_rss_mb", "max")).reset_index()
    summary = {"config": configfile, "wall_seconds": wall, "cores": cores,
               "cpu_seconds_benchmarked": float(jobs["cpu_time"].sum()),
               "busy_share": float(jobs["cpu_time"].sum()) / (wall * cores)}
    return summary, stages


def run_all(args) -> int:
    """`spectbone bench all`: every figure issue 5 asks for, measured in one run, printed and saved."""
    from spectbone.util.outputs import write_table

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    if not args.skip_dag:
        summary, stages = dag_benchmark(args.config, cores=args.cores)
        write_table(stages, out / "stages", "Peak RSS and time per stage (test-scale DAG)")
        rows += [("DAG wall time, test scale (s)", summary["wall_seconds"]),
                 ("cores busy: CPU time / wall / cores", summary["busy_share"])]
        print(stages.to_string(index=False))
    loader = loader_benchmark(size=args.loader_size)
    rows += [("loader: paper-scale epoch samples", loader["samples"]),
             ("loader: images/s", loader["loader_images_per_s"]),
             ("EMANet (paper size) training images/s", loader["train_images_per_s"]),
             ("loader / training throughput", loader["loader_over_training"]),
             ("loader: peak RSS of the epoch (MB)", loader["peak_rss_mb"])]
    bm3d = bm3d_benchmark(size=args.bm3d_size, workers=args.cores)
    rows += [("BM3D seconds per image (1 process)", bm3d["seconds_per_image"]),
             (f"BM3D speed-up with {bm3d['workers']} processes", bm3d["speedup"])]
    table = pd.DataFrame(rows, columns=["measure", "value"])
    write_table(table, out / "summary", "Benchmarks (one run on this machine)",
                [f"Loader and BM3D at {args.loader_size}/{args.bm3d_size} px; training-step speed vs the matmul "
                 "peak: `spectbone bench peak` (bench/peak.csv)."])
    print(table.to_string(index=False))
    return 0
