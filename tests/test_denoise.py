"""`spectbone denoise` on the real NEMA NM1 scan: a derived NM DICOM that pydicom reads back."""

import numpy as np
import pydicom
import pytest

from conftest import run_cli
from spectbone.dicom.nm1 import nm1_path


@pytest.fixture(scope="module")
def weights(tiny_bone_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    common = ["--preprocess-dir", tiny_bone_data, "--split", tiny_bone_data / "split.csv", "--epochs", 1,
              "--samples-per-epoch", 16, "--batch-size", 4, "--width", 8, "--threads", 1]
    for task, name, extra in [("estimator", "estimator", []),
                              ("denoiser", "emanet", ["--model", "emanet", "--arch", "full", "--lam", "0"])]:
        run_cli("train", task, *common, *extra, "--out", out / f"{name}.pt", "--ckpt-dir", out / f"ckpt_{name}",
                "--history", out / f"{name}.csv", "--curve", out / name)
    return out


def test_denoise_nm1_keeps_geometry(weights, tmp_path):
    src = pydicom.dcmread(nm1_path())
    target = tmp_path / "nm1_denoised.dcm"
    run_cli("denoise", nm1_path(), "-o", target, "--model", weights / "emanet.pt", "--estimator", weights / "estimator.pt",
            "--log", tmp_path / "denoise.log")
    out = pydicom.dcmread(target)
    assert (out.Rows, out.Columns) == (src.Rows, src.Columns) == (1024, 256)
    assert [float(v) for v in out.PixelSpacing] == [float(v) for v in src.PixelSpacing]
    assert out.ImageType[0] == "DERIVED" and "EMANet" in out.DerivationDescription
    assert out.SOPInstanceUID != src.SOPInstanceUID and out.SeriesInstanceUID != src.SeriesInstanceUID
    counts = out.pixel_array.astype(np.float64) * float(out.get("RescaleSlope", 1))
    assert counts.shape == (1024, 256) and np.isfinite(counts).all() and counts.sum() > 0
    assert target.with_suffix(".png").exists()
    log = (tmp_path / "denoise.log").read_text()
    assert str(src.PatientName) not in log


def test_denoise_folder_with_given_level_and_bad_file(weights, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.dcm").write_bytes(nm1_path().read_bytes())
    (folder / "broken.dcm").write_text("not a DICOM file")
    run_cli("denoise", folder, "-o", tmp_path / "out", "--model", weights / "emanet.pt", "--level", "10")
    written = sorted((tmp_path / "out").glob("*.dcm"))
    assert len(written) == 1
    assert pydicom.dcmread(written[0]).Rows == 1024
