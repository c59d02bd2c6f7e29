# Scores (package spectbone.evaluate): PSNR / SSIM / RMSE against the original (paper protocol) and the phantom's truth,
# and lesion segmentation on the originals and on each method's blind-denoised originals (its probability cut
# chosen on the validation images: spectbone.evaluate.threshold).


rule evaluate:
    input:
        testset=f"{OUT}/noise/testset.npz",
        parts=infer_parts,
    output:
        f"{OUT}/eval/{{method}}.csv",
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/evaluate/{{method}}.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate/{{method}}.tsv"
    shell:
        "spectbone evaluate denoising --method {wildcards.method} --testset {input.testset}"
        " --parts {input.parts} --out {output} --log {log}"


rule evaluate_segmentation:
    input:
        **PREPROCESSED,
        testset=f"{OUT}/noise/testset.npz",
        segmenter=f"{OUT}/models/segmenter.pt",
        parts=[f"{OUT}/infer/bm3d/blind.npz"] + [f"{OUT}/infer/{m}.npz" for m in LEARNED_BASELINES + [MAIN_EMANET]],
        split=f"{OUT}/split.csv",
        preprocess=f"{OUT}/preprocess/preprocess.csv",
    output:
        table=f"{OUT}/eval/segmentation.csv",
        per_image=f"{OUT}/eval/segmentation_per_image.csv",
        masks=f"{OUT}/eval/segmentation_masks.npz",
        curve=f"{OUT}/eval/segmentation_threshold.csv",
    params:
        names=BLIND_METHOD_NAMES,
        pre=preprocess_dir,
        bootstrap=EV["bootstrap"],
        seed=config["seed"],
    threads: TR["threads"]
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/evaluate_segmentation/segmentation.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate_segmentation/segmentation.tsv"
    shell:
        "spectbone evaluate segmentation --testset {input.testset} --segmenter {input.segmenter}"
        " --parts {input.parts} --names {params.names} --out {output.table} --per-image {output.per_image}"
        " --masks {output.masks} --preprocess-dir {params.pre} --split {input.split} --curve {output.curve}"
        " --bootstrap {params.bootstrap} --seed {params.seed} --threads {threads} --log {log}"
