"""The paper's data figures 7-15 (PNG + PDF each), drawn only from the files named on the command line.

`spectbone figure 11 --input testset=... --input bm3d=... --input dncnn=... --out fig11.png`: every
file a figure reads is passed as KEY=PATH (the workflow declares each one), nothing is looked up
in a results folder. Image figures show one test image (`zooms.shown_index`: the anterior view with
the largest lesion) with zoom rows on that lesion and on the ribs, their frames drawn on the
full image in the same colours (`zooms` finds both from the image and the lesion mask).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from spectbone.evaluate.metrics import bootstrap_ci  # noqa: E402
from spectbone.evaluate.rule import as_scored  # noqa: E402
from spectbone.paper import table2 as t2  # noqa: E402
from spectbone.paper import zooms  # noqa: E402
from spectbone.util.methods import display_name  # noqa: E402
from spectbone.util.outputs import data_source_note, save_figure  # noqa: E402
from spectbone.util.runtime import add_common_arguments, setup_logging  # noqa: E402

log = logging.getLogger("spectbone.paper.figures")
METHODS = ["bm3d", "dncnn", "redcnn", "wgan", "emanet"]  # input keys of the compared methods, in column order
LESION_COLOUR, RIBS_COLOUR, REGION_COLOUR = "tab:orange", "tab:cyan", "red"
PANEL_INCH = 1.75


@dataclass
class Panel:
    """One column of an image figure: a label, an image and optional mask outlines [(mask, colour)]."""

    label: str
    image: np.ndarray
    outlines: tuple = ()


@dataclass
class Zoom:
    name: str
    box: zooms.Box
    colour: str


def _load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _crop(img, box):
    r0, r1, c0, c1 = box
    return img[r0:r1, c0:c1]


def _show(ax, img, title="", vmin=0.0, vmax=255.0, cmap="gray_r"):
    ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def _frame(ax, box, colour, origin=(0, 0), lw=1.0):
    """Outline `box` on an axis showing an image whose top-left pixel is `origin`."""
    r0, r1, c0, c1 = box
    ax.add_patch(Rectangle((c0 - origin[1] - 0.5, r0 - origin[0] - 0.5), c1 - c0, r1 - r0,
                           fill=False, ec=colour, lw=lw))


def _outline(ax, panel, box=None):
    for mask, colour in panel.outlines:
        m = mask if box is None else _crop(mask, box)
        if np.asarray(m).any():
            ax.contour(m, levels=[0.5], colors=colour, linewidths=0.7)


def _window(images, signed=False, stretch=False):
    """(vmin, vmax) up to the 99.5th percentile of `images` (symmetric for signed maps); `stretch`
    starts at the 0.5th percentile instead of 0, for the contrast of a zoom."""
    values = np.concatenate([np.abs(x).ravel() if signed else x.ravel() for x in images])
    top = float(np.percentile(values, 99.5)) or 1.0
    if signed:
        return -top, top
    bottom = float(np.percentile(values, 0.5)) if stretch else 0.0
    return bottom, max(top, bottom + 1e-6)


def zoom_grid(panels: list[Panel], zoom_list: list[Zoom], title: str, view: zooms.Box | None = None,
              signed=False, extra_row: list[Panel] | None = None, reference: int | None = None):
    """Full images (or the `view` window of them) with zoom frames, then one row per zoom, then `extra_row`.

    Every row shares one grey window, so methods compare: up to the 99.5th percentile of the
    `reference` panel (the original image, where there is one), else of the whole row."""
    cmap = "RdBu_r" if signed else "gray_r"
    n_rows = 1 + len(zoom_list) + (1 if extra_row else 0)
    n_cols = max(len(panels), len(extra_row or []))
    origin = (view[0], view[2]) if view else (0, 0)
    main_aspect = (view[1] - view[0]) / (view[3] - view[2]) if view else 1.0
    heights = [main_aspect] + [1.0] * (n_rows - 1)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(PANEL_INCH * n_cols, PANEL_INCH * sum(heights) + 0.5),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    main = [p.image if view is None else _crop(p.image, view) for p in panels]
    vmin, vmax = _window(main if reference is None else [main[reference]], signed)
    for j, (panel, img) in enumerate(zip(panels, main)):
        _show(axes[0, j], img, panel.label, vmin, vmax, cmap)
        _outline(axes[0, j], panel, view)
        for z in zoom_list:
            _frame(axes[0, j], z.box, z.colour, origin)
    for i, z in enumerate(zoom_list, start=1):
        crops = [_crop(p.image, z.box) for p in panels]
        vmin, vmax = _window(crops if reference is None else [crops[reference]], signed, stretch=True)
        for j, (panel, crop) in enumerate(zip(panels, crops)):
            _show(axes[i, j], crop, "", vmin, vmax, cmap)
            _outline(axes[i, j], panel, z.box)
            if j == 0:
                axes[i, j].set_ylabel(z.name, fontsize=7, color=z.colour)
            for spine in axes[i, j].spines.values():
                spine.set_edgecolor(z.colour)
                spine.set_linewidth(2)
    if extra_row:
        vmin, vmax = _window([p.image for p in extra_row], signed)
        for j, panel in enumerate(extra_row):
            _show(axes[-1, j], panel.image, panel.label, vmin, vmax, cmap)
    for i in range(n_rows):
        used = len(extra_row) if (extra_row and i == n_rows - 1) else len(panels)
        for j in range(used, n_cols):
            axes[i, j].axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig


class Shown:
    """The test image the image figures show, and its lesion and ribs zoom windows."""

    def __init__(self, testset: dict):
        lesions = testset.get("lesions")
        self.index = zooms.shown_index(lesions, testset.get("image_id"))
        self.original = testset["clean"][self.index]
        self.lesions = None if lesions is None else lesions[self.index]
        box = zooms.lesion_box(self.lesions) if self.lesions is not None else None
        name = "lesion"
        if box is None:
            box, name = zooms.hottest_box(self.original), "hottest focus (no lesion mask)"
        self.zooms = [Zoom(name, box, LESION_COLOUR), Zoom("ribs", zooms.ribs_box(self.original, box), RIBS_COLOUR)]

    def at(self, stack):
        return stack[self.index]


def _testset(inputs):
    testset = _load(inputs["testset"])
    return testset, Shown(testset)


def _level_index(testset, level) -> int:
    return int(np.flatnonzero(testset["levels"] == int(level))[0])


def _method_panels(inputs, shown: Shown, level_index=None, keys=METHODS) -> list[Panel]:
    """The declared methods' outputs for the shown image: at a test level, or blind (level_index None)."""
    panels = []
    for key in keys:
        if key not in inputs:
            continue
        z = _load(inputs[key])
        if "level" in z:  # a BM3D chunk: one level (or the blind originals) per file
            img = shown.at(z["denoised"])
        else:
            img = shown.at(z["blind"] if level_index is None else z["denoised"][level_index])
        panels.append(Panel(display_name(key), as_scored(img)))  # shown as scored (evaluate.rule)
    return panels


