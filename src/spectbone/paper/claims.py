"""The paper's claims in words, each judged against the phantom's truth and under the paper's protocol.

A claim is a set of comparisons (`verdicts.Comparison`) built from the numbers a source gives
(`evidence.PerImage`: this run's per-image scores, bootstrapped over test images;
`evidence.TableMeans`: a table's means, such as the paper's own tables, point values only). How
comparisons become `holds` / `does not hold` / `inconclusive` is in `spectbone.paper.verdicts`.
The same claims are also judged on the paper's own numbers (`values.py`), which shows where the
paper's tables do not support its text.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pandas as pd

from spectbone.evaluate.rule import SCORING_RULE
from spectbone.paper import values as paper
from spectbone.paper.evidence import NoTruth, PerImage, TableMeans, Unavailable
from spectbone.paper.tables import emanet_name
from spectbone.paper.trends import FAR_FACTOR, FAR_READING, RMSE_LIMIT, far_lower_margin
from spectbone.paper.verdicts import (
    ALPHA,
    DEFAULT_BOOTSTRAP,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Comparison,
    Judgement,
    all_hold,
    at_least,
    judge,
    maximum,
    mean,
)
from spectbone.util.methods import display_name
from spectbone.util.outputs import data_source_note
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.paper.claims")

NO_TRUTH = "not available (no truth)"
PAPER_MEANS = "n/a (paper reports means only)"
METRICS = ("psnr", "ssim")
DEEP = ("dncnn", "redcnn", "wgan")
ESTIMATORS = ("HBNE", "DWTNE", "Ours")
SEG_METRICS = ("precision", "iou", "recall")
SEG_DEEP = ("DnCNN", "RED-CNN", "WGAN", "EMANet")
BEST_SHARE = 5 / 8  # the paper's text: EMANet best at all levels but 10, 15 and 20, i.e. 5 of its 8


def _verdict(comparisons) -> str:
    return all_hold(c.verdict for c in comparisons)


def judge_table2(src, s):
    ssim, label = src.table2_ssim()
    levels = sorted(ssim)
    window = [lv for lv in levels if 10 <= lv <= 30]
    outside = [lv for lv in levels if lv not in window]
    if not window or not outside:
        raise Unavailable("table 2 needs levels inside and outside 10-30")
    peak = max(window, key=lambda lv: ssim[lv].point)
    comps = [Comparison(f"SSIM {peak} - SSIM {lv}", ssim[peak] - ssim[lv]) for lv in outside]
    headline = (f"highest SSIM inside 10-30 at level {peak}; SSIM by level "
                + ", ".join(f"{lv} {ssim[lv].point:.3g}" for lv in levels))
    return judge(comps, _verdict(comps), headline, src.point_label or label)


def judge_transfer(src, s):
    comps = []
    for metric in METRICS:
        v = {p: src.variant("3", emanet_name(p, "full", s["lam"]), metric) for p in ["none", "natural", "ct"]}
        comps += [Comparison(f"{metric.upper()} CT - natural", v["ct"] - v["natural"]),
                  Comparison(f"{metric.upper()} natural - none", v["natural"] - v["none"])]
    return judge(comps, _verdict(comps), point_label=src.point_label)


def judge_modules(src, s):
    archs, comps = list(s["archs"]), []
    for metric in METRICS:
        v = [src.variant("4", emanet_name("ct", a, s["lam"]), metric) for a in archs]
        comps += [Comparison(f"{metric.upper()} {b} - {a}", v[i + 1] - v[i])
                  for i, (a, b) in enumerate(pairwise(archs))]
    return judge(comps, _verdict(comps), point_label=src.point_label)


def judge_losses(src, s):
    comps = []
    for metric in METRICS:
        mse, perc, comp = (src.variant("5", emanet_name("ct", "full", lam), metric) for lam in (0.0, 1.0, s["lam"]))
        m = metric.upper()
        comps += [Comparison(f"{m} MSE - composite", mse - comp),
                  Comparison(f"{m} (composite - perceptual) - {FAR_FACTOR:g} x (MSE - composite)",
                             far_lower_margin(mse, comp, perc))]
    return judge(comps, _verdict(comps), point_label=src.point_label)


def judge_estimator(src, s):
    levels = src.noise_levels()
    rmse = {m: {lv: src.noise_rmse(m, lv) for lv in levels} for m in ESTIMATORS}
    avg = {m: mean(rmse[m].values()) for m in ESTIMATORS}
    comps = [Comparison(f"mean RMSE Ours - {m}", avg["Ours"] - avg[m], "<") for m in ("HBNE", "DWTNE")]
    comps += [Comparison(f"Ours RMSE at {lv} (< {RMSE_LIMIT:g})", rmse["Ours"][lv], "<", RMSE_LIMIT) for lv in levels]
    headline = "mean RMSE over levels " + ", ".join(f"{m} {avg[m].point:.3g}" for m in ESTIMATORS)
    return judge(comps, _verdict(comps), headline, src.point_label)


def judge_flat(src, s):
    levels = src.levels()
    lo, hi = levels[0], levels[-1]
    methods = [s["main"], *DEEP]
    drop = {m: src.denoising(m, "psnr", lo) - src.denoising(m, "psnr", hi) for m in methods}
    comps = [Comparison(f"drop {display_name(m)} - drop EMANet", drop[m] - drop[s["main"]]) for m in DEEP]
    headline = f"PSNR drop from level {lo} to {hi}: " + ", ".join(
        f"{display_name(m)} {drop[m].point:.3g} dB" for m in methods)
    return judge(comps, _verdict(comps), headline, src.point_label)


def judge_deep_beat_bm3d(src, s):
    comps, per_model = [], {}
    for m in [*DEEP, s["main"]]:
        mine = [Comparison(f"{metric.upper()} {display_name(m)} - BM3D at {lv}",
                           src.denoising(m, metric, lv) - src.denoising("bm3d", metric, lv))
                for lv in src.levels() for metric in METRICS]
        per_model[display_name(m)] = sum(c.verdict == HOLDS for c in mine)
        comps += mine
    headline = f"comparisons (of {len(comps) // len(per_model)} per model) that hold: " + \
        ", ".join(f"{k} {v}" for k, v in per_model.items())
    return judge(comps, _verdict(comps), headline, src.point_label)


def judge_emanet_best(src, s):
    levels = src.levels()
    others = ["bm3d", *DEEP]
    comps = [Comparison(f"EMANet - best other at {lv}",
                        src.denoising(s["main"], "psnr", lv) - maximum(src.denoising(m, "psnr", lv) for m in others))
             for lv in levels]
    need = math.ceil(len(levels) * BEST_SHARE)
    verdicts = [c.verdict for c in comps]
    headline = (f"EMANet best at {verdicts.count(HOLDS)}, not best at {verdicts.count(FAILS)}, undecided at "
                f"{verdicts.count(INCONCLUSIVE)} of {len(levels)} levels; the claim needs {need}")
    return judge(comps, at_least(need, verdicts), headline, src.point_label)


def judge_baseline_order(src, s):
    comps = []
    for metric in METRICS:
        v = {m: src.denoising(m, metric) for m in DEEP}
        comps += [Comparison(f"{metric.upper()} RED-CNN - DnCNN", v["redcnn"] - v["dncnn"]),
                  Comparison(f"{metric.upper()} DnCNN - WGAN", v["dncnn"] - v["wgan"])]
    return judge(comps, _verdict(comps), point_label=src.point_label)


def judge_segmentation_gain(src, s):
    comps = [Comparison(f"{metric} {m} - Original", src.segmentation(m, metric) - src.segmentation("Original", metric))
             for m in SEG_DEEP for metric in SEG_METRICS]
    return judge(comps, _verdict(comps), point_label=src.point_label)


def judge_segmentation_best(src, s):
    comps, best = [], []
    for metric in SEG_METRICS:
        v = {m: src.segmentation(m, metric) for m in ["Original", "BM3D", *SEG_DEEP]}
        rest = maximum(e for m, e in v.items() if m != "EMANet")
        comps.append(Comparison(f"{metric} EMANet - best other", v["EMANet"] - rest))
        top = [m for m in v if v[m].point == max(e.point for e in v.values())]
        best.append(f"{metric} {top[0]}" if len(top) == 1 else f"{metric} tie of {', '.join(top)}")
    return judge(comps, _verdict(comps), "highest point value: " + ", ".join(best), src.point_label)


def judge_blind(src, s):
    """Blind table: EMANet on the acquired originals, against every other method and the original itself."""
    comps = []
    for metric in METRICS:
        emanet = src.blind(s["main"], metric)
        comps += [Comparison(f"{metric.upper()} EMANet - {'Original' if m == 'noisy' else display_name(m)}",
                             emanet - src.blind(m, metric))
                  for m in ["noisy", "bm3d", "bm3d_anscombe", *DEEP]]
    return judge(comps, _verdict(comps), point_label=src.point_label)


def _paper_gain(metric: str) -> float:
    i = SEG_METRICS.index(metric)
    return paper.TABLE8["EMANet"][i] - paper.TABLE8["Original"][i]


def _paper_psnr(method: str, level: int) -> float:
    return paper.TABLE7[method][level][0]


@dataclass(frozen=True)
class Claim:
    table: str
    text: Callable[[dict], str]
    judge: Callable


_T7_LO, _T7_HI = min(paper.TABLE7["EMANet"]), max(paper.TABLE7["EMANet"])
CLAIMS = [
    Claim("2", lambda s: "Noise-region SSIM rises as noise is added, up to about level 20 (its maximum lies within "
          "10-30), then falls (Table 2).", judge_table2),
    Claim("3", lambda s: f"CT pretraining beats natural-image pretraining, which beats no transfer, in PSNR and SSIM "
          f"(sigma = {s['table_level']}; Table 3).", judge_transfer),
    Claim("4", lambda s: "Every module adds PSNR and SSIM: plain < +RDC < +MD < +RCAG < +CF (Table 4).", judge_modules),
    Claim("5", lambda s: "MSE scores highest, the composite loss slightly lower, the perceptual loss far lower (PSNR "
          f"and SSIM; {FAR_READING}; Table 5).", judge_losses),
    Claim("6", lambda s: f"Our noise estimator has the lowest RMSE (mean over levels), and below {RMSE_LIMIT:g} at "
          "every level (Table 6).", judge_estimator),
    Claim("7", lambda s: "EMANet's PSNR barely falls as noise rises while the other deep models' fall: its drop from "
          f"the lowest to the highest level is the smallest (paper: EMANet {_paper_psnr('EMANet', _T7_LO):.2f} -> "
          f"{_paper_psnr('EMANet', _T7_HI):.2f} dB, DnCNN {_paper_psnr('DnCNN', _T7_LO):.2f} -> "
          f"{_paper_psnr('DnCNN', _T7_HI):.2f} dB; Table 7).", judge_flat),
    Claim("7", lambda s: "All four deep models score higher PSNR and SSIM than BM3D at every level (Table 7).",
          judge_deep_beat_bm3d),
    Claim("7", lambda s: "EMANet has the best PSNR (among BM3D and the deep models) at most levels: all but 10, 15 and "
          "20 in the paper, 5 of 8 (Table 7).", judge_emanet_best),
    Claim("7", lambda s: "RED-CNN scores slightly above DnCNN, WGAN slightly below DnCNN (mean PSNR and SSIM over "
          "levels; Table 7).", judge_baseline_order),
    Claim("blind", lambda s: "Applied to the acquired images themselves (blind: the noise level estimated, nothing "
          "added), EMANet brings them closer to the noiseless truth than the originals are and than every other "
          "method does (PSNR and SSIM; every method that takes a level given the same estimate of the originals' "
          "total noise; the paper shows this only as pictures, Figs 12-13; our blind table).", judge_blind),
    Claim("8", lambda s: "Blind denoising by each of the four deep models improves lesion segmentation over the "
          "original images (precision, IoU and recall; Table 8).", judge_segmentation_gain),
    Claim("8", lambda s: "EMANet's denoised images segment best, gaining " + " / ".join(
          f"{_paper_gain(m):+.3f}" for m in SEG_METRICS) + " precision / IoU / recall over the original (Table 8).",
          judge_segmentation_best),
]


def base_verdict(verdict: str) -> str:
    """The verdict without its note ('does not hold: ...' -> 'does not hold')."""
    return verdict.split(":")[0].split(" (")[0]


def _judge_one(claim: Claim, src, settings: dict, contradiction: bool) -> Judgement:
    if src is None:
        return Judgement("", "", NO_TRUTH)
    try:
        j = claim.judge(src, settings)
    except NoTruth as err:
        return Judgement(str(err), "", NO_TRUTH)
    except Unavailable as err:
        return Judgement(str(err), "", f"not tested ({err})")
    except (KeyError, IndexError, ValueError) as err:
        return Judgement(f"numbers missing ({err})", "", f"not tested ({type(err).__name__})")
    if contradiction and j.verdict == FAILS:
        return Judgement(j.evidence, j.interval, f"{FAILS}: the paper's own Table {claim.table} contradicts its text")
    return j


def check_claims(sources: dict, settings: dict, contradiction: bool = False) -> pd.DataFrame:
    """One row per claim; columns evidence_/interval_/verdict_ per reference in `sources` (None: no such data).

    contradiction: the sources are the paper's own tables, so a claim that does not hold there is
    one the paper's table contradicts."""
    rows = []
    for claim in CLAIMS:
        row = {"table": claim.table, "claim": claim.text(settings)}
        for ref, src in sources.items():
            j = _judge_one(claim, src, settings, contradiction)
            row.update({f"evidence_{ref}": j.evidence, f"interval_{ref}": j.interval, f"verdict_{ref}": j.verdict})
        rows.append(row)
    return pd.DataFrame(rows)


