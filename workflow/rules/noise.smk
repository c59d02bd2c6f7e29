# Noise augmentation (package spectbone.noise): the training manifest (noise drawn on the fly) and the materialised test set.


rule noise_manifest:
    input:
        **PREPROCESSED,
        split=f"{OUT}/split.csv",
        preprocess=f"{OUT}/preprocess/preprocess.csv",
    output:
        f"{OUT}/noise/train_manifest.csv",
    params:
        pre=preprocess_dir,
        levels=config["noise"]["train_levels"],
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/noise_manifest/noise_manifest.log",
    shell:
        "spectbone train-manifest --preprocess-dir {params.pre} --split {input.split} --levels {params.levels}"
        " --out {output} --seed {params.seed} --log {log}"


rule testset:
    input:
        **PREPROCESSED,
        split=f"{OUT}/split.csv",
        preprocess=f"{OUT}/preprocess/preprocess.csv",
    output:
        f"{OUT}/noise/testset.npz",
    params:
        pre=preprocess_dir,
        truth="--truth" if SYNTHETIC else "--no-truth",
        levels=config["noise"]["test_levels"],
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/testset/testset.log",
    shell:
        "spectbone make-testset --preprocess-dir {params.pre} --split {input.split} --levels {params.levels}"
        " {params.truth} --out {output} --seed {params.seed} --log {log}"
