# The paper's data figures 7-15 (package spectbone.paper; PNG + PDF).

FIGURE_CATEGORY = {"07": "Data", "08": "Training", "09": "Training", "10": "Training", "11": "Denoising",
                   "12": "Denoising", "13": "Denoising", "14": "Denoising", "15": "Segmentation"}


for _f, _category in FIGURE_CATEGORY.items():

    rule:
        name:
            f"figure{_f}"
        input:
            **FIGURE_INPUTS[_f],
        output:
            png=report(f"{OUT}/figures/fig{_f}.png", caption=f"../report/fig{_f}.rst", category=_category),
            pdf=f"{OUT}/figures/fig{_f}.pdf",
        params:
            f=_f,
            settings=table_settings(),
            inputs=input_args,
        conda:
            CONDA_ENV
        log:
            f"{OUT}/logs/figure/fig{_f}.log",
        shell:
            "spectbone figure {params.f} {params.inputs} --settings {params.settings} --out {output.png} --log {log}"


rule figure_threshold:
    input:
        curve=f"{OUT}/eval/segmentation_threshold.csv",
        segmentation=f"{OUT}/eval/segmentation.csv",
    output:
        png=report(f"{OUT}/figures/segmentation_threshold.png", caption="../report/segmentation_threshold.rst",
                   category="Segmentation"),
        pdf=f"{OUT}/figures/segmentation_threshold.pdf",
    params:
        settings=table_settings(),
        inputs=input_args,
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/figure/segmentation_threshold.log",
    shell:
        "spectbone figure threshold {params.inputs} --settings {params.settings} --out {output.png} --log {log}"