def paper_settings() -> dict:
    """The paper's set-up in the settings' terms (lambda 0.2, Table 3 at sigma 20, its five presets)."""
    lam = 0.2
    return {"lam": lam, "main": emanet_name("ct", "full", lam), "archs": list(paper.TABLE4), "table_level": 20}


def paper_tables(settings: dict | None = None) -> dict[str, pd.DataFrame]:
    """The paper's Tables 2-8 (values.py) laid out as this pipeline's table CSVs (paper protocol only)."""
    s = settings or paper_settings()
    lam = s["lam"]
    t = {"2": pd.DataFrame({"noise_level": list(paper.TABLE2), "ssim": list(paper.TABLE2.values())})}
    t["3"] = pd.DataFrame([{"model": emanet_name(p, "full", lam), "psnr": v[0], "ssim": v[1]}
                           for p, v in paper.TABLE3.items()])
    t["4"] = pd.DataFrame([{"model": emanet_name("ct", a, lam), "psnr": v[0], "ssim": v[1]}
                           for a, v in paper.TABLE4.items()])
    loss_lam = {"MSE": 0.0, "Perceptual": 1.0, "Composite": lam}
    t["5"] = pd.DataFrame([{"model": emanet_name("ct", "full", loss_lam[k]), "psnr": v[0], "ssim": v[1]}
                           for k, v in paper.TABLE5.items()])
    t["6"] = pd.DataFrame([{"noise_level": lv, **{f"{m}_{q}": est[m][i] for m in est
                                                   for i, q in enumerate(["estimate", "rmse"])}}
                           for lv, est in paper.TABLE6.items()])
    t["7"] = pd.DataFrame([{"method": m, "noise_level": lv, "psnr": v[0], "ssim": v[1]}
                           for m, row in paper.TABLE7.items() for lv, v in row.items()])
    t["8"] = pd.DataFrame([{"method": m, **dict(zip(SEG_METRICS, v))} for m, v in paper.TABLE8.items()])
    return t


