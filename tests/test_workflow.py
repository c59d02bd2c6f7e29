"""End to end: the whole DAG on config/test.yaml, then checks of what a user reads.

Runs `snakemake --configfile config/test.yaml --cores 2 --resources gpu=1` in the repository (outputs
under results/test/, ignored by git), once per session; every check below reads those outputs.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "test"
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def snakemake(*args, timeout=1800):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(BIN / "snakemake"), "--configfile", "config/test.yaml", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def dag_run():
    proc = snakemake("--cores", "2", "--resources", "gpu=1", "--rerun-incomplete")
    assert proc.returncode == 0, proc.stderr[-6000:]
    return proc


PAPER_ROWS = {
    1: ("data", ["Before expansion", "After expansion"]),
    3: ("variant", None), 4: ("variant", None), 5: ("variant", None),
    8: ("method", ["Original", "BM3D", "DnCNN", "RED-CNN", "WGAN", "EMANet"]),
}
PAPER_COLUMNS = {
    1: ["training", "testing", "total", "paper_training", "paper_testing", "paper_total"],
    2: ["noise_level", "ssim", "paper_ssim"],
    3: ["psnr", "ssim", "psnr_truth", "ssim_truth", "paper_psnr", "paper_ssim"],
    4: ["psnr", "ssim", "paper_psnr", "paper_ssim"],
    5: ["psnr", "ssim", "paper_psnr", "paper_ssim"],
    6: ["true_noise"] + [f"{m}_{q}" for m in ["HBNE", "DWTNE", "Ours"] for q in ["estimate", "sd", "rmse", "rmse_true"]],
    7: ["method", "noise_level", "psnr", "ssim", "psnr_truth", "ssim_truth", "paper_psnr", "paper_ssim"],
    8: ["precision", "iou", "recall", "paper_precision", "paper_iou", "paper_recall"],
}


@pytest.mark.parametrize("n", range(1, 9))
def test_table_has_paper_rows_columns_and_finite_numbers(dag_run, n):
    csv, md = OUT / "tables" / f"table{n}.csv", OUT / "tables" / f"table{n}.md"
    assert csv.exists() and md.exists()
    df = pd.read_csv(csv)
    assert set(PAPER_COLUMNS[n]) <= set(df.columns), df.columns
    ours = [c for c in PAPER_COLUMNS[n] if not c.startswith("paper_") and c != "method"]
    assert np.isfinite(df[ours].to_numpy(dtype=float)).all(), df
    if n in PAPER_ROWS and PAPER_ROWS[n][1]:
        col, rows = PAPER_ROWS[n]
        assert df[col].tolist() == rows
    if n in (3, 4, 5):
        assert len(df) == {3: 3, 4: 5, 5: 3}[n] and df["paper_psnr"].notna().all()
    if n == 6:
        assert df["noise_level"].tolist() == list(range(5, 41, 5))
    if n == 7:
        assert {"Noisy", "BM3D", "DnCNN", "RED-CNN", "WGAN", "EMANet"} <= set(df["method"])
        assert sorted(df["noise_level"].unique()) == list(range(5, 41, 5))
        noisy = df[df["method"] == "Noisy"].set_index("noise_level")["psnr"]
        assert abs(noisy[20] - 20 * np.log10(255 / 20)) < 0.5  # the noise model holds on real test images
    assert "paper" in md.read_text().lower() or n == 7
    if n >= 3:  # one computed sentence on whether the paper's trend reproduces, first under the table
        first_note = md.read_text().split("\n- ", 1)[1]
        assert "reproduce" in first_note or "paper" in first_note


def test_blind_table_and_paper_notes(dag_run):
    blind = pd.read_csv(OUT / "tables" / "table_blind.csv")
    assert blind["method"].tolist()[0] == "Original" and np.isfinite(blind["psnr_truth"]).all()
    oracle = blind[blind["level"] == "oracle"]
    assert {"BM3D (oracle level)", "EMANet (oracle level)"} <= set(oracle["method"])
    shared = blind[(blind["level"] == "estimated") & blind["method"].isin(["BM3D", "EMANet"])]["level_given"]
    assert shared.nunique() == 1  # one level estimate for every method that takes one
    notes = (OUT / "paper_notes.md").read_text()
    assert "Table 4" in notes and "Table 8" in notes


@pytest.mark.parametrize("f", ["07", "08", "09", "10", "11", "12", "13", "14", "15"])
def test_figures_written_as_png_and_pdf(dag_run, f):
    for ext in ("png", "pdf"):
        path = OUT / "figures" / f"fig{f}.{ext}"
        assert path.exists() and path.stat().st_size > 5000


def test_real_counts_table_and_figure(dag_run):
    """Every registered method at every configured fraction, NM1 and phantom scores with intervals."""
    from spectbone.counts.registry import SPECS

    table = pd.read_csv(OUT / "tables" / "real_counts.csv")
    assert set(table["method"]) == {s.key for s in SPECS}
    assert set(table["fraction"]) == {0.25}  # config/test.yaml
    for col in ("nm1_heldout", "phantom_psnr", "phantom_excess", "phantom_true"):
        lo, hi = table[f"{col}_lo"], table[f"{col}_hi"]
        finite = table[col].notna()
        assert ((lo[finite] <= table[col][finite] + 1e-9) & (table[col][finite] <= hi[finite] + 1e-9)).all(), col
    assert table.set_index("method").loc["emanet_finetuned", ["nm1", "phantom_psnr"]].isna().all()
    assert table.set_index("method").loc["raw", ["nm1", "phantom_psnr"]].notna().all()
    md = (OUT / "tables" / "real_counts.md").read_text()
    assert "Half-time scan" in md and "[" in md
    for ext in ("png", "pdf"):
        assert (OUT / "figures" / f"real_counts_nm1.{ext}").stat().st_size > 0


def test_table7_is_reproduced_from_the_saved_arrays_with_the_scoring_rule(dag_run):
    """Done-when of the scoring rule: PSNR against truth recomputed from the saved inference arrays, each output
    clipped to [0, 255] as the references are, gives Table 7 to 0.01 dB for every method and level."""
    from spectbone.util.methods import display_name

    table = pd.read_csv(OUT / "tables" / "table7.csv")
    with np.load(OUT / "noise" / "testset.npz") as z:
        truth, noisy, levels = z["truth"].astype(np.float64), z["noisy"], list(z["levels"])
    main = table_settings_main()
    for method in ["noisy", "bm3d", "bm3d_anscombe", "dncnn", "redcnn", "wgan", main]:
        for li, level in enumerate(levels):
            if method == "noisy":
                out = noisy[li]
            elif method.startswith("bm3d"):
                with np.load(OUT / "infer" / method / f"{level}.npz") as z:
                    out = z["denoised"]
            else:
                with np.load(OUT / "infer" / f"{method}.npz") as z:
                    out = z["denoised"][li]
            mse = np.mean((np.clip(out.astype(np.float64), 0, 255) - truth) ** 2, axis=(1, 2))
            ours = float(np.mean(10 * np.log10(255.0**2 / mse)))
            row = table[(table["method"] == display_name(method)) & (table["noise_level"] == level)]
            assert abs(float(row["psnr_truth"].iloc[0]) - ours) < 0.01, (method, level)


def table_settings_main() -> str:
    """The main EMANet's name, as the tables' settings give it (from the resolved config)."""
    import json

    cfg = json.loads((OUT / "config.resolved.json").read_text())
    lam = float(cfg["training"]["lam"])
    return f"emanet_ct_full_lam{lam:g}"


def test_claims_have_computed_verdicts(dag_run):
    claims = pd.read_csv(OUT / "claims.csv", dtype={"table": str}, keep_default_na=False)
    assert len(claims) >= 10
    verdicts = {"holds", "does not hold", "inconclusive"}
    for ref in ("truth", "paper_protocol"):
        judged = claims[claims[f"verdict_{ref}"].isin(verdicts)]
        skipped = claims.loc[~claims.index.isin(judged.index), ["table", f"verdict_{ref}"]]
        # only Table 2 against truth (no truth column) and the blind claim under the paper's protocol (no reference)
        assert set(skipped["table"]) <= ({"2"} if ref == "truth" else {"blind"}), skipped
        assert judged[f"interval_{ref}"].str.contains(r"\[").all(), judged[f"interval_{ref}"]  # a bootstrap interval
    text = (OUT / "claims.md").read_text().lower()
    assert "synthetic" in text and "paired" in text and "## summary" in text


def test_manifest_and_rejects(dag_run):
    manifest = pd.read_csv(OUT / "convert" / "manifest.csv")
    assert len(manifest) == 2 * 10 and set(manifest["view"]) == {"ANT", "POST"}
    assert (manifest["status"] == "ok").all() and (manifest["series_class"] == "whole_body").all()
    assert (OUT / "convert" / "rejects.csv").exists()


def test_every_training_rule_logged_its_device(dag_run):
    logs = list((OUT / "logs").glob("train_*/*.log"))
    assert len(logs) >= 20
    for log in logs:
        assert re.search(r"device=(cpu|cuda)", log.read_text()), log


def test_no_patient_identifiers_in_results(dag_run):
    """Names, IDs and birth dates from the DICOM headers appear nowhere under results/."""
    phi = set()
    for dcm in (ROOT / "resources" / "test" / "cohort").glob("*.dcm"):
        ds = pydicom.dcmread(dcm, stop_before_pixels=True)
        phi |= {str(ds.PatientName), str(ds.PatientID), str(ds.PatientBirthDate)}
        phi |= set(str(ds.PatientName).split("^"))
    phi = {p.encode() for p in phi if len(p) >= 4}
    assert phi
    for path in OUT.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaked = [p for p in phi if p in data]
            assert not leaked, f"{path} contains {leaked}"


def test_report_builds(dag_run, tmp_path):
    report = OUT / "report.html"
    proc = snakemake("--report", str(report))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report.stat().st_size > 10000


def test_lint_is_clean():
    proc = snakemake("--lint")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_same_seed_gives_identical_tables(dag_run):
    """Retrain the estimator from scratch and recompute Table 6: the same config and seed give the same bytes."""
    table = OUT / "tables" / "table6.csv"
    before = table.read_bytes()
    shutil.rmtree(OUT / "checkpoints" / "estimator")  # else the job resumes from its finished checkpoint
    proc = snakemake("--cores", "2", "--resources", "gpu=1", "--forcerun", "train_estimator", str(table.relative_to(ROOT)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train_estimator" in proc.stdout + proc.stderr
    assert table.read_bytes() == before


@pytest.mark.parametrize("bad,named", [
    ("data:\n  imagesize: 64\n", "imagesize"),
    ("data:\n  image_size: 100\n", "image_size"),
    ("training:\n  lam: 1.5\n", "lam"),
])
def test_bad_config_fails_at_start_naming_the_key(tmp_path, bad, named):
    config = tmp_path / "bad.yaml"
    config.write_text("name: bad\n" + bad)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([str(BIN / "snakemake"), "-n", "--configfile", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert named in proc.stdout + proc.stderr
    assert "validating config" in (proc.stdout + proc.stderr).lower()


REPORTING_RULES = ["table1", "table2", "table3", "table4", "table5", "table6", "table7", "table8", "table_blind",
                   "preprocessing_table", "training_summary", "claims", "real_counts"] + [
    f"figure{f}" for f in ["07", "08", "09", "10", "11", "12", "13", "14", "15", "_threshold"]]


def _dry_run_jobs(text: str) -> dict[str, tuple[list[str], list[str], str]]:
    """rule -> (declared inputs, outputs and logs, shell command) from `snakemake -n -p` output."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        name = re.search(r"(?:local)?rule (\w+):", block)
        shell = re.search(r"^Shell command: (.*)$", block, re.M)
        if not (name and shell):
            continue
        files = {key: [p.strip() for p in value.split(",") if p.strip()]
                 for key, value in re.findall(r"^\s+(input|output|log): (.*)$", block, re.M)}
        jobs[name.group(1)] = (files.get("input", []), files.get("output", []) + files.get("log", []), shell.group(1))
    return jobs


