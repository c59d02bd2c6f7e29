"""Whole-body planar Tc-99m MDP bone-scan phantom, anterior and posterior views (DESIGN.md, "The phantom").

Geometry. Anatomy is laid out in centimetres for a 170 cm reference patient: ``x`` is lateral, positive
towards the patient's left, ``y`` runs down from the vertex. A patient scales it by height (``y`` and
``x``), skeletal width and body habitus (soft tissue only), and moves the arms and legs a little.
Each structure is an analytic solid (ellipsoid, tapered capsule chain, plate) whose *projected
thickness* is computed on the pixel grid of a 1024 x 256 frame at 2.26 mm.

Physics, kept simple but in the right direction:
* activity per cm of path: bone >> soft tissue; bladder very hot; kidneys faint;
* attenuation ``exp(-mu * distance to the detector)`` with ``mu = 0.11 / cm`` (broad-beam Tc-99m), so
  the spine and posterior ribs are brighter in the posterior view, the sternum, patellae and anterior
  ribs in the anterior view; soft tissue is integrated through its depth analytically;
* depth-dependent collimator blur (LEHR-like FWHM growing with distance) by rendering into four
  distance layers, each blurred with its own Gaussian, plus a broad scatter halo;
* the expected-count image is scaled to the study's count level and ``Poisson`` sampled.

Both views are rendered in the anterior geometry (patient's right on the image left); the posterior
view is then mirrored, as a camera shows it (patient's left on the image left).

Truth kept per view: the noiseless expected counts, an exact binary mask of every lesion footprint,
and the shoulder-to-pelvis box (top of clavicles / humeral heads to bottom of the ischia; left/right =
body outline within those rows; bottom and right exclusive).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import polygon as draw_polygon

ROWS, COLS = 1024, 256
PIXEL_MM = 2.26
VIEWS = ("ANT", "POST")
PROBLEMS = ("extravasation", "urine", "truncated", "low_counts")

MU_PER_CM = 0.11  # broad-beam linear attenuation of 140 keV photons in soft tissue
COLLIMATOR_GAP_CM = 3.0  # skin-to-collimator distance in a whole-body sweep
LAYER_DISTANCES_CM = np.array([2.0, 8.0, 15.0, 24.0])  # depth layers for the distance-dependent blur
SCATTER_FRACTION = 0.12  # share of the counts spread into a broad halo
SCATTER_SIGMA_PX = 9.0
REF_HEIGHT_CM = 170.0


def collimator_sigma_px(distance_cm: float | np.ndarray) -> np.ndarray:
    """Gaussian sigma (pixels) of a LEHR-like system response at `distance_cm` from the collimator face.

    FWHM(z) = sqrt(R_i^2 + (a + b z)^2) with R_i = 3.8 mm intrinsic, a = 1.6 mm, b = 0.045 (z in mm):
    about 7 mm at 10 cm and 11 mm at 20 cm, close to published LEHR figures.
    """
    z_mm = 10.0 * np.asarray(distance_cm, dtype=float)
    fwhm = np.sqrt(3.8**2 + (1.6 + 0.045 * z_mm) ** 2)
    return fwhm / 2.3548 / PIXEL_MM


# ----------------------------------------------------------------------------------------------
# Patient and study containers
# ----------------------------------------------------------------------------------------------
@dataclass
class Patient:
    """Everything that varies between patients (all drawn by `sample_patient`)."""

    height_cm: float = 170.0
    width_scale: float = 1.0  # skeletal breadth relative to height-scaled reference
    habitus: float = 1.0  # soft-tissue width/thickness (thin < 1 < obese)
    top_row: float = 90.0  # image row of the vertex
    center_col: float = 128.0
    arm_abduction_deg: tuple[float, float] = (6.0, 6.0)  # (right, left), outward from the body
    elbow_flex_deg: tuple[float, float] = (4.0, 4.0)
    leg_abduction_deg: tuple[float, float] = (2.0, 2.0)
    foot_rotation_deg: tuple[float, float] = (20.0, 20.0)
    bone_ratio: float = 1.0  # bone-to-soft-tissue uptake multiplier
    kidney_uptake: float = 1.0
    bladder_fill: float = 1.0
    bladder_uptake: float = 1.0
    counts_target: float = 2.5e6  # mean total counts over the two views (before any problem)
    sex: str = "F"


@dataclass
class Lesion:
    site: str
    center_cm: tuple[float, float]
    radius_cm: tuple[float, float]
    contrast: float


@dataclass
class ViewImage:
    view: str
    expected: np.ndarray  # float32 noiseless expected counts
    counts: np.ndarray  # uint16 acquired counts
    lesions: np.ndarray  # uint8 mask
    crop: tuple[int, int, int, int]  # top, bottom (excl.), left, right (excl.)
    body: np.ndarray  # bool outline mask


@dataclass
class Study:
    patient: Patient
    problem: str
    lesions: list[Lesion]
    views: dict[str, ViewImage] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Scene: projected-thickness primitives accumulated into distance layers for both views
# ----------------------------------------------------------------------------------------------
class Scene:
    """Accumulates activity projections for ANT and POST, binned by distance to each detector."""

    def __init__(self, patient: Patient):
        self.p = patient
        k = patient.height_cm / REF_HEIGHT_CM
        self.px_per_cm_y = k * 10.0 / PIXEL_MM
        self.px_per_cm_x = k * patient.width_scale * 10.0 / PIXEL_MM
        self.layers = np.zeros((2, len(LAYER_DISTANCES_CM), ROWS, COLS), dtype=np.float32)
        self.thickness = np.zeros((ROWS, COLS), dtype=np.float32)  # body AP thickness (cm)
        self.lesion_mask = np.zeros((ROWS, COLS), dtype=bool)
        # cm grid coordinates of pixel centres
        self.ycm = (np.arange(ROWS) - patient.top_row) / self.px_per_cm_y
        self.xcm = (np.arange(COLS) - patient.center_col) / self.px_per_cm_x

    # -- coordinates -------------------------------------------------------------------------
    def rows(self, y):
        return self.p.top_row + np.asarray(y, float) * self.px_per_cm_y

    def cols(self, x):
        return self.p.center_col + np.asarray(x, float) * self.px_per_cm_x

    def bbox(self, xmin, xmax, ymin, ymax, margin_px: int = 2):
        r0 = int(np.floor(self.rows(ymin))) - margin_px
        r1 = int(np.ceil(self.rows(ymax))) + margin_px + 1
        c0 = int(np.floor(self.cols(xmin))) - margin_px
        c1 = int(np.ceil(self.cols(xmax))) + margin_px + 1
        r0, r1 = max(r0, 0), min(r1, ROWS)
        c0, c1 = max(c0, 0), min(c1, COLS)
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def grid(self, sl):
        return self.xcm[sl[1]][None, :], self.ycm[sl[0]][:, None]

    # -- primitives: each returns (slices, projected thickness in cm) or None -----------------
    def ellipsoid(self, cx, cy, a, b, c, angle_deg=0.0, power=2.0):
        """Ellipsoid (semi-axes a lateral, b cranio-caudal, c depth), rotated in the image plane."""
        r = max(a, b)
        sl = self.bbox(cx - r, cx + r, cy - r, cy + r)
        if sl is None:
            return None
        X, Y = self.grid(sl)
        th = np.deg2rad(angle_deg)
        u = (X - cx) * np.cos(th) + (Y - cy) * np.sin(th)
        v = -(X - cx) * np.sin(th) + (Y - cy) * np.cos(th)
        q = np.abs(u / a) ** power + np.abs(v / b) ** power
        t = 2.0 * c * np.sqrt(np.clip(1.0 - q, 0.0, None))
        return sl, t.astype(np.float32)

    def shell(self, cx, cy, a, b, c, wall, power=2.0):
        """Hollow ellipsoid (the skull): outer minus inner projected thickness."""
        outer = self.ellipsoid(cx, cy, a, b, c, power=power)
        if outer is None:
            return None
        sl, t = outer
        X, Y = self.grid(sl)
        ai, bi, ci = a - wall, b - wall, c - wall
        q = np.abs((X - cx) / ai) ** power + np.abs((Y - cy) / bi) ** power
        t = t - 2.0 * ci * np.sqrt(np.clip(1.0 - q, 0.0, None))
        return sl, t.astype(np.float32)

    def chain(self, pts, radii):
        """Chain of tapered capsules through `pts` (n, 2) cm; returns thickness and the position
        along the chain (0..n-1, fractional) of the nearest segment, for per-vertex properties."""
        pts = np.asarray(pts, float)
        radii = np.broadcast_to(np.asarray(radii, float), (len(pts),))
        rmax = radii.max()
        sl = self.bbox(pts[:, 0].min() - rmax, pts[:, 0].max() + rmax,
                       pts[:, 1].min() - rmax, pts[:, 1].max() + rmax)
        if sl is None:
            return None
        X, Y = self.grid(sl)
        p0, p1 = pts[:-1], pts[1:]
        d = p1 - p0
        L2 = np.maximum((d**2).sum(1), 1e-9)
        Xs, Ys = X[None], Y[None]
        px = Xs - p0[:, 0, None, None]
        py = Ys - p0[:, 1, None, None]
        t = np.clip((px * d[:, 0, None, None] + py * d[:, 1, None, None]) / L2[:, None, None], 0.0, 1.0)
        dist2 = (px - t * d[:, 0, None, None]) ** 2 + (py - t * d[:, 1, None, None]) ** 2
        r = radii[:-1, None, None] + t * (radii[1:] - radii[:-1])[:, None, None]
        thick = 2.0 * np.sqrt(np.clip(r**2 - dist2, 0.0, None))
        best = np.argmax(thick, axis=0)
        th = np.take_along_axis(thick, best[None], 0)[0]
        pos = best + np.take_along_axis(t, best[None], 0)[0]
        return sl, th.astype(np.float32), pos

    def plate(self, poly, thickness):
        """Flat bone plate (scapula, iliac wing) of given thickness over a polygon (cm)."""
        poly = np.asarray(poly, float)
        sl = self.bbox(poly[:, 0].min(), poly[:, 0].max(), poly[:, 1].min(), poly[:, 1].max())
        if sl is None:
            return None
        rr, cc = draw_polygon(self.rows(poly[:, 1]) - sl[0].start, self.cols(poly[:, 0]) - sl[1].start,
                              shape=(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start))
        t = np.zeros((sl[0].stop - sl[0].start, sl[1].stop - sl[1].start), np.float32)
        t[rr, cc] = thickness
        return sl, t

    # -- accumulation ---------------------------------------------------------------------------
    def add(self, prim, activity, depth_frac, body_t, lesion: bool = False):
        """Add `activity` per cm of path over the primitive, at `depth_frac` of the local body
        thickness `body_t` (cm) from the anterior surface (scalar or per-pixel arrays)."""
        if prim is None or activity == 0:
            return 0.0
        sl, t = prim[0], prim[1]
        if lesion:
            self.lesion_mask[sl] |= t > 0
        depth = np.asarray(depth_frac, np.float32) * np.asarray(body_t, np.float32)
        dists = (depth, np.asarray(body_t, np.float32) - depth)
        total_ant = 0.0
        for v, dist in enumerate(dists):
            contrib = (activity * t) * np.exp(-MU_PER_CM * dist)
            if v == 0:
                total_ant = float(contrib.sum())
            self._deposit(v, sl, contrib, dist + COLLIMATOR_GAP_CM)
        return total_ant

    def _deposit(self, v, sl, contrib, dist):
        pos = np.interp(dist, LAYER_DISTANCES_CM, np.arange(len(LAYER_DISTANCES_CM)))
        if np.ndim(pos) == 0:
            lo = int(np.floor(pos))
            w = float(pos - lo)
            self.layers[v, lo][sl] += contrib * (1 - w)
            if w > 0:
                self.layers[v, lo + 1][sl] += contrib * w
            return
        for li in range(len(LAYER_DISTANCES_CM)):
            w = np.clip(1.0 - np.abs(pos - li), 0.0, None)
            if w.any():
                self.layers[v, li][sl] += contrib * w

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """Blur each distance layer with its collimator response, sum, add the scatter halo."""
        sig = collimator_sigma_px(LAYER_DISTANCES_CM)  # layer distances are to the collimator face
        out = []
        for v in range(2):
            img = np.zeros((ROWS, COLS), np.float32)
            for li, s in enumerate(sig):
                if self.layers[v, li].any():
                    img += ndi.gaussian_filter(self.layers[v, li], s, mode="constant", truncate=3.5)
            halo = ndi.gaussian_filter(img, SCATTER_SIGMA_PX, mode="constant", truncate=3.0)
            out.append((1 - SCATTER_FRACTION) * img + SCATTER_FRACTION * halo)
        return out[0], out[1]


# ----------------------------------------------------------------------------------------------
# Anatomy
# ----------------------------------------------------------------------------------------------
SPINE_TOP_CM = 14.5
SPINE_LEVELS = ([("C", 1.85, 1.9 + 0.15 * i) for i in range(7)]  # (region, height, width) in cm
                + [("T", 2.2 + 0.05 * i, 2.6 + 0.11 * i) for i in range(12)]
                + [("L", 2.9 + 0.05 * i, 4.0 + 0.15 * i) for i in range(5)])
SACRUM_TOP_CM = SPINE_TOP_CM + sum(h for _, h, _ in SPINE_LEVELS)
# crop landmarks of the reference patient: top of the acromion / clavicle / humeral head (the
# highest of the shoulder-girdle bones), bottom of the ischial tuberosities
SHOULDER_TOP_CM = min(25.7 - 0.8, 25.4 - 0.8, 27.8 - 2.3)
PELVIS_BOTTOM_CM = SACRUM_TOP_CM + 16.2 + 1.15

def _rotate(pts, pivot, side, deg):
    """Swing points about `pivot` outward (towards `side` = -1 right, +1 left) by `deg`."""
    pts = np.asarray(pts, float)
    th = np.deg2rad(deg)
    v = pts - np.asarray(pivot, float)
    x = v[..., 0] * np.cos(th) + side * v[..., 1] * np.sin(th)
    y = -side * v[..., 0] * np.sin(th) + v[..., 1] * np.cos(th)
    return np.stack([x, y], -1) + pivot


def _trunk_profile(y, habitus):
    """Half-width and half-depth (cm) of the trunk at level y (reference patient)."""
    ky = [17.0, 20.0, 23.5, 26.0, 28.5, 36.0, 46.0, 58.0, 66.0, 74.0, 82.0, 88.0, 92.0]
    kw = [4.8, 5.2, 6.5, 12.5, 16.0, 15.5, 15.0, 14.0, 14.5, 16.5, 17.0, 15.5, 13.0]
    kt = [5.0, 5.5, 6.5, 8.5, 10.0, 10.5, 10.5, 10.5, 10.5, 10.5, 10.0, 9.0, 8.0]
    w = np.interp(y, ky, kw) * habitus
    t = np.interp(y, ky, kt) * habitus**1.5
    inside = (y >= ky[0]) & (y <= ky[-1])
    return np.where(inside, w, 0.0), np.where(inside, t, 0.0)


class Anatomy:
    """Builds one patient's skeleton, organs and soft tissue into a Scene; records lesion sites."""

    BONE = 7.5  # activity per cm of cortical-bone path, relative to 1.0 per cm of soft tissue

    def __init__(self, scene: Scene):
        self.s = scene
        self.p = scene.p
        self.sites: dict[str, list[tuple[float, float, float, float, float]]] = {}
        self.landmarks: dict[str, float] = {}
        b = self.BONE * self.p.bone_ratio
        self.b = b
        # limb geometry
        self.shoulder = {s: np.array([s * 17.0, 27.8]) for s in (-1, 1)}
        self.hip = {s: np.array([s * 9.3, 76.5]) for s in (-1, 1)}

    # local body thickness (cm) used for attenuation
    def trunk_t(self, y):
        return 2.0 * float(_trunk_profile(np.asarray(y, float), self.p.habitus)[1])

    def _site(self, group, x, y, r, frac, body_t):
        self.sites.setdefault(group, []).append((x, y, r, frac, body_t))

    def bone(self, prim, rel, frac, body_t, group=None, site=None):
        self.s.add(prim, self.b * rel, frac, body_t)
        if group is not None and site is not None:
            for x, y, r in site:
                self._site(group, x, y, r, frac, body_t)

    # ---- soft tissue ------------------------------------------------------------------------
    def soft_tissue(self):
        s, p = self.s, self.p
        h = p.habitus
        T = np.zeros((ROWS, COLS), np.float32)
        # trunk and neck (elliptic cross-section)
        w, t = _trunk_profile(s.ycm, h)
        X = s.xcm[None, :]
        ok = w[:, None] > 0
        q = np.where(ok, (X / np.where(ok, w[:, None], 1.0)) ** 2, 2.0)
        T = np.maximum(T, (2 * t[:, None] * np.sqrt(np.clip(1 - q, 0, None))).astype(np.float32))
        # head
        prim = s.ellipsoid(0.0, 10.5, 8.0 * h**0.3, 11.0, 9.5)
        if prim is not None:
            T[prim[0]] = np.maximum(T[prim[0]], prim[1])

        def limb(pts, radii):
            pr = s.chain(pts, radii)
            if pr is not None:
                T[pr[0]] = np.maximum(T[pr[0]], pr[1])

        for side in (-1, 1):
            arm = self.arm_points(side)
            limb([arm["shoulder"] + [side * 1.0, 0.5], arm["elbow"], arm["wrist"]],
                 [5.0 * h, 4.1 * h, 2.7 * h**0.5])
            limb([arm["wrist"], arm["knuckle"], arm["finger"]], [2.6, 2.4, 1.2])
            leg = self.leg_points(side)
            limb([leg["hip"] + [side * -0.5, 3.0], leg["knee"], leg["ankle"]],
                 [8.0 * h, 5.2 * h**0.8, 3.3 * h**0.5])
            limb([leg["ankle"], leg["toe"]], [3.5, 2.8])
        self.s.thickness = T
        eff = (1.0 - np.exp(-MU_PER_CM * T)) / MU_PER_CM  # attenuation-integrated path, same both views
        contrib = eff.astype(np.float32)
        full = (slice(0, ROWS), slice(0, COLS))
        for v in range(2):
            s._deposit(v, full, contrib, T / 2 + COLLIMATOR_GAP_CM)

    # ---- limbs geometry ---------------------------------------------------------------------
    def arm_points(self, side):
        i = 0 if side < 0 else 1
        sh = self.shoulder[side]
        ab = self.p.arm_abduction_deg[i]
        elbow = sh + [side * 0.3, 29.5]
        wrist = elbow + [side * 0.4, 24.0]
        knuckle = wrist + [side * 0.3, 9.5]
        finger = knuckle + [0.0, 8.0]
        pts = np.stack([sh, elbow, wrist, knuckle, finger])
        pts = _rotate(pts, sh, side, ab)
        pts[2:] = _rotate(pts[2:], pts[1], side, self.p.elbow_flex_deg[i])
        return dict(zip(["shoulder", "elbow", "wrist", "knuckle", "finger"], pts))

    def leg_points(self, side):
        i = 0 if side < 0 else 1
        hip = self.hip[side]
        knee = np.array([side * 8.0, 118.5])
        ankle = np.array([side * 7.8, 162.0])
        heel = ankle + [0.0, 3.0]
        toe = ankle + [0.0, 8.0]
        pts = _rotate(np.stack([hip, knee, ankle, heel, toe]), hip, side, self.p.leg_abduction_deg[i])
        pts[4] = _rotate(pts[4:5], pts[2], side, self.p.foot_rotation_deg[i])[0]
        return dict(zip(["hip", "knee", "ankle", "heel", "toe"], pts))

    # ---- skeleton ---------------------------------------------------------------------------
    def skull(self):
        s = self.s
        T = 19.0
        self.bone(s.shell(0.0, 10.0, 7.3, 9.8, 9.0, 0.9), 0.75, 0.5, T, "skull",
                  [(0, 2.0, 0.9), (-5.5, 7, 0.9), (5.5, 7, 0.9), (-6, 12, 0.9), (6, 12, 0.9)])
        self.bone(s.ellipsoid(0.0, 13.8, 3.6, 2.4, 1.6), 1.1, 0.12, T)  # maxilla / nasal sinuses
        self.bone(s.ellipsoid(-3.3, 10.5, 1.6, 1.5, 0.7), 0.8, 0.1, T)  # orbital rims
        self.bone(s.ellipsoid(3.3, 10.5, 1.6, 1.5, 0.7), 0.8, 0.1, T)
        self.bone(s.ellipsoid(0.0, 14.8, 6.0, 1.3, 2.0), 0.45, 0.55, T)  # skull base / petrous
        jaw = [(-5.2, 14.8), (-4.8, 17.6), (-2.6, 19.6), (0, 20.2), (2.6, 19.6), (4.8, 17.6), (5.2, 14.8)]
        self.bone(s.chain(jaw, 0.75), 1.1, 0.25, T, "skull", [(0, 19.9, 0.75)])

    def spine(self):
        s = self.s
        y = SPINE_TOP_CM
        for name, h, w in SPINE_LEVELS:
            cy = y + h / 2
            T = self.trunk_t(cy) if name != "C" else 12.0
            body_frac = 0.62 if name != "C" else 0.55
            depth_c = 1.6 if name == "C" else 1.9
            self.bone(s.ellipsoid(0.0, cy, w / 2, h * 0.52, depth_c, power=4.0), 1.0, body_frac, T,
                      "spine", [(0.0, cy, min(w, h) / 2)])
            # posterior elements: pedicles and transverse processes, spinous process
            self.bone(s.ellipsoid(0.0, cy, w * 0.72, h * 0.52, 0.8, power=4.0), 0.5, 0.82, T)
            self.bone(s.ellipsoid(0.0, cy + h * 0.15, 0.6, h * 0.6, 1.0, power=3.0), 0.3, 0.92, T)
            y += h
        self.landmarks["spine_bottom"] = y
        # sacrum and coccyx
        T = self.trunk_t(72)
        sac = [(-5.0, y), (5.0, y), (3.4, y + 5.0), (1.6, y + 9.5), (-1.6, y + 9.5), (-3.4, y + 5.0)]
        self.bone(s.plate(sac, 1.7), 1.0, 0.8, T, "pelvis", [(0, y + 2.5, 1.8), (0, y + 6, 1.5)])
        self.bone(s.chain([(0, y + 9.5), (0, y + 12.0)], [0.9, 0.5]), 0.7, 0.85, T)
        self.sacrum_top = y
        # sacroiliac joints
        for side in (-1, 1):
            self.bone(s.chain([(side * 4.4, y + 0.2), (side * 3.9, y + 3.0), (side * 3.2, y + 6.0)], 0.9),
                      1.5, 0.78, T, "pelvis", [(side * 3.9, y + 3.0, 0.9)])

    def thorax(self):
        s = self.s
        T = self.trunk_t(38)
        # sternum (anterior)
        self.bone(s.ellipsoid(0.0, 30.3, 2.7, 2.4, 0.9), 1.1, 0.05, T, "sternum", [(0, 30.3, 1.5)])
        self.bone(s.ellipsoid(0.0, 39.0, 1.6, 6.6, 0.75, power=3.0), 1.0, 0.05, T, "sternum",
                  [(0, 36, 1.2), (0, 42, 1.2)])
        self.bone(s.chain([(0, 45.5), (0, 48.0)], [0.7, 0.4]), 0.6, 0.05, T)
        # ribs: parametric loops from the transverse process, lateral, to the costochondral junction
        theta = np.linspace(0.0, np.pi, 17)
        for k in range(12):
            yk = 29.4 + 2.12 * k
            half = float(np.interp(k, [0, 1, 2, 4, 6, 8, 10, 11], [6.0, 9.5, 11.8, 13.8, 14.6, 14.4, 13.0, 11.0]))
            drop = float(np.interp(k, [0, 3, 6, 9, 11], [4.0, 9.0, 11.0, 10.0, 5.0]))
            end = float(np.interp(k, [0, 6, 9, 10, 11], [np.pi, np.pi * 0.88, np.pi * 0.75, np.pi * 0.62, np.pi * 0.5]))
            th = theta[theta <= end]
            x0 = 2.2 + 0.05 * k  # transverse process
            xa = 3.2 + 0.55 * k  # costochondral junction (cartilage is not seen)
            x = np.where(th <= np.pi / 2, x0 + (half - x0) * np.sin(th), xa + (half - xa) * np.sin(th))
            # posterior arc slopes down laterally, anterior arc continues down towards the sternum
            post_drop = 0.45 * drop
            yy = np.where(th <= np.pi / 2, yk + post_drop * np.sin(th),
                          yk + post_drop + (drop - post_drop) * (-np.cos(th)))
            depth = 0.5 + 0.42 * np.cos(th)  # 0.92 posterior .. 0.08 anterior
            radius = np.where(th < np.pi / 2, 0.62, 0.52)
            for side in (-1, 1):
                pts = np.stack([side * x, yy], 1)
                pr = s.chain(pts, radius)
                if pr is None:
                    continue
                dfrac = np.interp(pr[2], np.arange(len(depth)), depth)
                self.s.add((pr[0], pr[1]), self.b * 0.95, dfrac, T)
                idx = np.linspace(1, len(th) - 2, 4).astype(int)
                for i in idx:
                    self._site("ribs", float(pts[i, 0]), float(pts[i, 1]), 0.6, float(depth[i]), T)
        # clavicles
        for side in (-1, 1):
            cl = [(side * 1.9, 28.0), (side * 5.0, 27.4), (side * 9.5, 26.9), (side * 13.0, 26.0),
                  (side * 15.8, 25.7)]
            self.bone(s.chain(cl, [0.9, 0.75, 0.7, 0.75, 0.8]), 1.0, 0.1, T, "clavicle", [(side * 8, 27.0, 0.7)])
            self.bone(s.ellipsoid(side * 2.0, 28.1, 1.0, 0.9, 1.0), 1.2, 0.08, T)  # sternoclavicular joint

    def shoulder_girdle_and_arms(self):
        s = self.s
        T = self.trunk_t(32)
        for side in (-1, 1):
            arm = self.arm_points(side)
            sh = arm["shoulder"]
            # scapula (posterior plate + spine + glenoid)
            scap = [(side * 15.0, 27.2), (side * 16.2, 25.4), (side * 12.0, 26.0), (side * 8.3, 26.8),
                    (side * 7.8, 33.0), (side * 10.0, 42.5), (side * 12.4, 39.0), (side * 14.8, 30.5)]
            self.bone(s.plate(scap, 0.7), 0.9, 0.85, T, "scapula", [(side * 10.5, 33.0, 1.2)])
            self.bone(s.chain([(side * 8.4, 29.6), (side * 12.5, 27.6), (side * 16.4, 25.5)], [0.6, 0.7, 0.8]),
                      1.0, 0.88, T)
            self.bone(s.chain([(side * 8.2, 27.0), (side * 7.8, 33.0), (side * 10.0, 42.5), (side * 13.0, 38.5)],
                              0.5), 0.8, 0.88, T)
            self.bone(s.ellipsoid(side * 15.2, 27.9, 1.0, 1.8, 1.5), 1.0, 0.65, T)  # glenoid
            # humerus
            ta = 9.5 * self.p.habitus
            head = sh + [side * 0.3, 0.0]
            self.bone(s.ellipsoid(head[0], head[1], 2.3, 2.3, 2.3), 1.1, 0.5, ta, "humerus",
                      [(head[0], head[1] + 1.0, 1.5)])
            shaft_top = sh + (arm["elbow"] - sh) * 0.1
            self.bone(s.chain([shaft_top, sh + (arm["elbow"] - sh) * 0.55, arm["elbow"] - (arm["elbow"] - sh) * 0.05],
                              [1.35, 1.05, 1.5]), 0.75, 0.5, ta, "humerus",
                      [tuple(sh + (arm["elbow"] - sh) * 0.25) + (1.1,)])
            el = arm["elbow"]
            self.bone(s.ellipsoid(el[0], el[1], 2.3, 1.2, 1.5), 0.6, 0.5, ta * 0.8)
            # forearm: radius and ulna
            fa = 7.0 * self.p.habitus
            d = arm["wrist"] - el
            n = np.array([-d[1], d[0]]) / np.hypot(*d)
            for off, rr in ((0.9, (0.7, 0.55, 0.8)), (-0.9, (0.8, 0.55, 0.6))):
                o = n * off
                self.bone(s.chain([el + d * 0.06 + o, el + d * 0.5 + o * 1.2, arm["wrist"] + o * 0.9], rr),
                          0.7, 0.5, fa)
            # hand: carpus, metacarpals, fingers (palm facing the thigh)
            wr = arm["wrist"]
            dh = arm["knuckle"] - wr
            self.bone(s.ellipsoid(*(wr + dh * 0.18), 1.6, 1.4, 1.4), 0.7, 0.5, 5.0)
            for j, off in enumerate((-0.6, -0.2, 0.2, 0.6)):
                base = wr + dh * 0.35
                o = n * off * 1.2
                self.bone(s.chain([base + o, arm["knuckle"] + o * 1.4, arm["finger"] + o * 1.6 + [0, -1.0 * (j % 2)]],
                                  [0.38, 0.32, 0.25]), 0.75, 0.5, 5.0)
        self.landmarks["shoulder_top"] = SHOULDER_TOP_CM

    def pelvis_and_legs(self):
        s = self.s
        y0 = self.sacrum_top
        T = self.trunk_t(74)
        for side in (-1, 1):
            sx = side
            # iliac wing plate and crest rim
            wing = [(sx * 4.6, y0 - 0.5), (sx * 5.8, y0 - 3.6), (sx * 9.0, y0 - 5.3), (sx * 12.6, y0 - 4.6),
                    (sx * 14.3, y0 - 1.4), (sx * 13.3, y0 + 2.5), (sx * 11.6, y0 + 5.2), (sx * 10.4, y0 + 7.3),
                    (sx * 7.4, y0 + 7.8), (sx * 5.4, y0 + 5.5), (sx * 4.4, y0 + 2.5)]
            self.bone(s.plate(wing, 1.2), 0.85, 0.55, T, "pelvis",
                      [(sx * 9.0, y0 - 1.0, 1.6), (sx * 11.0, y0 + 2.5, 1.6), (sx * 7.0, y0 + 4.5, 1.2)])
            crest = [(sx * 5.8, y0 - 3.6), (sx * 9.0, y0 - 5.3), (sx * 12.6, y0 - 4.6), (sx * 14.3, y0 - 1.4),
                     (sx * 13.3, y0 + 2.5)]
            self.bone(s.chain(crest, 0.7), 1.0, 0.5, T)
            # acetabulum rim, pubic rami, ischium (obturator foramen in between)
            hip = self.leg_points(side)["hip"]
            ang = np.linspace(-0.9 * np.pi, 0.15 * np.pi, 9)
            rim = np.stack([hip[0] + sx * 2.9 * np.sin(ang), hip[1] - 2.9 * np.cos(ang)], 1)  # roof arc
            self.bone(s.chain(rim, 0.8), 1.1, 0.5, T, "pelvis", [(hip[0], hip[1] - 2.6, 0.9)])
            sup_ramus = [(hip[0] - sx * 2.5, hip[1] + 1.3), (sx * 4.5, y0 + 11.0), (sx * 1.0, y0 + 12.3)]
            inf_ramus = [(sx * 1.0, y0 + 13.8), (sx * 3.0, y0 + 15.5), (sx * 5.8, y0 + 16.2)]
            ischium = [(sx * 5.8, y0 + 16.2), (sx * 7.6, y0 + 15.2), (sx * 8.4, y0 + 12.5),
                       (hip[0] - sx * 0.8, hip[1] + 2.4)]
            self.bone(s.chain(sup_ramus, [0.95, 0.8, 0.9]), 0.95, 0.2, T, "pelvis", [(sx * 4.5, y0 + 11.0, 0.8)])
            self.bone(s.chain(inf_ramus, [0.8, 0.7, 0.9]), 0.9, 0.35, T)
            self.bone(s.chain(ischium, [1.1, 1.15, 1.0, 1.0]), 0.95, 0.55, T, "pelvis", [(sx * 7.4, y0 + 15.0, 1.0)])
            # femur
            leg = self.leg_points(side)
            tl = 15.0 * self.p.habitus
            hipc, knee, ankle = leg["hip"], leg["knee"], leg["ankle"]
            self.bone(s.ellipsoid(hipc[0], hipc[1], 2.4, 2.4, 2.4), 1.0, 0.5, T, "femur", [(hipc[0], hipc[1], 1.4)])
            gt = hipc + [sx * 5.2, 2.8]
            self.bone(s.chain([hipc, hipc + [sx * 2.6, 1.6], gt], [1.4, 1.45, 1.9]), 0.95, 0.5, T, "femur",
                      [tuple(hipc + [sx * 2.6, 1.6]) + (1.2,)])
            self.bone(s.ellipsoid(hipc[0] + sx * 2.3, hipc[1] + 6.3, 1.0, 1.1, 1.0), 0.9, 0.55, T)  # lesser troch.
            dk = knee - gt
            self.bone(s.chain([gt + [0, 1.0], gt + dk * 0.45, knee - dk * 0.1], [1.55, 1.35, 1.8]), 0.75, 0.5, tl,
                      "femur", [tuple(gt + dk * 0.2) + (1.3,)])
            for off in (-1.9, 1.9):
                self.bone(s.ellipsoid(knee[0] + off, knee[1] - 0.6, 1.9, 1.9, 2.4), 0.6, 0.5, 11.0)
            self.bone(s.ellipsoid(knee[0], knee[1] - 2.0, 2.0, 2.4, 0.9), 0.9, 0.05, 11.0)  # patella
            # tibia, fibula
            dt = ankle - knee
            self.bone(s.ellipsoid(knee[0], knee[1] + 2.2, 3.9, 1.6, 2.4, power=3.0), 0.8, 0.4, 10.5)
            self.bone(s.chain([knee + dt * 0.08, knee + dt * 0.5, ankle - dt * 0.03], [1.5, 1.15, 1.3]), 0.75, 0.3,
                      10.0)
            self.bone(s.chain([knee + [sx * 3.3, 3.2], knee + dt * 0.5 + [sx * 2.6, 0], ankle + [sx * 2.5, -0.5]],
                              [0.65, 0.5, 0.75]), 0.65, 0.6, 10.0)
            self.bone(s.ellipsoid(ankle[0] - sx * 1.6, ankle[1] + 0.3, 0.9, 1.1, 1.0), 1.0, 0.4, 8.0)
            # foot: talus/calcaneus, tarsus and metatarsal fan (toes up, slightly turned out)
            heel, toe = leg["heel"], leg["toe"]
            self.bone(s.ellipsoid(heel[0], heel[1], 2.0, 2.0, 2.0), 0.55, 0.75, 8.0)
            df = toe - heel
            nf = np.array([-df[1], df[0]]) / np.hypot(*df)
            self.bone(s.ellipsoid(*(heel + df * 0.45), 2.4, 1.8, 2.0), 0.9, 0.3, 8.0)
            for off in (-1.6, -0.8, 0.0, 0.8, 1.6):
                b0 = heel + df * 0.55 + nf * off * 0.8
                self.bone(s.chain([b0, toe + nf * off * 1.2], [0.45, 0.35]), 0.6, 0.2, 8.0)
        self.landmarks["pelvis_bottom"] = PELVIS_BOTTOM_CM

    def organs(self):
        s, p = self.s, self.p
        T = self.trunk_t(50)
        ku = 1.1 * p.kidney_uptake
        for side, cy in ((-1, 52.8), (1, 51.2)):  # left kidney higher
            self.s.add(s.ellipsoid(side * 6.2, cy, 2.9, 5.4, 2.8, angle_deg=side * -14.0), ku, 0.74, T)
        yb = self.sacrum_top + 7.5
        f = p.bladder_fill
        self.s.add(s.ellipsoid(0.0, yb, 4.0 * f, 3.3 * f, 3.6 * f), 16.0 * p.bladder_uptake, 0.3, self.trunk_t(yb))

    def build(self):
        self.soft_tissue()
        self.skull()
        self.spine()
        self.thorax()
        self.shoulder_girdle_and_arms()
        self.pelvis_and_legs()
        self.organs()


