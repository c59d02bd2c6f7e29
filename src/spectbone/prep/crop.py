"""Automatic shoulder-to-pelvis crop of a whole-body bone-scan view, resize and grey mapping.

The paper (section 3.1) turns each DICOM view into a grey image, crops "the shoulder to pelvis
region" automatically to raise the signal-to-noise ratio, and feeds 256x256 images to the
networks. It does not say how; this module does the following.

Landmarks (all on the view smoothed with a Gaussian, sigma ``SMOOTH_SIGMA`` pixels):

1. *Body mask*: pixels above ``BODY_FRACTION`` of the robust body level (the median of the
   smoothed counts over pixels brighter than 10% of the 99th percentile), i.e. soft tissue
   against the near-empty background; holes filled, specks (< 2% of the body) dropped.
2. *Head top / feet*: first and last rows whose body width is at least ``MIN_WIDTH_PX``.
3. *Shoulders*: going down from the head, the first row whose body width (outline span,
   arms included) crosses halfway from the head width to the upper-trunk width: the width
   jump where the neck meets the shoulders.
4. *Pelvis bottom*: the bottom of the ischia, placed ``CROTCH_TO_ISCHIA`` (3%) of the
   shoulder-to-crotch length above the crotch. The crotch is the first row below the hips
   where the soft tissue between the thighs ends (the darkest pixel near the midline falls
   below ``GAP_RATIO`` x the body level for 8 rows, with thighs on both sides). If the thighs
   never separate, the row where the pelvic activity (bladder, pelvic bones, femoral heads)
   falls halfway back to the thigh level is used.
5. *Left / right*: the body outline over the rows between shoulders and pelvis bottom.

Orientation (`orient_view`, before the landmarks): the landmarks assume rows run head -> feet.
`head_end` asks the image which end of the body holds the head: the neck-to-shoulder width jump
of step 3 shows at the head end but not at the feet, and the counts and the outline area lie
mostly in the head half (skull, trunk, arms against two legs). The neck decides when at least one
of the two mass measures agrees and neither disagrees (the halves mislead on a scan cut short,
which has no neck to find either); otherwise the header decides (PatientOrientation /
PatientPosition FF* / patient-gantry codes, `spectbone.dicom.series.header_orientation`), and
with neither the view is taken as stored. A feet-first view is flipped vertically. The image
overrules the header because cameras often display a feet-first acquisition head-up already.
Left-right mirroring cannot be read off a bone scan cheaply; only the header's PatientOrientation
says so (`spectbone.dicom.series.header_mirrored`), and `spectbone preprocess` follows it.

The box is then resized, anisotropically, to ``size`` x ``size`` (bilinear with
anti-aliasing: values stay counts per original pixel).

Grey mapping ("normalised to grey"): ``counts_per_grey = P99.5 / 255``, where P99.5 is the
99.5th percentile of the resized cropped counts; ``grey = clip(counts / counts_per_grey, 0,
255)`` as float32 (not rounded). The same factor maps a noiseless truth image of the same view
onto the same grey scale, and ``grey * counts_per_grey`` goes back to counts (except for the
0.5% brightest pixels, which saturate at 255 as on a reading screen).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

SMOOTH_SIGMA = 3.0
BODY_FRACTION = 0.25
MIN_WIDTH_PX = 6
GAP_RATIO = 0.5
CROTCH_TO_ISCHIA = 0.03
GREY_PERCENTILE = 99.5
GREY_MAX = 255.0


class CropError(Exception):
    """The landmarks could not be found; ``str(exc)`` says which and why."""


@dataclass
class Landmarks:
    head_top: int          # first body row
    feet: int              # last body row
    shoulder: int          # first trunk row below the neck
    pelvis_bottom: int     # crotch row (exclusive end of the crop)
    left: int              # first body column in the crop rows
    right: int             # last body column + 1
    midline: float         # body centre column
    body_level: float      # robust body counts level (smoothed)
    crotch_found: bool     # thighs separate (False: fell back to the activity profile)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CropBox:
    top: int
    bottom: int   # exclusive
    left: int
    right: int    # exclusive

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def iou(self, other: "CropBox") -> float:
        h = max(0, min(self.bottom, other.bottom) - max(self.top, other.top))
        w = max(0, min(self.right, other.right) - max(self.left, other.left))
        inter = h * w
        union = self.height * self.width + other.height * other.width - inter
        return inter / union if union > 0 else 0.0


def smooth(counts: np.ndarray, sigma: float = SMOOTH_SIGMA) -> np.ndarray:
    return ndi.gaussian_filter(np.asarray(counts, dtype=np.float32), sigma)


def body_level(smoothed: np.ndarray) -> float:
    """Median smoothed counts over the body (pixels above 10% of the 99th percentile)."""
    p99 = float(np.percentile(smoothed, 99))
    if p99 <= 0:
        return 0.0
    return float(np.median(smoothed[smoothed > 0.1 * p99]))


def body_mask(smoothed: np.ndarray, level: float | None = None) -> np.ndarray:
    level = body_level(smoothed) if level is None else level
    if level <= 0:
        return np.zeros(smoothed.shape, dtype=bool)
    mask = smoothed > BODY_FRACTION * level
    labels, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = ndi.sum(mask, labels, index=np.arange(1, n + 1))
    keep = np.flatnonzero(sizes >= 0.02 * sizes.max()) + 1
    mask = np.isin(labels, keep)
    return ndi.binary_fill_holes(mask)


def _outline_width(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: leftmost column, rightmost column + 1, and span width (0 where empty)."""
    any_row = mask.any(axis=1)
    first = np.where(any_row, mask.argmax(axis=1), 0)
    last = np.where(any_row, mask.shape[1] - mask[:, ::-1].argmax(axis=1), 0)
    return first, last, (last - first) * any_row


