"""Still images in and out for the offline commands: decoding with EXIF orientation applied,
encoding PNG / WebP / JPEG, and atomic writes so no reader ever sees a half-written file.

Pixels inside are RGB (or RGBA, or greyscale masks); BGR exists only at the cv2 boundary here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

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
    "jpg": [cv2.IMWRITE_JPEG_QUALITY, 95],
}
IMAGE_KINDS = "PNG, JPEG, WebP, BMP or TIFF"     # what READ_EXTENSIONS are, for messages
_READ_HINT = f"use {IMAGE_KINDS}"


def is_image_path(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in READ_EXTENSIONS


def read_rgb(path: str) -> np.ndarray:
    """Decode an image to (H, W, 3) uint8 RGB, C-contiguous, EXIF orientation applied
    (cv2.IMREAD_COLOR does that). Raises InputError naming the file and the problem."""
    if remote.is_url(path):
        return _decode_rgb(remote.read_bytes(path), path)
    if not os.path.exists(path):
        raise InputError(f"'{path}': no such file")
    if os.path.isdir(path):
        raise InputError(f"'{path}' is a folder, not an image")
    if not os.access(path, os.R_OK):
        raise InputError(f"'{path}': permission denied; check the file's permissions")
    if os.path.getsize(path) == 0:
        raise InputError(f"'{path}' is empty (0 bytes); it is not an image")
    try:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
    except cv2.error as e:  # OpenCV raises for some malformed headers instead of returning None
        raise InputError(f"'{path}' cannot be decoded ({e.err or 'invalid data'}); {_READ_HINT}") from e
    if image is None or image.size == 0:
        raise InputError(f"'{path}' is not an image OpenCV can decode (damaged or another"
                         f" kind of file); {_READ_HINT}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _decode_rgb(data: bytes, url: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None or image.size == 0:
        raise InputError(f"'{url}' is not an image OpenCV can decode (damaged or another"
                         f" kind of file); {_READ_HINT}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encode(image: np.ndarray, fmt: str) -> bytes:
    """(H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA uint8 -> file bytes in `fmt`."""
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
    return data.tobytes()


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


def write_image(path: str, image: np.ndarray, fmt: str) -> None:
    write_atomic(path, encode(image, fmt))
