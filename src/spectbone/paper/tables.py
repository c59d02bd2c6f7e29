"""The paper's tables, one function each, computed from the DAG's outputs; the paper's values beside.

Every table is written as `<stem>.csv` (for machines) and `<stem>.md` (for people) by
`outputs.write_table`. Means carry 95% bootstrap confidence intervals over test images.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from spectbone.paper import values as paper
from spectbone.paper.table2 import table2
from spectbone.paper.trends import blind_trend, ordered_trend, table5_trend, table6_trend, table7_trend, table8_trend
from spectbone.evaluate.metrics import bootstrap_ci
from spectbone.evaluate.rows import ESTIMATED, ORACLE, select_rows
from spectbone.evaluate.rule import SCORING_RULE
from spectbone.noise.lattice import AS_DRAWN, DITHERED, ROUNDED, VARIANTS
from spectbone.util.methods import display_name
from spectbone.util.outputs import data_source_note, truthy, write_table
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.paper.tables")

LATTICE_RELIANCE = 1.5  # an estimator whose RMSE grows by more than this factor with the lattice broken reads it

ARCH_LABELS = {"plain": "/ (plain U-Net)", "rdc": "RDC block", "rdc_md": "RDC block + MD",
               "rdc_md_rcag": "RDC block + MD + RCAG", "full": "RDC block + MD + RCAG + CF block"}
SOURCE_LABELS = {"none": "/ (no transfer)", "natural": "Natural images (Mini-ImageNet arm)", "ct": "Low-dose CT (Mayo arm)"}


def emanet_name(pretrain: str, arch: str, lam: float) -> str:
    return f"emanet_{pretrain}_{arch}_lam{float(lam):g}"


class UndeclaredInput(FileNotFoundError):
    """A table asked for a file its rule does not declare (the DAG would not rerun it when that file changes)."""


class Results:
    """The files one table job may read: exactly its rule's declared inputs (``--inputs``).

    Files are asked for by their path inside the run's results folder (``eval/dncnn.csv``); anything
    not among the inputs raises :class:`UndeclaredInput` instead of being read behind the DAG's back.
    """

    def __init__(self, inputs, settings: dict):
        self.inputs, self.s = [Path(p) for p in inputs], settings
        self._evals: dict[str, pd.DataFrame] = {}

    def declared(self, relative: str) -> Path | None:
        """The declared input at ``relative`` (a path inside the results folder), or None."""
        for path in self.inputs:
            if path.as_posix() == relative or path.as_posix().endswith("/" + relative):
                return path
        return None

    def file(self, relative: str) -> Path:
        path = self.declared(relative)
        if path is None:
            raise UndeclaredInput(f"{relative}: not among this table's declared inputs; add it to the rule's input")
        return path

    def matching(self, folder: str, suffix: str) -> list[Path]:
        """Declared inputs in ``folder`` (inside the results folder) ending in ``suffix``, sorted."""
        return sorted(p for p in self.inputs if p.parent.name == folder and p.name.endswith(suffix))

    def eval(self, method: str) -> pd.DataFrame:
        if method not in self._evals:
            self._evals[method] = pd.read_csv(self.file(f"eval/{method}.csv"))
        return self._evals[method]

    def summary(self, method: str, levels=None, metric: str = "psnr",
                blind: str = ESTIMATED) -> tuple[float, float, float]:
        """Mean and 95% CI of a metric over test images (levels averaged per image first).

        ``levels=[0]`` selects the blind rows (denoised originals, scored against the truth only) at the
        ``blind`` level (``evaluate.rows``).
        """
        df = select_rows(self.eval(method), levels, blind)
        per_image = df.groupby("image_id")[metric].mean().to_numpy()
        return bootstrap_ci(per_image, n_boot=int(self.s["bootstrap"]), seed=int(self.s["seed"]))

    def has_truth(self, method: str) -> bool:
        return "psnr_truth" in self.eval(method).columns and self.eval(method)["psnr_truth"].notna().any()


def _metric_cells(res: Results, method: str, levels, prefix: str = "") -> dict:
    cells = {}
    for metric in ("psnr", "ssim"):
        for ref in ("", "_truth"):
            if ref and not res.has_truth(method):
                continue
            mean, lo, hi = res.summary(method, levels, metric + ref)
            cells[f"{prefix}{metric}{ref}"] = mean
            cells[f"{prefix}{metric}{ref}_ci"] = f"[{lo:.3g}, {hi:.3g}]"
    return cells


def _notes(res: Results, extra: list[str]) -> list[str]:
    return extra + [data_source_note(bool(res.s["synthetic"])),
                    "psnr/ssim: original image as reference (paper protocol); *_truth: the phantom's noiseless "
                    "truth; *_ci: 95% bootstrap interval over test images.", SCORING_RULE]


def table1(res: Results):
    split = pd.read_csv(res.file("split.csv"))
    manifest = pd.read_csv(res.file("noise/train_manifest.csv"))
    with np.load(res.file("noise/testset.npz")) as z:
        n_levels, n_test = len(z["levels"]), len(z["image_id"])
    n_train, n_val = int((split["set"] == "train").sum()), int((split["set"] == "val").sum())
    rows = []
    for label, ours in [("Before expansion", (n_train + n_val, n_test)),
                        ("After expansion", (len(manifest), n_test * n_levels))]:
        p = paper.TABLE1[label]
        rows.append({"data": label, "training": ours[0], "testing": ours[1], "total": sum(ours),
                     "paper_training": p[0], "paper_testing": p[1], "paper_total": p[2]})
    notes = [f"Data: {n_train + n_val} training and {n_test} test images before expansion (the paper: "
             f"{paper.TABLE1['Before expansion'][0]} and {paper.TABLE1['Before expansion'][1]}), "
             f"{(n_train + n_val + n_test) / paper.TABLE1['Before expansion'][2]:.0%} of its size; expansion by noise "
             f"levels multiplies them as in the paper ({len(manifest) / max(n_train, 1):.0f} and {n_levels} per image, "
             f"paper {paper.TABLE1['After expansion'][0] / paper.TABLE1['Before expansion'][0]:.0f} and "
             f"{paper.TABLE1['After expansion'][1] / paper.TABLE1['Before expansion'][1]:.0f}).",
             f"Training before expansion includes {n_val} validation images (best-epoch choice); after expansion "
             f"counts the manifest of the {n_train} training images x levels {res.s.get('train_levels', '1..50')}, "
             "noise drawn on the fly.",
             f"Testing after expansion: {n_test} images x {n_levels} levels, materialised once with fixed seeds."]
    return pd.DataFrame(rows), "Table 1. Data before and after noise augmentation", \
        notes + [data_source_note(bool(res.s["synthetic"]))]


def _variant_table(res: Results, variants: dict, paper_rows: dict, levels, title: str, notes: list[str], trend):
    rows = []
    for label, (method, key) in variants.items():
        p = paper_rows.get(key, (np.nan, np.nan))
        rows.append({"variant": label, "model": method, **_metric_cells(res, method, levels),
                     "paper_psnr": p[0], "paper_ssim": p[1]})
    table = pd.DataFrame(rows)
    return table, title, _notes(res, [trend(table)] + notes)


def table3(res: Results):
    lam, level = float(res.s["lam"]), int(res.s["table_level"])
    variants = {SOURCE_LABELS[p]: (emanet_name(p, "full", lam), p) for p in ["none", "natural", "ct"]}
    return _variant_table(res, variants, paper.TABLE3, [level],
                          f"Table 3. Transfer strategy (noise level sigma = {level})",
                          ["Pretraining: simulated low-dose CT pairs unless a Mayo folder is configured; natural "
                           "images bundled in scikit-image/PyWavelets unless a folder is configured."],
                          lambda t: ordered_trend(t, "variant", "Transfer (none < natural < CT in the paper)"))


def table4(res: Results):
    lam = float(res.s["lam"])
    variants = {ARCH_LABELS[a]: (emanet_name("ct", a, lam), a) for a in res.s["archs"]}
    return _variant_table(res, variants, paper.TABLE4, None, "Table 4. Module ablation (mean over test levels)",
                          ["Each variant is pretrained on CT and fine-tuned like the full model."],
                          lambda t: ordered_trend(t, "variant", "Modules (each adds PSNR in the paper)"))


def table5(res: Results):
    lam = float(res.s["lam"])
    variants = {"MSE (lambda = 0)": (emanet_name("ct", "full", 0.0), "MSE"),
                "Perceptual (lambda = 1)": (emanet_name("ct", "full", 1.0), "Perceptual"),
                f"Composite (lambda = {lam:g})": (emanet_name("ct", "full", lam), "Composite")}
    return _variant_table(res, variants, paper.TABLE5, None, "Table 5. Loss functions (mean over test levels)",
                          ["Perceptual term: VGG-16 relu1_2 features; which weights were used is in "
                           "tables/training.csv (column vgg_weights)."], table5_trend)


ESTIMATOR_METHODS = ["HBNE", "DWTNE", "Ours"]


def _rmse(values: np.ndarray, target) -> float:
    return float(np.sqrt(np.mean((np.asarray(values, float) - target) ** 2)))


def lattice_notes(est: pd.DataFrame, has_truth: bool) -> list[str]:
    """Table 6's give-away check: each estimator's RMSE (mean over levels) as drawn and with the lattice broken."""
    if "variant" not in est.columns:
        return ["The estimators were not scored with the noise lattice broken (no 'variant' column)."]
    target = "true_noise" if has_truth else "noise_level"
    methods = ESTIMATOR_METHODS + (["Lattice"] if (est["method"] == "Lattice").any() else [])

    def mean_rmse(variant: str, method: str) -> float:
        rows = est[(est["variant"] == variant) & (est["method"] == method)]
        return float(np.mean([_rmse(g["estimate"], g[target]) for _, g in rows.groupby("noise_level")]))

    cells = {v: {m: mean_rmse(v, m) for m in methods} for v in VARIANTS}
    line = "; ".join(f"{v}: " + ", ".join(f"{m} {cells[v][m]:.2f}" for m in methods) for v in VARIANTS)
    ours_ratio = {v: cells[v]["Ours"] / cells[AS_DRAWN]["Ours"] for v in (ROUNDED, DITHERED)}
    read_off = est[(est["variant"] == AS_DRAWN) & (est["method"] == "Lattice")]
    give_away = (f" (as drawn, the read-off's RMSE against the nominal level is "
                 f"{_rmse(read_off['estimate'], read_off['noise_level']):.3f})" if len(read_off) else "")
    verdict = ("relies on the lattice" if max(ours_ratio.values()) > LATTICE_RELIANCE else
               "does not rely on the lattice")
    return [f"Lattice give-away (noise.lattice): our noise puts every noisy pixel on a grid of spacing sigma^2 / mean, "
            f"from which 'Lattice' reads the level without estimating any noise{give_away}. RMSE against "
            f"{'the true total noise of each variant' if has_truth else 'the nominal level'}, mean over levels, on the "
            f"same test images as drawn, rounded to 8-bit integers, and with a sub-lattice dither: {line}. Our "
            f"estimator's RMSE changes by x{ours_ratio[ROUNDED]:.2f} (rounded) and x{ours_ratio[DITHERED]:.2f} "
            f"(dithered): it {verdict} (threshold x{LATTICE_RELIANCE:g})."]


def table6(res: Results):
    est = pd.read_csv(res.file("eval/noise_estimates.csv"))
    has_truth = "true_noise" in est.columns and est["true_noise"].notna().any()
    drawn = est[est["variant"] == AS_DRAWN] if "variant" in est.columns else est
    rows = []
    for level, group in drawn.groupby("noise_level"):
        row = {"noise_level": int(level)}
        if has_truth:
            row["true_noise"] = float(group.loc[group["method"] == "Ours", "true_noise"].mean())
        for method in ESTIMATOR_METHODS:
            mine = group[group["method"] == method]
            values = mine["estimate"].to_numpy()
            row[f"{method}_estimate"] = float(values.mean())
            row[f"{method}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else np.nan
            row[f"{method}_rmse"] = _rmse(values, level)
            if has_truth:
                row[f"{method}_rmse_true"] = _rmse(values, mine["true_noise"].to_numpy())
            p = paper.TABLE6.get(int(level), {}).get(method, (np.nan, np.nan))
            row[f"paper_{method}_estimate"], row[f"paper_{method}_rmse"] = p
        rows.append(row)
    table = pd.DataFrame(rows)
    notes = [table6_trend(table),
             "*_rmse: root mean square of (estimate - nominal level) over the test images at that level (the paper's "
             "protocol: the added level taken as the noise); *_sd: the spread (SD) of the estimates, which is what the "
             "paper's 'RMSE' column behaves like (its values sit far below |mean estimate - level| at several levels); "
             + ("true_noise: the RMS of (noisy - truth), the image's whole noise (the original's own plus the "
                "added level); *_rmse_true: root mean square of (estimate - true_noise), the truth column, which the "
                "claims judge against the truth." if has_truth else
                "no truth: the error against the true total noise cannot be computed."),
             *lattice_notes(est, has_truth),
             "HBNE: histogram of local standard deviations; DWTNE: wavelet median absolute deviation "
             "(skimage estimate_sigma); Ours: expectation over the stage-1 network's 50 level classes. Estimators "
             "read the noisy images as drawn (unclipped); the scoring rule applies to scored images only."]
    return table, "Table 6. Noise-level estimation", notes + [data_source_note(bool(res.s["synthetic"]))]


def table7(res: Results):
    methods = ["noisy", "bm3d", "dncnn", "redcnn", "wgan", res.s["main"], "bm3d_anscombe"]
    rows = []
    for method in methods:
        display = display_name(method)
        for level in res.s["test_levels"]:
            p = paper.TABLE7.get(display, {}).get(int(level), (np.nan, np.nan))
            rows.append({"method": display, "noise_level": int(level), **_metric_cells(res, method, [level]),
                         "paper_psnr": p[0], "paper_ssim": p[1]})
    long = pd.DataFrame(rows)
    notes = [table7_trend(long), paper.TABLE7_MISPRINT, "BM3D gets the true level, as in the paper; BM3D (Anscombe) is our extra row: "
             "variance-stabilised BM3D with the exact unbiased inverse, the right classical method for Poisson data.",
             f"EMANet = {res.s['main']} (CT pretraining, full model, composite loss); its noise-level map comes from "
             "the stage-1 estimator."]
    return long, "Table 7. Denoising: PSNR / SSIM per noise level", _notes(res, notes)


def table7_markdown(long: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout: one row per method and reference, 'psnr/ssim' per level.

    Rows 'original' follow the paper's protocol, with the paper's own numbers in brackets; rows 'truth'
    score against the phantom's noiseless truth (where there is one).
    """
    refs = [("truth", "_truth")] if "psnr_truth" in long.columns else []
    wide = {}
    for (method, level), row in long.set_index(["method", "noise_level"]).iterrows():
        for ref, suffix in refs + [("original", "")]:
            cell = f"{row['psnr' + suffix]:.2f}/{row['ssim' + suffix]:.2f}"
            if not suffix and not np.isnan(row["paper_psnr"]):
                cell += f" ({row['paper_psnr']:.2f}/{row['paper_ssim']:.2f})"
            wide.setdefault((method, ref), {"method": method, "reference": ref})[f"sigma={level}"] = cell
    return pd.DataFrame(list(wide.values()))


