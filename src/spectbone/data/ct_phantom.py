"""Simulated low-dose CT: the default stand-in for the AAPM/Mayo pretraining pairs (docs/design.md, Data sources).

A procedural axial slice in Hounsfield units (HU) is drawn per seed: an elliptical body with a
subcutaneous fat layer and muscle wall, lungs (with vessels) or abdominal organs depending on the
slice position ``z`` (0 = upper thorax .. 1 = lower abdomen), heart, liver (vessels, sometimes a
hypodense lesion), spleen, stomach, kidneys, bowel loops, aorta and IVC, a vertebra (cortical
shell ~1000-1400 HU, cancellous bone ~200-300 HU, spinal canal, posterior arch) and ribs
(~700-1400 HU cortex). Every size, position and HU value varies with the seed.

Low dose is simulated where the real one arises, in the sinogram (as the Mayo quarter-dose data
themselves were made): HU -> linear attenuation mu = mu_water * (1 + HU/1000) per pixel length ->
``skimage.transform.radon`` line integrals p -> transmitted counts N ~ Poisson(I0 * exp(-p)) at the
full dose I0 and at a quarter dose I0/4 (independent draws) -> p_hat = -log(N / I0) -> filtered
back-projection (``iradon``, ramp filter) -> HU. Both returned images therefore carry CT noise
(streaky, correlated, stronger behind bone and through the wide axis), the full-dose one about half
as much as the quarter-dose one: exactly the (not noiseless) "clean" target real Mayo data give.

``i0`` counts per detector ray are given at the reference geometry (256 pixels over ``fov_mm``,
362 angles) and are scaled with the pixel size and angle count so that the HU noise of a given dose
does not depend on the size requested: at the default I0 = 1e6 the noise at the centre of a 30 cm
water cylinder is about 18 HU at full dose and 37 HU at quarter dose (comparable to Mayo 1 mm
slices); ``tests/test_ct_phantom.py`` checks the size independence and the 2x ratio.

Training windows (documented choice): images are mapped to [0, 1] with the abdomen window
-160..240 HU (level 40, width 400), the window most low-dose-CT denoising papers (RED-CNN, WGAN-VGG)
train and score Mayo data in; values outside are clipped. See :func:`window`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.transform import iradon, radon

MU_WATER_PER_MM = 0.0192  # ~70 keV effective energy of a 120 kVp beam
ABDOMEN_WINDOW = (-160.0, 240.0)
REFERENCE_SIZE = 256
REFERENCE_ANGLES = 362


def window(hu: np.ndarray, lo: float = ABDOMEN_WINDOW[0], hi: float = ABDOMEN_WINDOW[1]) -> np.ndarray:
    """HU -> [0, 1] float32 through the display window [lo, hi] (clipped)."""
    return np.clip((np.asarray(hu, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _ellipse(u: np.ndarray, v: np.ndarray, u0: float, v0: float, ru: float, rv: float,
             angle_deg: float = 0.0) -> np.ndarray:
    """Boolean mask of an ellipse centred (u0, v0) with semi-axes (ru, rv), rotated by angle_deg."""
    t = np.deg2rad(angle_deg)
    du, dv = u - u0, v - v0
    a = (np.cos(t) * du + np.sin(t) * dv) / ru
    b = (-np.sin(t) * du + np.cos(t) * dv) / rv
    return a * a + b * b <= 1.0


def _smooth_field(shape, rng: np.random.Generator, sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std, spatially correlated random field (texture)."""
    f = gaussian_filter(rng.standard_normal(shape), sigma_px)
    return f / (f.std() + 1e-12)


