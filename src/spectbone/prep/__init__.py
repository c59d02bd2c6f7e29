"""Raw DICOM -> training-ready 2-D images: ``convert`` (DICOM -> per-view counts + manifest),
``crop`` (shoulder-to-pelvis box, resize, grey mapping), ``screen`` (contamination, truncation,
low counts), ``preprocess`` (crop + screen per view), ``split`` (patient-level train/val/test).

Called by workflow/rules/prep.smk (rules convert, preprocess, split).
"""
