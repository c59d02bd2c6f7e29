"""The lesion segmenter's training pieces: lesion-aware windows, the imbalance-aware loss, the task."""

import numpy as np
import pytest
import torch
from conftest import run_cli

from spectbone.data.datasets import LesionDataset
from spectbone.train.losses import lesion_segmentation_loss


def _scans(n=4, size=64, seed=0):
    """Grey images with one small hot lesion each (except the last), lesion masks alike."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    images, masks = [], []
    for i in range(n):
        img = 40 + 10 * rng.random((size, size))
        mask = np.zeros((size, size), np.uint8)
        if i < n - 1:
            cy, cx = rng.integers(4, size - 4, 2)
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= 4] = 1
            img[mask > 0] = 200
        images.append(img.astype(np.float32))
        masks.append(mask)
    return np.stack(images), np.stack(masks)


def test_windows_on_lesions_and_elsewhere():
    images, masks = _scans()
    on = LesionDataset(images, masks, seed=1, patch=16, lesion_share=1.0, draws=20)
    assert len(on) == 80
    for j in range(len(on)):
        s = on[j]
        assert s["image"].shape == s["mask"].shape == (1, 16, 16)
        if j % 4 < 3:  # images with a lesion: every window holds part of it
            assert s["mask"].sum() > 0
    anywhere = LesionDataset(images, masks, seed=1, patch=16, lesion_share=0.0, draws=20)
    hits = np.mean([float(anywhere[j]["mask"].sum() > 0) for j in range(len(anywhere)) if j % 4 < 3])
    assert hits < 0.6  # a 16x16 window of a 64x64 scan rarely meets a 13-pixel lesion by chance


def test_windows_keep_image_and_mask_aligned_and_replay():
    images, masks = _scans()
    ds = LesionDataset(images, masks, seed=2, patch=32, lesion_share=0.5, draws=8)
    for j in range(len(ds)):
        s = ds[j]
        assert torch.equal(s["mask"] > 0, s["image"] * 255 > 150)  # the hot pixels are the lesion, flipped or not
    ds.set_epoch(3)
    a = [ds[j]["image"] for j in range(len(ds))]
    ds.set_epoch(3)
    assert all(torch.equal(x, ds[j]["image"]) for j, x in enumerate(a))  # a resumed epoch replays exactly
    same_image = [a[j] for j in range(0, len(ds), 4)]  # draws of image 0: their own windows
    assert len({tuple(x.flatten()[:64].tolist()) for x in same_image}) > 1


def test_whole_images_when_the_window_covers_them():
    images, masks = _scans(size=32)
    ds = LesionDataset(images, masks, seed=0, patch=32, flip=False)
    assert ds.patch is None and len(ds) == len(images)
    assert torch.equal(ds[1]["mask"][0], torch.from_numpy(masks[1]).float())


def test_lesion_loss_rewards_overlap_and_weighs_misses_above_false_alarms():
    mask = torch.zeros(2, 1, 16, 16)
    mask[0, 0, 4:8, 4:8] = 1
    perfect = lesion_segmentation_loss(20 * (2 * mask - 1), mask)
    nothing = lesion_segmentation_loss(torch.full_like(mask, -20.0), mask)
    assert float(perfect) < 1e-3 and float(nothing) > 0.9
    missed, alarm = (2 * mask - 1) * 20, (2 * mask - 1) * 20
    missed[0, 0, 4:6, 4:8] = -20  # 8 lesion pixels missed
    alarm[1, 0, 10:12, 4:8] = 20  # 8 false alarms
    assert float(lesion_segmentation_loss(missed, mask)) > float(lesion_segmentation_loss(alarm, mask))
    prob, bce = torch.sigmoid(missed), torch.nn.functional.binary_cross_entropy_with_logits(missed, mask)
    dice = 1 - (2 * (prob * mask).sum() + 2) / (prob.sum() + mask.sum() + 2)  # a = b = 1/2: soft Dice
    assert float(lesion_segmentation_loss(missed, mask, fp_weight=0.5, fn_weight=0.5)) == pytest.approx(
        float(bce + dice), rel=1e-5)


def test_segmenter_task_trains_on_windows_and_validates_on_whole_images(one_torch_thread):
    from spectbone.models import build_model
    from spectbone.train.tasks import SegmenterTask

    torch.manual_seed(0)
    images, masks = _scans(n=6, size=32)
    ds = LesionDataset(images, masks, seed=0, patch=16, draws=4)
    val = (torch.from_numpy(images / 255.0).float()[:, None], torch.from_numpy(masks).float()[:, None])
    task = SegmenterTask(build_model("segmenter", base=4), val, 3e-3, "cpu", 4)
    task.set_total_steps(60)
    before = task.validate()
    task.train(True)
    for step in range(60):
        batch = [ds[(4 * step + k) % len(ds)] for k in range(4)]
        task.step({key: torch.stack([b[key] for b in batch]) for key in ("image", "mask")})
        task.after_batch()
    task.train(False)
    after = task.validate()
    assert np.isfinite(after) and after < before
    # the threshold is the grid cut with the best pooled validation IoU, and that IoU is reproduced by scoring
    from spectbone.evaluate.score import segmentation_scores
    from spectbone.train.tasks import THRESHOLD_GRID

    threshold, iou = task.pick_threshold()
    prob = torch.sigmoid(task._val_logits())[:, 0].numpy()
    ious = [segmentation_scores(prob, masks, t)["iou"] for t in THRESHOLD_GRID]
    assert threshold in THRESHOLD_GRID and iou == pytest.approx(max(ious))
    assert iou == pytest.approx(segmentation_scores(prob, masks, threshold)["iou"])


def test_segmenter_run_records_its_windows(tiny_bone_data, tmp_path):
    from spectbone.models import load_model

    run_cli("train", "segmenter", "--preprocess-dir", tiny_bone_data, "--split", tiny_bone_data / "split.csv",
            "--out", tmp_path / "w.pt", "--ckpt-dir", tmp_path / "ckpt", "--history", tmp_path / "h.csv",
            "--curve", tmp_path / "curve", "--epochs", 1, "--samples-per-epoch", 24, "--batch-size", 4,
            "--width", 4, "--threads", 1, "--seed", 0, "--log", tmp_path / "train.log")
    _, meta = load_model(tmp_path / "w.pt")
    assert meta["patch"] == 16 and meta["lesion_share"] == 0.5 and "Tversky" in meta["loss"]
    assert 0.0 < meta["threshold"] < 1.0 and 0.0 <= meta["val_iou"] <= 1.0  # Table 8's cut, from validation
    assert "samples=24" in (tmp_path / "train.log").read_text()  # 8 training images x 3 draws
