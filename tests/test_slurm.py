"""profiles/slurm on a real single-node SLURM (scripts/slurm_local.sh).

The session fixture installs (when missing) and starts SLURM on this machine, which needs
root and the Debian package mirror. Off CI the tests skip, with the reason, when that is not
possible; with CI=true they fail instead. Deselect with `-m "not slurm"`.

Environment knobs:
  SPECTBONE_SLURM_TARGETS   space-separated targets for the repository run (default: the
                            whole test config, i.e. `rule all`)
  SPECTBONE_SLURM_TIMEOUT   seconds allowed for the repository run (default 1800)
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm_local.sh"
PROFILE = REPO / "profiles" / "slurm"
WORKFLOW_PROFILE = REPO / "profiles" / "default"
TOY = REPO / "tests" / "slurm_toy" / "Snakefile"
RUN_NAME = "test_slurm"
# Targets for the repository run; empty means the default target (`rule all`): the whole test config.
DEFAULT_TARGETS: list[str] = []
IMPOSSIBLE_RUN = "test_slurm_impossible"
FAIL_FAST_S = 120  # a job no node can hold must fail within this
TOY_TIMEOUT = 300
# The profile polls every 30 s, as a shared controller needs; this one-node test cluster is not
# shared, so the tests poll faster (command-line options win over the profile's).
FAST_POLLING = ["--slurm-init-seconds-before-status-checks", "5", "--seconds-between-status-checks", "5"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str):
    """Skip off CI; fail loudly in CI, where SLURM must be available."""
    if IN_CI:
        pytest.fail(f"SLURM test harness unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _env() -> dict[str, str]:
    """Environment for snakemake: this venv's tools on PATH (sbatch passes --export=ALL,
    so jobs inherit it) and no CUDA_VISIBLE_DEVICES of our own, so that a value seen
    inside a job can only come from SLURM's GPU allocation."""
    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.pop("SNAKEMAKE_PROFILE", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="session")
def slurm_cluster():
    if os.name != "posix" or not hasattr(os, "geteuid"):
        _unavailable("needs a POSIX machine")
    if os.geteuid() != 0:
        _unavailable("needs root: scripts/slurm_local.sh installs packages and runs slurmctld/slurmd")
    if shutil.which("bash") is None:
        _unavailable("bash not found")
    was_up = subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True).returncode == 0
    proc = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    if proc.returncode == 3:
        _unavailable(f"cannot install or run SLURM here: {proc.stderr.strip()}")
    if proc.returncode != 0:
        pytest.fail(
            f"scripts/slurm_local.sh start failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    yield
    # Leave a cluster running that was up before this session (someone else's).
    if not was_up:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, text=True, timeout=120)


