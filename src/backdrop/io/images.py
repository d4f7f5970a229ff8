"""Still images in and out for the offline commands: decoding with EXIF orientation applied,
encoding PNG / WebP / JPEG, and atomic writes so no reader ever sees a half-written file.

Pixels inside are RGB (or RGBA, or greyscale masks); BGR exists only at the cv2 boundary here.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import zlib
from typing import Iterator, Optional

import cv2
import numpy as np

from backdrop.errors import InputError, SinkError
from backdrop.io import remote

READ_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# Output formats by extension. JPEG is kept for opaque results; it has no alpha channel.
WRITE_FORMATS = {".png": "png", ".webp": "webp", ".jpg": "jpg", ".jpeg": "jpg"}
FORMAT_EXTENSION = {"png": ".png", "webp": ".webp", "jpg": ".jpg"}
ALPHA_FORMATS = ("png", "webp")
_ENCODE_PARAMS = {
    "png": [cv2.IMWRITE_PNG_COMPRESSION, 3],
    "webp": [cv2.IMWRITE_WEBP_QUALITY, 101],    # above 100 selects lossless WebP
    # 4:4:4: chroma subsampling smears colour across 16x16 blocks, so a white background
    # around a cut-out would change up to ~19 px from the subject instead of ~9 (measured).
    "jpg": [cv2.IMWRITE_JPEG_QUALITY, 95,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444],
}
IMAGE_KINDS = "PNG, JPEG, WebP, BMP or TIFF"     # what READ_EXTENSIONS are, for messages
_READ_HINT = f"use {IMAGE_KINDS}"


def is_image_path(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in READ_EXTENSIONS


def _decode(path: str, flags: int) -> np.ndarray:
    if remote.is_url(path):
        return _decode_bytes(remote.read_bytes(path), path, flags)
    if not os.path.exists(path):
        raise InputError(f"'{path}': no such file")
    if os.path.isdir(path):
        raise InputError(f"'{path}' is a folder, not an image")
    if not os.access(path, os.R_OK):
        raise InputError(f"'{path}': permission denied; check the file's permissions")
    if os.path.getsize(path) == 0:
        raise InputError(f"'{path}' is empty (0 bytes); it is not an image")
    try:
        image = cv2.imread(path, flags)
    except cv2.error as e:  # OpenCV raises for some malformed headers instead of returning None
        raise InputError(f"'{path}' cannot be decoded ({e.err or 'invalid data'}); {_READ_HINT}") from e
    if image is None or image.size == 0:
        raise InputError(f"'{path}' is not an image OpenCV can decode (damaged or another"
                         f" kind of file); {_READ_HINT}")
    return image


def read_rgb(path: str) -> np.ndarray:
    """Decode an image to (H, W, 3) uint8 RGB, C-contiguous, EXIF orientation applied
    (cv2.IMREAD_COLOR does that). Raises InputError naming the file and the problem."""
    return cv2.cvtColor(_decode(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def read_rgba(path: str) -> np.ndarray:
    """Decode keeping transparency: (H, W, 4) uint8 RGBA if the file has alpha, else
    (H, W, 3) RGB; 16-bit files are brought to 8 bits. For templates and overlays."""
    image = _decode(path, cv2.IMREAD_UNCHANGED)
    if image.ndim == 2 or image.shape[2] != 4:
        return read_rgb(path)       # no alpha: decoded as usual, EXIF orientation applied
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"'{path}' stores {image.dtype} pixels; save it as 8-bit PNG")
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)


# The IJG (libjpeg) luminance table that quality settings scale; any order (only sums count).
_IJG_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40,
             57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35,
             55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112,
             100, 103, 99)


def _luma_table(data: bytes):
    """The first quantisation table (luminance) of a JPEG's header, or None."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA or length < 2:        # start of scan: the header is over
            return None
        if marker == 0xDB and i + 5 <= len(data):
            wide = data[i + 4] >> 4             # 16-bit entries in a 16-bit table
            body = data[i + 5:i + 5 + 64 * (1 + wide)]
            if len(body) == 64 * (1 + wide):
                return (np.frombuffer(body, ">u2") if wide else np.frombuffer(body, np.uint8))
        i += 2 + length
    return None


