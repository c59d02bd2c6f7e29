"""Layout of the per-image score CSVs (``eval/<method>.csv``) and how tables and claims select rows.

One row per (method, image, noise_level). ``noise_level`` > 0: a noisy test image at that added
level. ``noise_level`` 0: blind denoising of the acquired original itself, scored against the truth
only; its ``blind_level`` says which level the method was given: ``estimated`` (the same estimate of
the original's total noise for every method, see ``infer.levels``) or ``oracle`` (the true total
noise, RMS of original - truth; only for methods that take a level). ``level_given``: the level the
method was given (NaN for methods that take none).
"""

from __future__ import annotations

import pandas as pd

from spectbone.infer.levels import ESTIMATED, ORACLE  # noqa: F401  (ORACLE is re-exported to score and tables)


def select_rows(df: pd.DataFrame, levels=None, blind: str = ESTIMATED) -> pd.DataFrame:
    """Rows at `levels` (None: every noise level > 0; [0]: the blind rows given the `blind` level)."""
    if levels is None:
        return df[df["noise_level"] > 0]
    rows = df[df["noise_level"].isin(list(levels))]
    if "blind_level" in rows.columns:
        rows = rows[(rows["noise_level"] > 0) | (rows["blind_level"].fillna(ESTIMATED) == blind)]
    elif blind != ESTIMATED:
        return rows.iloc[0:0]
    return rows
