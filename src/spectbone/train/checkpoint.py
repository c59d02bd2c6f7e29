"""Checkpoints that cannot lie: resume only from a checkpoint made by these params, inputs and code.

A checkpoint ``last.pt`` holds only tensors and plain containers (weights, optimiser and scheduler
state_dicts, history, epoch): :func:`save_checkpoint` refuses anything else, so it is loaded with the safe
``torch.load(weights_only=True)`` (defence in depth: a file that slipped past the sidecar still cannot run
code). It is loaded only after its JSON sidecar ``last.json`` says it was made with the very fingerprint
of this run and names the sha256 of its bytes. Anything else (no sidecar, another fingerprint, other
bytes, a pickle the weights-only loader refuses) is deleted, the log says why, and training starts fresh.
The engine re-seeds every epoch from (seed, epoch), so no random-generator state needs storing; one
that did would go in as a tensor (``torch.get_rng_state()``) or a list, never a pickled object.

The fingerprint of a run (:func:`fingerprint`):
  params        every command-line argument that influences training (output locations dropped)
  inputs        {file or folder as given (package files package-relative): sha256 of its bytes}; a
                folder hashes its files' relative paths and bytes
  code_version  sha256 over the installed ``spectbone`` package's .py files and package-data .pt files
  digest        sha256 of the three above (canonical JSON)

Writing order (:func:`save_checkpoint`): the pickle goes to ``last.pt.tmp``; the sidecar is rewritten
naming its sha256 (and that of the ``last.pt`` it replaces); then ``last.pt.tmp`` becomes ``last.pt``.
A kill at any point leaves a ``last.pt`` its sidecar vouches for, or no ``last.pt`` at all.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import torch

from spectbone.util.hashing import sha256_file

log = logging.getLogger("spectbone.train.checkpoint")

# `spectbone train` arguments that only say where outputs go or how fast to run: not in the fingerprint
OUTPUT_ARGUMENTS = frozenset({"out", "ckpt_dir", "history", "curve", "log", "threads", "device"})
PACKAGE_DIR = Path(__file__).resolve().parents[1]
MISSING = "missing"


# ---------------------------------------------------------------- hashing

def sha256_tree(root: str | os.PathLike) -> str:
    """Hex sha256 over a folder's files (recursively): each file's relative POSIX path and bytes, sorted."""
    root = Path(root)
    h = hashlib.sha256()
    for rel in sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()):
        h.update(f"{rel}\0{sha256_file(root / rel)}\n".encode())
    return h.hexdigest()


def sha256_input(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder's relative paths and bytes; "missing" when it does not exist."""
    path = Path(path)
    if path.is_dir():
        return sha256_tree(path)
    if path.is_file():
        return sha256_file(path)
    return MISSING


def _package_files() -> list[Path]:
    return sorted([*PACKAGE_DIR.rglob("*.py"), *PACKAGE_DIR.rglob("*.pt")],
                  key=lambda p: p.relative_to(PACKAGE_DIR).as_posix())


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 over the installed package's source (.py) and package-data (.pt) files: paths and bytes."""
    h = hashlib.sha256()
    for path in _package_files():
        if "__pycache__" not in path.parts:
            h.update(f"{path.relative_to(PACKAGE_DIR).as_posix()}\0{sha256_file(path)}\n".encode())
    return h.hexdigest()


