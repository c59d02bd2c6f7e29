"""Figures and Table 2: each runs on its declared inputs alone, and their protocol pieces behave.

The declared-inputs check takes each rule's inputs and shell command from a Snakemake dry run,
copies only those inputs (and, for the preprocessing table, the images it lists) into an empty
folder, and runs the command there: any file read that the rule does not declare is missing.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectbone.paper import table2 as t2
from spectbone.paper import zooms

FIGURES = ["07", "08", "09", "10", "11", "12", "13", "14", "15"]
RULES = [f"figure{f}" for f in FIGURES] + ["table2"]


def test_curve_shape_is_read_from_the_numbers():
    sem = np.full(5, 0.01)
    assert t2.shape_of_curve([0, 5, 10, 20, 40], [0.38, 0.42, 0.46, 0.40, 0.30], sem) == "rises then falls"
    assert t2.shape_of_curve([0, 5, 10, 20, 40], [0.9, 0.7, 0.5, 0.3, 0.1], sem) == "falls"
    assert t2.shape_of_curve([0, 5, 10, 20, 40], [0.1, 0.2, 0.3, 0.4, 0.5], sem) == "rises"
    assert t2.shape_of_curve([0, 5, 10, 20, 40], [0.40, 0.41, 0.40, 0.40, 0.40], sem) == "flat"


def test_caption_follows_the_table():
    table = pd.DataFrame({"noise_level": [0, 5, 10], "ssim": [0.3, 0.5, 0.2], "ssim_sd": [0.0, 0.01, 0.01],
                          "n_draws": [1, 20, 20], "noise_sd": [1.0, 5.0, 10.0], "paper_ssim": [0.382, 0.406, 0.440]})
    text = " ".join(t2.caption(table, high_sd=3.0))
    assert "peaks at level 5" in text and "rises then falls" in text and "at level 2.5" in text


def _body(size, seed=0):
    """A crude anterior view: trunk, spine, a lesion on the left chest, Poisson noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    trunk = 60.0 * ((np.abs(xx - 0.5) < 0.38) & (yy > 0.02))
    spine = 120.0 * np.exp(-((xx - 0.5) / 0.03) ** 2)
    lesion = (np.hypot(xx - 0.3, yy - 0.3) < 0.04).astype(np.uint8)
    image = np.random.default_rng(seed).poisson(trunk + spine + 100.0 * lesion).astype(np.float32)
    return image, lesion


@pytest.mark.parametrize("size", [64, 128, 256])
def test_zoom_windows_follow_the_anatomy_at_every_size(size):
    image, lesion = _body(size)
    lbox = zooms.lesion_box(lesion)
    r0, r1, c0, c1 = lbox
    assert r1 - r0 == zooms.zoom_side(image.shape) and r0 <= 0.3 * size <= r1 and c0 <= 0.3 * size <= c1
    rbox = zooms.ribs_box(image, avoid=lbox)
    assert (rbox[2] + rbox[3]) / 2 > 0.5 * size, "ribs window on the side away from the lesion"
    assert rbox[0] < 0.5 * size, "ribs window in the upper chest"
    assert zooms.lesion_box(np.zeros_like(lesion)) is None


@pytest.mark.parametrize("size", [64, 128])
def test_noise_region_is_inside_both_bodies_and_scales_with_the_image(size):
    low, _ = _body(size, seed=1)
    high, _ = _body(size, seed=2)
    r0, r1, c0, c1 = t2.noise_region_box(low, high)
    assert r1 - r0 == c1 - c0 == t2.region_side(low.shape)
    assert low[r0:r1, c0:c1].mean() > 20 and high[r0:r1, c0:c1].mean() > 20


# --- declared inputs (needs the test-config DAG's outputs) ---------------------------------------

def _jobs(dry_run: str) -> dict[str, tuple[list[str], str]]:
    """rule name -> (declared inputs, shell command) from `snakemake -n -p` output."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run):
        name = re.match(r"(?:local)?rule (\w+):", block)
        inputs = re.search(r"^\s+input: (.*)$", block, re.M)
        shell = re.search(r"^Shell command: (.*)$", block, re.M)
        if name and shell:
            jobs[name.group(1)] = ([s.strip() for s in inputs.group(1).split(",")] if inputs else [], shell.group(1))
    return jobs


def _copy_declared(inputs, source: Path, dest: Path):
    for rel in inputs:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, dest / rel)
        if rel.endswith("preprocess/preprocess.csv"):  # a manifest: the images it lists come with it
            ids = pd.read_csv(source / rel, keep_default_na=False)["image_id"]
            for image in (f"{Path(rel).parent}/images/{i}.npy" for i in ids):
                if (source / image).exists():
                    (dest / image).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source / image, dest / image)


@pytest.fixture(scope="module")
def declared_jobs():
    from test_workflow import ROOT, snakemake

    proc = snakemake("--cores", "2", "--resources", "gpu=1", "--rerun-incomplete")  # a no-op once the DAG ran
    assert proc.returncode == 0, proc.stderr[-4000:]
    dry = snakemake("-n", "-p", "--forcerun", *RULES, "--", *RULES)
    assert dry.returncode == 0, dry.stderr[-4000:]
    return ROOT, _jobs(dry.stdout + dry.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("rule", RULES)
def test_runs_on_its_declared_inputs_alone(declared_jobs, rule, tmp_path):
    from test_workflow import BIN

    root, jobs = declared_jobs
    inputs, command = jobs[rule]
    assert "--results-dir" not in command or rule == "table2", "figures get their files, not a folder"
    _copy_declared(inputs, root, tmp_path)
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "MPLBACKEND": "Agg", "HOME": str(tmp_path),
           **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    proc = subprocess.run(command, check=False, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    log = re.search(r"--log (\S+)", command)
    detail = (tmp_path / log.group(1)).read_text()[-3000:] if log and (tmp_path / log.group(1)).exists() else ""
    assert proc.returncode == 0, f"{rule} read an undeclared file?\n{proc.stderr[-3000:]}\n{detail}"
    out = tmp_path / re.search(r"--out (\S+)", command).group(1)
    assert out.exists() and (out.with_suffix(".pdf" if rule != "table2" else ".md")).exists()
    if rule == "table2":
        table = pd.read_csv(out)
        assert {"noise_level", "ssim", "ssim_sd", "n_draws", "paper_ssim"} <= set(table.columns)
        assert (table.loc[table["noise_level"] > 0, "n_draws"] > 1).all()
