"""`spectbone preprocess --manifest CONVERT_DIR/manifest.csv --out DIR --size 256
[--truth TRUTH_DIR] [--log FILE]`.

For each converted view (manifest rows with status ``ok``; ``skipped`` series such as TOMO or
spot views are not images to prepare): orientation, shoulder-to-pelvis crop, resize to size x size,
grey mapping (`spectbone.prep.crop`) and screening (`spectbone.prep.screen`). Orientation first:
a view whose head lies at the bottom (the image decides, else the header: `crop.orient_view`) is
flipped vertically, and one the header shows left-right mirrored (manifest ``header_mirrored``)
is flipped horizontally, so every view is cropped head-up in reading convention. Writes

- ``DIR/images/<image_id>.npy``: float32 grey image in [0, 255], size x size (written whenever
  the crop succeeded, also for views screening discards);
- ``DIR/preprocess.csv``: image_id, patient_id, study_id, view, crop_top, crop_bottom,
  crop_left, crop_right (box in the oriented frame, i.e. after any flip, exclusive ends; empty
  when the crop failed), counts_per_grey, keep, reason ('' when kept), lossy (from the manifest:
  `spectbone split` keeps lossy views out of training by default), orientation (``head_first`` or
  ``feet_first_flipped``), orientation_source (``from_header_and_image``, ``from_image``,
  ``from_header``, ``assumed``), lr_flipped (the header showed the view mirrored).

With ``--truth`` (the phantom's truth folder: labels.csv + <study>_<view>.npz), views are
linked to the truth by (source_sha256, frame), and it also writes

- ``DIR/truth/<image_id>.npz``: ``clean`` (the noiseless expected counts through the same crop,
  resize and counts_per_grey, clipped to [0, 255] like the image) and ``lesions`` (uint8 mask
  through the same crop/resize, a pixel in when more than half its area is);
- ``DIR/screening_eval.csv``: n, tp, fp, fn, tn, precision, recall (positive = the truth
  names a problem; predicted positive = keep is False);
- ``DIR/crop_eval.csv``: image_id, problem, iou (our box against the phantom's landmark box).

A problem found in one view of a study discards its other views too (same acquisition; the far
detector can miss a spot the near one sees), with reason 'same study as <image_id> (<view>): ...'.
A failure to read or process one view becomes keep=False, reason 'preprocessing failed: ...'; the
run goes on. Writing is different: every output is written atomically, and an OSError or
MemoryError while writing (a full disk) stops the run with exit status 1, no partial file left.
With ``--truth``, a view without its truth row or truth image is an error (exit 1), never a
silent switch to scoring without truth.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from spectbone.prep.crop import (FEET_FIRST_FLIPPED, CropBox, CropError, crop_resize, crop_resize_mask,
                                 find_crop_box, orient_view, to_grey, view_counts_per_grey)
from spectbone.prep.screen import TRUNCATED, screen_view
from spectbone.util.atomic import atomic_path, save_csv, save_npy
from spectbone.util.outputs import truthy
from spectbone.util.runtime import add_common_arguments, error_reason, setup_logging

log = logging.getLogger("spectbone.prep.preprocess")

COLUMNS = ["image_id", "patient_id", "study_id", "view", "crop_top", "crop_bottom", "crop_left", "crop_right",
           "counts_per_grey", "keep", "reason", "lossy", "orientation", "orientation_source", "lr_flipped"]
IOU_GOAL = 0.9


def add_arguments(parser, verb: str = "preprocess") -> None:
    parser.add_argument("--manifest", required=True, help="manifest.csv written by `spectbone convert`")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--size", type=int, default=256, help="side of the square output images (paper: 256)")
    parser.add_argument("--truth", default=None, help="phantom truth folder (labels.csv + npz) to evaluate against")
    add_common_arguments(parser, log=True)


def process_view(counts: np.ndarray, size: int):
    """(grey or None, box or None, counts_per_grey, keep, reason, problem) for one view."""
    try:
        box, lm = find_crop_box(counts)
    except CropError as exc:
        verdict = screen_view(counts)  # says "too few counts" first when that is the cause
        if verdict.keep:  # cannot happen (screening needs the same landmarks), but never keep it
            return None, None, float("nan"), False, f"truncated field of view: {exc}", TRUNCATED
        return None, None, float("nan"), False, verdict.reason, verdict.problem
    resized, cpg = view_counts_per_grey(counts, box, size)
    verdict = screen_view(counts, lm)
    return to_grey(resized, cpg), box, cpg, verdict.keep, verdict.reason, verdict.problem


def propagate_study_problems(table: pd.DataFrame) -> pd.DataFrame:
    """A contamination or truncation seen in one view condemns the study's other views too.

    Both views come from one acquisition: a urine spot on the skin or an extravasation is on
    the patient whichever detector looks, but the far detector sees it attenuated by the whole
    body and can miss it. Failures of processing itself are not propagated."""
    table = table.copy()
    for study, grp in table.groupby("study_id", sort=False):
        bad = grp[~grp["keep"].astype(bool) & ~grp["reason"].str.startswith("preprocessing failed")]
        if bad.empty:
            continue
        first = bad.iloc[0]
        for idx in grp.index[grp["keep"].astype(bool)]:
            table.at[idx, "keep"] = False
            table.at[idx, "reason"] = f"same study as {first['image_id']} ({first['view']}): {first['reason']}"
    return table


def usable_rows(manifest: pd.DataFrame) -> pd.DataFrame:
    """The manifest rows that are images (status ok); skipped series and old manifests handled."""
    if "status" in manifest:
        manifest = manifest[manifest["status"].astype(str) == "ok"]
    return manifest.reset_index(drop=True)


def _orient_like(image: np.ndarray, flip_ud: bool, flip_lr: bool) -> np.ndarray:
    image = np.asarray(image)
    if flip_ud:
        image = image[::-1]
    if flip_lr:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def oriented_box(box: CropBox, shape: tuple[int, int], flip_ud: bool, flip_lr: bool) -> CropBox:
    """A box of the stored frame, expressed in the frame after the same flips as the image."""
    top, bottom, left, right = box.top, box.bottom, box.left, box.right
    if flip_ud:
        top, bottom = shape[0] - bottom, shape[0] - top
    if flip_lr:
        left, right = shape[1] - right, shape[1] - left
    return CropBox(top, bottom, left, right)


class MissingTruth(RuntimeError):
    """--truth was given but a view has no truth: scoring would silently change protocol."""


def _load_truth(truth_dir: Path) -> pd.DataFrame:
    labels = pd.read_csv(truth_dir / "labels.csv", keep_default_na=False, dtype={"problem": str, "study": str})
    labels["frame"] = labels["frame"].astype(int)
    return labels.set_index(["source_sha256", "frame"])


def _confusion(truth_bad: np.ndarray, predicted_bad: np.ndarray) -> dict:
    tp = int(np.sum(truth_bad & predicted_bad))
    fp = int(np.sum(~truth_bad & predicted_bad))
    fn = int(np.sum(truth_bad & ~predicted_bad))
    tn = int(np.sum(~truth_bad & ~predicted_bad))
    return {"n": int(truth_bad.size), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan")}


def preprocess(manifest_path: str | Path, out_dir: str | Path, size: int = 256, truth_dir: str | Path | None = None,
               progress: bool = True) -> pd.DataFrame:
    from tqdm import tqdm

    manifest_path, out = Path(manifest_path), Path(out_dir)
    base = manifest_path.parent
    manifest = pd.read_csv(manifest_path, keep_default_na=False, dtype={"image_id": str, "patient_id": str,
                                                                        "study_id": str, "source_sha256": str})
    n_all = len(manifest)
    manifest = usable_rows(manifest)
    if len(manifest) < n_all:
        log.info("%d manifest rows are not whole-body views (status skipped) and are not prepared", n_all - len(manifest))
    (out / "images").mkdir(parents=True, exist_ok=True)
    truth = _load_truth(Path(truth_dir)) if truth_dir else None
    if truth is not None:
        (out / "truth").mkdir(parents=True, exist_ok=True)
    rows, crop_rows, screen_rows = [], [], []
    for rec in tqdm(manifest.itertuples(index=False), total=len(manifest), desc="preprocess", unit="view",
                    disable=not progress, file=sys.stderr):
        row = {"image_id": rec.image_id, "patient_id": rec.patient_id, "study_id": rec.study_id, "view": rec.view,
               "crop_top": None, "crop_bottom": None, "crop_left": None, "crop_right": None,
               "counts_per_grey": float("nan"), "keep": False, "reason": "",
               "lossy": truthy(getattr(rec, "lossy", False)), "orientation": "", "orientation_source": "",
               "lr_flipped": truthy(getattr(rec, "header_mirrored", ""))}
        box, grey = None, None
        cpg = float("nan")
        flip_ud, shape = False, None
        try:
            counts = np.load(base / rec.image_path).astype(np.float32)
            shape = counts.shape
            counts, orientation, source, why = orient_view(counts, str(getattr(rec, "header_orientation", "") or ""))
            flip_ud = orientation == FEET_FIRST_FLIPPED
            counts = _orient_like(counts, False, row["lr_flipped"])
            row.update(orientation=orientation, orientation_source=source)
            if flip_ud or row["lr_flipped"] or source not in ("from_header_and_image", "from_image"):
                log.info("%s: %s (%s)%s: %s", rec.image_id, orientation, source,
                         ", left-right flipped as the header shows it mirrored" if row["lr_flipped"] else "", why)
            grey, box, cpg, keep, reason, problem = process_view(counts, size)
            row.update(keep=bool(keep), reason=reason, counts_per_grey=cpg)
        except MemoryError:
            raise  # the machine, not the view: fail loudly
        except Exception as exc:  # one bad view must not stop the run
            box, grey = None, None
            row.update(keep=False, reason=f"preprocessing failed: {type(exc).__name__}: {exc}")
            log.warning("%s: preprocessing failed: %s", rec.image_id, exc)
        if box is not None:  # outside the try: a failed write (disk full) stops the run
            row.update(crop_top=box.top, crop_bottom=box.bottom, crop_left=box.left, crop_right=box.right)
            save_npy(out / "images" / f"{rec.image_id}.npy", grey)
        if not row["keep"]:
            log.info("%s discarded: %s", rec.image_id, row["reason"])
        rows.append(row)
        if truth is not None:
            key = (str(rec.source_sha256), int(rec.frame))
            if key not in truth.index:
                raise MissingTruth(f"{rec.image_id}: the truth folder has no row for its source file/frame "
                                   "(labels.csv): truth and DICOM folder do not belong together")
            t = truth.loc[key]
            problem = str(t["problem"] or "")
            screen_rows.append({"image_id": rec.image_id, "problem": problem, "keep": row["keep"],
                                "reason": row["reason"]})
            true_box = CropBox(int(t["crop_top"]), int(t["crop_bottom"]), int(t["crop_left"]), int(t["crop_right"]))
            if shape is not None:  # the truth's box is in the stored frame; ours after any flip
                true_box = oriented_box(true_box, shape, flip_ud, row["lr_flipped"])
            crop_rows.append({"image_id": rec.image_id, "problem": problem,
                              "iou": box.iou(true_box) if box is not None else 0.0})
            if box is not None:
                npz = Path(truth_dir) / f"{t['study']}_{t['view']}.npz"
                try:
                    with np.load(npz) as z:
                        expected, lesions = z["expected"].astype(np.float32), z["lesions"]
                except (OSError, KeyError, ValueError) as exc:
                    raise MissingTruth(f"{rec.image_id}: truth image {npz.name} is missing or unusable "
                                       f"({type(exc).__name__})") from None
                expected = _orient_like(expected, flip_ud, row["lr_flipped"])
                lesions = _orient_like(lesions, flip_ud, row["lr_flipped"])
                clean = to_grey(crop_resize(expected, box, size), cpg)
                mask = crop_resize_mask(lesions, box, size).astype(np.uint8)
                with atomic_path(out / "truth" / f"{rec.image_id}.npz") as tmp, open(tmp, "wb") as fh:
                    np.savez_compressed(fh, clean=clean, lesions=mask)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = propagate_study_problems(table)
    if truth is not None:
        verdicts = dict(zip(table["image_id"], zip(table["keep"], table["reason"])))
        for r in screen_rows:
            r["keep"], r["reason"] = verdicts[r["image_id"]]
    for c in ("crop_top", "crop_bottom", "crop_left", "crop_right"):
        table[c] = table[c].astype("Int64")
    save_csv(out / "preprocess.csv", table)
    n_keep = int(table["keep"].sum())
    log.info("%d of %d views kept", n_keep, len(table))
    if truth is not None:
        _evaluate(out, pd.DataFrame(screen_rows, columns=["image_id", "problem", "keep", "reason"]),
                  pd.DataFrame(crop_rows, columns=["image_id", "problem", "iou"]))
    return table


def _evaluate(out: Path, screen_df: pd.DataFrame, crop_df: pd.DataFrame) -> None:
    truth_bad = (screen_df["problem"] != "").to_numpy()
    predicted_bad = (~screen_df["keep"].astype(bool)).to_numpy()
    conf = _confusion(truth_bad, predicted_bad)
    save_csv(out / "screening_eval.csv", pd.DataFrame([conf]))
    log.info("screening vs truth: n=%d tp=%d fp=%d fn=%d tn=%d precision=%.3f recall=%.3f", conf["n"], conf["tp"],
             conf["fp"], conf["fn"], conf["tn"], conf["precision"], conf["recall"])
    for problem, grp in screen_df[truth_bad].groupby("problem"):
        log.info("  %s: %d of %d caught", problem, int((~grp["keep"].astype(bool)).sum()), len(grp))
    for rec in screen_df[~truth_bad & predicted_bad].itertuples():
        log.info("  false alarm %s: %s", rec.image_id, rec.reason)
    for rec in screen_df[truth_bad & ~predicted_bad].itertuples():
        log.info("  missed %s (%s)", rec.image_id, rec.problem)
    save_csv(out / "crop_eval.csv", crop_df)
    clean = crop_df[crop_df["problem"] == ""]
    if len(clean):
        frac = float((clean["iou"] >= IOU_GOAL).mean())
        log.info("crop: %.1f%% of %d clean views have IoU >= %.1f (median IoU %.3f, min %.3f)", 100 * frac,
                 len(clean), IOU_GOAL, clean["iou"].median(), clean["iou"].min())


def run(args) -> int:
    setup_logging(args.log)
    manifest = Path(args.manifest)
    if not manifest.is_file():
        log.error("manifest %s does not exist", manifest)
        return 1
    if args.truth and not (Path(args.truth) / "labels.csv").is_file():
        log.error("truth folder %s has no labels.csv", args.truth)
        return 1
    try:
        preprocess(manifest, args.out, size=args.size, truth_dir=args.truth)
    except MissingTruth as exc:
        log.error("missing truth: %s", exc)
        return 1
    except (OSError, MemoryError) as exc:
        what = error_reason(exc)
        log.error("preprocess failed while writing its outputs (%s; disk full?): no partial file was left, "
                  "rerun once there is room", what)
        return 1
    return 0
