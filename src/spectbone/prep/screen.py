"""Screening: mark the whole-body views a reader would discard, with the reason.

The paper removes "seriously contaminated images" before training (section 3.1) without saying
how. These rules name what a nuclear-medicine reader looks for; each works on the view's
counts and the crop landmarks (`spectbone.prep.crop`):

- **too few counts**: fewer than ``MIN_TOTAL_COUNTS`` counts in the view, or a median body
  pixel below ``MIN_BODY_MEDIAN`` counts (NM1: 3.6 M counts, median 27 per body pixel);
- **truncated field of view**: the crop landmarks cannot be found (no head-to-shoulder width
  jump, no pelvis), or the image starts or stops with a cut edge: the row sums jump from
  nothing to more than ``EDGE_STEP`` of the rows just inside within ``EDGE_ROWS`` rows (a body
  fades in over the scalp and out at the soles; a scan started or stopped mid-body does not),
  or the body runs off the top or bottom border;
- **extravasation** (tracer left at the injection site) and **urine contamination**: a
  compact hot spot (above its local background, a grey opening over ``OPENING_PX`` pixels, by
  ``HOT_EXCESS`` x the body level) holding at least ``MIN_SHARE`` of the view's counts that no
  normal anatomy explains: it is one-sided (less than ``MAX_SYMMETRY`` of it mirrored across
  the body midline, which rules out the bladder, spine, sternum and pubis) and has no partner
  of similar size on the other side (knees, hips, shoulders). Below mid-thigh, where knees and
  feet are hot, it must hold ``MIN_SHARE_LEGS``; over the chest and abdomen, where bone lesions
  are, ``MIN_SHARE_TRUNK``; beside the trunk above the hips, ``MIN_SHARE_ARM``. A spot lateral to the trunk above the hips is
  called extravasation (arm, elbow, hand); any other, urine (groin, thigh, table). The
  bladder (the largest spot low in the pelvis that spans the midline column, its centre within
  ``BLADDER_OFFSET`` of the body width of it; real bladders sit off-centre, NM1's by 12 pixels)
  is never contamination.

Bone lesions are one-sided too; those in the pelvis hold less than 0.3% of the counts each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from spectbone.prep.crop import CropError, Landmarks, body_mask, find_landmarks, smooth

MIN_TOTAL_COUNTS = 500_000
MIN_BODY_MEDIAN = 4.0
OPENING_PX = 45          # background = grey opening with a 45-pixel (10 cm) square
HOT_EXCESS = 1.5         # a hot spot rises this many body levels above its background
MIN_SHARE = 0.003        # ... and holds at least 0.3% of the view's counts
MIN_SHARE_LEGS = 0.015   # below mid-thigh (hot knees, feet) at least 1.5%
MIN_SHARE_TRUNK = 0.02   # over chest and abdomen (hot bone lesions) at least 2%
MIN_SHARE_ARM = 0.01     # beside the trunk above the hips (extravasation) at least 1%
BLADDER_OFFSET = 0.12    # the bladder lies within 12% of the body width of the midline
MAX_SYMMETRY = 0.5       # share of its excess mirrored across the midline (bladder, spine ~1)
EDGE_ROWS = 3            # a cut edge rises within this many rows
EDGE_STEP = 0.6          # ... to this fraction of the rows just inside it
EDGE_WIDE = 0.3          # a cut at the bottom crosses at least 30% of a median body row

EXTRAVASATION = "extravasation"
URINE = "urine"
TRUNCATED = "truncated"
LOW_COUNTS = "low_counts"


@dataclass
class HotSpot:
    row: float
    col: float
    area: int
    share: float          # excess counts / total counts of the view
    symmetry: float       # share of its excess mirrored across the midline (bladder, spine: ~1)
    paired: bool          # a similar spot sits on the other side (knees, hips, shoulders)
    crosses_midline: bool  # its footprint spans the body midline column
    zone: str             # arm (injection side), trunk (chest/abdomen), pelvis_legs (urine)


@dataclass
class Verdict:
    keep: bool
    reason: str = ""
    problem: str = ""                       # one of the constants above, '' when kept
    hot_spots: list[HotSpot] = field(default_factory=list)


def hot_spots(counts: np.ndarray, lm: Landmarks) -> list[HotSpot]:
    """Compact hot regions above the local background, with their share of the counts."""
    counts = np.asarray(counts, dtype=np.float32)
    total = float(counts.sum(dtype=np.float64))
    s = smooth(counts, 1.5)
    excess = np.clip(s - ndi.grey_opening(s, size=(OPENING_PX, OPENING_PX)), 0, None)
    cols = np.arange(counts.shape[1])
    mirror_cols = np.clip(np.round(2 * lm.midline - cols).astype(int), 0, counts.shape[1] - 1)
    mirrored = ndi.maximum_filter(excess[:, mirror_cols], size=7)
    labels, _ = ndi.label(excess > HOT_EXCESS * lm.body_level)
    width = max(lm.right - lm.left, 1)
    length = max(lm.pelvis_bottom - lm.shoulder, 1)
    raw = []
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        fp = labels[sl] == i
        e = float(excess[sl][fp].sum())
        share = e / total if total > 0 else 0.0
        if share < 0.2 * MIN_SHARE:
            continue
        sym = float(np.minimum(excess[sl][fp], mirrored[sl][fp]).sum() / e) if e > 0 else 1.0
        rows, cs = np.nonzero(fp)
        crosses = bool(cs.min() + sl[1].start <= lm.midline <= cs.max() + sl[1].start)
        raw.append([float(rows.mean() + sl[0].start), float(cs.mean() + sl[1].start), int(fp.sum()), share, sym,
                    crosses])
    spots = []
    for row, col, area, share, sym, crosses in raw:
        side = np.sign(col - lm.midline)
        paired = any(np.sign(c2 - lm.midline) == -side and abs(r2 - row) < 0.06 * length
                     and 0.5 <= s2 / share <= 2.0 and abs(abs(c2 - lm.midline) - abs(col - lm.midline)) < 0.15 * width
                     for r2, c2, _, s2, _, _ in raw)
        lateral = abs(col - lm.midline) > 0.3 * width
        if lateral and row <= lm.pelvis_bottom + 0.15 * length:
            zone = "arm"
        elif row < lm.pelvis_bottom - 0.15 * length:
            zone = "trunk"
        else:
            zone = "pelvis_legs"
        spots.append(HotSpot(row=row, col=col, area=area, share=share, symmetry=sym, paired=paired,
                             crosses_midline=crosses, zone=zone))
    return spots


def contamination(spots: list[HotSpot], lm: Landmarks) -> list[HotSpot]:
    """Hot spots no normal anatomy explains: one-sided, off the midline, a sizeable share."""
    length = max(lm.pelvis_bottom - lm.shoulder, 1)
    width = max(lm.right - lm.left, 1)
    # the bladder: the largest spot low in the pelvis that spans the midline (often off-centre)
    pelvic = [h for h in spots if lm.pelvis_bottom - 0.3 * length <= h.row <= lm.pelvis_bottom + 0.05 * length
              and abs(h.col - lm.midline) < BLADDER_OFFSET * width and h.crosses_midline]
    bladder = max(pelvic, key=lambda h: h.share) if pelvic else None
    out = []
    for h in spots:
        if h is bladder:
            continue
        if h.paired or h.symmetry >= MAX_SYMMETRY or h.share < MIN_SHARE:
            continue
        if h.row > lm.pelvis_bottom + 0.5 * length and h.share < MIN_SHARE_LEGS:
            continue  # knees and feet are hot; below mid-thigh only a large spot counts
        if h.zone == "trunk" and h.share < MIN_SHARE_TRUNK:
            continue  # chest and abdomen: bone lesions, not contamination, unless very large
        if h.zone == "arm" and h.share < MIN_SHARE_ARM:
            continue  # beside the trunk: iliac wings, ribs, humeri carry lesions too
        out.append(h)
    return out


def cut_edge(counts: np.ndarray) -> str:
    """'starts' / 'stops' when the body begins or ends with a cut edge, '' otherwise.

    Row sums are compared with the median row sum of the body (rows above 5% of the maximum).
    A cut edge rises to ``EDGE_STEP`` of the rows ``EDGE_ROWS`` inside it at once; at the bottom
    it must also cut through something wide (>= ``EDGE_WIDE`` of the median row), because the
    soles of the feet can end steeply too, but they are narrow."""
    prof = np.asarray(counts, dtype=np.float64).sum(axis=1)
    if prof.max() <= 0:
        return ""
    med = float(np.median(prof[prof > 0.05 * prof.max()]))
    body = np.flatnonzero(prof > 0.05 * med)
    if body.size < 4 * EDGE_ROWS:
        return ""
    first, last, n = int(body[0]), int(body[-1]), prof.size
    inside_top = float(np.mean(prof[first + EDGE_ROWS:first + 2 * EDGE_ROWS]))
    inside_bottom = float(np.mean(prof[last - 2 * EDGE_ROWS + 1:last - EDGE_ROWS + 1]))
    if first == 0 or prof[first] >= EDGE_STEP * inside_top:
        return "starts"
    if last == n - 1 or (prof[last] >= EDGE_STEP * inside_bottom and prof[last] >= EDGE_WIDE * med):
        return "stops"
    return ""


def screen_view(counts: np.ndarray, lm: Landmarks | None = None) -> Verdict:
    """Keep or discard one view, with a reason a reader understands."""
    counts = np.asarray(counts, dtype=np.float32)
    total = float(counts.sum(dtype=np.float64))
    if total < MIN_TOTAL_COUNTS:
        return Verdict(False, f"too few counts: {total:,.0f} in the view (minimum {MIN_TOTAL_COUNTS:,})", LOW_COUNTS)
    if lm is None:
        try:
            lm = find_landmarks(counts)
        except CropError as exc:
            return Verdict(False, f"truncated field of view: {exc}", TRUNCATED)
    body = body_mask(smooth(counts), lm.body_level)
    median_body = float(np.median(counts[body])) if body.any() else 0.0
    if median_body < MIN_BODY_MEDIAN:
        return Verdict(False, f"too few counts: median {median_body:.1f} counts per body pixel "
                              f"(minimum {MIN_BODY_MEDIAN:g})", LOW_COUNTS)
    cut = cut_edge(counts)
    if cut:
        return Verdict(False, f"truncated field of view: the scan {cut} with a straight cut through the body "
                              f"({'head/shoulders' if cut == 'starts' else 'pelvis/legs'} missing)",
                       TRUNCATED)
    if lm.pelvis_bottom >= counts.shape[0] - EDGE_ROWS:
        return Verdict(False, "truncated field of view: the body runs off the bottom border before the pelvis ends",
                       TRUNCATED)
    spots = hot_spots(counts, lm)
    bad = contamination(spots, lm)
    if bad:
        worst = max(bad, key=lambda h: h.share)
        if worst.zone == "arm":
            return Verdict(False, f"extravasation: a one-sided hot focus on the arm side of the trunk "
                                  f"(row {worst.row:.0f}, column {worst.col:.0f}) holds {worst.share:.1%} "
                                  "of the counts", EXTRAVASATION, spots)
        return Verdict(False, f"urine contamination: a one-sided hot spot off the bladder "
                              f"(row {worst.row:.0f}, column {worst.col:.0f}) holds {worst.share:.1%} "
                              "of the counts", URINE, spots)
    return Verdict(True, "", "", spots)
