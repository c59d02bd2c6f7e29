"""Hot foci (metastases) at skeletal sites, written into the scene with an exact mask."""

from __future__ import annotations

import numpy as np

from spectbone.phantom.anatomy import Anatomy
from spectbone.phantom.patient import Lesion

#: Lesion-to-bone uptake ratio, log-uniform. Metastases on a bone scan are mostly clearly hotter than
#: the bone around them (2-8x); the faintest ones, which a reader would not outline either, are left out.
CONTRAST_RANGE = (2.0, 8.0)

LESION_SITE_WEIGHTS = {"spine": 0.34, "ribs": 0.24, "pelvis": 0.2, "femur": 0.07, "skull": 0.04,
                       "humerus": 0.03, "sternum": 0.03, "scapula": 0.02, "clavicle": 0.03}


def add_lesions(anat: Anatomy, rng: np.random.Generator, n: int) -> list[Lesion]:
    """Hot foci at skeletal sites, most often spine, ribs and pelvis; exact footprints in the mask."""
    groups = [g for g in LESION_SITE_WEIGHTS if anat.sites.get(g)]
    w = np.array([LESION_SITE_WEIGHTS[g] for g in groups])
    out = []
    for _ in range(n):
        g = groups[rng.choice(len(groups), p=w / w.sum())]
        x, y, r, frac, T = anat.sites[g][rng.integers(len(anat.sites[g]))]
        x += rng.uniform(-0.5, 0.5) * r
        y += rng.uniform(-0.5, 0.5) * r
        size = float(np.exp(rng.uniform(np.log(0.55), np.log(2.0))))
        a, b = size * rng.uniform(0.7, 1.3), size * rng.uniform(0.7, 1.3)
        contrast = float(np.exp(rng.uniform(np.log(CONTRAST_RANGE[0]), np.log(CONTRAST_RANGE[1]))))
        prim = anat.s.ellipsoid(x, y, a, b, min(a, b), angle_deg=rng.uniform(0, 180))
        if prim is None or not (prim[1] > 0).any():
            continue
        anat.s.add(prim, anat.b * (contrast - 1.0) * 0.6, frac, T, lesion=True)
        out.append(Lesion(g, (round(x, 2), round(y, 2)), (round(a, 2), round(b, 2)), round(contrast, 2)))
    return out


