"""Scores of every method, per image and level, against two references.

Paper protocol: the original (acquired) image is taken as clean: psnr, ssim, rmse.
Truth: the phantom's noiseless expected counts, which the paper could not have: *_truth columns.
Blind rows (noise_level 0) score the denoised *originals* against the truth only (``evaluate.rows``).
Every scored image, and every image the segmenter reads, passes the one scoring rule first
(``evaluate.rule``: clipped to [0, 255] as the references are).
Segmentation: the lesion U-Net on the originals and on each method's blind-denoised originals, pooled
(Table 8) and as pixel counts per image (for the claims' bootstrap over test images).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from spectbone.noise.augment import load_testset
from spectbone.evaluate.metrics import psnr, rmse, ssim
from spectbone.evaluate.rows import ESTIMATED, ORACLE
from spectbone.evaluate.rule import as_scored
from spectbone.noise.poisson import MAX_GREY
from spectbone.util.runtime import add_common_arguments, pick_device, set_threads, setup_logging

log = logging.getLogger("spectbone.evaluate.score")
METRICS = {"psnr": psnr, "ssim": ssim, "rmse": rmse}


def gather_outputs(method: str, testset: dict, parts: list[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """A method's outputs: denoised test images [L, N, H, W], the levels it was given there [L, N]
    (NaN where it takes none), and its blind-denoised originals {blind level: (images [N, H, W], levels [N])}."""
    nan_levels = np.full(testset["noisy"].shape[:2], np.nan, np.float32)
    if method == "noisy":
        return testset["noisy"], nan_levels, {ESTIMATED: (testset["clean"], np.full(len(testset["clean"]), np.nan))}
    levels = list(testset["levels"])
    denoised, given, blind = np.full_like(testset["noisy"], np.nan), nan_levels.copy(), {}
    for part in parts:
        with np.load(part) as z:
            if "level" in z.files:  # one BM3D chunk: a test level, or the originals at one blind level
                if int(z["level"]) == 0:
                    which = str(z["blind_level"]) if "blind_level" in z.files else ESTIMATED
                    blind[which] = (z["denoised"], z["sigma_used"])
                else:
                    li = levels.index(int(z["level"]))
                    denoised[li], given[li] = z["denoised"], z["sigma_used"]
            else:
                takes_level = bool(z["takes_level"]) if "takes_level" in z.files else True
                denoised = z["denoised"]
                if takes_level:
                    given = z["sigma_used"]
                for which in (ESTIMATED, ORACLE):
                    key = "blind" if which == ESTIMATED else f"blind_{which}"
                    if key in z.files:
                        sigma = z[f"{key}_sigma"] if takes_level and f"{key}_sigma" in z.files else \
                            np.full(len(z[key]), np.nan)
                        blind[which] = (z[key], sigma)
    if ESTIMATED not in blind or np.isnan(denoised).any():
        raise ValueError(f"{method}: the inference parts do not cover every test level and the blind set")
    return denoised, given, blind


def score(image: np.ndarray, reference: np.ndarray) -> dict:
    """Every metric of one image against one reference, under the scoring rule (``evaluate.rule``)."""
    return {name: fn(reference, as_scored(image)) for name, fn in METRICS.items()}


def denoising_scores(method: str, testset: dict, parts: list[str]) -> pd.DataFrame:
    """Per-image scores (layout: ``evaluate.rows``) of one method at every test level and blind."""
    denoised, given, blind = gather_outputs(method, testset, parts)
    truth = testset.get("truth")
    rows = []
    for li, level in enumerate(testset["levels"]):
        for n, image_id in enumerate(testset["image_id"]):
            row = {"method": method, "image_id": str(image_id), "noise_level": int(level), "blind_level": "",
                   "level_given": float(given[li, n]), **score(denoised[li, n], testset["clean"][n])}
            if truth is not None:
                row.update({f"{k}_truth": v for k, v in score(denoised[li, n], truth[n]).items()})
            rows.append(row)
    if truth is not None:  # blind: the denoised original against the truth, at each level it was given
        for which, (images, sigmas) in blind.items():
            for n, image_id in enumerate(testset["image_id"]):
                rows.append({"method": method, "image_id": str(image_id), "noise_level": 0, "blind_level": which,
                             "level_given": float(sigmas[n]), **{k: np.nan for k in METRICS},
                             **{f"{k}_truth": v for k, v in score(images[n], truth[n]).items()}})
    return pd.DataFrame(rows)


@torch.no_grad()
def segment(model, images: np.ndarray, device, batch: int = 8) -> np.ndarray:
    """Lesion probabilities [N, H, W] of grey images."""
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i:i + batch] / MAX_GREY).float()[:, None].to(device)
        out.append(torch.sigmoid(model(x))[:, 0].cpu().numpy())
    return np.concatenate(out)


def segmentation_counts(prob: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> pd.DataFrame:
    """Pixel TP / FP / FN per image [N, H, W]: what a bootstrap over test images resamples."""
    pred, true = prob >= threshold, truth > 0
    axes = tuple(range(1, pred.ndim))
    return pd.DataFrame({"tp": (pred & true).sum(axis=axes), "fp": (pred & ~true).sum(axis=axes),
                         "fn": (~pred & true).sum(axis=axes)}).astype(np.int64)


def segmentation_scores(prob: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict:
    """Pixel precision, IoU and recall pooled over the test images (Table 8)."""
    tp, fp, fn = (float(v) for v in segmentation_counts(prob, truth, threshold).sum())
    return {"precision": tp / (tp + fp) if tp + fp else 0.0, "iou": tp / (tp + fp + fn) if tp + fp + fn else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0}


def evaluate_segmentation(testset, segmenter_path, parts, names, device, validation, n_boot: int = 200, seed: int = 0):
    """Table 8: the segmenter on the originals and each method's blind-denoised originals, at the cut chosen
    on the validation images ``validation = (images, masks)`` (``evaluate.threshold``).

    Returns the pooled scores, per-image counts, the masks for Fig. 15 and the IoU-vs-threshold curve."""
    from spectbone.evaluate.threshold import choose_threshold, counts_by_threshold, pooled_iou
    from spectbone.models import load_model

    if "lesions" not in testset:
        raise ValueError("the test set has no lesion masks (no truth): Table 8 needs the phantom or real masks")
    model, _ = load_model(segmenter_path, map_location=device)
    model.to(device)
    val_images, val_masks = validation
    choice = choose_threshold(segment(model, as_scored(val_images).astype(np.float32), device), val_masks, n_boot, seed)
    threshold = choice.threshold
    log.info("segmentation threshold %.3f (pooled validation IoU %.3f on %d images, %d lesion pixels; stable "
             "%.3f-%.3f)%s", threshold, choice.val_iou, choice.n_images, choice.lesion_pixels, *choice.stable,
             " AT THE EDGE OF THE GRID" if choice.at_edge else "")
    inputs = {"Original": testset["clean"]}
    for name, part in zip(names, parts):
        with np.load(part) as z:
            inputs[name] = z["denoised"] if "level" in z.files else z["blind"]  # the shared blind level
    rows, per_image, masks = [], [], {"image": testset["clean"], "lesions": testset["lesions"]}
    curve = choice.curve
    for name, images in inputs.items():
        images = as_scored(images).astype(np.float32)
        prob = segment(model, images, device)
        if name == "Original":  # shown beside the validation curve, never used for the choice
            curve = curve.assign(iou_test_original=pooled_iou(counts_by_threshold(prob, testset["lesions"])))
        rows.append({"method": name, **segmentation_scores(prob, testset["lesions"], threshold),
                     "threshold": threshold, "threshold_stable_lo": choice.stable[0],
                     "threshold_stable_hi": choice.stable[1], "threshold_at_edge": choice.at_edge,
                     "grid_min": float(curve["threshold"].min()), "grid_max": float(curve["threshold"].max()),
                     "val_iou": choice.val_iou, "val_images": choice.n_images,
                     "val_lesion_pixels": choice.lesion_pixels})
        counts = segmentation_counts(prob, testset["lesions"], threshold)
        counts.insert(0, "image_id", [str(i) for i in testset["image_id"]])
        counts.insert(0, "method", name)
        per_image.append(counts)
        masks[f"pred_{name}"] = (prob >= threshold).astype(np.uint8)
        masks[f"input_{name}"] = images
    return pd.DataFrame(rows), pd.concat(per_image, ignore_index=True), masks, curve


def validation_set(preprocess_dir, split_csv) -> tuple[np.ndarray, np.ndarray]:
    """The validation images and their lesion masks, as the segmenter's training held them out."""
    from spectbone.noise.augment import load_images, load_truth, split_ids

    ids = split_ids(split_csv, "val")
    if not ids:
        raise ValueError(f"{split_csv} has no validation images: Table 8's cut is chosen on them")
    _, masks = load_truth(preprocess_dir, ids, required=True)
    return load_images(preprocess_dir, ids), masks


