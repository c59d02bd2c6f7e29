"""Inference over the fixed test set: learned models, BM3D chunks, noise-level estimates, NM1.

Every output holds grey-level images (0..255) and the noise level each method was given:
  learned   denoised [L, N, H, W] for the test levels, plus blind-denoised originals [N, H, W];
            at the test levels EMANet's level map comes from the stage-1 estimator, never from the
            true level; on the originals every level-taking method gets the same total-noise
            estimate, and the oracle level where there is truth (``infer.levels``)
  bm3d*     one level (or the blind originals: chunk 'blind' with the shared estimate, 'oracle'
            with the true total noise) per job, so Snakemake spreads BM3D over the cores
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

from spectbone.infer.levels import ESTIMATED, ORACLE, blind_levels
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
    out = dict(denoised=denoised, levels=testset["levels"], sigma_used=sigma_used,
               takes_level=np.bool_(kind == "emanet"), meta=np.array(json.dumps(meta, default=str)))
    for which, sigmas in blind_levels(testset).items():
        if which != ESTIMATED and kind != "emanet":
            continue  # a model that takes no level gives the same output whatever level it is told
        key = "blind" if which == ESTIMATED else f"blind_{which}"
        out[key], out[f"{key}_sigma"] = denoise_batch(model, kind, clean, sigmas, device), sigmas
    return out


BLIND_CHUNKS = {"blind": ESTIMATED, "oracle": ORACLE}  # BM3D chunks of the originals -> the level given


def infer_bm3d(method: str, testset, chunk: str) -> dict:
    """BM3D with the true added level (the paper's use), or Anscombe-BM3D; on the originals ('blind',
    'oracle') the level every method gets there (``infer.levels``)."""
    from spectbone.evaluate.classical import anscombe_bm3d, bm3d_denoise

    blind = BLIND_CHUNKS.get(chunk)
    if blind is not None:
        levels = blind_levels(testset)
        if blind not in levels:
            raise ValueError(f"chunk {chunk!r} needs the phantom's truth (the oracle level is the true total noise)")
        images, level, sigmas = testset["clean"], 0, levels[blind]
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
    result = dict(level=np.int32(level), denoised=np.stack(out).astype(np.float32), sigma_used=sigmas)
    if blind is not None:
        result["blind_level"] = np.array(blind)
    return result


def noise_estimates(estimator_path, testset, device, seed: int = 0) -> pd.DataFrame:
    """Table 6's raw numbers: every estimator on every noisy test image, as drawn and with the lattice broken.

    ``variant`` (``noise.lattice``): the images as drawn, rounded to 8-bit integers, or with a sub-lattice
    dither. ``true_noise``: the RMS of (image - truth) in grey levels of that variant where the phantom's truth
    is known: the image's whole noise (the original's own plus the added level), which an estimator actually
    sees; NaN without truth. 'Lattice' is the give-away read-off itself (``noise.lattice.lattice_level``).
    """
    from spectbone.infer.apply import estimate_levels
    from spectbone.models import load_model
    from spectbone.noise.estimators import dwtne, hbne
    from spectbone.noise.lattice import VARIANTS, break_lattice, lattice_level
    from spectbone.noise.poisson import PoissonLevelNoise

    estimator, _ = load_model(estimator_path, map_location=device)
    estimator.to(device)
    truth = testset.get("truth")
    rng = np.random.default_rng(seed)
    rows = []
    for li, level in enumerate(tqdm(testset["levels"], desc="noise estimates", unit="level")):
        for variant in VARIANTS:
            images = np.stack([break_lattice(img, variant, 1.0 / PoissonLevelNoise(float(level)).gain(clean), rng)
                               for img, clean in zip(testset["noisy"][li], testset["clean"])])
            ours = estimate_levels(estimator, images, device)
            for n, img in enumerate(images):
                image_id = str(testset["image_id"][n])
                true_noise = float(np.sqrt(np.mean((img.astype(np.float64) - truth[n]) ** 2))) if truth is not None \
                    else float("nan")
                rows += [(image_id, int(level), variant, method, estimate, true_noise)
                         for method, estimate in [("HBNE", hbne(img)), ("DWTNE", dwtne(img)), ("Ours", float(ours[n])),
                                                  ("Lattice", lattice_level(img))]]
    return pd.DataFrame(rows, columns=["image_id", "noise_level", "variant", "method", "estimate", "true_noise"])


def add_arguments(parser, verb):
    parser.add_argument("what", choices=["learned", "bm3d", "bm3d_anscombe", "estimates", "nm1"])
    parser.add_argument("--testset", help="npz from `spectbone make-testset`")
    parser.add_argument("--model", help="weights of a learned denoiser")
    parser.add_argument("--models", nargs="+", help="weights of every learned denoiser (nm1)")
    parser.add_argument("--estimator", help="weights of the stage-1 noise estimator")
    parser.add_argument("--chunk", help="BM3D: one test level, or 'blind' / 'oracle' for the originals")
    parser.add_argument("--nm1", default="auto", help="NM1 DICOM path (nm1); auto = pydicom-data JPEG-LL.dcm")
    parser.add_argument("--size", type=int, default=256, help="crop size (nm1)")
    parser.add_argument("--out", required=True)
    add_common_arguments(parser, seed=True, threads=True, device=True)


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
    else:  # estimates (BM3D returned above)
        noise_estimates(args.estimator, testset, device, args.seed).to_csv(args.out, index=False)
    log.info("wrote %s", args.out)
    return 0
