"""Paired bootstrap estimates and three-way verdicts: how the claims check decides.

Why: a claim such as "EMANet beats BM3D" is about test images in general, and a difference of two
means over a few dozen images can flip with the next draw of images. A verdict must say when the
data cannot tell.

The rule:

- Resampling. The test images (image ids) are drawn with replacement B times (`evaluation.bootstrap`,
  2000 when unset; seeded from the config seed). Every quantity a claim compares (a mean PSNR, an RMSE
  over images, a pooled IoU) is recomputed on each resample, with the *same* resamples for every
  method: a difference of two methods is paired, so how hard an image is cancels out of it.
- Interval. A comparison "d > t" (or "d < t") gets the 95% percentile interval [lo, hi] of d over the
  B resamples.
- Verdict of one comparison. `holds` when the interval lies entirely on the claimed side of t,
  `does not hold` when it lies entirely on the other side, `inconclusive` when it contains t.
- Compound claims (an ordering a < b < c, "at every level", "for every model"): `holds` when every
  comparison holds, `does not hold` when any comparison does not hold, else `inconclusive`.
- Counting claims ("best at >= k of L levels"): with h levels that hold and f that do not, `holds`
  when h >= k, `does not hold` when L - f < k (even every undecided level would not reach k), else
  `inconclusive`.
- Point values only (a table of means, such as the paper's own tables): each comparison is judged
  on the point value, `holds` or `does not hold`, and its interval is labelled as missing.

Intervals are per comparison, not simultaneous: a compound claim that holds had every one of its
intervals on the claimed side (conservative), while one comparison outside its interval suffices
to reject (liberal when a claim has many comparisons). With a handful of test images the
percentile interval is too narrow; the claims table says how many images it used.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spectbone.evaluate.metrics import bootstrap_indices

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
ALPHA = 0.05
DEFAULT_BOOTSTRAP = 2000


@dataclass(frozen=True)
class Estimate:
    """A quantity's value on the data (point) and on each bootstrap resample (samples; None: no data)."""

    point: float
    samples: np.ndarray | None = None

    def _op(self, other, op) -> Estimate:
        if isinstance(other, Estimate):
            if (self.samples is None) != (other.samples is None):
                raise ValueError("cannot combine a bootstrapped estimate with a point value")
            samples = None if self.samples is None else op(self.samples, other.samples)
            return Estimate(float(op(self.point, other.point)), samples)
        return Estimate(float(op(self.point, other)), None if self.samples is None else op(self.samples, other))

    def __add__(self, other):
        return self._op(other, operator.add)

    def __radd__(self, other):
        return self._op(other, operator.add)

    def __sub__(self, other):
        return self._op(other, operator.sub)

    def __rsub__(self, other):
        return Estimate(float(other - self.point), None if self.samples is None else other - self.samples)

    def __mul__(self, other):
        return self._op(other, operator.mul)

    def __rmul__(self, other):
        return self._op(other, operator.mul)

    def __truediv__(self, other):
        return self._op(other, _safe_divide)

    def __neg__(self):
        return Estimate(-self.point, None if self.samples is None else -self.samples)

    def apply(self, fn) -> Estimate:
        return Estimate(float(fn(self.point)), None if self.samples is None else fn(self.samples))

    def interval(self, alpha: float = ALPHA) -> tuple[float, float] | None:
        """The (1 - alpha) percentile interval over the resamples; None for a point value."""
        if self.samples is None:
            return None
        s = np.asarray(self.samples, dtype=np.float64)
        s = s[np.isfinite(s)]
        if s.size == 0:
            return math.nan, math.nan
        lo, hi = np.quantile(s, [alpha / 2, 1 - alpha / 2])
        return float(lo), float(hi)