BLIND_METHODS = ["noisy", "bm3d", "bm3d_anscombe", "dncnn", "redcnn", "wgan"]  # the main EMANet is added


def _blind_rows(res: Results, method: str, blind: str) -> dict | None:
    """One row of the blind table: scores against the truth at one blind level, and the mean level given."""
    df = select_rows(res.eval(method), [0], blind)
    if df.empty:
        return None
    label = "Original" if method == "noisy" else display_name(method)
    cells = {"method": label + (" (oracle level)" if blind == ORACLE else ""), "level": blind}
    for metric in ("psnr", "ssim"):
        mean, lo, hi = res.summary(method, [0], f"{metric}_truth", blind)
        cells[f"{metric}_truth"], cells[f"{metric}_truth_ci"] = mean, f"[{lo:.3g}, {hi:.3g}]"
    given = df["level_given"] if "level_given" in df.columns else pd.Series(dtype=float)
    cells["level_given"] = float(given.mean()) if given.notna().any() else np.nan
    return cells


def table_blind(res: Results):
    """Blind denoising of the acquired originals, scored against the phantom's truth (no paper counterpart).

    Rows at the shared level estimate first (the equal-terms comparison), then the oracle rows of the
    methods that take a level (the true total noise), so the estimator's share can be read off."""
    methods = BLIND_METHODS + [res.s["main"]]
    for method in methods:
        if not res.has_truth(method):
            raise ValueError(f"eval/{method}.csv has no truth scores: the blind table needs the phantom's truth")
    rows = [r for blind in (ESTIMATED, ORACLE) for m in methods if (r := _blind_rows(res, m, blind)) is not None]
    table = pd.DataFrame(rows)
    est = table.loc[table["level"] == ESTIMATED, "level_given"].dropna()
    oracle = table.loc[table["level"] == ORACLE, "level_given"].dropna()
    levels = (f"mean level given {est.iloc[0]:.2f} grey levels (estimated)" if len(est) else "")
    levels += (f" against a true total noise of {oracle.iloc[0]:.2f}" if len(oracle) else "")
    notes = [blind_trend(table),
             "Each method denoises the acquired original test images themselves (no noise added) and is scored "
             "against the phantom's noiseless truth, which the paper could not have. 'Original': the acquired image "
             "itself. Equal terms: every method that takes a level (EMANet's level map, BM3D's sigma, Anscombe-BM3D's "
             "gain) gets the same estimate of the original's total noise, DWTNE's wavelet MAD (the stage-1 network "
             "was trained to report only the level added to an original, so it cannot estimate an original's own "
             f"noise); DnCNN, RED-CNN and WGAN take no level. {levels}. '(oracle level)' rows give those methods the "
             "true total noise (RMS of original - truth): the gap to the row above is the level estimate's share.",
             "level_given: the mean level a method was given (empty: it takes none)."]
    return table, "Blind denoising of the original images, against the truth", _notes(res, notes)


