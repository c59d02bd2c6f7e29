"""How each method of the registry (`registry.SPECS`) turns counts into an estimate of their expected counts.

A method is declared once, in `registry` (key, label, model it needs; the workflow plans its jobs from
it), and run here (same scale out as in). The count-split stage, the dose-reduction table and figure and
`spectbone denoise --method` iterate over ``METHODS``; adding a method is one registry entry and one
function.

- raw: the counts themselves.
- gaussian: a Gaussian filter whose width is chosen by count-split validation on splits of the same
  scan made with other seeds than the ones scored (`choose_gaussian_sigma`): no hindsight.
- anscombe_bm3d: Anscombe transform, BM3D with unit noise, exact unbiased inverse (Makitalo & Foi 2011),
  on the body's bounding box (the rest of the frame has no counts).
- emanet_paper: the paper-protocol EMANet as `spectbone denoise` applies it (grey mapping as in
  training, stage-1 level estimate).
- emanet_counts: the count-domain EMANet (the deployable model).
- emanet_finetuned: the count-domain EMANet after self-supervised fine-tuning on the site's own scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import ndimage as ndi

from spectbone.counts.registry import SPECS, MethodSpec
from spectbone.counts.thinning import binomial_split, excess_error_map

GAUSSIAN_SIGMAS = tuple(np.round(np.arange(0.5, 4.01, 0.25), 2))  # px, the validation grid
BBOX_MARGIN = 16  # px of empty frame kept around the body for BM3D


@dataclass
class Context:
    """What methods may use besides the counts: loaded networks, the device, per-case tuned values."""

    device: object = "cpu"
    models: dict = field(default_factory=dict)  # role ("counts", "finetuned", "paper") -> (network, meta)
    estimator: object = None  # the paper-protocol family's stage-1 network
    gaussian_sigma: float | None = None


def _raw(y, ctx):
    return np.asarray(y, np.float32)


def _gaussian(y, ctx):
    if ctx.gaussian_sigma is None:
        raise ValueError("the Gaussian's width is chosen by count-split validation first (choose_gaussian_sigma)")
    return ndi.gaussian_filter(np.asarray(y, np.float64), ctx.gaussian_sigma).astype(np.float32)


def body_box(counts: np.ndarray, margin: int = BBOX_MARGIN) -> tuple[slice, slice]:
    """The bounding box of the non-zero counts plus `margin` (the whole frame when it is empty)."""
    rows, cols = np.nonzero(np.asarray(counts) > 0)
    if not rows.size:
        return slice(None), slice(None)
    h, w = np.shape(counts)
    return (slice(max(rows.min() - margin, 0), min(rows.max() + margin + 1, h)),
            slice(max(cols.min() - margin, 0), min(cols.max() + margin + 1, w)))


def _anscombe_bm3d(y, ctx):
    from spectbone.evaluate.classical import anscombe_bm3d

    y = np.asarray(y, np.float32)
    out = np.zeros_like(y)
    box = body_box(y)
    out[box] = anscombe_bm3d(y[box], 1.0)  # gain 1: the image is counts
    return out


def _emanet_counts(role):
    def apply(y, ctx):
        from spectbone.counts.domain import denoise_frame

        model, meta = ctx.models[role]
        return denoise_frame(model, y, ctx.device, float(meta.get("base_sigma", 0.0)))
    return apply


def _emanet_paper(y, ctx):
    from spectbone.infer.denoise import denoise_counts, training_size

    model, meta = ctx.models["paper"]
    return denoise_counts(y, model, "emanet", ctx.estimator, ctx.device, None, training_size(meta))[0]


@dataclass(frozen=True)
class CountMethod:
    """A registry entry (`registry.MethodSpec`) with the function that runs it: counts -> expected counts."""

    spec: MethodSpec
    apply: Callable[[np.ndarray, Context], np.ndarray]

    def __getattr__(self, name):
        return getattr(self.spec, name)


_RUN = {"raw": _raw, "gaussian": _gaussian, "anscombe_bm3d": _anscombe_bm3d, "emanet_paper": _emanet_paper,
        "emanet_counts": _emanet_counts("counts"), "emanet_finetuned": _emanet_counts("finetuned")}
METHODS: dict[str, CountMethod] = {spec.key: CountMethod(spec, _RUN[spec.key]) for spec in SPECS}


def method(key: str) -> CountMethod:
    try:
        return METHODS[key]
    except KeyError:
        raise ValueError(f"unknown count method {key!r}; one of {', '.join(METHODS)}") from None


def choose_gaussian_sigma(counts: np.ndarray, p: float, seeds, mask: np.ndarray | None = None) -> float:
    """The Gaussian width with the lowest count-split score on splits of `counts` made with `seeds`.

    The scored splits use other seeds, so the width is never chosen on the pixels it is scored on;
    `mask` restricts the validation to part of the frame (e.g. the tiles a fine-tuned model may see)."""
    totals = np.zeros(len(GAUSSIAN_SIGMAS))
    for seed in seeds:
        y1, y2 = binomial_split(counts, p, np.random.default_rng(seed))
        for j, s in enumerate(GAUSSIAN_SIGMAS):
            err = excess_error_map(ndi.gaussian_filter(y1.astype(np.float64), s), y2, p)
            totals[j] += float(err[mask].sum() if mask is not None else err.sum())
    return float(GAUSSIAN_SIGMAS[int(np.argmin(totals))])
