"""Shared fixtures: a tiny preprocessed bone-scan folder and split, made from the real phantom code."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_cli(*args, check=True, **kwargs):
    """Run `spectbone ARGS` in a subprocess, as the Snakefile's rules do."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([str(BIN / "spectbone"), *map(str, args)], env=env, capture_output=True, text=True,
                          **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"spectbone {' '.join(map(str, args))} failed:\n{proc.stderr[-4000:]}")
    return proc


def phantom_through_preprocess(root: Path, n_patients: int, seed: int, size: int, problem_fraction: float = 0.0,
                               workers: int = 1, log: Path | None = None) -> tuple[Path, Path, Path, Path]:
    """synthesize -> convert -> preprocess (with truth) under `root`, as the DAG runs them; returns the
    (cohort, truth, convert, preprocess) folders."""
    from spectbone.cli import main

    cohort, truth, conv, pre = (root / d for d in ("dicom", "truth", "conv", "pre"))
    assert main(["synthesize", "--out", str(cohort), "--truth", str(truth), "--n-patients", str(n_patients),
                 "--seed", str(seed), "--problem-fraction", str(problem_fraction), "--workers", str(workers)]) == 0
    assert main(["convert", str(cohort), "--out", str(conv), "--phantom"]) == 0
    assert main(["preprocess", "--manifest", str(conv / "manifest.csv"), "--out", str(pre), "--truth", str(truth),
                 "--size", str(size), *(["--log", str(log)] if log else [])]) == 0
    return cohort, truth, conv, pre


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: tiny networks run several times faster, and immune to busy shared cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_bone_data(tmp_path_factory):
    """12 small grey images with lesion masks, laid out like `spectbone preprocess` output, plus a split."""
    root = tmp_path_factory.mktemp("bone")
    (root / "images").mkdir()
    (root / "truth").mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    rows = []
    for i in range(12):
        body = 60 * np.exp(-(((xx - 16) / 9.0) ** 2 + ((yy - 16) / 14.0) ** 2))
        cx, cy = rng.integers(8, 24, 2)
        lesion = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / 4.0))
        img = np.clip(body + 180 * lesion + 80 * np.exp(-(((xx - 16) / 2.0) ** 2)), 0, 255).astype(np.float32)
        image_id = f"p{i // 2:02d}_{'ANT' if i % 2 == 0 else 'POST'}"
        np.save(root / "images" / f"{image_id}.npy", img)
        np.savez(root / "truth" / f"{image_id}.npz", clean=img, lesions=(lesion > 0.5).astype(np.uint8))
        rows.append({"image_id": image_id, "patient_id": f"p{i // 2:02d}", "view": "ANT" if i % 2 == 0 else "POST",
                     "set": "test" if i >= 10 else ("val" if i >= 8 else "train")})
    split = pd.DataFrame(rows)
    split.to_csv(root / "split.csv", index=False)
    return root
