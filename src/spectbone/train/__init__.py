"""Training: ``command`` (`spectbone train <task>`: assembles model, data and loss), ``tasks`` (what
each kind of model optimises and how it is validated), ``engine`` (the seeded, resumable loop),
``losses`` (MSE, perceptual, composite, WGAN-GP).

Called by workflow/rules/train.smk (rules train_*).
"""
