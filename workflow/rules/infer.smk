# Inference (package spectbone.infer) over the fixed noisy test set (levels 5..40), blind denoising of
# the originals, and blind denoising of the real NEMA NM1 scan.


rule infer_learned:
    input:
        unpack(model_inputs),
        testset=f"{OUT}/noise/testset.npz",
    output:
        f"{OUT}/infer/{{method}}.npz",
    threads: TR["threads"]
    resources:
        gpu=1,
        mem_mb=attempt_scaled(TR["mem_mb"]),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/infer_learned/{{method}}.log",
    benchmark:
        f"{OUT}/benchmarks/infer_learned/{{method}}.tsv"
    shell:
        "spectbone infer learned --testset {input.testset} --model {input.model} --estimator {input.estimator}"
        " --out {output} --threads {threads} --log {log}"


rule infer_bm3d:
    input:
        testset=f"{OUT}/noise/testset.npz",
    output:
        f"{OUT}/infer/{{bm3d}}/{{chunk}}.npz",
    wildcard_constraints:
        bm3d="|".join(BM3D_METHODS),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/infer_bm3d/{{bm3d}}_{{chunk}}.log",
    benchmark:
        f"{OUT}/benchmarks/infer_bm3d/{{bm3d}}_{{chunk}}.tsv"
    shell:
        "spectbone infer {wildcards.bm3d} --testset {input.testset} --chunk {wildcards.chunk} --out {output}"
        " --log {log}"


rule noise_estimates:
    input:
        testset=f"{OUT}/noise/testset.npz",
        estimator=f"{OUT}/models/estimator.pt",
    output:
        f"{OUT}/eval/noise_estimates.csv",
    params:
        seed=config["seed"],
    threads: TR["threads"]
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/noise_estimates/noise_estimates.log",
    benchmark:
        f"{OUT}/benchmarks/noise_estimates/noise_estimates.tsv"
    shell:
        "spectbone infer estimates --testset {input.testset} --estimator {input.estimator} --out {output}"
        " --seed {params.seed} --threads {threads} --log {log}"


rule blind_nm1:
    input:
        models=expand(f"{OUT}/models/{{m}}.pt", m=LEARNED_BASELINES + [MAIN_EMANET]),
        estimator=f"{OUT}/models/estimator.pt",
    output:
        f"{OUT}/infer/nm1.npz",
    params:
        size=config["data"]["image_size"],
    threads: TR["threads"]
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/blind_nm1/nm1.log",
    shell:
        "spectbone infer nm1 --models {input.models} --estimator {input.estimator} --size {params.size}"
        " --out {output} --threads {threads} --log {log}"
