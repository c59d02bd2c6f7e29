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
        conda:
            CONDA_ENV
        log:
            f"{OUT}/logs/table/table{_n}.log",
        shell:
            "spectbone table {params.n} --inputs {input} --settings {params.settings} --out {output.csv} --log {log}"


rule table_blind:
    input:
        TABLE_INPUTS[7],
    output:
        csv=report(f"{OUT}/tables/table_blind.csv", caption="../report/table_blind.rst", category="Denoising"),
        md=f"{OUT}/tables/table_blind.md",
    params:
        settings=table_settings(),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/table/table_blind.log",
    shell:
        "spectbone table blind --inputs {input} --settings {params.settings} --out {output.csv} --log {log}"


rule paper_notes:
    output:
        report(f"{OUT}/paper_notes.md", caption="../report/paper_notes.rst", category="Claims"),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/paper_notes/paper_notes.log",
    shell:
        "spectbone paper-notes --out {output} --log {log}"


rule preprocessing_table:
    input:
        [f"{OUT}/preprocess/preprocess.csv"] + PREPROCESS_EVALS,
    output:
        report(f"{OUT}/tables/preprocessing.csv", caption="../report/preprocessing.rst", category="Data"),
    params:
        settings=table_settings(),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/preprocessing_table/preprocessing.log",
    shell:
        "spectbone table preprocessing --inputs {input} --settings {params.settings} --out {output} --log {log}"


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
        models=expand(f"{OUT}/models/{{name}}.pt", name=trained_models()),
        histories=expand(f"{OUT}/training/{{name}}.csv", name=trained_models()),
    output:
        report(f"{OUT}/tables/training.csv", caption="../report/training.rst", category="Training"),
    conda:
        CONDA_ENV
    log:
        f"{OUT}/logs/training_summary/training_summary.log",
    shell:
        "spectbone table training --inputs {input} --out {output} --log {log}"


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