# ----------------------------------------------------------------------------------------------
# Lesions and problems
# ----------------------------------------------------------------------------------------------
LESION_SITE_WEIGHTS = {"spine": 0.34, "ribs": 0.24, "pelvis": 0.2, "femur": 0.07, "skull": 0.04,
                       "humerus": 0.03, "sternum": 0.03, "scapula": 0.02, "clavicle": 0.03}


def add_lesions(anat: Anatomy, rng: np.random.Generator, n: int) -> list[Lesion]:
    """Hot foci at skeletal sites, most often spine, ribs and pelvis; exact footprints in the mask."""
    groups = [g for g in LESION_SITE_WEIGHTS if anat.sites.get(g)]
    w = np.array([LESION_SITE_WEIGHTS[g] for g in groups])
    out = []
    for _ in range(n):
        g = groups[rng.choice(len(groups), p=w / w.sum())]
        x, y, r, frac, T = anat.sites[g][rng.integers(len(anat.sites[g]))]
        x += rng.uniform(-0.5, 0.5) * r
        y += rng.uniform(-0.5, 0.5) * r
        size = float(np.exp(rng.uniform(np.log(0.55), np.log(2.0))))
        a, b = size * rng.uniform(0.7, 1.3), size * rng.uniform(0.7, 1.3)
        contrast = float(np.exp(rng.uniform(np.log(1.5), np.log(6.0))))
        prim = anat.s.ellipsoid(x, y, a, b, min(a, b), angle_deg=rng.uniform(0, 180))
        if prim is None or not (prim[1] > 0).any():
            continue
        anat.s.add(prim, anat.b * (contrast - 1.0) * 0.6, frac, T, lesion=True)
        out.append(Lesion(g, (round(x, 2), round(y, 2)), (round(a, 2), round(b, 2)), round(contrast, 2)))
    return out