@pytest.fixture(scope="module")
def reporting_jobs(dag_run):
    proc = snakemake("-n", "-p", "--forcerun", *REPORTING_RULES, "--", *REPORTING_RULES)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = _dry_run_jobs(proc.stdout + proc.stderr)
    assert set(REPORTING_RULES) <= set(jobs), set(REPORTING_RULES) - set(jobs)
    return jobs


@pytest.mark.parametrize("rule", REPORTING_RULES)
def test_reporting_job_reads_only_its_declared_inputs(reporting_jobs, rule, tmp_path):
    """The job, run in an empty folder holding only its declared inputs, succeeds: it reads nothing the DAG does
    not know about, so changing any file it reads reruns it (and it gets files, never a results folder)."""
    import shutil

    inputs, written, command = reporting_jobs[rule]
    assert "--results-dir" not in command
    for rel in written:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    for rel in inputs:
        src, dst = ROOT / rel, tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "MPLBACKEND": "Agg", "HOME": str(tmp_path),
           **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    log = re.search(r"--log (\S+)", command)
    detail = (tmp_path / log.group(1)).read_text()[-3000:] if log and (tmp_path / log.group(1)).exists() else ""
    assert proc.returncode == 0, f"{rule} with only its declared inputs:\n{command}\n{proc.stderr[-3000:]}\n{detail}"
    for rel in written:
        if "/logs/" not in rel:
            assert (tmp_path / rel).exists(), f"{rule} did not write {rel}"


