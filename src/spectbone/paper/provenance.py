"""`spectbone provenance`: ``provenance.json``, everything this run's numbers depend on.

Keys of the output (one JSON object, keys sorted):
  data          the bone-scan source ("embedded phantom" or "real DICOM folder (path not recorded)") and
                what `convert` made of it: patients, studies, views, rejected files (manifest, rejects)
  pretraining   per pretraining npz (ct, natural): kind (simulated low-dose CT / real Mayo CT, bundled
                natural images / user image folder), its `source` field, pairs, size, sha256
  vgg_weights   the VGG-16 weights the config names: source, path (package-relative for the shipped
                file), sha256; plus the `vgg_weights` recorded in each model's meta and whether they agree
  models        per trained model (weights file stem): sha256, task, data source, VGG weights, fingerprint
  packages      python and the versions of torch, numpy, scipy, scikit-image, pydicom, bm3d, snakemake,
                spectbone; `spectbone_code_sha256` hashes the installed package source
  git           commit (`git rev-parse HEAD` of the working directory) and dirty (tracked files modified);
                "unknown" outside git
  config        the resolved config (folders of user data, a real-data salt: not recorded)
  device        the device of the host that wrote this file (cpu / cuda, and the GPU's name)

No absolute path of the inputs is written: data folders are named only by what they are (patient
folders can carry names), files by their names, package files relative to the package.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from spectbone.util.hashing import sha256_file
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.paper.provenance")

PACKAGES = ["torch", "numpy", "scipy", "scikit-image", "pydicom", "bm3d", "snakemake", "spectbone"]
PHANTOM = "embedded phantom"
REAL_DICOM = "real DICOM folder (path not recorded)"
NOT_RECORDED = "(path not recorded)"
PACKAGE_DIR = Path(__file__).resolve().parents[1]



def safe_path(path) -> str:
    """A file inside the package relative to it ("spectbone/..."), a relative path as given, else its name."""
    if path in (None, ""):
        return ""
    p = Path(path)
    try:
        return "spectbone/" + p.resolve().relative_to(PACKAGE_DIR).as_posix()
    except ValueError:
        return p.as_posix() if not p.is_absolute() else p.name


# ---------------------------------------------------------------- the parts
def data_info(manifest_csv, rejects_csv, config: dict) -> dict:
    manifest = pd.read_csv(manifest_csv)
    rejects = pd.read_csv(rejects_csv)
    real = (config.get("data") or {}).get("dicom_dir") not in (None, "")
    ok = manifest[manifest["status"] == "ok"] if "status" in manifest else manifest
    reasons = rejects["reason"].astype(str) if "reason" in rejects else pd.Series([], dtype=str)
    return {"source": REAL_DICOM if real else PHANTOM,
            "patients": int(ok["patient_id"].nunique()), "studies": int(ok["study_id"].nunique()),
            "views": len(ok), "rejected_files": len(rejects),
            "rejected_duplicates": int(reasons.str.startswith("byte-identical copy").sum()),
            "manifest_sha256": sha256_file(manifest_csv)}


def pretrain_kind(source: str) -> tuple[str, str]:
    """``(kind, source as recorded)`` of a pretraining npz's `source` field; user folders are not named."""
    from spectbone.data.natural_images import BUNDLED_SOURCE

    if source.startswith("Mayo:"):
        return "real AAPM/Mayo low-dose CT", f"Mayo: {NOT_RECORDED}"
    if source.startswith("folder:"):
        return "user natural-image folder", f"folder: {NOT_RECORDED}"
    if source.startswith("simulated CT"):
        return "simulated low-dose CT", source
    if source == BUNDLED_SOURCE:
        return "bundled natural images", source
    return "unknown", source


def pretraining_info(paths) -> dict:
    out = {}
    for path in paths:
        with np.load(path, allow_pickle=False) as z:
            source = str(z["source"]) if "source" in z.files else ""
            clean_shape = z["clean"].shape if "clean" in z.files else ()
            paired = "noisy" in z.files
        kind, recorded = pretrain_kind(source)
        out[Path(path).stem] = {"kind": kind, "source": recorded, "file": Path(path).name,
                                "pairs" if paired else "images": int(clean_shape[0]) if clean_shape else 0,
                                "size": int(clean_shape[-1]) if clean_shape else 0, "sha256": sha256_file(path)}
    return out


def models_info(paths) -> dict:
    from spectbone.models import load_model

    out = {}
    for path in paths:
        _, meta = load_model(path, map_location="cpu")
        entry = {"sha256": sha256_file(path), "task": meta.get("task", ""), "kind": meta.get("kind", ""),
                 "data_source": meta.get("data_source", ""), "vgg_weights": meta.get("vgg_weights", ""),
                 "perceptual_unit": meta.get("perceptual_unit", ""),
                 "perceptual_balance_ratio": meta.get("perceptual_balance_ratio"),
                 "fingerprint": meta.get("fingerprint", "")}
        if str(entry["data_source"]).startswith(("Mayo:", "folder:")):
            entry["data_source"] = pretrain_kind(str(entry["data_source"]))[1]
        out[Path(path).stem] = entry
    return out


