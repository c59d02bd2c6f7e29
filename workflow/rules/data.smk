# Pretraining sources (package spectbone.data): CT pairs (real Mayo or simulated low-dose CT) and
# natural images, for the transfer-learning arms of Table 3.


rule pretrain_data:
    input:
        unpack(pretrain_real_input),
    output:
        f"{RES}/pretrain/{{source}}.npz",
    params:
        n=config["pretrain"]["n_pairs"],
        size=config["data"]["image_size"],
        seed=config["seed"],
        real=pretrain_real_arg,
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/pretrain_data/{{source}}.log",
    benchmark:
        f"{OUT}/benchmarks/pretrain_data/{{source}}.tsv"
    shell:
        "spectbone pretrain-data --source {wildcards.source} {params.real} --n-pairs {params.n} --size {params.size}"
        " --seed {params.seed} --out {output} --log {log}"
