# Raw DICOM -> usable 2-D images (package spectbone.prep): convert, crop/screen/resize, patient split.

# Pseudonyms: the phantom uses the public demo key (--phantom); real data the secret in
# $SPECTBONE_ID_KEY (or in the file data.id_key_file names), read by the package, never put on a
# command line.


rule convert:
    input:
        COHORT,
    output:
        manifest=f"{OUT}/convert/manifest.csv",
        rejects=f"{OUT}/convert/rejects.csv",
    params:
        out=output_dir,
        key="--phantom" if SYNTHETIC else optional_arg("--id-key-file", config["data"]["id_key_file"]),
        limits=decode_limit_args(),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/convert/convert.log",
    benchmark:
        f"{OUT}/benchmarks/convert/convert.tsv"
    shell:
        "spectbone convert {input:q} --out {params.out} {params.key} {params.limits} --log {log}"


rule preprocess:
    input:
        manifest=f"{OUT}/convert/manifest.csv",
        truth=[TRUTH] if TRUTH else [],
    output:
        table=f"{OUT}/preprocess/preprocess.csv",
        evals=PREPROCESS_EVALS,
        **{k: directory(v) for k, v in PREPROCESSED.items()},
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
        preprocess=f"{OUT}/preprocess/preprocess.csv",
        manifest=f"{OUT}/convert/manifest.csv",
    output:
        f"{OUT}/split.csv",
    params:
        n_test=optional_arg("--n-test-images", config["data"]["n_test_images"]),
        test_fraction=config["data"]["test_fraction"],
        val_fraction=config["data"]["val_fraction"],
        lossy="--allow-lossy-training" if config["data"]["allow_lossy_training"] else "",
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/split/split.log",
    shell:
        "spectbone split --preprocess {input.preprocess} --manifest {input.manifest} --out {output} {params.n_test} --test-fraction {params.test_fraction}"
        " --val-fraction {params.val_fraction} {params.lossy} --seed {params.seed} --log {log}"