def fig07(inputs, s):
    if Path(inputs["images"]) != Path(inputs["preprocess"]).parent / "images":
        raise ValueError("fig07: --input images= must be the images folder beside --input preprocess=")
    pair = t2.load_pair(inputs["preprocess"])  # reads the images it lists from that declared folder
    table = pd.read_csv(inputs["table2"])
    peak = t2.peak_level(table)
    shown_level, why = peak, "SSIM peak"
    if peak == 0:  # nothing to show at the peak: show the level whose noise matches the high-noise image's
        match = t2.matched_level(table, t2.region_noise_sd(pair.high, pair.box))
        noised_levels = table.loc[table["noise_level"] > 0, "noise_level"].to_numpy()
        shown_level = int(noised_levels[np.argmin(np.abs(noised_levels - (match or 0)))])
        why = f"noise SD matches at {match:.1f}" if match is not None else "lowest level"
    ssim = table.set_index("noise_level")["ssim"]
    noised = t2.noised_low(pair, shown_level, draw=0, seed=int(s["seed"]))
    label = f"low noise + level {shown_level}\n({why})"
    low_label = f"low noise (x{pair.scale:.2f})" + (f"\nSSIM {ssim[0]:.3f}" if 0 in ssim.index else "")
    panels = [Panel(low_label, pair.low),
              Panel(f"{label}\nSSIM {ssim[shown_level]:.3f}", noised),
              Panel("high noise\n(reference)", pair.high)]
    note = "" if shown_level == peak else f"; SSIM peaks at level {peak}"
    return zoom_grid(panels, [Zoom("noise region", pair.box, REGION_COLOUR)],
                     f"Fig. 7  Table 2's pair ({pair.view}): low-noise image, noised, and high-noise image{note}")


