"""The paper's noise: ``poisson`` (signal-dependent Poisson at RMS level sigma, seeded),
``augment`` (training-noise manifest, materialised test set), ``estimators`` (classical HBNE and
DWTNE noise-level estimators).

Called by workflow/rules/noise.smk (rules noise_manifest, testset); used by training and evaluation.
"""
