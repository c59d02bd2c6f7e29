# Scores (package spectbone.evaluate): PSNR / SSIM / RMSE against the original (paper protocol) and the phantom's truth,
# and lesion segmentation on the originals and on each method's blind-denoised originals.


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
        testset=f"{OUT}/noise/testset.npz",
        segmenter=f"{OUT}/models/segmenter.pt",
        parts=[f"{OUT}/infer/bm3d/blind.npz"] + [f"{OUT}/infer/{m}.npz" for m in LEARNED_BASELINES + [MAIN_EMANET]],
    output:
        table=f"{OUT}/eval/segmentation.csv",
        per_image=f"{OUT}/eval/segmentation_per_image.csv",
        masks=f"{OUT}/eval/segmentation_masks.npz",
    params:
        names=BLIND_METHOD_NAMES,
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
        " --masks {output.masks} --threads {threads} --log {log}"
