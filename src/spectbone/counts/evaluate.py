"""`spectbone count-split`: score one method on real counts by binomial count splitting.

For each case (a frame of NM1, of a site's studies, or of the phantom's test patients), each count
fraction p and each seed: y1 ~ Binomial(counts, p) goes to the method, y2 = counts - y1 is held out,
and the unbiased per-pixel error (k x - y2)^2 - y2, k = (1 - p) / p (`thinning`) is summed over square
tiles of the frame. Rows: case, fraction, seed, tile, heldout (the tile lies in the part of the data
fine-tuning never saw, `sites.holdout_masks`), excess_sum, pixels and, where truth exists (the phantom),
true_sum: the same squared error computed against the truth, so the estimate can be checked.

A second CSV has one row per case, fraction and seed: the Gaussian width used (chosen on other seeds'
splits) and, with truth, PSNR and SSIM of x / p against the full-count expected image (data range:
its maximum), so all fractions share one scale; the phantom's full-count raw scan (fraction 1, x = the
acquired counts) is scored the same way, for the "half-time scan" question. The estimate of the first
case at the figure fraction and seed 0 is kept in an npz for the figure.
The fine-tuned model is scored only on held-out tiles: elsewhere it has seen the counts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from spectbone.counts.methods import Context, choose_gaussian_sigma, method
from spectbone.counts.sites import holdout_masks, load_cases
from spectbone.counts.thinning import (FRACTIONS, binomial_split, excess_error_map, tile_grid, tile_sums,
                                       true_error_map)
from spectbone.util.atomic import atomic_path, save_csv
from spectbone.util.runtime import add_common_arguments, pick_device, set_threads, setup_logging

log = logging.getLogger("spectbone.counts.evaluate")
TILE = 64  # px
VALIDATION_SEED_OFFSET = 1000  # the Gaussian's width is chosen on seeds 1000+, never on the scored ones
FIGURE_FRACTION = 0.25


def frame_quality(estimate: np.ndarray, p: float, expected: np.ndarray) -> dict:
    """PSNR / SSIM of estimate / p against the full-count truth, data range = the truth's maximum."""
    from spectbone.evaluate.metrics import psnr, ssim

    rng = float(np.max(expected))
    x = np.asarray(estimate, np.float64) / p
    return {"psnr": psnr(expected, x, data_range=rng), "ssim": ssim(expected, x, data_range=rng)}


def score_method(key: str, cases, ctx: Context, fractions, seeds, tile: int = TILE, holdout_seed: int = 0,
                 progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray | None]:
    """(tile rows, frame rows, the figure's example estimate) of one method over every case."""
    m = method(key)
    masks = holdout_masks(cases, holdout_seed)
    tiles_rows, frame_rows, example = [], [], None
    jobs = [(c, mask, p, s) for c, mask in zip(cases, masks) for p in fractions for s in seeds]
    for case, mask, p, seed in tqdm(jobs, desc=f"count-split {key}", unit="split", disable=not progress):
        tiles = tile_grid(case.counts.shape, tile)
        held = np.array([bool(mask[t].all()) for t in tiles])
        if key == "emanet_finetuned" and not held.any():
            continue  # every pixel of this case was seen in fine-tuning
        rng = np.random.default_rng(seed)  # numpy seed s, as a user would thin a scan
        y1, y2 = binomial_split(case.counts, p, rng)
        if key == "gaussian":
            ctx.gaussian_sigma = choose_gaussian_sigma(case.counts, p, [VALIDATION_SEED_OFFSET + seed])
        x = m.apply(y1, ctx)
        ex_sums, pixels = tile_sums(excess_error_map(x, y2, p), tiles)
        true_sums = tile_sums(true_error_map(x, case.expected, p), tiles)[0] if case.expected is not None else \
            np.full(len(tiles), np.nan)
        for t in range(len(tiles)):
            if key == "emanet_finetuned" and not held[t]:
                continue
            tiles_rows.append({"case": case.case_id, "fraction": p, "seed": seed, "tile": t, "heldout": held[t],
                               "excess_sum": ex_sums[t], "true_sum": true_sums[t], "pixels": pixels[t]})
        row = {"case": case.case_id, "fraction": p, "seed": seed,
               "gaussian_sigma": ctx.gaussian_sigma if key == "gaussian" else np.nan}
        if case.expected is not None:
            row.update(frame_quality(x, p, case.expected))
        frame_rows.append(row)
        if example is None and p == FIGURE_FRACTION and seed == seeds[0]:
            example = x
    if key == "raw":  # the full-count scan itself, scored against the truth (no held-out part)
        for case in cases:
            if case.expected is not None:
                frame_rows.append({"case": case.case_id, "fraction": 1.0, "seed": -1, "gaussian_sigma": np.nan,
                                   **frame_quality(case.counts, 1.0, case.expected)})
    return pd.DataFrame(tiles_rows), pd.DataFrame(frame_rows), example


