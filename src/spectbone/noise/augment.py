"""Noise augmentation: the seeded training manifest and the materialised test set (paper Table 1).

Training: every training image at every level 1..50 (step 1) is one sample (paper: 270 x 50 = 13,500),
listed in a manifest; the data loader draws the noise on the fly from a per-(image, level, epoch)
seed, so nothing but the manifest is written. Test: levels 5..40 (step 5) are drawn once, with
fixed seeds, and stored, so every method sees the very same noisy pixels.
"""

from __future__ import annotations

import argparse

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from spectbone.noise.poisson import add_poisson_level_noise, noise_seed
from spectbone.util.atomic import atomic_path
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.noise.augment")


def parse_levels(spec: str) -> list[int]:
    """'1:50' (inclusive range), '5:40:5' (with step) or '5,10,20' -> sorted integer levels."""
    if ":" in spec:
        parts = [int(p) for p in spec.split(":")]
        start, stop, step = parts[0], parts[1], parts[2] if len(parts) > 2 else 1
        return list(range(start, stop + 1, step))
    return sorted(int(p) for p in spec.split(",") if p)


def load_images(preprocess_dir: str | Path, image_ids) -> np.ndarray:
    """Stack the preprocessed grey images (0..255) of `image_ids` as float32 [N, H, W]."""
    root = Path(preprocess_dir)
    return np.stack([np.load(root / "images" / f"{i}.npy") for i in image_ids]).astype(np.float32)


def load_truth(preprocess_dir: str | Path, image_ids,
               required: bool | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Noiseless truth and lesion masks for `image_ids`, or (None, None) for real data without truth.

    A missing truth file is an error, never a silent switch to scoring without truth: with
    ``required=True`` every image must have one; with None (infer) either all or none may have one;
    ``required=False`` reads none."""
    if required is False:
        return None, None
    root = Path(preprocess_dir) / "truth"
    files = [root / f"{i}.npz" for i in image_ids]
    missing = [f.stem for f in files if not f.exists()]
    if missing and (required or len(missing) < len(files)):
        raise FileNotFoundError(f"{len(missing)} of {len(files)} images have no truth file in the preprocess "
                                f"folder's truth/ (first: {', '.join(missing[:3])}): rerun preprocess with --truth")
    if not files or missing:
        return None, None
    clean, lesions = [], []
    for f in files:
        with np.load(f) as z:
            clean.append(z["clean"].astype(np.float32))
            lesions.append(z["lesions"].astype(np.uint8))
    return np.stack(clean), np.stack(lesions)


def split_ids(split_csv: str | Path, which: str | tuple[str, ...]) -> list[str]:
    split = pd.read_csv(split_csv)
    which = (which,) if isinstance(which, str) else which
    return split.loc[split["set"].isin(which), "image_id"].tolist()


def load_testset(path) -> dict:
    """The materialised test set written by `make_testset`, as a dict of arrays."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def train_manifest(image_ids: list[str], levels: list[int]) -> pd.DataFrame:
    """One row per (training image, level): the paper's expanded training set, as a list."""
    rows = [(i, image_id, lv) for i, image_id in enumerate(image_ids) for lv in levels]
    return pd.DataFrame(rows, columns=["image_index", "image_id", "level"])


def make_testset(preprocess_dir, split_csv, levels: list[int], seed: int, out: str | Path,
                 truth_required: bool | None = None) -> dict:
    """Draw the test set's noisy images once; store clean, truth, masks and noisy stacks in one npz."""
    ids = split_ids(split_csv, "test")
    clean = load_images(preprocess_dir, ids)
    truth, lesions = load_truth(preprocess_dir, ids, required=truth_required)
    noisy = np.empty((len(levels),) + clean.shape, dtype=np.float32)
    for li, level in enumerate(tqdm(levels, desc="test-set noise", unit="level")):
        for n in range(len(ids)):
            noisy[li, n] = add_poisson_level_noise(clean[n], level, noise_seed(seed, n, level, epoch=-1))
    arrays = dict(image_id=np.array(ids), levels=np.array(levels, dtype=np.int32), clean=clean, noisy=noisy)
    if truth is not None:
        arrays.update(truth=truth, lesions=lesions)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return arrays


def add_arguments(parser, verb):
    parser.add_argument("--preprocess-dir", required=True, help="folder written by `spectbone preprocess`")
    parser.add_argument("--split", required=True, help="split CSV from `spectbone split`")
    parser.add_argument("--levels", required=True, help="levels, e.g. 1:50 or 5:40:5")
    parser.add_argument("--out", required=True)
    if verb == "make-testset":
        parser.add_argument("--truth", action=argparse.BooleanOptionalAction, default=None,
                            help="--truth: every test image must have its phantom truth (error otherwise); "
                                 "--no-truth: real data, score against the original only; default: whatever is there")
    add_common_arguments(parser, seed=True)


def run(args):
    setup_logging(args.log)
    levels = parse_levels(args.levels)
    if args.verb == "train-manifest":
        ids = split_ids(args.split, "train")
        manifest = train_manifest(ids, levels)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        manifest.to_csv(args.out, index=False)
        log.info("training manifest: %d images x %d levels = %d samples", len(ids), len(levels), len(manifest))
    else:
        arrays = make_testset(args.preprocess_dir, args.split, levels, args.seed, args.out, args.truth)
        log.info("test set: %d images x %d levels = %d noisy images (truth: %s)", len(arrays["image_id"]),
                 len(levels), arrays["noisy"].shape[0] * arrays["noisy"].shape[1], "truth" in arrays)
    return 0
