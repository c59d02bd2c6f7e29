"""`spectbone bench peak` and `bench train` at tiny sizes; `spectbone params`."""

from __future__ import annotations

import pandas as pd
import pytest

from spectbone.bench import training as bench
from spectbone.cli import main
from spectbone.models import build_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_matmul_peak_positive():
    assert bench.matmul_peak_gflops("cpu", n=128, repeats=2) > 0


def test_train_step_benchmark_counts_flops():
    r = bench.train_step_benchmark(build_model("dncnn", depth=3, channels=4), size=16, batch=2, steps=1,
                                   warmup=0, needs_level=False)
    # conv FLOPs of DnCNN-3 (1->4, 4->4, 4->1; 3x3) on 2 x 16 x 16, forward
    fwd = 2 * 2 * 16 * 16 * 9 * (1 * 4 + 4 * 4 + 4 * 1)
    assert abs(r["gflop_fwd"] * 1e9 - fwd) < 1e-6 * fwd
    assert r["gflop_step"] > 2 * r["gflop_fwd"]                    # backward counted too
    assert r["images_per_s"] > 0 and r["gflops_achieved"] > 0


def test_bench_train_cli_tiny(tmp_path):
    out = tmp_path / "bench.csv"
    rc = main(["bench", "peak", "--sizes", "16", "--steps", "1", "--warmup", "0", "--batch", "2",
               "--emanet-base", "4", "--dncnn-channels", "4", "--dncnn-depth", "3", "--peak-n", "128",
               "--threads", "1", "--out", str(out), "--log", str(tmp_path / "bench.log")])
    assert rc == 0
    df = pd.read_csv(out)
    assert len(df) == 3 and (tmp_path / "bench.md").exists()
    assert {"network", "size", "images_per_s", "gflops_achieved", "pct_of_peak"} <= set(df.columns)
    assert (df["pct_of_peak"].dropna() > 0).all()


def test_params_cli(tmp_path):
    rc = main(["params", "--out", str(tmp_path / "params"), "--emanet-base", "4", "--estimator-base", "4",
               "--dncnn-channels", "4", "--redcnn-channels", "4", "--critic-channels", "4", "--segmenter-base", "4"])
    assert rc == 0
    df = pd.read_csv(tmp_path / "params.csv")
    assert list(df.columns) == ["network", "parameters", "notes"]
    assert len(df) == 11 and (df["parameters"] > 0).all()
