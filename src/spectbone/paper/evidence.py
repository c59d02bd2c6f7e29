"""Where a claim's numbers come from: per-image scores (bootstrapped) or a table's means (point values).

Both sources answer the same questions in the paper's terms (a Table 3-5 variant, a Table 7 method at
a level, a Table 6 estimator, a Table 8 segmenter input), so one claim definition serves this run's
per-image scores, this run's tables, and the paper's own tables. A source is bound to one reference:
'truth' (the phantom's noiseless image) or 'paper' (the acquired image, the paper's protocol).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spectbone.evaluate.rows import select_rows
from spectbone.noise.lattice import AS_DRAWN
from spectbone.paper.verdicts import DEFAULT_BOOTSTRAP, Estimate, Resampler, point
from spectbone.util.methods import display_name

REFERENCES = {"truth": "_truth", "paper": ""}
POINT_ONLY = "point estimate (no per-image data)"


class Unavailable(Exception):
    """The numbers a claim needs are not among the inputs (the message says which)."""


class NoTruth(Unavailable):
    """The claim's numbers exist only against the acquired images (nothing to score against truth)."""


def _table2_ssim(t2: pd.DataFrame | None, suffix: str, n_boot: int, seed: int) -> tuple[dict, str]:
    """Table 2's SSIM per level as Estimates, and the interval label when they are point values.

    Per-draw rows (a `draw` column) are bootstrapped over draws, paired by draw id; a mean with `ssim_sd`
    over draws (`n_draws` of them, else the spread of one draw) gets normal resamples; else point values."""
    if t2 is None:
        raise Unavailable("table 2 missing")
    col = "ssim" + suffix
    if col not in t2.columns:
        raise (NoTruth if suffix else Unavailable)(f"table 2 has no {col} column")
    if "draw" in t2.columns:
        res = Resampler(t2["draw"], n_boot, seed)
        return {int(lv): res.mean(g.set_index("draw")[col]) for lv, g in t2.groupby("noise_level")}, ""
    if f"{col}_sd" in t2.columns:
        out = {}
        for _, row in t2.iterrows():
            lv = int(row["noise_level"])
            se = float(row[f"{col}_sd"]) / np.sqrt(float(row["n_draws"]) if "n_draws" in t2.columns else 1.0)
            z = np.random.default_rng([int(seed), lv]).standard_normal(int(n_boot))
            out[lv] = Estimate(float(row[col]), float(row[col]) + se * z)
        return out, ""
    return {int(r["noise_level"]): point(r[col]) for _, r in t2.iterrows()}, POINT_ONLY


class PerImage:
    """Per-image scores of this run: every quantity is bootstrapped over the test images."""

    def __init__(self, evals: dict[str, pd.DataFrame], reference: str, settings: dict,
                 noise: pd.DataFrame | None = None, segmentation: pd.DataFrame | None = None,
                 table2: pd.DataFrame | None = None):
        self.evals, self.noise, self.seg, self.t2 = evals, noise, segmentation, table2
        self.suffix, self.s = REFERENCES[reference], settings
        self.n_boot, self.seed = int(settings.get("bootstrap", DEFAULT_BOOTSTRAP)), int(settings.get("seed", 0))
        self.point_label = ""
        self._resamplers: dict[tuple, Resampler] = {}

    def resampler(self, ids) -> Resampler:
        """One resampler per set of units, so every quantity over the same images is paired."""
        key = tuple(sorted({str(i) for i in ids}))
        if key not in self._resamplers:
            self._resamplers[key] = Resampler(key, self.n_boot, self.seed)
        return self._resamplers[key]

    def n_images(self) -> int:
        ids = {str(i) for df in self.evals.values() for i in df.loc[df["noise_level"] > 0, "image_id"]}
        return len(ids)

    def _per_image(self, method: str, metric: str, levels) -> pd.Series:
        """Per-image means over `levels` (None: every noise level; [0]: the blind rows)."""
        if method not in self.evals:
            raise Unavailable(f"no per-image scores of {method}")
        df = select_rows(self.evals[method], levels)  # blind rows: the shared (equal-terms) level
        col = metric + self.suffix
        if col not in df.columns or df.empty or df[col].isna().all():
            raise Unavailable(f"{method}: no {col} scores" + (f" at levels {list(levels)}" if levels else ""))
        return df.groupby("image_id")[col].mean()  # levels averaged per image first

    def denoising(self, method: str, metric: str, level: int | None = None) -> Estimate:
        per_image = self._per_image(method, metric, None if level is None else [level])
        return self.resampler(per_image.index).mean(per_image)

    def blind(self, method: str, metric: str) -> Estimate:
        """Blind denoising of the acquired originals (noise_level 0 rows), against the truth only."""
        if not self.suffix:
            raise Unavailable("blind denoising has no reference under the paper's protocol (the original is the input)")
        per_image = self._per_image(method, metric, [0])
        return self.resampler(per_image.index).mean(per_image)

    def variant(self, table: str, method: str, metric: str) -> Estimate:
        """A Table 3-5 row: Table 3 at the table level, Tables 4-5 averaged over the test levels."""
        return self.denoising(method, metric, int(self.s["table_level"]) if table == "3" else None)

    def levels(self) -> list[int]:
        if self.s.get("test_levels"):
            return [int(v) for v in self.s["test_levels"]]
        df = self.evals.get(self.s.get("main", ""), next(iter(self.evals.values())))
        return sorted(int(v) for v in df["noise_level"].unique() if v > 0)

    def _noise(self) -> pd.DataFrame:
        if self.noise is None:
            raise Unavailable("no per-image noise estimates")
        return self.noise

    def noise_levels(self) -> list[int]:
        return sorted(int(v) for v in self._noise()["noise_level"].unique())

    def noise_rmse(self, method: str, level: int) -> Estimate:
        """RMSE of an estimator at a level: against the true total noise (truth), the nominal level (paper)."""
        df = self._noise()
        df = df[(df["method"] == method) & (df["noise_level"] == level)]
        if "variant" in df.columns:
            df = df[df["variant"] == AS_DRAWN]
        if df.empty:
            raise Unavailable(f"no {method} estimates at level {level}")
        if self.suffix:
            if "true_noise" not in df.columns or df["true_noise"].isna().any():
                raise NoTruth("no true total noise (true_noise) to judge the estimates against")
            target = df["true_noise"]
        else:
            target = level
        sq = ((df["estimate"] - target) ** 2).groupby(df["image_id"]).mean()
        return self.resampler(sq.index).mean(sq).apply(np.sqrt)

    def segmentation(self, method: str, metric: str) -> Estimate:
        """Pooled pixel precision / IoU / recall, the pooled counts resampled by image."""
        if self.seg is None:
            raise Unavailable("no per-image segmentation counts (Table 8 needs lesion masks)")
        df = self.seg[self.seg["method"] == method].set_index("image_id")
        if df.empty:
            raise Unavailable(f"no segmentation counts of {method}")
        res = self.resampler(df.index)
        tp, fp, fn = (res.total(df[c]) for c in ("tp", "fp", "fn"))
        return {"precision": tp / (tp + fp), "iou": tp / (tp + fp + fn), "recall": tp / (tp + fn)}[metric]

    def table2_ssim(self) -> tuple[dict, str]:
        return _table2_ssim(self.t2, self.suffix, self.n_boot, self.seed)