def check_paper_tables() -> pd.DataFrame:
    """The claims judged on the paper's own numbers (paper protocol; no truth, no per-image data)."""
    s = paper_settings()
    return check_claims({"truth": None, "paper_protocol": TableMeans(paper_tables(s), "paper", s, PAPER_MEANS)},
                        s, contradiction=True)


def _has_truth(evals: dict[str, pd.DataFrame]) -> bool:
    return any("psnr_truth" in df.columns and df.loc[df["noise_level"] > 0, "psnr_truth"].notna().any()
               for df in evals.values())


def load_sources(tables=(), evals=(), noise_estimates=None, segmentation=None, settings=None) -> dict:
    """Sources of both references from the files given: per-image scores when there are any, else the tables."""
    s = settings or {}
    t = {Path(p).stem.removeprefix("table"): pd.read_csv(p) for p in tables}
    if evals:
        ev = {}
        for p in evals:
            df = pd.read_csv(p)
            ev[str(df["method"].iloc[0]) if len(df) else Path(p).stem] = df
        noise = pd.read_csv(noise_estimates) if noise_estimates else None
        seg = pd.read_csv(segmentation) if segmentation else None
        sources = {ref: PerImage(ev, ref, s, noise, seg, t.get("2")) for ref in ("truth", "paper")}
        truth = _has_truth(ev)
    else:
        sources = {ref: TableMeans(t, ref, s) for ref in ("truth", "paper")}
        truth = any("psnr_truth" in df.columns for df in t.values())
    return {"truth": sources["truth"] if truth else None, "paper_protocol": sources["paper"]}


