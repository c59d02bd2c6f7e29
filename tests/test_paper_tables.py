"""Tables read only their declared inputs; Table 6's spread and true-noise error; the blind table; notes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spectbone.paper import inconsistencies
from spectbone.paper import values as paper
from spectbone.paper.tables import Results, UndeclaredInput, table6, table_blind

SETTINGS = {"bootstrap": 200, "seed": 0, "synthetic": True, "main": "emanet_ct_full_lam0.2"}


def test_undeclared_read_is_an_error(tmp_path):
    declared = tmp_path / "eval" / "dncnn.csv"
    declared.parent.mkdir()
    declared.write_text("method,image_id,noise_level,psnr\n")
    (tmp_path / "eval" / "redcnn.csv").write_text("method,image_id,noise_level,psnr\n")  # exists, undeclared
    res = Results([declared], SETTINGS)
    assert res.file("eval/dncnn.csv") == declared
    with pytest.raises(UndeclaredInput, match="eval/redcnn.csv"):
        res.eval("redcnn")


def test_table6_spread_and_error_against_the_true_noise(tmp_path):
    rows = []
    for level in (10, 20):
        for n, (estimate, true_noise) in enumerate([(level - 1.0, level + 2.0), (level + 3.0, level + 2.0)]):
            for method in ("HBNE", "DWTNE", "Ours"):
                rows.append({"image_id": f"im{n}", "noise_level": level, "method": method,
                             "estimate": estimate, "true_noise": true_noise})
    path = tmp_path / "eval" / "noise_estimates.csv"
    path.parent.mkdir()
    pd.DataFrame(rows).to_csv(path, index=False)
    table, _, notes = table6(Results([path], SETTINGS))
    row = table.set_index("noise_level").loc[10]
    assert row["Ours_estimate"] == pytest.approx(11.0)
    assert row["Ours_sd"] == pytest.approx(np.std([9.0, 13.0], ddof=1))
    assert row["Ours_rmse"] == pytest.approx(np.sqrt((1 + 9) / 2))
    assert row["true_noise"] == pytest.approx(12.0)
    assert row["Ours_rmse_true"] == pytest.approx(np.sqrt((9 + 1) / 2))
    assert row["paper_Ours_rmse"] == paper.TABLE6[10]["Ours"][1]
    assert notes[0].startswith("Noise estimation (RMSE against the true total noise): our estimator has the lowest")


def test_blind_table_scores_the_denoised_originals_against_truth(tmp_path):
    methods = ["noisy", "bm3d", "bm3d_anscombe", "dncnn", "redcnn", "wgan", SETTINGS["main"]]
    paths = []
    for k, method in enumerate(methods):
        rows = [{"method": method, "image_id": f"im{n}", "noise_level": 0, "psnr": np.nan, "ssim": np.nan,
                 "psnr_truth": 30.0 + k + n, "ssim_truth": 0.8} for n in range(4)]
        rows += [{"method": method, "image_id": f"im{n}", "noise_level": 5, "psnr": 1.0, "ssim": 0.1,
                  "psnr_truth": 1.0, "ssim_truth": 0.1} for n in range(4)]  # noisy-level rows: ignored here
        paths.append(tmp_path / "eval" / f"{method}.csv")
        paths[-1].parent.mkdir(exist_ok=True)
        pd.DataFrame(rows).to_csv(paths[-1], index=False)
    table, _, notes = table_blind(Results(paths, SETTINGS))
    assert list(table["method"])[0] == "Original"
    assert table["psnr_truth"].to_list() == pytest.approx([31.5 + k for k in range(len(methods))])
    assert "6 of 6 methods bring them closer to the truth" in notes[0]


def test_paper_notes_follow_the_transcribed_numbers():
    notes = " ".join(inconsistencies.paper_notes())
    t7_mean = np.mean([v[0] for v in paper.TABLE7["EMANet"].values()])
    assert f"{paper.TABLE4['full'][0]:.2f} dB (Table 4)" in notes and f"{t7_mean:.2f} dB" in notes
    below = [m for m in inconsistencies.DEEP if paper.TABLE8[m][1] < paper.TABLE8["Original"][1]]
    assert below and all(m in inconsistencies.segmentation_claim() for m in below)
    impossible = sum(rmse < abs(est - lv) for lv, row in paper.TABLE6.items() for est, rmse in row.values())
    assert f"in {impossible} of 24 cells" in notes
