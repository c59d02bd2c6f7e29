"""Benign uptake a reader sees on most bone scans and ignores: degenerative joints, healed rib
fractures, residual tracer at the injection site.

They are confounders, not lesions: never in the lesion mask, so a segmenter must learn to leave
them out, and screening must keep the study (each holds well under the shares `prep.screen` calls
contamination). Drawn per patient; the list goes into the study's truth.
"""

from __future__ import annotations

import numpy as np

from spectbone.phantom.anatomy import Anatomy
from spectbone.phantom.scene import MU_PER_CM

# chance per patient (an older cohort: degenerative change is common, fractures and a visible
# injection site less so)
BENIGN_PROBABILITY = {"degenerative_knee": 0.3, "degenerative_shoulder": 0.2, "facet_arthropathy": 0.3,
                      "healed_rib_fractures": 0.12, "injection_site": 0.2}
INJECTION_SHARE = (0.0005, 0.003)  # of the body's counts: residue, far below extravasation (>= 4%)


def _focus(anat: Anatomy, kind: str, x: float, y: float, r: float, rel: float, depth: float, T: float,
           out: list[dict]) -> None:
    """A compact focus of `rel` x the bone uptake per cm, not a lesion."""
    s = anat.s
    prim = s.ellipsoid(x, y, r, r * 0.8, r)
    if prim is None:
        return
    s.add(prim, anat.b * rel, depth, T)
    out.append({"kind": kind, "center_cm": [round(float(x), 2), round(float(y), 2)], "radius_cm": round(float(r), 2),
                "uptake": round(float(rel), 2)})


def add_benign(anat: Anatomy, rng: np.random.Generator, body_total: float) -> list[dict]:
    """Draw and add this patient's benign foci; returns them (kind, centre, size, uptake)."""
    out: list[dict] = []
    draw = {k: rng.random() < p for k, p in BENIGN_PROBABILITY.items()}
    if draw["degenerative_knee"]:  # medial compartment osteoarthritis, one knee or both
        sides = [-1, 1] if rng.random() < 0.4 else [int(rng.choice([-1, 1]))]
        for side in sides:
            knee = anat.leg_points(side)["knee"]
            _focus(anat, "degenerative_knee", knee[0] - side * 1.9, knee[1] - 0.4, rng.uniform(0.9, 1.4),
                   rng.uniform(0.6, 1.4), 0.5, 11.0, out)
    if draw["degenerative_shoulder"]:  # acromioclavicular or glenohumeral joint
        side = int(rng.choice([-1, 1]))
        if rng.random() < 0.5:
            x, y = side * 15.6, 25.9
        else:
            sh = anat.arm_points(side)["shoulder"]
            x, y = sh[0] - side * 1.6, sh[1] + 0.5
        _focus(anat, "degenerative_shoulder", x, y, rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.8), 0.4,
               anat.trunk_t(27.0), out)
    if draw["facet_arthropathy"]:  # lower lumbar (or lower cervical) facet joints, one side or both
        lumbar = [v for v in anat.vertebrae if v[0] == "L"][2:] if rng.random() < 0.8 else \
            [v for v in anat.vertebrae if v[0] == "C"][4:]
        _, cy, h, w, T = lumbar[rng.integers(len(lumbar))]
        sides = [-1, 1] if rng.random() < 0.3 else [int(rng.choice([-1, 1]))]
        for side in sides:
            _focus(anat, "facet_arthropathy", side * w * 0.38, cy + h * 0.45, rng.uniform(0.6, 0.9),
                   rng.uniform(1.0, 2.2), 0.85, T, out)
    if draw["healed_rib_fractures"]:  # consecutive ribs, lateral, in a line (a fall against an edge)
        side = int(rng.choice([-1, 1]))
        k0 = int(rng.integers(3, 8))
        i = int(rng.integers(6, 11))
        for k in range(k0, min(k0 + int(rng.integers(2, 5)), 12)):
            pts, depth = anat.rib_paths[(k, side)]
            j = min(i, len(pts) - 1)
            _focus(anat, "healed_rib_fracture", pts[j, 0], pts[j, 1], rng.uniform(0.5, 0.7), rng.uniform(1.2, 2.5),
                   float(depth[j]), anat.trunk_t(pts[j, 1]), out)
    if draw["injection_site"]:  # residue in the soft tissue of the antecubital fossa or the back of the hand
        side = int(rng.choice([-1, 1]))
        arm = anat.arm_points(side)
        c = arm["elbow"] if rng.random() < 0.7 else arm["wrist"] + (arm["knuckle"] - arm["wrist"]) * 0.4
        c = c + rng.normal(0, 0.4, 2)
        r = rng.uniform(0.4, 0.8)
        prim = anat.s.ellipsoid(c[0], c[1], r, r, r)
        if prim is not None and prim[1].sum() > 0:
            share = rng.uniform(*INJECTION_SHARE)
            depth, T = 0.2, 8.0
            unit = float(prim[1].sum()) * np.exp(-MU_PER_CM * depth * T)
            anat.s.add(prim, share * body_total / unit, depth, T)
            out.append({"kind": "injection_site", "center_cm": [round(float(c[0]), 2), round(float(c[1]), 2)],
                        "radius_cm": round(float(r), 2), "share": round(float(share), 4)})
    return out
