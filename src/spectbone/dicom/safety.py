"""Safe decoding: size limits and stream checks that run *before* anything is inflated or decoded.

A hostile or broken file must cost a rejects row, not the machine: a 52 KB deflated data set can
declare half a gigabyte, a header can promise 65535 x 65535 x 1000 frames, and a cut-short JPEG-LS
stream decodes silently to wrong counts. So, in order:

1. the file's size on disk is bounded (`check_file_size`);
2. a deflated data set is inflated once in a streaming pass that only counts bytes, up to a cap
   (`check_deflated`), before pydicom inflates it for real;
3. rows x columns x frames x bits from the header are checked against `DecodeLimits`
   (`check_dimensions`);
4. encapsulated pixel data must not be much larger than the image it claims to hold, and each
   JPEG / JPEG-LS / JPEG 2000 frame must start and end with the right markers and declare the
   header's size (`check_encapsulated`): where a stream can show it is corrupt, we reject it.

The defaults fit any whole-body scan many times over (1024 x 256 x 2 frames x 16 bits is 1 MiB);
`spectbone convert --max-rows/--max-cols/--max-frames/--max-mb` (config ``data.decode_limits``)
change them. Every failure raises `DicomRejected` with a reason for people.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import DeflatedExplicitVRLittleEndian, UID

from spectbone.dicom.errors import DicomRejected

MIB = 1 << 20
HEADER_ALLOWANCE = 64 * MIB  # room for non-pixel elements (overlays, private tags, thumbnails)
_JPEG_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                  "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
_J2K_SYNTAXES = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
                 "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"}
# JPEG start-of-frame markers (baseline, extended, progressive, lossless; JPEG-LS SOF55 = 0xF7)
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_STANDALONE = {0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9}


@dataclass(frozen=True)
class DecodeLimits:
    max_rows: int = 4096
    max_cols: int = 4096
    max_frames: int = 256
    max_mb: float = 256.0  # decoded pixel data, all frames

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * MIB)


DEFAULT_LIMITS = DecodeLimits()


def check_file_size(path: Path, limits: DecodeLimits) -> None:
    size = path.stat().st_size
    if size > limits.max_bytes + HEADER_ALLOWANCE:
        raise DicomRejected(f"the file is {size / MIB:,.0f} MiB, more than the decoding limit allows "
                            f"({limits.max_mb:g} MiB of pixel data); raise --max-mb if this is a real image")


def check_deflated(path: Path, limits: DecodeLimits) -> None:
    """Count the inflated size of a deflated data set in a streaming pass, stopping at the cap."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    with open(path, "rb") as fp:
        try:
            read_preamble(fp, True)  # a file without preamble/DICM still gets its meta read (and checked)
            meta = _read_file_meta_info(fp)
        except Exception:
            return  # not a Part 10 file with meta: pydicom reads it (or rejects it) without inflating
        if UID(str(meta.get("TransferSyntaxUID", ""))) != DeflatedExplicitVRLittleEndian:
            return
        cap = limits.max_bytes + HEADER_ALLOWANCE
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        total = 0
        while True:
            chunk = fp.read(MIB)
            if not chunk:
                break
            data = chunk
            while data:
                try:
                    out = inflater.decompress(data, MIB)
                except zlib.error:
                    raise DicomRejected("the deflated data set is corrupt (the zlib stream does not inflate)") from None
                total += len(out)
                if total > cap:
                    raise DicomRejected(
                        f"the deflated data set inflates to more than {cap / MIB:,.0f} MiB (from a "
                        f"{os.path.getsize(path) / MIB:,.2f} MiB file): beyond the decoding limit, not inflated")
                data = inflater.unconsumed_tail


def check_dimensions(ds, n_frames: int, limits: DecodeLimits) -> int:
    """Rows x columns x frames x bits against the limits; returns the decoded size in bytes."""
    rows, cols, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
    if bits not in (1, 8, 16, 32, 64):
        raise DicomRejected(f"the header gives {bits} bits allocated per pixel, which no image uses")
    too_big = [f"{what} {value:,} > {limit:,}" for what, value, limit in
               (("rows", rows, limits.max_rows), ("columns", cols, limits.max_cols),
                ("frames", n_frames, limits.max_frames)) if value > limit]
    size = (rows * cols * n_frames * bits + 7) // 8
    if size > limits.max_bytes:
        too_big.append(f"{size / MIB:,.1f} MiB of pixel data > {limits.max_mb:g} MiB")
    if too_big:
        raise DicomRejected(f"the header declares an image beyond the decoding limits ({'; '.join(too_big)}): "
                            "not decoded")
    return size


