# Helpers shared by the .smk files (paths, input functions, final targets); no rules here.
import importlib.util
import json
import os
import sys
import subprocess

from snakemake.exceptions import WorkflowError

NAME = config["name"]
RES = f"resources/{NAME}"
OUT = f"results/{NAME}"
SYNTHETIC = config["data"]["dicom_dir"] is None
COHORT = f"{RES}/cohort" if SYNTHETIC else config["data"]["dicom_dir"]
TRUTH = f"{RES}/truth" if SYNTHETIC else None

if not SYNTHETIC and not config["data"]["allow_demo_scale"]:  # real data never silently at the demo scale
    _demo = [f"data.image_size {config['data']['image_size']} < 256"] if config["data"]["image_size"] < 256 else []
    _demo += [f"training.epochs.{k} {v} < 50" for k, v in config["training"]["epochs"].items() if v < 50]
    if _demo:
        raise WorkflowError("real data (data.dicom_dir) with demo-only values: " + ", ".join(_demo) + ". Layer your "
                            "config over config/hospital.example.yaml (snakemake --configfile "
                            "config/hospital.example.yaml yours.yaml), or set data.allow_demo_scale: true for a "
                            "quick look.")
if not SYNTHETIC:  # refuse real data without a secret pseudonym key now, not after the first jobs
    try:
        from spectbone.util.pseudonym import MissingKey, secret_key
    except ImportError:  # the package lives only in the jobs' environment: `spectbone convert` checks
        pass
    else:
        try:
            secret_key(key_file=config["data"].get("id_key_file"))
        except MissingKey as exc:
            raise WorkflowError(f"data.dicom_dir is set (real patient data): {exc}") from None
TR = config["training"]
EV = config["evaluation"]
CONDA_ENV = "../../envs/spectbone.yaml"  # used with --sdm conda; mirrors pyproject's pins
# Snakemake creates that env from a copy under .snakemake/conda/, so a relative `-e ..` in it would point
# there; the env installs the package from ${SPECTBONE_REPO} instead (pip expands it), set here to this
# repository unless the user set it.
os.environ.setdefault("SPECTBONE_REPO", os.path.abspath(workflow.basedir))

# The count-domain family (workflow/rules/counts.smk): the method registry is read here without the package's
# dependencies (pure Python), so the workflow plans one count-split job per registered method.
_count_spec = importlib.util.spec_from_file_location(
    "spectbone_count_registry", os.path.join(workflow.basedir, "src", "spectbone", "counts", "registry.py"))
COUNT_REGISTRY = sys.modules.setdefault(_count_spec.name, importlib.util.module_from_spec(_count_spec))
_count_spec.loader.exec_module(COUNT_REGISTRY)
CT = config["counts"]
PHANTOM_COHORT, PHANTOM_TRUTH = f"{RES}/cohort", f"{RES}/truth"  # the phantom is synthesised in every mode
SITES = ["nm1"] + ([] if SYNTHETIC else ["site"])
COUNT_DATASETS = SITES + ["phantom"]
COUNT_MODEL = f"{OUT}/models/emanet_counts.pt"
COUNT_TRAINED = ["emanet_counts"] + [f"emanet_finetuned_{s}" for s in SITES]
LEARNED_COUNT_METHODS = [s.key for s in COUNT_REGISTRY.SPECS if s.model]
CLASSICAL_COUNT_METHODS = [s.key for s in COUNT_REGISTRY.SPECS if not s.model]

PRETRAIN_SOURCES = ["ct", "natural"]
ARCHS = ["plain", "rdc", "rdc_md", "rdc_md_rcag", "full"]
MAIN_LAM = float(TR["lam"])
LEARNED_BASELINES = ["dncnn", "redcnn", "wgan"]
BM3D_METHODS = ["bm3d", "bm3d_anscombe"]
# Table 8 and Fig. 15 need lesion masks, which only the phantom provides.
TABLES = [1, 2, 3, 4, 5, 6, 7] + ([8] if SYNTHETIC else [])
BLIND_METHOD_NAMES = "BM3D DnCNN RED-CNN WGAN EMANet"  # labels of the blind-denoising parts, in order
FIGURES = ["07", "08", "09", "10", "11", "12", "13", "14"] + (["15"] if SYNTHETIC else [])