def add_arguments(parser, verb):
    parser.add_argument("what", choices=["denoising", "segmentation"])
    parser.add_argument("--testset", required=True)
    parser.add_argument("--parts", nargs="*", default=[], help="inference outputs of the method(s)")
    parser.add_argument("--method", help="method name (denoising)")
    parser.add_argument("--names", nargs="*", help="labels of --parts (segmentation)")
    parser.add_argument("--segmenter", help="segmentation weights")
    parser.add_argument("--masks", help="npz of predicted masks for Fig. 15 (segmentation)")
    parser.add_argument("--per-image", help="CSV of pixel TP/FP/FN per method and image (segmentation)")
    parser.add_argument("--preprocess-dir", help="preprocessed images and truth: the validation set (segmentation)")
    parser.add_argument("--split", help="split.csv naming the validation images (segmentation)")
    parser.add_argument("--curve", help="CSV of pooled IoU against the probability cut (segmentation)")
    parser.add_argument("--bootstrap", type=int, default=200, help="resamples for the cut's choice (segmentation)")
    parser.add_argument("--out", required=True)
    add_common_arguments(parser, seed=True, threads=True, device=True)


def run(args):
    setup_logging(args.log)
    set_threads(args.threads)
    testset = load_testset(args.testset)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.what == "denoising":
        table = denoising_scores(args.method, testset, args.parts)
        table.to_csv(args.out, index=False)
        log.info("%s: mean PSNR %.2f dB over %d rows", args.method, table["psnr"].mean(), len(table))
        return 0
    if len(args.names or []) != len(args.parts):
        raise SystemExit(f"--names ({len(args.names or [])}) must label every --parts file ({len(args.parts)})")
    if not (args.preprocess_dir and args.split):
        raise SystemExit("segmentation needs --preprocess-dir and --split: Table 8's cut is chosen on the "
                         "validation images")
    table, per_image, masks, curve = evaluate_segmentation(testset, args.segmenter, args.parts, args.names,
                                                           pick_device(args.device),
                                                           validation_set(args.preprocess_dir, args.split),
                                                           args.bootstrap, args.seed)
    table.to_csv(args.out, index=False)
    if args.per_image:
        per_image.to_csv(args.per_image, index=False)
    if args.curve:
        curve.to_csv(args.curve, index=False)
    np.savez_compressed(args.masks, **masks)
    log.info("segmentation:\n%s", table.to_string(index=False))
    return 0
