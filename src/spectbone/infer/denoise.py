"""`spectbone denoise`: apply a trained denoiser to new NM studies and write derived NM DICOM.

Two model families, told apart by the model file (``meta["family"]``) and said in the log, the
derived DICOM and ``denoise.csv``:

- **count-domain** (the default: the bundled ``spectbone/models/data/emanet_counts.pt``, trained by the
  default run's `train_counts` on the phantom's native frames; `spectbone.counts`): counts in, counts
  out at the scan's native sampling, the level map from the counts' own Poisson statistics. One file,
  nothing else needed. This is the model for a hospital's scans.
- **paper-protocol** (``models/emanet_*.pt`` of the paper's tables): each frame is mapped to grey levels
  with the factor preprocessing would have given it for training (`grey_factor`: the 99.5th percentile
  of its shoulder-to-pelvis crop resized to the model's training size, one shared rule; applied without
  clipping, so no counts are lost), its noise level estimated by the stage-1 network (or given with
  --level), denoised at its native sampling inside a mirrored margin, and mapped back to counts. Its
  stage-1 estimator is taken from the model file when embedded (`spectbone bundle`), else from
  ``estimator.pt`` beside it; a network of the wrong kind is a clear error.

``--method`` runs any deployable method of the registry (`spectbone.counts.registry`) instead, e.g.
``anscombe_bm3d``. Either way, where the original has no count in a whole neighbourhood (outside the
patient) the output stays exactly 0. The output (`spectbone.dicom.derived`) keeps the original's rows,
columns, frames and pixel spacing as a new DERIVED\\PRIMARY series that references its source and names
the method, model, version and weights checksum; a PNG preview shows the original beside the denoised
study. Patient attributes are carried over unchanged into the derived DICOM (it belongs in the same
patient record) but never into logs or previews; logs name files by position. Weights are only ever
loaded with the safe weights-only unpickler. A folder in gives a folder out that mirrors its layout,
plus ``denoise.csv`` (input, output, frames, family, levels, counts_per_grey, status, reason); a file
that cannot be read is reported there and the rest go on. Outputs are written atomically.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from spectbone.counts.domain import FAMILY as COUNT_FAMILY
from spectbone.counts.domain import empty_neighbourhood
from spectbone.dicom.derived import derived_dataset
from spectbone.util.atomic import atomic_path, save_csv, save_dicom
from spectbone.util.hashing import sha256_file
from spectbone.util.runtime import add_common_arguments, pick_device, set_threads, setup_logging

log = logging.getLogger("spectbone.infer.denoise")
EMPTY_RADIUS = 4  # output is exactly 0 where the original has no count within this many pixels
DEFAULT_SIZE = 256  # preprocessing size assumed for a model file that does not record its own (the paper's)
PAPER_FAMILY = "paper-protocol"
BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "models" / "data" / "emanet_counts.pt"


def model_family(meta: dict) -> str:
    """The family a model file belongs to: count-domain (recorded by `train-counts`) or paper-protocol."""
    return str(meta.get("family") or PAPER_FAMILY)


def training_size(meta: dict) -> int:
    """The side of the preprocessed images the model was trained on (recorded by `spectbone train`)."""
    size = meta.get("image_size")
    if isinstance(size, int) and size > 0:
        return size
    log.warning("the model file does not record its preprocessing size: counts per grey level computed as "
                "at %d x %d (the paper's)", DEFAULT_SIZE, DEFAULT_SIZE)
    return DEFAULT_SIZE


def grey_factor(counts: np.ndarray, size: int, frame: int = 1) -> float:
    """Counts per grey level exactly as preprocessing computed it for the training images.

    The shoulder-to-pelvis crop of this frame, resized to the training size, through the shared rule
    (`crop.view_counts_per_grey`); a frame whose landmarks are not found falls back to the 99.5th
    percentile of the whole frame's non-zero counts, with a warning. 0 for a frame without counts."""
    from spectbone.prep.crop import (GREY_MAX, GREY_PERCENTILE, CropError, find_crop_box, orient_view,
                                     view_counts_per_grey)

    counts = np.asarray(counts, dtype=np.float32)
    try:
        counts = orient_view(counts)[0]  # head up, as preprocessing crops it (a feet-first frame too)
        box, _ = find_crop_box(counts)
        return view_counts_per_grey(counts, box, size)[1]
    except CropError as exc:
        body = counts[counts > 0]
        if not body.size:
            return 0.0
        log.warning("frame %d: %s; counts per grey level from the whole frame instead of the shoulder-to-pelvis "
                    "crop training used", frame, exc)
        return float(np.percentile(body, GREY_PERCENTILE)) / GREY_MAX


