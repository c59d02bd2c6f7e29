"""`spectbone level-maps`: the frozen stage-1 estimator's level maps of every EMANet fine-tune, computed once.

Every EMANet fine-tune takes its level map from the frozen stage-1 estimator on the whole noisy image
(as at test time). The noisy images a fine-tune sees depend only on the seed, the training images,
the levels, the epoch and the sample (``NoisyImageDataset``, ``epoch_order``), not on which variant
is trained, so all ten fine-tunes of the default DAG fed the estimator the very same batches: a third
of each fine-tune's step was the same forward pass ten times over. This job runs it once, over the
same batches the fine-tunes draw (same order, same batch composition, the same folded estimator as
their step), and writes sigma/255 per (epoch, sample) and per validation image. A fine-tune given
``--level-maps`` looks its maps up instead of recomputing them: bit for bit the numbers the
in-step estimator gives (``tests/test_train.py`` checks the trained weights are identical).

The file records the run it was computed for (seed, levels, epochs, samples per epoch, batch size,
the numbers of samples and validation images): a fine-tune whose run differs in any of them refuses
it, naming the field. It also names the estimator's sha256, which the fine-tune copies into its
model's metadata; the workflow rebuilds the file whenever the estimator changes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from spectbone.noise.poisson import MAX_GREY

log = logging.getLogger("spectbone.train.level_maps")


def add_arguments(parser, verb):
    from spectbone.train.speed import MODES
    from spectbone.util.runtime import add_common_arguments

    parser.add_argument("--estimator", required=True, help="stage-1 estimator weights")
    parser.add_argument("--preprocess-dir", required=True, help="preprocessed bone scans")
    parser.add_argument("--split", required=True, help="split CSV")
    parser.add_argument("--levels", default="1:50", help="training noise levels (as the fine-tunes')")
    parser.add_argument("--epochs", type=int, required=True, help="epochs of the fine-tunes")
    parser.add_argument("--samples-per-epoch", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--precision", choices=MODES, default="auto",
                        help="the fine-tunes' --precision (decides whether the estimator's BatchNorms are folded)")
    parser.add_argument("--out", required=True, help="npz of the level maps")
    add_common_arguments(parser, seed=True, threads=True, device=True)


def run_key(args, n_samples: int, n_val: int) -> dict:
    """What a table is valid for, from a run's arguments and data sizes."""
    from spectbone.noise.augment import parse_levels

    return {"seed": int(args.seed), "levels": [int(v) for v in parse_levels(args.levels)], "epochs": int(args.epochs),
            "samples_per_epoch": args.samples_per_epoch, "batch_size": int(args.batch_size),
            "n_samples": int(n_samples), "n_val": int(n_val)}


@torch.no_grad()
def sigma_over_255(estimator, noisy: torch.Tensor) -> torch.Tensor:
    """The estimator's sigma/255 per image of a batch: the level map EMANet is given (``DenoiserTask``)."""
    return estimator.sigma_from_logits(estimator(noisy)).to(noisy) / MAX_GREY


def compute(estimator, dataset, val_noisy: torch.Tensor, *, epochs: int, samples_per_epoch: int | None,
            batch_size: int, seed: int, device) -> tuple[np.ndarray, np.ndarray]:
    """(train, val): sigma/255 of every (epoch, sample) the fine-tunes visit (NaN elsewhere) and of every
    validation image, over exactly the batches the training engine and ``DenoiserTask.evaluate`` form."""
    from spectbone.data.datasets import epoch_order
    from spectbone.train.engine import batches_per_epoch

    train = np.full((epochs, len(dataset)), np.nan, dtype=np.float32)
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        order = epoch_order(len(dataset), samples_per_epoch, seed, epoch)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=order.tolist(), num_workers=0,
                            drop_last=len(order) > batch_size)
        for batch in tqdm(loader, desc=f"level maps, epoch {epoch + 1}/{epochs}", unit="batch", leave=False,
                          total=batches_per_epoch(len(order), batch_size)):
            sigma = sigma_over_255(estimator, batch["noisy"].to(device)).cpu().numpy()
            train[epoch, batch["sample"].numpy()] = sigma
    val = torch.cat([sigma_over_255(estimator, val_noisy[i:i + batch_size].to(device)).cpu()
                     for i in range(0, len(val_noisy), batch_size)]).numpy().astype(np.float32)
    return train, val


class LevelMaps:
    """sigma/255 per (epoch, sample) of the training batches and per validation image (see module doc)."""

    def __init__(self, train: np.ndarray, val: np.ndarray, key: dict | None = None, estimator_sha256: str = ""):
        self.train, self.val = np.asarray(train, np.float32), np.asarray(val, np.float32)
        self.key, self.estimator_sha256 = key or {}, estimator_sha256

    @classmethod
    def load(cls, path, expected: dict) -> "LevelMaps":
        """The table at `path` (``spectbone level-maps``), refused unless it was computed for `expected`."""
        with np.load(path) as z:
            maps = cls(z["train"], z["val"], json.loads(str(z["key"])), str(z["estimator_sha256"]))
        wrong = [f"{k}: table {maps.key.get(k)!r}, this run {v!r}" for k, v in expected.items()
                 if maps.key.get(k) != v]
        if wrong:
            raise ValueError(f"{path}: level maps computed for another run ({'; '.join(wrong)}); "
                             "rerun `spectbone level-maps` with this run's settings")
        return maps

    def lookup(self, epoch: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """sigma/255 of each (epoch, sample) of a batch; an entry the table does not hold is an error."""
        sigma = self.train[epoch.numpy(), sample.numpy()]
        if np.isnan(sigma).any():
            raise ValueError("level maps: a batch holds samples the table was not computed for")
        return torch.from_numpy(sigma)


def run(args) -> int:
    from spectbone.models import load_model
    from spectbone.train.command import bone_noise_data
    from spectbone.train.speed import fold_batchnorm, step_settings
    from spectbone.util.hashing import sha256_file
    from spectbone.util.runtime import start_training_job

    device = start_training_job(args)
    estimator, _ = load_model(args.estimator, map_location=device)
    estimator.to(device).eval().requires_grad_(False)
    if step_settings(device, args.precision).fold_frozen:  # as the fine-tunes' step runs it
        estimator = fold_batchnorm(estimator)
    dataset, val = bone_noise_data(args)
    key = run_key(args, len(dataset), len(val[0]))
    log.info("level maps of %d epochs x %s samples (of %d) and %d validation images",
             args.epochs, args.samples_per_epoch or len(dataset), len(dataset), len(val[0]))
    train, val_sigma = compute(estimator, dataset, val[0], epochs=args.epochs, samples_per_epoch=args.samples_per_epoch,
                               batch_size=args.batch_size, seed=args.seed, device=device)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, train=train, val=val_sigma, key=json.dumps(key), estimator_sha256=sha256_file(args.estimator))
    log.info("wrote %s (sigma %.2f..%.2f grey levels)", args.out, np.nanmin(train) * MAX_GREY,
             np.nanmax(train) * MAX_GREY)
    return 0
