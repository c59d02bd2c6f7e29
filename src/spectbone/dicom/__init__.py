"""DICOM in and out: reading NM studies of any transfer syntax (``read``), writing NM studies
(``write``: the phantom cohort, derived denoised studies), and the public NEMA NM1 scan (``nm1``).

Used by rules synthesize, convert, realism, blind_nm1 and by `spectbone denoise`.
"""