def table8(res: Results):
    seg = pd.read_csv(res.file("eval/segmentation.csv"))
    rows = []
    for _, r in seg.iterrows():
        p = paper.TABLE8.get(r["method"], (np.nan,) * 3)
        rows.append({"method": r["method"], "precision": r["precision"], "iou": r["iou"], "recall": r["recall"],
                     "paper_precision": p[0], "paper_iou": p[1], "paper_recall": p[2]})
    notes = [table8_trend(pd.DataFrame(rows)),
             "Residual U-Net with squeeze-and-excitation trained on the phantom's lesion masks (original training "
             "images), applied to the original test images and to each method's blind-denoised originals (given the "
             f"shared level estimate). Pixel metrics pooled over the test images at {_cut_note(seg.iloc[0])}",
             SCORING_RULE]
    return pd.DataFrame(rows), "Table 8. Lesion segmentation", notes + [data_source_note(bool(res.s["synthetic"]))]


def _cut_note(row: pd.Series) -> str:
    """How Table 8's probability cut was chosen, and how stable it is (``evaluate.threshold``)."""
    if "threshold" not in row:
        return "threshold 0.5."
    if "threshold_stable_lo" not in row:
        return f"the probability threshold {float(row['threshold']):.2f}."
    edge = (" It lies at an end of the grid: the model's probabilities do not separate lesions, and the cut is "
            "unreliable." if truthy(row["threshold_at_edge"]) else " The grid reaches past it on both sides.")
    return (f"the probability threshold {float(row['threshold']):.3f} (the paper names none), chosen on the "
            f"{int(row['val_images'])} validation images ({int(row['val_lesion_pixels'])} lesion pixels; pooled IoU "
            f"there {float(row['val_iou']):.3f}) for the best bootstrap-mean pooled IoU over a logit-even grid "
            f"{float(row['grid_min']):.3f}-{float(row['grid_max']):.4f}; 90% of validation resamples pick a cut in "
            f"{float(row['threshold_stable_lo']):.3f}-{float(row['threshold_stable_hi']):.3f}.{edge} The IoU against "
            "the cut, on the validation and (for the reader only) the test originals, is in "
            "figures/segmentation_threshold.png.")


