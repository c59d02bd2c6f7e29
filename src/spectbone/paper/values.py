"""The paper's published numbers (EMANet, J. Optoelectronics·Laser 34(7), 2023), transcribed once.

Used only to print beside our results and to phrase the claims; never to compute anything.
"""

TABLE1 = {  # data type -> (training, testing, total)
    "Before expansion": (270, 40, 310),
    "After expansion": (13500, 320, 13820),
}

TABLE2 = {0: 0.382, 5: 0.406, 10: 0.440, 15: 0.461, 20: 0.465, 30: 0.380, 40: 0.311}

TABLE3 = {  # pretraining source -> (PSNR, SSIM) at sigma = 20
    "none": (22.1, 0.66),
    "natural": (29.8, 0.83),
    "ct": (30.5, 0.85),
}

TABLE4 = {  # ablation preset -> (PSNR, SSIM)
    "plain": (26.95, 0.77),
    "rdc": (27.55, 0.80),
    "rdc_md": (28.77, 0.82),
    "rdc_md_rcag": (29.80, 0.85),
    "full": (30.72, 0.86),
}

TABLE5 = {  # loss -> (PSNR, SSIM)
    "MSE": (31.3344, 0.8456),
    "Perceptual": (19.1844, 0.5013),
    "Composite": (30.1902, 0.8360),
}

TABLE6 = {  # level -> {method: (estimate, RMSE)}
    5: {"HBNE": (4.78, 0.32), "DWTNE": (4.98, 0.18), "Ours": (5.05, 0.22)},
    10: {"HBNE": (9.52, 0.74), "DWTNE": (10.21, 0.38), "Ours": (9.90, 0.32)},
    15: {"HBNE": (16.21, 0.52), "DWTNE": (16.21, 0.62), "Ours": (15.15, 0.39)},
    20: {"HBNE": (22.04, 0.91), "DWTNE": (21.17, 0.59), "Ours": (20.20, 0.78)},
    25: {"HBNE": (23.82, 1.08), "DWTNE": (23.97, 0.87), "Ours": (25.05, 0.81)},
    30: {"HBNE": (28.29, 1.96), "DWTNE": (29.01, 1.30), "Ours": (30.30, 0.95)},
    35: {"HBNE": (38.81, 2.07), "DWTNE": (33.21, 1.79), "Ours": (35.40, 0.77)},
    40: {"HBNE": (42.83, 2.19), "DWTNE": (42.09, 2.01), "Ours": (40.10, 1.10)},
}

_T7_LEVELS = (5, 10, 15, 20, 25, 30, 35, 40)
_T7 = {  # method -> "psnr/ssim" per level, as printed
    "Noisy": "29.36/0.85 27.72/0.78 24.34/0.71 21.92/0.65 20.02/0.60 18.46/0.56 17.15/0.52 16.01/0.49",
    "BM3D": "29.93/0.78 28.68/0.70 25.90/0.65 21.87/0.60 20.26/0.56 18.95/0.53 17.84/0.51 17.37/0.56",
    "DnCNN": "31.55/0.87 31.03/0.86 30.15/0.83 29.66/0.82 28.37/0.79 27.02/0.77 25.86/0.74 24.62/0.71",
    "RED-CNN": "32.11/0.90 33.96/0.92 33.01/0.90 31.60/0.87 29.65/0.83 28.21/0.80 25.99/0.77 24.49/0.73",
    "WGAN": "30.23/0.87 31.43/0.85 29.75/0.82 28.30/0.79 26.99/0.76 25.88/0.69 24.74/0.69 23.05/0.66",
    "EMANet": "32.91/0.88 30.95/0.84 29.16/0.83 29.43/0.83 31.33/0.85 31.92/0.85 32.44/0.86 31.51/0.85",
}
TABLE7 = {m: {lv: tuple(float(v) for v in cell.split("/")) for lv, cell in zip(_T7_LEVELS, row.split())}
          for m, row in _T7.items()}
TABLE7_MISPRINT = "The paper's noisy-image PSNR at level 5 (29.36 dB) fits no monotone model (20 log10(255/5) = 34.2 dB)."

TABLE8 = {  # method -> (precision, IoU, recall)
    "Original": (0.7255, 0.4982, 0.5994),
    "BM3D": (0.6701, 0.4593, 0.5933),
    "DnCNN": (0.7342, 0.5057, 0.6240),
    "RED-CNN": (0.7388, 0.4979, 0.6086),
    "WGAN": (0.7363, 0.5017, 0.6053),
    "EMANet": (0.7484, 0.5112, 0.6229),
}
