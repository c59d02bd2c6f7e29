# Training (package spectbone.train): noise estimator, CT / natural-image pretraining, EMANet fine-tunes, learned baselines,
# segmentation net. Each is one `spectbone train` job asking for one GPU; checkpoints for resuming
# live in params folders (Snakemake deletes declared outputs before a rerun), final weights are outputs.


# Priorities: the estimator heads the longest chain of the DAG (estimator -> 10 EMANet fine-tunes -> their
# inference and tables), so a scheduler with free slots starts it first; off-path work (the count family)
# keeps the default 0.


rule train_estimator:
    priority: 20
    input:
        **PREPROCESSED,
        split=f"{OUT}/split.csv",
        manifest=f"{OUT}/noise/train_manifest.csv",
    output:
        weights=f"{OUT}/models/estimator.pt",
        history=f"{OUT}/training/estimator.csv",
    params:
        ckpt=f"{OUT}/checkpoints/estimator",
        curve=history_stem,
        epochs=TR["epochs"]["estimator"],
        width=TR["widths"]["estimator"],
        common=train_args(lr=TR["estimator_lr"]),
        bone=bone_args(),
    threads: TR["threads"]
    resources:
        gpu=1,
        mem_mb=attempt_scaled(TR["mem_mb"]),
        runtime=attempt_scaled(TR["runtime"]),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/train_estimator/estimator.log",
    benchmark:
        f"{OUT}/benchmarks/train_estimator/estimator.tsv"
    shell:
        "spectbone train estimator {params.bone} --width {params.width} --epochs {params.epochs} {params.common}"
        " --out {output.weights} --ckpt-dir {params.ckpt} --history {output.history} --curve {params.curve}"
        " --threads {threads} --log {log}"


