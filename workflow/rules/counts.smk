# The deployable count-domain family (package spectbone.counts): the phantom's native frames, the
# count-domain EMANet, its self-supervised fine-tuning on the site's scans (NM1 in the default run, the
# studies of data.dicom_dir when set), count-split scores of every registered method, the dose-reduction
# table and figure. The paper's tables do not read any of it. Helpers (the method registry, the jobs it plans)
# live in common.smk.


rule count_views:
    input:
        cohort=PHANTOM_COHORT,
        truth=PHANTOM_TRUTH,
    output:
        f"{OUT}/counts/phantom_views.npz",
    params:
        val=CT["val_patients"],
        test=CT["test_patients"],
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/count_views/count_views.log",
    shell:
        "spectbone count-views --cohort {input.cohort} --truth {input.truth} --out {output}"
        " --val-patients {params.val} --test-patients {params.test} --seed {params.seed} --log {log}"


rule train_counts:
    input:
        views=f"{OUT}/counts/phantom_views.npz",
    output:
        weights=COUNT_MODEL,
        history=f"{OUT}/training/emanet_counts.csv",
    params:
        ckpt=f"{OUT}/checkpoints/emanet_counts",
        curve=history_stem,
        width=CT["width"],
        patch=CT["patch"],
        fractions=CT["train_fractions"],
        epochs=CT["epochs"],
        samples=CT["samples_per_epoch"],
        batch=TR["batch_size"],
        lr=CT["lr"],
        seed=config["seed"],
    threads: TR["threads"]
    resources:
        gpu=1,
        mem_mb=attempt_scaled(TR["mem_mb"]),
        runtime=attempt_scaled(TR["runtime"]),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/train_counts/emanet_counts.log",
    benchmark:
        f"{OUT}/benchmarks/train_counts/emanet_counts.tsv"
    shell:
        "spectbone train-counts --views {input.views} --width {params.width} --patch {params.patch}"
        " --fractions {params.fractions} --epochs {params.epochs} --samples-per-epoch {params.samples}"
        " --batch-size {params.batch} --lr {params.lr} --seed {params.seed} --out {output.weights}"
        " --ckpt-dir {params.ckpt} --history {output.history} --curve {params.curve} --threads {threads} --log {log}"


rule finetune_counts:
    input:
        unpack(lambda wildcards: {"manifest": f"{OUT}/convert/manifest.csv"} if wildcards.site == "site" else {}),
        model=COUNT_MODEL,
    output:
        weights=f"{OUT}/models/emanet_finetuned_{{site}}.pt",
        history=f"{OUT}/training/emanet_finetuned_{{site}}.csv",
    wildcard_constraints:
        site="|".join(SITES),
    params:
        ckpt=f"{OUT}/checkpoints/emanet_finetuned_{{site}}",
        curve=history_stem,
        manifest=lambda wildcards, input: f"--manifest {input.manifest}" if "manifest" in input.keys() else "",
        patch=CT["finetune"]["patch"],
        fractions=CT["finetune"]["fractions"],
        epochs=CT["finetune"]["epochs"],
        samples=CT["finetune"]["samples_per_epoch"],
        lr=CT["finetune"]["lr"],
        batch=TR["batch_size"],
        seed=config["seed"],
    threads: TR["threads"]
    resources:
        gpu=1,
        mem_mb=attempt_scaled(TR["mem_mb"]),
        runtime=attempt_scaled(TR["runtime"]),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/finetune_counts/{{site}}.log",
    benchmark:
        f"{OUT}/benchmarks/finetune_counts/{{site}}.tsv"
    shell:
        "spectbone finetune-counts --model {input.model} --dataset {wildcards.site} {params.manifest}"
        " --holdout-seed {params.seed} --patch {params.patch} --fractions {params.fractions} --epochs {params.epochs}"
        " --samples-per-epoch {params.samples} --batch-size {params.batch} --lr {params.lr} --seed {params.seed}"
        " --out {output.weights} --ckpt-dir {params.ckpt} --history {output.history} --curve {params.curve}"
        " --threads {threads} --log {log}"


COUNT_SPLIT_SHELL = (
    "spectbone count-split --dataset {wildcards.dataset} --method {wildcards.cmethod} {params.inputs}"
    " --fractions {params.fractions} --seeds {params.seeds} --holdout-seed {params.holdout}"
    " --out {output.tiles} --frames {output.frames} --example {output.example} --threads {threads} --log {log}"
)
COUNT_SPLIT_PARAMS = {
    "inputs": count_split_args,
    "fractions": ",".join(f"{float(f):g}" for f in CT["fractions"]),
    "seeds": lambda wildcards: ",".join(str(s) for s in range(CT["phantom_seeds"] if wildcards.dataset == "phantom"
                                                               else CT["seeds"])),
    "holdout": config["seed"],
}
COUNT_SPLIT_OUTPUT = {
    "tiles": f"{OUT}/counts/eval/{{dataset}}/{{cmethod}}.csv",
    "frames": f"{OUT}/counts/eval/{{dataset}}/{{cmethod}}_frames.csv",
    "example": f"{OUT}/counts/eval/{{dataset}}/{{cmethod}}.npz",
}


# Count-split scores: classical methods (CPU, one job each: Anscombe-BM3D is the slow one) and the methods
# that run a network (a GPU job each), planned from the registry.
rule count_split:
    input:
        unpack(count_split_inputs),
    output:
        **COUNT_SPLIT_OUTPUT,
    wildcard_constraints:
        dataset="|".join(COUNT_DATASETS),
        cmethod="|".join(CLASSICAL_COUNT_METHODS),
    params:
        **COUNT_SPLIT_PARAMS,
    threads: 1
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/count_split/{{dataset}}_{{cmethod}}.log",
    benchmark:
        f"{OUT}/benchmarks/count_split/{{dataset}}_{{cmethod}}.tsv"
    shell:
        COUNT_SPLIT_SHELL


rule count_split_learned:
    input:
        unpack(count_split_inputs),
    output:
        **COUNT_SPLIT_OUTPUT,
    wildcard_constraints:
        dataset="|".join(COUNT_DATASETS),
        cmethod="|".join(LEARNED_COUNT_METHODS),
    params:
        **COUNT_SPLIT_PARAMS,
    threads: TR["threads"]
    resources:
        gpu=1,
        mem_mb=attempt_scaled(TR["mem_mb"]),
        runtime=attempt_scaled(TR["runtime"]),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/count_split/{{dataset}}_{{cmethod}}.log",
    benchmark:
        f"{OUT}/benchmarks/count_split/{{dataset}}_{{cmethod}}.tsv"
    shell:
        COUNT_SPLIT_SHELL


rule real_counts:
    input:
        unpack(count_report_inputs),
    output:
        table=report(f"{OUT}/tables/real_counts.csv", caption="../report/real_counts.rst", category="Real counts"),
        md=f"{OUT}/tables/real_counts.md",
        figure=report(f"{OUT}/figures/real_counts_nm1.png", caption="../report/real_counts.rst",
                      category="Real counts"),
    params:
        inputs=input_args,
        synthetic="--synthetic" if SYNTHETIC else "",
        bootstrap=EV["bootstrap"],
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/real_counts/real_counts.log",
    shell:
        "spectbone real-counts {params.inputs} --table {output.table} --figure {output.figure}"
        " --bootstrap {params.bootstrap} --seed {params.seed} {params.synthetic} --log {log}"