def training_table(res: Results):
    import torch

    from spectbone.train.curves import LAST_SHARE, still_improving

    rows = []
    for weights in res.matching("models", ".pt"):
        meta = torch.load(weights, map_location="cpu", weights_only=True).get("meta", {})
        history = res.declared(f"training/{weights.stem}.csv")
        h = pd.read_csv(history) if history is not None else pd.DataFrame()
        gain = still_improving(h, n_boot=int(res.s["bootstrap"]), seed=int(res.s["seed"]))
        rows.append({"model": weights.stem, "task": meta.get("task", ""), "network": meta.get("kind", ""),
                     "epochs": meta.get("epochs"), "steps": int(h["step"].max()) if "step" in h and len(h) else np.nan,
                     "best_step": meta.get("best_step"), "best_epoch": meta.get("best_epoch"),
                     "best_val": meta.get("best_val"), "val_score": gain["score"],
                     "last_quarter_gain": gain["gain"],
                     "last_quarter_gain_ci": f"[{gain['gain_lo']:.3g}, {gain['gain_hi']:.3g}]",
                     "still_improving": gain["still_improving"],
                     "train_seconds": float(h["seconds"].sum()) if len(h) else np.nan, "step_path": meta.get("step", ""),
                     "loss": meta.get("loss", ""), "vgg_weights": meta.get("vgg_weights", ""),
                     "data": meta.get("data_source", ""), "init": (meta.get("init") or {}).get("path", "")})
    notes = ["best_val: validation MSE for denoisers (in [0,1] units), mean absolute level error for the estimator, "
             "BCE + Tversky for the segmenter; best_step / best_epoch: where it was reached (validated every "
             "`training.val_every` steps and after every epoch).",
             f"last_quarter_gain: mean gain of the per-image validation score (val_score: psnr_db = PSNR in dB; "
             f"minus_level_error = minus the estimator's absolute level error; soft_dice for the segmenter) from the "
             f"last validation at or before {1 - LAST_SHARE:.0%} of the steps to the end, with its 95 % paired bootstrap "
             "interval over validation images; still_improving: that interval lies above 0 (more steps would still "
             "have helped)."]
    return pd.DataFrame(rows), "Training runs", notes


