"""`spectbone count-views`: the phantom's whole-body frames at native sampling, with their truth.

The count-domain family trains where the paper-protocol family cannot: on the acquired counts of each
frame as the camera stored them (no crop, no resize, no grey mapping) with the phantom's noiseless
expected counts as the target. The phantom's studies are read back from its NM DICOM through the same
reader as a hospital's, linked to the truth by (file sha256, frame), and split by patient into
train / val / test (both views of a patient on one side). One npz: ``counts`` and ``expected``
[N, H, W] float32, ``set``, ``study`` and ``view`` per frame.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from spectbone.util.hashing import sha256_file
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.counts.views")


def split_studies(studies: list[str], n_val: int, n_test: int, seed: int) -> dict[str, str]:
    """study -> train / val / test, seeded; at least one training study."""
    if n_val + n_test >= len(studies):
        raise ValueError(f"{len(studies)} phantom studies cannot give {n_val} validation and {n_test} test "
                         "patients and still leave one to train on")
    order = np.random.default_rng([seed, 0xC0DE]).permutation(sorted(studies))
    return {s: ("test" if i < n_test else "val" if i < n_test + n_val else "train") for i, s in enumerate(order)}


def phantom_views(cohort: Path, truth: Path, n_val: int, n_test: int, seed: int) -> dict[str, np.ndarray]:
    """Every frame of the phantom cohort with its expected counts and its side of the patient split."""
    from spectbone.dicom.read import read_nm_images

    labels = pd.read_csv(truth / "labels.csv", keep_default_na=False, dtype={"study": str, "source_sha256": str})
    sides = split_studies(sorted(labels["study"].unique()), n_val, n_test, seed)
    counts, expected, sets, studies, views = [], [], [], [], []
    for study, rows in labels.groupby("study", sort=True):
        path = cohort / f"{study}.dcm"
        if not path.is_file() or sha256_file(path) != rows["source_sha256"].iloc[0]:
            raise ValueError(f"{study}: the cohort's DICOM file is missing or not the one the truth describes")
        images = read_nm_images(path)
        for rec in rows.itertuples(index=False):
            with np.load(truth / f"{study}_{rec.view}.npz") as z:
                exp = z["expected"].astype(np.float32)
            c = images[int(rec.frame)].counts.astype(np.float32)
            if c.shape != exp.shape:
                raise ValueError(f"{study} {rec.view}: counts {c.shape} and truth {exp.shape} differ in shape")
            counts.append(c)
            expected.append(exp)
            sets.append(sides[study])
            studies.append(study)
            views.append(str(rec.view))
    if len({c.shape for c in counts}) != 1:
        raise ValueError("phantom frames differ in size; the native-sampling set needs one frame size")
    return {"counts": np.stack(counts), "expected": np.stack(expected), "set": np.array(sets),
            "study": np.array(studies), "view": np.array(views)}


def load_views(path: str | Path, which: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of `count-views` output, only the frames of set `which` when given."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if which is not None:
        keep = arrays["set"] == which
        if not keep.any():
            raise ValueError(f"{Path(path).name} has no {which} frames")
        arrays = {k: v[keep] for k, v in arrays.items()}
    return arrays


def add_arguments(parser, verb):
    parser.add_argument("--cohort", required=True, help="the phantom's NM DICOM folder")
    parser.add_argument("--truth", required=True, help="the phantom's truth folder (labels.csv + expected counts)")
    parser.add_argument("--out", required=True, help="npz of native frames, truth and patient split")
    parser.add_argument("--val-patients", type=int, default=2)
    parser.add_argument("--test-patients", type=int, default=2)
    add_common_arguments(parser, seed=True)


def run(args) -> int:
    from spectbone.util.atomic import atomic_path

    setup_logging(args.log)
    arrays = phantom_views(Path(args.cohort), Path(args.truth), args.val_patients, args.test_patients, args.seed)
    with atomic_path(args.out) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    n = {s: int((arrays["set"] == s).sum()) for s in ("train", "val", "test")}
    log.info("%d native frames %s: %s", len(arrays["set"]), arrays["counts"].shape[1:], n)
    return 0