def _add_problem_source(anat: Anatomy, rng, problem: str, body_total: float) -> dict:
    """Extravasation or urine contamination: activity sized as a fraction of the body's counts."""
    s = anat.s
    info: dict = {}
    if problem == "extravasation":
        side = int(rng.choice([-1, 1]))
        arm = anat.arm_points(side)
        where = str(rng.choice(["antecubital", "forearm", "hand"], p=[0.5, 0.2, 0.3]))
        t = {"antecubital": 0.0, "forearm": 0.5}.get(where)
        c = arm["elbow"] + (arm["wrist"] - arm["elbow"]) * t if t is not None else arm["knuckle"]
        c = c + rng.normal(0, 0.5, 2)
        r = rng.uniform(0.8, 2.2)
        frac = rng.uniform(0.04, 0.15)
        parts = [(s.ellipsoid(c[0], c[1], r, r * rng.uniform(1.0, 1.8), r), 1.0)]
        # lymphatic track towards the axilla, faint
        parts.append((s.chain([c, arm["elbow"] * 0.5 + arm["shoulder"] * 0.5, arm["shoulder"] + [0, 4.0]], 0.6), 0.03))
        info = {"site": where, "side": "right" if side < 0 else "left", "fraction": round(float(frac), 3)}
        depth, T = 0.3, 8.0
    else:  # urine
        where = str(rng.choice(["groin", "thigh", "outside"], p=[0.35, 0.4, 0.25]))
        side = int(rng.choice([-1, 1]))
        leg = anat.leg_points(side)
        if where == "groin":
            c = np.array([side * rng.uniform(2.0, 6.0), anat.sacrum_top + rng.uniform(14.0, 19.0)])
            depth, T = 0.05, 16.0
        elif where == "thigh":
            c = leg["hip"] + (leg["knee"] - leg["hip"]) * rng.uniform(0.25, 0.75) + [side * rng.uniform(-2, 3), 0]
            depth, T = (0.02 if rng.random() < 0.6 else 0.98), 15.0
        else:  # on the table or sheet beside the legs
            c = leg["knee"] + [side * rng.uniform(9.0, 13.0), rng.uniform(-10.0, 15.0)]
            depth, T = 1.0, 16.0
        frac = rng.uniform(0.008, 0.03)
        parts = []
        for j in range(int(rng.integers(1, 4))):
            cj = c + rng.normal(0, 1.2, 2) * (j > 0)
            r = rng.uniform(0.5, 1.3)
            parts.append((s.ellipsoid(cj[0], cj[1], r, r * rng.uniform(0.6, 1.6), 0.3,
                                      angle_deg=rng.uniform(0, 180)), 1.0))
        info = {"site": where, "side": "right" if side < 0 else "left", "fraction": round(float(frac), 4)}
    unit = sum(w * float(p[1].sum()) * np.exp(-MU_PER_CM * depth * T) for p, w in parts if p is not None)
    if unit > 0:
        scale = frac * body_total / unit
        for p, w in parts:
            s.add(p, scale * w, depth, T)
    return info


