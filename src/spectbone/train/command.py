"""`spectbone train <task>`: assemble one training run (model, data, loss) and hand it to the engine.

Tasks (the first argument of `spectbone train`):
  estimator  stage-1 noise-level U-Net, cross-entropy over levels 1..50
  pretrain   a denoiser on CT pairs (Mayo or simulated) or natural images, MSE
  denoiser   EMANet / DnCNN / RED-CNN on bone scans, composite loss (1-lambda) MSE + lambda perceptual
  wgan       WGAN-VGG: critic with gradient penalty, 4 critic steps per generator step
  segmenter  residual SE U-Net on the phantom's lesion masks

Resuming: after every epoch the full state (weights, optimisers, best weights, history) goes to
`--ckpt-dir`; each epoch re-seeds torch and the data from (seed, epoch), so a rerun after a kill
continues from the last finished epoch and ends with the very weights an uninterrupted run gives,
but only when the checkpoint's fingerprint (these arguments, the sha256 of every input, the code)
matches: anything else starts fresh (see :mod:`spectbone.train.checkpoint`).
Only the best-on-validation weights are written to `--out` (the rule's declared output).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from spectbone.data.datasets import LesionDataset, NoisyImageDataset, PairedImageDataset
from spectbone.noise.augment import load_images, load_truth, parse_levels, split_ids
from spectbone.noise.poisson import MAX_GREY
from spectbone.train.engine import fit, plot_history
from spectbone.train.speed import MODES, step_settings
from spectbone.train.tasks import DenoiserTask, EstimatorTask, SegmenterTask, WGANTask, validation_pairs
from spectbone.util.runtime import add_common_arguments, start_training_job

log = logging.getLogger("spectbone.train.command")
SEGMENTER_LESION_SHARE = 0.5  # share of the segmenter's training windows placed on a lesion


# ---------------------------------------------------------------- assembling a run
def model_kwargs(kind: str, width: int, arch: str | None, depth: int | None) -> dict:
    from spectbone.models.emanet import EMANET_ABLATIONS

    if kind == "emanet":
        return {"base": width, **EMANET_ABLATIONS[arch or "full"]}
    if kind in ("dncnn", "wgan_generator", "wgan_critic", "redcnn"):
        kw = {"channels": width}
        if kind == "dncnn" and depth:
            kw["depth"] = depth
        return kw
    return {"base": width}


def _bone_arrays(args, which):
    ids = split_ids(args.split, which)
    if not ids:
        raise ValueError(f"{args.split} has no {which} images")
    return ids, load_images(args.preprocess_dir, ids)


def bone_noise_data(args, level_jitter: float = 0.0):
    """(training dataset, validation pairs) of the bone scans: every (training image, level) sample with
    noise drawn per (seed, sample, epoch), and fixed noisy copies of the validation images."""
    ids, images = _bone_arrays(args, "train")
    _, vimages = _bone_arrays(args, "val")
    samples = [(i, lv) for i in range(len(ids)) for lv in parse_levels(args.levels)]
    return (NoisyImageDataset(images, np.array(samples), args.seed, level_jitter),
            validation_pairs(vimages, args.seed))


def _set_perceptual_unit(perceptual, args, images) -> dict:
    """Eq. 13's feature unit: "input" keeps features per unit of the [0, 1] image; "balanced" divides the
    term by its ratio to the MSE on noisy copies of (up to) 16 training images at the validation levels,
    so eq. 14's lambda weighs two terms of equal size (see `losses.PerceptualLoss`)."""
    from spectbone.train.losses import perceptual_balance

    if args.perceptual_unit == "input":
        return {"perceptual_scale": 1.0}
    noisy, clean, _ = validation_pairs(images[:16], args.seed)
    ratio = perceptual_balance(perceptual, noisy, clean)
    perceptual.scale = 1.0 / ratio
    log.info("perceptual term balanced: in the input unit it is %.4g x the MSE on training pairs; scaled by 1/%.4g",
             ratio, ratio)
    return {"perceptual_balance_ratio": ratio, "perceptual_scale": perceptual.scale}


