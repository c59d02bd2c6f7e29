"""`spectbone split` checks what it promises: no patient and no SOP instance on two sides (issue 20)."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import phantom_through_preprocess

from spectbone.cli import main
from spectbone.prep.split import check_no_leak


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    _, _, conv, pre = phantom_through_preprocess(root, n_patients=6, seed=5, size=32)
    return root, conv, pre


def test_split_logs_the_leakage_check_on_a_converted_cohort(phantom):
    root, conv, pre = phantom
    out, log = root / "split.csv", root / "split.log"
    assert main(["split", "--preprocess", str(pre / "preprocess.csv"), "--manifest", str(conv / "manifest.csv"),
                 "--out", str(out), "--test-fraction", "0.34", "--seed", "1", "--log", str(log)]) == 0
    split = pd.read_csv(out)
    manifest = pd.read_csv(conv / "manifest.csv", keep_default_na=False)
    n_sop = manifest.loc[manifest["image_id"].isin(split["image_id"]), "sop_instance_id"].nunique()
    text = log.read_text()
    assert f"{split['patient_id'].nunique()} patients, each on one side" in text
    assert f"{n_sop} SOP instances, each on one side" in text and n_sop >= 1


def test_one_sop_instance_under_two_patient_ids_on_two_sides_is_refused(phantom):
    """A study re-exported under another patient ID: the patient-level split cannot see it, the check does."""
    root, conv, pre = phantom
    manifest = pd.read_csv(conv / "manifest.csv", keep_default_na=False, dtype=str)
    ok = manifest[manifest["status"] == "ok"].reset_index(drop=True)
    a, b = ok.iloc[0], ok[ok["patient_id"] != ok.loc[0, "patient_id"]].iloc[0]
    split = pd.DataFrame({"image_id": [a["image_id"], b["image_id"]], "patient_id": [a["patient_id"], b["patient_id"]],
                          "view": [a["view"], b["view"]], "set": ["train", "test"]})
    assert "2 SOP instances, each on one side" in check_no_leak(split, manifest)
    manifest.loc[manifest["image_id"] == b["image_id"], "sop_instance_id"] = a["sop_instance_id"]
    with pytest.raises(ValueError, match=f"SOP instances with images on two sides.*{a['sop_instance_id']}"):
        check_no_leak(split, manifest)
    split.loc[1, "patient_id"] = a["patient_id"]
    with pytest.raises(ValueError, match=f"patients on two sides of the split: {a['patient_id']}"):
        check_no_leak(split, manifest)
