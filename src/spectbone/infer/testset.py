"""Inference over the fixed test set: learned models, BM3D chunks, noise-level estimates, NM1.

Every output holds grey-level images (0..255) and the noise level each method was given:
  learned   denoised [L, N, H, W] for the test levels, plus blind-denoised originals [N, H, W];
            EMANet's level map comes from the stage-1 estimator, never from the true level
  bm3d*     one level (or the blind originals) per job, so Snakemake spreads BM3D over the cores
  estimates HBNE, DWTNE and our estimator on every noisy test image (Table 6)
  nm1       blind denoising of the real NEMA NM1 whole-body scan by each learned model
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from spectbone.noise.augment import load_testset
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.infer.testset")


def infer_learned(model_path, estimator_path, testset, device) -> dict:
    from spectbone.infer.apply import denoise_batch, estimate_levels
    from spectbone.models import load_model

    model, meta = load_model(model_path, map_location=device)
    estimator, _ = load_model(estimator_path, map_location=device)
    model.to(device)
    estimator.to(device)
    kind = meta.get("kind", "")
    noisy, clean = testset["noisy"], testset["clean"]
    denoised = np.empty_like(noisy)
    sigma_used = np.empty(noisy.shape[:2], np.float32)
    for li, level in enumerate(tqdm(testset["levels"], desc=Path(model_path).stem, unit="level")):
        sigma_used[li] = estimate_levels(estimator, noisy[li], device)
        denoised[li] = denoise_batch(model, kind, noisy[li], sigma_used[li], device)
    blind_sigma = estimate_levels(estimator, clean, device)
    blind = denoise_batch(model, kind, clean, blind_sigma, device)
    return dict(denoised=denoised, levels=testset["levels"], sigma_used=sigma_used, blind=blind,
                blind_sigma=blind_sigma, meta=np.array(json.dumps(meta, default=str)))


def infer_bm3d(method: str, testset, chunk: str) -> dict:
    """BM3D with the true level (the paper's use), or Anscombe-BM3D; 'blind' uses the DWTNE estimate."""
    from spectbone.evaluate.classical import anscombe_bm3d, bm3d_denoise
    from spectbone.noise.estimators import dwtne

    if chunk == "blind":
        images, level = testset["clean"], 0
        sigmas = np.array([dwtne(img) for img in images], np.float32)
    else:
        level = int(chunk)
        li = int(np.flatnonzero(testset["levels"] == level)[0])
        images = testset["noisy"][li]
        sigmas = np.full(len(images), level, np.float32)
    out = []
    for img, sigma in tqdm(list(zip(images, sigmas)), desc=f"{method} {chunk}", unit="image"):
        if method == "bm3d":
            out.append(bm3d_denoise(img, float(sigma)))
        else:  # counts per grey level of our noise model, k = mean / sigma^2
            out.append(anscombe_bm3d(img, float(np.mean(img)) / float(sigma) ** 2))
    return dict(level=np.int32(level), denoised=np.stack(out).astype(np.float32), sigma_used=sigmas)


def noise_estimates(estimator_path, testset, device) -> pd.DataFrame:
    """Table 6's raw numbers: every estimator on every noisy test image.

    ``true_noise``: the RMS of (noisy - truth) in grey levels where the phantom's truth is known: the
    image's whole noise (the original's own plus the added level), which an estimator actually sees;
    NaN without truth.
    """
    from spectbone.infer.apply import estimate_levels
    from spectbone.models import load_model
    from spectbone.noise.estimators import dwtne, hbne

    estimator, _ = load_model(estimator_path, map_location=device)
    estimator.to(device)
    truth = testset.get("truth")
    rows = []
    for li, level in enumerate(tqdm(testset["levels"], desc="noise estimates", unit="level")):
        ours = estimate_levels(estimator, testset["noisy"][li], device)
        for n, img in enumerate(testset["noisy"][li]):
            image_id = str(testset["image_id"][n])
            true_noise = float(np.sqrt(np.mean((img.astype(np.float64) - truth[n]) ** 2))) if truth is not None \
                else float("nan")
            rows += [(image_id, int(level), method, estimate, true_noise)
                     for method, estimate in [("HBNE", hbne(img)), ("DWTNE", dwtne(img)), ("Ours", float(ours[n]))]]
    return pd.DataFrame(rows, columns=["image_id", "noise_level", "method", "estimate", "true_noise"])


def add_arguments(parser, verb):
    parser.add_argument("what", choices=["learned", "bm3d", "bm3d_anscombe", "estimates", "nm1"])
    parser.add_argument("--testset", help="npz from `spectbone make-testset`")
    parser.add_argument("--model", help="weights of a learned denoiser")
    parser.add_argument("--models", nargs="+", help="weights of every learned denoiser (nm1)")
    parser.add_argument("--estimator", help="weights of the stage-1 noise estimator")
    parser.add_argument("--chunk", help="BM3D: one test level, or 'blind' for the originals")
    parser.add_argument("--nm1", default="auto", help="NM1 DICOM path (nm1); auto = pydicom-data JPEG-LL.dcm")
    parser.add_argument("--size", type=int, default=256, help="crop size (nm1)")
    parser.add_argument("--out", required=True)
    add_common_arguments(parser, threads=True, device=True)


def run(args):
    setup_logging(args.log)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.what in ("bm3d", "bm3d_anscombe"):  # single-threaded C BM3D: no torch to import or start
        np.savez_compressed(args.out, **infer_bm3d(args.what, load_testset(args.testset), args.chunk))
        log.info("wrote %s", args.out)
        return 0
    from spectbone.util.runtime import pick_device, set_threads

    set_threads(args.threads)
    device = pick_device(args.device)
    if args.what == "nm1":
        from spectbone.infer.blind import blind_denoise_nm1

        np.savez_compressed(args.out, **blind_denoise_nm1(args.nm1, args.models, args.estimator, args.size, device))
        return 0
    testset = load_testset(args.testset)
    if args.what == "learned":
        np.savez_compressed(args.out, **infer_learned(args.model, args.estimator, testset, device))
    elif args.what == "estimates":
        noise_estimates(args.estimator, testset, device).to_csv(args.out, index=False)
    log.info("wrote %s", args.out)
    return 0
