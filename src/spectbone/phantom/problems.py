"""Studies screening must catch: extravasation, urine contamination, truncated field of view."""

from __future__ import annotations

import numpy as np

from spectbone.phantom.anatomy import PELVIS_BOTTOM_CM, SHOULDER_TOP_CM, Anatomy
from spectbone.phantom.patient import Patient
from spectbone.phantom.geometry import PIXEL_MM, REF_HEIGHT_CM, ROWS
from spectbone.phantom.scene import MU_PER_CM

PROBLEMS = ("extravasation", "urine", "truncated", "low_counts")


def add_problem_source(anat: Anatomy, rng, problem: str, body_total: float) -> dict:
    """Extravasation or urine contamination: activity sized as a fraction of the body's counts."""
    s = anat.s
    info: dict = {}
    if problem == "extravasation":
        side = int(rng.choice([-1, 1]))
        arm = anat.arm_points(side)
        where = str(rng.choice(["antecubital", "forearm", "hand"], p=[0.5, 0.2, 0.3]))
        t = {"antecubital": 0.0, "forearm": 0.5}.get(where)
        c = arm["elbow"] + (arm["wrist"] - arm["elbow"]) * t if t is not None else arm["knuckle"]
        c = c + rng.normal(0, 0.5, 2)
        r = rng.uniform(0.8, 2.2)
        frac = rng.uniform(0.04, 0.15)
        parts = [(s.ellipsoid(c[0], c[1], r, r * rng.uniform(1.0, 1.8), r), 1.0)]
        # lymphatic track towards the axilla, faint
        parts.append((s.chain([c, arm["elbow"] * 0.5 + arm["shoulder"] * 0.5, arm["shoulder"] + [0, 4.0]], 0.6), 0.03))
        info = {"site": where, "side": "right" if side < 0 else "left", "fraction": round(float(frac), 3)}
        depth, T = 0.3, 8.0
    else:  # urine
        where = str(rng.choice(["groin", "thigh", "outside"], p=[0.35, 0.4, 0.25]))
        side = int(rng.choice([-1, 1]))
        leg = anat.leg_points(side)
        if where == "groin":
            c = np.array([side * rng.uniform(2.0, 6.0), anat.sacrum_top + rng.uniform(14.0, 19.0)])
            depth, T = 0.05, 16.0
        elif where == "thigh":
            c = leg["hip"] + (leg["knee"] - leg["hip"]) * rng.uniform(0.25, 0.75) + [side * rng.uniform(-2, 3), 0]
            depth, T = (0.02 if rng.random() < 0.6 else 0.98), 15.0
        else:  # on the table or sheet beside the legs
            c = leg["knee"] + [side * rng.uniform(9.0, 13.0), rng.uniform(-10.0, 15.0)]
            depth, T = 1.0, 16.0
        frac = rng.uniform(0.008, 0.03)
        parts = []
        for j in range(int(rng.integers(1, 4))):
            cj = c + rng.normal(0, 1.2, 2) * (j > 0)
            r = rng.uniform(0.5, 1.3)
            parts.append((s.ellipsoid(cj[0], cj[1], r, r * rng.uniform(0.6, 1.6), 0.3,
                                      angle_deg=rng.uniform(0, 180)), 1.0))
        info = {"site": where, "side": "right" if side < 0 else "left", "fraction": round(float(frac), 4)}
    unit = sum(w * float(p[1].sum()) * np.exp(-MU_PER_CM * depth * T) for p, w in parts if p is not None)
    if unit > 0:
        scale = frac * body_total / unit
        for p, w in parts:
            s.add(p, scale * w, depth, T)
    return info



def truncate_position(patient: Patient, rng: np.random.Generator) -> dict:
    """Mis-positioned patient: the frame's top edge cuts through the head/shoulders/chest, or its
    bottom edge through the pelvis, so the shoulder-to-pelvis region is incomplete."""
    px_per_cm = patient.height_cm / REF_HEIGHT_CM * 10.0 / PIXEL_MM
    span = PELVIS_BOTTOM_CM - SHOULDER_TOP_CM
    if rng.random() < 0.5:
        y_cut = SHOULDER_TOP_CM + rng.uniform(0.03, 0.3) * span
        patient.top_row = float(-y_cut * px_per_cm)
        return {"missing": "top (head/shoulders)", "cut_at_cm_below_vertex": round(float(y_cut), 1)}
    y_cut = PELVIS_BOTTOM_CM - rng.uniform(0.05, 0.3) * span
    patient.top_row = float(ROWS - 1 - y_cut * px_per_cm)
    return {"missing": "bottom (pelvis/legs)", "cut_at_cm_below_vertex": round(float(y_cut), 1)}

