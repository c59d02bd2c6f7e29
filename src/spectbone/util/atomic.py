"""Atomic file writes: a reader (or a rerun) sees the old file or the whole new one, never a part.

A full disk or a killed job in the middle of ``np.save`` leaves a truncated file that the next
stage would read as data. Writing to a temporary file beside the target and ``os.replace``-ing it
in afterwards is atomic on POSIX; on any error the temporary file is removed and the error
re-raised, so the job fails loudly and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to `path`; on success move it onto `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_npy(path: str | os.PathLike, array) -> None:
    """``np.save`` atomically (the exact file name is kept: no '.npy' appended to the temporary)."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)
        fh.flush()
        os.fsync(fh.fileno())


def save_csv(path: str | os.PathLike, df, **kwargs) -> None:
    """``df.to_csv`` atomically."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)


def save_dicom(path: str | os.PathLike, ds) -> None:
    """``ds.save_as`` (DICOM Part 10) atomically."""
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