def summary_counts(claims: pd.DataFrame, refs=("truth", "paper_protocol")) -> pd.DataFrame:
    """Claims per verdict (rows) and reference (columns)."""
    counts = {ref: claims[f"verdict_{ref}"].map(base_verdict).value_counts() for ref in refs}
    out = pd.DataFrame(counts).fillna(0).astype(int)
    order = [HOLDS, FAILS, INCONCLUSIVE]
    return out.loc[[v for v in order if v in out.index] + [v for v in out.index if v not in order]]


def method_note(n_boot: int, seed: int, n_images: int) -> str:
    if not n_images:
        return ("Method: no per-image scores were given, so every verdict is a point verdict on the tables' means "
                "(holds / does not hold, no interval).")
    return (f"Method: each comparison is bootstrapped over the {n_images} test images (image ids resampled with "
            f"replacement, B = {n_boot} resamples, seed {seed}), with the same resamples for every method, so "
            f"differences are paired. A comparison holds when the {100 * (1 - ALPHA):.0f}% percentile interval of the "
            "difference lies entirely on the claimed side of its threshold, does not hold when it lies entirely on the "
            "other side, and is inconclusive when it contains the threshold. A claim of several comparisons holds when "
            "all hold, does not hold when any does not, else is inconclusive; 'best at k of L levels' holds when k "
            "levels hold and fails when too few levels are left undecided to reach k. Without per-image data the "
            "comparison is judged on the point value, and its interval says so. Truth: the phantom's noiseless "
            "image; paper protocol: the acquired image as reference, as the paper scores. Table 8 is scored against "
            "lesion masks under both; Table 6 against the true total noise of each noisy image (truth) and against "
            "the added level (paper protocol). The blind claim compares methods given the same level estimate. "
            + SCORING_RULE
            + (f" With only {n_images} test images the percentile intervals are rough (too narrow)."
               if n_images < 20 else ""))


