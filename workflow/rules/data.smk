# Raw data -> usable 2-D images: synthesise (default), convert DICOM, crop/screen, split.


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


rule convert:
    input:
        COHORT,
    output:
        manifest=f"{OUT}/convert/manifest.csv",
        rejects=f"{OUT}/convert/rejects.csv",
    params:
        out=output_dir,
        salt=config["data"]["salt"],
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/convert/convert.log",
    benchmark:
        f"{OUT}/benchmarks/convert/convert.tsv"
    shell:
        "spectbone convert {input} --out {params.out} --salt {params.salt} --log {log}"


rule preprocess:
    input:
        manifest=f"{OUT}/convert/manifest.csv",
        truth=[TRUTH] if TRUTH else [],
    output:
        table=f"{OUT}/preprocess/preprocess.csv",
    params:
        out=output_dir,
        size=config["data"]["image_size"],
        truth=truth_arg(),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/preprocess/preprocess.log",
    benchmark:
        f"{OUT}/benchmarks/preprocess/preprocess.tsv"
    shell:
        "spectbone preprocess --manifest {input.manifest} --out {params.out} --size {params.size}"
        " {params.truth} --log {log}"


rule split:
    input:
        f"{OUT}/preprocess/preprocess.csv",
    output:
        f"{OUT}/split.csv",
    params:
        n_test=optional_arg("--n-test-images", config["data"]["n_test_images"]),
        test_fraction=config["data"]["test_fraction"],
        val_fraction=config["data"]["val_fraction"],
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/split/split.log",
    shell:
        "spectbone split --preprocess {input} --out {output} {params.n_test} --test-fraction {params.test_fraction}"
        " --val-fraction {params.val_fraction} --seed {params.seed} --log {log}"