def _runs(flags: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    out, start = [], None
    for i, f in enumerate(list(flags) + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            if i - start >= min_len:
                out.append((start, i))
            start = None
    return out


def find_landmarks(counts: np.ndarray) -> Landmarks:
    """Landmarks of one whole-body view (rows = head to feet). Raises CropError."""
    counts = np.asarray(counts, dtype=np.float32)
    if counts.ndim != 2 or min(counts.shape) < 32:
        raise CropError(f"image of shape {counts.shape} is not a whole-body view")
    s = smooth(counts)
    level = body_level(s)
    if level <= 0:
        raise CropError("the image holds no counts")
    mask = body_mask(s, level)
    first, last, width = _outline_width(mask)
    body_rows = np.flatnonzero(width >= MIN_WIDTH_PX)
    if body_rows.size < 0.2 * counts.shape[0]:
        raise CropError("no body outline found (body shorter than 20% of the field of view)")
    head_top, feet = int(body_rows[0]), int(body_rows[-1])
    length = feet - head_top + 1
    wsm = ndi.uniform_filter1d(width.astype(float), 5)

    # shoulders: width jump from the head to the upper trunk
    head_rows = slice(head_top + int(0.02 * length), head_top + int(0.08 * length) + 1)
    trunk_rows = slice(head_top + int(0.20 * length), head_top + int(0.35 * length) + 1)
    head_w = float(np.median(wsm[head_rows]))
    trunk_w = float(np.median(wsm[trunk_rows]))
    if trunk_w < 1.4 * head_w:
        raise CropError(
            f"no neck-to-shoulder width jump (head {head_w:.0f} px, trunk {trunk_w:.0f} px wide): "
            "head missing from the field of view or not a whole-body view"
        )
    half = head_w + 0.5 * (trunk_w - head_w)
    search = np.arange(head_top + int(0.03 * length), trunk_rows.stop)
    above = search[wsm[search] >= half]
    if above.size == 0:
        raise CropError("shoulders not found")
    shoulder = int(above[0])

    # midline: centre of the body outline over the trunk
    trunk_mid = 0.5 * (first[trunk_rows] + last[trunk_rows])
    midline = float(np.median(trunk_mid))

    # pelvis bottom: the crotch, first row below the hips where the thighs separate
    crotch = _find_crotch(s, level, midline, start=shoulder + int(0.30 * length), stop=feet - int(0.05 * length))
    crotch_found = crotch is not None
    if crotch is None:
        crotch = _pelvis_activity_bottom(s, mask, shoulder, length, feet)
    if crotch is None or crotch - shoulder < 0.15 * length:
        raise CropError("pelvis bottom not found (thighs never separate, pelvic activity profile flat)")
    # the ischial tuberosities lie just above the crotch (CROTCH_TO_ISCHIA of the trunk length)
    pelvis_bottom = int(round(crotch - CROTCH_TO_ISCHIA * (crotch - shoulder))) if crotch_found else int(crotch)

    rows = slice(shoulder, pelvis_bottom)
    cols = np.flatnonzero(mask[rows].sum(axis=0) >= max(3, 0.05 * (pelvis_bottom - shoulder)))
    if cols.size == 0:
        raise CropError("no body columns between shoulders and pelvis")
    return Landmarks(head_top=head_top, feet=feet, shoulder=shoulder, pelvis_bottom=pelvis_bottom,
                     left=int(cols[0]), right=int(cols[-1]) + 1, midline=midline, body_level=level,
                     crotch_found=crotch_found)


def _find_crotch(s: np.ndarray, level: float, midline: float, start: int, stop: int) -> int | None:
    """First row (from `start`) where the soft tissue between the thighs ends: the darkest
    pixel near the midline falls below GAP_RATIO x the body level for 8 consecutive rows,
    with body on both sides of it."""
    n_cols = s.shape[1]
    c = int(round(midline))
    win = max(8, n_cols // 12)          # where the gap may lie, either side of the midline
    reach = max(20, n_cols // 4)        # how far out the thighs are looked for
    gap = np.zeros(s.shape[0], dtype=bool)
    lo, hi = max(c - win, 1), min(c + win, n_cols - 1)
    for r in range(max(start, 0), min(stop, s.shape[0])):
        row = s[r]
        g = lo + int(np.argmin(row[lo:hi]))
        left = row[max(g - reach, 0):g]
        right = row[g + 1:g + 1 + reach]
        if left.size == 0 or right.size == 0:
            continue
        thigh = min(left.max(), right.max())
        gap[r] = row[g] < GAP_RATIO * level and thigh > level
    for a, _ in _runs(gap, 8):
        return a
    return None


def _pelvis_activity_bottom(s, mask, shoulder, length, feet) -> int | None:
    """Fallback: below the peak of pelvic activity, the row where the row-mean activity of the
    body falls halfway from the pelvic peak to the thigh level."""
    prof = (s * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
    lo, hi = shoulder + int(0.25 * length), min(shoulder + int(0.50 * length), feet)
    if hi - lo < 10:
        return None
    peak = lo + int(np.argmax(prof[lo:hi]))
    thigh_rows = slice(min(peak + int(0.12 * length), feet), min(peak + int(0.25 * length), feet))
    if thigh_rows.stop - thigh_rows.start < 5:
        return None
    thigh = float(np.median(prof[thigh_rows]))
    target = thigh + 0.5 * (prof[peak] - thigh)
    below = np.flatnonzero(prof[peak:thigh_rows.start] < target)
    return int(peak + below[0]) if below.size else None


HEAD_FIRST, FEET_FIRST_FLIPPED = "head_first", "feet_first_flipped"
COUNT_SHARE = 0.58   # share of body counts in the head half (clean views 0.67-0.75, NM1 0.73)
AREA_SHARE = 0.55    # share of body outline area in the head half (0.60-0.70)
NECK_JUMP = 1.4      # trunk / head width at the head end (2.8-3.0; feet end 1.0-1.45)


@dataclass
class HeadEnd:
    end: str   # "top", "bottom" or "" (the image cannot tell)
    why: str


def head_end(counts: np.ndarray) -> HeadEnd:
    """Which end of the body (rows) holds the head, from the image alone (see the module docstring)."""
    counts = np.asarray(counts, dtype=np.float32)
    if counts.ndim != 2 or min(counts.shape) < 32:
        return HeadEnd("", f"image of shape {counts.shape} is not a whole-body view")
    s = smooth(counts)
    level = body_level(s)
    if level <= 0:
        return HeadEnd("", "the image holds no counts")
    mask = body_mask(s, level)
    _, _, width = _outline_width(mask)
    body_rows = np.flatnonzero(width >= MIN_WIDTH_PX)
    if body_rows.size < 0.2 * counts.shape[0]:
        return HeadEnd("", "no body outline")
    top, bottom = int(body_rows[0]), int(body_rows[-1])
    length = bottom - top + 1
    mid = top + length // 2
    body = s * mask
    count_share = float(body[top:mid].sum() / max(body[top:bottom + 1].sum(), 1e-12))
    area_share = float(mask[top:mid].sum() / max(mask[top:bottom + 1].sum(), 1))
    wsm = ndi.uniform_filter1d(width.astype(float), 5)

    def jump(rows_head: np.ndarray, rows_trunk: np.ndarray) -> float:
        return float(np.median(wsm[rows_trunk]) / max(np.median(wsm[rows_head]), 1.0))

    def off(fraction: float) -> int:
        return int(fraction * length)

    jump_top = jump(np.arange(top + off(0.02), top + off(0.08) + 1), np.arange(top + off(0.20), top + off(0.35) + 1))
    jump_bottom = jump(np.arange(bottom - off(0.08), bottom - off(0.02) + 1),
                       np.arange(bottom - off(0.35), bottom - off(0.20) + 1))
    mass = {"top": 0, "bottom": 0}
    if count_share > COUNT_SHARE:
        mass["top"] += 1
    elif count_share < 1 - COUNT_SHARE:
        mass["bottom"] += 1
    if area_share > AREA_SHARE:
        mass["top"] += 1
    elif area_share < 1 - AREA_SHARE:
        mass["bottom"] += 1
    hi, lo = max(jump_top, jump_bottom), min(jump_top, jump_bottom)
    neck = ("top" if jump_top > jump_bottom else "bottom") if hi >= NECK_JUMP and hi >= 1.3 * lo else ""
    why = (f"counts in the upper half {count_share:.2f}, outline area {area_share:.2f}, neck-to-shoulder "
           f"width jump {jump_top:.2f} at the top vs {jump_bottom:.2f} at the bottom")
    # the halves only mean head/legs on a whole body: without a neck (head cut off, legs cut short)
    # the image is not asked; with one, the mass of the body must not say otherwise
    if neck:
        other = "bottom" if neck == "top" else "top"
        if mass[neck] >= 1 and mass[other] == 0:
            return HeadEnd(neck, why)
    return HeadEnd("", why)


def orient_view(counts: np.ndarray, header: str = "") -> tuple[np.ndarray, str, str, str]:
    """Rows head -> feet: returns (counts, orientation, source, why).

    `header` is what the DICOM header says (``head_first``, ``feet_first`` or ''); orientation is
    ``head_first`` or ``feet_first_flipped``; source is ``from_header_and_image``, ``from_image``,
    ``from_header`` or ``assumed`` (nothing said: taken as stored)."""
    found = head_end(counts)
    if found.end:
        flip = found.end == "bottom"
        image_says = "feet_first" if flip else "head_first"
        if header == image_says:
            source = "from_header_and_image"
        else:
            source = "from_image"
        why = found.why + (f"; the header said {header}, the image overrules it" if header and header != image_says
                           else "")
    elif header in ("head_first", "feet_first"):
        flip, source, why = header == "feet_first", "from_header", f"image undecided ({found.why})"
    else:
        flip, source, why = False, "assumed", f"image undecided ({found.why}), header silent: taken as stored"
    if flip:
        return np.ascontiguousarray(np.asarray(counts)[::-1]), FEET_FIRST_FLIPPED, source, why
    return np.asarray(counts), HEAD_FIRST, source, why


def find_crop_box(counts: np.ndarray) -> tuple[CropBox, Landmarks]:
    lm = find_landmarks(counts)
    return CropBox(top=lm.shoulder, bottom=lm.pelvis_bottom, left=lm.left, right=lm.right), lm


def crop_resize(image: np.ndarray, box: CropBox, size: int = 256) -> np.ndarray:
    """Crop then resize (anisotropically) to size x size; bilinear with anti-aliasing."""
    from skimage.transform import resize

    patch = np.asarray(image, dtype=np.float32)[box.slices()]
    return resize(patch, (size, size), order=1, anti_aliasing=True, preserve_range=True,
                  mode="edge").astype(np.float32)


def crop_resize_mask(mask: np.ndarray, box: CropBox, size: int = 256) -> np.ndarray:
    """A label mask through the same crop/resize: a pixel is in when > 50% of its area is."""
    return crop_resize(np.asarray(mask, dtype=np.float32) > 0, box, size) > 0.5


def counts_per_grey(resized_counts: np.ndarray, percentile: float = GREY_PERCENTILE) -> float:
    scale = float(np.percentile(resized_counts, percentile))
    if not np.isfinite(scale) or scale <= 0:
        raise CropError("the cropped image has no counts to map to grey")
    return scale / GREY_MAX


def to_grey(resized_counts: np.ndarray, cpg: float) -> np.ndarray:
    return np.clip(np.asarray(resized_counts, dtype=np.float32) / np.float32(cpg), 0.0, GREY_MAX).astype(np.float32)


def view_counts_per_grey(counts: np.ndarray, box: CropBox, size: int) -> tuple[np.ndarray, float]:
    """(resized crop, counts_per_grey) of a view: the one rule mapping counts to grey, shared by
    preprocessing (the training images) and `spectbone denoise`, so the networks always see the
    grey scale they were trained on. Raises CropError when the crop holds no counts."""
    resized = crop_resize(counts, box, size)
    return resized, counts_per_grey(resized)


def preprocess_view(counts: np.ndarray, size: int = 256):
    """Crop, resize and grey-map one view: returns (grey, box, counts_per_grey, landmarks)."""
    box, lm = find_crop_box(counts)
    resized, cpg = view_counts_per_grey(counts, box, size)
    return to_grey(resized, cpg), box, cpg, lm
