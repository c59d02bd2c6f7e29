"""Table 8's probability cut: chosen on the validation images, stable, from a grid that reaches past it.

The segmenter outputs probabilities; Table 8 needs a binary mask. The paper names no cut, and 0.5
is right only for a calibrated model, which a Tversky-trained one (false negatives weighted 0.7) is
not: its probabilities pile up near 1. So:

- the grid is even in logit space from sigmoid(-4) ~ 0.018 to sigmoid(9) ~ 0.9999, fine where the
  probabilities crowd (near 1) and reaching well past any useful cut, so a choice at an end of the
  grid means the model is degenerate and is said so, not hidden by a grid that stops at 0.95;
- the cut maximises the *bootstrap mean* of the pooled validation IoU (validation images resampled
  with replacement), not the IoU of the one validation set: a few images with a hundred lesion
  pixels make the raw argmax jump between neighbouring cuts, the bagged curve much less;
- its stability is reported: the 5-95 % range of the argmax over the same resamples;
- never the test images: their curve is drawn beside the validation curve (the report's figure),
  for the reader, not for the choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spectbone.evaluate.metrics import bootstrap_indices

LOGIT_RANGE, LOGIT_STEP = (-4.0, 9.0), 0.25
THRESHOLD_GRID = 1.0 / (1.0 + np.exp(-np.arange(LOGIT_RANGE[0], LOGIT_RANGE[1] + LOGIT_STEP / 2, LOGIT_STEP)))
STABLE_RANGE = (5.0, 95.0)  # percentiles of the bootstrap argmax reported as the cut's stability


def counts_by_threshold(prob: np.ndarray, truth: np.ndarray, grid=THRESHOLD_GRID) -> dict[str, np.ndarray]:
    """Pixel TP / FP / FN per threshold and image, each [T, N], for probabilities and masks [N, H, W]."""
    prob = np.asarray(prob, np.float64).reshape(len(prob), -1)
    true = np.asarray(truth).reshape(len(truth), -1) > 0
    out = {k: np.zeros((len(grid), len(prob)), np.int64) for k in ("tp", "fp", "fn")}
    for t, cut in enumerate(grid):
        pred = prob >= cut
        out["tp"][t] = (pred & true).sum(axis=1)
        out["fp"][t] = (pred & ~true).sum(axis=1)
        out["fn"][t] = (~pred & true).sum(axis=1)
    return out


def pooled_iou(counts: dict[str, np.ndarray], rows=None) -> np.ndarray:
    """Pooled IoU per threshold [T] over the images `rows` (default all; repeats count repeatedly)."""
    pick = slice(None) if rows is None else rows
    tp, fp, fn = (counts[k][:, pick].sum(axis=1).astype(np.float64) for k in ("tp", "fp", "fn"))
    denom = tp + fp + fn
    return np.divide(tp, denom, out=np.zeros_like(tp), where=denom > 0)


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    val_iou: float  # pooled validation IoU at the chosen cut
    stable: tuple[float, float]  # 5-95 % range of the bootstrap argmax
    at_edge: bool  # the chosen cut is an end of the grid
    curve: pd.DataFrame  # threshold, iou_val, iou_val_bagged, iou_val_lo, iou_val_hi
    n_images: int
    lesion_pixels: int


def choose_threshold(prob: np.ndarray, truth: np.ndarray, n_boot: int = 200, seed: int = 0) -> ThresholdChoice:
    """The cut with the best bootstrap-mean pooled IoU on validation probabilities and masks [N, H, W]."""
    if len(prob) == 0 or not (np.asarray(truth) > 0).any():
        raise ValueError("choosing Table 8's cut needs validation images with lesions; the validation set has none")
    counts = counts_by_threshold(prob, truth)
    boot = np.stack([pooled_iou(counts, rows) for rows in bootstrap_indices(len(prob), n_boot, seed)])  # [B, T]
    bagged = boot.mean(axis=0)
    best = int(np.argmax(bagged))
    argmaxes = THRESHOLD_GRID[np.argmax(boot, axis=1)]
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    iou = pooled_iou(counts)
    curve = pd.DataFrame({"threshold": THRESHOLD_GRID, "iou_val": iou, "iou_val_bagged": bagged,
                          "iou_val_lo": lo, "iou_val_hi": hi})
    return ThresholdChoice(float(THRESHOLD_GRID[best]), float(iou[best]),
                           tuple(float(v) for v in np.percentile(argmaxes, STABLE_RANGE)),
                           best in (0, len(THRESHOLD_GRID) - 1), curve, len(prob), int((np.asarray(truth) > 0).sum()))
