"""`spectbone bench <which>`: the benchmark verbs. More benchmarks plug in through :data:`BENCHMARKS`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from spectbone.bench import steps
from spectbone.bench.training import add_train_arguments, run_train
from spectbone.util.runtime import add_common_arguments, set_threads, setup_logging


def add_all_arguments(p) -> None:
    p.add_argument("--config", default="config/test.yaml", help="config whose whole DAG is timed")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--out-dir", default="results/test/bench", help="CSV + Markdown of every figure")
    p.add_argument("--loader-size", type=int, default=256, help="image size of the loader benchmark (paper 256)")
    p.add_argument("--bm3d-size", type=int, default=256)
    p.add_argument("--skip-dag", action="store_true", help="leave out the whole-DAG run")


def run_all(args) -> int:
    from types import SimpleNamespace

    from spectbone.bench.pipeline import run_all as run_pipeline

    train = SimpleNamespace(sizes=[128, 256], steps=3, warmup=1, batch=8, models=["emanet", "dncnn"], emanet_base=32,
                            dncnn_channels=64, dncnn_depth=17, peak_n=None, device="cpu",
                            out=str(Path(args.out_dir) / "peak.csv"))
    run_train(train)
    return run_pipeline(args)


#: name -> (add its arguments, run it, one-line help). Add new benchmarks here.
BENCHMARKS: dict[str, tuple[Callable, Callable, str]] = {
    "train": (steps.add_arguments, steps.run, "the default training step of each network beside the old fp32 "
              "NCHW step: images/s and short-run validation PSNR"),
    "peak": (add_train_arguments, run_train, "training-step speed of EMANet and DnCNN vs the matmul peak"),
    "all": (add_all_arguments, run_all, "every benchmark of `make bench`: DAG, cores, training, loader, BM3D, RSS"),
}


def add_arguments(parser, verb=None) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name, (add, _, help_text) in BENCHMARKS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        add_common_arguments(p, threads=True)


def run(args) -> int:
    setup_logging(getattr(args, "log", None))
    set_threads(getattr(args, "threads", None))
    return int(BENCHMARKS[args.bench][1](args) or 0)