def phantom_slice(size: int, rng: np.random.Generator, z: float | None = None,
                  fov_mm: float = 400.0) -> np.ndarray:
    """One procedural axial CT slice, float32 HU, size x size over a square field of view of fov_mm.

    Radiological orientation: anterior at the top, the patient's right on the image's left.
    ``z`` in [0, 1] picks the level (0 upper thorax, ~0.45 liver dome, ~0.7 kidneys, 1 lower abdomen);
    drawn from the generator when None. Everything outside the inscribed circle is air.
    """
    rng = np.random.default_rng(rng)
    z = float(rng.uniform()) if z is None else float(z)
    px = fov_mm / size
    c = (np.arange(size) - (size - 1) / 2) * px
    X, Y = np.meshgrid(c, c)  # mm; X to the image right, Y down (posterior)
    img = np.full((size, size), -1000.0)

    # body outline: fat layer, muscle wall, visceral cavity
    a = rng.uniform(135, 178)
    b = a * rng.uniform(0.6, 0.78)
    cx, cy = rng.normal(0, 5), rng.normal(0, 5)
    rot = rng.normal(0, 3)
    body = _ellipse(X, Y, cx, cy, a, b, rot)
    t = np.deg2rad(rot)
    Xr = np.cos(t) * (X - cx) + np.sin(t) * (Y - cy)
    Yr = -np.sin(t) * (X - cx) + np.cos(t) * (Y - cy)
    fat_t = rng.uniform(6, 30)
    mus_t = rng.uniform(8, 16)
    A, B = a - fat_t - mus_t, b - 0.8 * fat_t - mus_t
    u, v = Xr / A, Yr / B  # cavity-normalised coordinates (the cavity is the unit disc)
    mm = 1.0 / A  # one millimetre in u units (v units: 1 / B)

    img[body] = rng.normal(-105, 8)
    img[_ellipse(Xr, Yr, 0, 0, a - fat_t, b - 0.8 * fat_t)] = rng.normal(50, 5)
    cavity = u * u + v * v <= 1.0
    thorax = z < 0.5
    img[cavity] = rng.normal(-20, 10) if thorax else rng.normal(-85, 10)

    def draw(mask, hu):
        img[mask & cavity] = hu

    def disc(u0, v0, r_mm):
        return _ellipse(u, v, u0, v0, r_mm * mm, r_mm / B)

    # lungs with vessels (thorax; only posterior bases near the liver dome)
    lung_s = float(np.clip((0.58 - z) / 0.35, 0, 1))
    if lung_s > 0:
        lung_hu = rng.uniform(-880, -820)
        for side in (-1, 1):
            ru, rv = 0.42 * lung_s ** 0.5, 0.8 * lung_s ** 0.7
            v0 = -0.05 + 0.75 * (1 - lung_s) * 0.4
            lung = _ellipse(u, v, side * 0.48, v0, ru, rv, side * rng.normal(8, 3))
            draw(lung, lung_hu)
            for _ in range(rng.integers(10, 25)):
                ru_ = rng.uniform(0, ru * 0.85)
                ang = rng.uniform(0, 2 * np.pi)
                draw(lung & disc(side * 0.48 + ru_ * np.cos(ang), v0 + rv * 0.85 * rng.uniform() * np.sin(ang),
                                 rng.uniform(1.0, 3.5)), rng.uniform(20, 60))
    # heart and sternum
    if z < 0.42:
        heart_s = 1.0 - abs(z - 0.25) / 0.3
        draw(_ellipse(u, v, 0.12, -0.22, 0.34 * heart_s, 0.42 * heart_s, 30), rng.normal(42, 4))
        draw(_ellipse(u, v, 0.18, -0.18, 0.18 * heart_s, 0.22 * heart_s, 30), rng.uniform(100, 200))
        draw(_ellipse(u, v, 0.0, -0.97, 16 * mm, 6 / B), rng.uniform(600, 800))
    # liver (with vessels and sometimes a hypodense lesion), spleen, stomach
    liver_s = float(np.clip(1 - abs(z - 0.55) / 0.3, 0, 1))
    if liver_s > 0:
        liver = _ellipse(u, v, -0.38, 0.0, 0.55 * liver_s ** 0.5, 0.7 * liver_s ** 0.5, -15)
        draw(liver, rng.normal(62, 4))
        for _ in range(rng.integers(3, 9)):
            draw(liver & disc(-0.38 + rng.normal(0, 0.2), rng.normal(0, 0.25), rng.uniform(2, 6)),
                 rng.uniform(110, 170))
        if rng.uniform() < 0.4:
            draw(liver & disc(-0.38 + rng.normal(0, 0.15), rng.normal(0, 0.2), rng.uniform(4, 14)),
                 rng.uniform(15, 40))
    if 0.35 < z < 0.75:
        draw(_ellipse(u, v, 0.6, 0.3, 0.2, 0.3, 30), rng.normal(48, 4))
        stomach = _ellipse(u, v, 0.3, -0.35, 0.22, 0.2, 10)
        draw(stomach, rng.normal(15, 5))
        draw(stomach & (v < -0.35 - rng.uniform(0.0, 0.1)), -950)
    # kidneys (enhancing cortex, hypodense pelvis), bowel loops
    if 0.55 < z < 0.92:
        for side in (-1, 1):
            draw(_ellipse(u, v, side * 0.45, 0.45, 0.15, 0.24, side * 30), rng.uniform(140, 190))
            draw(_ellipse(u, v, side * 0.42, 0.45, 0.06, 0.1, side * 30), rng.uniform(15, 35))
    if z > 0.5:
        for _ in range(rng.integers(5, 14)):
            u0, v0 = rng.uniform(-0.6, 0.6), rng.uniform(-0.85, 0.2)
            r = rng.uniform(7, 20)
            hu = rng.choice([-900.0, rng.uniform(10, 40), rng.uniform(150, 300)], p=[0.3, 0.55, 0.15])
            loop = _ellipse(u, v, u0, v0, r * mm, rng.uniform(0.6, 1.0) * r / B, rng.uniform(0, 180))
            draw(loop, hu)
    # great vessels, just anterior to the vertebral body (aorta to the patient's left)
    r_vb = rng.uniform(14, 17) + 6 * z
    v_vb = 1.0 - (r_vb * 2 + 30) / B
    r_ao = rng.uniform(10, 14)
    v_ao = v_vb - (r_vb + r_ao + rng.uniform(1, 5)) / B
    draw(disc(rng.uniform(4, 12) * mm, v_ao, r_ao), rng.uniform(150, 260))  # aorta
    if z > 0.3:
        draw(disc(-rng.uniform(22, 30) * mm, v_ao - 4 / B, rng.uniform(9, 12)), rng.uniform(90, 140))  # IVC

    # spine: paraspinal muscles, vertebral body (cortex + cancellous), canal, arch, processes
    cortex = rng.uniform(1000, 1400)
    for side in (-1, 1):
        draw(_ellipse(u, v, side * 30 * mm, 1.0 - 18 / B, 22 * mm, 20 / B), rng.normal(50, 4))
    draw(disc(0.0, v_vb, r_vb), cortex)
    draw(disc(0.0, v_vb, r_vb - rng.uniform(1.5, 3)), rng.uniform(180, 300))
    v_canal = v_vb + (r_vb + 9) / B
    draw(disc(0.0, v_canal, 13), rng.uniform(700, 1000))
    draw(disc(0.0, v_canal, 8), rng.uniform(10, 30))
    draw(_ellipse(u, v, 0.0, v_canal + 16 / B, 4 * mm, 10 / B), rng.uniform(700, 1000))
    if z > 0.55:
        for side in (-1, 1):
            draw(_ellipse(u, v, side * 24 * mm, v_canal - 2 / B, 14 * mm, 4 / B, side * 8),
                 rng.uniform(700, 1000))
    # ribs in the chest wall
    if z < 0.7:
        n = rng.integers(5, 9)
        for side in (-1, 1):
            for ang in np.linspace(25, 150, n) + rng.normal(0, 4, n):
                th = np.deg2rad(ang)
                ur, vr = side * np.sin(th) * 0.98, -np.cos(th) * 0.98
                rib = _ellipse(u, v, ur, vr, rng.uniform(4, 6) * mm, rng.uniform(2.5, 4) / B,
                               np.rad2deg(np.arctan2(vr, ur)) + 90)
                img[rib] = rng.uniform(700, 1400)

    # soft-tissue texture and partial-volume blur
    inside = img > -500
    img += inside * rng.uniform(4, 10) * _smooth_field(img.shape, rng, 3.0 / px)
    img = gaussian_filter(img, 0.5)
    r = np.hypot(X, Y)
    img[r > fov_mm / 2 - px] = -1000.0
    return img.astype(np.float32)


