"""`spectbone synthesize`: write the phantom cohort as NM DICOM studies, and its truth elsewhere.

COHORT_DIR/study_0001.dcm ... one two-frame (ANT, POST) NM Image Storage file per patient: all the
downstream stages ever see, exactly like a folder exported from a camera.

TRUTH_DIR (never inside COHORT_DIR):
* ``labels.csv``: one row per frame: study, source_sha256 (of the .dcm bytes), frame (0/1), view
  (ANT/POST), problem ('' or extravasation/urine/truncated/low_counts), crop_top, crop_bottom,
  crop_left, crop_right (shoulder-to-pelvis box in frame pixels; bottom/right exclusive),
  total_counts (acquired), n_lesions;
* ``<study>_<view>.npz``: ``expected`` (float32 noiseless expected counts) and ``lesions`` (uint8 mask);
* ``studies.json``: per-study details (problem specifics, lesion sites, benign uptake, patient parameters).

Every study draws from its own seeded stream (seed, study index), so the cohort is identical whatever
the number of worker processes, and the same seed writes byte-identical DICOM files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from spectbone.dicom import write as nm_dicom
from spectbone import phantom
from spectbone.util.runtime import add_common_arguments, setup_logging

LABEL_COLUMNS = ["study", "source_sha256", "frame", "view", "problem", "crop_top", "crop_bottom",
                 "crop_left", "crop_right", "total_counts", "n_lesions"]
log = logging.getLogger("spectbone.phantom.synthesize")


def add_arguments(parser, verb: str = "synthesize") -> None:
    parser.add_argument("--out", required=True, help="cohort folder for the DICOM studies")
    parser.add_argument("--truth", required=True, help="truth folder (labels.csv, noiseless images, masks)")
    parser.add_argument("--n-patients", type=int, required=True, help="number of studies (one per patient)")
    parser.add_argument("--problem-fraction", type=float, default=0.1,
                        help="share of studies carrying one problem screening must catch")
    parser.add_argument("--counts-min", type=float, default=1e6, help="lowest total counts per view")
    parser.add_argument("--counts-max", type=float, default=4e6, help="highest total counts per view")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (results do not depend on it)")
    add_common_arguments(parser, log=True, seed=True)


def assign_problems(n: int, fraction: float, seed: int) -> list[str]:
    """round(fraction * n) studies get a problem; types go round-robin so every type appears once
    there are at least four problem studies. Seeded, independent of the per-study streams."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"problem fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng([seed, 0x50B1E])
    k = int(round(fraction * n))
    chosen = rng.permutation(n)[:k]
    kinds = list(rng.permutation(phantom.PROBLEMS))
    problems = [""] * n
    for j, i in enumerate(sorted(chosen)):
        problems[i] = str(kinds[j % len(kinds)])
    return problems


def study_name(i: int) -> str:
    return f"study_{i + 1:04d}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _one_study(job: dict) -> tuple[list[dict], dict]:
    """Make, write and describe one study (runs in a worker process)."""
    i, seed, name = job["index"], job["seed"], job["name"]
    rng = np.random.default_rng([seed, i])
    study = phantom.make_study(rng, job["problem"], job["counts_min"], job["counts_max"])
    p = study.patient
    ident = nm_dicom.fake_identity(np.random.default_rng([seed, i, 1]), p.sex, p.height_cm, p.habitus)
    ident.patient_id = job["patient_id"]
    dcm = Path(job["out"]) / f"{name}.dcm"
    frames = {v: study.views[v].counts for v in phantom.VIEWS}
    nm_dicom.write_nm_study(dcm, frames, ident, ["spectbone", seed, name], pixel_mm=phantom.PIXEL_MM,
                            height_cm=p.height_cm)
    sha = _sha256(dcm)
    rows = []
    for frame, v in enumerate(phantom.VIEWS):
        vi = study.views[v]
        np.savez_compressed(Path(job["truth"]) / f"{name}_{v}.npz", expected=vi.expected.astype(np.float32),
                            lesions=vi.lesions.astype(np.uint8))
        rows.append({"study": name, "source_sha256": sha, "frame": frame, "view": v, "problem": study.problem,
                     "crop_top": vi.crop[0], "crop_bottom": vi.crop[1], "crop_left": vi.crop[2],
                     "crop_right": vi.crop[3], "total_counts": int(vi.counts.sum(dtype=np.int64)),
                     "n_lesions": len(study.lesions)})
    details = {"study": name, "problem": study.problem, "problem_info": study.info,
               "lesions": [vars(les) for les in study.lesions],
               "benign": study.benign,
               "patient": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(p).items()}}
    return rows, details


