"""The profiles and the conda env as plain files: what a user or a cluster admin reads in them holds."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RULE = re.compile(r"^(?:rule|checkpoint) (\w+):", re.M)


def _gpu_rules() -> set[str]:
    """Rules whose resources ask for gpu=1, read from the rule files."""
    rules = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        starts = [(m.start(), m.group(1)) for m in RULE.finditer(text)] + [(len(text), "")]
        for (begin, name), (end, _) in zip(starts, starts[1:]):
            if re.search(r"^\s+gpu=1,", text[begin:end], re.M):
                rules.add(name)
    return rules


def test_every_gpu_rule_is_routed_to_the_gpu_partition():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    gpu_rules = _gpu_rules()
    assert {"train_estimator", "train_emanet", "infer_learned"} <= gpu_rules
    routed = profile["set-resources"]
    partitions = {routed[r]["slurm_partition"] for r in gpu_rules if r in routed}
    assert gpu_rules <= set(routed), f"gpu=1 rules missing from set-resources: {gpu_rules - set(routed)}"
    assert len(partitions) == 1  # one anchor, one place to edit


def test_slurm_profile_retries_polls_gently_and_keeps_flags_in_their_keys():
    text = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    profile = yaml.safe_load(text)
    assert profile["retries"] >= 1
    assert profile["slurm-init-seconds-before-status-checks"] >= 30
    assert profile["seconds-between-status-checks"] >= 30
    for line in text.splitlines():  # constraint and qos have their own plugin keys, never slurm_extra
        if line.lstrip("# ").startswith("slurm_extra:"):
            assert "--constraint" not in line and "--qos" not in line and "--gpus" not in line, line


def test_attempt_scaled_resources_on_the_gpu_rules():
    for smk in ("train.smk", "infer.smk", "counts.smk"):
        text = (REPO / "workflow" / "rules" / smk).read_text()
        assert 'mem_mb=TR["mem_mb"]' not in text and "mem_mb=attempt_scaled(" in text


def test_default_profile_is_plain():
    """Loaded on every run (workflow profile): no templating, no command-line sniffing, no machine limits."""
    text = (REPO / "profiles" / "default" / "config.yaml").read_text()
    profile = yaml.safe_load(text)
    assert not any(k.startswith("__") for k in profile)
    assert not {"cores", "resources", "jobs", "executor"} & set(profile)
    assert "sys.argv" not in text


def test_conda_env_pins_match_pyproject():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {re.split(r"==", d)[0].lower(): d for d in project["dependencies"]}
    env = yaml.safe_load((REPO / "envs" / "spectbone.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = {re.split(r"==", d)[0].lower(): d for d in pip if "==" in d}
    assert {k: v for k, v in env_pins.items() if k in pins} == pins, "envs/spectbone.yaml pins differ from pyproject"


def test_conda_env_installs_the_package_from_the_repository(tmp_path, monkeypatch):
    """`--sdm conda`: Snakemake creates the env from a copy under .snakemake/conda/ and conda hands the pip
    section to pip as a requirements file there; the editable line must still name this repository."""
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements

    env = yaml.safe_load((REPO / "envs" / "spectbone.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_dir = tmp_path / ".snakemake" / "conda"
    conda_dir.mkdir(parents=True)
    requirements = conda_dir / "condaenv.requirements.txt"
    requirements.write_text("\n".join(pip) + "\n")
    monkeypatch.chdir(conda_dir)
    monkeypatch.setenv("SPECTBONE_REPO", str(REPO))  # what workflow/rules/common.smk sets for the run
    editable = [r for r in parse_requirements(str(requirements), session=PipSession()) if r.is_editable]
    assert len(editable) == 1 and Path(editable[0].requirement).resolve() == REPO
    assert (Path(editable[0].requirement) / "pyproject.toml").is_file()
    assert 'os.environ.setdefault("SPECTBONE_REPO"' in (REPO / "workflow" / "rules" / "common.smk").read_text()
