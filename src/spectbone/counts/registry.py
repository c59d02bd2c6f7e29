"""Which methods the count-domain stages compare: declared once, read by the package and the workflow.

Pure Python with no imports beyond the standard library, so the Snakefile can read it to plan its
jobs (workflow/rules/counts.smk) without the package's dependencies; `methods` attaches how each is
run. Fields: key, label (tables and figures), the model file it needs (role: ``counts`` the
count-domain EMANet, ``finetuned`` the site-adapted one, ``paper`` the paper-protocol EMANet with its
stage-1 estimator, or None), ``slow`` (worth its own job), ``deployable`` (`spectbone denoise --method`
can run it on a study: it needs nothing but the counts and its model), ``site_only`` (scored only on a
site's own scans: the fine-tuned model has no phantom score).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodSpec:
    key: str
    label: str
    model: str | None = None
    slow: bool = False
    deployable: bool = False
    site_only: bool = False


SPECS: tuple[MethodSpec, ...] = (
    MethodSpec("raw", "Raw counts"),
    MethodSpec("gaussian", "Gaussian (width by count-split validation)"),
    MethodSpec("anscombe_bm3d", "Anscombe-BM3D (exact unbiased inverse)", slow=True, deployable=True),
    MethodSpec("emanet_paper", "EMANet, paper protocol (grey levels, resized crops)", model="paper",
               deployable=True),
    MethodSpec("emanet_counts", "EMANet, count domain (deployable)", model="counts", deployable=True),
    MethodSpec("emanet_finetuned", "EMANet, count domain + site fine-tuning", model="finetuned", deployable=True,
               site_only=True),
)
BY_KEY = {s.key: s for s in SPECS}