def improving_notes(res: Results) -> list[str]:
    """A note naming the models behind this table that were still improving when training stopped (if any)."""
    from spectbone.train.curves import improving_note

    histories = {p.stem: pd.read_csv(p) for p in res.matching("training", ".csv")}
    note = improving_note(histories, n_boot=int(res.s["bootstrap"]), seed=int(res.s["seed"])) if histories else None
    return [note] if note else []


def preprocessing_table(res: Results):
    rows = []
    table = pd.read_csv(res.file("preprocess/preprocess.csv"), keep_default_na=False)
    keep = table["keep"].map(truthy)
    rows.append({"quantity": "images converted", "value": len(table)})
    rows.append({"quantity": "images kept after screening", "value": int(keep.sum())})
    for reason, count in table.loc[~keep, "reason"].str.split(":").str[0].value_counts().items():
        rows.append({"quantity": f"screened out: {reason}", "value": int(count)})
    if res.declared("preprocess/crop_eval.csv"):
        crop = pd.read_csv(res.file("preprocess/crop_eval.csv"), keep_default_na=False)
        clean = crop[crop["problem"] == ""]
        rows.append({"quantity": "crop IoU vs landmarks, clean studies: median", "value": float(clean["iou"].median())})
        rows.append({"quantity": "crop IoU >= 0.9, share of clean studies", "value": float((clean["iou"] >= 0.9).mean())})
    if res.declared("preprocess/screening_eval.csv"):
        ev = pd.read_csv(res.file("preprocess/screening_eval.csv")).iloc[0]
        for k in ["precision", "recall", "tp", "fp", "fn", "tn"]:
            if k in ev:
                rows.append({"quantity": f"screening {k} vs phantom labels", "value": float(ev[k])})
    return pd.DataFrame(rows), "Preprocessing: crop accuracy and screening", [data_source_note(bool(res.s["synthetic"]))]


