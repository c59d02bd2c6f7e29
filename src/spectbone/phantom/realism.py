"""`spectbone realism`: how close is the phantom to a real whole-body bone scan?

Compares the clean phantom views (studies without a labelled problem) with the real NEMA WG04
"NM1" scan (1024 x 256 at 2.26 mm, 3,596,452 counts) on the statistics a reader sees first: total
counts, the share of the frame the body covers, counts per body pixel, and the hottest pixel.
Writes a figure (a phantom study's ANT and POST beside NM1, one display mapping for all) and a table.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from scipy import ndimage as ndi

from spectbone.dicom.nm1 import nm1_path
from spectbone.util.outputs import save_figure, write_table
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.phantom.realism")

BODY_SMOOTH_SIGMA_PX = 3.0
BODY_FRACTION_OF_P95 = 0.05
BODY_RULE = (f"body pixels: counts smoothed with a Gaussian of sigma {BODY_SMOOTH_SIGMA_PX:g} px above "
             f"{BODY_FRACTION_OF_P95:g} x the 95th percentile of the smoothed frame (scale-free, so the same "
             f"rule serves 0.1 M and 4 M count images)")
REL_BINS = np.linspace(0.0, 8.0, 161)  # counts / the view's median body counts
STAT_COLUMNS = ["total_counts", "body_fraction", "median_counts_per_body_pixel", "max_counts"]


def add_arguments(parser, verb: str = "realism") -> None:
    parser.add_argument("--cohort", required=True, help="phantom cohort folder (study_*.dcm)")
    parser.add_argument("--truth", required=True, help="phantom truth folder (labels.csv)")
    parser.add_argument("--nm1", default="auto", help="NEMA NM1 DICOM file, or 'auto' (pydicom-data JPEG-LL.dcm)")
    parser.add_argument("--figure", required=True, help="figure stem (.png and .pdf are written)")
    parser.add_argument("--table", required=True, help="table stem (.csv and .md are written)")
    add_common_arguments(parser, log=True)


def body_mask(counts: np.ndarray) -> np.ndarray:
    """Pixels inside the body (see BODY_RULE)."""
    s = ndi.gaussian_filter(np.asarray(counts, np.float32), BODY_SMOOTH_SIGMA_PX)
    return s > BODY_FRACTION_OF_P95 * np.percentile(s, 95)


def view_stats(counts: np.ndarray) -> dict:
    counts = np.asarray(counts, np.float64)
    body = body_mask(counts)
    return {"total_counts": float(counts.sum()),
            "body_fraction": float(body.mean()),
            "median_counts_per_body_pixel": float(np.median(counts[body])) if body.any() else 0.0,
            "max_counts": float(counts.max())}


def relative_histogram(counts: np.ndarray) -> np.ndarray:
    """Histogram of body-pixel counts divided by their median, so views of any count level compare.
    Integer counts are spread uniformly over their unit bin (fixed seed) so the integer lattice
    does not alias into the relative bins."""
    b = np.asarray(counts, np.float64)[body_mask(counts)]
    b = b + np.random.default_rng(0).uniform(-0.5, 0.5, b.shape)
    med = np.median(b) if b.size else 0.0
    return np.histogram(b / med if med > 0 else b, REL_BINS)[0]


def load_nm1(path: str = "auto") -> np.ndarray:
    ds = pydicom.dcmread(nm1_path(path))
    arr = ds.pixel_array
    return np.asarray(arr[0] if arr.ndim == 3 else arr, np.float64)


def read_frames(path: Path) -> np.ndarray:
    arr = pydicom.dcmread(path).pixel_array
    return arr[None] if arr.ndim == 2 else arr


def clean_labels(truth: Path) -> pd.DataFrame:
    """Labels of the problem-free phantom views."""
    labels = pd.read_csv(truth / "labels.csv", keep_default_na=False, dtype={"problem": str})
    clean = labels[labels["problem"] == ""].copy()
    if clean.empty:
        raise ValueError(f"no problem-free study in {truth / 'labels.csv'}")
    return clean


def cohort_stats(cohort: Path, clean: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-view statistics of the clean views, and the pooled histogram of body-pixel counts relative
    to each view's median (`REL_BINS`). Streams one study at a time."""
    rows, hist = [], np.zeros(len(REL_BINS) - 1, np.int64)
    for study, grp in clean.groupby("study", sort=True):
        frames = read_frames(cohort / f"{study}.dcm")
        for _, r in grp.iterrows():
            img = frames[int(r["frame"])]
            rows.append({"study": study, "view": r["view"], **view_stats(img)})
            hist += relative_histogram(img)
    return pd.DataFrame(rows), hist


