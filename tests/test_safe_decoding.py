"""Safe decoding (issue #11 b), on real crafted files (no mocks): size limits before anything is
inflated or decoded, corrupt compressed streams rejected, a full disk fails loudly without partial
files, and a missing truth file is an error."""

from __future__ import annotations

import copy
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_frames
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

from conftest import phantom_through_preprocess

from spectbone.cli import main
from spectbone.dicom.read import DicomRejected, read_nm_images
from spectbone.dicom.safety import DecodeLimits
from spectbone.noise.augment import load_truth
from spectbone.prep.convert import list_input_files

NM1_TOTAL = 3_596_452
KEY = "test-only-key-0123456789abcdef"
BOMB_MB = 600


@pytest.fixture(autouse=True)
def id_key(monkeypatch):
    monkeypatch.setenv("SPECTBONE_ID_KEY", KEY)


@pytest.fixture(scope="module")
def nm1() -> pydicom.Dataset:
    import data_store

    ds = pydicom.dcmread(Path(data_store.__file__).resolve().parent / "data" / "JPEG-LL.dcm")
    ds.decompress()
    return ds


def _as_nm(ds: pydicom.Dataset) -> pydicom.Dataset:
    ds.Modality = "NM"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def deflate_bomb(path: Path, nm1: pydicom.Dataset, inflated_mb: int = BOMB_MB, preamble: bool = True) -> None:
    """A deflated NM file whose pixel data inflates to `inflated_mb` MiB of zeros (written streaming)."""
    ds = copy.deepcopy(nm1)
    del ds.PixelData
    side = int((inflated_mb * 2**20 / 2) ** 0.5)
    ds.Rows = ds.Columns = side
    ds.SOPInstanceUID = generate_uid()
    meta = copy.deepcopy(nm1.file_meta)
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    write_file_meta_info(head, meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    n_bytes = side * side * 2
    body.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, n_bytes))
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    with open(path, "wb") as fh:
        fh.write((b"\0" * 128 + b"DICM" if preamble else b"") + head.getvalue())
        fh.write(deflater.compress(body.getvalue()))
        zeros = bytes(2**20)
        for _ in range(n_bytes // len(zeros)):
            fh.write(deflater.compress(zeros))
        fh.write(deflater.compress(bytes(n_bytes % len(zeros))))
        fh.write(deflater.flush())


def jpeg_ls(cut: float | None = None, declare: tuple[int, int] | None = None) -> pydicom.Dataset:
    """pydicom's JPEG-LS lossless test image as NM; the frame cut to `cut` of its length, or its
    stream's frame header changed to declare `declare` = (rows, cols)."""
    ds = _as_nm(pydicom.dcmread(get_testdata_file("MR_small_jpeg_ls_lossless.dcm")))
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    if cut is not None:
        frame = frame[: int(len(frame) * cut)]
    if declare is not None:
        sof = frame.index(b"\xff\xf7")
        frame[sof + 5:sof + 9] = struct.pack(">HH", *declare)
    ds.PixelData = encapsulate([bytes(frame)])
    return ds


def test_deflate_bomb_rejected_before_inflating(nm1, tmp_path):
    bomb = tmp_path / "bomb.dcm"
    deflate_bomb(bomb, nm1)
    assert bomb.stat().st_size < 2 * 2**20  # a small file...
    with pytest.raises(DicomRejected, match="inflates to more than"):
        read_nm_images(bomb)  # ...that would inflate to 600 MiB
    deflate_bomb(tmp_path / "bare.dcm", nm1, preamble=False)  # no preamble: read with force, still bounded
    with pytest.raises(DicomRejected, match="inflates to more than"):
        read_nm_images(tmp_path / "bare.dcm")
    # the same in a separate process, watching its peak memory: nothing huge was allocated. VmHWM is the
    # process's own peak (ru_maxrss would carry the parent's over fork + exec, pytest's peak included)
    code = ("import sys; from spectbone.dicom.read import read_nm_images, DicomRejected\n"
            "try:\n    read_nm_images(sys.argv[1])\nexcept DicomRejected as e:\n    print('rejected:', e)\n"
            "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0].split()[1]\n"
            "print('maxrss_mb', int(peak) / 1024)")
    proc = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True)
    assert "rejected:" in proc.stdout, proc.stderr
    assert float(proc.stdout.split("maxrss_mb")[1]) < 250  # far below the 600 MiB it would inflate to


def test_header_beyond_limits_rejected_before_decoding(nm1, tmp_path):
    ds = copy.deepcopy(nm1)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 60000, 60000, 100  # 670 GiB promised, 0.5 MiB stored
    ds.save_as(tmp_path / "huge.dcm", enforce_file_format=True)
    with pytest.raises(DicomRejected, match="beyond the decoding limits.*rows 60,000 > 4,096"):
        read_nm_images(tmp_path / "huge.dcm")
    # configurable: NM1 itself (1024 x 256) is beyond a limit of 512 rows
    nm1.save_as(tmp_path / "nm1.dcm", enforce_file_format=True)
    with pytest.raises(DicomRejected, match="rows 1,024 > 512"):
        read_nm_images(tmp_path / "nm1.dcm", DecodeLimits(max_rows=512))
    assert read_nm_images(tmp_path / "nm1.dcm")[0].counts.sum() == NM1_TOTAL