# ----------------------------------------------------------------------------------------------
# Sampling and the study generator
# ----------------------------------------------------------------------------------------------
def sample_patient(rng: np.random.Generator, counts_min: float = 1e6, counts_max: float = 4e6) -> Patient:
    sex = str(rng.choice(["F", "M"]))
    height = float(np.clip(rng.normal(176.0 if sex == "M" else 163.0, 7.0), 148.0, 196.0))
    ab = rng.uniform(0.0, 9.0)
    return Patient(
        height_cm=height,
        width_scale=float(rng.normal(1.0 if sex == "F" else 1.05, 0.035)),
        habitus=float(np.clip(rng.lognormal(0.08, 0.1), 0.85, 1.4)),
        top_row=float(rng.uniform(25.0, min(140.0, 1024.0 - height * 10 / PIXEL_MM - 20.0))),
        center_col=float(128.0 + rng.normal(0, 2.5)),
        arm_abduction_deg=(float(ab + rng.normal(0, 1.5)), float(ab + rng.normal(0, 1.5))),
        elbow_flex_deg=(float(rng.uniform(-5, 6)), float(rng.uniform(-5, 6))),
        leg_abduction_deg=(float(rng.uniform(0.0, 3.5)), float(rng.uniform(0.0, 3.5))),
        foot_rotation_deg=(float(rng.uniform(5, 35)), float(rng.uniform(5, 35))),
        bone_ratio=float(np.exp(rng.uniform(np.log(0.7), np.log(1.5)))),
        kidney_uptake=float(rng.uniform(0.4, 2.5)),
        bladder_fill=float(rng.uniform(0.6, 1.3)),
        bladder_uptake=float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))),
        counts_target=float(np.exp(rng.uniform(np.log(counts_min), np.log(counts_max)))),
        sex=sex,
    )


