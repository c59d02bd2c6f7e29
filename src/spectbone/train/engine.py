"""The training loop shared by every task: seeded epochs, resumable checkpoints, best weights.

Resuming: after every epoch the full state (weights, optimisers, best weights, history) goes to the
checkpoint folder; each epoch re-seeds torch and the data from (seed, epoch), so a rerun after a
kill continues from the last finished epoch and ends with the very weights an uninterrupted run gives.
A checkpoint is resumed only when its fingerprint (params, inputs, code; see checkpoint.py) matches the
run's; any other checkpoint is deleted unread and training starts fresh.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from spectbone.data.datasets import epoch_order
from spectbone.noise.poisson import noise_seed
from spectbone.train.checkpoint import load_if_matching, save_checkpoint
from spectbone.train.tasks import Task

log = logging.getLogger("spectbone.train.engine")


# ---------------------------------------------------------------- checkpoints
def _clone_state_dict(module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def batches_per_epoch(samples: int, batch_size: int) -> int:
    """Batches the loader yields: the last partial batch is dropped unless it is the only one."""
    return samples // batch_size if samples > batch_size else 1


def _validation_row(task: Task) -> dict:
    """The task's validation loss, plus its per-image score (higher is better) where the task gives one."""
    val, scores, name = task.evaluate()
    row = {"val": float(val)}
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        row.update(val_score=float(scores.mean()), score=name, val_scores=" ".join(f"{v:.6g}" for v in scores))
    return row


def fit(task: Task, dataset, *, epochs: int, samples_per_epoch: int | None, batch_size: int, seed: int,
        ckpt_dir: Path, device, fingerprint: dict, val_every: int | None = None) -> tuple[dict, pd.DataFrame]:
    """Train `task` for `epochs`, resuming from `ckpt_dir/last.pt` only when it was made with `fingerprint`
    (`checkpoint.fingerprint`: params, inputs, code); returns best weights and history.

    Validation runs every `val_every` optimiser steps and at the end of every epoch: one history row per
    validation (step, epoch as a fraction, mean training losses since the row before, validation loss,
    per-image validation scores), so the curves show whether a run was still improving when it stopped.
    The best weights are those of the best validation row. Validation draws no random numbers, so the
    trained weights do not depend on `val_every`.
    """
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / "last.pt"
    start, best, best_state, history = 0, float("inf"), None, []
    steps_per_epoch = batches_per_epoch(samples_per_epoch or len(dataset), batch_size)
    task.set_total_steps(epochs * steps_per_epoch)
    state = load_if_matching(ckpt, fingerprint, device)
    if state is not None:
        task.load_state_dict(state["task"])
        start, best, best_state, history = state["epoch"] + 1, state["best"], state["best_state"], state["history"]
        log.info("resuming from %s after epoch %d of %d", ckpt, start, epochs)
    for epoch in range(start, epochs):
        torch.manual_seed(noise_seed(seed, -3, -3, epoch))
        dataset.set_epoch(epoch)
        order = epoch_order(len(dataset), samples_per_epoch, seed, epoch)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=order.tolist(), num_workers=0,
                            drop_last=len(order) > batch_size)
        assert len(loader) == steps_per_epoch, (len(loader), steps_per_epoch)
        task.train(True)
        t0, sums, n = time.perf_counter(), {}, 0
        for i, batch in enumerate(tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False)):
            for k, v in task.step(batch).items():
                sums[k] = sums.get(k, 0.0) + v
            task.after_batch()
            n += 1
            step = epoch * steps_per_epoch + i + 1
            if i + 1 < steps_per_epoch and not (val_every and step % val_every == 0):
                continue
            task.train(False)
            row = {"step": step, "epoch": step / steps_per_epoch,
                   **{f"train_{k}": v / max(n, 1) for k, v in sums.items()}, **_validation_row(task)}
            task.train(True)
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            if row["val"] < best:
                best, best_state = row["val"], _clone_state_dict(task.models[task.primary])
            log.info("step %d (epoch %.3g/%d) %s", step, row["epoch"], epochs,
                     " ".join(f"{k}={v:.5g}" for k, v in row.items() if isinstance(v, float) and k != "epoch"))
            t0, sums, n = time.perf_counter(), {}, 0
        task.train(False)
        save_checkpoint({"epoch": epoch, "best": best, "best_state": best_state, "history": history,
                         "task": task.state_dict()}, ckpt, fingerprint)
    if best_state is None:  # zero epochs asked: keep the initial weights
        best_state = _clone_state_dict(task.models[task.primary])
    return best_state, pd.DataFrame(history)


def plot_history(history: pd.DataFrame, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spectbone.util.outputs import save_figure

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for col in [c for c in history.columns if c.startswith("train_")] + ["val"]:
        if col in history:
            ax.plot(history["epoch"], history[col], marker="o", ms=3, label=col)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)