def parse_levels(spec):
    if ":" in spec:
        p = [int(v) for v in spec.split(":")]
        return list(range(p[0], p[1] + 1, p[2] if len(p) > 2 else 1))
    return [int(v) for v in spec.split(",")]


TEST_LEVELS = parse_levels(config["noise"]["test_levels"])


def lam_tag(lam):
    """0.2 -> '0.2', 1 -> '1': the lambda as it appears in file names."""
    return f"{float(lam):g}"


def emanet_name(pretrain, arch, lam):
    return f"emanet_{pretrain}_{arch}_lam{lam_tag(lam)}"


MAIN_EMANET = emanet_name("ct", "full", MAIN_LAM)


def emanet_variants():
    """Every EMANet fine-tune the tables need: transfer (T3), ablation (T4), loss (T5), lambda sweep (F10)."""
    names = {emanet_name(p, "full", MAIN_LAM) for p in ["none", "natural", "ct"]}
    names |= {emanet_name("ct", a, MAIN_LAM) for a in ARCHS}
    names |= {emanet_name("ct", "full", lam) for lam in [0.0, 1.0] + list(TR["lambda_sweep"])}
    return sorted(names)


def trained_models():
    """Every training run of the DAG (the segmenter only where lesion masks exist), the count family's included."""
    pretrained = [f"pretrain_ct_{a}" for a in ARCHS] + ["pretrain_natural_full"]
    return (["estimator"] + (["segmenter"] if SYNTHETIC else []) + LEARNED_BASELINES + emanet_variants() + pretrained
            + COUNT_TRAINED)


def all_methods():
    """Every method scored on the test set ('noisy' is the unprocessed input)."""
    return ["noisy"] + BM3D_METHODS + LEARNED_BASELINES + emanet_variants()


def bm3d_chunks():
    """BM3D runs as one job per test level plus the blind originals (the shared level estimate, and with
    truth the oracle level: spectbone.infer.levels), so --cores N uses every core."""
    return [str(level) for level in TEST_LEVELS] + ["blind"] + (["oracle"] if TRUTH else [])


def infer_parts(wildcards):
    m = wildcards.method
    if m == "noisy":
        return []
    if m in BM3D_METHODS:
        return expand(f"{OUT}/infer/{m}/{{chunk}}.npz", chunk=bm3d_chunks())
    return [f"{OUT}/infer/{m}.npz"]


def model_inputs(wildcards):
    """Weights an inference job needs: the model, and the estimator (EMANet's level map, blind sigma)."""
    return {"model": f"{OUT}/models/{wildcards.method}.pt", "estimator": f"{OUT}/models/estimator.pt"}


def pretrain_init(wildcards):
    if wildcards.pretrain == "none":
        return {}
    return {"init": f"{OUT}/models/pretrain_{wildcards.pretrain}_{wildcards.arch}.pt"}


def init_arg(wildcards, input):
    return f"--init {input.init}" if "init" in input.keys() else ""


def truth_arg():
    return f"--truth {TRUTH}" if TRUTH else ""


def attempt_scaled(base):
    """A resource that grows with each retry (profiles/slurm sets retries): base, 2 x base, 3 x base."""
    return lambda wildcards, attempt: base * attempt


def decode_limit_args():
    """`spectbone convert` decoding limits from config data.decode_limits."""
    lim = config["data"].get("decode_limits") or {}
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(lim.items()))


def optional_arg(flag, value):
    return f"{flag} {value}" if value not in (None, "") else ""


def eval_csvs():
    return expand(f"{OUT}/eval/{{method}}.csv", method=all_methods())