def _noise_map_panels(noisy, pairs):
    return [Panel(label, noisy - img) for label, img in pairs]


def fig08(inputs, s):
    testset, shown = _testset(inputs)
    level = int(s["figure_level"])
    li = _level_index(testset, level)
    noisy = shown.at(testset["noisy"][li])
    pairs = [("true noise", shown.original)]
    pairs += [(f"{key} pretraining", shown.at(_load(inputs[key])["denoised"][li])) for key in ("none", "natural", "ct")]
    return zoom_grid(_noise_map_panels(noisy, pairs), shown.zooms,
                     f"Fig. 8  Predicted noise maps (noisy - denoised) with and without transfer (sigma = {level})",
                     signed=True)


def fig09(inputs, s):
    testset, shown = _testset(inputs)
    level, lam = int(s["figure_level"]), float(s["lam"])
    li = _level_index(testset, level)
    panels = [Panel("noisy", shown.at(testset["noisy"][li]))]
    for key, label in [("mse", "MSE"), ("perceptual", "perceptual"), ("composite", f"composite (lambda {lam:g})")]:
        panels.append(Panel(label, shown.at(_load(inputs[key])["denoised"][li])))
    panels.append(Panel("original", shown.original))
    return zoom_grid(panels, shown.zooms, f"Fig. 9  Loss functions compared (sigma = {level})", reference=-1)


def _mean_ci(csv, metric, s):
    """Mean over test images (levels averaged per image first) and its 95% bootstrap interval."""
    df = pd.read_csv(csv)
    per_image = df[df["noise_level"] > 0].groupby("image_id")[metric].mean().to_numpy()
    return bootstrap_ci(per_image, n_boot=int(s["bootstrap"]), seed=int(s["seed"]))


def fig10(inputs, s):
    sweep = sorted((float(key[len("lam"):]), path) for key, path in inputs.items() if key.startswith("lam"))
    lams = [lam for lam, _ in sweep]
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for metric, axis, colour in [("psnr", ax, "C0"), ("ssim", ax.twinx(), "C1")]:
        stats = np.array([_mean_ci(path, metric, s) for _, path in sweep])
        err = np.vstack([stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]])
        axis.errorbar(lams, stats[:, 0], yerr=err, marker="o", color=colour, capsize=3, label=metric.upper())
        axis.set_ylabel(metric.upper(), color=colour)
    ax.set_xlabel("lambda (perceptual weight)")
    ax.set_title("Fig. 10  PSNR and SSIM against lambda (mean, 95% CI)", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))  # room for the data-source footer
    return fig


def fig11(inputs, s):
    testset, shown = _testset(inputs)
    level = int(s["figure_level"])
    li = _level_index(testset, level)
    panels = ([Panel("noisy", shown.at(testset["noisy"][li]))] + _method_panels(inputs, shown, li)
              + [Panel("original", shown.original)])
    return zoom_grid(panels, shown.zooms, f"Fig. 11  Denoising compared (sigma = {level}); "
                     f"zooms: {shown.zooms[0].name} (orange), ribs (cyan)", reference=-1)


def fig12(inputs, s):
    _, shown = _testset(inputs)
    panels = [Panel("original", shown.original)] + _method_panels(inputs, shown)
    nm1 = _load(inputs["nm1"])
    nm1_row = [Panel("NM1 original", nm1["original"])] + [Panel(f"NM1 {n}", d) for n, d in
                                                          zip(nm1["names"], nm1["denoised"])]
    return zoom_grid(panels, shown.zooms, "Fig. 12  Blind denoising of original images: phantom with zooms; "
                     "bottom: real NEMA NM1 scan", extra_row=nm1_row, reference=0)


