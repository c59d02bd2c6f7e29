"""The paper's "Poisson noise level sigma" (docs/design.md, Noise model).

On an image x in grey levels [0, 255]: k = mean(x) / sigma**2 and y = Poisson(k * x) / k.
The noise is signal dependent, and its RMS over the image equals sigma grey levels, so the noisy
image's PSNR against x is about 20 * log10(255 / sigma). Noisy images are never clipped or rounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_GREY = 255.0


@dataclass(frozen=True)
class PoissonLevelNoise:
    """Poisson noise at a grey-level RMS of `sigma`; the same object serves training, test and evaluation."""

    sigma: float

    def gain(self, x: np.ndarray) -> float:
        """Counts per grey level, k = mean(x) / sigma^2."""
        mean = float(np.mean(x))
        if self.sigma <= 0 or mean <= 0:
            raise ValueError(f"need sigma > 0 and a non-empty image (sigma={self.sigma}, mean={mean})")
        return mean / self.sigma**2

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        k = self.gain(x)
        return (rng.poisson(np.clip(x, 0, None) * k) / k).astype(np.float32)


def add_poisson_level_noise(x: np.ndarray, sigma: float, seed: int | np.random.Generator) -> np.ndarray:
    """Noisy copy of `x` at level `sigma`; `seed` makes it reproducible."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return PoissonLevelNoise(float(sigma))(x, rng)


def noise_seed(base_seed: int, image_index: int, level: int, epoch: int = 0) -> int:
    """One seed per (image, level, epoch): reproducible, and independent across the three.

    Negative values are allowed as tags for fixed draws (the test set uses epoch -1, validation -2).
    """
    entropy = [int(v) % 2**32 for v in (base_seed, image_index, level, epoch)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def expected_noisy_psnr(sigma: float) -> float:
    """PSNR (dB, peak 255) of a noisy image whose noise RMS is sigma."""
    return float(20 * np.log10(MAX_GREY / sigma))


def level_map(sigma, shape) -> np.ndarray:
    """FFDNet-style constant noise-level plane, sigma / 255, for inputs scaled to [0, 1]."""
    return np.full(shape, float(sigma) / MAX_GREY, dtype=np.float32)
