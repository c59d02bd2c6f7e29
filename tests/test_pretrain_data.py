"""Pretraining data: the Mayo reader on a fake Mayo-layout folder, bundled natural images, and the
`spectbone pretrain-data` verb end to end for both sources."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from spectbone.cli import main
from spectbone.data.mayo import classify_dose, find_mayo_pairs, iter_mayo_pairs, read_hu
from spectbone.data.natural_images import bundled_images, load_folder, random_crops

SIZE = 48


def _write_ct(path: Path, patient: str, z: float, hu: np.ndarray, series: str, series_uid: str,
              with_position: bool = True) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientID = patient
    ds.SeriesInstanceUID = series_uid
    ds.SeriesDescription = series
    ds.SliceThickness = 1.0
    if with_position:
        ds.ImagePositionPatient = [-250.0, -250.0, z]
    ds.SliceLocation = z
    ds.Rows, ds.Columns = hu.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = np.clip(hu + 1024, 0, 4095).astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _slice_hu(patient_index: int, z: float, dose: str) -> np.ndarray:
    """Body disc with a z- and patient-coded value, so pairs can be checked; quarter dose noisier."""
    rng = np.random.default_rng([patient_index, int(abs(z) * 10), dose == "full"])
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] - SIZE / 2
    hu = np.where(np.hypot(xx, yy) < SIZE * 0.45, 300.0 * patient_index + 20.0 * z, -1000.0)
    return hu + rng.normal(0, 5 if dose == "full" else 10, hu.shape)


@pytest.fixture()
def mayo_root(tmp_path) -> Path:
    """Grand-Challenge layout for L067 (folder names), TCIA layout for L096 (SeriesDescription)."""
    root = tmp_path / "mayo"
    for pi, patient in enumerate(["L067", "L096"], start=1):
        for dose in ("full", "quarter"):
            uid = generate_uid()
            for zi, z in enumerate([-10.0, -11.0, -12.0]):
                if patient == "L067":
                    folder = root / patient / f"{dose}_1mm"
                    name = f"{patient}_{'FD' if dose == 'full' else 'QD'}_1_1.CT.{zi:04d}.IMA"
                    series = "Abdomen 1.0 B30f"  # the folder decides
                else:
                    series_dir = "1-Full Dose Images" if dose == "full" else "2-Low Dose Images"
                    folder = root / patient / "study" / series_dir
                    name = f"1-{zi + 1:03d}.dcm"
                    series = "Full Dose Images" if dose == "full" else "Low Dose Images"
                _write_ct(folder / name, patient, z, _slice_hu(pi, z, dose), series, uid)
    (root / "README.txt").write_text("not DICOM")
    return root


def test_classify_dose():
    assert classify_dose("full_1mm") == "full"
    assert classify_dose("L067_QD_1_1.CT.0001.IMA") == "quarter"
    assert classify_dose("2-Low Dose Images-12345") == "quarter"
    assert classify_dose("Full Dose Images") == "full"
    assert classify_dose("L067") is None
    assert classify_dose("fdg pet") is None


def test_mayo_reader_pairs_slices(mayo_root):
    pairs = find_mayo_pairs(mayo_root)
    assert len(pairs) == 6
    assert sorted({p.patient for p in pairs}) == ["L067", "L096"]
    for full, quarter, pair in iter_mayo_pairs(mayo_root):
        assert full.shape == quarter.shape == (SIZE, SIZE)
        pi = 1 if pair.patient == "L067" else 2
        expected = 300.0 * pi + 20.0 * pair.z  # slices 20 HU apart
        body = full > -500
        assert np.median(full[body]) == pytest.approx(expected, abs=2)  # rescale to HU applied
        assert np.median(quarter[body]) == pytest.approx(expected, abs=3)  # same slice
        assert np.std((quarter - full)[body]) > 8  # quarter is the noisier one
        assert "full" in str(pair.full_path).lower() or "fd" in pair.full_path.name.lower()
    assert read_hu(pairs[0].full_path).min() >= -1024


def test_mayo_reader_falls_back_to_slice_location(tmp_path):
    root = tmp_path / "mayo"
    for dose in ("full", "quarter"):
        for z in (5.0, 6.0):
            _write_ct(root / "P1" / f"{dose}_3mm" / f"{z}.dcm", "P1", z, _slice_hu(1, z, dose), "", "1.2",
                      with_position=False)
    pairs = find_mayo_pairs(root)
    assert [p.z for p in pairs] == [5.0, 6.0]
    assert all(p.full_path.parent.name == "full_3mm" for p in pairs)


def test_mayo_reader_rejects_folder_without_pairs(tmp_path):
    root = tmp_path / "only_full"
    for zi, z in enumerate([1.0, 2.0]):
        _write_ct(root / "L001" / "full_1mm" / f"{zi}.dcm", "L001", z, _slice_hu(1, z, "full"),
                  "x", "1.2.3")
    with pytest.raises(ValueError, match="no full-dose/quarter-dose slice pairs"):
        find_mayo_pairs(root)
    with pytest.raises(ValueError, match="does not exist"):
        find_mayo_pairs(tmp_path / "missing")


def test_bundled_natural_images_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    images = bundled_images()
    assert len(images) >= 10
    for name, img in images.items():
        assert img.ndim == 2 and img.min() >= 0 and img.max() <= 1, name
        assert img.std() > 0.02, name
    crops, names = random_crops(images, 50, 64, seed=1)
    assert crops.shape == (50, 64, 64) and crops.dtype == np.float32
    assert crops.mean(axis=(1, 2)).min() > 0.02  # no black crops: the noise gain needs mean > 0
    again, _ = random_crops(images, 50, 64, seed=1)
    assert np.array_equal(crops, again) and set(names) <= set(images)


def test_folder_reader(tmp_path):
    import skimage.io

    rng = np.random.default_rng(0)
    (tmp_path / "a").mkdir()
    skimage.io.imsave(tmp_path / "a" / "x.png", (rng.uniform(0, 255, (40, 50, 3))).astype(np.uint8))
    skimage.io.imsave(tmp_path / "y.jpg", (rng.uniform(0, 255, (30, 30))).astype(np.uint8))
    (tmp_path / "notes.txt").write_text("skip me")
    images = load_folder(tmp_path)
    assert sorted(images) == ["a/x.png", "y.jpg"]
    crops, _ = random_crops(images, 3, 32, seed=0)  # y.jpg is upscaled to fit
    assert crops.shape == (3, 32, 32)
    with pytest.raises(ValueError):
        load_folder(tmp_path / "a" / "empty_nowhere")


def _run(tmp_path, *args) -> dict:
    out = tmp_path / "pairs.npz"
    assert main(["pretrain-data", *args, "--out", str(out), "--log", str(tmp_path / "log.txt")]) == 0
    assert (tmp_path / "log.txt").read_text()
    with np.load(out, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_verb_simulated_ct(tmp_path):
    d = _run(tmp_path, "--source", "ct", "--n-pairs", "3", "--size", "64", "--seed", "7")
    assert d["clean"].shape == d["noisy"].shape == (3, 64, 64)
    assert d["clean"].dtype == d["noisy"].dtype == d["level"].dtype == np.float32
    for k in ("clean", "noisy"):
        assert d[k].min() >= 0 and d[k].max() <= 1
    rms = np.sqrt(((d["noisy"] - d["clean"]).reshape(3, -1) ** 2).mean(1)) * 255
    assert np.allclose(d["level"], rms, rtol=1e-4)
    assert np.all((d["level"] > 1) & (d["level"] < 60))
    assert str(d["source"]).startswith("simulated CT")
    assert d["window"].tolist() == [-160.0, 240.0]
    again = _run(tmp_path, "--source", "ct", "--n-pairs", "3", "--size", "64", "--seed", "7")
    assert np.array_equal(again["noisy"], d["noisy"])


def test_verb_mayo(tmp_path, mayo_root):
    d = _run(tmp_path, "--source", "ct", "--mayo-dir", str(mayo_root), "--n-pairs", "8", "--size", "32",
             "--seed", "0", "--window", "-1000", "1000")
    assert d["clean"].shape == d["noisy"].shape == (8, 32, 32)  # 6 pairs reused with new crops
    assert str(d["source"]) == f"Mayo: {mayo_root}"
    assert np.all(d["level"] > 0) and d["origin"].shape == (8,)


def test_verb_natural(tmp_path):
    d = _run(tmp_path, "--source", "natural", "--n-pairs", "4", "--size", "40", "--seed", "1")
    assert d["clean"].shape == (4, 40, 40) and d["clean"].dtype == np.float32
    assert "noisy" not in d and "level" not in d
    assert 0 <= d["clean"].min() and d["clean"].max() <= 1
    assert str(d["source"]) == "skimage/pywt bundled images"