def sample_n_lesions(rng: np.random.Generator) -> int:
    """No lesions in about a quarter of patients; otherwise 1-4 typically, up to ~12 (widespread)."""
    u = rng.random()
    if u < 0.25:
        return 0
    if u < 0.85:
        return int(rng.integers(1, 5))
    return int(rng.integers(5, 13))


def _truncate_position(patient: Patient, rng: np.random.Generator) -> dict:
    """Mis-positioned patient: the frame's top edge cuts through the head/shoulders/chest, or its
    bottom edge through the pelvis, so the shoulder-to-pelvis region is incomplete."""
    px_per_cm = patient.height_cm / REF_HEIGHT_CM * 10.0 / PIXEL_MM
    span = PELVIS_BOTTOM_CM - SHOULDER_TOP_CM
    if rng.random() < 0.5:
        y_cut = SHOULDER_TOP_CM + rng.uniform(0.03, 0.3) * span
        patient.top_row = float(-y_cut * px_per_cm)
        return {"missing": "top (head/shoulders)", "cut_at_cm_below_vertex": round(float(y_cut), 1)}
    y_cut = PELVIS_BOTTOM_CM - rng.uniform(0.05, 0.3) * span
    patient.top_row = float(ROWS - 1 - y_cut * px_per_cm)
    return {"missing": "bottom (pelvis/legs)", "cut_at_cm_below_vertex": round(float(y_cut), 1)}


