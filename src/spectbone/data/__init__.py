"""Training data: ``datasets`` (torch datasets that draw noise on the fly, paired CT data, lesion
masks) and the pretraining sources: ``pretrain`` (builds the CT / natural-image sets), ``mayo``
(real AAPM/Mayo reader), ``ct_phantom`` (simulated low-dose CT), ``natural_images`` (bundled images).

Called by workflow/rules/data.smk (rule pretrain_data); datasets feed workflow/rules/train.smk.
"""