def get_final_outputs():
    outputs = expand(f"{OUT}/tables/table{{n}}.csv", n=TABLES)
    outputs += expand(f"{OUT}/figures/fig{{f}}.png", f=FIGURES)
    outputs += [f"{OUT}/claims.md", f"{OUT}/tables/params.csv", f"{OUT}/tables/training.csv"]
    outputs += expand(f"{OUT}/figures/curves_{{group}}.png", group=list(curve_groups()))
    outputs += [f"{OUT}/provenance.json", f"{OUT}/paper_notes.md"]
    outputs += [f"{OUT}/tables/real_counts.csv", f"{OUT}/figures/real_counts_nm1.png"]  # the count-domain family
    if SYNTHETIC:
        outputs += [f"{OUT}/tables/table_blind.csv", f"{OUT}/figures/segmentation_threshold.png"]
        outputs += [f"{OUT}/tables/phantom_vs_nm1.csv", f"{OUT}/figures/phantom_vs_nm1.png",
                    f"{OUT}/tables/preprocessing.csv"]
    return outputs


def resolved_config_json():
    """The resolved config (config file, --config overrides, schema defaults) as one JSON string.

    Folders of user data are recorded only as set or not (their names can carry patient names)."""
    resolved = json.loads(json.dumps(config))
    for section, key in [("data", "dicom_dir"), ("data", "id_key_file"), ("pretrain", "mayo_dir"),
                         ("pretrain", "natural_dir")]:
        if resolved.get(section, {}).get(key):
            resolved[section][key] = "(set; path not recorded)"
    return json.dumps(resolved, sort_keys=True)


def train_args(lr=None):
    """Arguments every training job shares (optimiser, batch, seed, VGG weights, patches, data label)."""
    label = "synthetic phantom cohort" if SYNTHETIC else "user DICOM studies"
    args = (f"--batch-size {TR['batch_size']} --lr {lr or TR['lr']} --seed {config['seed']}"
            f" --levels {config['noise']['train_levels']} --data-label '{label}'")
    if TR["samples_per_epoch"]:
        args += f" --samples-per-epoch {TR['samples_per_epoch']}"
    if TR["val_every"]:
        args += f" --val-every {TR['val_every']}"
    if TR["vgg_weights"]:
        args += f" --vgg-weights {TR['vgg_weights']}"
    args += f" --perceptual-unit {TR['perceptual_unit']}"
    if TR["patch"]:
        args += f" --patch {TR['patch']}"
    return args


def level_map_args():
    """The arguments that decide which noisy batches the EMANet fine-tunes draw (`spectbone level-maps`)."""
    args = f"--batch-size {TR['batch_size']} --seed {config['seed']} --levels {config['noise']['train_levels']}"
    if TR["samples_per_epoch"]:
        args += f" --samples-per-epoch {TR['samples_per_epoch']}"
    return args


def bone_args():
    return f"--preprocess-dir {OUT}/preprocess --split {OUT}/split.csv"


PRETRAIN_DIRS = {"ct": ("mayo_dir", "--mayo-dir"), "natural": ("natural_dir", "--natural-dir")}


def pretrain_real_input(wildcards):
    """The real Mayo / natural-image folder of this source as an input, when the config names one: pointing
    the config at another folder (or adding / removing files in it) reruns exactly what depends on it."""
    folder = config["pretrain"][PRETRAIN_DIRS[wildcards.source][0]]
    return {"real": folder} if folder else {}


def pretrain_real_arg(wildcards, input):
    return f"{PRETRAIN_DIRS[wildcards.source][1]} {input.real}" if "real" in input.keys() else ""


# A VGG-16 state dict named in the config is an input of the rules whose loss uses it (the shipped
# ImageNet weights are package data, covered by the code version).
VGG_INPUT = {"vgg": TR["vgg_weights"]} if TR["vgg_weights"] else {}


def baseline_train_args(wildcards):
    """Shared training arguments of a learned baseline (WGAN-VGG and DnCNN have their own learning rates)."""
    return train_args(lr={"wgan": TR["wgan_lr"], "dncnn": TR["dncnn_lr"]}.get(wildcards.baseline))


