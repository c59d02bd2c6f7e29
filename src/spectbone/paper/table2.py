"""Table 2 (paper section 2.1): how much added noise makes a low-noise scan look like a high-noise one.

The paper takes two scans of matched brightness and contrast, one low-noise and one high-noise,
adds noise of rising level to the low-noise one and reports the SSIM of a noise region against the
high-noise scan; the level where SSIM peaks is read as the real noise level. Here:

- pair: among the kept images of one view, the most and the fewest median counts per body pixel
  (the least and the most noisy soft tissue); the view with the widest ratio;
- intensities: the low-noise image is scaled so that its region mean equals the high-noise
  image's (the preprocessing already maps both to the same grey range);
- region: the paper gives no size; a square of REGION_FRACTION of the image side (51 px of the
  paper's 256), on abdominal soft tissue inside the body of both images, where they have the least
  detail, so it holds noise, not bone;
- draws: `table2_draws` noise draws per level; mean and SD over draws;
- the caption is computed from the numbers (where SSIM peaks, whether it rises then falls).

What to expect: per window, SSIM is luminance x (2 cov + C2) / (var_a + var_b + C2). Noise
drawn independently of the high-noise image leaves the means and (on average) the covariance as
they were and adds to var_a, so where the two regions co-vary positively SSIM can only fall with
level, and where they co-vary negatively (anatomy out of step) it can only climb towards zero. A
rise then fall like the paper's needs more than zero-mean added noise (a re-normalisation of the
noised image, say); the caption reports what our numbers do, and the noise_sd column says at
which level the added noise matches the high-noise image's.

Fig. 7 shows this pair and region (`load_pair`, `peak_level`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from spectbone.evaluate.metrics import noise_region_ssim
from spectbone.evaluate.rule import SCORING_RULE, as_scored
from spectbone.noise.augment import load_images, parse_levels
from spectbone.noise.poisson import add_poisson_level_noise, noise_seed
from spectbone.paper import values as paper
from spectbone.paper.zooms import body_geometry
from spectbone.prep.crop import body_mask
from spectbone.util.outputs import data_source_note, truthy

REGION_FRACTION = 0.2  # side of the noise region / image side (the paper does not say; see module docstring)
ANATOMY_SCALE = 0.01  # finest anatomy the region search sees / image side: about a rib's width
ABDOMEN = (0.5, 0.8)  # rows of the abdomen, as fractions of the body's height from its top (shoulders)
BACKGROUND_SCALE = 0.05  # soft-tissue gradients slower than this (/ image side) do not count as detail
DRAW_TAG = -4  # noise_seed's epoch tag for Table 2's draws (test set -1, validation -2)
DEFAULT_DRAWS = 20


@dataclass(frozen=True)
class NoisePair:
    """The low-noise image (scaled to the high-noise one's region mean), the high-noise image, the region."""

    low_id: str
    high_id: str
    view: str
    low: np.ndarray
    high: np.ndarray
    box: tuple[int, int, int, int]  # (row0, row1, col0, col1), half-open
    scale: float  # factor applied to the low-noise image
    body_counts: tuple[float, float]  # median counts per body pixel (low, high)


def body_counts(image: np.ndarray, counts_per_grey: float) -> float:
    """Median counts per body pixel: what sets an image's relative Poisson noise in soft tissue."""
    inside = body_mask(ndi.gaussian_filter(np.asarray(image, np.float64), 1.0))
    return float(np.median(image[inside]) * counts_per_grey) if inside.any() else 0.0


def select_pair(preprocess_csv: str | Path) -> tuple[str, str, str, float, float]:
    """(low_id, high_id, view, low counts, high counts): the kept images of one view with the most and
    the fewest median counts per body pixel, in the view where that ratio is widest.

    Counts, not counts per grey level: once intensities are matched, the relative noise of the soft
    tissue is what separates a low-noise from a high-noise scan, and it goes as 1 / sqrt(counts)."""
    pre = pd.read_csv(preprocess_csv, keep_default_na=False)
    kept = pre[pre["keep"].map(truthy)].copy()
    folder = Path(preprocess_csv).parent  # one image in memory at a time: the paper's cohort has 310
    kept["body_counts"] = [body_counts(load_images(folder, [image_id])[0], float(c))
                           for image_id, c in zip(kept["image_id"], kept["counts_per_grey"])]
    best = None
    for view, group in kept.groupby("view", sort=True):
        if len(group) < 2:
            continue
        group = group.sort_values("body_counts")
        lo, hi = group.iloc[-1], group.iloc[0]
        ratio = lo["body_counts"] / max(hi["body_counts"], 1e-9)
        if best is None or ratio > best[0]:
            best = (ratio, lo["image_id"], hi["image_id"], view, lo["body_counts"], hi["body_counts"])
    if best is None:
        raise ValueError("Table 2 needs two kept images of one view")
    return best[1], best[2], best[3], float(best[4]), float(best[5])


def region_side(shape) -> int:
    return max(7, int(round(REGION_FRACTION * min(shape))))


def abdomen_rows(image: np.ndarray) -> tuple[float, float]:
    """Rows of the abdomen (ABDOMEN of the body's height): below the rib cage, above the pelvis."""
    top, bottom, _, _ = body_geometry(image)
    return top + ABDOMEN[0] * (bottom - top), top + ABDOMEN[1] * (bottom - top)


def noise_region_box(low: np.ndarray, high: np.ndarray) -> tuple[int, int, int, int]:
    """The square of abdominal soft tissue, inside the body of both images, with the least detail in both.

    The abdomen beside the lumbar spine holds no bone, so there the two scans differ by noise,
    not by anatomy (over the ribs, two patients' ribs fall out of step and SSIM goes negative).
    Detail is a band-pass (Gaussian at ANATOMY_SCALE of the side, about a rib's width, minus one at
    BACKGROUND_SCALE), RMS in the box summed over both images; it keeps away from the spine and
    kidneys. Where no square fits that band, the whole body is searched."""
    h, w = low.shape
    side = region_side(low.shape)
    stride = max(1, side // 4)
    fine, coarse = max(1.0, ANATOMY_SCALE * min(h, w)), BACKGROUND_SCALE * min(h, w)
    images = [np.asarray(x, np.float64) for x in (low, high)]
    detail = [ndi.gaussian_filter(x, fine) - ndi.gaussian_filter(x, coarse) for x in images]
    inside = body_mask(ndi.gaussian_filter(images[0], fine)) & body_mask(ndi.gaussian_filter(images[1], fine))
    bands = [abdomen_rows(x) for x in images]
    band = (max(b[0] for b in bands), min(b[1] for b in bands))
    for in_band in (True, False):
        best, best_score = None, np.inf
        for r0 in range(0, h - side + 1, stride):
            if in_band and not band[0] <= r0 + side / 2 <= band[1]:
                continue
            for c0 in range(0, w - side + 1, stride):
                win = (slice(r0, r0 + side), slice(c0, c0 + side))
                if not inside[win].all():
                    continue
                score = sum(float(np.sqrt(np.mean(d[win] ** 2))) for d in detail)
                if score < best_score:
                    best, best_score = (r0, r0 + side, c0, c0 + side), score
        if best is not None:
            return best
    r0, c0 = (h - side) // 2, (w - side) // 2  # no square fits inside both bodies (tiny images)
    return r0, r0 + side, c0, c0 + side


def load_pair(preprocess_csv: str | Path) -> NoisePair:
    """The Table 2 pair from the preprocessing table and the images it lists (images/<id>.npy beside it)."""
    low_id, high_id, view, counts_low, counts_high = select_pair(preprocess_csv)
    low, high = load_images(Path(preprocess_csv).parent, [low_id, high_id])
    box = noise_region_box(low, high)
    r0, r1, c0, c1 = box
    scale = float(high[r0:r1, c0:c1].mean() / low[r0:r1, c0:c1].mean())
    return NoisePair(low_id, high_id, view, (low * scale).astype(np.float32), high, box, scale,
                     (counts_low, counts_high))


def noised_low(pair: NoisePair, level: int, draw: int, seed: int) -> np.ndarray:
    """Draw `draw` of the low-noise image at `level` (level 0: the image itself)."""
    if level == 0:
        return pair.low
    return add_poisson_level_noise(pair.low, level, noise_seed(seed, draw, level, DRAW_TAG))


def region_noise_sd(image: np.ndarray, box) -> float:
    """Noise SD inside the region (wavelet median absolute deviation, anatomy-robust)."""
    from skimage.restoration import estimate_sigma

    r0, r1, c0, c1 = box
    return float(estimate_sigma(np.asarray(image[r0:r1, c0:c1], np.float64)))


def ssim_by_level(pair: NoisePair, levels, n_draws: int, seed: int) -> pd.DataFrame:
    """One row per level: mean and SD of the region SSIM over draws, and the region's noise SD."""
    rows = []
    for level in levels:
        draws = 1 if level == 0 else n_draws
        noisy = [noised_low(pair, level, d, seed) for d in range(draws)]
        ssims = np.array([noise_region_ssim(as_scored(x), pair.high, pair.box) for x in noisy])
        rows.append({"noise_level": int(level), "ssim": float(ssims.mean()),
                     "ssim_sd": float(ssims.std(ddof=1)) if draws > 1 else 0.0, "n_draws": draws,
                     "noise_sd": float(np.mean([region_noise_sd(x, pair.box) for x in noisy])),
                     "paper_ssim": paper.TABLE2.get(int(level), np.nan)})
    return pd.DataFrame(rows)


def peak_level(table: pd.DataFrame) -> int:
    """The level of highest mean SSIM."""
    return int(table.loc[table["ssim"].idxmax(), "noise_level"])


def shape_of_curve(levels, ssim, sem) -> str:
    """'rises then falls', 'falls', 'rises' or 'flat': the peak against both ends, beyond 2 standard errors."""
    ssim, sem = np.asarray(ssim, float), np.asarray(sem, float)
    i = int(np.argmax(ssim))

    def above(j):
        return ssim[i] - ssim[j] > 2 * np.hypot(sem[i], sem[j])

    rises, falls = above(0), above(len(ssim) - 1)
    if rises and falls:
        return "rises then falls"
    if rises:
        return "rises"
    if i == 0 and falls:
        return "falls"
    return "flat"


def matched_level(table: pd.DataFrame, high_sd: float) -> float | None:
    """Level at which the noised low-noise region's noise SD reaches the high-noise one's (interpolated)."""
    sd, lv = table["noise_sd"].to_numpy(), table["noise_level"].to_numpy(float)
    if not (sd.min() <= high_sd <= sd.max()):
        return None
    return float(np.interp(high_sd, sd, lv))  # noise SD rises with level


def caption(table: pd.DataFrame, high_sd: float) -> list[str]:
    """The notes under Table 2, written from its numbers."""
    sem = table["ssim_sd"] / np.sqrt(table["n_draws"])
    ours = shape_of_curve(table["noise_level"], table["ssim"], sem)
    peak = peak_level(table)
    row = table.set_index("noise_level").loc[peak]
    p = table.dropna(subset=["paper_ssim"])
    paper_shape = shape_of_curve(p["noise_level"], p["paper_ssim"], np.zeros(len(p)))
    paper_peak = int(p.loc[p["paper_ssim"].idxmax(), "noise_level"])
    same = "like" if ours == paper_shape else "unlike"
    spread = (f"{row['ssim']:.3f} +/- {row['ssim_sd']:.3f} SD over {int(row['n_draws'])} draws"
              if row["n_draws"] > 1 else f"{row['ssim']:.3f}, no noise added")
    lo, hi = int(table["noise_level"].min()), int(table["noise_level"].max())
    lines = [f"Our SSIM peaks at level {peak} ({spread}) and {ours} over levels {lo}-{hi}, {same} the paper's, "
             f"which {paper_shape} with its peak at level {paper_peak}."]
    match = matched_level(table, high_sd)
    where = (f"at level {match:.1f}" if match is not None else
             f"outside levels {int(table['noise_level'].min())}-{int(table['noise_level'].max())}")
    lines.append(f"Noise SD in the region (wavelet MAD, column noise_sd): the high-noise image has {high_sd:.2f} "
                 f"grey levels; the noised low-noise image reaches it {where}, where the paper's reasoning puts "
                 "the SSIM peak.")
    return lines


def table2(res):
    """Table 2 from preprocess/preprocess.csv and the images it lists (preprocess/images; both declared inputs)."""
    res.file("preprocess/images")  # the folder load_pair reads beside the table must be declared too
    pair = load_pair(res.file("preprocess/preprocess.csv"))
    levels = parse_levels(str(res.s["table2_levels"]))
    n_draws = int(res.s.get("table2_draws", DEFAULT_DRAWS))
    table = ssim_by_level(pair, levels, n_draws, int(res.s["seed"]))
    high_sd = region_noise_sd(pair.high, pair.box)
    r0, r1, c0, c1 = pair.box
    notes = caption(table, high_sd) + [
        f"Pair ({pair.view} view): low-noise image {pair.low_id} ({pair.body_counts[0]:.3g} median counts per body "
        f"pixel), high-noise image {pair.high_id} ({pair.body_counts[1]:.3g}); intensities matched by scaling "
        f"the low-noise image by {pair.scale:.3f} so that its region mean equals the high-noise image's.",
        f"Noise region: rows {r0}-{r1 - 1}, columns {c0}-{c1 - 1} ({r1 - r0} x {c1 - c0} px, "
        f"{REGION_FRACTION:.0%} of the image side; the paper does not give its size): abdominal soft tissue "
        "inside the body of both images, where both have the least detail. SSIM: Wang et al.'s Gaussian window "
        "(sigma 1.5), data range 255, of the region against the high-noise image, noise added to the whole scaled low-noise "
        "image; level 0 has one draw (no noise).",
        SCORING_RULE,
        data_source_note(bool(res.s["synthetic"])),
    ]
    return table, "Table 2. SSIM of a noise region as the noise level rises", notes
