"""Where the paper disagrees with itself: found by arithmetic on its transcribed tables.

A reproduction can only be judged against a paper whose numbers are consistent; these notes tell
the reader which of the paper's numbers cannot all be right. Every sentence is computed from
``paper.values``, so a transcription fix changes the note with it (`spectbone paper-notes`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from spectbone.paper import values as paper
from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger("spectbone.paper.inconsistencies")
DEEP = ["DnCNN", "RED-CNN", "WGAN", "EMANet"]


def full_model_psnr() -> str:
    """The same model (full EMANet, CT pretraining, composite loss) scored three times."""
    t4, t5 = paper.TABLE4["full"][0], paper.TABLE5["Composite"][0]
    t7 = float(np.mean([v[0] for v in paper.TABLE7["EMANet"].values()]))
    spread = max(t4, t5, t7) - min(t4, t5, t7)
    return (f"The full model (CT pretraining, all modules, composite loss) is reported three times with different "
            f"mean PSNR: {t4:.2f} dB (Table 4), {t5:.2f} dB (Table 5) and {t7:.2f} dB (mean of Table 7's "
            f"{len(paper.TABLE7['EMANet'])} levels), a spread of {spread:.2f} dB.")


def transfer_vs_table7() -> str:
    t3 = paper.TABLE3["ct"][0]
    t7 = paper.TABLE7["EMANet"][20][0]
    return (f"Table 3 gives the CT-pretrained full model {t3:.2f} dB at sigma = 20; Table 7 gives the same model "
            f"{t7:.2f} dB at sigma = 20 ({abs(t3 - t7):.2f} dB apart).")


def bm3d_row() -> str:
    """BM3D given the true sigma should gain clearly over its input; the paper's row barely does."""
    levels = sorted(paper.TABLE7["BM3D"])
    gain = [paper.TABLE7["BM3D"][lv][0] - paper.TABLE7["Noisy"][lv][0] for lv in levels]
    ssim_worse = [lv for lv in levels if paper.TABLE7["BM3D"][lv][1] < paper.TABLE7["Noisy"][lv][1]]
    return (f"The paper's BM3D row looks mis-scaled: given the true noise level it gains only {min(gain):+.2f} to "
            f"{max(gain):+.2f} dB over the noisy input, and its SSIM is below the noisy input's at "
            f"{len(ssim_worse)} of {len(levels)} levels ({', '.join(map(str, ssim_worse))}); BM3D with a correct "
            f"sigma does not lower SSIM like that (compare our Table 7).")


def table6_rmse_is_a_spread() -> str:
    """An RMSE about the true level can never be below |mean estimate - level|; the paper's often is."""
    cells = [(lv, m) for lv, row in paper.TABLE6.items() for m, (est, rmse) in row.items() if rmse < abs(est - lv) - 1e-9]
    examples = ", ".join(f"{m} at {lv} (estimate {paper.TABLE6[lv][m][0]:.2f}, 'RMSE' {paper.TABLE6[lv][m][1]:.2f})"
                         for lv, m in cells[:3])
    n = sum(len(row) for row in paper.TABLE6.values())
    return (f"Table 6's 'RMSE' is below |mean estimate - level| in {len(cells)} of {n} cells, which no RMSE about "
            f"the true level can be (e.g. {examples}): it behaves like the spread (SD) of the estimates, so our "
            f"Table 6 reports the SD beside the RMSE.")


def segmentation_claim() -> str:
    iou = {m: v[1] for m, v in paper.TABLE8.items()}
    below = [m for m in DEEP if iou[m] < iou["Original"]]
    best = max(DEEP, key=iou.get)
    text = (f"The text says denoising improves lesion segmentation; the paper's own Table 8 has IoU {iou['Original']:.4f} "
            f"on the originals and {', '.join(f'{m} {iou[m]:.4f}' for m in DEEP)}")
    if below:
        return text + f": {', '.join(below)} {'is' if len(below) == 1 else 'are'} below the originals, so the table " \
                      f"contradicts the text for {'it' if len(below) == 1 else 'them'} (best: {best})."
    return text + f": every deep model is above the originals (best: {best})."


def noisy_misprint() -> str:
    return paper.TABLE7_MISPRINT


NOTES = [full_model_psnr, transfer_vs_table7, bm3d_row, table6_rmse_is_a_spread, segmentation_claim, noisy_misprint]


def paper_notes() -> list[str]:
    return [note() for note in NOTES]


def add_arguments(parser, verb):
    parser.add_argument("--out", required=True, help="Markdown file")
    add_common_arguments(parser)


def run(args):
    setup_logging(args.log)
    lines = ["# Where the paper's numbers disagree with each other", "",
             "Computed from the paper's tables as transcribed in spectbone/paper/values.py; each of these limits how "
             "closely any reproduction can match the paper.", ""]
    lines += [f"- {note}" for note in paper_notes()]
    Path(args.out).write_text("\n".join(lines) + "\n")
    log.info("%d notes on the paper's own numbers", len(NOTES))
    return 0
