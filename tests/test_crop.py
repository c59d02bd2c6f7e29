"""Shoulder-to-pelvis crop, resize and grey mapping, on the real NEMA NM1 scan and on the phantom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import phantom_through_preprocess

from spectbone.prep.crop import (
    CropBox,
    CropError,
    counts_per_grey,
    crop_resize,
    crop_resize_mask,
    find_crop_box,
    preprocess_view,
    to_grey,
)
from spectbone.dicom.read import read_nm_images


@pytest.fixture(scope="module")
def nm1() -> np.ndarray:
    import data_store

    path = Path(data_store.__file__).resolve().parent / "data" / "JPEG-LL.dcm"
    return read_nm_images(path)[0].counts


def test_nm1_box_spans_shoulders_to_pelvis(nm1):
    box, lm = find_crop_box(nm1)
    # NM1: head from row ~89, shoulders (clavicles, humeral heads) ~195-210, bladder ~420,
    # thighs separate ~500; the arms lie along the trunk, so the outline spans nearly all columns
    assert 85 <= lm.head_top <= 95
    assert 180 <= box.top <= 205
    assert 470 <= box.bottom <= 505
    assert box.left < 20 and box.right > 236
    assert lm.crotch_found
    # the bladder (hottest spot of the pelvis) is inside the box
    r, c = np.unravel_index(np.argmax(nm1[300:600]), nm1[300:600].shape)
    assert box.top <= r + 300 < box.bottom


def test_grey_mapping_and_inverse(nm1):
    grey, box, cpg, _ = preprocess_view(nm1, size=256)
    assert grey.shape == (256, 256) and grey.dtype == np.float32
    assert grey.min() >= 0 and grey.max() == pytest.approx(255.0)
    resized = crop_resize(nm1, box, 256)
    # 99.5th percentile maps to 255: about 0.5% of pixels saturate
    assert 0.002 <= np.mean(resized >= cpg * 255.0) <= 0.008
    below = resized < cpg * 255.0
    np.testing.assert_allclose(grey[below] * cpg, resized[below], rtol=1e-5, atol=1e-4)
    assert cpg == pytest.approx(np.percentile(resized, 99.5) / 255.0)


def test_resize_is_anisotropic_and_mask_keeps_area():
    img = np.zeros((1024, 256), np.float32)
    img[300:600, 28:228] = 10.0
    box = CropBox(300, 600, 28, 228)
    out = crop_resize(img, box, 128)
    assert out.shape == (128, 128)
    np.testing.assert_allclose(out, 10.0, rtol=1e-5)
    mask = np.zeros((1024, 256), np.uint8)
    mask[400:430, 100:120] = 1
    m = crop_resize_mask(mask, box, 128)
    # area scales by (128/300) * (128/200)
    assert m.sum() == pytest.approx(30 * 20 * (128 / 300) * (128 / 200), rel=0.25)
    assert CropBox(0, 10, 0, 10).iou(CropBox(0, 10, 5, 15)) == pytest.approx(50 / 150)


def test_crop_errors_are_explained():
    with pytest.raises(CropError, match="no counts"):
        find_crop_box(np.zeros((1024, 256), np.float32))
    with pytest.raises(CropError):
        counts_per_grey(np.zeros((8, 8), np.float32))
    assert to_grey(np.array([0.0, 5.0, 100.0]), 0.1).tolist() == [0.0, 50.0, 255.0]


def test_head_cut_off_is_not_cropped(nm1):
    cut = nm1.copy()
    cut[:240] = 0  # scan started at the chest: no head, no neck-to-shoulder jump
    with pytest.raises(CropError, match="shoulder|head"):
        find_crop_box(cut)


def test_phantom_boxes_match_landmarks(tmp_path):
    """Clean phantom studies: IoU >= 0.9 with the phantom's own shoulder-to-pelvis box on >= 95%."""
    cohort, truth, conv, pre = phantom_through_preprocess(tmp_path, n_patients=14, seed=314, size=128, workers=2)
    crop_eval = pd.read_csv(pre / "crop_eval.csv", keep_default_na=False)
    assert len(crop_eval) == 28 and (crop_eval["problem"] == "").all()
    assert (crop_eval["iou"] >= 0.9).mean() >= 0.95
    table = pd.read_csv(pre / "preprocess.csv", keep_default_na=False)
    for rec in table.itertuples():
        grey = np.load(pre / "images" / f"{rec.image_id}.npy")
        assert grey.shape == (128, 128) and grey.dtype == np.float32
        with np.load(pre / "truth" / f"{rec.image_id}.npz") as z:
            assert z["clean"].shape == (128, 128) and z["lesions"].dtype == np.uint8
            assert 0 <= z["clean"].min() and z["clean"].max() <= 255
            # the noisy grey image and its noiseless truth agree up to Poisson noise
            assert np.sqrt(np.mean((grey - z["clean"]) ** 2)) < 20
