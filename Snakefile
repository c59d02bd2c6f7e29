# spectbone: reproduce EMANet (two-stage U-Net denoising of SPECT bone scans) from raw DICOM.
# snakemake --cores all --resources gpu=1                      (default config, embedded phantom)
# snakemake --configfile config/paper.yaml --profile profiles/slurm
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, schema="workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/phantom.smk"
include: "workflow/rules/prep.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/noise.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/counts.smk"


wildcard_constraints:
    method=r"[A-Za-z0-9_.]+",
    pretrain=r"none|ct|natural",
    arch="|".join(ARCHS),
    lam=r"[0-9.]+",
    chunk=r"[0-9]+|blind|oracle",
    source=r"ct|natural",
    baseline="|".join(LEARNED_BASELINES),


# Light bookkeeping runs on the submitting machine; on a cluster it would wait longer in the queue
# than it takes to run.
onstart:
    fit_to_slurm()


localrules:
    split,
    noise_manifest,
    params_table,
    training_summary,
    preprocessing_table,
    claims,
    all,


rule all:
    default_target: True
    input:
        get_final_outputs(),