def denoise_counts(counts: np.ndarray, model, kind: str, estimator, device, level: float | None, size: int,
                   frame: int = 1) -> tuple[np.ndarray, float, float]:
    """Counts in, counts out: (denoised counts, noise level, counts per grey level).

    Grey mapping as in training (`grey_factor`, unclipped so no counts are lost), stage-1 level estimate
    on the frame itself, denoising at native sampling inside a mirrored margin, inverse mapping. Where
    the original has no count in the whole neighbourhood the output is exactly 0: there the network
    sees a flat zero plane, unlike anything in training, and its biases would paint a floor."""
    from spectbone.infer.apply import denoise_batch, estimate_levels, mirror_pad

    counts = np.asarray(counts, dtype=np.float32)
    cpg = grey_factor(counts, size, frame)
    if cpg <= 0:
        return np.zeros_like(counts), float(level or 0.0), 0.0
    grey = counts / np.float32(cpg)
    sigma = np.array([level], np.float32) if level is not None else estimate_levels(estimator, grey[None], device)
    padded, inside = mirror_pad(grey)
    out = denoise_batch(model, kind, padded[None], sigma, device)[0][inside]
    out = np.clip(out * cpg, 0, None)
    out[empty_neighbourhood(counts)] = 0.0
    return out, float(sigma[0]), cpg