def check_encapsulated(ds, n_frames: int, ts: UID, decoded_bytes: int) -> None:
    """Encapsulated pixel data: bounded size, frame count, and markers of JPEG-family frames."""
    from pydicom.encaps import generate_frames

    data = ds.PixelData
    if len(data) > 2 * decoded_bytes + MIB:
        raise DicomRejected(f"the compressed pixel data ({len(data):,} bytes) is far larger than the image it "
                            f"claims to hold ({decoded_bytes:,} bytes decoded): corrupt or not what the header says")
    if str(ts) not in _JPEG_SYNTAXES | _J2K_SYNTAXES:
        return
    try:
        frames = list(generate_frames(data, number_of_frames=n_frames))
    except Exception as exc:
        raise DicomRejected(f"the encapsulated pixel data cannot be split into frames ({exc})") from None
    if len(frames) != n_frames:
        raise DicomRejected(f"the pixel data holds {len(frames)} compressed frame(s), the header says {n_frames}")
    for i, frame in enumerate(frames, start=1):
        if str(ts) in _JPEG_SYNTAXES:
            problem = _jpeg_problem(frame, int(ds.Rows), int(ds.Columns))
        else:
            problem = _j2k_problem(frame, int(ds.Rows), int(ds.Columns))
        if problem:
            raise DicomRejected(f"compressed frame {i} of {n_frames} is corrupt: {problem}; not decoded "
                                "(a decoder would return wrong counts)")


def _ends_with_eoi(frame: bytes) -> bool:
    """EOI (FFD9) at the end, allowing encoders' padding (NM1 ends FFD9 FF). Coded data cannot hold
    FFD9 (JPEG stuffs a 00 after FF; JPEG-LS clears the next bit), so a cut stream shows."""
    return b"\xff\xd9" in frame.rstrip(b"\x00")[-4:]


def _jpeg_problem(frame: bytes, rows: int, cols: int) -> str | None:
    """Why a JPEG / JPEG-LS frame is unusable (missing SOI/SOF/EOI, size unlike the header), else None."""
    if not frame.startswith(b"\xff\xd8"):
        return "it does not start with a JPEG start-of-image marker"
    if not _ends_with_eoi(frame):
        return "it has no end-of-image marker (the stream is cut short)"
    pos = 2
    while pos + 4 <= len(frame):
        if frame[pos] != 0xFF:
            return "its marker segments are damaged"
        marker = frame[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        length = int.from_bytes(frame[pos + 2:pos + 4], "big")
        if marker in _SOF_MARKERS:
            if pos + 9 > len(frame):
                return "its frame header is cut short"
            height = int.from_bytes(frame[pos + 5:pos + 7], "big")
            width = int.from_bytes(frame[pos + 7:pos + 9], "big")
            if width != cols or height not in (0, rows):
                return f"the stream declares {height}x{width} pixels, the header {rows}x{cols}"
            return None
        if marker == 0xDA:  # start of scan before any frame header
            break
        pos += 2 + length
    return "it has no frame header (SOF marker)"


def _j2k_problem(frame: bytes, rows: int, cols: int) -> str | None:
    """Why a JPEG 2000 codestream is unusable (missing SOC/SIZ/EOC, size unlike the header), else None."""
    if not frame.startswith(b"\xff\x4f\xff\x51"):
        return None  # a JP2 file-format wrapper: left to the decoder
    if not _ends_with_eoi(frame):  # EOC has the same code as JPEG's EOI
        return "it has no end-of-codestream marker (the stream is cut short)"
    if len(frame) < 24:
        return "its image header (SIZ) is cut short"
    xsiz, ysiz, xo, yo = (int.from_bytes(frame[o:o + 4], "big") for o in (8, 12, 16, 20))
    if (xsiz - xo, ysiz - yo) != (cols, rows):
        return f"the stream declares {ysiz - yo}x{xsiz - xo} pixels, the header {rows}x{cols}"
    return None
