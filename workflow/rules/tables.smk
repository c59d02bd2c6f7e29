# The paper's Tables 1-8 (package spectbone.paper; CSV + Markdown, the paper's values beside ours),
# the preprocessing, training and parameter tables, and the claims check.

TABLE_CATEGORY = {1: "Data", 2: "Data", 3: "Training", 4: "Training", 5: "Training",
                  6: "Noise estimation", 7: "Denoising", 8: "Segmentation"}


for _n, _category in TABLE_CATEGORY.items():

    rule:
        name:
            f"table{_n}"
        input:
            TABLE_INPUTS[_n],
        output:
            csv=report(f"{OUT}/tables/table{_n}.csv", caption=f"../report/table{_n}.rst", category=_category),
            md=f"{OUT}/tables/table{_n}.md",
        params:
            n=_n,
            settings=table_settings(),
            results=results_dir,
        conda:
            CONDA_ENV
        log:
            f"{OUT}/logs/table/table{_n}.log",
        shell:
            "spectbone table {params.n} --results-dir {params.results} --settings {params.settings} --out {output.csv} --log {log}"


rule preprocessing_table:
    input:
        f"{OUT}/preprocess/preprocess.csv",
    output:
        report(f"{OUT}/tables/preprocessing.csv", caption="../report/preprocessing.rst", category="Data"),
    params:
        settings=table_settings(),
        results=results_dir,
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/preprocessing_table/preprocessing.log",
    shell:
        "spectbone table preprocessing --results-dir {params.results} --settings {params.settings} --out {output} --log {log}"


rule claims:
    input:
        unpack(claims_inputs),
    output:
        md=report(f"{OUT}/claims.md", caption="../report/claims.rst", category="Claims"),
        csv=f"{OUT}/claims.csv",
    params:
        settings=table_settings(),
        segmentation=segmentation_arg,
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/claims/claims.log",
    shell:
        "spectbone claims --tables {input.tables} --evals {input.evals} --noise-estimates {input.noise_estimates}"
        " {params.segmentation} --settings {params.settings} --out {output.md} --csv {output.csv} --log {log}"


rule training_summary:
    input:
        histories=expand(f"{OUT}/training/{{name}}.csv", name=trained_models()),
    output:
        report(f"{OUT}/tables/training.csv", caption="../report/training.rst", category="Training"),
    params:
        results=results_dir,
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/training_summary/training_summary.log",
    shell:
        "spectbone table training --results-dir {params.results} --out {output} --log {log}"


rule params_table:
    output:
        report(f"{OUT}/tables/params.csv", caption="../report/params.rst", category="Training"),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/params_table/params.log",
    shell:
        "spectbone params --out {output} --log {log}"


# Provenance: what every number above depends on (data, pretraining sources, VGG weights, versions,
# commit, resolved config, device).
localrules:
    config_json,
    provenance,


rule config_json:
    output:
        f"{OUT}/config.resolved.json",
    params:
        config=resolved_config_json(),
    log:
        f"{OUT}/logs/config_json/config_json.log",
    run:
        with open(output[0], "w") as f:
            print(params.config, file=f)


rule provenance:
    input:
        manifest=f"{OUT}/convert/manifest.csv",
        rejects=f"{OUT}/convert/rejects.csv",
        pretrain=expand(f"{RES}/pretrain/{{source}}.npz", source=PRETRAIN_SOURCES),
        models=expand(f"{OUT}/models/{{name}}.pt", name=trained_models()),
        config=f"{OUT}/config.resolved.json",
    output:
        report(f"{OUT}/provenance.json", caption="../report/provenance.rst", category="Provenance"),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/provenance/provenance.log",
    shell:
        "spectbone provenance --manifest {input.manifest} --rejects {input.rejects} --pretrain-data {input.pretrain}"
        " --models {input.models} --config-json {input.config} --out {output} --log {log}"