def baseline_model_args(wildcards):
    """Task and network arguments of a learned baseline."""
    w = TR["widths"]
    if wildcards.baseline == "dncnn":
        return f"denoiser --model dncnn --width {w['dncnn']} --depth {TR['dncnn_depth']} --lam 0"
    if wildcards.baseline == "redcnn":
        return f"denoiser --model redcnn --width {w['redcnn']} --lam 0"
    return (f"wgan --width {w['wgan']} --critic-width {w['critic']} --critic-steps {TR['critic_steps']}"
            f" --gp-weight {TR['gp_weight']} --perceptual-weight {TR['perceptual_weight']}"
            f" --adversarial-weight {TR['adversarial_weight']} --gan-warmup {TR['gan_warmup']}")


def table_settings():
    """The few config values the table/figure/claims code needs, as one shell-quoted JSON argument."""
    settings = {
        "main": MAIN_EMANET,
        "lam": MAIN_LAM,
        "lambda_sweep": [float(v) for v in TR["lambda_sweep"]],
        "archs": ARCHS,
        "test_levels": TEST_LEVELS,
        "table_level": EV["table_level"],
        "figure_level": EV["figure_level"],
        "table2_levels": config["noise"]["table2_levels"],
        "table2_draws": config["noise"]["table2_draws"],
        "bootstrap": EV["bootstrap"],
        "synthetic": SYNTHETIC,
        "seed": config["seed"],
    }
    return f"'{json.dumps(settings, separators=(',', ':'))}'"


# The preprocessed images (and, with truth, their noiseless truth and lesion masks): declared outputs of
# rule preprocess and inputs of every rule that reads them through --preprocess-dir.
PREPROCESSED = {"images": f"{OUT}/preprocess/images", **({"truth_images": f"{OUT}/preprocess/truth"} if TRUTH else {})}

# preprocessing scored against the phantom's labels (crop boxes, screening): only where truth exists
PREPROCESS_EVALS = [f"{OUT}/preprocess/crop_eval.csv", f"{OUT}/preprocess/screening_eval.csv"] if TRUTH else []


def evals(methods):
    return [f"{OUT}/eval/{m}.csv" for m in methods]


def histories(models):
    """Training histories (learning curves) of `models`: a table that uses a model says whether it was still improving."""
    return [f"{OUT}/training/{m}.csv" for m in models]


# The trained models each table compares (their training budget is the same within a group, config/README.md).
TABLE_MODELS = {
    3: [emanet_name(p, "full", MAIN_LAM) for p in ["none", "natural", "ct"]],
    4: [emanet_name("ct", a, MAIN_LAM) for a in ARCHS],
    5: sorted({emanet_name("ct", "full", lam) for lam in [0.0, 1.0, MAIN_LAM]}),
    6: ["estimator"],
    7: LEARNED_BASELINES + [MAIN_EMANET],
    8: ["segmenter"] if SYNTHETIC else [],
}

TABLE_INPUTS = {
    1: [f"{OUT}/split.csv", f"{OUT}/noise/train_manifest.csv", f"{OUT}/noise/testset.npz"],
    2: [f"{OUT}/preprocess/preprocess.csv", PREPROCESSED["images"]],
    3: evals(TABLE_MODELS[3]) + histories(TABLE_MODELS[3]),
    4: evals(TABLE_MODELS[4]) + histories(TABLE_MODELS[4]),
    5: evals(TABLE_MODELS[5]) + histories(TABLE_MODELS[5]),
    6: [f"{OUT}/eval/noise_estimates.csv"] + histories(TABLE_MODELS[6]),
    7: evals(["noisy"] + BM3D_METHODS + LEARNED_BASELINES + [MAIN_EMANET]) + histories(TABLE_MODELS[7]),
    8: [f"{OUT}/eval/segmentation.csv"] + histories(TABLE_MODELS[8]),
}