def jpeg_quality(path: str) -> Optional[int]:
    """The quality (1-100, IJG scale) a JPEG was saved at, estimated from its luminance
    quantisation table; None for other files or an unreadable header. Reads ~64 KB."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return None
    if not head.startswith(b"\xff\xd8"):
        return None
    table = _luma_table(head)
    if table is None:
        return None
    scale = 100.0 * float(table.astype(np.float64).sum()) / sum(_IJG_LUMA)
    quality = (200.0 - scale) / 2.0 if scale <= 100 else 5000.0 / scale
    return int(min(100, max(1, round(quality))))


def _decode_bytes(data: bytes, url: str, flags: int) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if image is None or image.size == 0:
        raise InputError(f"'{url}' is not an image OpenCV can decode (damaged or another"
                         f" kind of file); {_READ_HINT}")
    return image


def encode(image: np.ndarray, fmt: str, dpi: Optional[int] = None) -> bytes:
    """(H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA uint8 -> file bytes in `fmt`; with
    `dpi`, PNG and JPEG say so (their print size), WebP has no field for it."""
    if fmt not in _ENCODE_PARAMS:
        raise ValueError(f"unknown image format {fmt!r}; expected one of {', '.join(_ENCODE_PARAMS)}")
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise TypeError(f"expected a uint8 grey, RGB or RGBA image, got {image.shape} {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 4:
        if fmt not in ALPHA_FORMATS:
            raise ValueError("JPEG has no alpha channel; encode RGBA as png or webp")
        bgr = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    elif image.ndim == 3:
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    else:
        bgr = image
    ok, data = cv2.imencode(FORMAT_EXTENSION[fmt], bgr, _ENCODE_PARAMS[fmt])
    if not ok:  # pragma: no cover - only on encoder failure
        raise SinkError(f"could not encode a {image.shape[1]}x{image.shape[0]} image as {fmt}")
    return _with_dpi(data.tobytes(), fmt, dpi) if dpi else data.tobytes()


def _with_dpi(data: bytes, fmt: str, dpi: int) -> bytes:
    """The resolution a printer or a photo kiosk reads to print an ID photo at its size
    (OpenCV writes none: PNG without a pHYs chunk, JPEG with a density of 1:1 and no unit,
    which most programs print at 72 or 96 dpi)."""
    if fmt == "png":     # a pHYs chunk (pixels per metre) right after IHDR (8 + 25 bytes)
        per_metre = round(dpi / 0.0254)
        body = b"pHYs" + struct.pack(">IIB", per_metre, per_metre, 1)
        chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body))
        return data[:33] + chunk + data[33:]
    if fmt == "jpg" and data[2:4] == b"\xff\xe0" and data[6:11] == b"JFIF\x00":
        # the JFIF header's units (1: dots per inch) and X and Y density
        return data[:13] + struct.pack(">BHH", 1, dpi, dpi) + data[18:]
    return data


def _file_mode() -> int:
    """The mode an ordinary new file gets (mkstemp makes 0600; outputs should not)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _temp_near(path: str, suffix: str = ".part") -> tuple:
    """A hidden temp file in the destination's folder, so os.replace is an atomic rename."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        return tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=suffix)
    except OSError as e:
        raise SinkError(f"cannot write into '{folder}': {e.strerror}; check that the folder"
                        " exists and is writable") from e


class AtomicFile:
    """A hidden temp file beside `path` that becomes `path` on commit() (an atomic rename)
    or disappears on discard(): a reader sees the finished file or nothing, never a part."""

    def __init__(self, path: str, suffix: str = ".part"):
        self.path = path
        fd, self.tmp = _temp_near(path, suffix)
        os.close(fd)
        self._open = True

    def commit(self) -> None:
        if not self._open:
            return
        try:
            os.chmod(self.tmp, _file_mode())
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        self._open = False

    def discard(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ".part") -> Iterator[str]:
    """Yield a temp path next to `path`; on success it is renamed over `path`, on any
    error or Ctrl-C it is deleted. Either the finished file appears, or nothing does."""
    target = AtomicFile(path, suffix)
    try:
        yield target.tmp
        target.commit()
    except BaseException:
        target.discard()
        raise


def write_atomic(path: str, data: bytes) -> None:
    """Write bytes to `path` through a temp file and a rename (a URL: through fsspec)."""
    if remote.is_url(path):
        remote.write_bytes(path, data)
        return
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
    except OSError as e:
        raise SinkError(f"cannot write '{path}': {e.strerror}; check free space and"
                        " permissions") from e


def write_image(path: str, image: np.ndarray, fmt: str, dpi: Optional[int] = None) -> None:
    write_atomic(path, encode(image, fmt, dpi))