TABLES = {"1": table1, "2": table2, "3": table3, "4": table4, "5": table5, "6": table6, "7": table7, "8": table8,
          "blind": table_blind, "training": training_table, "preprocessing": preprocessing_table}


def add_arguments(parser, verb):
    parser.add_argument("which", choices=list(TABLES))
    parser.add_argument("--inputs", nargs="+", required=True,
                        help="every file the table reads (the rule's declared inputs); nothing else is read")
    parser.add_argument("--settings", default="{}", help="JSON of the config values tables need")
    parser.add_argument("--out", required=True, help="CSV path (the Markdown goes beside it)")
    add_common_arguments(parser)


def run(args):
    setup_logging(args.log)
    settings = {"bootstrap": 1000, "seed": 0, "synthetic": True, **json.loads(args.settings)}
    res = Results(args.inputs, settings)
    df, title, notes = TABLES[args.which](res)
    if args.which != "training":  # the training table has its own still_improving column
        notes = notes + improving_notes(res)
    if args.which == "7":  # Markdown in the paper's wide layout for people, the CSV in long form
        write_table(table7_markdown(df), args.out, title, notes)
        df.to_csv(Path(args.out).with_suffix(".csv"), index=False)
    else:
        write_table(df, args.out, title, notes)
    log.info("%s:\n%s", title, df.to_string(index=False))
    return 0
