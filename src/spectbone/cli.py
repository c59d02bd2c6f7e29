"""The `spectbone` command line: the one seam between the Snakefile and the package.

Each verb lives in its own module, which defines ``add_arguments(parser)`` and ``run(args)``.
Modules are imported only for the verb that runs, so `spectbone convert` never pays for torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# verb -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synthesize": ("spectbone.phantom.synthesize", "write the phantom cohort as NM DICOM studies (+ truth)"),
    "realism": ("spectbone.phantom.realism", "phantom vs NEMA NM1: figure and count statistics"),
    "convert": ("spectbone.prep.convert", "DICOM folder -> per-view float32 count images + manifest"),
    "preprocess": ("spectbone.prep.preprocess", "shoulder-to-pelvis crop, resize, grey mapping, screening"),
    "split": ("spectbone.prep.split", "patient-level seeded train/test split"),
    "make-testset": ("spectbone.noise.augment", "materialise the seeded noisy test set (levels 5..40)"),
    "train-manifest": ("spectbone.noise.augment", "write the seeded training-noise manifest (levels 1..50)"),
    "pretrain-data": ("spectbone.data.pretrain", "build CT (Mayo or simulated) / natural-image pairs"),
    "train": ("spectbone.train.command", "train one model (estimator, EMANet variant, baseline, segmenter)"),
    "level-maps": ("spectbone.train.level_maps", "the frozen estimator's level maps of every EMANet fine-tune, once"),
    "curves": ("spectbone.train.curves", "learning curves of a table group's training runs (report figure)"),
    "infer": ("spectbone.infer.testset", "run a trained model or classical method over the test set"),
    "evaluate": ("spectbone.evaluate.score", "PSNR/SSIM/RMSE and noise-estimate metrics"),
    "table": ("spectbone.paper.tables", "write one paper table (CSV + Markdown) beside the paper's values"),
    "figure": ("spectbone.paper.figures", "draw one paper figure (PNG + PDF)"),
    "claims": ("spectbone.paper.claims", "check the paper's claims against our tables"),
    "paper-notes": ("spectbone.paper.inconsistencies", "where the paper's own numbers disagree with each other"),
    "provenance": ("spectbone.paper.provenance", "provenance.json: data, pretraining, VGG weights, versions, commit"),
    "params": ("spectbone.paper.params", "parameter count per network"),
    "bench": ("spectbone.bench.command", "benchmarks: training step (default vs fp32), matmul peak, loader, BM3D"),
    "denoise": ("spectbone.infer.denoise", "denoise new DICOM studies with a trained EMANet"),
    "count-views": ("spectbone.counts.views", "the phantom's native-sampling frames with truth, split by patient"),
    "train-counts": ("spectbone.counts.training", "train the count-domain EMANet on thinned phantom counts"),
    "finetune-counts": ("spectbone.counts.finetune", "adapt the count-domain EMANet to a site's scans (Noise2Noise)"),
    "count-split": ("spectbone.counts.evaluate", "score methods on real counts by binomial count splitting"),
    "real-counts": ("spectbone.counts.report", "the dose-reduction table and NM1 figure of the count family"),
    "bundle": ("spectbone.models.bundle", "one weights file for both stages: EMANet with its estimator inside"),
}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spectbone", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == verb:
            importlib.import_module(module).add_arguments(p, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(verb if verb in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.verb][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
