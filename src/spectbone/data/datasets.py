"""Torch datasets that stream training samples: noise is drawn on the fly, never stored.

Every random choice is a function of (seed, image, level, epoch), so an epoch replays exactly
after a resume and two runs with one seed see identical batches.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from spectbone.noise.poisson import MAX_GREY, PoissonLevelNoise, noise_seed


def _flip(rng: np.random.Generator, *arrays: np.ndarray) -> list[np.ndarray]:
    """Left-right flip (a patient's anatomy mirrored), chosen by the sample's own generator."""
    if rng.random() < 0.5:
        return [np.ascontiguousarray(a[..., ::-1]) for a in arrays]
    return list(arrays)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]


class NoisyImageDataset(Dataset):
    """(image index, level) samples over clean grey images -> noisy/clean in [0, 1] plus the level.

    Each item also names its epoch and sample: the noisy image is a function of (seed, sample, epoch)
    alone, which is what lets one job compute the frozen estimator's level maps for every fine-tune
    (`spectbone.train.level_maps`).

    `level_jitter` perturbs the level given to the network's noise-level map (not the noise drawn),
    so a denoiser trained on true levels tolerates the estimator's small errors at test time.
    """

    def __init__(self, images: np.ndarray, samples: np.ndarray, seed: int, level_jitter: float = 0.0,
                 flip: bool = True):
        self.images = np.asarray(images, dtype=np.float32)
        self.samples = np.asarray(samples, dtype=np.int64).reshape(-1, 2)
        self.seed, self.level_jitter, self.flip, self.epoch = int(seed), float(level_jitter), flip, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, j: int):
        index, level = (int(v) for v in self.samples[j])
        rng = np.random.default_rng(noise_seed(self.seed, index, level, self.epoch))
        clean = self.images[index]
        if self.flip:
            (clean,) = _flip(rng, clean)
        noisy = PoissonLevelNoise(level)(clean, rng)
        map_level = max(0.5, level + self.level_jitter * rng.standard_normal()) if self.level_jitter else level
        return {"noisy": _tensor(noisy / MAX_GREY), "clean": _tensor(clean / MAX_GREY),
                "level": torch.tensor(level, dtype=torch.long),
                "map_level": torch.tensor(map_level / MAX_GREY, dtype=torch.float32),
                "epoch": torch.tensor(self.epoch, dtype=torch.long), "sample": torch.tensor(j, dtype=torch.long)}


class PairedImageDataset(Dataset):
    """Fixed noisy/clean pairs in [0, 1] (low-dose CT) with the pair's measured grey-level sigma."""

    def __init__(self, noisy: np.ndarray, clean: np.ndarray, levels: np.ndarray, seed: int, flip: bool = True):
        self.noisy, self.clean = np.asarray(noisy, np.float32), np.asarray(clean, np.float32)
        self.levels = np.asarray(levels, np.float32)
        self.seed, self.flip, self.epoch = int(seed), flip, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, j: int):
        rng = np.random.default_rng(noise_seed(self.seed, j, 0, self.epoch))
        noisy, clean = self.noisy[j], self.clean[j]
        if self.flip:
            noisy, clean = _flip(rng, noisy, clean)
        level = float(self.levels[j])
        return {"noisy": _tensor(noisy), "clean": _tensor(clean),
                "level": torch.tensor(int(np.clip(round(level), 1, 50)), dtype=torch.long),
                "map_level": torch.tensor(level / MAX_GREY, dtype=torch.float32)}


class LesionDataset(Dataset):
    """Original (not noised) grey images in [0, 1] with their binary lesion masks, whole or as patches.

    ``patch=None`` yields whole images. ``patch=P`` yields PxP crops (the segmenter is fully convolutional
    and is applied to whole images at test time): a share ``lesion_share`` of the crops is placed around a
    lesion pixel drawn uniformly from the image's mask (the pixel anywhere in the central half of the
    crop), the rest anywhere, so the rare lesion pixels (well under 1 % of a scan) are seen often
    without hiding the healthy uptake the network must not flag. Images without lesions always give
    random crops. ``draws`` makes the dataset that many times longer (item j shows image j % N), so
    one epoch can visit an image several times, each time with its own crop and flip.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, seed: int, flip: bool = True,
                 patch: int | None = None, lesion_share: float = 0.5, draws: int = 1):
        self.images, self.masks = np.asarray(images, np.float32), np.asarray(masks, np.float32)
        self.seed, self.flip, self.epoch = int(seed), flip, 0
        height, width = self.images.shape[-2:]
        self.patch = None if patch is None or patch >= min(height, width) else int(patch)
        self.lesion_share, self.draws = float(lesion_share), max(int(draws), 1)
        self.lesion_pixels = [np.argwhere(m > 0) for m in self.masks]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images) * self.draws

    def _crop_origin(self, rng: np.random.Generator, index: int) -> tuple[int, int]:
        p = self.patch
        height, width = self.images.shape[-2:]
        pixels = self.lesion_pixels[index]
        if len(pixels) and rng.random() < self.lesion_share:
            y, x = pixels[rng.integers(len(pixels))]
            shift = rng.integers(-(p // 4), p // 4 + 1, size=2)  # the lesion pixel lies in the central half
            top, left = y - p // 2 + shift[0], x - p // 2 + shift[1]
        else:
            top, left = rng.integers(0, height - p + 1), rng.integers(0, width - p + 1)
        return int(np.clip(top, 0, height - p)), int(np.clip(left, 0, width - p))

    def __getitem__(self, j: int):
        rng = np.random.default_rng(noise_seed(self.seed, j, 0, self.epoch))
        index = j % len(self.images)
        image, mask = self.images[index], self.masks[index]
        if self.patch is not None:
            top, left = self._crop_origin(rng, index)
            window = np.s_[top:top + self.patch, left:left + self.patch]
            image, mask = image[window], mask[window]
        if self.flip:
            image, mask = _flip(rng, image, mask)
        return {"image": _tensor(image / MAX_GREY), "mask": _tensor(mask)}


def epoch_order(n_items: int, samples_per_epoch: int | None, seed: int, epoch: int) -> np.ndarray:
    """The indices one epoch visits: a seeded permutation, cut to `samples_per_epoch` (cycled if larger)."""
    rng = np.random.default_rng(noise_seed(seed, -1, -1, epoch))
    count = samples_per_epoch or n_items
    reps = -(-count // n_items)
    return np.concatenate([rng.permutation(n_items) for _ in range(reps)])[:count]
