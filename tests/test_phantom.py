"""The whole-body bone-scan phantom: anatomy, physics direction, lesions, problems, speed, seeding."""

from __future__ import annotations


import numpy as np
import pytest

from spectbone import phantom


def _study(seed: int, problem: str = "") -> phantom.Study:
    return phantom.make_study(np.random.default_rng(seed), problem)


@pytest.fixture(scope="module")
def clean() -> phantom.Study:
    # the first seed whose patient has lesions, so masks can be checked
    for seed in range(50):
        st = _study(seed)
        if st.lesions:
            return st
    raise AssertionError("no lesions in 50 patients")


def test_shapes_types_and_count_level(clean):
    for v in phantom.VIEWS:
        vi = clean.views[v]
        assert vi.counts.shape == vi.expected.shape == vi.lesions.shape == (1024, 256)
        assert vi.counts.dtype == np.uint16 and vi.expected.dtype == np.float32 and vi.lesions.dtype == np.uint8
        assert vi.expected.min() >= 0
        total = float(vi.counts.sum(dtype=np.int64))
        assert 0.99e6 <= total <= 4.01e6
        # Poisson around the expected image: totals agree to a few standard deviations
        assert abs(total - vi.expected.sum(dtype=np.float64)) < 6 * np.sqrt(total)


def test_body_covers_a_realistic_share_and_is_centred(clean):
    body = clean.views["ANT"].body
    assert 0.25 < body.mean() < 0.6
    rows = np.flatnonzero(body.any(1))
    assert 600 < rows[-1] - rows[0] < 900  # 1.4 to 2 m tall at 2.26 mm
    cols = np.flatnonzero(body.any(0))
    assert abs((cols[0] + cols[-1]) / 2 - 128) < 20
    # counts live inside the body: at most a few percent (scatter halo) outside it
    e = clean.views["ANT"].expected
    assert e[~body].sum() / e.sum() < 0.08


def test_lesions_have_masks_inside_the_body(clean):
    outlined = []
    for v in phantom.VIEWS:
        vi = clean.views[v]
        outlined.append(vi.lesions.astype(bool))
        assert vi.body[outlined[-1]].all()
    assert outlined[0].any() or outlined[1].any()
    # each view outlines only the lesions it shows: the views' masks (mirrored to one orientation) lie in
    # the same footprint but need not be equal, and each covers pixels where its lesions stand out
    ant, post_mirrored = outlined[0], outlined[1][:, ::-1]
    assert not np.array_equal(ant, post_mirrored) or ant.sum() == post_mirrored.sum()
    for v, mask in zip(phantom.VIEWS, outlined):
        if mask.any():
            expected = clean.views[v].expected
            assert expected[mask].mean() > expected[clean.views[v].body & ~mask].mean()
    sites = {les.site for les in clean.lesions}
    assert sites <= set(phantom.LESION_SITE_WEIGHTS)


def test_a_lesion_hidden_in_one_view_is_not_outlined_there():
    """A focus deep behind the spine is attenuated and blurred into the bone in the near view only."""
    rng = np.random.default_rng(0)
    scene = phantom.Scene(phantom.sample_patient(rng))
    anat = phantom.Anatomy(scene)
    anat.build()
    phantom.add_lesions(anat, rng, 12)
    ant, post = scene.render()
    mask_ant, mask_post = scene.visible_lesion_masks(ant, post)
    assert (mask_ant <= scene.lesion_mask).all() and (mask_post <= scene.lesion_mask).all()
    assert mask_ant.sum() != mask_post.sum()  # the views differ in what they show


def test_lesion_sites_favour_spine_ribs_pelvis():
    rng = np.random.default_rng(0)
    scene = phantom.Scene(phantom.sample_patient(rng))
    anat = phantom.Anatomy(scene)
    anat.build()
    lesions = phantom.add_lesions(anat, rng, 300)
    sites = [les.site for les in lesions]
    axial = sum(s in ("spine", "ribs", "pelvis") for s in sites) / len(sites)
    assert axial > 0.65
    assert all(1.5 <= les.contrast <= 6.0 for les in lesions)


