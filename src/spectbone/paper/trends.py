"""One sentence under each table: what it shows and whether the paper's trend reproduces.

Every sentence is computed from the table's own numbers and from the paper's transcribed values
(``paper.values``); nothing about results is fixed prose. They read point means: the intervals and
the verdicts that account for them are in claims.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spectbone.paper import values as paper

RMSE_LIMIT = 1.2  # the paper's text: its estimator's RMSE "stays within 1.2"


def _reproduces(ok: bool) -> str:
    return "reproduces" if ok else "does not reproduce"


def _chain(labels, values, fmt: str = ".2f") -> str:
    return " / ".join(f"{label} {value:{fmt}}" for label, value in zip(labels, values))


def best_metric(table: pd.DataFrame) -> tuple[str, str]:
    """Column to read (truth where the table has it) and how to name it."""
    if "psnr_truth" in table.columns and table["psnr_truth"].notna().any():
        return "psnr_truth", "PSNR against the truth"
    return "psnr", "PSNR against the original (paper protocol)"


def ordered_trend(table: pd.DataFrame, label_col: str, what: str) -> str:
    """Tables 3 and 4: the paper's rows rise from first to last; do ours?"""
    col, name = best_metric(table)
    ours = table[col].to_numpy(dtype=float)
    rises = np.diff(ours) > 0
    theirs = table["paper_psnr"].to_numpy(dtype=float)
    return (f"{what}: {name} {_chain(table[label_col], ours)} dB; the paper's rise from each row to the next "
            f"({_chain(table[label_col], theirs, '.4g')} dB) {_reproduces(bool(rises.all()))} here "
            f"({int(rises.sum())} of {len(rises)} steps rise).")


FAR_FACTOR = 2.0  # "far lower": the composite-perceptual gap exceeds FAR_FACTOR x the MSE-composite gap
FAR_READING = (f"'far' read as: the composite-perceptual gap exceeds {FAR_FACTOR:g} x the MSE-composite gap")


def far_lower_margin(mse, composite, perceptual):
    """(composite - perceptual) - FAR_FACTOR x (MSE - composite): > 0 when the perceptual loss is 'far lower'.

    The one reading of Table 5's "far lower", shared by the trend sentence and the claim (works on
    floats and on bootstrap Estimates alike)."""
    return (composite - perceptual) - FAR_FACTOR * (mse - composite)


def table5_trend(table: pd.DataFrame) -> str:
    col, name = best_metric(table)
    mse, perceptual, composite = table[col].to_numpy(dtype=float)
    ok = mse >= composite > perceptual and far_lower_margin(mse, composite, perceptual) > 0
    return (f"Losses: {name} MSE {mse:.2f}, perceptual {perceptual:.2f}, composite {composite:.2f} dB; the paper's "
            f"pattern (MSE highest, composite close behind, perceptual far lower; {FAR_READING}) {_reproduces(ok)} "
            "here.")


def _lowest_count(rmse: pd.DataFrame) -> dict[str, int]:
    winners = rmse.idxmin(axis=1)
    return {m: int((winners == m).sum()) for m in rmse.columns}


def table6_trend(table: pd.DataFrame) -> str:
    """Against the true total noise where the table has it (the truth column), else the nominal level."""
    methods = ["HBNE", "DWTNE", "Ours"]
    suffix = "_rmse_true" if "Ours_rmse_true" in table.columns and table["Ours_rmse_true"].notna().any() else "_rmse"
    against = "the true total noise" if suffix == "_rmse_true" else "the nominal level"
    ours = _lowest_count(table[[f"{m}{suffix}" for m in methods]].set_axis(methods, axis=1))
    theirs = pd.DataFrame({m: [paper.TABLE6[lv][m][1] for lv in sorted(paper.TABLE6)] for m in methods})
    theirs = _lowest_count(theirs)
    n = len(table)
    worst = float(table[f"Ours{suffix}"].max())
    over = int((table[f"Ours{suffix}"] >= RMSE_LIMIT).sum())
    bound = (f"stays below the paper's bound {RMSE_LIMIT:g} at every level" if not over else
             f"reaches the paper's bound {RMSE_LIMIT:g} or more at {over} of {n} levels")
    return (f"Noise estimation (RMSE against {against}): our estimator has the lowest RMSE at {ours['Ours']} of {n} "
            f"levels (HBNE {ours['HBNE']}, DWTNE {ours['DWTNE']}); the paper's at {theirs['Ours']} of "
            f"{len(paper.TABLE6)}. Its RMSE {bound} (largest {worst:.2f}).")


def table7_trend(long: pd.DataFrame, main: str = "EMANet") -> str:
    col, name = best_metric(long)
    wide = long.pivot_table(index="noise_level", columns="method", values=col)
    compared = [m for m in ["BM3D", "DnCNN", "RED-CNN", "WGAN", main] if m in wide]
    best = int((wide[compared].idxmax(axis=1) == main).sum())
    learned = [m for m in ["DnCNN", "RED-CNN", "WGAN", main] if m in wide]
    above = {m: int((wide[m] > wide["Noisy"]).sum()) for m in learned}
    paper_wide = pd.DataFrame({m: {lv: v[0] for lv, v in paper.TABLE7[m].items()} for m in compared})
    paper_best = int((paper_wide.idxmax(axis=1) == main).sum())
    return (f"Denoising ({name}): {main} is best of the paper's five methods at {best} of {len(wide)} levels (the "
            f"paper: {paper_best} of {len(paper_wide)}); levels where each learned model beats the noisy input: "
            + ", ".join(f"{m} {k}" for m, k in above.items()) + ".")


def table8_trend(table: pd.DataFrame) -> str:
    iou = table.set_index("method")["iou"]
    deep = [m for m in ["DnCNN", "RED-CNN", "WGAN", "EMANet"] if m in iou]
    above = [m for m in deep if iou[m] > iou["Original"]]
    paper_iou = {m: v[1] for m, v in paper.TABLE8.items()}
    paper_above = [m for m in deep if m in paper_iou and paper_iou[m] > paper_iou["Original"]]
    return (f"Segmentation: IoU on the originals {iou['Original']:.3f}; deep models above it: "
            f"{', '.join(above) or 'none'} (the paper's own Table 8: {', '.join(paper_above) or 'none'} of "
            f"{', '.join(deep)}).")


def blind_trend(table: pd.DataFrame) -> str:
    """Read at the shared (equal-terms) level; the oracle rows, where present, say what a perfect level adds."""
    equal = table[table["level"] != "oracle"] if "level" in table.columns else table
    base = float(equal.loc[equal["method"] == "Original", "psnr_truth"].iloc[0])
    gains = {r["method"]: float(r["psnr_truth"]) - base for _, r in equal.iterrows() if r["method"] != "Original"}
    closer = [m for m, g in gains.items() if g > 0]
    best = max(gains, key=gains.get)
    text = (f"Blind denoising of the originals (every level-taking method given the same level estimate): "
            f"{len(closer)} of {len(gains)} methods bring them closer to the truth (best {best}, {gains[best]:+.2f} dB "
            f"over the original's {base:.2f} dB).")
    if "level" in table.columns:
        oracle = table[table["level"] == "oracle"]
        shares = []
        for _, r in oracle.iterrows():
            name = r["method"].removesuffix(" (oracle level)")
            shares.append(f"{name} {float(r['psnr_truth']) - base - gains.get(name, np.nan):+.2f} dB")
        if shares:
            text += " Given the true total noise instead: " + ", ".join(shares) + "."
    return text