def _safe_divide(a, b):
    """a / b with 0 where b is 0 (a pooled ratio of empty counts, as `segmentation_scores` does)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(b != 0, a / np.where(b != 0, b, 1.0), 0.0)
    return float(out) if out.ndim == 0 else out


def _reduce(estimates, fn) -> Estimate:
    estimates = list(estimates)
    if any((e.samples is None) != (estimates[0].samples is None) for e in estimates):
        raise ValueError("cannot combine a bootstrapped estimate with a point value")
    samples = None if estimates[0].samples is None else fn(np.stack([e.samples for e in estimates]), axis=0)
    return Estimate(float(fn([e.point for e in estimates])), samples)


def maximum(estimates) -> Estimate:
    """Resample by resample maximum (e.g. the best competitor on each resample)."""
    return _reduce(estimates, np.max)


def mean(estimates) -> Estimate:
    return _reduce(estimates, np.mean)


def point(value: float) -> Estimate:
    return Estimate(float(value))


class Resampler:
    """B resamples of a set of units (test images, noise draws), drawn once and shared: the pairing."""

    def __init__(self, ids, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0):
        self.ids = pd.Index(sorted({str(i) for i in ids}))
        n = len(self.ids)
        self.n_boot = int(n_boot)
        self.weights = None
        if n >= 2:  # one unit has no spread to resample
            idx = bootstrap_indices(n, self.n_boot, seed)
            self.weights = np.zeros((self.n_boot, n))
            np.add.at(self.weights, (np.arange(self.n_boot)[:, None], idx), 1.0)

    def __len__(self):
        return len(self.ids)

    def _align(self, values: pd.Series) -> np.ndarray:
        v = values.copy()
        v.index = v.index.astype(str)
        if v.index.duplicated().any():
            raise ValueError("one value per unit expected")
        v = v.reindex(self.ids).to_numpy(dtype=np.float64)
        if not np.isfinite(v).all():
            raise ValueError(f"{int((~np.isfinite(v)).sum())} of {len(v)} units have no finite value")
        return v

    def mean(self, values: pd.Series) -> Estimate:
        """Mean over units of values indexed by unit id."""
        v = self._align(values)
        return Estimate(float(v.mean()), None if self.weights is None else self.weights @ v / len(v))

    def total(self, values: pd.Series) -> Estimate:
        """Sum over units (pooled counts)."""
        v = self._align(values)
        return Estimate(float(v.sum()), None if self.weights is None else self.weights @ v)


@dataclass(frozen=True)
class Comparison:
    """One claimed inequality: estimate `side` threshold, side '>' or '<'."""

    label: str
    estimate: Estimate
    side: str = ">"
    threshold: float = 0.0

    @property
    def verdict(self) -> str:
        iv = self.estimate.interval()
        if iv is None:
            value = self.estimate.point
            ok = value > self.threshold if self.side == ">" else value < self.threshold
            return HOLDS if ok else FAILS
        lo, hi = iv
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return INCONCLUSIVE
        above, below = lo > self.threshold, hi < self.threshold
        if self.side == ">":
            return HOLDS if above else FAILS if below else INCONCLUSIVE
        return HOLDS if below else FAILS if above else INCONCLUSIVE

    def value_text(self) -> str:
        return f"{self.label} {self.estimate.point:.3g}"

    def interval_text(self) -> str:
        iv = self.estimate.interval()
        return f"{self.label} [{iv[0]:.3g}, {iv[1]:.3g}]" if iv else ""


def all_hold(verdicts) -> str:
    """Compound claim: every part must hold; one part that does not hold sinks it."""
    verdicts = list(verdicts)
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return FAILS if FAILS in verdicts else INCONCLUSIVE


def at_least(k: int, verdicts) -> str:
    """Counting claim: at least k of the parts hold."""
    verdicts = list(verdicts)
    held, failed = verdicts.count(HOLDS), verdicts.count(FAILS)
    if held >= k:
        return HOLDS
    return FAILS if len(verdicts) - failed < k else INCONCLUSIVE


def tally(comparisons) -> str:
    """'n hold, m do not, r inconclusive' of a list of comparisons."""
    v = [c.verdict for c in comparisons]
    parts = [f"{v.count(HOLDS)} hold", f"{v.count(FAILS)} do not"]
    if v.count(INCONCLUSIVE):
        parts.append(f"{v.count(INCONCLUSIVE)} inconclusive")
    return ", ".join(parts)


def decisive_first(comparisons, limit: int) -> list[Comparison]:
    """The comparisons a reader should see: all of them if few, else those that decide the verdict."""
    comparisons = list(comparisons)
    if len(comparisons) <= limit:
        return comparisons
    rank = {FAILS: 0, INCONCLUSIVE: 1, HOLDS: 2}
    return sorted(comparisons, key=lambda c: rank[c.verdict])[:limit]


@dataclass(frozen=True)
class Judgement:
    """What the claims table prints for one claim against one reference."""

    evidence: str
    interval: str
    verdict: str


def judge(comparisons, verdict: str, headline: str = "", point_label: str = "", limit: int = 8) -> Judgement:
    """Evidence (point values of the differences), their intervals, and the verdict."""
    comparisons = list(comparisons)
    shown = decisive_first(comparisons, limit)
    more = f" ... (+{len(comparisons) - len(shown)} more)" if len(shown) < len(comparisons) else ""
    values = "; ".join(c.value_text() for c in shown) + more
    evidence = f"{headline}. {values}" if headline else values
    if len(comparisons) > 1:
        evidence += f" ({tally(comparisons)})"
    bootstrapped = comparisons and comparisons[0].estimate.samples is not None
    interval = "; ".join(c.interval_text() for c in shown) + more if bootstrapped else point_label
    return Judgement(evidence, interval, verdict)
