"""`spectbone provenance`: every key present, the VGG hash is the file's, no input path leaks."""

import hashlib
import json

import numpy as np
import pandas as pd
from conftest import ROOT, run_cli

TOP_KEYS = {"data", "pretraining", "vgg_weights", "models", "packages", "git", "config", "device"}
PACKAGES = {"python", "torch", "numpy", "scipy", "scikit-image", "pydicom", "bm3d", "snakemake", "spectbone",
            "spectbone_code_sha256"}


def _inputs(tmp_path, dicom_dir):
    from spectbone.models import build_model, save_model
    from spectbone.models.vgg import weights_info

    manifest = pd.DataFrame({"image_id": ["s1_ANT", "s1_POST", "s2_ANT"], "patient_id": ["p1", "p1", "p2"],
                             "study_id": ["s1", "s1", "s2"], "view": ["ANT", "POST", "ANT"], "status": "ok",
                             "image_path": [f"{tmp_path}/images/{i}.npy" for i in ["s1_ANT", "s1_POST", "s2_ANT"]]})
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    pd.DataFrame({"source": ["a/x.dcm", "b/y.dcm"], "source_sha256": ["0", "1"],
                  "reason": ["byte-identical copy of a/z.dcm, which was already converted", "the file is empty"]}
                 ).to_csv(tmp_path / "rejects.csv", index=False)
    clean = np.zeros((5, 16, 16), np.float32)
    np.savez(tmp_path / "ct.npz", clean=clean, noisy=clean, level=np.ones(5, np.float32),
             source=np.array("simulated CT (procedural slices)"))
    np.savez(tmp_path / "natural.npz", clean=clean[:3], source=np.array(f"folder: {tmp_path}/my_photos"))
    vgg = weights_info()["source"]
    models = []
    for name, meta in {"emanet_ct_full_lam0.2": {"task": "denoiser", "vgg_weights": vgg, "fingerprint": "ab" * 32,
                                                 "data_source": "user DICOM studies"},
                       "pretrain_natural_full": {"task": "pretrain", "vgg_weights": "none",
                                                 "data_source": f"folder: {tmp_path}/my_photos"}}.items():
        save_model(tmp_path / f"{name}.pt", build_model("dncnn", channels=4, depth=3), "dncnn",
                   {"channels": 4, "depth": 3}, meta)
        models.append(tmp_path / f"{name}.pt")
    config = {"name": "t", "seed": 0, "data": {"dicom_dir": dicom_dir, "salt": "very-secret-salt"},
              "pretrain": {"mayo_dir": None, "natural_dir": f"{tmp_path}/my_photos"},
              "training": {"vgg_weights": None, "lam": 0.2}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    return models


def test_provenance_keys_hashes_and_no_paths(tmp_path):
    from spectbone.models.vgg import DEFAULT_WEIGHTS

    dicom_dir = str(tmp_path / "Patients" / "Doe_John")
    models = _inputs(tmp_path, dicom_dir)
    out = tmp_path / "out" / "provenance.json"
    run_cli("provenance", "--manifest", tmp_path / "manifest.csv", "--rejects", tmp_path / "rejects.csv",
            "--pretrain-data", tmp_path / "ct.npz", tmp_path / "natural.npz", "--models", *models,
            "--config-json", tmp_path / "config.json", "--out", out, "--log", tmp_path / "prov.log", cwd=ROOT)
    text = out.read_text()
    p = json.loads(text)
    assert set(p) == TOP_KEYS
    assert p["data"] == {"source": "real DICOM folder (path not recorded)", "patients": 2, "studies": 2, "views": 3,
                         "rejected_files": 2, "rejected_duplicates": 1,
                         "manifest_sha256": hashlib.sha256((tmp_path / "manifest.csv").read_bytes()).hexdigest()}
    ct, nat = p["pretraining"]["ct"], p["pretraining"]["natural"]
    assert ct["kind"] == "simulated low-dose CT" and ct["pairs"] == 5 and ct["size"] == 16 and ct["file"] == "ct.npz"
    assert ct["sha256"] == hashlib.sha256((tmp_path / "ct.npz").read_bytes()).hexdigest()
    assert nat["kind"] == "user natural-image folder" and nat["images"] == 3 and "path not recorded" in nat["source"]

    vgg = p["vgg_weights"]
    assert vgg["sha256"] == hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    assert vgg["path"] == f"spectbone/models/data/{DEFAULT_WEIGHTS.name}" and vgg["source"].startswith("imagenet")
    assert vgg["models"] == {"emanet_ct_full_lam0.2": vgg["source"]} and vgg["models_agree"] is True

    m = p["models"]["emanet_ct_full_lam0.2"]
    assert m["sha256"] == hashlib.sha256(models[0].read_bytes()).hexdigest() and m["fingerprint"] == "ab" * 32
    assert m["task"] == "denoiser" and m["vgg_weights"] == vgg["source"]
    assert p["models"]["pretrain_natural_full"]["data_source"] == "folder: (path not recorded)"

    assert set(p["packages"]) == PACKAGES and all(p["packages"][k] for k in PACKAGES)
    assert p["git"]["commit"] == "unknown" or len(p["git"]["commit"]) == 40
    assert p["git"]["dirty"] in (True, False, "unknown")
    assert p["device"]["type"] in ("cpu", "cuda")
    assert p["config"]["data"]["dicom_dir"] == "(path not recorded)"
    assert p["config"]["pretrain"]["natural_dir"] == "(path not recorded)"
    assert "very-secret-salt" not in text and p["config"]["training"]["lam"] == 0.2

    # no input path, no user folder, no absolute path of the package
    from spectbone.paper.provenance import PACKAGE_DIR
    for secret in [str(tmp_path), dicom_dir, "Doe_John", "my_photos", str(PACKAGE_DIR)]:
        assert secret not in text, secret


def test_embedded_phantom_and_outside_git(tmp_path):
    from spectbone.paper.provenance import git_info, provenance

    models = _inputs(tmp_path, None)
    config = json.loads((tmp_path / "config.json").read_text())
    p = provenance(tmp_path / "manifest.csv", tmp_path / "rejects.csv", [tmp_path / "ct.npz"], models[:1], config)
    assert p["data"]["source"] == "embedded phantom" and set(p["pretraining"]) == {"ct"}
    assert p["config"]["data"]["salt"] == "very-secret-salt"  # no real patients: the salt protects nothing
    assert git_info(tmp_path) == {"commit": "unknown", "dirty": "unknown"}
