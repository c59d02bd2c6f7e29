# Embedded raw data: the phantom cohort as NM DICOM (package spectbone.phantom), and its realism check
# against the real NEMA NM1 scan.


rule synthesize:
    output:
        cohort=directory(f"{RES}/cohort"),
        truth=directory(f"{RES}/truth"),
    params:
        n=config["data"]["n_patients"],
        fraction=config["data"]["problem_fraction"],
        cmin=config["data"]["counts_min"],
        cmax=config["data"]["counts_max"],
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/synthesize/synthesize.log",
    benchmark:
        f"{OUT}/benchmarks/synthesize/synthesize.tsv"
    shell:
        "spectbone synthesize --out {output.cohort} --truth {output.truth} --n-patients {params.n}"
        " --problem-fraction {params.fraction} --counts-min {params.cmin} --counts-max {params.cmax}"
        " --seed {params.seed} --log {log}"


rule realism:
    input:
        cohort=f"{RES}/cohort",
        truth=f"{RES}/truth",
    output:
        table=report(f"{OUT}/tables/phantom_vs_nm1.csv", caption="../report/phantom_vs_nm1.rst", category="Data"),
        figure=report(f"{OUT}/figures/phantom_vs_nm1.png", caption="../report/phantom_vs_nm1.rst", category="Data"),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/realism/realism.log",
    shell:
        "spectbone realism --cohort {input.cohort} --truth {input.truth} --nm1 auto"
        " --figure {output.figure} --table {output.table} --log {log}"