def curve_groups():
    """Table group -> the training runs whose learning curves share one report figure."""
    lambdas = [emanet_name("ct", "full", lam) for lam in [0.0, 1.0, MAIN_LAM] + list(TR["lambda_sweep"])]
    groups = {"table3": TABLE_MODELS[3], "table4": TABLE_MODELS[4], "table5_fig10": sorted(set(lambdas)),
              "table7": TABLE_MODELS[7], "pretraining": [f"pretrain_ct_{a}" for a in ARCHS] + ["pretrain_natural_full"],
              "table6": TABLE_MODELS[6]}
    if SYNTHETIC:
        groups["table8"] = TABLE_MODELS[8]
    groups["real_counts"] = COUNT_TRAINED
    return groups


def claims_inputs(wildcards):
    """Every file the claims check reads: Table 2, the per-image scores behind Tables 3-5, 7 and the blind table, the per-image
    noise estimates (Table 6) and, where lesion masks exist, the per-image segmentation counts (Table 8)."""
    variants = [emanet_name(p, "full", MAIN_LAM) for p in ["none", "natural", "ct"]]
    variants += [emanet_name("ct", a, MAIN_LAM) for a in ARCHS]
    variants += [emanet_name("ct", "full", lam) for lam in [0.0, 1.0]]
    methods = ["noisy", "bm3d", "bm3d_anscombe"] + LEARNED_BASELINES + sorted(set(variants) | {MAIN_EMANET})
    inputs = {"tables": [f"{OUT}/tables/table2.csv"], "evals": evals(methods),
              "noise_estimates": f"{OUT}/eval/noise_estimates.csv"}
    if SYNTHETIC:
        inputs["segmentation"] = f"{OUT}/eval/segmentation_per_image.csv"
    return inputs


def segmentation_arg(wildcards, input):
    return f"--segmentation {input.segmentation}" if "segmentation" in input.keys() else ""


def method_outputs(bm3d_chunk):
    """Inputs of the method-comparison figures: BM3D at one test level (or 'blind') and the learned methods."""
    learned = {m: f"{OUT}/infer/{m}.npz" for m in LEARNED_BASELINES}
    return {"bm3d": f"{OUT}/infer/bm3d/{bm3d_chunk}.npz", **learned, "emanet": f"{OUT}/infer/{MAIN_EMANET}.npz"}


# Every file a figure reads, by the key `spectbone figure --input KEY=PATH` passes it under.
TESTSET = {"testset": f"{OUT}/noise/testset.npz"}
FIGURE_INPUTS = {
    "07": {"preprocess": f"{OUT}/preprocess/preprocess.csv", "images": PREPROCESSED["images"],
           "table2": f"{OUT}/tables/table2.csv"},
    "08": {**TESTSET, **{p: f"{OUT}/infer/{emanet_name(p, 'full', MAIN_LAM)}.npz" for p in ["none", "natural", "ct"]}},
    "09": {**TESTSET, **{key: f"{OUT}/infer/{emanet_name('ct', 'full', lam)}.npz"
                         for key, lam in [("mse", 0.0), ("perceptual", 1.0), ("composite", MAIN_LAM)]}},
    "10": {f"lam{lam_tag(lam)}": f"{OUT}/eval/{emanet_name('ct', 'full', lam)}.csv" for lam in TR["lambda_sweep"]},
    "11": {**TESTSET, **method_outputs(EV["figure_level"])},
    "12": {**TESTSET, **method_outputs("blind"), "nm1": f"{OUT}/infer/nm1.npz"},
    "13": {**TESTSET, **method_outputs("blind")},
    "14": {**TESTSET, **{k: v for k, v in method_outputs("blind").items() if k != "bm3d"}},
    "15": {**TESTSET, "masks": f"{OUT}/eval/segmentation_masks.npz"},
}


def input_args(wildcards, input):
    """`--input KEY=PATH` for every named input of a rule (the figure verb reads nothing else)."""
    return " ".join(f"--input {key}={path}" for key, path in input.items())


def output_dir(wildcards, output):
    """The folder of a rule's first output (verbs that write several files into one folder)."""
    return os.path.dirname(output[0])


def preprocess_dir(wildcards, input):
    return os.path.dirname(input.preprocess)


