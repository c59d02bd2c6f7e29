"""`spectbone params`: parameter count of every network at the paper's sizes, and of the ablations."""

from __future__ import annotations

import logging

from spectbone.util.runtime import add_common_arguments, setup_logging

log = logging.getLogger(__name__)


def parameter_rows(emanet_base: int = 32, estimator_base: int = 32, dncnn_channels: int = 64, dncnn_depth: int = 17,
                   redcnn_channels: int = 96, wgan_channels: int = 32, critic_channels: int = 64,
                   segmenter_base: int = 16) -> list[dict]:
    """One row per network: network, kind, kwargs, parameters, notes."""
    from spectbone.models import build_model, count_parameters
    from spectbone.models.emanet import EMANET_ABLATION_LABELS, EMANET_ABLATIONS

    specs = [("Noise estimator (stage 1)", "estimator", {"base": estimator_base},
              "3-level U-Net of RDC blocks, GAP + FC to 50 level classes")]
    for name, switches in EMANET_ABLATIONS.items():
        label = "EMANet backbone (stage 2)" if name == "full" else f"EMANet ablation '{name}'"
        specs.append((label, "emanet", {"base": emanet_base, **switches},
                      f"Table 4 row: {EMANET_ABLATION_LABELS[name]}"))
    specs += [
        ("DnCNN", "dncnn", {"depth": dncnn_depth, "channels": dncnn_channels}, "Zhang et al. 2017, residual, BN"),
        ("RED-CNN", "redcnn", {"channels": redcnn_channels}, "Chen et al. 2017, 5 conv + 5 deconv, 5x5"),
        ("WGAN-VGG generator", "wgan_generator", {"channels": wgan_channels}, "Yang et al. 2018, 8 conv layers"),
        ("WGAN-VGG critic", "wgan_critic", {"channels": critic_channels}, "6 conv + 2 FC, gradient penalty"),
        ("ResUNet-SE segmenter", "segmenter", {"base": segmenter_base}, "Table 8 lesion segmentation"),
    ]
    rows = []
    for network, kind, kwargs, note in specs:
        n = count_parameters(build_model(kind, **kwargs))
        kw = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        rows.append({"network": network, "parameters": n, "notes": f"{note}; {kind}({kw})"})
        log.info("%s: %d parameters", network, n)
    return rows


def add_arguments(parser, verb=None):
    parser.add_argument("--out", required=True, help="table stem (writes .csv and .md)")
    parser.add_argument("--emanet-base", type=int, default=32)
    parser.add_argument("--estimator-base", type=int, default=32)
    parser.add_argument("--dncnn-channels", type=int, default=64)
    parser.add_argument("--dncnn-depth", type=int, default=17)
    parser.add_argument("--redcnn-channels", type=int, default=96)
    parser.add_argument("--wgan-channels", type=int, default=32)
    parser.add_argument("--critic-channels", type=int, default=64)
    parser.add_argument("--segmenter-base", type=int, default=16)
    add_common_arguments(parser)


def run(args) -> int:
    import pandas as pd

    from spectbone.util.outputs import write_table

    setup_logging(args.log)
    rows = parameter_rows(args.emanet_base, args.estimator_base, args.dncnn_channels, args.dncnn_depth,
                          args.redcnn_channels, args.wgan_channels, args.critic_channels, args.segmenter_base)
    write_table(pd.DataFrame(rows), args.out, "Network sizes (trainable parameters)",
                notes=["The paper reports no parameter counts; widths not given in the paper are design "
                       "choices (docs/design.md, Networks).",
                       "EMANet ablation rows follow the paper's Table 4 (module switches of the backbone)."])
    return 0