def _crop_box(anat: Anatomy, body: np.ndarray) -> tuple[int, int, int, int]:
    s = anat.s
    top = int(np.floor(s.rows(anat.landmarks["shoulder_top"])))
    bottom = int(np.ceil(s.rows(anat.landmarks["pelvis_bottom"]))) + 1
    top, bottom = max(top, 0), min(bottom, ROWS)
    cols = np.flatnonzero(body[top:bottom].any(0)) if bottom > top else np.array([], int)
    if cols.size == 0:
        return top, bottom, 0, COLS
    return top, bottom, int(cols[0]), int(cols[-1]) + 1


def make_study(rng: np.random.Generator, problem: str = "", counts_min: float = 1e6,
               counts_max: float = 4e6) -> Study:
    """One whole-body study (ANT + POST) with truth. `problem` is '' or one of PROBLEMS."""
    if problem and problem not in PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}; expected one of {PROBLEMS}")
    patient = sample_patient(rng, counts_min, counts_max)
    info: dict = {}
    if problem == "truncated":
        info = _truncate_position(patient, rng)
    scene = Scene(patient)
    anat = Anatomy(scene)
    anat.build()
    lesions = add_lesions(anat, rng, sample_n_lesions(rng))
    if problem in ("extravasation", "urine"):
        body_total = float(scene.layers[0].sum())
        info = _add_problem_source(anat, rng, problem, body_total)
    ant, post = scene.render()
    post = post[:, ::-1]
    body = scene.thickness > 0.3
    bodies = {"ANT": body, "POST": body[:, ::-1]}
    masks = {"ANT": scene.lesion_mask, "POST": scene.lesion_mask[:, ::-1]}

    # count level: one scale for both views (same acquisition), both views kept inside the range
    target = patient.counts_target
    if problem == "low_counts":
        target = float(rng.uniform(1.0e5, 3.0e5))
        info = {"target_counts": round(target)}
        lo_hi = (0.8e5, 3.5e5)
    else:
        lo_hi = (counts_min, counts_max)
    ta, tp = float(ant.sum()), float(post.sum())
    scale = 2.0 * target / (ta + tp)
    scale = float(np.clip(scale, lo_hi[0] / min(ta, tp), lo_hi[1] / max(ta, tp)))
    expected = {"ANT": ant * scale, "POST": post * scale}

    study = Study(patient=patient, problem=problem, lesions=lesions, info=info)
    crop_ant = _crop_box(anat, bodies["ANT"])
    for v in VIEWS:
        e = expected[v].astype(np.float32)
        counts = np.minimum(rng.poisson(e.astype(np.float64)), np.iinfo(np.uint16).max).astype(np.uint16)
        crop = crop_ant if v == "ANT" else (crop_ant[0], crop_ant[1], COLS - crop_ant[3], COLS - crop_ant[2])
        study.views[v] = ViewImage(v, e, counts, masks[v].astype(np.uint8), crop, bodies[v])
    return study
