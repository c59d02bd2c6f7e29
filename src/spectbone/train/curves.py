"""Learning curves: was a model still improving when its training stopped?

Every training history (train/engine.py) holds one row per validation: the step, the validation
loss and each validation image's score (PSNR in dB for denoisers; minus the level error for the
estimator; soft Dice for the segmenter; higher is better). :func:`still_improving` compares each
image's score at the end with its score at the start of the last quarter of training (the last
validation at or before 3/4 of the steps) and bootstraps the mean gain over validation images
(paired). A model whose gain interval lies above 0 was still learning: more steps would have
changed it, and the tables that use it say so.

`spectbone curves`: one figure of every curve of a table group (validation loss and score against
the step), for the report.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.train.curves")

LAST_SHARE = 0.25  # "the last quarter of training"


def _scores(cell) -> np.ndarray:
    return np.array([float(v) for v in str(cell).split()], dtype=np.float64)


def still_improving(history: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict:
    """Gain of the per-image validation score over the last quarter of training, with its 95 % interval.

    ``{"score", "gain", "gain_lo", "gain_hi", "from_step", "to_step", "still_improving"}``; NaN gain (and
    still_improving False) when the history has no per-image scores or fewer than two validations."""
    from spectbone.evaluate.metrics import bootstrap_ci

    empty = {"score": "", "gain": np.nan, "gain_lo": np.nan, "gain_hi": np.nan, "from_step": np.nan,
             "to_step": np.nan, "still_improving": False}
    if "val_scores" not in history or history["val_scores"].isna().all() or len(history) < 2:
        return empty
    h = history.dropna(subset=["val_scores"]).sort_values("step")
    last = h.iloc[-1]
    cut = (1 - LAST_SHARE) * float(last["step"])
    before = h[(h["step"] <= cut + 1e-9) & (h["step"] < last["step"])]
    start = before.iloc[-1] if len(before) else h.iloc[0]
    if start["step"] == last["step"]:
        return empty
    gain, lo, hi = bootstrap_ci(_scores(last["val_scores"]) - _scores(start["val_scores"]), n_boot=n_boot, seed=seed)
    return {"score": str(last.get("score", "")), "gain": gain, "gain_lo": lo, "gain_hi": hi,
            "from_step": int(start["step"]), "to_step": int(last["step"]), "still_improving": bool(lo > 0)}


def improving_note(histories: dict[str, pd.DataFrame], n_boot: int = 1000, seed: int = 0) -> str | None:
    """One sentence naming the models (of a table) still improving at the end of training; None if none is."""
    still = []
    for name, history in sorted(histories.items()):
        s = still_improving(history, n_boot, seed)
        if s["still_improving"]:
            unit = " dB" if s["score"] == "psnr_db" else f" ({s['score']})"
            still.append(f"{name} (+{s['gain']:.3g}{unit} [{s['gain_lo']:.3g}, {s['gain_hi']:.3g}] from step "
                         f"{s['from_step']} to {s['to_step']})")
    if not still:
        return None
    return ("Still improving when training stopped (validation gain over the last quarter of training, 95 % "
            "bootstrap interval over validation images above 0): " + "; ".join(still) +
            ". Their scores here are those of an unfinished training run.")


def plot_curves(histories: dict[str, pd.DataFrame], path: str, title: str) -> None:
    """Validation loss (log) and validation score against the optimiser step, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spectbone.util.outputs import save_figure

    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 3.6))
    scores = set()
    for name, h in sorted(histories.items()):
        if not len(h):
            continue
        line, = ax_loss.plot(h["step"], h["val"], marker="o", ms=2, lw=1, label=name)
        if "val_score" in h and h["val_score"].notna().any():
            ax_score.plot(h["step"], h["val_score"], marker="o", ms=2, lw=1, color=line.get_color(), label=name)
            scores |= set(h["score"].dropna().astype(str))
    ax_loss.set(xlabel="optimiser step", ylabel="validation loss", yscale="log")
    ax_score.set(xlabel="optimiser step",
                 ylabel="validation PSNR (dB)" if scores == {"psnr_db"} else "validation score: " + ", ".join(sorted(scores)))
    ax_score.legend(fontsize=6, loc="best")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def add_arguments(parser, verb):
    parser.add_argument("--histories", nargs="+", required=True, help="training history CSVs (declared inputs)")
    parser.add_argument("--title", required=True, help="the table group the curves belong to")
    parser.add_argument("--out", required=True, help="figure path (PNG; a PDF twin is written beside it)")
    add_common_arguments(parser)


def run(args):
    setup_logging(args.log)
    histories = {Path(p).stem: pd.read_csv(p) for p in args.histories}
    plot_curves(histories, str(Path(args.out).with_suffix("")), args.title)
    for name, h in histories.items():
        log.info("%s: %s", name, still_improving(h))
    return 0
