"""Pseudonyms that hold (issue #11 e): HMAC keyed by $SPECTBONE_ID_KEY, real data refused without
it, the public demo key only for the phantom, and no key or input path in any output or log."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.uid import generate_uid

from spectbone.cli import main
from spectbone.dicom.write import fake_identity, write_nm_study
from spectbone.util.pseudonym import DEMO_KEY, ENV_VAR, MissingKey, demo_key, secret_key

KEY_A = "site-A-secret-key-7f3a9c1e5b"
KEY_B = "site-B-secret-key-0d4e8b2a6f"
PATIENT_FOLDER = "Zanzibarovic_Quintessa_19410203"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def nm1_path() -> Path:
    import data_store

    return Path(data_store.__file__).resolve().parent / "data" / "JPEG-LL.dcm"


def _study(tmp_path: Path, nm1_path: Path) -> Path:
    """A hospital-like export: a folder named after the patient, one good study, one broken file."""
    inp = tmp_path / "exports" / PATIENT_FOLDER
    (inp / "WB_Zanzibarovic").mkdir(parents=True)
    shutil.copy(nm1_path, inp / "WB_Zanzibarovic" / "Zanzibarovic_ANT.dcm")
    (inp / "Zanzibarovic_notes.dcm").write_text("not an image")
    return inp


def _run(inp: Path, out: Path, key: str | None, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if key is not None:
        env[ENV_VAR] = key
    return subprocess.run([sys.executable, "-m", "spectbone", "convert", str(inp), "--out", str(out),
                           "--log", str(out / "convert.log"), *extra], capture_output=True, text=True, env=env)


def test_same_key_same_ids_other_key_other_ids(nm1_path, tmp_path):
    inp = _study(tmp_path, nm1_path)
    ids = {}
    for name, key in [("a1", KEY_A), ("a2", KEY_A), ("b", KEY_B)]:
        proc = _run(inp, tmp_path / name, key)
        assert proc.returncode == 0, proc.stderr
        m = pd.read_csv(tmp_path / name / "manifest.csv", dtype=str)
        r = pd.read_csv(tmp_path / name / "rejects.csv", dtype=str)
        ids[name] = (m["patient_id"].iloc[0], m["study_id"].iloc[0], r["file_id"].iloc[0])
    assert ids["a1"] == ids["a2"]
    assert all(x != y for x, y in zip(ids["a1"], ids["b"]))


def test_real_data_refused_without_a_usable_key(nm1_path, tmp_path):
    inp = _study(tmp_path, nm1_path)
    for key, why in [(None, "not set"), ("short", "too short"), (DEMO_KEY, "public demo key")]:
        out = tmp_path / f"out_{why.replace(' ', '_')}"
        proc = _run(inp, out, key)
        assert proc.returncode == 2
        assert ENV_VAR in proc.stderr and why in proc.stderr
        assert not (out / "manifest.csv").exists() and not (out / "images").exists()
    with pytest.raises(MissingKey):
        secret_key({})
    assert repr(secret_key({ENV_VAR: KEY_A})).find(KEY_A) == -1  # the key never shows in a repr


def test_demo_key_only_for_the_phantom(nm1_path, tmp_path):
    inp = tmp_path / "mixed"
    inp.mkdir()
    rng = np.random.default_rng(0)
    frames = {v: rng.poisson(20, (64, 32)).astype(np.uint16) for v in ("ANT", "POST")}
    write_nm_study(inp / "phantom.dcm", frames, fake_identity(rng, "F", 165.0, 1.0), ["t", 0])
    shutil.copy(nm1_path, inp / "real.dcm")
    proc = _run(inp, tmp_path / "out", None, "--phantom")  # no key needed for the phantom
    assert proc.returncode == 0, proc.stderr
    m = pd.read_csv(tmp_path / "out" / "manifest.csv", dtype=str)
    r = pd.read_csv(tmp_path / "out" / "rejects.csv", dtype=str)
    assert sorted(m["view"]) == ["ANT", "POST"]
    assert m["patient_id"].iloc[0] == demo_key().pseudonym("patient:" + pydicom.dcmread(inp / "phantom.dcm").PatientID)
    assert len(r) == 1 and "not a file of the embedded synthetic phantom" in r["reason"].iloc[0]
    assert "public demo key" in (tmp_path / "out" / "convert.log").read_text()


def test_no_key_and_no_input_path_in_any_output_or_log(nm1_path, tmp_path):
    inp = _study(tmp_path, nm1_path)
    ds = pydicom.dcmread(inp / "WB_Zanzibarovic" / "Zanzibarovic_ANT.dcm")
    ds.decompress()
    bad = copy.deepcopy(ds)
    bad.SOPInstanceUID = generate_uid()
    bad.Rows = 999  # header and pixels disagree: a reject whose reason talks about the file
    bad.save_as(inp / "WB_Zanzibarovic" / "Zanzibarovic_POST.dcm", enforce_file_format=True)
    out = tmp_path / "out"
    proc = _run(inp, out, KEY_A)
    assert proc.returncode == 0, proc.stderr
    rejects = pd.read_csv(out / "rejects.csv")
    assert list(rejects["position"]) == [1, 3] and rejects["reason"].str.len().min() > 20
    needles = [PATIENT_FOLDER, "Zanzibarovic", "Quintessa", "WB_", str(tmp_path), KEY_A]
    texts = {p.name: p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()}
    texts["stdout+stderr"] = proc.stdout + proc.stderr
    assert "convert.log" in texts and "manifest.csv" in texts
    for name, text in texts.items():
        for needle in needles:
            assert needle not in text, f"{needle!r} leaked into {name}"


def test_key_not_on_the_snakemake_command_line(tmp_path):
    """A real-data config: the convert job's shell command carries no key (and no --salt)."""
    config = tmp_path / "real.yaml"
    config.write_text(f"name: pseudonymtest\ndata:\n  dicom_dir: {tmp_path / 'dicom'}\n")
    (tmp_path / "dicom").mkdir()
    env = {**os.environ, ENV_VAR: KEY_A, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "-n", "-p", "--configfile", str(REPO / "config" / "hospital.example.yaml"),
           str(config), "-s", str(REPO / "Snakefile"),
           "-d", str(tmp_path / "wd"), f"results/pseudonymtest/convert/manifest.csv"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    text = proc.stdout + proc.stderr
    assert "spectbone convert" in text and KEY_A not in text and "--salt" not in text
    # provenance.json records the workflow's resolved config: neither the key nor the key file's path
    proc_prov = subprocess.run(cmd[:-1] + ["results/pseudonymtest/provenance.json"], capture_output=True, text=True,
                               env=env, cwd=REPO)
    assert proc_prov.returncode == 0 and "spectbone provenance" in proc_prov.stdout, proc_prov.stderr
    assert KEY_A not in proc_prov.stdout + proc_prov.stderr
    env.pop(ENV_VAR)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode != 0 and ENV_VAR in proc.stdout + proc.stderr


def test_key_file_named_in_the_config(nm1_path, tmp_path):
    """data.id_key_file: the file's content is the key (same IDs as the same key from the environment);
    only its path is on the command line, and an empty or missing file is refused."""
    inp = _study(tmp_path, nm1_path)
    key_file = tmp_path / "site.key"
    key_file.write_text(KEY_A + "\n")
    proc = _run(inp, tmp_path / "from_file", None, "--id-key-file", str(key_file))
    assert proc.returncode == 0, proc.stderr
    assert _run(inp, tmp_path / "from_env", KEY_A).returncode == 0
    ids = [pd.read_csv(tmp_path / d / "manifest.csv", dtype=str)["patient_id"].iloc[0] for d in ("from_file", "from_env")]
    assert ids[0] == ids[1]
    assert KEY_A not in (tmp_path / "from_file" / "convert.log").read_text()
    key_file.write_text("")
    proc = _run(inp, tmp_path / "empty", KEY_A, "--id-key-file", str(key_file))
    assert proc.returncode == 2 and "key file" in proc.stderr
    proc = _run(inp, tmp_path / "missing", KEY_A, "--id-key-file", str(tmp_path / "nope.key"))
    assert proc.returncode == 2 and "cannot be read" in proc.stderr


def test_pseudonym_of_bytes_is_the_hmac_of_those_bytes():
    """A file name that is not UTF-8 (Latin-1 0xE9, 0xFF 0xFE) is pseudonymised from its own bytes;
    text keeps hashing as UTF-8, so every UTF-8 name keeps its pseudonym."""
    import hashlib
    import hmac
    import os

    from spectbone.util.pseudonym import PseudonymKey

    key = PseudonymKey(b"k" * 32, "test key")
    raw = b"file:\xe9t\xe9 \xff\xfe.dcm"
    name = os.fsdecode(raw)  # what os.walk on text gives: lone surrogates, which UTF-8 cannot encode
    assert key.pseudonym(os.fsencode(name)) == hmac.new(b"k" * 32, raw, hashlib.sha256).hexdigest()[:12]
    assert key.pseudonym("file:été.dcm") == key.pseudonym("file:été.dcm".encode())
