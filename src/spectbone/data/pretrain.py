"""`spectbone pretrain-data`: the backbone's pretraining pairs (paper section 2.3, Table 3).

--source ct       full-dose / quarter-dose CT pairs: the real AAPM/Mayo data when --mayo-dir is
                  given (paper: 1000 pairs), otherwise simulated low-dose CT (ct_phantom.py).
--source natural  clean grey crops of natural images: a JPEG/PNG folder when --natural-dir is given
                  (Mini-ImageNet), otherwise the photographs bundled in scikit-image / PyWavelets.

Output .npz (all arrays plain, loadable with allow_pickle=False):
  clean   float32 [N, S, S] in [0, 1]  (CT: full dose through the HU window)
  noisy   float32 [N, S, S] in [0, 1]  (CT only: quarter dose through the same window)
  level   float32 [N]                  (CT only: RMS(noisy - clean) * 255, the grey-level sigma
                                        for the noise-level map)
  window  float32 [2]                  (CT only: the HU window, default -160..240)
  source  str                          'simulated CT (...)', 'Mayo: DIR', 'skimage/pywt bundled
                                        images' or 'folder: DIR', for labelling outputs
  origin  str [N]                      where each row came from (slice / patient+z / image name)
For natural images there is no `noisy`: the trainer adds the Poisson level noise on the fly.

Mayo slices (512 x 512) are cut to S x S by a seeded random crop that keeps mostly body (a crop,
not a resize, so the CT noise texture and level are unchanged); slices smaller than S are upscaled.
When N exceeds the number of Mayo pairs, pairs are reused with new crops.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spectbone.util.runtime import add_common_arguments, seed_everything, setup_logging

log = logging.getLogger("spectbone.data.pretrain")


def ct_level(clean01: np.ndarray, noisy01: np.ndarray) -> np.ndarray:
    """Per-pair grey-level noise sigma: RMS(noisy - clean) * 255 over each image."""
    d = (noisy01.astype(np.float64) - clean01.astype(np.float64)).reshape(len(clean01), -1)
    return (np.sqrt((d * d).mean(axis=1)) * 255.0).astype(np.float32)


def crop_pair(full: np.ndarray, quarter: np.ndarray, size: int, rng: np.random.Generator,
              body_hu: float = -500.0, tries: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Same seeded size x size crop of both images, preferring crops that are mostly body."""
    from skimage.transform import rescale

    h, w = full.shape
    if min(h, w) < size:
        scale = size / min(h, w) + 1e-6
        full = rescale(full, scale, order=1, anti_aliasing=False)
        quarter = rescale(quarter, scale, order=1, anti_aliasing=False)
        h, w = full.shape
    best, best_frac = (0, 0), -1.0
    for _ in range(tries):
        r, c = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        frac = float((full[r:r + size, c:c + size] > body_hu).mean())
        if frac > best_frac:
            best, best_frac = (r, c), frac
        if frac >= 0.6:
            break
    r, c = best
    return full[r:r + size, c:c + size], quarter[r:r + size, c:c + size]


def build_ct(n: int, size: int, seed: int, mayo_dir: str | None = None,
             window: tuple[float, float] = (-160.0, 240.0), i0: float = 1e6,
             n_angles: int | None = None) -> dict[str, np.ndarray]:
    from spectbone.data.ct_phantom import LowDoseCT
    from spectbone.data.ct_phantom import window as to_window

    lo, hi = window
    clean = np.empty((n, size, size), dtype=np.float32)
    noisy = np.empty((n, size, size), dtype=np.float32)
    origin = []
    if mayo_dir:
        from spectbone.data.mayo import find_mayo_pairs, read_pair

        pairs = find_mayo_pairs(mayo_dir)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(pairs))
        if n > len(pairs):
            log.warning("asked for %d pairs, Mayo has %d: reusing pairs with new crops", n, len(pairs))
            order = np.concatenate([rng.permutation(len(pairs)) for _ in range(-(-n // len(pairs)))])
        for i in tqdm(range(n), desc="Mayo pairs", unit="pair"):
            pair = pairs[order[i]]
            full, quarter = crop_pair(*read_pair(pair), size, rng)
            clean[i], noisy[i] = to_window(full, lo, hi), to_window(quarter, lo, hi)
            origin.append(f"{pair.patient} z={pair.z:g}")
        source = f"Mayo: {mayo_dir}"
    else:
        sim = LowDoseCT(size=size, i0=i0, n_angles=n_angles)
        for i in tqdm(range(n), desc="simulated CT pairs", unit="pair"):
            full, quarter = sim.pair(np.random.default_rng([seed, i]))
            clean[i], noisy[i] = to_window(full, lo, hi), to_window(quarter, lo, hi)
            origin.append(f"simulated slice {i}")
        source = (f"simulated CT (procedural slices, sinogram Poisson at I0={i0:g} full / "
                  f"{i0 * sim.dose_fraction:g} quarter dose, {len(sim.angles)} angles, FBP ramp)")
    return {"clean": clean, "noisy": noisy, "level": ct_level(clean, noisy),
            "window": np.array([lo, hi], dtype=np.float32), "source": np.array(source),
            "origin": np.array(origin)}


def build_natural(n: int, size: int, seed: int, natural_dir: str | None = None) -> dict[str, np.ndarray]:
    from spectbone.data.natural_images import BUNDLED_SOURCE, bundled_images, load_folder, random_crops

    images = load_folder(natural_dir) if natural_dir else bundled_images()
    log.info("%d source images for %d crops of %d px", len(images), n, size)
    clean, names = random_crops(images, n, size, seed)
    source = f"folder: {natural_dir}" if natural_dir else BUNDLED_SOURCE
    return {"clean": clean, "source": np.array(source), "origin": np.array(names)}


def add_arguments(parser, verb):
    parser.add_argument("--source", choices=["ct", "natural"], required=True)
    parser.add_argument("--mayo-dir", default=None, help="AAPM/Mayo root (else simulated low-dose CT)")
    parser.add_argument("--natural-dir", default=None, help="JPEG/PNG folder (else bundled images)")
    parser.add_argument("--n-pairs", type=int, required=True, help="rows to write")
    parser.add_argument("--size", type=int, required=True, help="image side in pixels")
    parser.add_argument("--window", type=float, nargs=2, default=[-160.0, 240.0], metavar=("LO", "HI"),
                        help="CT display window in HU mapped to [0, 1] (default abdomen -160 240)")
    parser.add_argument("--i0", type=float, default=1e6, help="simulated CT: full-dose counts per ray")
    parser.add_argument("--n-angles", type=int, default=None, help="simulated CT: projections (default 1.414*size)")
    parser.add_argument("--out", required=True, help=".npz to write")
    add_common_arguments(parser, seed=True)


def run(args):
    setup_logging(args.log)
    seed_everything(args.seed)
    if args.n_pairs < 1 or args.size < 8:
        raise SystemExit("--n-pairs must be >= 1 and --size >= 8")
    if args.source == "ct":
        data = build_ct(args.n_pairs, args.size, args.seed, args.mayo_dir, tuple(args.window),
                        args.i0, args.n_angles)
        log.info("CT pairs: grey-level sigma mean %.2f (min %.2f, max %.2f)",
                 data["level"].mean(), data["level"].min(), data["level"].max())
    else:
        data = build_natural(args.n_pairs, args.size, args.seed, args.natural_dir)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:  # keep the exact name (np.savez would append .npz to other names)
        np.savez(f, **data)
    log.info("wrote %s: %d x %d x %d from %s", out, *data["clean"].shape, str(data["source"]))
    return 0
