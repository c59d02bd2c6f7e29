"""Table 8's cut: chosen on validation data by bootstrap-mean pooled IoU, from a grid that reaches past it."""

from __future__ import annotations

import numpy as np
import pytest

from spectbone.evaluate.score import segmentation_scores
from spectbone.evaluate.threshold import THRESHOLD_GRID, choose_threshold, counts_by_threshold, pooled_iou


def _overconfident(n=8, size=32, seed=0):
    """Masks and probabilities of an overconfident segmenter: lesions near 0.999, background up to ~0.98."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        r, c = rng.integers(4, size - 8, 2)
        masks[i, r:r + 4, c:c + 4] = 1
    logit = np.where(masks > 0, rng.normal(7.0, 0.7, masks.shape), rng.normal(-2.0, 2.0, masks.shape))
    return 1 / (1 + np.exp(-logit)), masks


def test_counts_match_the_pooled_scores_of_table8():
    prob, masks = _overconfident()
    counts = counts_by_threshold(prob, masks)
    iou = pooled_iou(counts)
    for t in (0, 20, len(THRESHOLD_GRID) - 1):
        assert iou[t] == pytest.approx(segmentation_scores(prob, masks, THRESHOLD_GRID[t])["iou"])


def test_cut_lies_inside_a_grid_that_reaches_past_0_95():
    prob, masks = _overconfident()
    choice = choose_threshold(prob, masks, n_boot=100, seed=0)
    assert THRESHOLD_GRID[0] < 0.05 and THRESHOLD_GRID[-1] > 0.999  # not a grid that stops at 0.95
    assert choice.threshold > 0.95  # this model needs a cut above the old grid's end ...
    assert not choice.at_edge  # ... and the grid reaches past it
    assert choice.stable[0] <= choice.threshold <= choice.stable[1]
    assert choice.val_iou == pytest.approx(segmentation_scores(prob, masks, choice.threshold)["iou"])
    assert choice.val_iou > segmentation_scores(prob, masks, 0.95)["iou"]
    assert choice.lesion_pixels == int(masks.sum()) and choice.n_images == len(masks)
    assert list(choice.curve.columns) == ["threshold", "iou_val", "iou_val_bagged", "iou_val_lo", "iou_val_hi"]


def test_degenerate_model_is_flagged_at_the_edge():
    prob, masks = _overconfident()
    choice = choose_threshold(np.ones_like(prob), masks, n_boot=20)  # everything is a lesion at every cut
    assert choice.at_edge


def test_validation_without_lesions_is_an_error():
    with pytest.raises(ValueError, match="validation set has none"):
        choose_threshold(np.full((2, 8, 8), 0.5), np.zeros((2, 8, 8)))
