"""spectbone: reproduce EMANet (two-stage U-Net denoising of SPECT bone scans) from raw DICOM."""

__version__ = "0.1.0"
