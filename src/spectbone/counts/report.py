"""`spectbone real-counts`: the dose-reduction table and the NM1 figure of the count-domain family.

``tables/real_counts.{csv,md}``: one row per method (`methods.METHODS`) and count fraction. Columns, each
a mean with its 95 % percentile-bootstrap interval:
- ``nm1``: count-split excess error on the whole NM1 frame (units: held-out part's counts^2 per pixel),
  resampling (seed, 64-px tile) units; the fine-tuned model has none (it saw most of the frame);
- ``nm1_heldout``: the same on the held-out bands only, where every method, the fine-tuned one
  included, is scored on counts fine-tuning never saw;
- ``site`` / ``site_heldout``: the same on a hospital's studies (``data.dicom_dir``), when set;
- ``phantom_psnr`` / ``phantom_ssim``: the phantom's test patients at native sampling, x / p against the
  full-count noiseless truth (resampling frames); ``phantom_excess`` / ``phantom_true``: the count-split
  estimate and the true squared error of the same outputs, side by side.
Notes: the "half-time scan" answer (lowest fraction whose count-domain EMANet output is at least as
close to the truth as the full-count raw scan, paired over frames), the fine-tuning gain, the
Gaussian widths chosen without hindsight, and the data sources.

The figure: NM1 at 25 % (seed 0), the whole frame at native resolution for each method and the
full-count original, one display window (x / p, in full-count units), zooms on spine and ribs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from spectbone.counts.domain import body_mask
from spectbone.counts.methods import METHODS
from spectbone.counts.thinning import bootstrap_mean
from spectbone.evaluate.metrics import bootstrap_ci
from spectbone.util.outputs import data_source_note, save_figure, write_table
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.counts.report")
DATASETS = ("nm1", "site", "phantom")


def _interval(mean: float, lo: float, hi: float) -> str:
    return "" if not np.isfinite(mean) else f"{mean:.3g} [{lo:.3g}, {hi:.3g}]"


def load_scores(inputs: dict[str, str]) -> tuple[dict, dict]:
    """{(dataset, method): tile rows}, {(dataset, method): frame rows} from KEY=PATH inputs.

    Keys: ``tiles:DATASET:METHOD``, ``frames:DATASET:METHOD`` (and ``example:METHOD``, ``nm1``)."""
    tiles, frames = {}, {}
    for key, path in inputs.items():
        kind, *rest = key.split(":")
        if kind in ("tiles", "frames"):
            df = pd.read_csv(path)
            (tiles if kind == "tiles" else frames)[tuple(rest)] = df
    return tiles, frames


def summary(tiles: dict, frames: dict, n_boot: int, seed: int) -> pd.DataFrame:
    """One row per method and fraction; mean [lo, hi] cells and their numbers (for claims/tests)."""
    rows = []
    fractions = sorted({float(f) for df in tiles.values() for f in df["fraction"].unique()}, reverse=True)
    for key, m in METHODS.items():
        for p in fractions:
            row = {"method": key, "label": m.label, "fraction": p}
            for ds in DATASETS:
                t = tiles.get((ds, key))
                if t is None or not len(t):
                    continue
                t = t[t["fraction"] == p]
                if ds == "phantom":
                    parts = [("phantom_excess", t)]
                else:  # the whole frame (not for the fine-tuned model, which saw most of it) and the held-out part
                    parts = [(ds, t if key != "emanet_finetuned" else t.iloc[0:0]),
                             (f"{ds}_heldout", t[t["heldout"].astype(bool)])]
                for name, part in parts:
                    mean, lo, hi = bootstrap_mean(part["excess_sum"], part["pixels"], n_boot, seed)
                    row.update({name: mean, f"{name}_lo": lo, f"{name}_hi": hi})
                if ds == "phantom":
                    mean, lo, hi = bootstrap_mean(t["true_sum"], t["pixels"], n_boot, seed)
                    row.update(phantom_true=mean, phantom_true_lo=lo, phantom_true_hi=hi)
                    f = frames[(ds, key)]
                    f = f[f["fraction"] == p]
                    for metric in ("psnr", "ssim"):
                        mean, lo, hi = bootstrap_ci(f[metric], n_boot, seed=seed)
                        row.update({f"phantom_{metric}": mean, f"phantom_{metric}_lo": lo,
                                    f"phantom_{metric}_hi": hi})
            rows.append(row)
    return pd.DataFrame(rows)


def half_time(frames: dict, n_boot: int, seed: int, method: str = "emanet_counts") -> str:
    """The lowest tested fraction whose `method` output is at least as close to the truth (PSNR) as
    the full-count raw scan, judged on the lower end of a paired bootstrap interval over frames."""
    raw, den = frames.get(("phantom", "raw")), frames.get(("phantom", method))
    if raw is None or den is None:
        return ""
    full = raw[raw["fraction"] == 1.0].set_index("case")["psnr"]
    verdicts = []
    for p in sorted(den["fraction"].unique()):
        d = den[den["fraction"] == p].groupby("case")["psnr"].mean()
        diff = (d - full.reindex(d.index)).dropna()
        mean, lo, hi = bootstrap_ci(diff, n_boot, seed=seed)
        verdicts.append((p, mean, lo, hi))
    ok = [v for v in verdicts if v[2] >= 0]
    detail = "; ".join(f"{100 * p:g} %: {m:+.2f} dB [{lo:+.2f}, {hi:+.2f}]" for p, m, lo, hi in verdicts)
    full_mean = float(full.mean())
    if ok:
        p = min(v[0] for v in ok)
        return (f"Half-time scan: at {100 * p:g} % of the counts the count-domain EMANet is at least as close to the "
                f"phantom's truth as the full-count raw scan (PSNR {full_mean:.2f} dB), paired over test frames "
                f"(EMANet minus full-count raw: {detail}).")
    return (f"Half-time scan: at none of the tested fractions is the count-domain EMANet surely as close to the truth "
            f"as the full-count raw scan ({full_mean:.2f} dB): {detail}.")


def notes(table: pd.DataFrame, tiles: dict, frames: dict, n_boot: int, seed: int, synthetic: bool) -> list[str]:
    out = ["Count-split score: for a fraction p, y1 ~ Binomial(counts, p) is denoised and y2 = counts - y1 held out; "
           "mean of (k x - y2)^2 - y2 with k = (1-p)/p, an unbiased estimate of the squared error of k x against the "
           "held-out part's expected counts (counts^2 per pixel; lower is better; it can be below 0 by chance). "
           "Intervals: 95 % percentile bootstrap over (seed, 64-px tile) units.",
           "Held-out columns: every third 64-row band of NM1 (bands 1, 4, 7, ...: a third of the frame, from head to "
           "feet; a single scan, so the fine-tuned model is scored on tiles of it that fine-tuning never read; it "
           "chose its epoch on bands 2, 5, 8, ... and trained on the rest); with several site patients, half "
           "the patients are held out whole. Every method is scored on the same held-out tiles there.",
           "Phantom columns: the phantom's test patients at native sampling (no crop, no resize); PSNR/SSIM of x / p "
           "against the full-count noiseless truth, data range its maximum; phantom_true is the true squared error "
           "of the outputs whose count-split estimate is phantom_excess.",
           "Methods (spectbone.counts.methods): " + "; ".join(f"{k}: {m.label}" for k, m in METHODS.items()) + ".",
           "The paper-protocol EMANet is applied as `spectbone denoise` applies it (grey mapping as in training, "
           "stage-1 level); the fine-tuned model is the site's, so it has no phantom or whole-NM1 score."]
    g = frames.get(("nm1", "gaussian"))
    if g is not None and len(g):
        widths = g.groupby("fraction")["gaussian_sigma"].agg(lambda s: ", ".join(f"{v:g}" for v in sorted(set(s))))
        out.append("Gaussian widths (px) chosen by count-split validation on other seeds' splits of NM1: "
                   + "; ".join(f"{100 * p:g} %: {w}" for p, w in widths.sort_index(ascending=False).items()) + ".")
    sentence = half_time(frames, n_boot, seed)
    if sentence:
        out.append(sentence)
    ft = table[table["method"] == "emanet_finetuned"]
    base = table[table["method"] == "emanet_counts"]
    for ds in ("nm1", "site"):
        col = f"{ds}_heldout"
        if col in ft and col in base and ft[col].notna().any():
            diffs = [f"{100 * p:g} %: {b:.3g} -> {f:.3g}" for p, b, f in
                     zip(base["fraction"], base[col], ft.set_index("fraction").reindex(base["fraction"])[col])]
            out.append(f"Fine-tuning on {ds} (held-out part, count-domain EMANet -> fine-tuned): " + "; ".join(diffs)
                       + ".")
    out.append(data_source_note(synthetic) + " NM1 is the real NEMA whole-body bone scan (pydicom-data JPEG-LL.dcm).")
    return out


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The Markdown view: one 'mean [lo, hi]' cell per score."""
    cols = [c for c in table.columns if c not in ("method", "label", "fraction") and not c.endswith(("_lo", "_hi"))]
    out = pd.DataFrame({"method": table["label"], "fraction": [f"{100 * p:g} %" for p in table["fraction"]]})
    for c in cols:
        out[c] = [_interval(m, lo, hi) for m, lo, hi in zip(table[c], table[f"{c}_lo"], table[f"{c}_hi"])]
    return out