def write_report(claims: pd.DataFrame, paper_check: pd.DataFrame, md: Path, csv: Path, settings: dict, n_images: int):
    claims = claims.assign(verdict_paper_values=paper_check["verdict_paper_protocol"].to_numpy())
    claims.to_csv(csv, index=False)
    lines = ["# The paper's claims, checked against this run", "",
             data_source_note(bool(settings.get("synthetic", True))) + " Small scales (few epochs, few images) can "
             "reverse or blur a claim that needs full training.", "",
             method_note(int(settings.get("bootstrap", DEFAULT_BOOTSTRAP)), int(settings.get("seed", 0)), n_images), "",
             "verdict_paper_values: the same check on the paper's own tables (means only).", "",
             "## Summary", "", summary_counts(claims).to_markdown(), "",
             "## Claims", "", claims.to_markdown(index=False), ""]
    md.write_text("\n".join(lines))


def add_arguments(parser, verb):
    parser.add_argument("--tables", nargs="*", default=[], help="table CSVs (tableN.csv); Table 2 always, the "
                        "others only when no per-image scores are given")
    parser.add_argument("--evals", nargs="*", default=[], help="per-image score CSVs (eval/<method>.csv)")
    parser.add_argument("--noise-estimates", help="per-image noise estimates (Table 6)")
    parser.add_argument("--segmentation", help="per-image segmentation counts (Table 8)")
    parser.add_argument("--settings", default="{}", help="JSON: main, lam, archs, table_level, test_levels, "
                        "bootstrap, seed, synthetic")
    parser.add_argument("--out", required=True, help="claims.md")
    parser.add_argument("--csv", help="claims.csv (default: beside --out)")
    add_common_arguments(parser)


def run(args):
    setup_logging(args.log)
    settings = {"bootstrap": DEFAULT_BOOTSTRAP, "seed": 0, "synthetic": True, **json.loads(args.settings)}
    sources = load_sources(args.tables, args.evals, args.noise_estimates, args.segmentation, settings)
    claims = check_claims(sources, settings)
    md = Path(args.out)
    csv = Path(args.csv) if args.csv else md.with_suffix(".csv")
    write_report(claims, check_paper_tables(), md, csv, settings, sources["paper_protocol"].n_images())
    for ref in ("truth", "paper_protocol"):
        log.info("claims (%s): %s", ref, claims[f"verdict_{ref}"].map(base_verdict).value_counts().to_dict())
    return 0