def _patient_ids(n: int, seed: int) -> list[str]:
    """Distinct MRN-shaped ids, drawn from their own seeded stream."""
    rng = np.random.default_rng([seed, 0x1D])
    seen: set[str] = set()
    out = []
    for _ in range(n):
        while True:
            pid = f"MRN{int(rng.integers(10**6, 10**7)):07d}"
            if pid not in seen:
                seen.add(pid)
                out.append(pid)
                break
    return out


def synthesize(out: str | os.PathLike, truth: str | os.PathLike, n_patients: int, seed: int = 0,
               problem_fraction: float = 0.1, counts_min: float = 1e6, counts_max: float = 4e6,
               workers: int = 1, progress: bool = True) -> pd.DataFrame:
    """Write the cohort and its truth; return the labels table."""
    out, truth = Path(out).resolve(), Path(truth).resolve()
    if truth == out or out in truth.parents:
        raise ValueError(f"truth folder {truth} must not lie inside the cohort folder {out}")
    if n_patients < 1:
        raise ValueError("need at least one patient")
    if not 0 < counts_min <= counts_max:
        raise ValueError(f"bad count range {counts_min}..{counts_max}")
    out.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    names = [study_name(i) for i in range(n_patients)]
    stale = [f for f in out.glob("study_*.dcm") if f.stem not in set(names)]
    for f in stale:  # a previous, larger cohort: do not leave its studies behind
        f.unlink()
    if stale:
        log.info("removed %d stale study files from %s", len(stale), out)

    problems = assign_problems(n_patients, problem_fraction, seed)
    pids = _patient_ids(n_patients, seed)
    jobs = [{"index": i, "seed": seed, "name": names[i], "problem": problems[i], "counts_min": counts_min,
             "counts_max": counts_max, "out": str(out), "truth": str(truth), "patient_id": pids[i]}
            for i in range(n_patients)]
    log.info("synthesising %d studies (seed %d, %d with problems) into %s; truth in %s",
             n_patients, seed, sum(bool(p) for p in problems), out, truth)
    bar = tqdm(total=n_patients, desc="synthesize", unit="study", disable=not progress)
    results = []
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for r in pool.map(_one_study, jobs, chunksize=2):
                results.append(r)
                bar.update()
    else:
        for job in jobs:
            results.append(_one_study(job))
            bar.update()
    bar.close()

    labels = pd.DataFrame([row for rows, _ in results for row in rows], columns=LABEL_COLUMNS)
    labels.to_csv(truth / "labels.csv", index=False)
    (truth / "studies.json").write_text(json.dumps([d for _, d in results], indent=1) + "\n")
    counts = labels.loc[labels["frame"] == 0, "problem"].replace("", "none").value_counts().to_dict()
    log.info("problems: %s", counts)
    log.info("total counts per view: min %.3g, median %.3g, max %.3g", labels["total_counts"].min(),
             labels["total_counts"].median(), labels["total_counts"].max())
    return labels


def run(args) -> int:
    setup_logging(args.log)
    synthesize(args.out, args.truth, args.n_patients, args.seed, args.problem_fraction, args.counts_min,
               args.counts_max, workers=args.workers)
    return 0