class TableMeans:
    """Means as the tables print them (this run's table CSVs, or the paper's): point values only."""

    def __init__(self, tables: dict[str, pd.DataFrame], reference: str, settings: dict, point_label: str = POINT_ONLY):
        self.t, self.suffix, self.s, self.point_label = tables, REFERENCES[reference], settings, point_label

    def blind(self, method: str, metric: str) -> Estimate:
        raise Unavailable("the paper reports no blind-denoising scores (its Figs 12-13 only show images)")

    def _table(self, n: str) -> pd.DataFrame:
        if n not in self.t:
            raise Unavailable(f"table {n} missing")
        return self.t[n]

    def _one(self, rows: pd.DataFrame, col: str, what: str) -> Estimate:
        if col not in rows.columns:
            raise Unavailable(f"{what}: no {col} column")
        if len(rows) != 1:
            raise Unavailable(f"{what}: {len(rows)} rows")
        return point(rows[col].iloc[0])

    def n_images(self) -> int:
        return 0

    def variant(self, table: str, method: str, metric: str) -> Estimate:
        t = self._table(table)
        return self._one(t[t["model"] == method], metric + self.suffix, f"table {table} {method}")

    def denoising(self, method: str, metric: str, level: int | None = None) -> Estimate:
        t = self._table("7")
        rows = t[t["method"] == display_name(method)]
        col = metric + self.suffix
        if level is not None:
            return self._one(rows[rows["noise_level"] == level], col, f"table 7 {method} at {level}")
        if col not in rows.columns or rows.empty:
            raise Unavailable(f"table 7 has no {col} of {method}")
        return point(rows[col].mean())

    def levels(self) -> list[int]:
        return sorted(int(v) for v in self._table("7")["noise_level"].unique())

    def noise_levels(self) -> list[int]:
        return sorted(int(v) for v in self._table("6")["noise_level"].unique())

    def noise_rmse(self, method: str, level: int) -> Estimate:
        """Table 6's RMSE column of the reference: *_rmse_true (truth) or *_rmse (nominal level)."""
        t = self._table("6")
        col = f"{method}_rmse" + ("_true" if self.suffix else "")
        if self.suffix and col not in t.columns:
            raise NoTruth(f"table 6 has no {col} column")
        return self._one(t[t["noise_level"] == level], col, f"table 6 at {level}")

    def segmentation(self, method: str, metric: str) -> Estimate:
        t = self._table("8")
        return self._one(t[t["method"] == method], metric, f"table 8 {method}")

    def table2_ssim(self) -> tuple[dict, str]:
        return _table2_ssim(self.t.get("2"), self.suffix, int(self.s.get("bootstrap", DEFAULT_BOOTSTRAP)),
                            int(self.s.get("seed", 0)))
