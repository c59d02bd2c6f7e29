"""The paper's data figures 7-15, drawn from the DAG's outputs (PNG + PDF each).

The test image shown is the first test image (a fixed, seeded choice); zoom boxes are fractions of
the shoulder-to-pelvis crop, so they land on the same anatomy at every image size.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from spectbone.util.methods import display_name  # noqa: E402
from spectbone.util.outputs import save_figure  # noqa: E402
from spectbone.util.runtime import add_common_arguments, setup_logging  # noqa: E402
from spectbone.paper.tables import Results, emanet_name, noise_region_box  # noqa: E402

log = logging.getLogger("spectbone.paper.figures")
# (row0, row1, col0, col1) as fractions of the crop: the paper's Fig. 11 regions
ZOOMS = {"scapula": (0.04, 0.30, 0.05, 0.40), "sternum": (0.08, 0.38, 0.38, 0.62), "ribs": (0.22, 0.50, 0.58, 0.92)}
BLIND = ["BM3D", "DnCNN", "RED-CNN", "WGAN", "EMANet"]
SHOWN = 0  # index of the test image every figure shows


def _load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _show(ax, img, title="", vmax=255.0, cmap="gray_r"):
    ax.imshow(img, cmap=cmap, vmin=0 if cmap != "RdBu_r" else -vmax, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _zoom(img, box):
    h, w = img.shape
    r0, r1, c0, c1 = box
    return img[int(r0 * h):int(r1 * h), int(c0 * w):int(c1 * w)]


def _footer(fig, res: Results):
    from spectbone.util.outputs import data_source_note

    fig.text(0.01, 0.005, data_source_note(bool(res.s["synthetic"])), fontsize=6, color="0.4")


def _level_index(testset, level) -> int:
    return int(np.flatnonzero(testset["levels"] == int(level))[0])


def fig07(res, testset):
    levels = [lv for lv in (5, 20, 40) if lv in testset["levels"]]
    fig, axes = plt.subplots(1, len(levels) + 1, figsize=(2.2 * (len(levels) + 1), 2.8))
    clean = testset["clean"][SHOWN]
    _show(axes[0], clean, "original")
    r0, r1, c0, c1 = noise_region_box(clean.shape)
    axes[0].add_patch(Rectangle((c0, r0), c1 - c0, r1 - r0, fill=False, ec="red", lw=1))
    for ax, lv in zip(axes[1:], levels):
        _show(ax, testset["noisy"][_level_index(testset, lv), SHOWN], f"sigma = {lv}")
    fig.suptitle("Fig. 7  Bone scan at different noise levels (red: Table 2's noise region)", fontsize=9)
    return fig


def _noise_maps(res, testset, names_labels, level):
    li = _level_index(testset, level)
    noisy = testset["noisy"][li, SHOWN]
    maps = [("true noise (noisy - original)", noisy - testset["clean"][SHOWN])]
    for name, label in names_labels:
        out = _load(res.root / "infer" / f"{name}.npz")
        maps.append((label, noisy - out["denoised"][li, SHOWN]))
    vmax = float(np.percentile(np.abs(maps[0][1]), 99)) or 1.0
    fig, axes = plt.subplots(1, len(maps), figsize=(2.2 * len(maps), 2.9))
    for ax, (label, m) in zip(axes, maps):
        _show(ax, m, label, vmax=vmax, cmap="RdBu_r")
    return fig


def fig08(res, testset):
    lam, level = float(res.s["lam"]), int(res.s["figure_level"])
    fig = _noise_maps(res, testset, [(emanet_name(p, "full", lam), f"predicted, {p} pretraining")
                                     for p in ["none", "natural", "ct"]], level)
    fig.suptitle(f"Fig. 8  Predicted noise maps with and without transfer (sigma = {level})", fontsize=9)
    return fig


def _image_grid(res, testset, panels, title, zoom=None):
    fig, axes = plt.subplots(2 if zoom else 1, len(panels), figsize=(2.1 * len(panels), 5.4 if zoom else 2.9),
                             squeeze=False)
    for j, (label, img) in enumerate(panels):
        _show(axes[0, j], img, label)
        if zoom:
            _show(axes[1, j], _zoom(img, ZOOMS[zoom]), f"{label}: {zoom}")
    fig.suptitle(title, fontsize=9)
    return fig


def fig09(res, testset):
    lam, level = float(res.s["lam"]), int(res.s["figure_level"])
    li = _level_index(testset, level)
    panels = [("noisy", testset["noisy"][li, SHOWN])]
    for label, l_ in [("MSE", 0.0), ("perceptual", 1.0), (f"composite (lambda {lam:g})", lam)]:
        panels.append((label, _load(res.root / "infer" / f"{emanet_name('ct', 'full', l_)}.npz")["denoised"][li, SHOWN]))
    panels.append(("original", testset["clean"][SHOWN]))
    return _image_grid(res, testset, panels, f"Fig. 9  Loss functions compared (sigma = {level})", zoom="ribs")


def fig10(res, testset):
    sweep = sorted(float(v) for v in res.s["lambda_sweep"])
    stats = {m: [res.summary(emanet_name("ct", "full", lam), None, m) for lam in sweep] for m in ("psnr", "ssim")}
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for metric, axis, color in [("psnr", ax, "C0"), ("ssim", ax.twinx(), "C1")]:
        mean = np.array([s[0] for s in stats[metric]])
        err = np.array([[s[0] - s[1], s[2] - s[0]] for s in stats[metric]]).T
        axis.errorbar(sweep, mean, yerr=err, marker="o", color=color, capsize=3, label=metric.upper())
        axis.set_ylabel(metric.upper(), color=color)
    ax.set_xlabel("lambda (perceptual weight)")
    ax.set_title("Fig. 10  PSNR and SSIM against lambda (mean, 95% CI)", fontsize=9)
    return fig


def _method_outputs(res, testset, level=None):
    """(label, image) of BM3D and the learned methods: at a test level, or blind (level None)."""
    out = []
    bm3d = _load(res.root / "infer" / "bm3d" / f"{'blind' if level is None else level}.npz")
    out.append(("BM3D", bm3d["denoised"][SHOWN]))
    for name in ["dncnn", "redcnn", "wgan", res.s["main"]]:
        z = _load(res.root / "infer" / f"{name}.npz")
        img = z["blind"][SHOWN] if level is None else z["denoised"][_level_index(testset, level), SHOWN]
        out.append((display_name(name), img))
    return out


def fig11(res, testset):
    level = int(res.s["figure_level"])
    li = _level_index(testset, level)
    panels = [("noisy", testset["noisy"][li, SHOWN])] + _method_outputs(res, testset, level) + \
             [("original", testset["clean"][SHOWN])]
    fig, axes = plt.subplots(1 + len(ZOOMS), len(panels), figsize=(1.9 * len(panels), 2.4 * (1 + len(ZOOMS))),
                             squeeze=False)
    for j, (label, img) in enumerate(panels):
        _show(axes[0, j], img, label)
        for i, (zname, box) in enumerate(ZOOMS.items(), start=1):
            _show(axes[i, j], _zoom(img, box), zname if j == 0 else "")
    fig.suptitle(f"Fig. 11  Denoising compared, with zooms (sigma = {level})", fontsize=9)
    return fig


def fig12(res, testset):
    panels = [("original", testset["clean"][SHOWN])] + _method_outputs(res, testset)
    nm1 = _load(res.root / "infer" / "nm1.npz")
    nm1_panels = [("NM1 original", nm1["original"])] + [(f"NM1 {str(n)}", d) for n, d in zip(nm1["names"], nm1["denoised"])]
    n = max(len(panels), len(nm1_panels))
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 5.6), squeeze=False)
    for row, items in enumerate([panels, nm1_panels]):
        for j in range(n):
            if j < len(items):
                _show(axes[row, j], items[j][1], items[j][0])
            else:
                axes[row, j].axis("off")
    fig.suptitle("Fig. 12  Blind denoising of original images: phantom (top), real NEMA NM1 scan (bottom)", fontsize=9)
    return fig


def fig13(res, testset):
    panels = [("original", testset["clean"][SHOWN])] + _method_outputs(res, testset)
    fig, axes = plt.subplots(1, len(panels), figsize=(1.9 * len(panels), 2.6), squeeze=False)
    for j, (label, img) in enumerate(panels):
        _show(axes[0, j], _zoom(img, (0.10, 0.50, 0.15, 0.85)), label)
    fig.suptitle("Fig. 13  Zoom of Fig. 12 (chest)", fontsize=9)
    return fig


def fig14(res, testset):
    original = testset["clean"][SHOWN]
    maps = [(label, original - img) for label, img in _method_outputs(res, testset) if label != "BM3D"]
    vmax = max(float(np.percentile(np.abs(m), 99)) for _, m in maps) or 1.0
    fig, axes = plt.subplots(1, len(maps), figsize=(2.1 * len(maps), 2.9), squeeze=False)
    for ax, (label, m) in zip(axes[0], maps):
        _show(ax, m, label, vmax=vmax, cmap="RdBu_r")
    fig.suptitle("Fig. 14  Noise maps = original - blind-denoised", fontsize=9)
    return fig


def fig15(res, testset):
    masks = _load(res.root / "eval" / "segmentation_masks.npz")
    names = ["Original"] + BLIND
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(1.9 * (len(names) + 1), 2.9), squeeze=False)
    _show(axes[0, 0], masks["image"][SHOWN], "truth (red)")
    axes[0, 0].contour(masks["lesions"][SHOWN], levels=[0.5], colors="red", linewidths=0.6)
    for ax, name in zip(axes[0, 1:], names):
        _show(ax, masks[f"input_{name}"][SHOWN], name)
        ax.contour(masks["lesions"][SHOWN], levels=[0.5], colors="red", linewidths=0.4)
        if masks[f"pred_{name}"][SHOWN].any():
            ax.contour(masks[f"pred_{name}"][SHOWN], levels=[0.5], colors="lime", linewidths=0.6)
    fig.suptitle("Fig. 15  Lesion segmentation: truth (red), prediction (green)", fontsize=9)
    return fig


FIGURES = {"07": fig07, "08": fig08, "09": fig09, "10": fig10, "11": fig11, "12": fig12, "13": fig13, "14": fig14,
           "15": fig15}


def add_arguments(parser, verb):
    parser.add_argument("which", choices=list(FIGURES))
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--settings", default="{}")
    parser.add_argument("--out", required=True, help="PNG path (the PDF goes beside it)")
    add_common_arguments(parser)


def run(args):
    setup_logging(args.log)
    settings = {"bootstrap": 1000, "seed": 0, "synthetic": True, **json.loads(args.settings)}
    res = Results(args.results_dir, settings)
    testset = _load(Path(args.results_dir) / "noise" / "testset.npz")
    fig = FIGURES[args.which](res, testset)
    _footer(fig, res)
    save_figure(fig, args.out)
    log.info("wrote %s (+ .pdf)", args.out)
    return 0
