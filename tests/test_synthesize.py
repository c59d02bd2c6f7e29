"""`spectbone synthesize`: NM DICOM cohort on disk, truth elsewhere, seeded, every problem labelled."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from spectbone import phantom
from spectbone.cli import main
from spectbone.phantom.synthesize import LABEL_COLUMNS, assign_problems, synthesize

N = 6


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, Path, pd.DataFrame]:
    base = tmp_path_factory.mktemp("synth")
    out, truth = base / "cohort", base / "truth"
    rc = main(["synthesize", "--out", str(out), "--truth", str(truth), "--n-patients", str(N), "--seed", "3",
               "--problem-fraction", "0.67", "--log", str(base / "logs" / "synthesize.log")])
    assert rc == 0
    labels = pd.read_csv(truth / "labels.csv", keep_default_na=False, dtype={"problem": str})
    return out, truth, labels


def test_files_and_labels(cohort):
    out, truth, labels = cohort
    assert sorted(p.name for p in out.iterdir()) == [f"study_{i:04d}.dcm" for i in range(1, N + 1)]
    assert list(labels.columns) == LABEL_COLUMNS
    assert len(labels) == 2 * N
    assert labels.groupby("study")["view"].apply(list).map(lambda v: v == ["ANT", "POST"]).all()
    assert set(labels["frame"]) == {0, 1}
    for study, grp in labels.groupby("study"):
        digest = hashlib.sha256((out / f"{study}.dcm").read_bytes()).hexdigest()
        assert (grp["source_sha256"] == digest).all()
    assert (labels["crop_top"] < labels["crop_bottom"]).all() and (labels["crop_left"] < labels["crop_right"]).all()
    assert labels[["crop_top", "crop_bottom"]].stack().between(0, 1024).all()
    assert labels[["crop_left", "crop_right"]].stack().between(0, 256).all()


def test_truth_is_outside_the_cohort(cohort, tmp_path):
    out, truth, _ = cohort
    assert out.resolve() not in truth.resolve().parents
    assert not list(out.rglob("*.npz")) and not list(out.rglob("*.csv"))
    with pytest.raises(ValueError, match="must not lie inside"):
        synthesize(tmp_path / "c", tmp_path / "c" / "truth", 1, progress=False)


def test_every_problem_type_is_produced_and_labelled(cohort):
    _, truth, labels = cohort
    per_study = labels[labels["frame"] == 0].set_index("study")["problem"]
    assert set(per_study) == {"", *phantom.PROBLEMS}
    assert (per_study != "").sum() == round(0.67 * N)
    low = labels[labels["problem"] == "low_counts"]
    assert (low["total_counts"] < 3.5e5).all()
    normal = labels[labels["problem"].isin(["", "truncated", "extravasation", "urine"])]
    assert normal["total_counts"].between(0.99e6, 4.01e6).all()
    trunc = labels[labels["problem"] == "truncated"]
    assert ((trunc["crop_top"] == 0) | (trunc["crop_bottom"] == 1024)).all()
    # and assignment is round-robin: 8 problems over 20 studies cover every type twice
    probs = assign_problems(20, 0.4, seed=0)
    assert sorted(p for p in probs if p) == sorted(list(phantom.PROBLEMS) * 2)


def test_dicom_round_trip(cohort):
    out, truth, labels = cohort
    for study, grp in labels.groupby("study"):
        ds = pydicom.dcmread(out / f"{study}.dcm")
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.20" and ds.Modality == "NM"
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]
        assert ds.SeriesDescription == "WB ANT/POST"
        assert ds.NumberOfFrames == 2 and ds.NumberOfDetectors == 2 and list(ds.DetectorVector) == [1, 2]
        assert list(ds.FrameIncrementPointer) == [pydicom.tag.Tag(0x0054, 0x0010), pydicom.tag.Tag(0x0054, 0x0020)]
        assert [float(x) for x in ds.PixelSpacing] == [2.26, 2.26]
        views = [item.ViewCodeSequence[0] for item in ds.DetectorInformationSequence]
        assert [(c.CodeValue, c.CodeMeaning, c.CodingSchemeDesignator) for c in views] == [
            ("399321004", "anterior projection", "SCT"), ("399001007", "posterior projection", "SCT")]
        assert str(ds.PatientID).startswith("MRN") and "^" in str(ds.PatientName)
        assert len(ds.PatientBirthDate) == 8 and len(ds.StudyDate) == 8
        px = ds.pixel_array
        assert px.shape == (2, 1024, 256) and px.dtype == np.uint16
        for _, r in grp.iterrows():
            frame = px[int(r["frame"])]
            assert int(frame.sum(dtype=np.int64)) == r["total_counts"]
            npz = np.load(truth / f"{study}_{r['view']}.npz")
            assert npz["expected"].dtype == np.float32 and npz["expected"].shape == (1024, 256)
            assert npz["lesions"].dtype == np.uint8 and npz["lesions"].shape == (1024, 256)
            assert abs(npz["expected"].sum(dtype=np.float64) - r["total_counts"]) < 6 * np.sqrt(r["total_counts"] + 1)
            assert not npz["lesions"].any() or r["n_lesions"] > 0  # a view outlines only the lesions it shows
    ids = [pydicom.dcmread(p, stop_before_pixels=True).PatientID for p in sorted(out.glob("*.dcm"))]
    assert len(set(ids)) == N
    uids = [pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID for p in sorted(out.glob("*.dcm"))]
    assert len(set(uids)) == N


def test_seeded_byte_identical_and_independent_of_workers(tmp_path):
    a = synthesize(tmp_path / "a", tmp_path / "ta", 2, seed=9, problem_fraction=0.5, progress=False)
    b = synthesize(tmp_path / "b", tmp_path / "tb", 2, seed=9, problem_fraction=0.5, workers=2, progress=False)
    c = synthesize(tmp_path / "c", tmp_path / "tc", 2, seed=10, problem_fraction=0.5, progress=False)
    pd.testing.assert_frame_equal(a, b)
    for name in ("study_0001.dcm", "study_0002.dcm"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not a["source_sha256"].equals(c["source_sha256"])
    # rerunning smaller into the same folder leaves no stale study behind
    synthesize(tmp_path / "a", tmp_path / "ta", 1, seed=9, progress=False)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["study_0001.dcm"]