def stats_table(nm1_stats: dict, phantom_stats: pd.DataFrame) -> pd.DataFrame:
    rows = [{"source": "NM1 (NEMA WG04, real scan)", "statistic": "value", "n_views": 1,
             **{c: nm1_stats[c] for c in STAT_COLUMNS}}]
    for stat in ("mean", "median", "min", "max"):
        vals = getattr(phantom_stats[STAT_COLUMNS], stat)()
        rows.append({"source": "phantom (clean views)", "statistic": stat, "n_views": len(phantom_stats),
                     **{c: float(vals[c]) for c in STAT_COLUMNS}})
    for view, grp in phantom_stats.groupby("view", sort=True):
        vals = grp[STAT_COLUMNS].median()
        rows.append({"source": f"phantom {view}", "statistic": "median", "n_views": len(grp),
                     **{c: float(vals[c]) for c in STAT_COLUMNS}})
    return pd.DataFrame(rows)


def draw_figure(nm1: np.ndarray, ant: np.ndarray, post: np.ndarray, study: str, body_hists: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vmax = float(np.percentile(nm1[body_mask(nm1)], 99.5))  # one absolute window (counts) for all panels
    fig, axes = plt.subplots(1, 4, figsize=(13, 9), gridspec_kw={"width_ratios": [1, 1, 1, 1.6], "wspace": 0.3})
    for ax, img, title in zip(axes[:3], (nm1, ant, post),
                              (f"NM1 (real)\n{nm1.sum() / 1e6:.2f} M counts",
                               f"phantom {study} ANT\n{ant.sum() / 1e6:.2f} M counts",
                               f"phantom {study} POST\n{post.sum() / 1e6:.2f} M counts")):
        ax.imshow(img, cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel(f"display: inverted grey, 0 to {vmax:.0f} counts (NM1 body 99.5th pct.)", fontsize=8)
    ax = axes[3]
    for name, hist in body_hists.items():
        ax.stairs(hist / max(hist.sum(), 1), REL_BINS, lw=1.5, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("counts per body pixel / the view's median")
    ax.set_ylabel("fraction of body pixels")
    ax.set_title("shape of the body-pixel count distribution", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle("Phantom (synthetic) vs the real NEMA NM1 whole-body bone scan", fontsize=11)
    save_figure(fig, path)


def realism(cohort, truth, nm1="auto", figure=None, table=None) -> pd.DataFrame:
    cohort, truth = Path(cohort), Path(truth)
    nm1_img = load_nm1(nm1)
    nm1_stats = view_stats(nm1_img)
    clean = clean_labels(truth)
    per_view, phantom_hist = cohort_stats(cohort, clean)
    df = stats_table(nm1_stats, per_view)
    log.info("NM1: %.0f counts, body fraction %.3f, median %.1f counts per body pixel",
             nm1_stats["total_counts"], nm1_stats["body_fraction"], nm1_stats["median_counts_per_body_pixel"])
    med = per_view[STAT_COLUMNS].median()
    log.info("phantom (%d clean views, median): %.0f counts, body fraction %.3f, median %.1f counts per body pixel",
             len(per_view), med["total_counts"], med["body_fraction"], med["median_counts_per_body_pixel"])
    if table:
        write_table(df, table, "Phantom realism: count statistics beside the real NEMA NM1 scan", notes=[
            "NM1 is the NEMA WG04 whole-body bone scan shipped in pydicom-data (JPEG-LL.dcm, lossless), "
            "a single anterior frame of 1024 x 256 at 2.26 mm.",
            "Phantom rows summarise every view (ANT and POST) of the studies without a labelled problem; "
            "the phantom is synthetic (simulated NM DICOM), not patient data.",
            BODY_RULE + ".",
            "total_counts and max_counts are raw counts per view; median_counts_per_body_pixel is the median "
            "over body pixels; body_fraction is the share of the 1024 x 256 frame inside the body.",
        ])
    if figure:
        # the clean study whose total is closest to NM1's, so one absolute window suits both
        totals = per_view.groupby("study")["total_counts"].mean()
        study = str((totals - nm1_stats["total_counts"]).abs().idxmin())
        nm1_hist = relative_histogram(nm1_img)
        frames = read_frames(cohort / f"{study}.dcm")
        view_frame = clean[clean["study"] == study].set_index("view")["frame"]
        draw_figure(nm1_img, frames[int(view_frame["ANT"])].astype(np.float64),
                    frames[int(view_frame["POST"])].astype(np.float64), study,
                    {"NM1": nm1_hist, "phantom (clean cohort)": phantom_hist}, figure)
    return df


def run(args) -> int:
    setup_logging(args.log)
    realism(args.cohort, args.truth, args.nm1, args.figure, args.table)
    return 0
