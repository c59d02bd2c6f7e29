"""Grey natural images: the default stand-in for the paper's Mini-ImageNet pretraining arm (Table 3).

The default set is the photographs shipped inside the scikit-image and PyWavelets wheels, read from
the installed packages' own data folders, so nothing is fetched at run time (scikit-image fetches
some other images with pooch; those are not used). Colour images become grey with
``skimage.color.rgb2gray``. Synthetic drawings, binary masks and documents (horse, logo, colour
wheel, chessboards, page, text) and the mostly black Hubble deep field are left out. When the
config points at a folder of JPEG/PNG files (e.g. Mini-ImageNet), :func:`load_folder` reads those.

Images are float64 in [0, 1]; :func:`random_crops` cuts seeded square crops (upscaling first any
image smaller than the crop).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger("spectbone.data.natural_images")

# file names inside skimage/data (the ones the wheel ships; checked at import time of the loader)
SKIMAGE_FILES = {
    "camera": "camera.png",
    "astronaut": "astronaut.png",
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "rocket": "rocket.jpg",
    "moon": "moon.png",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "coins": "coins.png",
    "clock": "clock_motion.png",
    "retina": "retina.jpg",
    "immunohistochemistry": "ihc.png",
    "cell": "cell.png",
    "motorcycle_left": "motorcycle_left.png",
}
PYWT_FILES = {"ascent": "ascent.npz", "aero": "aero.npz"}  # pywt's camera duplicates skimage's
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
BUNDLED_SOURCE = "skimage/pywt bundled images"


def to_grey01(img: np.ndarray) -> np.ndarray:
    """Any uint8/uint16/float/bool image, grey, RGB or RGBA -> 2-D float64 grey in [0, 1]."""
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.util import img_as_float

    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] == 4:
        img = rgba2rgb(img)
    if img.ndim == 3 and img.shape[-1] == 3:
        img = rgb2gray(img)
    elif img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise ValueError(f"not a grey or colour image: shape {img.shape}")
    return np.clip(img_as_float(img), 0.0, 1.0).astype(np.float64)


def bundled_images() -> dict[str, np.ndarray]:
    """Name -> grey [0, 1] image for every bundled photograph present in the installed wheels."""
    import pywt
    import skimage
    import skimage.io

    sk_dir = Path(skimage.__file__).parent / "data"
    out: dict[str, np.ndarray] = {}
    for name, fname in SKIMAGE_FILES.items():
        path = sk_dir / fname
        if path.is_file():
            out[name] = to_grey01(skimage.io.imread(path))
        else:
            log.warning("skimage image %s not in the installed wheel; skipped", fname)
    pw_dir = Path(pywt.__file__).parent / "data"
    for name, fname in PYWT_FILES.items():
        path = pw_dir / fname
        if path.is_file():
            with np.load(path) as z:
                out[f"pywt_{name}"] = to_grey01(z[z.files[0]])
        else:
            log.warning("pywt image %s not in the installed wheel; skipped", fname)
    if not out:
        raise RuntimeError("no bundled natural images found in the installed scikit-image / PyWavelets")
    return out


def load_folder(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every JPEG/PNG under folder (recursive, sorted), as grey [0, 1] images keyed by relative path."""
    import skimage.io

    folder = Path(folder)
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"no .png/.jpg/.jpeg images under {folder}")
    out = {}
    for p in paths:
        try:
            out[str(p.relative_to(folder))] = to_grey01(skimage.io.imread(p))
        except (ValueError, OSError) as err:
            log.warning("skipping unreadable image %s: %s", p, err)
    if not out:
        raise ValueError(f"none of the {len(paths)} images under {folder} could be read")
    return out


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator, min_std: float = 0.02,
                tries: int = 20) -> np.ndarray:
    """A seeded size x size crop; an image with a side under `size` is first upscaled (bilinear).

    Crops that are nearly flat or nearly black (std or mean under min_std: e.g. the retina's
    black surround) are redrawn up to `tries` times: they teach nothing, and the trainer's noise
    gain k = mean / sigma^2 needs a positive mean.
    """
    from skimage.transform import rescale

    h, w = img.shape
    if min(h, w) < size:
        img = rescale(img, size / min(h, w) + 1e-6, order=1, anti_aliasing=False)
        h, w = img.shape
    best, best_std = None, -1.0
    for _ in range(tries):
        r = int(rng.integers(0, h - size + 1))
        c = int(rng.integers(0, w - size + 1))
        crop = img[r:r + size, c:c + size]
        std = float(crop.std()) if crop.mean() >= min_std else 0.0
        if std > best_std:
            best, best_std = crop, std
        if std >= min_std:
            break
    return best


def random_crops(images: dict[str, np.ndarray] | list[np.ndarray], n: int, size: int,
                 seed: int) -> tuple[np.ndarray, list[str]]:
    """n crops [n, size, size] float32 in [0, 1] and the name of the image each came from.

    Images are drawn uniformly with replacement, then a uniform crop position (seeded), avoiding
    flat or black crops (see :func:`random_crop`).
    """
    if isinstance(images, dict):
        names, imgs = list(images), list(images.values())
    else:
        names, imgs = [str(i) for i in range(len(images))], list(images)
    if not imgs:
        raise ValueError("no images to crop")
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size), dtype=np.float32)
    picked = []
    for i in range(n):
        j = int(rng.integers(len(imgs)))
        out[i] = random_crop(imgs[j], size, rng)
        picked.append(names[j])
    return out, picked