def test_changing_one_training_parameter_plans_only_that_models_dependents(dag_run, tmp_path):
    """Default rerun triggers: another segmenter epoch count replans the segmenter and what reads it (its learning
    curves included, and the resolved-config record), nothing else."""
    override = tmp_path / "segmenter_epochs.yaml"
    override.write_text("training:\n  epochs: {segmenter: 2}\n")  # test.yaml: 1
    proc = snakemake(str(override), "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = (proc.stdout + proc.stderr).split("Job stats:")[1].split("total")[0]
    planned = set(re.findall(r"^(\w+)\s+\d+$", stats, re.M))
    assert planned == {"train_segmenter", "evaluate_segmentation", "table8", "figure15", "figure_threshold", "claims",
                       "training_summary", "training_curves", "provenance", "config_json", "all"}, planned


def _jobs_in(text: str) -> list[str]:
    """Rules of the jobs a snakemake run started, in order (from its `rule NAME:` headers)."""
    return re.findall(r"^(?:local)?rule (\w+):$", text, re.M)


def _killed_run(args: list[str], rule: str, output: Path, log_path: Path, *, after_s: float = 0.0,
                ready=lambda: True, timeout=900) -> str:
    """Start snakemake (own process group), wait until the job of `rule` has started (its header is
    printed and its old `output` removed, as Snakemake does before running a job), then until `ready()`
    and `after_s` more seconds, then SIGKILL the whole group: snakemake and its jobs, as the OOM killer or
    a lost node leaves a run. Returns its output; fails if the job finished or the run ended first."""
    import signal
    import time

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    with open(log_path, "w") as fh:
        proc = subprocess.Popen([str(BIN / "snakemake"), "--configfile", "config/test.yaml", *args], cwd=ROOT,
                                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while rule not in _jobs_in(log_path.read_text()) or output.exists() or not ready():
                assert proc.poll() is None, f"the run ended before {rule} was cut:\n{log_path.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"{rule} was not cut within {timeout} s"
                time.sleep(0.05)
            time.sleep(after_s)
            text = log_path.read_text()
            assert proc.poll() is None and f"(Rule: {rule})" not in text, f"{rule} finished before the kill"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not output.exists(), f"{rule} wrote {output} before the kill"
    return log_path.read_text()


def test_killed_runs_rerun_only_what_was_incomplete_and_tables_stay_identical(dag_run, tmp_path):
    """Issue 20: the DAG killed with SIGKILL during a training job, during BM3D and during a table,
    then run again: each rerun completes, reruns the job that was cut (and what it feeds, which
    never ran), nothing that had finished, and the tables are bit-identical to the uninterrupted
    run's. Reuses dag_run's results (forcing only the jobs to be cut), so it costs one training, one BM3D
    level, one evaluation and three tables."""
    tables = ["table6.csv", "table6.md", "table7.csv", "table7.md"]
    before = {name: (OUT / "tables" / name).read_bytes() for name in tables}
    level = sorted((p.stem for p in (OUT / "infer" / "bm3d").glob("*.npz") if p.stem.isdigit()), key=int)[0]
    bm3d = f"results/test/infer/bm3d/{level}.npz"
    bm3d_before = dict(np.load(ROOT / bm3d))
    table6, table7 = "results/test/tables/table6.csv", "results/test/tables/table7.csv"
    run = ["--cores", "2", "--resources", "gpu=1"]
    model = "results/test/models/estimator.pt"
    ckpt_dir = OUT / "checkpoints" / "estimator"
    # (rule cut, seconds after it is ready to cut, ready to cut when, the killed run's targets (--forcerun
    # forces every job of the rule they need), the rerun's targets, jobs the rerun must run). Training comes
    # last: its model feeds most of the DAG, and only table6's branch is rebuilt here.
    points = [
        # BM3D (one level, 4 test images at about 0.6 s each): cut 0.3 s after its progress bar appears, i.e.
        # inside the first image. A test-scale job is done within a few seconds, so waiting on a clock misses it.
        ("infer_bm3d", 0.3, lambda: f"bm3d {level}:" in (tmp_path / "killed_infer_bm3d.out").read_text(),
         [bm3d], [bm3d, table7], ["infer_bm3d", "evaluate", "table7"]),
        ("table7", 0.0, lambda: True, [table7], [table7], ["table7"]),
        # Training (2 epochs at test scale): cut right after epoch 1's checkpoint, so the rerun must resume
        # from it, and its model must still match the uninterrupted run's (table6 bit-identical below).
        ("train_estimator", 0.0, lambda: (ckpt_dir / "last.pt").exists(), [model, table6], [model, table6],
         ["train_estimator", "noise_estimates", "table6"]),
    ]
    record = []
    for rule, after_s, ready, targets, rerun_targets, expected in points:
        if rule == "train_estimator":  # train from scratch, so that the kill cuts real training, not a resume
            shutil.rmtree(ckpt_dir, ignore_errors=True)
        killed = _killed_run([*run, "--forcerun", rule, "--", *targets], rule, ROOT / targets[0],
                             tmp_path / f"killed_{rule}.out", after_s=after_s, ready=ready)
        finished_before_kill = set(re.findall(r"\(Rule: (\w+)\)", killed))
        unlock = snakemake("--unlock")  # SIGKILL leaves Snakemake's lock behind: the documented first step
        assert unlock.returncode == 0, unlock.stderr[-3000:]
        # The user's rerun: the cut job's output and what reads it, without --forcerun. (Asking only for a
        # table would rerun nothing: that table and the files it reads still exist from the uninterrupted run,
        # and Snakemake rebuilds a missing intermediate only for a target that needs it.)
        rerun = snakemake(*run, "--", *rerun_targets)
        assert rerun.returncode == 0, rerun.stderr[-4000:]
        reran = _jobs_in(rerun.stdout + rerun.stderr)
        record.append(f"killed during {rule} ({after_s:.1f} s after it was ready to cut; finished before: "
                      f"{sorted(finished_before_kill) or 'nothing'}); rerun ran {reran}")
        assert sorted(reran) == sorted(expected), record[-1]
        assert not finished_before_kill & set(reran), record[-1]
        done = snakemake("-n", "--", *rerun_targets)  # the rerun completed what was asked
        assert "Nothing to be done" in done.stdout + done.stderr, (done.stdout + done.stderr)[-3000:]
    train_log = (OUT / "logs" / "train_estimator" / "estimator.log").read_text()
    assert "resuming from" in train_log and "after epoch 1 of 2" in train_log, train_log[-2000:]
    print("\n".join(record))
    # BM3D runs single-threaded (evaluate/classical.py), so a rerun BM3D job writes the same bytes of images.
    after_bm3d = dict(np.load(ROOT / bm3d))
    assert set(after_bm3d) == set(bm3d_before)
    for key in bm3d_before:
        np.testing.assert_array_equal(after_bm3d[key], bm3d_before[key], err_msg=key)
    changed = [name for name in tables if (OUT / "tables" / name).read_bytes() != before[name]]
    assert not changed, f"tables differ from the uninterrupted run after kill and rerun: {changed}"
