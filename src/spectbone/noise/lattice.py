"""The lattice our synthetic noise leaves, and two ways to break it (Table 6's give-away check).

y = Poisson(k x) / k puts every noisy pixel on a lattice of spacing 1/k = sigma^2 / mean(x), so the
level can be read off the lattice alone: sigma ~ sqrt(smallest positive pixel x image mean)
(:func:`lattice_level`), with no noise estimation at all. Real images carry no such added-level
lattice (saved 8-bit images are on the integer grid; real counts on the count scale), so an
estimator that scores well here might be reading the lattice, not the noise. Table 6 therefore
scores every estimator on the same noisy images with the lattice broken:

- ``rounded``: rounded to 8-bit integers (and clipped to 0..255), as an image saved by the paper's
  pipeline would be; this removes the lattice wherever its spacing is under one grey level.
- ``dithered``: a sub-lattice dither, uniform over one lattice cell (+-1/(2k)), added to every
  pixel: no two pixels share the lattice any more, at a variance cost of 1/(12 k^2).

The noise each variant really carries is measured against the truth as for the images as drawn.
"""

from __future__ import annotations

import numpy as np

AS_DRAWN, ROUNDED, DITHERED = "as drawn", "rounded", "dithered"
VARIANTS = (AS_DRAWN, ROUNDED, DITHERED)


def lattice_level(noisy: np.ndarray) -> float:
    """The level read off the lattice alone: sqrt(smallest positive pixel x image mean) (grey levels)."""
    y = np.asarray(noisy, np.float64)
    positive = y[y > 0]
    return float(np.sqrt(positive.min() * y.mean())) if positive.size else 0.0


def break_lattice(noisy: np.ndarray, variant: str, spacing: float, rng: np.random.Generator) -> np.ndarray:
    """The noisy image with its lattice (spacing 1/k grey levels) broken by `variant` (float32)."""
    y = np.asarray(noisy, np.float64)
    if variant == AS_DRAWN:
        return y.astype(np.float32)
    if variant == ROUNDED:
        return np.clip(np.round(y), 0, 255).astype(np.float32)
    if variant == DITHERED:
        if spacing <= 0:
            raise ValueError(f"the lattice spacing must be > 0, got {spacing}")
        return (y + rng.uniform(-0.5, 0.5, y.shape) * spacing).astype(np.float32)
    raise ValueError(f"unknown lattice variant {variant!r}; choose from {VARIANTS}")