rule train_pretrain:
    input:
        data=f"{RES}/pretrain/{{source}}.npz",
    output:
        weights=f"{OUT}/models/pretrain_{{source}}_{{arch}}.pt",
        history=f"{OUT}/training/pretrain_{{source}}_{{arch}}.csv",
    params:
        ckpt=f"{OUT}/checkpoints/pretrain_{{source}}_{{arch}}",
        curve=history_stem,
        epochs=TR["epochs"]["pretrain"],
        width=TR["widths"]["emanet"],
        common=train_args(),
    threads: TR["threads"]
    resources:
        gpu=1,
        mem_mb=attempt_scaled(TR["mem_mb"]),
        runtime=attempt_scaled(TR["runtime"]),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/train_pretrain/{{source}}_{{arch}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_pretrain/{{source}}_{{arch}}.tsv"
    shell:
        "spectbone train pretrain --pretrain-data {input.data} --model emanet --arch {wildcards.arch}"
        " --width {params.width} --epochs {params.epochs} {params.common}"
        " --out {output.weights} --ckpt-dir {params.ckpt} --history {output.history} --curve {params.curve}"
        " --threads {threads} --log {log}"


rule level_maps:
    # The frozen estimator's level maps of every EMANet fine-tune, computed once: all fine-tunes draw the same
    # noisy batches (seed, epochs, samples), so this forward pass was a third of each one's step, ten times over.
    priority: 15
    input:
        **PREPROCESSED,
        split=f"{OUT}/split.csv",
        estimator=f"{OUT}/models/estimator.pt",
    output:
        f"{OUT}/noise/estimator_level_maps.npz",
    params:
        epochs=TR["epochs"]["denoiser"],
        run=level_map_args(),
        bone=bone_args(),
    threads: TR["threads"]
    resources:
        gpu=1,
        mem_mb=attempt_scaled(TR["mem_mb"]),
        runtime=attempt_scaled(TR["runtime"]),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/level_maps/level_maps.log",
    benchmark:
        f"{OUT}/benchmarks/level_maps/level_maps.tsv"
    shell:
        "spectbone level-maps {params.bone} --estimator {input.estimator} --epochs {params.epochs} {params.run}"
        " --out {output} --threads {threads} --log {log}"


rule train_emanet:
    priority: 10
    input:
        unpack(pretrain_init),
        **PREPROCESSED,
        **VGG_INPUT,
        split=f"{OUT}/split.csv",
        manifest=f"{OUT}/noise/train_manifest.csv",
        level_maps=f"{OUT}/noise/estimator_level_maps.npz",
    output:
        weights=f"{OUT}/models/emanet_{{pretrain}}_{{arch}}_lam{{lam}}.pt",
        history=f"{OUT}/training/emanet_{{pretrain}}_{{arch}}_lam{{lam}}.csv",
    params:
        ckpt=f"{OUT}/checkpoints/emanet_{{pretrain}}_{{arch}}_lam{{lam}}",
        curve=history_stem,
        init=init_arg,
        epochs=TR["epochs"]["denoiser"],
        width=TR["widths"]["emanet"],
        jitter=config["noise"]["level_jitter"],
        common=train_args(lr=TR["emanet_lr"]),
        bone=bone_args(),
    threads: TR["threads"]
    resources:
        gpu=1,
        mem_mb=attempt_scaled(TR["mem_mb"]),
        runtime=attempt_scaled(TR["runtime"]),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/train_emanet/{{pretrain}}_{{arch}}_lam{{lam}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_emanet/{{pretrain}}_{{arch}}_lam{{lam}}.tsv"
    shell:
        "spectbone train denoiser {params.bone} --model emanet --arch {wildcards.arch} --lam {wildcards.lam}"
        " {params.init} --level-maps {input.level_maps} --width {params.width} --epochs {params.epochs} --level-jitter {params.jitter}"
        " {params.common} --out {output.weights} --ckpt-dir {params.ckpt} --history {output.history}"
        " --curve {params.curve} --threads {threads} --log {log}"


rule train_baseline:
    input:
        **PREPROCESSED,
        **VGG_INPUT,
        split=f"{OUT}/split.csv",
        manifest=f"{OUT}/noise/train_manifest.csv",
    output:
        weights=f"{OUT}/models/{{baseline}}.pt",
        history=f"{OUT}/training/{{baseline}}.csv",
    params:
        ckpt=f"{OUT}/checkpoints/{{baseline}}",
        curve=history_stem,
        epochs=TR["epochs"]["baseline"],
        model=baseline_model_args,
        common=baseline_train_args,
        bone=bone_args(),
    threads: TR["threads"]
    resources:
        gpu=1,
        mem_mb=attempt_scaled(TR["mem_mb"]),
        runtime=attempt_scaled(TR["runtime"]),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/train_baseline/{{baseline}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_baseline/{{baseline}}.tsv"
    shell:
        "spectbone train {params.model} {params.bone} --epochs {params.epochs} {params.common}"
        " --out {output.weights} --ckpt-dir {params.ckpt} --history {output.history} --curve {params.curve}"
        " --threads {threads} --log {log}"


rule train_segmenter:
    input:
        **PREPROCESSED,
        split=f"{OUT}/split.csv",
        preprocess=f"{OUT}/preprocess/preprocess.csv",
    output:
        weights=f"{OUT}/models/segmenter.pt",
        history=f"{OUT}/training/segmenter.csv",
    params:
        ckpt=f"{OUT}/checkpoints/segmenter",
        curve=history_stem,
        epochs=TR["epochs"]["segmenter"],
        width=TR["widths"]["segmenter"],
        common=train_args(lr=TR["segmenter_lr"]),
        bone=bone_args(),
    threads: TR["threads"]
    resources:
        gpu=1,
        mem_mb=attempt_scaled(TR["mem_mb"]),
        runtime=attempt_scaled(TR["runtime"]),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/train_segmenter/segmenter.log",
    benchmark:
        f"{OUT}/benchmarks/train_segmenter/segmenter.tsv"
    shell:
        "spectbone train segmenter {params.bone} --width {params.width} --epochs {params.epochs} {params.common}"
        " --out {output.weights} --ckpt-dir {params.ckpt} --history {output.history} --curve {params.curve}"
        " --threads {threads} --log {log}"


rule training_curves:
    input:
        lambda wildcards: histories(curve_groups()[wildcards.group]),
    output:
        png=report(f"{OUT}/figures/curves_{{group}}.png", caption="../report/training_curves.rst", category="Training",
                   subcategory="Learning curves"),
        pdf=f"{OUT}/figures/curves_{{group}}.pdf",
    wildcard_constraints:
        group="|".join(curve_groups()),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/training_curves/{{group}}.log",
    shell:
        "spectbone curves --histories {input} --title 'Learning curves: {wildcards.group}' --out {output.png} --log {log}"
