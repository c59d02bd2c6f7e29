"""`spectbone realism` end to end: a 3-patient phantom cohort beside the real NEMA NM1 scan."""

from __future__ import annotations

import pandas as pd
import pydicom

from spectbone.cli import main
from spectbone.dicom.nm1 import nm1_path
from spectbone.phantom.realism import view_stats

NM1_TOTAL = 3_596_452


def test_nm1_statistics():
    ds = pydicom.dcmread(nm1_path("auto"))
    stats = view_stats(ds.pixel_array)
    assert stats["total_counts"] == NM1_TOTAL
    assert 0.38 < stats["body_fraction"] < 0.5
    assert 22 <= stats["median_counts_per_body_pixel"] <= 30


def test_realism_verb_end_to_end(tmp_path):
    cohort, truth = tmp_path / "cohort", tmp_path / "truth"
    assert main(["synthesize", "--out", str(cohort), "--truth", str(truth), "--n-patients", "3", "--seed", "2",
                 "--problem-fraction", "0"]) == 0
    log = tmp_path / "logs" / "realism.log"
    rc = main(["realism", "--cohort", str(cohort), "--truth", str(truth), "--nm1", "auto",
               "--figure", str(tmp_path / "fig" / "realism"), "--table", str(tmp_path / "tab" / "realism"),
               "--log", str(log)])
    assert rc == 0
    for suffix in (".png", ".pdf"):
        assert (tmp_path / "fig" / f"realism{suffix}").stat().st_size > 10_000
    df = pd.read_csv(tmp_path / "tab" / "realism.csv")
    nm1 = df[df["source"].str.startswith("NM1")].iloc[0]
    assert nm1["total_counts"] == NM1_TOTAL
    ph = df[(df["source"] == "phantom (clean views)")].set_index("statistic")
    assert (ph["n_views"] == 6).all()
    assert 1e6 <= ph.loc["min", "total_counts"] and ph.loc["max", "total_counts"] <= 4e6
    # the phantom sits in the same range as the real scan
    assert 0.3 < ph.loc["median", "body_fraction"] < 0.6
    assert 8 <= ph.loc["median", "median_counts_per_body_pixel"] <= 45
    md = (tmp_path / "tab" / "realism.md").read_text()
    assert "synthetic" in md and "body pixels" in md
    # never any identity in what the verb writes
    names = {str(pydicom.dcmread(p, stop_before_pixels=True).PatientName) for p in cohort.glob("*.dcm")}
    ids = {str(pydicom.dcmread(p, stop_before_pixels=True).PatientID) for p in cohort.glob("*.dcm")}
    written = md + (tmp_path / "tab" / "realism.csv").read_text() + log.read_text()
    for token in names | ids:
        assert token not in written
