"""One whole-body study (ANT + POST) with its truth: the phantom's generator."""

from __future__ import annotations

import numpy as np

from spectbone.phantom.anatomy import Anatomy
from spectbone.phantom.benign import add_benign
from spectbone.phantom.lesions import add_lesions
from spectbone.phantom.patient import Study, ViewImage, sample_n_lesions, sample_patient
from spectbone.phantom.problems import PROBLEMS, add_problem_source, truncate_position
from spectbone.phantom.geometry import COLS, ROWS, VIEWS
from spectbone.phantom.scene import Scene


def _crop_box(anat: Anatomy, body: np.ndarray) -> tuple[int, int, int, int]:
    s = anat.s
    top = int(np.floor(s.rows(anat.landmarks["shoulder_top"])))
    bottom = int(np.ceil(s.rows(anat.landmarks["pelvis_bottom"]))) + 1
    top, bottom = max(top, 0), min(bottom, ROWS)
    cols = np.flatnonzero(body[top:bottom].any(0)) if bottom > top else np.array([], int)
    if cols.size == 0:
        return top, bottom, 0, COLS
    return top, bottom, int(cols[0]), int(cols[-1]) + 1


def make_study(rng: np.random.Generator, problem: str = "", counts_min: float = 1e6,
               counts_max: float = 4e6) -> Study:
    """One whole-body study (ANT + POST) with truth. `problem` is '' or one of PROBLEMS."""
    if problem and problem not in PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}; expected one of {PROBLEMS}")
    patient = sample_patient(rng, counts_min, counts_max)
    info: dict = {}
    if problem == "truncated":
        info = truncate_position(patient, rng)
    scene = Scene(patient)
    anat = Anatomy(scene)
    anat.build()
    lesions = add_lesions(anat, rng, sample_n_lesions(rng))
    benign = add_benign(anat, rng, float(scene.layers[0].sum()))  # confounders, not in the lesion masks
    if problem in ("extravasation", "urine"):
        body_total = float(scene.layers[0].sum())
        info = add_problem_source(anat, rng, problem, body_total)
    ant, post = scene.render()
    mask_ant, mask_post = scene.visible_lesion_masks(ant, post)
    post = post[:, ::-1]
    body = scene.thickness > 0.3
    bodies = {"ANT": body, "POST": body[:, ::-1]}
    masks = {"ANT": mask_ant, "POST": mask_post[:, ::-1]}  # each view outlines the lesions it shows

    # count level: one scale for both views (same acquisition), both views kept inside the range
    target = patient.counts_target
    if problem == "low_counts":
        target = float(rng.uniform(1.0e5, 3.0e5))
        info = {"target_counts": round(target)}
        lo_hi = (0.8e5, 3.5e5)
    else:
        lo_hi = (counts_min, counts_max)
    ta, tp = float(ant.sum()), float(post.sum())
    scale = 2.0 * target / (ta + tp)
    scale = float(np.clip(scale, lo_hi[0] / min(ta, tp), lo_hi[1] / max(ta, tp)))
    expected = {"ANT": ant * scale, "POST": post * scale}

    study = Study(patient=patient, problem=problem, lesions=lesions, info=info, benign=benign)
    crop_ant = _crop_box(anat, bodies["ANT"])
    for v in VIEWS:
        e = expected[v].astype(np.float32)
        counts = np.minimum(rng.poisson(e.astype(np.float64)), np.iinfo(np.uint16).max).astype(np.uint16)
        crop = crop_ant if v == "ANT" else (crop_ant[0], crop_ant[1], COLS - crop_ant[3], COLS - crop_ant[2])
        study.views[v] = ViewImage(v, e, counts, masks[v].astype(np.uint8), crop, bodies[v])
    return study
