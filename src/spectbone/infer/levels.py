"""The noise level every level-taking method is given when it denoises an acquired original (blind).

Equal terms. The stage-1 network was trained to report the level *added* to an already noisy
original, so on an original it reports the added part only (about nothing), while the original's
real noise is its whole (total) noise. Handing EMANet its stage-1 value and BM3D a wavelet estimate
would compare level estimators, not denoisers. So every method that takes a level (EMANet's level
map, BM3D's sigma, Anscombe-BM3D's gain) gets the **same** estimate of the original's total noise:
DWTNE (wavelet median absolute deviation, ``noise.estimators.dwtne``), the one estimator here that
reads total noise off a single image without training on added levels. Where the phantom's truth
exists, an **oracle** level (the true total noise, RMS of original - truth) is given as well, so a
reader can tell the estimator's share of a blind score from the denoiser's.
"""

from __future__ import annotations

import numpy as np

ESTIMATED, ORACLE = "estimated", "oracle"  # the two levels an original is denoised at (evaluate.rows)


def total_noise(images: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """True total noise per image [N]: RMS of (image - truth) in grey levels."""
    diff = np.asarray(images, np.float64) - np.asarray(truth, np.float64)
    return np.sqrt(np.mean(diff**2, axis=tuple(range(1, diff.ndim)))).astype(np.float32)


def blind_levels(testset: dict) -> dict[str, np.ndarray]:
    """Levels [N] for blind denoising of the originals: ``estimated`` always, ``oracle`` with truth."""
    from spectbone.noise.estimators import dwtne

    levels = {ESTIMATED: np.array([dwtne(img) for img in testset["clean"]], np.float32)}
    if testset.get("truth") is not None:
        levels[ORACLE] = total_noise(testset["clean"], testset["truth"])
    return levels