def load_context(args, device) -> Context:
    """The networks the method needs, from the files the rule declares."""
    from spectbone.models import load_model

    ctx = Context(device=device)
    needed = method(args.method).model
    if needed and not args.model:
        raise SystemExit(f"method {args.method} needs --model")
    if needed:
        model, meta = load_model(args.model, map_location=device)
        ctx.models[needed] = (model.to(device), meta)
    if needed == "paper":
        from spectbone.infer.denoise import resolve_estimator

        ctx.estimator, _ = resolve_estimator(Path(args.model), meta, args.estimator, device)
    return ctx


def parse_list(text: str, cast=float) -> list:
    return [cast(v) for v in str(text).split(",") if v.strip()]


def add_arguments(parser, verb):
    parser.add_argument("--dataset", required=True, choices=["nm1", "site", "phantom"])
    parser.add_argument("--method", required=True, help="a key of spectbone.counts.methods.METHODS")
    parser.add_argument("--model", default=None, help="the method's network (count-domain, fine-tuned or paper EMANet)")
    parser.add_argument("--estimator", default=None, help="the paper-protocol EMANet's stage-1 network")
    parser.add_argument("--manifest", default=None, help="site: the convert manifest of data.dicom_dir")
    parser.add_argument("--views", default=None, help="phantom: `spectbone count-views` output")
    parser.add_argument("--fractions", default=",".join(f"{f:g}" for f in FRACTIONS))
    parser.add_argument("--seeds", default="0,1,2", help="thinning seeds scored")
    parser.add_argument("--holdout-seed", type=int, default=0, help="seed of the site's patient hold-out")
    parser.add_argument("--tile", type=int, default=TILE)
    parser.add_argument("--out", required=True, help="per-tile scores (CSV)")
    parser.add_argument("--frames", required=True, help="per-frame rows (CSV): Gaussian width, PSNR/SSIM with truth")
    parser.add_argument("--example", required=True, help="npz: the estimate of the first case at 25 %%, seed 0")
    add_common_arguments(parser, threads=True, device=True)


def run(args) -> int:
    setup_logging(args.log)
    set_threads(args.threads)
    device = pick_device(args.device)
    cases = load_cases(args.dataset, args.manifest, args.views)
    ctx = load_context(args, device)
    seeds = parse_list(args.seeds, int)
    tiles, frames, example = score_method(args.method, cases, ctx, parse_list(args.fractions), seeds, args.tile,
                                          args.holdout_seed)
    save_csv(args.out, tiles)
    save_csv(args.frames, frames)
    with atomic_path(args.example) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, estimate=example if example is not None else np.zeros((0, 0), np.float32),
                 fraction=np.float32(FIGURE_FRACTION))
    if len(tiles):
        log.info("%s on %s: %s", args.method, args.dataset, "; ".join(
            f"{p:g}: {g.excess_sum.sum() / g.pixels.sum():.4g}" for p, g in tiles.groupby("fraction")))
    return 0
