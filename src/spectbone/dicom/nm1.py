"""The real NEMA WG04 whole-body bone scan "NM1" (pydicom-data): a public NM file with no patient in it.

Used for blind denoising beside the phantom, the phantom's realism check and DICOM tests.
"""

from __future__ import annotations

from pathlib import Path


def nm1_path(path: str = "auto") -> Path:
    """`auto`: pydicom-data's lossless JPEG copy of NM1 (JPEG-LL.dcm), else pydicom's test-data lookup."""
    if path != "auto":
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"NM1 file not found: {p}")
        return p
    try:
        import data_store

        p = Path(data_store.__file__).resolve().parent / "data" / "JPEG-LL.dcm"
        if p.exists():
            return p
    except ImportError:
        pass
    from pydicom.data import get_testdata_file

    found = get_testdata_file("JPEG-LL.dcm")
    if not found:
        raise FileNotFoundError("NEMA NM1 (JPEG-LL.dcm) not found: install pydicom-data==1.0.0")
    return Path(found)
