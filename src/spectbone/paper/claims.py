"""The paper's claims in words, our evidence from the tables, and a computed verdict.

Each check reads only the table CSVs the DAG wrote; a verdict is 'holds', 'does not hold', or
'not tested at this scale' when the needed table or numbers are missing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from spectbone.util.outputs import data_source_note
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.paper.claims")
HOLDS, FAILS, UNTESTED = "holds", "does not hold", "not tested at this scale"


def _verdict(ok) -> str:
    return UNTESTED if ok is None else (HOLDS if ok else FAILS)


def _fmt(values: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in values.items())


def claim_flat_emanet(t):
    t7 = t["7"]
    p = t7.pivot_table(index="noise_level", columns="method", values="psnr")
    drops = {m: float(p[m].iloc[0] - p[m].iloc[-1]) for m in ["EMANet", "DnCNN", "RED-CNN", "WGAN"] if m in p}
    ok = drops["EMANet"] < min(v for k, v in drops.items() if k != "EMANet")
    return ("EMANet's PSNR stays nearly flat as the noise level rises, while the other models fall "
            "(paper: 32.91 -> 31.51 dB vs DnCNN 31.55 -> 24.62 dB).",
            f"PSNR drop from level {p.index[0]} to {p.index[-1]}: {_fmt(drops)} dB", _verdict(ok))


def claim_deep_beats_bm3d(t):
    p = t["7"].pivot_table(index="noise_level", columns="method", values="psnr")
    wins = {m: int((p[m] > p["BM3D"]).sum()) for m in ["DnCNN", "RED-CNN", "WGAN", "EMANet"]}
    return ("All four deep models score higher PSNR than BM3D at every level.",
            f"levels (of {len(p)}) where each beats BM3D: " + ", ".join(f"{k} {v}" for k, v in wins.items()),
            _verdict(all(v == len(p) for v in wins.values())))


def claim_emanet_best(t):
    p = t["7"].pivot_table(index="noise_level", columns="method", values="psnr")
    learned = p[["BM3D", "DnCNN", "RED-CNN", "WGAN", "EMANet"]]
    best = int((learned.idxmax(axis=1) == "EMANet").sum())
    return ("EMANet has the best PSNR at most levels (all but 10, 15 and 20 in the paper: 5 of 8).",
            f"EMANet best at {best} of {len(p)} levels", _verdict(best >= int(np.ceil(len(p) * 5 / 8))))


def claim_baseline_order(t):
    m = t["7"].groupby("method")["psnr"].mean()
    ok = m["RED-CNN"] > m["DnCNN"] > m["WGAN"]
    return ("RED-CNN scores slightly above DnCNN, and WGAN slightly below DnCNN (mean PSNR).",
            f"mean PSNR: {_fmt({k: m[k] for k in ['RED-CNN', 'DnCNN', 'WGAN']})} dB", _verdict(ok))


def claim_transfer(t):
    psnr = t["3"]["psnr"].to_numpy()
    return ("CT pretraining beats natural-image pretraining, which beats no transfer (Table 3).",
            "PSNR none / natural / CT: " + " / ".join(f"{v:.2f}" for v in psnr), _verdict(psnr[0] < psnr[1] < psnr[2]))


def claim_modules(t):
    psnr = t["4"]["psnr"].to_numpy()
    return ("Every module adds PSNR: plain < +RDC < +MD < +RCAG < +CF (Table 4).",
            "PSNR: " + " < ".join(f"{v:.2f}" for v in psnr), _verdict(bool(np.all(np.diff(psnr) > 0))))


def claim_losses(t):
    psnr = dict(zip(["MSE", "Perceptual", "Composite"], t["5"]["psnr"].to_numpy()))
    ok = psnr["MSE"] >= psnr["Composite"] > psnr["Perceptual"] and psnr["MSE"] - psnr["Composite"] < 2.0 and \
        psnr["Composite"] - psnr["Perceptual"] > 2 * (psnr["MSE"] - psnr["Composite"])
    return ("MSE scores the highest PSNR, the composite loss close behind, the perceptual loss far lower (Table 5).",
            f"PSNR {_fmt(psnr)} dB", _verdict(ok))


def claim_estimator(t):
    t6 = t["6"]
    rmse = {m: float(t6[f"{m}_rmse"].mean()) for m in ["HBNE", "DWTNE", "Ours"]}
    ok = rmse["Ours"] < min(rmse["HBNE"], rmse["DWTNE"])
    return ("Our noise estimator has the lowest RMSE, below 1.2 at every level (Table 6).",
            f"mean RMSE over levels: {_fmt(rmse)}; ours max {t6['Ours_rmse'].max():.3g}",
            _verdict(ok and t6["Ours_rmse"].max() < 1.2) if ok else FAILS)


def claim_segmentation(t):
    t8 = t["8"].set_index("method")
    iou = t8["iou"]
    deep = ["DnCNN", "RED-CNN", "WGAN", "EMANet"]
    ok = all(iou[m] >= iou["Original"] for m in deep) and iou["EMANet"] == iou[deep].max()
    return ("Denoising improves lesion segmentation: every deep model's IoU beats the original's, EMANet's most; "
            "BM3D lowers it (Table 8).", f"IoU: {_fmt(iou.to_dict())}", _verdict(ok))


def claim_table2(t):
    t2 = t["2"].set_index("noise_level")["ssim"]
    peak = int(t2.idxmax())
    ok = 10 <= peak <= 30 and t2.iloc[-1] < t2.max() and t2.iloc[0] < t2.max()
    return ("Noise-region SSIM rises up to about level 20, then falls (Table 2).",
            f"SSIM by level: {_fmt({str(k): v for k, v in t2.items()})}; peak at {peak}", _verdict(ok))


CLAIMS = [("2", claim_table2), ("3", claim_transfer), ("4", claim_modules), ("5", claim_losses),
          ("6", claim_estimator), ("7", claim_flat_emanet), ("7", claim_deep_beats_bm3d), ("7", claim_emanet_best),
          ("7", claim_baseline_order), ("8", claim_segmentation)]


def check_claims(tables_dir: Path) -> pd.DataFrame:
    tables = {}
    for n in "2345678":
        path = tables_dir / f"table{n}.csv"
        if path.exists():
            tables[n] = pd.read_csv(path)
    rows = []
    for n, check in CLAIMS:
        if n not in tables:
            rows.append({"table": n, "claim": check.__name__, "evidence": f"table {n} missing", "verdict": UNTESTED})
            continue
        try:
            claim, evidence, verdict = check(tables)
        except (KeyError, IndexError, ValueError) as err:
            claim, evidence, verdict = check.__name__, f"numbers missing ({err})", UNTESTED
        rows.append({"table": n, "claim": claim, "evidence": evidence, "verdict": verdict})
    return pd.DataFrame(rows)


def add_arguments(parser, verb):
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--settings", default="{}")
    parser.add_argument("--out", required=True)
    add_common_arguments(parser)


def run(args):
    setup_logging(args.log)
    settings = {"synthetic": True, **json.loads(args.settings)}
    claims = check_claims(Path(args.results_dir) / "tables")
    counts = claims["verdict"].value_counts().to_dict()
    lines = ["# The paper's claims, checked against this run", "",
             data_source_note(bool(settings["synthetic"])) + " Verdicts are computed from the tables of this run; "
             "small scales (few epochs, few images) can reverse a claim that needs full training.", "",
             "Summary: " + ", ".join(f"{v} {k}" for k, v in counts.items()), "",
             claims.to_markdown(index=False), ""]
    Path(args.out).write_text("\n".join(lines))
    claims.to_csv(Path(args.out).with_suffix(".csv"), index=False)
    log.info("claims: %s", counts)
    return 0