def build_task(args, device, speed=None):
    from spectbone.train import losses
    from spectbone.models import build_model, load_model
    from spectbone.train.speed import FP32

    speed = speed or FP32

    kind = {"estimator": "estimator", "segmenter": "segmenter", "wgan": "wgan_generator"}.get(args.task, args.model)
    kwargs = model_kwargs(kind, args.width, args.arch, args.depth)
    model = build_model(kind, **kwargs).to(device)
    meta = {"task": args.task, "kind": kind, "seed": args.seed, "epochs": args.epochs,
            "samples_per_epoch": args.samples_per_epoch, "batch_size": args.batch_size, "lr": args.lr}
    if args.init:
        init_model, init_meta = load_model(args.init, map_location=device)
        model.load_state_dict(init_model.state_dict())
        meta["init"] = {"path": str(args.init), "data_source": init_meta.get("data_source", "")}
        log.info("initialised from %s (%s)", args.init, init_meta.get("data_source", ""))
    levels = parse_levels(args.levels)
    if args.task == "pretrain":
        with np.load(args.pretrain_data) as z:
            arrays = {k: z[k] for k in z.files}
        meta["data_source"] = str(arrays.get("source", "pretraining images"))
        n_val = max(1, len(arrays["clean"]) // 10)
        if "noisy" in arrays:
            dataset = PairedImageDataset(arrays["noisy"][n_val:], arrays["clean"][n_val:], arrays["level"][n_val:],
                                         args.seed)
            val = (torch.from_numpy(arrays["noisy"][:n_val]).float()[:, None],
                   torch.from_numpy(arrays["clean"][:n_val]).float()[:, None],
                   torch.from_numpy(np.clip(np.round(arrays["level"][:n_val]), 1, 50)).long())
        else:
            grey = arrays["clean"] * MAX_GREY
            samples = [(i, lv) for i in range(n_val, len(grey)) for lv in levels]
            dataset = NoisyImageDataset(grey, np.array(samples), args.seed, args.level_jitter)
            val = validation_pairs(grey[:n_val], args.seed)
    else:
        meta["data_source"] = args.data_label
    if args.task == "segmenter":
        ids, images = _bone_arrays(args, "train")
        _, masks = load_truth(args.preprocess_dir, ids)
        vids, vimages = _bone_arrays(args, "val")
        _, vmasks = load_truth(args.preprocess_dir, vids)
        if masks is None or vmasks is None:
            raise ValueError("segmentation needs lesion masks (preprocess --truth); none found")
        # windows (--patch, else half the image side; a multiple of 16 for the U-Net), half of them on a
        # lesion; `draws` windows per image and epoch, so that one epoch holds samples_per_epoch distinct ones
        patch = max(16, (args.patch or min(images.shape[-2:]) // 2) // 16 * 16)
        draws = -(-(args.samples_per_epoch or len(images)) // len(images))
        dataset = LesionDataset(images, masks, args.seed, patch=patch, lesion_share=SEGMENTER_LESION_SHARE,
                                draws=draws)
        meta.update(loss="BCE + Tversky (FP 0.3, FN 0.7)", patch=dataset.patch, lesion_share=SEGMENTER_LESION_SHARE)
        val = (torch.from_numpy(vimages / MAX_GREY).float()[:, None], torch.from_numpy(vmasks).float()[:, None])
        return SegmenterTask(model, val, args.lr, device, args.batch_size, speed=speed), kind, kwargs, meta, dataset
    if args.task != "pretrain":
        dataset, val = bone_noise_data(args, args.level_jitter)
        images = dataset.images
        meta["image_size"] = int(images.shape[-1])  # the preprocessing size: `denoise` maps counts to grey as it did
    if args.task == "estimator":
        dataset.level_jitter = 0.0
        _, vimages = _bone_arrays(args, "val")
        val = validation_pairs(vimages, args.seed, levels=tuple(range(5, 45, 5)))  # Table 6's levels, 5 included
        task = EstimatorTask(model, val, args.lr, device, args.batch_size, window=args.patch, speed=speed)
        meta.update(label_sigma=task.label_sigma, reg_weight=task.reg_weight, window=args.patch)
        return task, kind, kwargs, meta, dataset
    if args.task == "wgan":
        critic = build_model("wgan_critic", channels=args.critic_width).to(device)
        perceptual = losses.PerceptualLoss(args.vgg_weights, channels="mean").to(device)  # WGAN-VGG's definition
        meta.update(vgg_weights=perceptual.weights_source, loss="wgan-gp + perceptual",
                    perceptual_weight=args.perceptual_weight)
        task = WGANTask(model, critic, perceptual, val, args.lr, device, args.batch_size, args.critic_steps,
                        args.gp_weight, args.perceptual_weight, args.adversarial_weight, args.gan_warmup, args.patch,
                        speed=speed)
        meta.update(adversarial_weight=args.adversarial_weight, gan_warmup=args.gan_warmup)
        return task, kind, kwargs, meta, dataset
    lam = 0.0 if args.task == "pretrain" else args.lam
    loss_fn = losses.CompositeLoss(lam=lam, vgg_weights=args.vgg_weights).to(device)
    meta.update(loss=f"composite lambda={lam:g}", lam=lam, vgg_weights=loss_fn.weights_source, patch=args.patch)
    if loss_fn.perceptual is not None:
        meta.update(perceptual_unit=args.perceptual_unit, **_set_perceptual_unit(loss_fn.perceptual, args, images))
    estimator, level_maps = None, None
    if (args.estimator or args.level_maps) and kind != "emanet":
        raise ValueError("--estimator / --level-maps feed EMANet's level map; other denoisers take no map")
    if args.estimator and args.level_maps:
        raise ValueError("give --estimator or --level-maps (the same estimator's maps, computed once), not both")
    if args.estimator:
        estimator, est_meta = load_model(args.estimator, map_location=device)
        estimator.to(device).eval().requires_grad_(False)
        meta["level_map"] = "stage-1 estimator on the whole noisy image (as at test time)"
        log.info("level map from the stage-1 estimator %s (as at test time)", args.estimator)
    elif args.level_maps:
        from spectbone.train.level_maps import LevelMaps, run_key

        level_maps = LevelMaps.load(args.level_maps, run_key(args, len(dataset), len(val[0])))
        meta["level_map"] = ("stage-1 estimator on the whole noisy image (as at test time), computed once for "
                             "every fine-tune by `spectbone level-maps`")
        meta["level_map_estimator_sha256"] = level_maps.estimator_sha256
        log.info("level maps of the stage-1 estimator (sha256 %s) from %s", level_maps.estimator_sha256[:12],
                 args.level_maps)
    elif kind == "emanet":
        meta["level_map"] = "true level" + (f" +- N(0, {args.level_jitter:g})" if args.level_jitter else "")
    task = DenoiserTask(model, loss_fn, val, args.lr, device, args.batch_size, estimator=estimator, patch=args.patch,
                        speed=speed, level_maps=level_maps)
    return task, kind, kwargs, meta, dataset


def add_arguments(parser, verb):
    parser.add_argument("task", choices=["estimator", "pretrain", "denoiser", "wgan", "segmenter"])
    parser.add_argument("--out", required=True, help="best-on-validation weights (declared output)")
    parser.add_argument("--ckpt-dir", required=True, help="resumable checkpoints (not a declared output)")
    parser.add_argument("--history", required=True,
                        help="CSV log, one row per validation (every --val-every steps and every epoch)")
    parser.add_argument("--curve", required=True, help="loss-curve figure stem (PNG + PDF)")
    parser.add_argument("--model", default="emanet", choices=["emanet", "dncnn", "redcnn"])
    parser.add_argument("--arch", default="full", help="EMANet ablation preset (plain, rdc, rdc_md, rdc_md_rcag, full)")
    parser.add_argument("--width", type=int, default=32, help="base channels of the network")
    parser.add_argument("--depth", type=int, default=None, help="DnCNN depth")
    parser.add_argument("--critic-width", type=int, default=64)
    parser.add_argument("--preprocess-dir", help="preprocessed bone scans")
    parser.add_argument("--split", help="split CSV")
    parser.add_argument("--pretrain-data", help="npz from `spectbone pretrain-data`")
    parser.add_argument("--data-label", default="bone scans", help="what the bone-scan data are (for outputs)")
    parser.add_argument("--init", help="weights to start from (transfer learning)")
    parser.add_argument("--levels", default="1:50", help="training noise levels")
    parser.add_argument("--level-jitter", type=float, default=1.0)
    parser.add_argument("--lam", type=float, default=0.2, help="perceptual weight lambda of the composite loss")
    parser.add_argument("--perceptual-unit", choices=["balanced", "input"], default="balanced",
                        help="feature unit of eq. 13's perceptual term: balanced (equal to the MSE on the training "
                             "set's noisy pairs, so lambda balances the two) or input (features per unit of the "
                             "[0, 1] image; ~1200x the MSE on noise)")
    parser.add_argument("--vgg-weights", default=None, help="VGG-16 of the perceptual loss: default the shipped ImageNet weights, a torchvision-format state_dict, or random (ablation)")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--samples-per-epoch", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--critic-steps", type=int, default=4)
    parser.add_argument("--gp-weight", type=float, default=10.0)
    parser.add_argument("--perceptual-weight", type=float, default=0.1)
    parser.add_argument("--adversarial-weight", type=float, default=1e-3, help="WGAN: weight of the critic's term")
    parser.add_argument("--gan-warmup", type=float, default=0.3, help="WGAN: share of steps on MSE + perceptual only")
    parser.add_argument("--patch", type=int, default=None, help="train denoisers on random windows of this size")
    parser.add_argument("--val-every", type=int, default=None,
                        help="validate every N optimiser steps as well as after every epoch (the learning curves)")
    parser.add_argument("--precision", choices=MODES, default="auto",
                        help="auto: the fastest step this device keeps the fp32 validation PSNR with (train/speed.py); "
                             "fp32: the plain fp32 NCHW step")
    parser.add_argument("--estimator", default=None,
                        help="stage-1 estimator weights: EMANet's level map during training (as at test time)")
    parser.add_argument("--level-maps", default=None,
                        help="`spectbone level-maps` output: the same estimator's maps, computed once for every "
                             "fine-tune of this run's settings (instead of --estimator)")
    add_common_arguments(parser, seed=True, threads=True, device=True)


def run(args):
    device = start_training_job(args)
    from spectbone.models.vgg import _resolve as resolve_vgg
    from spectbone.train import checkpoint

    # the files this run reads (the VGG file: the shipped default unless --vgg-weights names one or "random")
    inputs = [args.split, args.preprocess_dir, args.pretrain_data, args.init, resolve_vgg(args.vgg_weights)[1],
              getattr(args, "estimator", None), getattr(args, "level_maps", None)]
    fingerprint = checkpoint.fingerprint(checkpoint.training_params(args), inputs, checkpoint.code_version())
    log.info("fingerprint %s (code %s)", fingerprint["digest"], fingerprint["code_version"])
    speed = step_settings(device, args.precision)
    log.info("training step: %s", speed.label)
    task, kind, kwargs, meta, dataset = build_task(args, device, speed)
    meta.update(fingerprint=fingerprint["digest"], step=speed.label)
    log.info("task=%s model=%s kwargs=%s samples=%d meta=%s", args.task, kind, kwargs, len(dataset), json.dumps(meta))
    best_state, history = fit(task, dataset, epochs=args.epochs, samples_per_epoch=args.samples_per_epoch,
                              batch_size=args.batch_size, seed=args.seed, ckpt_dir=Path(args.ckpt_dir),
                              device=device, fingerprint=fingerprint, val_every=args.val_every)
    from spectbone.models import save_model

    model = task.models[task.primary]
    model.load_state_dict(best_state)
    best = history.loc[history["val"].idxmin()] if len(history) else None
    meta.update(best_val=float(best["val"]) if best is not None else None,
                best_step=int(best["step"]) if best is not None else 0,
                best_epoch=int(np.ceil(best["epoch"] - 1e-9)) if best is not None else 0)
    if isinstance(task, SegmenterTask):
        meta["threshold"], meta["val_iou"] = task.pick_threshold()
        log.info("segmentation threshold %.2f (pooled validation IoU %.3f)", meta["threshold"], meta["val_iou"])
    Path(args.history).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(args.history, index=False)
    plot_history(history, args.curve, f"{args.task} {kind} ({Path(args.out).stem})")
    save_model(args.out, model.cpu(), kind, kwargs, meta)
    log.info("saved %s (best epoch %s, val %.5g)", args.out, meta["best_epoch"], meta["best_val"] or float("nan"))
    return 0
