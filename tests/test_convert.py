"""`spectbone convert` on the real NEMA NM1 whole-body bone scan in every encoding we can get,
on multi-frame NM built from it, and on broken files (which must land in rejects.csv)."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)

from spectbone.cli import main
from spectbone.prep.convert import MANIFEST_COLUMNS, REJECT_COLUMNS, list_input_files
from spectbone.dicom.read import read_nm_images

NM1_TOTAL = 3_596_452
TEST_KEY = "test-only-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def id_key(monkeypatch):
    """NM1 is real data to `convert`: every test here runs with a (test) secret key."""
    monkeypatch.setenv("SPECTBONE_ID_KEY", TEST_KEY)


def _by_path(inp: Path, rejects: pd.DataFrame) -> dict[str, str]:
    """rejects.csv names files by position in the sorted listing: map them back to paths (tests only)."""
    files = list_input_files(inp)
    return {files[int(pos) - 1].relative_to(inp).as_posix(): reason
            for pos, reason in zip(rejects["position"], rejects["reason"])}


def _data_store_dir() -> Path:
    import data_store

    return Path(data_store.__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def nm1_path() -> Path:
    return _data_store_dir() / "JPEG-LL.dcm"


@pytest.fixture(scope="module")
def nm1(nm1_path) -> Dataset:
    ds = pydicom.dcmread(nm1_path)
    ds.decompress()
    return ds


def _convert(inp: Path, out: Path, *extra: str) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    rc = main(["convert", str(inp), "--out", str(out), *extra])
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False) if (out / "manifest.csv").exists() else None
    rejects = pd.read_csv(out / "rejects.csv", keep_default_na=False) if (out / "rejects.csv").exists() else None
    return rc, manifest, rejects


def _encodings(nm1: Dataset, folder: Path) -> dict[str, Path]:
    """NM1 re-encoded losslessly with pydicom, one file per transfer syntax."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, ts in [("explicit_le", ExplicitVRLittleEndian), ("implicit_le", ImplicitVRLittleEndian),
                     ("deflated", DeflatedExplicitVRLittleEndian)]:
        ds = copy.deepcopy(nm1)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ts
        ds.save_as(folder / f"{name}.dcm", enforce_file_format=True)
        out[name] = folder / f"{name}.dcm"
    for name, ts, kwargs in [("rle", RLELossless, {}), ("j2k_lossless", JPEG2000Lossless, {})]:
        ds = copy.deepcopy(nm1)
        try:
            ds.compress(ts, **kwargs)
        except (RuntimeError, NotImplementedError, ValueError):
            continue  # no encoder for this syntax installed
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"{name}.dcm", enforce_file_format=True)
        out[name] = folder / f"{name}.dcm"
    return out


def test_nm1_lossless_jpeg_exact_total(nm1_path):
    images = read_nm_images(nm1_path)
    assert len(images) == 1
    view, counts, spacing, ds = images[0]
    assert counts.dtype == np.float32 and counts.shape == (1024, 256)
    assert counts.sum(dtype=np.float64) == NM1_TOTAL
    assert spacing == pytest.approx((2.26, 2.26))
    assert view == "unknown"  # NM1 says nothing about the view
    assert ds.Modality == "NM"


def test_every_lossless_encoding_gives_exact_counts(nm1, tmp_path):
    files = _encodings(nm1, tmp_path / "in")
    assert {"explicit_le", "implicit_le", "deflated", "rle"} <= set(files)
    from pydicom.pixels import get_encoder

    if get_encoder(JPEG2000Lossless).is_available:  # pylibjpeg-openjpeg installed
        assert "j2k_lossless" in files
    rc, manifest, rejects = _convert(tmp_path / "in", tmp_path / "out")
    assert rc == 0 and rejects.empty
    assert len(manifest) == len(files)
    assert (manifest["total_counts"] == NM1_TOTAL).all()
    for rel in manifest["image_path"]:
        arr = np.load(tmp_path / "out" / rel)
        assert arr.dtype == np.float32 and arr.shape == (1024, 256)
        assert arr.sum(dtype=np.float64) == NM1_TOTAL
    # same study, same patient: the ids collide and are made unique
    assert manifest["study_id"].nunique() == 1 and manifest["patient_id"].nunique() == 1
    assert manifest["image_id"].is_unique


