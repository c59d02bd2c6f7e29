"""Rendering: projected-thickness primitives binned by distance to each detector, then collimator
blur, scatter halo and attenuation per view (the camera side of the phantom)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import polygon as draw_polygon

from spectbone.phantom.geometry import COLS, PIXEL_MM, REF_HEIGHT_CM, ROWS
from spectbone.phantom.patient import Patient


MU_PER_CM = 0.11  # broad-beam linear attenuation of 140 keV photons in soft tissue
COLLIMATOR_GAP_CM = 3.0  # skin-to-collimator distance in a whole-body sweep
LAYER_DISTANCES_CM = np.array([2.0, 8.0, 15.0, 24.0])  # depth layers for the distance-dependent blur
SCATTER_FRACTION = 0.12  # share of the counts spread into a broad halo
SCATTER_SIGMA_PX = 9.0
# A lesion pixel is outlined in a view only where the lesion raises that view's expected counts by at
# least this share over everything else there: a focus deep on the far side, attenuated and blurred
# into the bone behind it, is not drawn in that view (a reader could not outline it either).
LESION_VISIBLE_CONTRAST = 0.25


def collimator_sigma_px(distance_cm: float | np.ndarray) -> np.ndarray:
    """Gaussian sigma (pixels) of a LEHR-like system response at `distance_cm` from the collimator face.

    FWHM(z) = sqrt(R_i^2 + (a + b z)^2) with R_i = 3.8 mm intrinsic, a = 1.6 mm, b = 0.045 (z in mm):
    about 7 mm at 10 cm and 11 mm at 20 cm, close to published LEHR figures.
    """
    z_mm = 10.0 * np.asarray(distance_cm, dtype=float)
    fwhm = np.sqrt(3.8**2 + (1.6 + 0.045 * z_mm) ** 2)
    return fwhm / 2.3548 / PIXEL_MM



class Scene:
    """Accumulates activity projections for ANT and POST, binned by distance to each detector."""

    def __init__(self, patient: Patient):
        self.p = patient
        k = patient.height_cm / REF_HEIGHT_CM
        self.px_per_cm_y = k * 10.0 / PIXEL_MM
        self.px_per_cm_x = k * patient.width_scale * 10.0 / PIXEL_MM
        self.layers = np.zeros((2, len(LAYER_DISTANCES_CM), ROWS, COLS), dtype=np.float32)
        self.lesion_layers = np.zeros_like(self.layers)  # the lesions' share of `layers`, for per-view masks
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
            self._deposit(self.layers, v, sl, contrib, dist + COLLIMATOR_GAP_CM)
            if lesion:
                self._deposit(self.lesion_layers, v, sl, contrib, dist + COLLIMATOR_GAP_CM)
        return total_ant

    @staticmethod
    def _deposit(layers, v, sl, contrib, dist):
        pos = np.interp(dist, LAYER_DISTANCES_CM, np.arange(len(LAYER_DISTANCES_CM)))
        if np.ndim(pos) == 0:
            lo = int(np.floor(pos))
            w = float(pos - lo)
            layers[v, lo][sl] += contrib * (1 - w)
            if w > 0:
                layers[v, lo + 1][sl] += contrib * w
            return
        for li in range(len(LAYER_DISTANCES_CM)):
            w = np.clip(1.0 - np.abs(pos - li), 0.0, None)
            if w.any():
                layers[v, li][sl] += contrib * w

    def visible_lesion_masks(self, ant: np.ndarray, post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-view lesion masks (detector orientation, like :meth:`render`'s images ``ant``, ``post``).

        The lesions' footprint where, in that view, the lesions' own rendered counts reach
        LESION_VISIBLE_CONTRAST of the rest of the image there.
        """
        lesion_ant, lesion_post = self.render(self.lesion_layers)
        return tuple(self.lesion_mask & (lesion >= LESION_VISIBLE_CONTRAST * np.maximum(image - lesion, 1e-6))
                     for lesion, image in [(lesion_ant, ant), (lesion_post, post)])

    def render(self, layers: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Blur each distance layer with its collimator response, sum, add the scatter halo."""
        layers = self.layers if layers is None else layers
        sig = collimator_sigma_px(LAYER_DISTANCES_CM)  # layer distances are to the collimator face
        out = []
        for v in range(2):
            img = np.zeros((ROWS, COLS), np.float32)
            for li, s in enumerate(sig):
                if layers[v, li].any():
                    img += ndi.gaussian_filter(layers[v, li], s, mode="constant", truncate=3.5)
            halo = ndi.gaussian_filter(img, SCATTER_SIGMA_PX, mode="constant", truncate=3.0)
            out.append((1 - SCATTER_FRACTION) * img + SCATTER_FRACTION * halo)
        return out[0], out[1]