@dataclass(frozen=True)
class LowDoseCT:
    """Full- and quarter-dose CT of procedural slices, simulated in the sinogram (module docstring).

    size: pixels per side; n_angles: projections over 180 degrees (None: round(size * 1.414),
    180 at 128 pixels); i0: incident counts per ray at full dose in the reference geometry;
    dose_fraction: the low dose relative to the full one (Mayo: 1/4).
    """

    size: int = 128
    n_angles: int | None = None
    i0: float = 1e6
    dose_fraction: float = 0.25
    fov_mm: float = 400.0
    mu_water: float = MU_WATER_PER_MM

    @property
    def angles(self) -> np.ndarray:
        n = self.n_angles or int(round(self.size * 1.414))
        return np.linspace(0.0, 180.0, n, endpoint=False)

    @property
    def pixel_mm(self) -> float:
        return self.fov_mm / self.size

    @property
    def i0_per_ray(self) -> float:
        """I0 scaled from the reference geometry so a dose gives the same HU noise at any size.

        With rays one pixel wide, FBP pixel variance in HU goes as 1 / (I0 * n_angles * pixel_mm^2)
        (checked numerically on a water cylinder at 128 and 256 pixels), so I0 is scaled by
        the reference angle count over ours and the squared ratio of pixel sizes.
        """
        ref_px = self.fov_mm / REFERENCE_SIZE
        return self.i0 * (REFERENCE_ANGLES / len(self.angles)) * (ref_px / self.pixel_mm) ** 2

    def project(self, hu: np.ndarray) -> np.ndarray:
        """HU image -> sinogram of line integrals (dimensionless, mu * length)."""
        mu = np.clip(self.mu_water * (1.0 + np.asarray(hu, dtype=np.float64) / 1000.0), 0.0, None)
        return radon(mu * self.pixel_mm, self.angles, circle=True)

    def reconstruct(self, sinogram: np.ndarray) -> np.ndarray:
        """Line integrals -> HU image by filtered back-projection (ramp filter)."""
        mu_px = iradon(sinogram, self.angles, filter_name="ramp", circle=True, output_size=self.size)
        return (1000.0 * (mu_px / self.pixel_mm / self.mu_water - 1.0)).astype(np.float32)

    def noisy_sinogram(self, sinogram: np.ndarray, dose: float, rng: np.random.Generator) -> np.ndarray:
        """Poisson transmitted counts at `dose` x full dose, then -log(N / I0) (N clamped to >= 1)."""
        i0 = self.i0_per_ray * dose
        counts = rng.poisson(i0 * np.exp(-sinogram)).astype(np.float64)
        return -np.log(np.maximum(counts, 1.0) / i0)

    def pair(self, rng: np.random.Generator | int | None = None, z: float | None = None,
             return_truth: bool = False):
        """(full_dose_hu, quarter_dose_hu) of one new slice; with return_truth also the phantom HU."""
        rng = np.random.default_rng(rng)
        truth = phantom_slice(self.size, rng, z=z, fov_mm=self.fov_mm)
        sino = self.project(truth)
        full = self.reconstruct(self.noisy_sinogram(sino, 1.0, rng))
        low = self.reconstruct(self.noisy_sinogram(sino, self.dose_fraction, rng))
        return (full, low, truth) if return_truth else (full, low)

    def noiseless(self, hu: np.ndarray) -> np.ndarray:
        """FBP of the noiseless sinogram (the reconstruction's own blur/streaks, without noise)."""
        return self.reconstruct(self.project(hu))


def simulate_pairs(n: int, size: int, seed: int, **kwargs):
    """Yield n (full_dose_hu, quarter_dose_hu) pairs, slice i seeded by (seed, i)."""
    sim = LowDoseCT(size=size, **kwargs)
    for i in range(n):
        yield sim.pair(np.random.default_rng([seed, i]))