def test_shipped_encodings_and_undecodable_jpeg(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    data = _data_store_dir()
    shutil.copy(data / "JPEG-LL.dcm", inp / "nm1_jpeg_ll.dcm")
    shutil.copy(data / "JPEG2000_UNC.dcm", inp / "nm1_j2k_unc")  # no .dcm suffix: still read
    for name in ["JPGExtended.dcm", "JPEG2000.dcm", "JPEG-lossy.dcm"]:
        shutil.copy(get_testdata_file(name), inp / name)
    rc, manifest, rejects = _convert(inp, tmp_path / "out")
    assert rc == 0
    assert list(manifest.columns) == MANIFEST_COLUMNS and list(rejects.columns) == REJECT_COLUMNS
    assert len(manifest) == 4
    assert (manifest["rows"] == 1024).all() and (manifest["cols"] == 256).all()
    # JPEG2000_UNC is JPEG2000.dcm decompressed (same SOPInstanceUID, LossyImageCompression 01): one
    # instance, both lossy, so the first in the listing is kept and the other listed as its duplicate
    files = list_input_files(inp)
    dup = manifest[manifest["status"] == "duplicate"]
    assert len(dup) == 1 and files[int(dup["position"].iloc[0]) - 1].name == "nm1_j2k_unc"
    assert files[int(dup["duplicate_of"].iloc[0]) - 1].name == "JPEG2000.dcm"
    assert "both are lossy" in dup["reason"].iloc[0] and dup["image_path"].iloc[0] == ""
    ok = manifest[manifest["status"] == "ok"]
    assert len(ok) == 3 and ok["image_id"].is_unique
    ok = ok.astype({"total_counts": float})
    lossless = ok[ok["total_counts"] == NM1_TOTAL]
    assert len(lossless) == 1
    # lossy encodings of the same scan: within a few percent of the true total
    assert np.allclose(ok["total_counts"], NM1_TOTAL, rtol=0.06)
    assert list(_by_path(inp, rejects)) == ["JPEG-lossy.dcm"]
    reason = rejects["reason"].iloc[0]
    assert "JPEG Extended" in reason and "decoder" in reason
    assert len(rejects["source_sha256"].iloc[0]) == 64


def test_corrupt_inputs_are_rejected_with_reasons(nm1, tmp_path):
    inp = tmp_path / "in"
    (inp / "deep" / "er").mkdir(parents=True)
    nm1.save_as(inp / "good.dcm", enforce_file_format=True)
    raw = (inp / "good.dcm").read_bytes()
    (inp / "deep" / "truncated.dcm").write_bytes(raw[: len(raw) - 50_000])
    jpeg_raw = (_data_store_dir() / "JPEG-LL.dcm").read_bytes()
    (inp / "deep" / "er" / "truncated_jpeg.dcm").write_bytes(jpeg_raw[: len(jpeg_raw) // 2])
    ds = copy.deepcopy(nm1)
    del ds.PixelData
    ds.save_as(inp / "deep" / "no_pixels.dcm", enforce_file_format=True)
    ds = copy.deepcopy(nm1)
    ds.Rows = 1000  # header and pixel data disagree
    ds.save_as(inp / "wrong_size.dcm", enforce_file_format=True)
    (inp / "notes.dcm").write_text("Patient list, not an image\n" * 20)
    (inp / "empty.dcm").write_bytes(b"")
    (inp / "DICOMDIR").write_bytes(b"ignored")
    ct = get_testdata_file("CT_small.dcm")
    shutil.copy(ct, inp / "ct.dcm")
    shutil.copy(inp / "good.dcm", inp / "deep" / "copy_of_good.dcm")

    rc, manifest, rejects = _convert(inp, tmp_path / "out")
    assert rc == 0
    assert len(manifest) == 1 and manifest["total_counts"].iloc[0] == NM1_TOTAL
    reasons = _by_path(inp, rejects)
    assert "DICOMDIR" not in reasons
    assert set(reasons) == {"deep/truncated.dcm", "deep/er/truncated_jpeg.dcm", "deep/no_pixels.dcm",
                            "wrong_size.dcm", "notes.dcm", "empty.dcm", "ct.dcm", "deep/copy_of_good.dcm"}
    assert "truncated" in reasons["deep/truncated.dcm"]
    assert "truncated" in reasons["deep/er/truncated_jpeg.dcm"]
    assert "no pixel data" in reasons["deep/no_pixels.dcm"]
    assert "bytes" in reasons["wrong_size.dcm"] and "header" in reasons["wrong_size.dcm"]
    assert "not a DICOM file" in reasons["notes.dcm"]
    assert "empty" in reasons["empty.dcm"]
    assert "not a nuclear-medicine" in reasons["ct.dcm"]
    assert "identical copy" in reasons["deep/copy_of_good.dcm"]
    assert all(len(r) > 20 for r in reasons.values())


def _two_frame_nm(nm1: Dataset, meanings=("anterior", "posterior")) -> Dataset:
    """A dual-head NM Image Storage object: frame 0 = NM1, frame 1 = NM1 mirrored, views coded."""
    ds = copy.deepcopy(nm1)
    a = nm1.pixel_array.astype(np.uint16)
    frames = np.stack([a, a[:, ::-1]])
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.20"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = 2
    ds.FrameIncrementPointer = [(0x0054, 0x0020)]
    ds.DetectorVector = [1, 2]
    ds.NumberOfDetectors = 2
    items = []
    for meaning in meanings:
        det = Dataset()
        code = Dataset()
        code.CodeValue = meaning[:4].upper()
        code.CodingSchemeDesignator = "99TEST"
        code.CodeMeaning = meaning
        det.ViewCodeSequence = Sequence([code])
        items.append(det)
    ds.DetectorInformationSequence = Sequence(items)
    ds.ImageComments = "WB ANT/POST"
    ds.PixelData = frames.tobytes()
    ds.RescaleSlope = 2
    ds.RescaleIntercept = 0
    return ds


def test_multiframe_views_and_rescale(nm1, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    _two_frame_nm(nm1).save_as(inp / "study1", enforce_file_format=True)
    _two_frame_nm(nm1, ("", "")).save_as(inp / "study2.dcm", enforce_file_format=True)
    rc, manifest, rejects = _convert(inp, tmp_path / "out")
    assert rc == 0 and rejects.empty
    assert len(manifest) == 4
    s1 = manifest[manifest["image_id"].str.endswith(("_ANT", "_POST"))]
    assert sorted(s1["view"]) == ["ANT", "POST"]
    assert (s1["total_counts"] == 2 * NM1_TOTAL).all()  # RescaleSlope 2 applied
    ant = np.load(tmp_path / "out" / s1[s1["view"] == "ANT"]["image_path"].iloc[0])
    post = np.load(tmp_path / "out" / s1[s1["view"] == "POST"]["image_path"].iloc[0])
    np.testing.assert_array_equal(ant[:, ::-1], post)
    s2 = manifest[~manifest.index.isin(s1.index)]
    # "WB ANT/POST" names both views, so it cannot label either frame
    assert sorted(s2["view"]) == ["unknown", "unknown"]
    assert sorted(s2["image_id"].str.rsplit("_", n=1).str[1]) == ["frame0", "frame1"]
    assert sorted(s2["frame"]) == [0, 1]


def test_view_from_labels_single_frame(nm1, tmp_path):
    ds = copy.deepcopy(nm1)
    ds.SeriesDescription = "WB_POST"
    ds.save_as(tmp_path / "post.dcm", enforce_file_format=True)
    assert read_nm_images(tmp_path / "post.dcm")[0].view == "POST"
    ds.SeriesDescription = "Whole body"
    ds.ImageComments = "Anterior whole body"
    ds.save_as(tmp_path / "ant.dcm", enforce_file_format=True)
    assert read_nm_images(tmp_path / "ant.dcm")[0].view == "ANT"


def test_no_phi_in_outputs(nm1, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    ds = copy.deepcopy(nm1)
    ds.PatientName = "Zanzibarovic^Quintessa"
    ds.PatientID = "PHI-ID-918273"
    ds.PatientBirthDate = "19410203"
    ds.StudyDate = "20240517"
    ds.SeriesDate = "20240517"
    ds.AcquisitionDate = "20240517"
    ds.StudyInstanceUID = generate_uid()
    ds.save_as(inp / "scan.dcm", enforce_file_format=True)
    bad = copy.deepcopy(ds)
    bad.Rows = 999
    bad.SOPInstanceUID = generate_uid()
    bad.save_as(inp / "scan_bad.dcm", enforce_file_format=True)
    out = tmp_path / "out"
    rc, manifest, rejects = _convert(inp, out, "--log", str(out / "convert.log"))
    assert rc == 0 and len(manifest) == 1 and len(rejects) == 1
    needles = [b"Zanzibarovic", b"Quintessa", b"PHI-ID-918273", b"19410203", b"20240517", b"BERRA",
               b"8NM1", b"CompressedSamples"]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "convert.log" for p in files)
    for p in files:
        content = p.read_bytes()
        for needle in needles:
            assert needle not in content, f"{needle!r} leaked into {p.name}"
    # keyed: HMAC-SHA256 of the patient ID under the secret key
    import hashlib
    import hmac

    assert manifest["patient_id"].iloc[0] == hmac.new(TEST_KEY.encode(), b"patient:PHI-ID-918273",
                                                      hashlib.sha256).hexdigest()[:12]


def test_exit_codes_and_empty_outputs(tmp_path):
    assert main(["convert", str(tmp_path / "missing"), "--out", str(tmp_path / "o1")]) != 0
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.txt").write_text("nothing here")
    rc, manifest, rejects = _convert(junk, tmp_path / "o2")
    assert rc != 0
    assert manifest is not None and manifest.empty and list(manifest.columns) == MANIFEST_COLUMNS
    assert len(rejects) == 1


def test_command_line_entry_point(nm1_path, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(nm1_path, inp / "x.dcm")
    proc = subprocess.run([sys.executable, "-m", "spectbone", "convert", str(inp), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "rejects.csv").read_text().strip() == "position,file_id,source_sha256,reason"


def _deep_sequence_file(path: Path, nm1: Dataset, depth: int) -> None:
    """NM1's header (no pixel data) followed by `depth` sequences nested in each other, as raw
    explicit-VR little-endian bytes (undefined lengths): a parser that recurses per level dies."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    header = copy.deepcopy(nm1)
    del header.PixelData
    header.SOPInstanceUID = generate_uid()
    header.file_meta.MediaStorageSOPInstanceUID = header.SOPInstanceUID
    header.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_dataset(buf, header)
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, header.file_meta, enforce_standard=True)
    open_seq = b"\x40\x00\x75\x02SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    close_seq = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    path.write_bytes(b"\0" * 128 + b"DICM" + meta.getvalue() + buf.getvalue() + open_seq * depth + close_seq * depth)


def test_any_name_reexports_links_and_hostile_files_beside_a_good_study(nm1, tmp_path, monkeypatch):
    """Issue 20: a good study, a re-export of it (same SOPInstanceUID, one attribute different),
    a lossy re-export, a Latin-1 file name, spaces, option-like names, a symbolic-link loop, a path
    longer than PATH_MAX, a file that vanishes after listing, and the hostile files: the good study
    is converted once, every other entry is one rejects row or a duplicate row, exit 0."""
    import hashlib
    import hmac
    import os

    from spectbone.prep import convert as convert_module

    inp = tmp_path / "in"
    inp.mkdir()
    good = copy.deepcopy(nm1)
    good.SOPInstanceUID = generate_uid()
    good.file_meta.MediaStorageSOPInstanceUID = good.SOPInstanceUID
    good.save_as(inp / "good.dcm", enforce_file_format=True)
    # re-exports of the same instance: a lossy one listed first (the lossless good study must win)...
    lossy = copy.deepcopy(good)
    lossy.LossyImageCompression = "01"
    lossy.save_as(inp / "a lossy export.dcm", enforce_file_format=True)
    # ...a lossless one with another attribute, in a folder with a space, and one under a Latin-1 name
    again = copy.deepcopy(good)
    again.InstitutionName = "Second export run"
    (inp / "export 2").mkdir()
    again.save_as(inp / "export 2" / "good.dcm", enforce_file_format=True)
    latin1 = os.path.join(os.fsencode(inp), b"\xe9t\xe9 \xff\xfe.dcm")  # not UTF-8: surrogates in Python
    again.StationName = "other station"
    again.save_as(os.fsdecode(latin1), enforce_file_format=True)
    # option-like names, hostile contents
    raw = (inp / "good.dcm").read_bytes()
    (inp / "-rf").write_bytes(raw[: len(raw) // 3])                                    # truncated
    (inp / "--out=x.dcm").write_bytes(b"")                                              # empty
    (inp / "-- header only.dcm").write_bytes(raw[:132] + raw[132:400])                  # preamble + meta only
    (inp / "random.bin").write_bytes(np.random.default_rng(0).bytes(4096))              # random bytes
    (inp / "notes.txt").write_text("not an image\n" * 10)                               # not DICOM
    frames = copy.deepcopy(good)
    frames.SOPInstanceUID, frames.NumberOfFrames = generate_uid(), 7                     # frames beyond the data
    frames.save_as(inp / "frames.dcm", enforce_file_format=True)
    wrong = copy.deepcopy(good)
    wrong.SOPInstanceUID, wrong.BitsAllocated = generate_uid(), 32                       # wrong bits
    wrong.save_as(inp / "bits.dcm", enforce_file_format=True)
    huge = copy.deepcopy(good)
    huge.SOPInstanceUID, huge.Rows, huge.Columns = generate_uid(), 60000, 60000          # huge dimensions
    huge.save_as(inp / "huge.dcm", enforce_file_format=True)
    _deep_sequence_file(inp / "deep.dcm", nm1, depth=20000)                            # deep sequences
    # links: one back to the folder itself (a loop for a walk that follows links), two that loop, one dangling
    os.symlink(".", inp / "loop")
    os.symlink("b.lnk", inp / "a.lnk")
    os.symlink("a.lnk", inp / "b.lnk")
    os.symlink("nowhere.dcm", inp / "broken-link.dcm")
    # a path longer than PATH_MAX, built one folder at a time (relative to open folder handles)
    fd = os.open(inp, os.O_RDONLY)
    try:
        for _ in range(os.pathconf(inp, "PC_PATH_MAX") // 250 + 1):
            os.mkdir("d" * 250, dir_fd=fd)
            new = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
        out_fd = os.open("deep_study.dcm", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out_fd, raw)
        os.close(out_fd)
    finally:
        os.close(fd)
    # a file that vanishes between the listing and its reading
    (inp / "zz_vanishing.dcm").write_bytes(raw)
    listing = convert_module.list_input_files

    listed: list[Path] = []

    def list_then_lose_one(root):
        listed.extend(listing(root))
        os.unlink(inp / "zz_vanishing.dcm")
        return list(listed)

    monkeypatch.setattr(convert_module, "list_input_files", list_then_lose_one)
    out = tmp_path / "out"
    rc, manifest, rejects = _convert(inp, out, "--log", str(out / "convert.log"))
    assert rc == 0

    names = {i + 1: f.relative_to(inp).as_posix() for i, f in enumerate(listed)}
    long_dirs = [n for n in names.values() if n.startswith("d" * 250)]
    assert len(long_dirs) == 1 and len(names) == 19, names  # 17 in the top folder, one in export 2, the long one
    ok = manifest[manifest["status"] == "ok"]
    assert len(ok) == 1 and float(ok["total_counts"].iloc[0]) == NM1_TOTAL
    good_pos = int(ok["position"].iloc[0])
    assert names[good_pos] == "good.dcm"
    dup = manifest[manifest["status"] == "duplicate"]
    dup_names = {names[int(p)]: r for p, r in zip(dup["position"], dup["reason"])}
    latin1_rel = os.fsdecode(b"\xe9t\xe9 \xff\xfe.dcm")
    assert set(dup_names) == {"a lossy export.dcm", "export 2/good.dcm", latin1_rel}
    assert (dup["duplicate_of"].astype(int) == good_pos).all() and (dup["image_path"] == "").all()
    assert "lossless and this copy is lossy" in dup_names["a lossy export.dcm"]
    assert "read first" in dup_names["export 2/good.dcm"]
    assert dup["sop_instance_id"].nunique() == 1 and dup["sop_instance_id"].iloc[0] == ok["sop_instance_id"].iloc[0]
    assert sorted((out / "images").iterdir()) == [out / ok["image_path"].iloc[0]]  # the demoted image is gone

    reasons = {names[int(p)]: r for p, r in zip(rejects["position"], rejects["reason"])}
    accounted = set(reasons) | set(dup_names) | {"good.dcm"}
    assert accounted == set(names.values()), set(names.values()) ^ accounted
    assert len(rejects) == len(reasons)  # one row per entry
    long_dir = next(n for n in reasons if n.startswith("d" * 250))
    assert "longer than this system can open" in reasons[long_dir]
    assert "symbolic link to a folder: not followed" in reasons["loop"]
    assert "loops" in reasons["a.lnk"] and "loops" in reasons["b.lnk"]
    assert "points to nothing" in reasons["broken-link.dcm"]
    assert "vanished between listing" in reasons["zz_vanishing.dcm"]
    assert "truncated" in reasons["-rf"] and "empty" in reasons["--out=x.dcm"]
    assert "not a DICOM file" in reasons["random.bin"] and "not a DICOM file" in reasons["notes.txt"]
    assert "needs" in reasons["frames.dcm"] and "7 frame" in reasons["frames.dcm"]
    assert "decoding limits" in reasons["huge.dcm"]
    assert reasons["bits.dcm"] and reasons["deep.dcm"] and reasons["-- header only.dcm"]

    # the Latin-1 name's pseudonym is the HMAC of its own bytes; no name reaches an output or the log
    latin1_pos = next(p for p, n in names.items() if n == latin1_rel)
    row = manifest[manifest["position"].astype(int) == latin1_pos]
    assert len(row) == 1
    for p in out.rglob("*"):
        if p.is_file():
            content = p.read_bytes()
            for needle in (b"\xe9t\xe9", b"\xff\xfe", b"lossy export", b"export 2", b"vanishing", b"broken-link", b"-rf",
                           b"d" * 250, b"good.dcm", os.fsencode(inp)):
                assert needle not in content, f"{needle!r} leaked into {p.name}"
    fresh = pd.read_csv(out / "rejects.csv", keep_default_na=False)
    by_name = {names[int(p)]: f for p, f in zip(fresh["position"], fresh["file_id"])}
    assert by_name["-rf"] == hmac.new(TEST_KEY.encode(), b"file:-rf", hashlib.sha256).hexdigest()[:12]