def preview(original: np.ndarray, denoised: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(original)
    fig, axes = plt.subplots(1, 2 * n, figsize=(2.2 * 2 * n, 7), squeeze=False)
    vmax = float(np.percentile(original, 99.5)) or 1.0
    for i in range(n):
        for j, (img, label) in enumerate([(original[i], "original"), (denoised[i], "EMANet")]):
            ax = axes[0, 2 * i + j]
            ax.imshow(img, cmap="gray_r", vmin=0, vmax=vmax)
            ax.set_title(f"frame {i + 1}: {label}", fontsize=8)
            ax.axis("off")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("spectbone")
    except metadata.PackageNotFoundError:
        return "unknown"


def inputs_of(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not path.exists():
        raise SystemExit("the input file or folder does not exist")
    return [path]


def noise_level(text: str) -> float:
    """--level: a noise level in grey levels, 0 < level <= 255 (the 0..255 scale of training)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 255 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text}: the noise level must be above 0 and at most 255 grey levels "
                                         "(leave --level out to estimate it with the stage-1 network)")
    return value


def add_arguments(parser, verb):
    from spectbone.counts.registry import SPECS

    parser.add_argument("input", help="a DICOM file or a folder of them")
    parser.add_argument("-o", "--out", required=True, help="output .dcm (one input file) or folder")
    parser.add_argument("--model", default=None,
                        help="denoiser weights; default: the bundled count-domain EMANet (models/data/emanet_counts.pt)")
    parser.add_argument("--method", default=None, choices=[s.key for s in SPECS if s.deployable],
                        help="a registered method instead of the model file's own (e.g. anscombe_bm3d, no model)")
    parser.add_argument("--estimator", help="paper-protocol model: stage-1 weights; default: embedded in --model, "
                                            "else estimator.pt beside it")
    parser.add_argument("--level", type=noise_level, default=None,
                        help="paper-protocol model: noise level in grey levels, 0 < level <= 255 (skips stage 1)")
    parser.add_argument("--whole-counts", action="store_true",
                        help="store whole counts (the strict NM IOD) instead of sub-count precision via Rescale Slope")
    add_common_arguments(parser, threads=True, device=True)


DENOISERS = {"emanet", "dncnn", "redcnn", "wgan_generator"}


def resolve_estimator(model_path: Path, meta: dict, given: str | None, device):
    """The stage-1 estimator: --estimator, else embedded in the model file, else estimator.pt beside it.

    Returns (network, description for the DICOM and log); a wrong kind is a clear error."""
    from spectbone.models import build_model, load_model

    if given:
        path, how = Path(given), "given"
    elif isinstance(meta.get("estimator"), dict) and "state_dict" in meta["estimator"]:
        blob = meta["estimator"]
        if blob.get("kind") != "estimator":
            raise SystemExit(f"{model_path.name}: the embedded estimator is a {blob.get('kind')!r}, not a stage-1 "
                             "noise estimator")
        net = build_model("estimator", **blob["kwargs"])
        net.load_state_dict(blob["state_dict"])
        return net.to(device).eval(), (f"stage-1 estimator embedded in the model file (from a file with sha256 "
                                       f"{str(blob.get('sha256', 'unknown'))[:16]})")
    else:
        path, how = model_path.parent / "estimator.pt", "found beside the model"
        if not path.is_file():
            raise SystemExit(f"{model_path.name} does not embed its stage-1 estimator and there is no estimator.pt "
                             "beside it: give --estimator (stage-1 weights) or a fixed --level")
    net, est_meta = load_model(path, map_location=device)
    kind = est_meta.get("kind") or type(net).__name__
    if kind != "estimator":
        raise SystemExit(f"{path.name} ({how}) is a {kind!r} network, not a stage-1 noise estimator")
    return net.to(device), f"stage-1 estimator {path.name} ({how}, sha256 {sha256_file(path)[:16]})"


def _target(out: Path, root: Path, path: Path, single: bool) -> Path:
    """Folder in -> folder out mirroring its layout (same relative path, .dcm added when it has no suffix)."""
    if single:
        return out
    rel = path.relative_to(root)
    return out / (rel if rel.suffix else rel.with_name(rel.name + ".dcm"))


class FrameDenoiser:
    """One frame's counts -> (denoised counts, level text, counts-per-grey text), and what to say about it."""

    def __init__(self, args, device):
        from spectbone.counts.methods import Context, method
        from spectbone.models import WeightsRejected, load_model

        self.device, self.level, self.size = device, args.level, DEFAULT_SIZE
        self.model = self.meta = self.estimator = None
        model_path = Path(args.model) if args.model else (BUNDLED_MODEL if args.method is None else None)
        if args.method and method(args.method).model is None:
            if args.model:
                raise SystemExit(f"--method {args.method} takes no model file")
            model_path = None
        self.family, notes = "classical", []
        if model_path is not None:
            if not model_path.is_file():
                raise SystemExit(f"{model_path.name}: no such file" + (
                    " (the bundled count-domain model is missing from this installation: give --model)"
                    if model_path == BUNDLED_MODEL else ""))
            try:
                self.model, self.meta = load_model(model_path, map_location=device)
            except WeightsRejected as exc:
                raise SystemExit(str(exc)) from None
            kind = self.meta.get("kind", "emanet")
            if kind not in DENOISERS:
                raise SystemExit(f"{model_path.name} is a {kind!r} network, not a denoiser "
                                 f"({', '.join(sorted(DENOISERS))})")
            self.kind, self.family = kind, model_family(self.meta)
            notes.append(f"model {model_path.name} ({self.family} family, {kind}, sha256 "
                         f"{sha256_file(model_path)[:16]}, spectbone {package_version()})")
        key = args.method or ("emanet_counts" if self.family == COUNT_FAMILY else "emanet_paper")
        if self.family == COUNT_FAMILY and key == "emanet_paper":
            raise SystemExit(f"{model_path.name} is a count-domain model; --method emanet_paper needs a paper-protocol one")
        if self.family == PAPER_FAMILY and key in ("emanet_counts", "emanet_finetuned"):
            raise SystemExit(f"{model_path.name} is a paper-protocol model, not a count-domain one")
        if self.family != PAPER_FAMILY and (args.level is not None or args.estimator):
            raise SystemExit("--level and --estimator apply to paper-protocol models only (the count-domain family "
                             "reads the noise level from the counts' Poisson statistics)")
        self.method = method(key)
        self.ctx = Context(device=device)
        if self.model is not None:
            self.model.to(device)
            self.ctx.models[self.method.model] = (self.model, self.meta)
        if key == "emanet_paper":
            self.size = training_size(self.meta)
            notes.append("noise level given (--level)")
            if args.level is None:
                self.estimator, est_note = resolve_estimator(model_path, self.meta, args.estimator, device)
                notes[-1] = est_note
                log.info("level map: %s", est_note)
        self.label = self.method.label
        self.note = "; ".join([f"method {self.method.label}"] + notes)
        log.info("%s", self.note)

    def __call__(self, counts: np.ndarray, frame: int) -> tuple[np.ndarray, str, str]:
        if self.method.key == "emanet_paper":
            out, sigma, cpg = denoise_counts(counts, self.model, self.kind, self.estimator, self.device, self.level,
                                             self.size, frame=frame)
            return out, f"{sigma:.1f}", f"{cpg:.6g}"
        out = np.clip(self.method.apply(np.asarray(counts, np.float32), self.ctx), 0, None).astype(np.float32)
        out[empty_neighbourhood(counts)] = 0.0
        return out, "", ""


def run(args):
    from spectbone.dicom.read import DicomRejected, read_nm_images

    setup_logging(args.log)
    set_threads(args.threads)
    device = pick_device(args.device)
    denoiser = FrameDenoiser(args, device)
    src = Path(args.input)
    files = inputs_of(src)
    root = src if src.is_dir() else src.parent
    out = Path(args.out)
    single = not src.is_dir() and out.suffix.lower() == ".dcm"
    rows, failures = [], 0
    for n, path in enumerate(files, start=1):
        row = {"input": path.relative_to(root).as_posix(), "output": "", "frames": 0, "family": denoiser.family,
               "method": denoiser.method.key, "levels": "", "counts_per_grey": "", "status": "ok", "reason": ""}
        try:
            images = read_nm_images(path)
            results = [denoiser(im.counts, i) for i, im in enumerate(images, start=1)]
        except MemoryError:
            raise
        except Exception as err:  # a bad file is reported; the rest go on
            reason = str(err) if isinstance(err, DicomRejected) else f"{type(err).__name__}: {err}"
            row.update(status="skipped", reason=reason)
            rows.append(row)
            log.warning("file #%d skipped: %s", n, reason)
            failures += 1
            continue
        frames = np.stack([r[0] for r in results])
        levels = ", ".join(r[1] for r in results) if denoiser.method.key == "emanet_paper" else ""
        factors = ", ".join(r[2] for r in results) if denoiser.method.key == "emanet_paper" else ""
        description = f"spectbone denoising: {denoiser.note}"
        if levels:
            description += (f"; noise level {levels} grey levels; counts per grey level {factors} (99.5th percentile "
                            f"of the shoulder-to-pelvis crop at {denoiser.size} px, as in training), denoised, mapped "
                            "back")
        target = _target(out, root, path, single)
        save_dicom(target, derived_dataset(images[0].dataset, frames, description, denoiser.label[:64],
                                           whole_counts=args.whole_counts))
        preview(np.stack([im.counts for im in images]), frames, target.with_suffix(".png"))
        row.update(output=target.relative_to(out).as_posix() if not single else target.name,
                   frames=len(images), levels=levels, counts_per_grey=factors)
        rows.append(row)
        log.info("file #%d: %d frame(s) denoised (%s)%s (written; see denoise.csv)", n, len(images),
                 denoiser.family, f", level {levels}" if levels else "")
    if not single:
        save_csv(out / "denoise.csv", pd.DataFrame(rows, columns=list(rows[0]) if rows else ["input", "output"]))
    if failures == len(files):
        raise SystemExit(f"no readable NM image among {len(files)} input file(s)")
    return 0
