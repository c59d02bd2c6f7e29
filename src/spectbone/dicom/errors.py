"""The one exception of the DICOM layer: a file that cannot become a count image."""


class DicomRejected(Exception):
    """A file that cannot become a count image; ``str(exc)`` is the reason for people (never a path)."""
