"""Writing tables (CSV + Markdown) and figures (PNG + PDF) the same way everywhere, and reading back
their boolean cells."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

SYNTHETIC_NOTE = (
    "Data: embedded synthetic phantom cohort (simulated NM DICOM), not the paper's private patients."
)


def _stem(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in {".csv", ".md", ".png", ".pdf"} else p


def _with(stem: Path, suffix: str) -> Path:
    """`stem` + `suffix`, keeping any dot in the stem (`emanet_lam0.2` -> `emanet_lam0.2.png`, not `emanet_lam0.png`)."""
    return stem.with_name(stem.name + suffix)


def write_table(df: pd.DataFrame, path: str | os.PathLike, title: str, notes: list[str] | None = None,
                floatfmt: str = ".4g") -> None:
    """Write `<stem>.csv` (for machines) and `<stem>.md` (title, table, notes) for people."""
    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(_with(stem, ".csv"), index=False)
    lines = [f"# {title}", "", df.to_markdown(index=False, floatfmt=floatfmt), ""]
    for note in notes or []:
        lines.append(f"- {note}")
    _with(stem, ".md").write_text("\n".join(lines) + "\n")


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> None:
    """Save a matplotlib figure as `<stem>.png` and `<stem>.pdf`, then close it."""
    import matplotlib.pyplot as plt

    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(_with(stem, ".png"), dpi=dpi, bbox_inches="tight")
    fig.savefig(_with(stem, ".pdf"), bbox_inches="tight")
    plt.close(fig)


def data_source_note(synthetic: bool) -> str:
    return SYNTHETIC_NOTE if synthetic else "Data: user-supplied DICOM studies."


def truthy(value) -> bool:
    """A boolean CSV cell as pandas reads it back ('True', 'False', '', 1, 0, True) as a bool."""
    return str(value).strip().lower() in ("true", "1", "yes")