def test_posterior_brighter_at_spine_anterior_at_sternum(clean):
    p = clean.patient
    scene = phantom.Scene(p)
    c = int(round(p.center_col))
    ant = clean.views["ANT"].expected
    post = clean.views["POST"].expected[:, ::-1]  # back into the anterior geometry
    lumbar = slice(int(scene.rows(58)), int(scene.rows(68)))
    sternum = slice(int(scene.rows(34)), int(scene.rows(44)))
    spine_ant, spine_post = ant[lumbar, c - 2:c + 3].mean(), post[lumbar, c - 2:c + 3].mean()
    st_ant, st_post = ant[sternum, c - 2:c + 3].mean(), post[sternum, c - 2:c + 3].mean()
    assert spine_post > 1.3 * spine_ant
    assert st_ant / st_post > 1.3 * (spine_ant / spine_post)
    # bladder: a hot organ, anterior in the pelvis
    yb = phantom.SACRUM_TOP_CM + 7.5
    bladder = slice(int(scene.rows(yb - 1.5)), int(scene.rows(yb + 1.5)))
    bl_ant, bl_post = ant[bladder, c - 3:c + 4].mean(), post[bladder, c - 3:c + 4].mean()
    assert bl_ant > 2 * spine_ant and bl_ant > bl_post


def test_crop_box_brackets_shoulders_to_pelvis(clean):
    top, bottom, left, right = clean.views["ANT"].crop
    p = clean.patient
    scene = phantom.Scene(p)
    assert top < scene.rows(30) and bottom > scene.rows(80)  # clavicles and pubis inside
    assert top > scene.rows(18) and bottom < scene.rows(95)  # chin and thighs outside
    assert 0 <= left < right <= 256
    ptop, pbottom, pleft, pright = clean.views["POST"].crop
    assert (ptop, pbottom) == (top, bottom) and (pleft, pright) == (256 - right, 256 - left)


def test_collimator_blur_grows_with_distance():
    s = phantom.collimator_sigma_px(np.array([0.0, 10.0, 20.0]))
    assert np.all(np.diff(s) > 0)
    fwhm_mm_at_10cm = s[1] * 2.3548 * phantom.PIXEL_MM
    assert 6.0 < fwhm_mm_at_10cm < 9.0


def test_same_seed_same_study():
    a = _study(11)
    b = _study(11)
    c = _study(12)
    for v in phantom.VIEWS:
        assert np.array_equal(a.views[v].counts, b.views[v].counts)
        assert np.array_equal(a.views[v].expected, b.views[v].expected)
    assert not np.array_equal(a.views["ANT"].counts, c.views["ANT"].counts)


def test_problem_studies_show_their_problem():
    ex = _study(21, "extravasation")
    e = ex.views["ANT"].expected
    body = ex.views["ANT"].body
    assert e.max() > 4 * np.percentile(e[body], 99)
    r, c = np.unravel_index(np.argmax(e), e.shape)
    assert abs(c - ex.patient.center_col) > 25  # on an arm, beside the trunk
    assert ex.info["site"] in ("antecubital", "forearm", "hand")

    ur = _study(22, "urine")
    assert ur.info["site"] in ("groin", "thigh", "outside") and ur.info["fraction"] >= 0.005

    low = _study(23, "low_counts")
    assert all(low.views[v].counts.sum() < 3.5e5 for v in phantom.VIEWS)

    for seed in (24, 25, 26, 27):
        tr = _study(seed, "truncated")
        body = tr.views["ANT"].body
        assert body[0].any() or body[-1].any()  # the body runs off the frame
        top, bottom, _, _ = tr.views["ANT"].crop
        assert top == 0 or bottom == 1024

    with pytest.raises(ValueError):
        _study(1, "motion")
