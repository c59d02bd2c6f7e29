"""Who is scanned: the patient and study containers, and how patients and lesion counts are drawn."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import truncnorm

from spectbone.phantom.geometry import PIXEL_MM


@dataclass
class Patient:
    """Everything that varies between patients (all drawn by `sample_patient`)."""

    height_cm: float = 170.0
    width_scale: float = 1.0  # skeletal breadth relative to height-scaled reference
    habitus: float = 1.0  # soft-tissue width/thickness (thin < 1 < obese)
    top_row: float = 90.0  # image row of the vertex
    center_col: float = 128.0
    arm_abduction_deg: tuple[float, float] = (6.0, 6.0)  # (right, left), outward from the body
    elbow_flex_deg: tuple[float, float] = (4.0, 4.0)
    leg_abduction_deg: tuple[float, float] = (2.0, 2.0)
    foot_rotation_deg: tuple[float, float] = (20.0, 20.0)
    bone_ratio: float = 1.0  # bone-to-soft-tissue uptake multiplier
    kidney_uptake: float = 1.0
    bladder_fill: float = 1.0
    bladder_uptake: float = 1.0
    counts_target: float = 3.3e6  # mean total counts over the two views (before any problem)
    sex: str = "F"
    variation_seed: int = 0  # seeds the per-patient irregularity of the anatomy (ribs)


@dataclass
class Lesion:
    site: str
    center_cm: tuple[float, float]
    radius_cm: tuple[float, float]
    contrast: float


@dataclass
class ViewImage:
    view: str
    expected: np.ndarray  # float32 noiseless expected counts
    counts: np.ndarray  # uint16 acquired counts
    lesions: np.ndarray  # uint8 mask
    crop: tuple[int, int, int, int]  # top, bottom (excl.), left, right (excl.)
    body: np.ndarray  # bool outline mask


@dataclass
class Study:
    patient: Patient
    problem: str
    lesions: list[Lesion]
    views: dict[str, ViewImage] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    benign: list[dict] = field(default_factory=list)  # degenerative joints, healed fractures, injection site



# Counts per view of a routine whole-body sweep: log-normal around the real NM1 scan's 3.6 M counts
# (sigma 0.3 in log: most studies 2-4 M), truncated to the requested range. Log-uniform over 1-4 M
# put the median at 2 M, half NM1's counts per body pixel and peak (issue #11).
TYPICAL_COUNTS = 3.6e6
COUNTS_LOG_SIGMA = 0.3


def sample_counts(rng: np.random.Generator, counts_min: float, counts_max: float) -> float:
    """Target counts per view, near NM1's level and inside [counts_min, counts_max] (one uniform draw)."""
    lo, hi = np.log(counts_min), np.log(counts_max)
    a, b = (lo - np.log(TYPICAL_COUNTS)) / COUNTS_LOG_SIGMA, (hi - np.log(TYPICAL_COUNTS)) / COUNTS_LOG_SIGMA
    u = rng.uniform()
    if b <= -8 or a >= 8:  # the range lies far in one tail: spread log-uniformly over it
        return float(np.exp(lo + u * (hi - lo)))
    z = float(truncnorm.ppf(u, a, b))
    return float(np.clip(np.exp(np.log(TYPICAL_COUNTS) + COUNTS_LOG_SIGMA * z), counts_min, counts_max))


def sample_patient(rng: np.random.Generator, counts_min: float = 1e6, counts_max: float = 4e6) -> Patient:
    sex = str(rng.choice(["F", "M"]))
    height = float(np.clip(rng.normal(176.0 if sex == "M" else 163.0, 7.0), 148.0, 196.0))
    ab = rng.uniform(0.0, 9.0)
    return Patient(
        height_cm=height,
        width_scale=float(rng.normal(1.0 if sex == "F" else 1.05, 0.035)),
        habitus=float(np.clip(rng.lognormal(0.08, 0.1), 0.85, 1.4)),
        top_row=float(rng.uniform(25.0, min(140.0, 1024.0 - height * 10 / PIXEL_MM - 20.0))),
        center_col=float(128.0 + rng.normal(0, 2.5)),
        arm_abduction_deg=(float(ab + rng.normal(0, 1.5)), float(ab + rng.normal(0, 1.5))),
        elbow_flex_deg=(float(rng.uniform(-5, 6)), float(rng.uniform(-5, 6))),
        leg_abduction_deg=(float(rng.uniform(0.0, 3.5)), float(rng.uniform(0.0, 3.5))),
        foot_rotation_deg=(float(rng.uniform(5, 35)), float(rng.uniform(5, 35))),
        bone_ratio=float(np.exp(rng.uniform(np.log(0.7), np.log(1.5)))),
        kidney_uptake=float(np.exp(rng.uniform(np.log(0.6), np.log(1.5)))),
        bladder_fill=float(rng.uniform(0.6, 1.3)),
        bladder_uptake=float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))),
        counts_target=sample_counts(rng, counts_min, counts_max),
        sex=sex,
        variation_seed=int(rng.integers(2**31)),
    )


def sample_n_lesions(rng: np.random.Generator) -> int:
    """No lesions in a fifth of patients; otherwise 1-4 (half), or 5-14 (widespread disease, the rest).

    The cohort stands for patients referred for metastasis screening, as the paper's segmentation
    experiment is; widespread disease is common among them."""
    u = rng.random()
    if u < 0.2:
        return 0
    if u < 0.7:
        return int(rng.integers(1, 5))
    return int(rng.integers(5, 15))

