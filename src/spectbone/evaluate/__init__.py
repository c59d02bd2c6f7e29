"""Scoring and the classical denoisers: ``metrics`` (PSNR, SSIM, RMSE, bootstrap intervals),
``classical`` (BM3D, Anscombe-BM3D), ``score`` (`spectbone evaluate`: every method against the
original and against the phantom's truth, and lesion segmentation).

Called by workflow/rules/evaluate.smk; BM3D runs from workflow/rules/infer.smk.
"""