def history_stem(wildcards, output):
    """Where the loss-curve figure goes: beside the history CSV, same name, .png and .pdf."""
    return os.path.splitext(output.history)[0]




def fit_to_slurm():
    """On a SLURM run (the main Snakemake process): cap what a group job may ask (and, as Snakemake
    scales threads down to the cores it is given, every job's threads) at the smallest of the
    partitions' largest nodes, so that profiles/slurm's BM3D groups fit the nodes there are (Snakemake
    then runs a group's members partly in series), and cancel any job SLURM can never start, naming the
    rule, its request and the limit, instead of waiting on it forever, and without retrying it
    (spectbone.util.slurm_fit). The scheduler's own limits were copied before `onstart`, so the number
    of jobs running at once across the cluster is not touched."""
    plugin = workflow.executor_plugin
    if workflow.local_exec or workflow.remote_exec or plugin is None or "slurm" not in (plugin.name, plugin.cli_prefix):
        return
    try:
        from spectbone.util import slurm_fit
    except ImportError:  # the package lives only in the jobs' environment
        logger.warning("spectbone is not importable by Snakemake: group jobs are not fitted to the nodes and "
                       "jobs that can never start are not cancelled")
        return
    try:
        partitions, _ = slurm_fit.cluster_limits()
        cpus, mem_mb = slurm_fit.group_caps(partitions)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        logger.warning(f"SLURM: sinfo did not say what the nodes offer ({exc}): group jobs are not fitted to them")
        cpus = mem_mb = None
    if cpus is not None:
        for name, cap in (("_cores", cpus), ("mem_mb", mem_mb)):
            given = workflow.global_resources.get(name)
            value = given.value if given is not None else None
            workflow.global_resources[name] = cap if not isinstance(value, int) or value > cap else value
        logger.info(f"SLURM: every job's threads and each group job capped at {cpus} CPUs, groups at {mem_mb} MB "
                    "(the smallest partition's largest node)")
    interval = workflow.remote_execution_settings.seconds_between_status_checks
    slurm_fit.PendingGuard(os.getcwd(), logger.error, interval, no_retry=_never_retry).start()


def _never_retry(name):
    """A request SLURM can never meet fails the same way on every attempt: retry that rule no more."""
    if name in {r.name for r in workflow.rules}:
        workflow.get_rule(name).restart_times = 0


def count_jobs():
    """(dataset, method) of every count-split job: the fine-tuned model only on the sites' own scans."""
    return [(d, s.key) for d in COUNT_DATASETS for s in COUNT_REGISTRY.SPECS if not (s.site_only and d == "phantom")]


def count_split_inputs(wildcards):
    """The files one count-split job reads: its data set and the model its method needs (registry)."""
    spec = COUNT_REGISTRY.BY_KEY[wildcards.cmethod]
    inputs = {}
    if wildcards.dataset == "phantom":
        inputs["views"] = f"{OUT}/counts/phantom_views.npz"
    elif wildcards.dataset == "site":
        inputs["manifest"] = f"{OUT}/convert/manifest.csv"
    if spec.model == "counts":
        inputs["model"] = COUNT_MODEL
    elif spec.model == "finetuned":
        inputs["model"] = f"{OUT}/models/emanet_finetuned_{wildcards.dataset}.pt"
    elif spec.model == "paper":
        inputs.update(model=f"{OUT}/models/{MAIN_EMANET}.pt", estimator=f"{OUT}/models/estimator.pt")
    return inputs


def count_split_args(wildcards, input):
    return " ".join(f"--{k} {v}" for k, v in input.items())


def count_report_inputs(wildcards):
    """Every count-split output the report reads, by its --input key."""
    inputs = {}
    for d, m in count_jobs():
        inputs[f"tiles:{d}:{m}"] = f"{OUT}/counts/eval/{d}/{m}.csv"
        inputs[f"frames:{d}:{m}"] = f"{OUT}/counts/eval/{d}/{m}_frames.csv"
        if d == "nm1":
            inputs[f"example:{m}"] = f"{OUT}/counts/eval/{d}/{m}.npz"
    return inputs
