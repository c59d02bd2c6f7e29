"""Patient-level, seeded train / validation / test split (paper: 310 images -> 270 train, 40 test).

Both views of a patient always land on one side, so no anatomy leaks from training into testing.
The validation set is carved from the training patients (it picks the best weights) and is counted
with "train" in Table 1, as the paper has no separate validation set.

Lossy-encoded views (preprocess.csv ``lossy``: a lossy JPEG / JPEG 2000 / JPEG-LS near-lossless
transfer syntax, or LossyImageCompression 01) are kept out of train and val unless
``--allow-lossy-training`` (config ``data.allow_lossy_training``): compression artefacts would be
learnt as signal. Patients are assigned as usual; a lossy view of a train/val patient is left out
of the split (logged), one of a test patient stays in the test set (denoising it is legitimate).

Before writing, `check_no_leak` verifies what the split promises and logs it: no patient
(pseudonym) and, given convert's manifest (``--manifest``), no SOP instance (``sop_instance_id``)
has images on two sides. A SOP instance under two patient IDs (a study re-exported with another
ID) is exactly what a patient-level split cannot see; the run stops naming the pseudonyms.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from spectbone.util.outputs import truthy
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.prep.split")


def split_patients(images: pd.DataFrame, test_fraction: float, val_fraction: float, seed: int,
                   n_test_images: int | None = None, allow_lossy_training: bool = False) -> pd.DataFrame:
    """Assign each kept image's patient to train/val/test; returns image_id, patient_id, view, set.

    Lossy views (column ``lossy``, when present) are dropped from train/val unless allowed."""
    if images.empty:
        raise ValueError("no usable images to split: every image was rejected or screened out")
    patients = np.array(sorted(images["patient_id"].unique()))
    rng = np.random.default_rng(seed)
    rng.shuffle(patients)
    per_patient = images.groupby("patient_id").size()
    target_test = n_test_images if n_test_images else round(test_fraction * len(images))
    test, n = [], 0
    for p in patients:
        if n >= target_test:
            break
        test.append(p)
        n += int(per_patient[p])
    rest = [p for p in patients if p not in set(test)]
    n_val = max(1, round(val_fraction * len(rest))) if len(rest) > 1 else 0
    val = set(rest[:n_val])
    sets = {p: "test" for p in test} | {p: ("val" if p in val else "train") for p in rest}
    out = images[["image_id", "patient_id", "view"]].copy()
    out["set"] = out["patient_id"].map(sets)
    if "lossy" in images and not allow_lossy_training:
        lossy = images["lossy"].map(truthy).to_numpy(dtype=bool)
        dropped = lossy & out["set"].isin(["train", "val"]).to_numpy()
        if dropped.any():
            log.info("%d lossy-encoded views of training/validation patients left out of the split "
                     "(data.allow_lossy_training is false)", int(dropped.sum()))
        out = out[~dropped]
        if (out["set"] == "train").sum() == 0:
            raise ValueError("no training images left: every training patient's views are lossy-encoded; set "
                             "data.allow_lossy_training: true to train on them anyway")
    if (out["set"] == "train").sum() == 0 or (out["set"] == "test").sum() == 0:
        raise ValueError(f"too few patients ({len(patients)}) for a train/test split")
    return out.sort_values(["set", "image_id"]).reset_index(drop=True)


def check_no_leak(split: pd.DataFrame, manifest: pd.DataFrame | None = None) -> str:
    """Raise ValueError if a patient or a SOP instance has images on two sides; else say what was checked."""
    sides = split.groupby("patient_id")["set"].nunique()
    if (sides > 1).any():
        raise ValueError("patients on two sides of the split: " + ", ".join(sides[sides > 1].index[:10]))
    said = f"{len(sides)} patients, each on one side"
    if manifest is None or "sop_instance_id" not in manifest:
        return said + " (no manifest with SOP instances given: instances not checked)"
    sop = manifest.loc[manifest["image_id"].astype(str) != "", ["image_id", "sop_instance_id"]]
    joined = split.merge(sop, on="image_id", how="left")
    known = joined[joined["sop_instance_id"].fillna("").astype(str) != ""]
    per_sop = known.groupby("sop_instance_id")["set"].nunique()
    if (per_sop > 1).any():
        raise ValueError("SOP instances with images on two sides of the split (one image under two patient IDs?): "
                         + ", ".join(per_sop[per_sop > 1].index[:10]))
    return said + f"; {len(per_sop)} SOP instances, each on one side"


def add_arguments(parser, verb):
    parser.add_argument("--preprocess", required=True, help="preprocess.csv from `spectbone preprocess`")
    parser.add_argument("--manifest", default=None,
                        help="convert's manifest.csv: also check that no SOP instance is on two sides")
    parser.add_argument("--out", required=True, help="split CSV to write")
    parser.add_argument("--test-fraction", type=float, default=40 / 310)
    parser.add_argument("--n-test-images", type=int, default=None, help="overrides --test-fraction")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--allow-lossy-training", action="store_true",
                        help="let lossy-encoded views into train/val (default: test only)")
    add_common_arguments(parser, seed=True)


def run(args):
    setup_logging(args.log)
    table = pd.read_csv(args.preprocess, keep_default_na=False)
    kept = table[table["keep"].map(truthy)]
    split = split_patients(kept, args.test_fraction, args.val_fraction, args.seed, args.n_test_images,
                           allow_lossy_training=args.allow_lossy_training)
    manifest = pd.read_csv(args.manifest, keep_default_na=False, dtype=str) if args.manifest else None
    log.info("leakage check: %s", check_no_leak(split, manifest))
    split.to_csv(args.out, index=False)
    counts = split.groupby("set").agg(images=("image_id", "size"), patients=("patient_id", "nunique"))
    log.info("split of %d images:\n%s", len(split), counts.to_string())
    return 0
