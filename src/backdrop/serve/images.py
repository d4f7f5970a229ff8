"""Uploaded image bytes -> arrays, refusing what must not be decoded: only still-image
formats, and the pixel count is read from the header (PIL's Image.open reads nothing more)
and checked before any pixel is decoded, so a small file that declares 30000x30000 costs
nothing. Decoding happens in the worker processes, the header check also in the server."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from backdrop.serve.apierror import ApiError

# PIL format name -> what a client may call it; MPO is what many cameras' JPEGs open as.
ACCEPTED = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WebP", "BMP": "BMP",
            "TIFF": "TIFF"}
KINDS = "PNG, JPEG, WebP, BMP or TIFF"


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 40_000_000


def _open(data: bytes, what: str, max_pixels: int):
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ApiError(400, f"the {what} is empty (0 bytes); send a {KINDS} image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's own guard (its default limit, above ours): a backstop for any format
        # whose size our check below would not see
        raise ApiError(413, f"the {what} declares too many pixels for Pillow to decode"
                       f" safely, over the limit of {max_pixels / 1e6:g} million pixels;"
                       " send a smaller image") from e
    except UnidentifiedImageError as e:
        raise ApiError(400, f"the {what} is not a readable image (damaged, or not a {KINDS}"
                       " file)") from e
    except Exception as e:  # PIL raises many kinds on a broken header
        raise ApiError(400, f"the {what} cannot be read ({type(e).__name__}: {e}); send a"
                       f" complete {KINDS} file") from e
    if image.format not in ACCEPTED:
        raise ApiError(415, f"the {what} is {image.format}, which is not accepted; send {KINDS}")
    w, h = image.size
    if w * h > max_pixels:
        raise ApiError(413, f"the {what} is {w}x{h} = {w * h / 1e6:.1f} million pixels, over"
                       f" the limit of {max_pixels / 1e6:g} million pixels; send a smaller image")
    if w < 1 or h < 1:
        raise ApiError(400, f"the {what} has no pixels ({w}x{h})")
    return image


def check(data: bytes, what: str, limits: Limits) -> Tuple[str, int, int]:
    """(format, width, height) from the header alone; ApiError 400/413/415 otherwise."""
    image = _open(data, what, limits.max_pixels)
    return image.format, image.size[0], image.size[1]


def _decoded(data: bytes, what: str, limits: Limits):
    from PIL import ImageOps

    image = _open(data, what, limits.max_pixels)
    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except Exception as e:  # truncated data: OSError, SyntaxError, ValueError
        raise ApiError(400, f"the {what} cannot be decoded ({e}); the file is truncated or"
                       " damaged") from e


def decode_rgb(data: bytes, what: str, limits: Limits) -> np.ndarray:
    """(H, W, 3) uint8 RGB, EXIF orientation applied (as `backdrop image` reads files)."""
    image = _decoded(data, what, limits)
    # a writable copy: np.asarray of a PIL image is read-only, and the pipeline takes frames
    # it may work in place (as decoded files are)
    return np.array(image.convert("RGB"), dtype=np.uint8, order="C")


def decode_matte(data: bytes, what: str, limits: Limits) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(matte, colour): the matte (H, W) float32 in 0..1 from a grey image (255 = subject)
    or from an image's alpha channel (so the cut-out /v1/remove answered can be sent back as
    it is), and with a cut-out also its RGB (the subject's colour as the pipeline estimated
    it; None for a grey matte)."""
    image = _decoded(data, what, limits)
    if "A" in image.getbands():
        rgba = np.asarray(image.convert("RGBA"))
        return rgba[..., 3].astype(np.float32) / 255.0, np.ascontiguousarray(rgba[..., :3])
    return np.asarray(image.convert("L")).astype(np.float32) / 255.0, None


def decode_strokes(data: bytes, what: str, limits: Limits) -> Tuple[np.ndarray, np.ndarray]:
    """(keep, remove) bool masks from a hints image: green pixels mark what to keep, red
    what to remove; anything else (and transparent pixels) is no hint."""
    rgba = np.asarray(_decoded(data, what, limits).convert("RGBA"))
    r, g, a = rgba[..., 0] >= 128, rgba[..., 1] >= 128, rgba[..., 3] >= 128
    return g & ~r & a, r & ~g & a
