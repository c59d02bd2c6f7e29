"""The real scans a site denoises and scores on, and which of their pixels fine-tuning may see.

Two sources, one shape (``Case``: an id, the patient it belongs to, the frame's counts):
- ``nm1``: the public NEMA NM1 whole-body bone scan (pydicom-data), the default run's real case;
- ``site``: every whole-body view a `spectbone convert` manifest lists as ok (a hospital's
  ``data.dicom_dir``), under its pseudonymous ids, counts read from the converted images.

Held-out part (`holdout_masks`): self-supervised fine-tuning must never see what it is scored on.
With several patients the site is split by patient (seeded; a share of the patients held out whole).
With a single scan (NM1) the frame is cut into bands of BAND rows and every third band, starting with
the second, is held out: the fine-tuned model is scored only on those bands, on rows it never saw, from
head to feet.

Fine-tuning's own validation part (`finetune_masks`) is a third part again: Noise2Noise on one fixed
acquisition can learn that acquisition's counts, so a score on the pixels it trains on improves while
unseen anatomy gets worse (measured on NM1: 12 % better on its training bands, 4-10 % worse on the
held-out ones). The epoch is therefore chosen on pixels it does not train on: the bands numbered 2, 5,
... of a single scan, or a quarter of the remaining patients (at least one) of a site. The bands are
narrow (64 rows) so that training, validation and held-out rows sample every region of the body alike:
with 128-row bands the validation rows (thorax, lower legs) improved while the held-out ones (head,
thighs) got worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

BAND = 64  # rows per band of a single scan: train / validation / held-out bands interleave along the body
HOLDOUT_SHARE = 0.5  # share of a multi-patient site's patients kept away from fine-tuning


@dataclass
class Case:
    case_id: str
    patient_id: str
    counts: np.ndarray
    expected: np.ndarray | None = None


def nm1_cases(path: str = "auto") -> list[Case]:
    from spectbone.dicom.nm1 import nm1_path
    from spectbone.dicom.read import read_nm_images

    return [Case(f"nm1_{i}", "nm1", im.counts.astype(np.float32)) for i, im in enumerate(read_nm_images(nm1_path(path)))]


def manifest_cases(manifest: str | Path) -> list[Case]:
    """The whole-body views of a `spectbone convert` manifest (status ok), by their pseudonymous ids."""
    from spectbone.prep.preprocess import usable_rows

    manifest = Path(manifest)
    rows = usable_rows(pd.read_csv(manifest, keep_default_na=False, dtype={"image_id": str, "patient_id": str}))
    return [Case(r.image_id, r.patient_id, np.load(manifest.parent / r.image_path).astype(np.float32))
            for r in rows.itertuples(index=False)]


def phantom_cases(views: str | Path) -> list[Case]:
    """The phantom's test frames at native sampling, with their noiseless truth."""
    from spectbone.counts.views import load_views

    v = load_views(views, "test")
    return [Case(f"{s}_{w}", str(s), c, e) for s, w, c, e in zip(v["study"], v["view"], v["counts"], v["expected"])]


def load_cases(dataset: str, manifest: str | None = None, views: str | None = None) -> list[Case]:
    if dataset == "nm1":
        return nm1_cases()
    if dataset == "site":
        if not manifest:
            raise ValueError("the site data set needs --manifest (the convert manifest of data.dicom_dir)")
        return manifest_cases(manifest)
    if dataset == "phantom":
        if not views:
            raise ValueError("the phantom data set needs --views (`spectbone count-views` output)")
        return phantom_cases(views)
    raise ValueError(f"unknown data set {dataset!r} (nm1, site, phantom)")


def holdout_masks(cases: list[Case], seed: int, share: float = HOLDOUT_SHARE) -> list[np.ndarray]:
    """Per case, the pixels fine-tuning must not see (True = held out for scoring)."""
    patients = sorted({c.patient_id for c in cases})
    if len(patients) == 1:
        masks = []
        for c in cases:
            rows = np.arange(c.counts.shape[0]) // BAND % 3 == 1
            masks.append(np.repeat(rows[:, None], c.counts.shape[1], axis=1))
        return masks
    order = np.random.default_rng([seed, 0x517E]).permutation(patients)
    held = set(order[:max(1, int(round(share * len(patients))))])
    return [np.full(c.counts.shape, c.patient_id in held) for c in cases]


def finetune_masks(cases: list[Case], seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(train, validation) masks per case for fine-tuning: disjoint from each other and from the held-out part."""
    held = holdout_masks(cases, seed)
    patients = sorted({c.patient_id for c, h in zip(cases, held) if not h.all()})
    if len(patients) < 2:  # one scan (or one remaining patient): bands again
        val = []
        for c in cases:
            rows = np.arange(c.counts.shape[0]) // BAND % 3 == 2
            val.append(np.repeat(rows[:, None], c.counts.shape[1], axis=1))
    else:
        order = np.random.default_rng([seed, 0x7A11]).permutation(patients)
        val_patients = set(order[:max(1, len(patients) // 4)])
        val = [np.full(c.counts.shape, c.patient_id in val_patients) for c in cases]
    val = [v & ~h for v, h in zip(val, held)]
    train = [~v & ~h for v, h in zip(val, held)]
    return train, val
