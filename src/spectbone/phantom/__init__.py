"""Whole-body planar Tc-99m MDP bone-scan phantom, anterior and posterior views (docs/design.md, The phantom).

Geometry. Anatomy is laid out in centimetres for a 170 cm reference patient: ``x`` is lateral, positive
towards the patient's left, ``y`` runs down from the vertex. A patient scales it by height (``y`` and
``x``), skeletal width and body habitus (soft tissue only), and moves the arms and legs a little.
Each structure is an analytic solid (ellipsoid, tapered capsule chain, plate) whose *projected
thickness* is computed on the pixel grid of a 1024 x 256 frame at 2.26 mm.

Physics, kept simple but in the right direction:
* activity per cm of path: bone >> soft tissue; bladder very hot; kidneys faint (seen posteriorly);
  ribs irregular per patient; benign foci (degenerative joints, healed rib fractures, injection
  site) that are not lesions;
* attenuation ``exp(-mu * distance to the detector)`` with ``mu = 0.11 / cm`` (broad-beam Tc-99m), so
  the spine and posterior ribs are brighter in the posterior view, the sternum, patellae and anterior
  ribs in the anterior view; soft tissue is integrated through its depth analytically;
* depth-dependent collimator blur (LEHR-like FWHM growing with distance) by rendering into four
  distance layers, each blurred with its own Gaussian, plus a broad scatter halo;
* the expected-count image is scaled to the study's count level and ``Poisson`` sampled.

Both views are rendered in the anterior geometry (patient's right on the image left); the posterior
view is then mirrored, as a camera shows it (patient's left on the image left).

Truth kept per view: the noiseless expected counts, an exact binary mask of every lesion footprint,
and the shoulder-to-pelvis box (top of clavicles / humeral heads to bottom of the ischia; left/right =
body outline within those rows; bottom and right exclusive).

Modules: ``geometry`` (the camera frame), ``patient`` (who), ``anatomy`` (skeleton and organs),
``lesions``, ``benign`` (confounders that are not lesions), ``problems`` (cases screening must catch), ``scene`` (rendering and camera), ``study``
(the generator); ``synthesize`` writes the cohort as NM DICOM, ``realism`` compares it with NM1.
Called by workflow/rules/phantom.smk (rules synthesize, realism).
"""

from spectbone.phantom.anatomy import SACRUM_TOP_CM, Anatomy
from spectbone.phantom.benign import BENIGN_PROBABILITY, add_benign
from spectbone.phantom.geometry import COLS, PIXEL_MM, ROWS, VIEWS
from spectbone.phantom.lesions import LESION_SITE_WEIGHTS, add_lesions
from spectbone.phantom.patient import Lesion, Patient, Study, ViewImage, sample_n_lesions, sample_patient
from spectbone.phantom.problems import PROBLEMS
from spectbone.phantom.scene import Scene, collimator_sigma_px
from spectbone.phantom.study import make_study

__all__ = ["Anatomy", "BENIGN_PROBABILITY", "COLS", "LESION_SITE_WEIGHTS", "Lesion", "PIXEL_MM", "PROBLEMS", "Patient", "ROWS", "SACRUM_TOP_CM",
           "Scene", "Study", "VIEWS", "ViewImage", "add_benign", "add_lesions", "collimator_sigma_px", "make_study",
           "sample_n_lesions", "sample_patient"]
