"""Copy a count-domain EMANet into the package as the default of `spectbone denoise`, with its record.

    python scripts/ship_count_model.py results/default/models/emanet_counts.pt src/spectbone/models/data

Writes ``emanet_counts.pt`` (the model file as trained: weights, kwargs and meta, loadable with the
weights-only unpickler) and ``EMANET_COUNTS.md`` (what it is, how it was trained, its sha256). The
file must come from a `train_counts` job (family count-domain); anything else is refused.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from spectbone.models import load_model
from spectbone.util.hashing import sha256_file


def main(source: str, folder: str) -> int:
    src, dst = Path(source), Path(folder) / "emanet_counts.pt"
    _, meta = load_model(src)
    if meta.get("family") != "count-domain" or meta.get("task") != "train-counts":
        raise SystemExit(f"{src}: not a count-domain EMANet from `spectbone train-counts`")
    shutil.copyfile(src, dst)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    keys = ["data_source", "epochs", "samples_per_epoch", "batch_size", "lr", "patch", "fractions", "base_sigma",
            "loss", "level_map", "input", "output", "frame_shape", "best_epoch", "best_val", "fingerprint"]
    lines = ["# emanet_counts.pt: the default model of `spectbone denoise`", "",
             "The count-domain EMANet (`spectbone.counts`): trained by the default run's `train_counts` job "
             "(`make run`, config/config.yaml) on the embedded phantom's whole-body frames at native sampling, "
             "binomially thinned to count fractions drawn over a range. It has never seen a patient. "
             "Regenerate it with `make run && make ship-count-model`.", "",
             f"- sha256: `{sha256_file(dst)}`", f"- shipped from commit: `{commit}`"]
    lines += [f"- {k}: `{meta[k]}`" for k in keys if k in meta]
    (dst.parent / "EMANET_COUNTS.md").write_text("\n".join(lines) + "\n")
    print(f"shipped {dst} ({dst.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