def fig13(inputs, s):
    _, shown = _testset(inputs)
    panels = [Panel("original", shown.original)] + _method_panels(inputs, shown)
    return zoom_grid(panels, shown.zooms, "Fig. 13  Chest of Fig. 12 enlarged, with zooms",
                     view=zooms.chest_box(shown.original), reference=0)


def fig14(inputs, s):
    _, shown = _testset(inputs)
    learned = [k for k in METHODS if k != "bm3d"]  # the paper's Fig. 14 compares the learned methods
    pairs = [(p.label, p.image) for p in _method_panels(inputs, shown, keys=learned)]
    return zoom_grid(_noise_map_panels(shown.original, pairs), shown.zooms,
                     "Fig. 14  Noise maps = original - blind-denoised", signed=True)


def fig15(inputs, s):
    _, shown = _testset(inputs)
    masks = _load(inputs["masks"])
    truth = shown.at(masks["lesions"])
    panels = [Panel("truth (red)", shown.at(masks["image"]), ((truth, "red"),))]
    for name in ["Original", "BM3D", "DnCNN", "RED-CNN", "WGAN", "EMANet"]:
        panels.append(Panel(name, shown.at(masks[f"input_{name}"]),
                            ((truth, "red"), (shown.at(masks[f"pred_{name}"]), "lime"))))
    return zoom_grid(panels, shown.zooms, "Fig. 15  Lesion segmentation: truth (red), prediction (green)",
                     reference=0)


def fig_threshold(inputs, s):
    """Table 8's cut: pooled IoU against the probability threshold (``evaluate.threshold``)."""
    curve = pd.read_csv(inputs["curve"])
    chosen = float(pd.read_csv(inputs["segmentation"])["threshold"].iloc[0])
    logit = np.log(curve["threshold"] / (1 - curve["threshold"]))
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    ax.fill_between(logit, curve["iou_val_lo"], curve["iou_val_hi"], color="C0", alpha=0.2,
                    label="validation, 95% bootstrap band")
    ax.plot(logit, curve["iou_val"], color="C0", label="validation")
    ax.plot(logit, curve["iou_val_bagged"], color="C0", ls="--", label="validation, bootstrap mean (chooses the cut)")
    if "iou_test_original" in curve:
        ax.plot(logit, curve["iou_test_original"], color="C3", label="test originals (not used)")
    ax.axvline(np.log(chosen / (1 - chosen)), color="k", lw=0.8, ls=":", label=f"chosen {chosen:.3f}")
    ticks = [0.05, 0.5, 0.9, 0.99, 0.999]
    ax.set_xticks(np.log(np.array(ticks) / (1 - np.array(ticks))), [f"{t:g}" for t in ticks])
    ax.set_xlabel("probability threshold (logit scale)")
    ax.set_ylabel("pooled IoU (originals)")
    ax.set_title("Table 8's cut: IoU against the probability threshold", fontsize=9)
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout(rect=(0, 0.05, 1, 1))  # room for the data-source footer
    return fig


FIGURES = {"07": fig07, "08": fig08, "09": fig09, "10": fig10, "11": fig11, "12": fig12, "13": fig13, "14": fig14,
           "15": fig15, "threshold": fig_threshold}


def _key_path(text):
    key, sep, path = text.partition("=")
    if not sep or not key or not path:
        raise argparse.ArgumentTypeError(f"expected KEY=PATH, got {text!r}")
    return key, path


def add_arguments(parser, verb):
    parser.add_argument("which", choices=list(FIGURES))
    parser.add_argument("--input", action="append", type=_key_path, default=[], metavar="KEY=PATH",
                        help="a file the figure reads (repeat): testset, method outputs, tables ...")
    parser.add_argument("--settings", default="{}")
    parser.add_argument("--out", required=True, help="PNG path (the PDF goes beside it)")
    add_common_arguments(parser)


def run(args):
    setup_logging(args.log)
    settings = {"bootstrap": 1000, "seed": 0, "synthetic": True, **json.loads(args.settings)}
    fig = FIGURES[args.which](dict(args.input), settings)
    fig.text(0.01, 0.002, data_source_note(bool(settings["synthetic"])), fontsize=6, color="0.4")
    save_figure(fig, args.out)
    log.info("wrote %s (+ .pdf)", args.out)
    return 0
