"""Where the figures' zoom windows go: a lesion, the ribs, the chest; found from the image, not fixed pixels.

Boxes are (row0, row1, col0, col1), half-open, in pixels of the image they were found on. Sizes are
fractions of the image side and positions follow the body outline (shoulder-to-pelvis crop:
the body's top rows are the shoulders, its midline the spine), so they land on the same anatomy
at 64, 128 or 256 pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from spectbone.prep.crop import body_mask

Box = tuple[int, int, int, int]
ZOOM_FRACTION = 0.25  # side of a zoom window / image side
RIBS_ROW = 0.27  # centre of the ribs window, as a fraction of the body's height from its top (upper chest)
RIBS_LATERAL = 0.45  # centre of the ribs window, as a fraction of the chest's half-width out from the midline
CHEST_ROWS = (0.03, 0.50)  # the chest, as fractions of the body's height (Fig. 13)


def square(centre_row: float, centre_col: float, side: int, shape) -> Box:
    """A side x side box centred as near (row, col) as the image allows."""
    h, w = shape
    side = min(side, h, w)
    r0 = int(np.clip(round(centre_row - side / 2), 0, h - side))
    c0 = int(np.clip(round(centre_col - side / 2), 0, w - side))
    return r0, r0 + side, c0, c0 + side


def zoom_side(shape) -> int:
    return max(8, int(round(ZOOM_FRACTION * min(shape))))


def body_geometry(image: np.ndarray) -> tuple[int, int, float, float]:
    """(top row, bottom row, midline column, chest half-width) of the body outline."""
    side = min(image.shape)
    mask = body_mask(ndi.gaussian_filter(np.asarray(image, np.float64), max(1.0, side / 64)))
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        h, w = image.shape
        return 0, h, w / 2, w / 4
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    chest = mask[top + int(0.15 * (bottom - top)):top + int(0.45 * (bottom - top))]
    chest = chest[chest.any(axis=1)]
    cols = np.arange(mask.shape[1])
    left = np.array([cols[r].min() for r in chest])
    right = np.array([cols[r].max() for r in chest])
    midline = float(np.median((left + right) / 2))
    half_width = float(np.median((right - left) / 2))
    return top, bottom, midline, half_width


def lesion_box(lesions: np.ndarray) -> Box | None:
    """A zoom window centred on the largest lesion of the mask (None when there is none)."""
    labels, n = ndi.label(np.asarray(lesions) > 0)
    if n == 0:
        return None
    sizes = ndi.sum(np.ones_like(labels), labels, index=np.arange(1, n + 1))
    r, c = ndi.center_of_mass(labels == int(np.argmax(sizes)) + 1)
    return square(r, c, zoom_side(lesions.shape), lesions.shape)


def hottest_box(image: np.ndarray) -> Box:
    """Fallback for images without lesion masks: the hottest focus of the chest (above the bladder)."""
    top, bottom, _, _ = body_geometry(image)
    chest = np.zeros(image.shape, bool)
    chest[top:top + int(0.6 * (bottom - top))] = True
    smooth = ndi.gaussian_filter(np.asarray(image, np.float64), 1.0)
    r, c = np.unravel_index(np.argmax(np.where(chest, smooth, -np.inf)), image.shape)
    return square(r, c, zoom_side(image.shape), image.shape)


def ribs_box(image: np.ndarray, avoid: Box | None = None) -> Box:
    """A window on the ribs: upper chest, half-way from the spine to the body edge, on the side away from `avoid`."""
    top, bottom, midline, half_width = body_geometry(image)
    row = top + RIBS_ROW * (bottom - top)
    sides = [midline - RIBS_LATERAL * half_width, midline + RIBS_LATERAL * half_width]
    if avoid is not None:
        avoid_col = (avoid[2] + avoid[3]) / 2
        sides.sort(key=lambda col: -abs(col - avoid_col))
    return square(row, sides[0], zoom_side(image.shape), image.shape)


def chest_box(image: np.ndarray) -> Box:
    """The chest, shoulders to the lower ribs, across the body (the paper's Fig. 13 window)."""
    top, bottom, midline, half_width = body_geometry(image)
    h, w = image.shape
    r0, r1 = (int(round(top + f * (bottom - top))) for f in CHEST_ROWS)
    c0, c1 = int(max(0, midline - 1.1 * half_width)), int(min(w, midline + 1.1 * half_width + 1))
    return max(0, r0), min(h, r1), c0, c1


def shown_index(lesions: np.ndarray | None, image_ids=None) -> int:
    """The test image the figures show: the anterior view with the largest lesion (the first image without masks)."""
    if lesions is None or not np.asarray(lesions).any():
        return 0
    area = np.asarray(lesions).reshape(len(lesions), -1).sum(axis=1).astype(float)
    if image_ids is not None:
        anterior = np.array([str(i).upper().endswith("ANT") for i in image_ids])
        if (anterior & (area > 0)).any():
            area = np.where(anterior, area, -1)
    return int(np.argmax(area))
