"""The deployable, count-domain model family and its evidence on real scans.

The paper-protocol models (``spectbone.train``) learn on 128/256-px resized grey-level crops with grey
noise added on top, which reproduces the paper's tables but is not what a camera gives. This family
works on what a site has: whole-body frames at native sampling, integer counts, Poisson statistics,
and no clean images.

  thinning    binomial count splitting and its unbiased error estimate (scores without truth)
  domain      counts <-> network input: count scale, Poisson level map, whole-frame inference
  views       the phantom's native frames with their noiseless truth, split by patient
  training    the count-domain EMANet: mixed-count training on thinned counts (`spectbone train-counts`)
  finetune    self-supervised adaptation to a site's own scans (Noise2Noise on count splits)
  methods     the one registry of methods applied to counts (raw, Gaussian, Anscombe-BM3D, EMANets)
  evaluate    count-split scores per study/fraction/seed/tile, and PSNR/SSIM against the phantom's truth
  report      tables/real_counts.{csv,md} and the NM1 dose-reduction figure
"""