def _input_name(path: str | os.PathLike) -> str:
    """A file inside the package by its package-relative name (the same on every machine), else as given."""
    try:
        return "spectbone/" + Path(path).resolve().relative_to(PACKAGE_DIR).as_posix()
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- fingerprints
def training_params(args) -> dict:
    """The parsed `spectbone train` namespace minus pure output locations and speed settings."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in OUTPUT_ARGUMENTS}


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(params: dict, input_files: list, code_version: str) -> dict:
    """``{"params", "inputs", "code_version", "digest"}`` of a training run (JSON-plain values)."""
    fp = {"params": json.loads(_canonical(params)),
          "inputs": {_input_name(p): sha256_input(p) for p in input_files if p not in (None, "")},
          "code_version": str(code_version)}
    fp["digest"] = hashlib.sha256(_canonical(fp).encode()).hexdigest()
    return fp


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def difference(old, new: dict) -> str:
    """"" when the fingerprints match, else which parts differ in words (params/inputs/code)."""
    if not isinstance(old, dict):
        return "params, inputs and code (the sidecar holds no fingerprint)"
    if old.get("digest") == new["digest"] and old == new:
        return ""
    parts = []
    op, np_ = old.get("params") or {}, new["params"]
    keys = sorted(k for k in set(op) | set(np_) if op.get(k, MISSING) != np_.get(k, MISSING))
    if keys:
        parts.append("params (" + ", ".join(f"{k}: {_short(op.get(k, MISSING))} -> {_short(np_.get(k, MISSING))}"
                                            for k in keys) + ")")
    oi, ni = old.get("inputs") or {}, new["inputs"]
    names = sorted(k for k in set(oi) | set(ni) if oi.get(k) != ni.get(k))
    if names:
        parts.append("inputs (" + ", ".join(names) + ")")
    if old.get("code_version") != new["code_version"]:
        parts.append(f"code (version {str(old.get('code_version'))[:12]} -> {new['code_version'][:12]})")
    return "; ".join(parts) or "fingerprint (digest differs)"


# ---------------------------------------------------------------- saving and loading
def sidecar_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


def _tmp(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".tmp")


def _atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves half a file under `path`."""
    path = Path(path)
    tmp = _tmp(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_write_text(text: str, path: Path) -> None:
    tmp = _tmp(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def _read_sidecar(path: Path):
    try:
        return json.loads(sidecar_path(path).read_text())
    except (OSError, ValueError):
        return None


def discard(path: str | os.PathLike) -> None:
    """Delete a checkpoint, its sidecar and any half-written temporary files."""
    path = Path(path)
    for p in (path, sidecar_path(path), _tmp(path), _tmp(sidecar_path(path))):
        p.unlink(missing_ok=True)


SCALARS = (str, bytes, int, float, bool, type(None))  # exact types: numpy's float64 is a float subclass


def check_weights_only(obj, where: str = "state") -> None:
    """TypeError (naming the key) for anything the weights-only loader would refuse, so that a
    checkpoint which could not be resumed is never written."""
    if type(obj) in (dict, OrderedDict):
        for k, v in obj.items():
            if type(k) not in (str, int):
                raise TypeError(f"checkpoint {where} has a key of type {type(k).__name__}: only str and int keys")
            check_weights_only(v, f"{where}[{k!r}]")
    elif type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            check_weights_only(v, f"{where}[{i}]")
    elif not (type(obj) in SCALARS or isinstance(obj, (torch.Tensor, torch.Size))):
        raise TypeError(f"checkpoint {where} is a {type(obj).__name__}: checkpoints hold only tensors, Python "
                        "numbers, strings and lists/tuples/dicts of them (arrays and random states as tensors "
                        "or lists)")


def save_checkpoint(state: dict, path: str | os.PathLike, fingerprint: dict) -> None:
    """Save ``state`` (plus the fingerprint) to ``path`` and its sidecar, in an order a kill cannot break.

    Only what the weights-only loader reads back is accepted (:func:`check_weights_only`)."""
    path = Path(path)
    tmp = _tmp(path)
    state = {**state, "fingerprint": fingerprint}
    check_weights_only(state)
    torch.save(state, tmp)
    new = sha256_file(tmp)
    old = _read_sidecar(path)
    vouched = [new]
    if isinstance(old, dict) and isinstance(old.get("fingerprint"), dict) \
            and old["fingerprint"].get("digest") == fingerprint["digest"]:
        vouched += [s for s in old.get("checkpoint_sha256", []) if s != new]  # the last.pt still in place
    _atomic_write_text(json.dumps({"fingerprint": fingerprint, "checkpoint_sha256": vouched}, indent=1),
                       sidecar_path(path))
    os.replace(tmp, path)
    _atomic_write_text(json.dumps({"fingerprint": fingerprint, "checkpoint_sha256": [new]}, indent=1),
                       sidecar_path(path))


def load_if_matching(path: str | os.PathLike, fingerprint: dict, device) -> dict | None:
    """The checkpoint state when its sidecar matches ``fingerprint`` and its bytes, else None (deleted, logged).

    Nothing is unpickled unless the sidecar matches: a foreign or stale pickle is never loaded; and
    then only with the weights-only loader, which refuses anything but tensors and plain containers.
    """
    path = Path(path)
    side = sidecar_path(path)
    if not path.exists():
        if side.exists():
            discard(path)
        return None
    sidecar = _read_sidecar(path)
    if sidecar is None:
        why = (f"has no readable fingerprint sidecar {side.name} (made by other params/inputs/code, "
               "or not by this program)")
    elif diff := difference(sidecar.get("fingerprint") if isinstance(sidecar, dict) else None, fingerprint):
        why = f"was made by other {diff}"
    elif sha256_file(path) not in sidecar.get("checkpoint_sha256", []):
        why = f"does not hold the bytes its sidecar {side.name} names (replaced or damaged)"
    else:
        why = ""
    if not why:
        try:
            state = torch.load(path, map_location=device, weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as exc:
            state, why = None, (f"is refused by the safe weights-only loader ({type(exc).__name__}: it holds "
                                "more than tensors and plain containers)")
        stored = state.get("fingerprint") if isinstance(state, dict) else None
        if isinstance(stored, dict) and stored.get("digest") == fingerprint["digest"]:
            return state
        why = why or "holds another fingerprint than its sidecar"
    log.warning("checkpoint %s %s: starting fresh (checkpoint deleted)", path, why)
    discard(path)
    return None
