"""The skeleton, organs and soft tissue of one patient, laid out in centimetres (reference 170 cm)."""

from __future__ import annotations

import numpy as np

from spectbone.phantom.geometry import COLS, ROWS
from spectbone.phantom.scene import COLLIMATOR_GAP_CM, MU_PER_CM, Scene

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
        self.kidneys: list[tuple[float, float]] = []
        self.vertebrae: list[tuple[str, float, float, float, float]] = []  # region, centre y, height, width, body T  # centres (cm), for benign-uptake and visibility checks
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
            s._deposit(s.layers, v, full, contrib, T / 2 + COLLIMATOR_GAP_CM)

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
            self.vertebrae.append((name, cy, h, w, T))
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
        # ribs: parametric loops from the transverse process, lateral, to the costochondral junction.
        # Real ribs are not stripes: each rib (and side) has its own level, curvature, width, uptake
        # and a slight wave, drawn per patient, so spacing and brightness vary as on a real scan.
        rng = np.random.default_rng(self.p.variation_seed)
        theta = np.linspace(0.0, np.pi, 17)
        tilt = rng.normal(0.0, 0.35)  # cm the left rib cage sits lower than the right (scoliosis, posture)
        gaps = 2.12 * np.clip(1.0 + rng.normal(0.0, 0.12, 12), 0.75, 1.3)
        levels = 29.4 + np.concatenate([[0.0], np.cumsum(gaps[1:])]) * (11 * 2.12) / gaps[1:].sum()
        self.rib_paths: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for k in range(12):
            half0 = float(np.interp(k, [0, 1, 2, 4, 6, 8, 10, 11], [6.0, 9.5, 11.8, 13.8, 14.6, 14.4, 13.0, 11.0]))
            drop0 = float(np.interp(k, [0, 3, 6, 9, 11], [4.0, 9.0, 11.0, 10.0, 5.0]))
            end = float(np.interp(k, [0, 6, 9, 10, 11], [np.pi, np.pi * 0.88, np.pi * 0.75, np.pi * 0.62, np.pi * 0.5]))
            th = theta[theta <= end]
            x0 = 2.2 + 0.05 * k  # transverse process
            xa = 3.2 + 0.55 * k  # costochondral junction (cartilage is not seen)
            depth = 0.5 + 0.42 * np.cos(th)  # 0.92 posterior .. 0.08 anterior
            for side in (-1, 1):
                yk = levels[k] + rng.normal(0.0, 0.18) + (tilt if side > 0 else 0.0) * (0.3 + 0.7 * k / 11)
                half = half0 * (1.0 + rng.normal(0.0, 0.035))
                drop = drop0 * (1.0 + rng.normal(0.0, 0.12))
                x = np.where(th <= np.pi / 2, x0 + (half - x0) * np.sin(th), xa + (half - xa) * np.sin(th))
                # posterior arc slopes down laterally, anterior arc continues down towards the sternum
                post_drop = drop * rng.uniform(0.35, 0.55)
                yy = np.where(th <= np.pi / 2, yk + post_drop * np.sin(th),
                              yk + post_drop + (drop - post_drop) * (-np.cos(th)))
                yy = yy + rng.uniform(0.1, 0.35) * np.sin(rng.uniform(1.5, 3.5) * th + rng.uniform(0, 2 * np.pi))
                radius = np.where(th < np.pi / 2, 0.62, 0.52) * np.clip(1.0 + rng.normal(0.0, 0.12), 0.75, 1.3)
                radius = radius * (1.0 + 0.12 * np.sin(rng.uniform(2, 5) * th + rng.uniform(0, 2 * np.pi)))
                uptake = 0.95 * np.clip(1.0 + rng.normal(0.0, 0.15), 0.65, 1.4)
                pts = np.stack([side * x, yy], 1)
                self.rib_paths[(k, side)] = (pts, depth)
                pr = s.chain(pts, radius)
                if pr is None:
                    continue
                dfrac = np.interp(pr[2], np.arange(len(depth)), depth)
                self.s.add((pr[0], pr[1]), self.b * uptake, dfrac, T)
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
        T = self.trunk_t(59)
        # kidneys: renal excretion of MDP shows them faintly, posterior (well below the lumbar spine,
        # above the soft tissue beside them); the collecting system a little hotter than the cortex.
        # At T12-L2, so their lower poles clear the rib cage as on a real posterior view.
        ku = 1.6 * p.kidney_uptake
        for side, cy in ((-1, 60.0), (1, 58.6)):  # left kidney higher
            self.kidneys.append((side * 6.2, cy))
            self.s.add(s.ellipsoid(side * 6.2, cy, 2.9, 5.4, 2.8, angle_deg=side * -14.0), ku, 0.74, T)
            self.s.add(s.ellipsoid(side * 5.2, cy + 0.4, 1.2, 1.8, 1.0), 1.4 * ku, 0.72, T)
        yb = self.sacrum_top + 7.5
        f = p.bladder_fill
        self.s.add(s.ellipsoid(0.0, yb, 4.0 * f, 3.3 * f, 3.6 * f), 26.0 * p.bladder_uptake, 0.3, self.trunk_t(yb))

    def build(self):
        self.soft_tissue()
        self.skull()
        self.spine()
        self.thorax()
        self.shoulder_girdle_and_arms()
        self.pelvis_and_legs()
        self.organs()


