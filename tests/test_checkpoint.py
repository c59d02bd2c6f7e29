"""Checkpoints that cannot lie: resume only with the same params, inputs and code; never unpickle a stranger."""

import json
import logging

import pytest
import torch
from conftest import run_cli
from test_train import train_args

from spectbone.train import checkpoint

EXTRA = ["--model", "dncnn", "--depth", "4", "--lam", "0"]


def _weights(folder):
    return torch.load(folder / "w.pt", weights_only=False)["state_dict"]


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train(data, out, *, seed=3, epochs=1, ckpt=None):
    args = train_args(data, out, epochs=epochs, extra=EXTRA)
    args[args.index("--seed") + 1] = seed
    if ckpt is not None:
        args[args.index("--ckpt-dir") + 1] = ckpt
    run_cli(*args)
    return _weights(out), (out / "train.log").read_text()


class _Evil:
    """Unpickling this creates `marker`: proof that a file was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_checkpoint(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 0, "payload": _Evil(marker)}, path)


def test_seeds_reproducibility_and_no_stale_resume(tiny_bone_data, tmp_path):
    data = tiny_bone_data
    a, _ = _train(data, tmp_path / "a")
    b, _ = _train(data, tmp_path / "b")
    assert _same(a, b), "same seed and args must give bit-identical weights on CPU"
    meta = torch.load(tmp_path / "a" / "w.pt", weights_only=False)["meta"]
    sidecar = json.loads((tmp_path / "a" / "ckpt" / "last.json").read_text())
    assert meta["fingerprint"] == sidecar["fingerprint"]["digest"]

    # another seed: other weights; a foreign pickle without sidecar in its ckpt dir is deleted unread
    marker = tmp_path / "unpickled"
    _evil_checkpoint(tmp_path / "c" / "ckpt" / "last.pt", marker)
    c, log_c = _train(data, tmp_path / "c", seed=4)
    assert not _same(a, c)
    assert not marker.exists()
    assert "has no readable fingerprint sidecar last.json" in log_c and "starting fresh" in log_c

    # rerun in a's (finished) ckpt dir with another seed: starts fresh, equals the fresh seed-4 run
    a_seed4, log = _train(data, tmp_path / "a_seed4", seed=4, ckpt=tmp_path / "a" / "ckpt")
    assert "was made by other params (seed: 3 -> 4)" in log and "starting fresh" in log
    assert "resuming from" not in log
    assert _same(a_seed4, c)

    # rerun in a 2-epoch run's ckpt dir with 1 epoch: starts fresh, equals the fresh 1-epoch run
    _train(data, tmp_path / "d", epochs=2)
    d_1, log = _train(data, tmp_path / "d_1", epochs=1, ckpt=tmp_path / "d" / "ckpt")
    assert "was made by other params (epochs: 2 -> 1)" in log and "resuming from" not in log
    assert _same(d_1, a)


def test_foreign_checkpoint_is_never_unpickled(tmp_path, caplog):
    src = tmp_path / "input.csv"
    src.write_text("a,b\n1,2\n")
    fp = checkpoint.fingerprint({"seed": 1, "epochs": 2}, [src], checkpoint.code_version())
    ckpt, marker = tmp_path / "ckpt" / "last.pt", tmp_path / "unpickled"
    side = checkpoint.sidecar_path(ckpt)

    # the control: this file does run code when unpickled
    _evil_checkpoint(tmp_path / "control.pt", tmp_path / "control")
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert (tmp_path / "control").exists()

    cases = {
        "no sidecar": None,
        "other params": {"fingerprint": checkpoint.fingerprint({"seed": 2, "epochs": 2}, [src], fp["code_version"])},
        "other code": {"fingerprint": checkpoint.fingerprint({"seed": 1, "epochs": 2}, [src], "0" * 64)},
        "garbage": "not json {",
        # the right fingerprint, but the pickle is not the one the sidecar vouches for
        "other bytes": {"fingerprint": fp, "checkpoint_sha256": ["0" * 64]},
    }
    expect = {"no sidecar": "has no readable fingerprint sidecar",
              "other params": "was made by other params (seed: 2 -> 1)", "other code": "was made by other code", "garbage": "has no readable fingerprint sidecar",
              "other bytes": "does not hold the bytes its sidecar"}
    for name, sidecar in cases.items():
        _evil_checkpoint(ckpt, marker)
        side.unlink(missing_ok=True)
        if isinstance(sidecar, str):
            side.write_text(sidecar)
        elif sidecar is not None:
            side.write_text(json.dumps(sidecar))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="spectbone.train.checkpoint"):
            assert checkpoint.load_if_matching(ckpt, fp, "cpu") is None, name
        assert not marker.exists(), f"{name}: the foreign pickle was unpickled"
        assert not ckpt.exists() and not side.exists(), f"{name}: the stale checkpoint was kept"
        assert expect[name] in caplog.text and "starting fresh" in caplog.text, (name, caplog.text)

    # a pickle its sidecar vouches for (right fingerprint, its own bytes) is still loaded weights-only
    _evil_checkpoint(ckpt, marker)
    side.write_text(json.dumps({"fingerprint": fp, "checkpoint_sha256": [checkpoint.sha256_file(ckpt)]}))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="spectbone.train.checkpoint"):
        assert checkpoint.load_if_matching(ckpt, fp, "cpu") is None
    assert not marker.exists() and not ckpt.exists() and not side.exists()
    assert "refused by the safe weights-only loader" in caplog.text and "starting fresh" in caplog.text

    # our own checkpoint with the matching fingerprint loads; changing an input's bytes invalidates it
    rng = torch.get_rng_state()
    checkpoint.save_checkpoint({"epoch": 3, "w": torch.arange(4), "rng": rng, "best": float("inf")}, ckpt, fp)
    state = checkpoint.load_if_matching(ckpt, fp, "cpu")
    assert state["epoch"] == 3 and torch.equal(state["w"], torch.arange(4)) and state["fingerprint"] == fp
    assert torch.equal(state["rng"], rng) and state["best"] == float("inf")
    src.write_text("a,b\n1,3\n")
    fp2 = checkpoint.fingerprint({"seed": 1, "epochs": 2}, [src], checkpoint.code_version())
    assert fp2["digest"] != fp["digest"] and checkpoint.difference(fp, fp2).startswith("inputs (")
    assert checkpoint.load_if_matching(ckpt, fp2, "cpu") is None and not ckpt.exists()


def test_only_weights_only_states_are_saved(tmp_path):
    """What the weights-only loader would refuse is a clear error at saving (the previous checkpoint kept),
    not a failed resume later; plain random states (torch's tensor, numpy's dict of ints) go in."""
    import random

    import numpy as np

    fp = checkpoint.fingerprint({"seed": 1}, [], "c")
    ckpt = tmp_path / "last.pt"
    good = {"epoch": 1, "rng": torch.get_rng_state(), "np_rng": np.random.default_rng(0).bit_generator.state,
            "py_rng": list(random.Random(0).getstate()[1])}
    checkpoint.save_checkpoint(good, ckpt, fp)
    for bad, where in [({"history": [{"val": np.float64(1.0)}]}, r"state\['history'\]\[0\]\['val'\] is a float64"),
                       ({"weights": np.zeros(3)}, r"state\['weights'\] is a ndarray"),
                       ({"py_rng": random.Random(0)}, r"state\['py_rng'\] is a Random")]:
        with pytest.raises(TypeError, match=where):
            checkpoint.save_checkpoint(bad, ckpt, fp)
    state = checkpoint.load_if_matching(ckpt, fp, "cpu")
    assert state is not None and state["epoch"] == 1 and torch.equal(state["rng"], good["rng"])
    assert state["np_rng"] == good["np_rng"] and state["py_rng"] == good["py_rng"]


def test_fingerprint_of_folders_and_code(tmp_path):
    folder = tmp_path / "pre"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "x.npy").write_bytes(b"123")
    first = checkpoint.sha256_input(folder)
    assert first == checkpoint.sha256_input(folder)
    (folder / "images" / "x.npy").write_bytes(b"124")
    assert checkpoint.sha256_input(folder) != first
    (folder / "images" / "x.npy").write_bytes(b"123")
    (folder / "images" / "x.npy").rename(folder / "images" / "y.npy")  # same bytes, other name
    assert checkpoint.sha256_input(folder) != first
    assert checkpoint.sha256_input(tmp_path / "nothing") == "missing"
    assert len(checkpoint.code_version()) == 64

    from spectbone.models.vgg import DEFAULT_WEIGHTS
    fp = checkpoint.fingerprint({}, [DEFAULT_WEIGHTS, None], "c")
    assert list(fp["inputs"]) == [f"spectbone/models/data/{DEFAULT_WEIGHTS.name}"]  # package-relative

    import argparse
    args = argparse.Namespace(out="o", ckpt_dir="c", history="h", curve="k", log="l", threads=1, device="cpu",
                              seed=3, epochs=2, split="s.csv")
    assert checkpoint.training_params(args) == {"epochs": 2, "seed": 3, "split": "s.csv"}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield
