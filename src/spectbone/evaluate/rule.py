"""The one scoring rule: every image is scored the way its reference was made.

Preprocessing maps counts to grey levels and clips them to [0, 255] (``prep.crop.to_grey``: the
0.5 % brightest pixels saturate, as on a reading screen), and the noiseless truth goes through the
same map. So the references of every score (the acquired original, the phantom's truth) live in
[0, 255]. A method's output, or a noisy input, may leave that range (BM3D undershoots dark
background, Poisson noise overshoots saturated bone); left as it is, the part outside the range is
counted as error that the references could never show, and methods with a bounded output (a ReLU
head, an Anscombe inverse) would be favoured over those without. The rule: **every image that is
scored (noisy input, every method's output, every input of the lesion segmenter) is clipped to
[0, 255] exactly as the references were; nothing is rounded.** Noise *estimators* see the images as
drawn (Table 6): clipping is a scoring convention, not something a method gets to rely on.
"""

from __future__ import annotations

import numpy as np

from spectbone.noise.poisson import MAX_GREY

SCORE_RANGE = (0.0, MAX_GREY)

SCORING_RULE = ("Scoring rule (every method, every table): each scored image (noisy input or a method's output) is "
                f"clipped to [{SCORE_RANGE[0]:g}, {SCORE_RANGE[1]:g}] grey levels, as preprocessing clipped the "
                "references (original and truth); nothing is rounded (spectbone.evaluate.rule).")


def as_scored(image: np.ndarray) -> np.ndarray:
    """The image as the scores see it: float64, clipped to the references' range [0, 255]."""
    return np.clip(np.asarray(image, dtype=np.float64), *SCORE_RANGE)
