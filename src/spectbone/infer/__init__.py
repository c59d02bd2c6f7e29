"""Applying trained models: ``apply`` (stage-1 estimate, then the denoiser, as in training),
``testset`` (`spectbone infer`: learned models, BM3D chunks and noise estimates over the test set),
``blind`` (blind denoising of NEMA NM1), ``denoise`` (`spectbone denoise`: new DICOM studies).

Called by workflow/rules/infer.smk.
"""