def vgg_info(config: dict, models: dict) -> dict:
    from spectbone.models.vgg import weights_info

    choice = (config.get("training") or {}).get("vgg_weights")
    info = weights_info(choice)
    if info["path"]:
        recorded = safe_path(info["path"])
        info["source"] = info["source"].replace(info["path"], recorded)
        info["path"] = recorded
    used = {name: m["vgg_weights"] for name, m in models.items() if m["vgg_weights"] not in ("", "none")}
    info["models"] = used
    info["models_agree"] = all(v == info["source"] for v in used.values())
    if not info["models_agree"]:
        log.warning("VGG weights recorded in the models differ from the configured %s", info["source"])
    return info


def package_versions() -> dict:
    from spectbone.train.checkpoint import code_version

    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["spectbone_code_sha256"] = code_version()
    return versions


def git_info(cwd=None) -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": "unknown"}
    return {"commit": commit, "dirty": dirty}


def device_info() -> dict:
    import torch

    if torch.cuda.is_available():
        return {"type": "cuda", "name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count()}
    return {"type": "cpu", "name": platform.processor() or platform.machine()}


def redacted_config(config: dict) -> dict:
    """The config without the folders of user data (and without the salt of real patients' ids)."""
    config = json.loads(json.dumps(config))
    data, pre, tr = config.get("data") or {}, config.get("pretrain") or {}, config.get("training") or {}
    real = data.get("dicom_dir") not in (None, "")
    for section, key in ((data, "dicom_dir"), (pre, "mayo_dir"), (pre, "natural_dir")):
        if section.get(key) not in (None, ""):
            section[key] = NOT_RECORDED
    if real and "salt" in data:
        data["salt"] = "(secret for real patients, not recorded)"
    if tr.get("vgg_weights") not in (None, "", "imagenet", "random"):
        tr["vgg_weights"] = safe_path(tr["vgg_weights"])
    return config


def _scrub(obj, secrets: list[tuple[str, str]]):
    """Replace every (absolute) user-data path left in a string value, whatever produced the string."""
    if isinstance(obj, dict):
        return {k: _scrub(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v, secrets) for v in obj]
    if isinstance(obj, str):
        for secret, placeholder in secrets:
            obj = obj.replace(secret, placeholder)
    return obj


def _secrets(config: dict, paths) -> list[tuple[str, str]]:
    data, pre = config.get("data") or {}, config.get("pretrain") or {}
    out = []
    for value in [data.get("dicom_dir"), pre.get("mayo_dir"), pre.get("natural_dir")]:
        if value not in (None, ""):
            out += [(str(Path(value).resolve()), NOT_RECORDED)]
            if Path(value).is_absolute():
                out += [(str(value), NOT_RECORDED)]
    vgg = (config.get("training") or {}).get("vgg_weights")
    for p in [*paths] + ([vgg] if vgg not in (None, "", "imagenet", "random") else []):
        out.append((str(Path(p).resolve()), safe_path(Path(p).resolve())))
        if Path(p).is_absolute():
            out.append((str(p), safe_path(p)))
    return sorted({s for s in out if len(s[0]) > 1}, key=lambda s: -len(s[0]))


def provenance(manifest, rejects, pretrain_data, models, config: dict) -> dict:
    model_info = models_info(models)
    result = {"data": data_info(manifest, rejects, config), "pretraining": pretraining_info(pretrain_data),
              "vgg_weights": vgg_info(config, model_info), "models": model_info, "packages": package_versions(),
              "git": git_info(), "config": redacted_config(config), "device": device_info()}
    return _scrub(result, _secrets(config, [manifest, rejects, *pretrain_data, *models]))


# ---------------------------------------------------------------- the verb
def add_arguments(parser, verb):
    parser.add_argument("--manifest", required=True, help="convert manifest.csv")
    parser.add_argument("--rejects", required=True, help="convert rejects.csv")
    parser.add_argument("--pretrain-data", nargs="+", required=True, help="pretraining npz files (ct, natural)")
    parser.add_argument("--models", nargs="+", required=True, help="every trained model's weights file")
    parser.add_argument("--config-json", required=True, help="the resolved config as JSON")
    parser.add_argument("--out", required=True, help="provenance.json")
    add_common_arguments(parser)


def run(args) -> int:
    setup_logging(args.log)
    config = json.loads(Path(args.config_json).read_text())
    result = provenance(args.manifest, args.rejects, args.pretrain_data, args.models, config)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out)
    log.info("wrote %s: data %s, %d models, git %s", out, result["data"]["source"], len(result["models"]),
             result["git"]["commit"][:12])
    return 0