def zoom_boxes(counts: np.ndarray) -> dict[str, tuple[slice, slice]]:
    """Spine and ribs windows placed from the body outline (thoracic rows, midline and one side)."""
    body = body_mask(counts)
    rows = np.nonzero(body.any(axis=1))[0]
    top, height = int(rows.min()), int(rows.max() - rows.min() + 1)
    upper = body[top:top + height // 2]
    centre = int(round(np.average(np.arange(body.shape[1]), weights=upper.sum(axis=0) + 1e-9)))
    r0, r1 = top + int(0.18 * height), top + int(0.34 * height)
    half = max(16, body.shape[1] // 10)
    return {"spine": (slice(r0, r1), slice(max(centre - half, 0), centre + half)),
            "ribs": (slice(r0, r1), slice(max(centre - 4 * half, 0), max(centre - half, 1)))}


def figure(original: np.ndarray, examples: dict[str, np.ndarray], fraction: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import textwrap

    panels = [(METHODS[k].label.split(" (")[0], v / fraction) for k, v in examples.items() if v.size]
    panels.append(("Full-count original", original))
    panels = [("\n".join(textwrap.wrap(title, 16)), img) for title, img in panels]
    vmax = float(np.percentile(original[original > 0], 99.5)) if np.any(original > 0) else 1.0
    boxes = zoom_boxes(original)
    rows = np.nonzero(body_mask(original).any(axis=1))[0]  # the patient's rows: the whole scan, no empty ends
    top, bottom = max(int(rows.min()) - 16, 0), min(int(rows.max()) + 17, original.shape[0])
    fig, axes = plt.subplots(3, len(panels), figsize=(1.6 * len(panels), 9.5),
                             gridspec_kw={"height_ratios": [4, 1.3, 1.3], "hspace": 0.12, "wspace": 0.05},
                             squeeze=False)
    for j, (title, img) in enumerate(panels):
        axes[0, j].imshow(img[top:bottom], cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
        axes[0, j].set_title(title, fontsize=7)
        for i, (name, (rs, cs)) in enumerate(boxes.items(), start=1):
            axes[0, j].add_patch(matplotlib.patches.Rectangle((cs.start, rs.start - top), cs.stop - cs.start,
                                                              rs.stop - rs.start, fill=False, lw=0.8,
                                                              ec="tab:red" if i == 1 else "tab:blue"))
            axes[i, j].imshow(img[rs, cs], cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
            axes[i, j].set_title(name, fontsize=6)
        for ax in axes[:, j]:
            ax.axis("off")
    fig.suptitle(f"NM1 (real NEMA whole-body bone scan) at {100 * fraction:g} % of its counts, seed 0:\n"
                 f"x / p in full-count units, one display window; zooms: spine (red), ribs (blue)", fontsize=8, y=0.99)
    save_figure(fig, path)


def _key_path(text: str) -> tuple[str, str]:
    key, _, path = text.partition("=")
    if not path:
        raise ValueError(f"--input {text}: expected KEY=PATH")
    return key, path


def add_arguments(parser, verb):
    parser.add_argument("--input", action="append", type=_key_path, default=[],
                        help="KEY=PATH: tiles:DATASET:METHOD, frames:DATASET:METHOD, example:METHOD")
    parser.add_argument("--table", required=True, help="tables/real_counts.csv (+ .md)")
    parser.add_argument("--figure", required=True, help="figures/real_counts_nm1.png (+ .pdf)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--synthetic", action="store_true", help="the phantom is the embedded default cohort")
    add_common_arguments(parser, seed=True)


def run(args) -> int:
    from spectbone.counts.evaluate import FIGURE_FRACTION
    from spectbone.counts.sites import nm1_cases

    setup_logging(args.log)
    inputs = dict(args.input)
    tiles, frames = load_scores(inputs)
    table = summary(tiles, frames, args.bootstrap, args.seed)
    write_table(table, args.table, "Real counts: dose reduction by count splitting (count-domain family)",
                notes(table, tiles, frames, args.bootstrap, args.seed, args.synthetic))
    md = Path(args.table).with_suffix(".md")
    lines = md.read_text().splitlines()
    shown = display_table(table).to_markdown(index=False)
    end = next(i for i, line in enumerate(lines[2:], start=2) if not line.startswith("|"))
    md.write_text("\n".join(lines[:2] + [shown] + lines[end:]) + "\n")
    examples = {}
    for key in METHODS:
        if f"example:{key}" in inputs:
            with np.load(inputs[f"example:{key}"]) as z:
                examples[key] = z["estimate"]
    figure(nm1_cases()[0].counts, examples, FIGURE_FRACTION, args.figure)
    log.info("real-counts table: %d rows", len(table))
    return 0