def _run_snakemake(args: list[str], cwd: Path, timeout_s: int, log_path: Path):
    """Run snakemake bounded by `timeout -s INT` (it ignores SIGTERM while jobs run; on
    SIGINT it cancels its SLURM jobs). Output goes to log_path. Returns (rc, text, wall)."""
    cmd = ["timeout", "-s", "INT", "-k", "60", str(timeout_s), sys.executable, "-m", "snakemake", *args]
    t0 = time.monotonic()
    with open(log_path, "w") as fh:
        fh.write("$ " + shlex.join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(
            cmd, cwd=cwd, env=_env(), stdout=fh, stderr=subprocess.STDOUT, timeout=timeout_s + 120
        )
    wall = time.monotonic() - t0
    return proc.returncode, log_path.read_text(errors="replace"), wall


def _sbatch_calls(text: str) -> dict[str, list[str]]:
    """rule name -> sbatch command lines, from snakemake --verbose output."""
    calls: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "sbatch call:" not in line:
            continue
        m = re.search(r"--comment '?rule_([A-Za-z0-9_]+?)(?:_wildcards_|'|\s)", line)
        if m:
            calls.setdefault(m.group(1), []).append(line)
    return calls


def _requests_gpu(sbatch_line: str) -> bool:
    return bool(re.search(r"--gpus[= ]'?([A-Za-z0-9_.]+:)?[1-9]|--gres[= ]'?gpu", sbatch_line))


def _submitted_job_ids(text: str) -> dict[str, list[str]]:
    """rule name -> SLURM job ids, from 'Job N has been submitted with SLURM jobid X (log: ...rule_R/...)'."""
    ids: dict[str, list[str]] = {}
    for m in re.finditer(r"submitted with SLURM jobid (\d+) \(log: \S*?/rule_([A-Za-z0-9_]+)/", text):
        ids.setdefault(m.group(2), []).append(m.group(1))
    return ids


def _scontrol_job(jobid: str) -> str:
    proc = subprocess.run(["scontrol", "show", "job", jobid], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else ""


def test_toy_workflow_gpu_job_gets_gpu(slurm_cluster, tmp_path):
    """Two-rule toy through profiles/slurm (+ the repo's workflow profile, as a run from
    the repository root gets it): the gpu=1 rule is submitted with --gpus=1, SLURM records
    a GPU for it, and the job sees CUDA_VISIBLE_DEVICES."""
    args = [
        "-s", str(TOY), "--directory", str(tmp_path),
        "--profile", str(PROFILE), "--workflow-profile", str(WORKFLOW_PROFILE),
        *FAST_POLLING, "--verbose",
    ]
    rc, out, wall = _run_snakemake(args, tmp_path, TOY_TIMEOUT, tmp_path / "snakemake.out")
    print(f"toy workflow through profiles/slurm: {wall:.1f} s wall")
    assert rc == 0, f"toy run failed (rc {rc}), see {tmp_path / 'snakemake.out'}:\n{out[-4000:]}"

    # The workflow profile must not impose a global gpu limit (or cores) on cluster runs.
    assert not re.search(r"Provided resources:.*gpu", out), "profiles/default leaked a gpu limit into a SLURM run"

    calls = _sbatch_calls(out)
    assert set(calls) >= {"prepare", "train_toy", "flaky"}, f"sbatch calls seen: {calls}"
    # the profile's retries: `flaky` fails once and is resubmitted with its attempt-scaled memory
    assert len(calls["flaky"]) == 2, calls["flaky"]
    assert [re.search(r"--mem[= ]'?(\d+)", c).group(1) for c in calls["flaky"]] == ["200", "400"], calls["flaky"]
    assert (tmp_path / "out" / "flaky.txt").read_text().startswith("attempt with 400 MB")
    assert all(_requests_gpu(c) for c in calls["train_toy"]), calls["train_toy"]
    assert not any(_requests_gpu(c) for c in calls["prepare"]), calls["prepare"]

    env_lines = dict(
        line.split("=", 1) for line in (tmp_path / "out" / "gpu_env.txt").read_text().splitlines() if "=" in line
    )
    assert env_lines.get("SLURM_JOB_ID"), f"gpu job did not run under SLURM: {env_lines}"
    assert env_lines.get("CUDA_VISIBLE_DEVICES") == "0", env_lines
    assert env_lines.get("SLURM_GPUS_ON_NODE") == "1", env_lines

    # SLURM's own record (kept MinJobAge=600 s after the job ends).
    ids = _submitted_job_ids(out)
    assert ids.get("train_toy") == [env_lines["SLURM_JOB_ID"]], (ids, env_lines)
    job = _scontrol_job(env_lines["SLURM_JOB_ID"])
    assert re.search(r"TresPerJob=\S*gpu:1", job) or re.search(r"TRES=\S*gres/gpu=1", job), job
    assert "JobState=COMPLETED" in job, job


def _targets() -> list[str]:
    env = os.environ.get("SPECTBONE_SLURM_TARGETS", "").split()
    return env or list(DEFAULT_TARGETS)


DEVICE_LINE = re.compile(r"device=(\S+).*?CUDA_VISIBLE_DEVICES=(\S*)")


def test_repository_workflow_training_runs_on_slurm_gpu(request):
    """The repository's own workflow, test config, through profiles/slurm: every training
    job (rule train_*) is submitted with a GPU request and its log shows the GPU SLURM gave it."""
    if not (REPO / "Snakefile").is_file() or not (REPO / "config" / "test.yaml").is_file():
        pytest.skip("the repository's Snakefile or config/test.yaml does not exist yet")
    request.getfixturevalue("slurm_cluster")  # start SLURM only when there is something to run
    out_dir = REPO / "results" / RUN_NAME
    shutil.rmtree(out_dir, ignore_errors=True)  # this test's own results: make training rerun
    out_dir.mkdir(parents=True, exist_ok=True)
    timeout_s = int(os.environ.get("SPECTBONE_SLURM_TIMEOUT", "1800"))
    args = [
        "--configfile", "config/test.yaml", "--config", f"name={RUN_NAME}",
        "--profile", str(PROFILE), *FAST_POLLING,
        # No --max-threads: the workflow fits group jobs and threads to the nodes itself (onstart).
        "--verbose",
        *_targets(),
    ]
    log_path = out_dir / "snakemake_slurm.out"
    rc, out, wall = _run_snakemake(args, REPO, timeout_s, log_path)
    print(f"repository workflow through profiles/slurm: {wall:.1f} s wall")
    assert rc == 0, f"run failed (rc {rc}; 124 = timed out after {timeout_s} s), see {log_path}:\n{out[-6000:]}"

    calls = _sbatch_calls(out)
    train_rules = sorted(r for r in calls if r.startswith("train_"))
    assert train_rules, f"no train_* job was submitted to SLURM (targets {_targets() or 'all'}); see {log_path}"
    no_gpu = [c for r in train_rules for c in calls[r] if not _requests_gpu(c)]
    assert not no_gpu, f"training jobs submitted without a GPU request: {no_gpu}"
    # the profile's set-resources anchor routes every gpu=1 rule to the partition named gpu
    elsewhere = [c for r in train_rules for c in calls[r] if not re.search(r"(-p|--partition)[= ]'?gpu\b", c)]
    assert not elsewhere, f"training jobs not routed to the gpu partition: {elsewhere}"
    n_submitted = sum(len(calls[r]) for r in train_rules)
    # the whole test config ran on SLURM (not only training), and no job asked more CPUs than the node has
    # (profiles/slurm groups BM3D jobs three to a job: the group is fitted to the node's CPUs)
    ran = set(calls) | {r for r, ids in _submitted_job_ids(out).items() if ids}
    assert {"synthesize", "convert", "preprocess", "infer_learned", "evaluate", "table7"} <= ran, sorted(ran)
    assert any("infer_bm3d" in line for line in out.splitlines() if "sbatch call" in line), "no BM3D job on SLURM"
    node_cpus = os.cpu_count() or 1
    asked = [(int(m.group(1)), line) for cs in calls.values() for line in cs
             for m in [re.search(r"--cpus-per-(?:task|gpu)[= ]'?(\d+)", line)] if m]
    too_big = [line for n, line in asked if n > node_cpus]
    assert asked and not too_big, f"jobs asking more than the node's {node_cpus} CPUs: {too_big}"
    assert (out_dir / "tables" / "table7.csv").exists() and (out_dir / "claims.md").exists()

    logs = sorted((out_dir / "logs").glob("train_*/**/*.log"))
    assert logs, f"no training logs under {out_dir / 'logs'}/train_*/"
    per_rule: dict[str, int] = {}
    bad = []
    for log in logs:
        m = None
        for m in DEVICE_LINE.finditer(log.read_text(errors="replace")):
            pass  # the last device line (a retried job appends)
        if m is None or m.group(2) in ("", "None", "unset", "-"):
            bad.append(f"{log.relative_to(REPO)}: {m.group(0) if m else 'no device=... line'}")
        rule = log.relative_to(out_dir / "logs").parts[0]
        per_rule[rule] = per_rule.get(rule, 0) + 1
    assert not bad, "training jobs without a GPU visible (CUDA_VISIBLE_DEVICES unset):\n" + "\n".join(bad)
    # Every submitted training job left a log with the line, and no training ran outside SLURM.
    missing = [rule for rule in train_rules if not per_rule.get(rule)]
    assert not missing, f"training rules submitted to SLURM but without logs: {missing}"
    assert set(per_rule) <= set(train_rules), (
        f"training logs from rules never submitted to SLURM: {set(per_rule) - set(train_rules)}"
    )
    print(f"{n_submitted} training jobs in {len(train_rules)} rules ran on SLURM with a GPU")


def test_a_job_no_node_can_hold_fails_fast_naming_the_rule(request):
    """A rule asking more CPUs than any node has (SLURM would keep it PENDING, reason PartitionConfig,
    forever) is cancelled by the workflow's guard, not retried, and the run fails within FAIL_FAST_S
    with a message naming the rule, its request and the node's limit."""
    if not (REPO / "Snakefile").is_file():
        pytest.skip("the repository's Snakefile does not exist yet")
    request.getfixturevalue("slurm_cluster")
    for folder in (REPO / "results" / IMPOSSIBLE_RUN, REPO / "resources" / IMPOSSIBLE_RUN):
        shutil.rmtree(folder, ignore_errors=True)
    (REPO / "results" / IMPOSSIBLE_RUN).mkdir(parents=True)
    node_cpus = os.cpu_count() or 1
    asked = 32 * node_cpus
    args = ["--configfile", "config/test.yaml", "--config", f"name={IMPOSSIBLE_RUN}",
            "--profile", str(PROFILE), *FAST_POLLING,
            "--set-resources", f"synthesize:cpus_per_task={asked}", "--", f"resources/{IMPOSSIBLE_RUN}/cohort"]
    log_path = REPO / "results" / IMPOSSIBLE_RUN / "snakemake_slurm.out"
    try:
        rc, out, wall = _run_snakemake(args, REPO, 3 * FAIL_FAST_S, log_path)
    finally:
        shutil.rmtree(REPO / "resources" / IMPOSSIBLE_RUN, ignore_errors=True)
    print(f"impossible job failed after {wall:.1f} s wall")
    assert rc not in (0, 124), f"rc {rc}; see {log_path}:\n{out[-4000:]}"
    assert wall < FAIL_FAST_S, f"took {wall:.0f} s to fail (limit {FAIL_FAST_S} s); see {log_path}"
    message = next((line for line in out.splitlines() if "can never start" in line), "")
    assert "rule synthesize" in message and f"{asked} CPUs" in message, out[-4000:]
    assert f"largest node offers {node_cpus} CPUs" in message and "PartitionConfig" in message, message
    assert len(_submitted_job_ids(out).get("synthesize", [])) == 1, "a request that can never run was retried"
    ids = _submitted_job_ids(out)["synthesize"]
    assert "JobState=CANCELLED" in _scontrol_job(ids[0]), _scontrol_job(ids[0])