def test_corrupt_jpeg_ls_rejected(tmp_path):
    good = jpeg_ls()
    reference = good.pixel_array.astype(np.float32)
    good.save_as(tmp_path / "good.dcm", enforce_file_format=True)
    np.testing.assert_array_equal(read_nm_images(tmp_path / "good.dcm")[0].counts, reference)
    cut = jpeg_ls(cut=0.7)
    # the decoder alone says nothing: it returns wrong counts
    assert not np.array_equal(cut.pixel_array, reference)
    cut.save_as(tmp_path / "cut.dcm", enforce_file_format=True)
    with pytest.raises(DicomRejected, match="no end-of-image marker"):
        read_nm_images(tmp_path / "cut.dcm")
    jpeg_ls(declare=(30000, 30000)).save_as(tmp_path / "liar.dcm", enforce_file_format=True)
    with pytest.raises(DicomRejected, match="declares 30000x30000 pixels, the header 64x64"):
        read_nm_images(tmp_path / "liar.dcm")


def test_oversized_encapsulated_data_rejected(tmp_path):
    ds = jpeg_ls()
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[:-2] + bytes(3 * 2**20) + b"\xff\xd9"])  # 3 MiB for an 8 KiB image
    ds.save_as(tmp_path / "fat.dcm", enforce_file_format=True)
    with pytest.raises(DicomRejected, match="far larger than the image"):
        read_nm_images(tmp_path / "fat.dcm")


def test_hostile_folder_beside_a_good_study(nm1, tmp_path):
    """The good study converts, every bad file is one rejects row with a reason, exit 0."""
    inp = tmp_path / "in"
    inp.mkdir()
    nm1.save_as(inp / "good.dcm", enforce_file_format=True)
    deflate_bomb(inp / "bomb.dcm", nm1)
    huge = copy.deepcopy(nm1)
    huge.Rows, huge.SOPInstanceUID = 50000, generate_uid()
    huge.save_as(inp / "huge.dcm", enforce_file_format=True)
    jpeg_ls(cut=0.5).save_as(inp / "cut_jls.dcm", enforce_file_format=True)
    jpeg_ls(declare=(9999, 64)).save_as(inp / "liar_jls.dcm", enforce_file_format=True)
    (inp / "junk.dcm").write_bytes(os.urandom(5000))
    rc = main(["convert", str(inp), "--out", str(tmp_path / "out")])
    assert rc == 0
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv")
    rejects = pd.read_csv(tmp_path / "out" / "rejects.csv")
    assert len(manifest) == 1 and manifest["total_counts"].iloc[0] == NM1_TOTAL
    files = list_input_files(inp)
    reasons = {files[p - 1].name: r for p, r in zip(rejects["position"], rejects["reason"])}
    assert set(reasons) == {"bomb.dcm", "huge.dcm", "cut_jls.dcm", "liar_jls.dcm", "junk.dcm"}
    assert "inflates to more than" in reasons["bomb.dcm"]
    assert "decoding limits" in reasons["huge.dcm"]
    assert "end-of-image" in reasons["cut_jls.dcm"] and "9999x64" in reasons["liar_jls.dcm"]


def _limit_file_size(max_bytes: int):
    def apply():  # a write past the limit fails with EFBIG, as a full disk fails with ENOSPC
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return apply


def _partial_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.is_file() and (p.suffix == ".part" or p.name.startswith("."))]


def test_write_failure_fails_loudly_without_partial_files(nm1, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    nm1.save_as(inp / "good.dcm", enforce_file_format=True)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "spectbone", "convert", str(inp), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_limit_file_size(200_000))
    assert proc.returncode == 1 and "no partial file" in proc.stderr, proc.stderr
    assert not (out / "manifest.csv").exists() and list((out / "images").iterdir()) == [] and not _partial_files(out)
    # preprocess: the converted view is fine, writing its 128x128 grey image is not
    assert main(["convert", str(inp), "--out", str(out)]) == 0
    pre = tmp_path / "pre"
    cmd = [sys.executable, "-m", "spectbone", "preprocess", "--manifest", str(out / "manifest.csv"),
           "--out", str(pre), "--size", "128"]
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_limit_file_size(30_000))
    assert proc.returncode == 1 and "disk full" in proc.stderr, proc.stderr
    assert not (pre / "preprocess.csv").exists() and not list((pre / "images").glob("*.npy"))
    assert not _partial_files(pre)


def test_missing_truth_is_an_error(tmp_path):
    cohort, truth, conv, pre = phantom_through_preprocess(tmp_path, n_patients=4, seed=5, size=64)
    ids = sorted(p.stem for p in (pre / "truth").glob("*.npz"))
    assert len(ids) == 8
    assert load_truth(pre, ids, required=True)[0].shape == (8, 64, 64)
    (pre / "truth" / f"{ids[3]}.npz").unlink()
    with pytest.raises(FileNotFoundError, match="1 of 8 images have no truth file"):
        load_truth(pre, ids)  # one missing: never a silent switch to "no truth"
    shutil.rmtree(pre / "truth")
    with pytest.raises(FileNotFoundError):
        load_truth(pre, ids, required=True)
    assert load_truth(pre, ids, required=False) == (None, None)
    # preprocess: a view whose truth image is gone is an error, not a warning
    next(truth.glob("*.npz")).unlink()
    assert main(["preprocess", "--manifest", str(conv / "manifest.csv"), "--out", str(tmp_path / "pre2"),
                 "--truth", str(truth), "--size", "64"]) == 1
