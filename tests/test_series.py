"""Real hospital exports: series selection, the manifest's record of what came in, signed pixels,
lossy views kept out of training, and feet-first / mirrored views turned head-up before cropping.

Every file is a real DICOM file written with pydicom (phantom studies via `spectbone.dicom.write`,
the real NEMA NM1 scan via `spectbone.dicom.nm1`)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from spectbone import phantom
from spectbone.cli import main
from spectbone.dicom import series
from spectbone.dicom import write as nm_dicom
from spectbone.dicom.nm1 import nm1_path
from spectbone.prep.convert import MANIFEST_COLUMNS
from spectbone.prep.crop import find_crop_box, head_end, orient_view
from spectbone.prep.preprocess import COLUMNS as PREPROCESS_COLUMNS
from spectbone.prep.split import split_patients

TEST_KEY = "test-only-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def id_key(monkeypatch):
    monkeypatch.setenv("SPECTBONE_ID_KEY", TEST_KEY)


@pytest.fixture(scope="module")
def study():
    """One clean phantom study (ANT + POST counts) and a fake identity, as `synthesize` makes them."""
    rng = np.random.default_rng(20240611)
    st = phantom.make_study(rng, "")
    p = st.patient
    ident = nm_dicom.fake_identity(np.random.default_rng(7), p.sex, p.height_cm, p.habitus)
    return st, ident


def _whole_body(study, entropy="wb") -> Dataset:
    st, ident = study
    frames = {v: st.views[v].counts for v in phantom.VIEWS}
    return nm_dicom.build_nm_dataset(frames, ident, ["test", entropy], pixel_mm=phantom.PIXEL_MM)


def _new_series(ds: Dataset, image_type: list[str], stack: np.ndarray) -> Dataset:
    """Another series of the same study: same patient and StudyInstanceUID, new series/instance."""
    out = copy.deepcopy(ds)
    out.SeriesInstanceUID = generate_uid()
    out.SOPInstanceUID = generate_uid()
    out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    out.ImageType = image_type
    n, rows, cols = stack.shape
    out.NumberOfFrames = n
    out.Rows, out.Columns = rows, cols
    out.PixelData = stack.astype("<u2").tobytes()
    for kw in ("ScanVelocity", "WholeBodyTechnique", "ScanLength"):
        if kw in out:
            delattr(out, kw)
    out.EnergyWindowVector = [1] * n
    out.DetectorVector = [1 + (i % 2) for i in range(n)]
    return out


def _tomo(ds: Dataset) -> Dataset:
    rng = np.random.default_rng(1)
    out = _new_series(ds, ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"], rng.poisson(20, (32, 64, 64)))
    rot = Dataset()
    rot.StartAngle, rot.AngularStep, rot.RotationDirection = 0, 11.25, "CW"
    rot.NumberOfFramesInRotation = 32
    out.RotationInformationSequence = Sequence([rot])
    out.NumberOfRotations = 1
    out.RotationVector = [1] * 32
    out.AngularViewVector = list(range(1, 17)) * 2
    out.FrameIncrementPointer = [(0x0054, 0x0010), (0x0054, 0x0020), (0x0054, 0x0050), (0x0054, 0x0090)]
    out.SeriesDescription = "SPECT pelvis"
    return out


def _spot(ds: Dataset) -> Dataset:
    out = _new_series(ds, ["ORIGINAL", "PRIMARY", "STATIC", "EMISSION"],
                      np.random.default_rng(2).poisson(50, (1, 256, 256)))
    out.DetectorInformationSequence = Sequence(out.DetectorInformationSequence[:1])
    out.NumberOfDetectors = 1
    out.SeriesDescription = "Spot skull ANT"
    return out


def _recon(ds: Dataset) -> Dataset:
    out = _new_series(ds, ["DERIVED", "SECONDARY", "RECON TOMO", "EMISSION"],
                      np.random.default_rng(3).poisson(10, (48, 64, 64)))
    out.SeriesDescription = "SPECT recon"
    return out


def _save(ds: Dataset, path) -> None:
    ds.save_as(path, enforce_file_format=True)


def _convert(inp, out):
    rc = main(["convert", str(inp), "--out", str(out)])
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False, dtype=str)  # cells as written
    rejects = pd.read_csv(out / "rejects.csv", keep_default_na=False)
    return rc, manifest, rejects


# ---------------------------------------------------------------- series selection
def test_study_keeps_whole_body_views_and_lists_other_series(study, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    wb = _whole_body(study)
    _save(wb, inp / "a_wholebody.dcm")
    _save(_tomo(wb), inp / "b_tomo.dcm")
    _save(_spot(wb), inp / "c_spot.dcm")
    _save(_recon(wb), inp / "d_recon.dcm")
    broken = _new_series(wb, list(wb.ImageType), np.zeros((2, 1000, 256)))
    broken.Rows = 1024  # a whole-body file of the same study whose pixel data is short: rejected
    _save(broken, inp / "e_broken.dcm")

    rc, manifest, rejects = _convert(inp, tmp_path / "conv")
    assert rc == 0 and list(manifest.columns) == MANIFEST_COLUMNS
    assert manifest["study_id"].nunique() == 1
    ok = manifest[manifest["status"] == "ok"]
    assert sorted(ok["view"]) == ["ANT", "POST"]
    assert (ok["series_class"] == "whole_body").all() and (ok["reason"] == "").all()
    skipped = manifest[manifest["status"] == "skipped"].set_index("series_class")
    assert sorted(skipped.index) == ["recon", "spot", "tomo"]
    assert skipped.loc["tomo", "reason"].startswith("series class tomo: not a whole-body planar view")
    assert "TOMO" in skipped.loc["tomo", "reason"]
    assert "STATIC" in skipped.loc["spot", "reason"]
    assert "RECON TOMO" in skipped.loc["recon", "reason"]
    assert (skipped["image_path"] == "").all() and (skipped["frame"] == "").all()
    assert skipped.loc["spot", "view"] == "ANT"  # header-only view label of a single-frame series
    assert not any((tmp_path / "conv" / "images").glob("*tomo*"))
    assert len(rejects) == 1 and "bytes" in rejects["reason"].iloc[0]

    # downstream: preprocess sees the two whole-body views only, and keeps both
    assert main(["preprocess", "--manifest", str(tmp_path / "conv" / "manifest.csv"), "--out",
                 str(tmp_path / "pre"), "--size", "64"]) == 0
    pre = pd.read_csv(tmp_path / "pre" / "preprocess.csv", keep_default_na=False, dtype=str)
    assert list(pre.columns) == PREPROCESS_COLUMNS
    assert sorted(pre["image_id"]) == sorted(ok["image_id"])
    assert (pre["keep"].astype(str) == "True").all()


def test_only_other_series_is_not_a_success(study, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    _save(_tomo(_whole_body(study)), inp / "tomo.dcm")
    rc, manifest, rejects = _convert(inp, tmp_path / "out")
    assert rc == 1 and list(manifest["status"]) == ["skipped"] and rejects.empty


def _header(**kw) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = kw.pop("sop", series.NM_IMAGE_STORAGE)
    ds.Modality = kw.pop("modality", "NM")
    ds.Rows, ds.Columns = kw.pop("shape", (1024, 256))
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


@pytest.mark.parametrize("kw, expected", [
    ({"sop": "1.2.840.10008.5.1.4.1.1.7", "PixelSpacing": [2.26, 2.26]}, "whole_body"),  # NM1-like capture
    ({"sop": "1.2.840.10008.5.1.4.1.1.7", "shape": (512, 512)}, "other"),                # a screen capture
    ({"sop": "1.2.840.10008.5.1.4.1.1.7", "modality": "OT"}, "other"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]}, "whole_body"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "STATIC", "EMISSION"], "shape": (256, 256)}, "spot"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "STATIC", "EMISSION"], "shape": (768, 512),
      "PixelSpacing": [2.0, 2.0]}, "whole_body"),  # a stitched sweep filed as STATIC: 1536 mm long
    ({"ImageType": ["ORIGINAL", "PRIMARY", "GATED TOMO", "EMISSION"], "shape": (64, 64)}, "tomo"),
    ({"ImageType": ["DERIVED", "SECONDARY", "RECON GATED TOMO", "EMISSION"], "shape": (64, 64)}, "recon"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "DYNAMIC", "EMISSION"], "shape": (128, 128)}, "other"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "WHOLE BODY", "TRANSMISSION"]}, "other"),
    ({"shape": (64, 64), "NumberOfFrames": 120}, "tomo"),                 # no image type: frames decide
    ({"shape": (128, 128), "NumberOfRotations": 1}, "tomo"),
    ({}, "whole_body"),                                                    # no image type, tall frame
    ({"shape": (256, 256)}, "spot"),
    ({"sop": "1.2.840.10008.5.1.4.1.1.128"}, "other"),                     # PET SOP class, modality NM
])
def test_classify(kw, expected):
    assert series.classify(_header(**kw)).name == expected


# ---------------------------------------------------------------- what came in
def test_manifest_records_encoding_lossless_jpeg_vs_uncompressed(study, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(nm1_path(), inp / "nm1_jpeg_lossless.dcm")
    shutil.copy(get_testdata_file("JPGExtended.dcm"), inp / "nm1_jpeg_extended.dcm")
    wb = _whole_body(study)
    _save(wb, inp / "phantom.dcm")
    recompressed = _whole_body(study, "second")  # another study, once lossily compressed, now stored plain
    recompressed.LossyImageCompression = "01"
    _save(recompressed, inp / "phantom_was_lossy.dcm")

    rc, manifest, _ = _convert(inp, tmp_path / "out")
    assert rc == 0 and (manifest["status"] == "ok").all()
    by_ts = manifest.groupby("transfer_syntax")
    nm1 = by_ts.get_group("1.2.840.10008.1.2.4.70").iloc[0]  # JPEG Lossless SV1
    assert nm1["lossy"] == "False" and nm1["signed"] == "True"
    assert nm1["image_type"] == "DERIVED\\PRIMARY\\WHOLE BODY\\EMISSION"
    assert nm1["series_class"] == "whole_body" and nm1["patient_position"] == "HFS"
    assert nm1["header_orientation"] == "head_first" and int(nm1["n_energy_windows"]) == 1
    ext = by_ts.get_group("1.2.840.10008.1.2.4.51").iloc[0]   # JPEG Extended: lossy
    assert ext["lossy"] == "True"
    plain = manifest[manifest["transfer_syntax"] == ExplicitVRLittleEndian]
    assert len(plain) == 4
    assert (plain["signed"] == "False").all() and (plain["n_energy_windows"].astype(int) == 1).all()
    assert (plain["image_type"] == "ORIGINAL\\PRIMARY\\WHOLE BODY\\EMISSION").all()
    assert (plain["patient_position"] == "").all()
    assert (plain["header_orientation"] == "head_first").all()  # patient-gantry code: headfirst
    assert sorted(plain["lossy"]) == ["False", "False", "True", "True"]  # LossyImageCompression 01
    assert series.is_lossy(pydicom.dcmread(inp / "phantom_was_lossy.dcm"))[0]


def test_signed_pixel_data_decodes_with_its_sign(study, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    st, _ = study
    wb = _whole_body(study)
    signed = np.stack([st.views[v].counts.astype(np.int32) for v in phantom.VIEWS]) - 3  # background-subtracted
    signed[0, 0, :4] = [-32768, -1, 32767, 0]
    wb.PixelRepresentation = 1
    wb.PixelData = signed.astype("<i2").tobytes()
    _save(wb, inp / "signed.dcm")
    twelve = _whole_body(study, "twelve-bit")  # 12 of 16 bits stored, two's complement in 12 bits
    small = np.clip(signed, -2048, 2047).astype(np.int16)
    twelve.PixelRepresentation, twelve.BitsStored, twelve.HighBit = 1, 12, 11
    twelve.PixelData = (small.astype(np.uint16) & 0x0FFF).astype("<u2").tobytes()
    _save(twelve, inp / "signed12.dcm")

    rc, manifest, rejects = _convert(inp, tmp_path / "out")
    assert rc == 0 and rejects.empty and (manifest["signed"] == "True").all()
    for rec in manifest.itertuples():
        expected = (signed if rec.source_sha256 == manifest["source_sha256"].iloc[0] else small)[int(rec.frame)]
        counts = np.load(tmp_path / "out" / rec.image_path)
        np.testing.assert_array_equal(counts, expected.astype(np.float32))
        assert float(rec.total_counts) == float(expected.sum(dtype=np.int64))
    assert np.load(tmp_path / "out" / manifest["image_path"].iloc[0]).min() == -32768


# ---------------------------------------------------------------- lossy views and the split
def _images(n_patients: int, lossy_patients: set[int]) -> pd.DataFrame:
    rows = [{"image_id": f"p{p:02d}_{v}", "patient_id": f"p{p:02d}", "view": v,
             "lossy": "True" if p in lossy_patients else "False"} for p in range(n_patients) for v in ("ANT", "POST")]
    return pd.DataFrame(rows)


def test_lossy_views_stay_out_of_training_by_default(tmp_path):
    images = _images(20, set(range(0, 20, 2)))
    split = split_patients(images, 0.2, 0.1, seed=3)
    lossy = set(images.loc[images["lossy"] == "True", "image_id"])
    train_val = split[split["set"].isin(["train", "val"])]
    assert not (set(train_val["image_id"]) & lossy) and len(train_val) > 0
    assert set(split.loc[split["set"] == "test", "image_id"]) & lossy  # test images may be lossy
    allowed = split_patients(images, 0.2, 0.1, seed=3, allow_lossy_training=True)
    assert set(allowed.loc[allowed["set"] == "train", "image_id"]) & lossy
    assert len(allowed) == len(images)
    with pytest.raises(ValueError, match="allow_lossy_training"):
        split_patients(_images(6, set(range(6))), 0.2, 0.1, seed=3)

    # the verb: preprocess.csv's lossy column, and the flag the Snakemake rule passes
    pre = images.assign(keep="True")
    pre.to_csv(tmp_path / "preprocess.csv", index=False)
    for extra, lossy_in_train in (([], False), (["--allow-lossy-training"], True)):
        assert main(["split", "--preprocess", str(tmp_path / "preprocess.csv"), "--out", str(tmp_path / "s.csv"),
                     "--test-fraction", "0.2", "--seed", "3", *extra]) == 0
        s = pd.read_csv(tmp_path / "s.csv")
        assert bool(set(s.loc[s["set"] == "train", "image_id"]) & lossy) == lossy_in_train


# ---------------------------------------------------------------- orientation
def test_head_end_and_orient_view(study):
    st, _ = study
    ant = st.views["ANT"].counts.astype(np.float32)
    nm1 = pydicom.dcmread(nm1_path()).pixel_array.astype(np.float32)
    for image in (ant, nm1):
        assert head_end(image).end == "top" and head_end(image[::-1]).end == "bottom"
    box, _ = find_crop_box(ant)
    for header, source in (("", "from_image"), ("feet_first", "from_header_and_image")):
        turned, orientation, src, _ = orient_view(ant[::-1], header)
        assert (orientation, src) == ("feet_first_flipped", source)
        assert find_crop_box(turned)[0] == box
    # the camera already showed the feet-first patient head-up: the image overrules the header
    _, orientation, src, why = orient_view(ant, "feet_first")
    assert (orientation, src) == ("head_first", "from_image") and "overrules" in why
    # an image that cannot tell (uniform slab): the header decides, else it is taken as stored
    slab = np.zeros((512, 128), np.float32)
    slab[50:450, 40:88] = 100.0
    assert head_end(slab).end == ""
    assert orient_view(slab, "feet_first")[1:3] == ("feet_first_flipped", "from_header")
    assert orient_view(slab, "")[1:3] == ("head_first", "assumed")


def test_header_orientation_fields():
    def h(**kw):
        return series.header_orientation(_header(**kw))[0]

    gantry = Dataset()
    gantry.CodeValue, gantry.CodingSchemeDesignator, gantry.CodeMeaning = "102541007", "SCT", "feet-first"
    assert h(PatientPosition="FFS") == "feet_first" and h(PatientPosition="HFP") == "head_first"
    assert h(PatientGantryRelationshipCodeSequence=Sequence([gantry])) == "feet_first"
    assert h(PatientOrientation=["L", "H"]) == "feet_first"
    assert h(PatientOrientation=["L", "F"], PatientPosition="FFS") == "head_first"  # the image's own axes first
    assert h() == ""
    assert series.header_mirrored(_header(PatientOrientation=["R", "F"]), "ANT") is True
    assert series.header_mirrored(_header(PatientOrientation=["R", "F"]), "POST") is False
    assert series.header_mirrored(_header(), "ANT") is None


def test_feet_first_and_mirrored_views_crop_like_the_original(study, tmp_path):
    """Through DICOM, convert and preprocess: a study stored upside down (with and without FFS in the
    header) and one whose ANT view is mirrored (PatientOrientation R\\F) crop the same region."""
    inp = tmp_path / "in"
    inp.mkdir()
    st, ident = study
    frames = {v: st.views[v].counts for v in phantom.VIEWS}
    variants = {"original": (frames, {}),
                "upside_down": ({v: f[::-1] for v, f in frames.items()}, {}),
                "upside_down_ffs": ({v: f[::-1] for v, f in frames.items()}, {"PatientPosition": "FFS"}),
                "mirrored_ant": ({"ANT": frames["ANT"][:, ::-1]}, {"PatientOrientation": ["R", "F"]})}
    for name, (fr, header) in variants.items():
        ds = nm_dicom.build_nm_dataset({v: np.ascontiguousarray(f) for v, f in fr.items()}, ident, ["test", name],
                                       pixel_mm=phantom.PIXEL_MM)
        ds.PatientID = f"P-{name}"
        if header.get("PatientPosition") == "FFS":
            ds.PatientGantryRelationshipCodeSequence = Sequence()
        for k, v in header.items():
            setattr(ds, k, v)
        _save(ds, inp / f"{name}.dcm")
    rc, manifest, rejects = _convert(inp, tmp_path / "conv")
    assert rc == 0 and rejects.empty
    assert main(["preprocess", "--manifest", str(tmp_path / "conv" / "manifest.csv"), "--out", str(tmp_path / "pre"),
                 "--size", "64", "--log", str(tmp_path / "pre.log")]) == 0
    pre = pd.read_csv(tmp_path / "pre" / "preprocess.csv", keep_default_na=False, dtype=str)
    variant_of = {hmac.new(TEST_KEY.encode(), f"patient:P-{name}".encode(), hashlib.sha256).hexdigest()[:12]: name
                  for name in variants}
    pre["variant"] = pre["patient_id"].map(variant_of)
    assert pre["variant"].notna().all()
    boxes = {(r.variant, r.view): (r.crop_top, r.crop_bottom, r.crop_left, r.crop_right, r.orientation,
                                   r.orientation_source, r.lr_flipped) for r in pre.itertuples()}
    positions = {variant_of[r.patient_id]: r.patient_position for r in manifest.itertuples()}
    assert positions == {"original": "", "upside_down": "", "upside_down_ffs": "FFS", "mirrored_ant": ""}
    original = "original"
    for view in ("ANT", "POST"):
        ref = boxes[(original, view)]
        assert ref[4:6] == ("head_first", "from_header_and_image")
        flipped = [b for (variant, v), b in boxes.items() if v == view and b[4] == "feet_first_flipped"]
        assert len(flipped) == 2 and all(b[:4] == ref[:4] for b in flipped)
        assert sorted(b[5] for b in flipped) == ["from_header_and_image", "from_image"]  # FFS agrees; none: image
        images = {variant: np.load(tmp_path / "pre" / "images" / f"{rid}.npy")
                  for rid, variant in zip(pre.loc[pre["view"] == view, "image_id"], pre.loc[pre["view"] == view, "variant"])}
        for img in images.values():
            np.testing.assert_array_equal(img, images[original])
    mirrored = [b for (variant, v), b in boxes.items() if b[6] == "True"]
    assert len(mirrored) == 1 and mirrored[0][:4] == boxes[(original, "ANT")][:4]
    log = (tmp_path / "pre.log").read_text()
    assert "feet_first_flipped" in log and "left-right flipped" in log
