"""Pixel work specific to offline outputs: RGBA cut-outs, a soft drop shadow, the --check
contact sheet and the "too small for clean edges" warnings. Pure functions over arrays."""

from __future__ import annotations

from typing import List, Optional, Tuple

import cv2
import numpy as np

# Measured on the 80 evaluation photos (best quality, photos shrunk so the shorter side is S;
# mean IoU / MAE against hand-made masks): S=384 0.919/0.024, 256 0.919/0.025,
# 192 0.914/0.029, 160 0.911/0.031, 128 0.906/0.035, 64 0.873/0.053. Edges stay near the
# plateau down to 192 px and degrade quickly below it.
MIN_SHORT_SIDE = 192
# Same photos placed on a larger canvas so the person covers less of it: person fraction
# 23% IoU 0.923, 10% 0.904, 6% 0.862, 2.6% 0.639, 1.5% 0.374. The model sees the whole
# picture at 256x256, so a small person gets few model pixels whatever the resolution.
MIN_PERSON_FRACTION = 0.05
NO_PERSON_FRACTION = 0.001
# 40 object photos re-saved as JPEG at quality q (best quality, --subject any; IoU / MAE in a
# 9 px band on the outline): q95 0.891/0.184, 70 0.866/0.198, 50 0.879/0.203, 35 0.861/0.210,
# 20 0.822/0.233, 10 0.707/0.289. The blocks start to decide the outline below ~40.
MIN_JPEG_QUALITY = 40

SHADOW_OPACITY = 0.5        # darkest point of the shadow: half-transparent black
SHADOW_OFFSET = (0.015, 0.03)  # (x, y) shift as a fraction of the subject's height
SHADOW_SOFTNESS = 0.025     # Gaussian sigma as a fraction of the subject's height

CHECK_TILE = 480            # long side of each contact-sheet tile, pixels
CHECK_COLOURS = ((255, 255, 255), (0, 0, 0), (128, 128, 128), None, (0, 200, 0))  # None: checker


def quality_warnings(width: int, height: int, alpha: np.ndarray,
                     what: str = "person") -> List[str]:
    """Reasons the cut-out may look rough; empty when the input is fine. `what` names the
    subject: "person" (--subject person) or "subject"."""
    notes = []
    if min(width, height) < MIN_SHORT_SIDE:
        notes.append(f"only {width}x{height} px: edges are clean from {MIN_SHORT_SIDE} px on the"
                     " shorter side; use a larger original if you have one")
    person = np.count_nonzero(alpha >= 128) / alpha.size
    if person < NO_PERSON_FRACTION:
        fix = "; try --subject any" if what == "person" else ""
        notes.append(f"no {what} found; the result is (almost) all background{fix}")
    elif person < MIN_PERSON_FRACTION:
        notes.append(f"the {what} covers only {person:.1%} of the picture (clean edges need"
                     f" {MIN_PERSON_FRACTION:.0%} or more); crop closer to the {what}")
    return notes


def compression_warnings(jpeg_quality: Optional[int]) -> List[str]:
    """A source saved as a heavily compressed JPEG (quality estimated from its file)."""
    if jpeg_quality is None or jpeg_quality >= MIN_JPEG_QUALITY:
        return []
    return [f"saved as JPEG at quality ~{jpeg_quality}: its compression blocks make the outline"
            f" noisy (clean from ~{MIN_JPEG_QUALITY}); use a less compressed original if you"
            " have one"]


def rgba(frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The frame's own pixels with the matte as alpha: (H, W, 4) uint8.

    Fully transparent pixels are zeroed: invisible anyway, and otherwise the file would
    still carry the whole removed background (a privacy leak, and 2-3x the PNG size)."""
    out = np.empty(alpha.shape + (4,), np.uint8)
    out[..., :3] = cv2.bitwise_and(frame, frame, mask=(alpha > 0).view(np.uint8))
    out[..., 3] = alpha
    return out


def _subject_height(alpha: np.ndarray) -> Optional[int]:
    rows = np.flatnonzero((alpha >= 128).any(axis=1))
    return None if rows.size == 0 else int(rows[-1] - rows[0] + 1)


def shadow_matte(alpha: np.ndarray) -> np.ndarray:
    """A drop shadow's opacity, float32 (H, W) in [0, SHADOW_OPACITY]: the silhouette shifted
    down and right, blurred. Scaled by the subject's size so it looks alike at any resolution."""
    h, w = alpha.shape
    size = _subject_height(alpha)
    if size is None:
        return np.zeros((h, w), np.float32)
    sigma = max(1.0, SHADOW_SOFTNESS * size)
    # Blur at reduced resolution: a wide Gaussian at full size costs ~1 s on a 12 MP photo.
    factor = max(1.0, sigma / 2.0)
    sw, sh = max(1, round(w / factor)), max(1, round(h / factor))
    small = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    dx, dy = SHADOW_OFFSET[0] * size / factor, SHADOW_OFFSET[1] * size / factor
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    small = cv2.warpAffine(small, shift, (sw, sh), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    full = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(full * np.float32(SHADOW_OPACITY / 255.0), 0.0, SHADOW_OPACITY)


def _fraction(alpha: np.ndarray) -> np.ndarray:
    return alpha.astype(np.float32)[..., None] * np.float32(1 / 255)


def _to_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def rgba_with_shadow(frame: np.ndarray, alpha: np.ndarray, shadow: np.ndarray) -> np.ndarray:
    """The subject over a black shadow layer, as straight (non-premultiplied) RGBA.

    Where the subject is opaque its pixels are the frame's, bit for bit; in the rim the
    colour is un-premultiplied so that compositing the file gives subject-over-shadow."""
    a = _fraction(alpha)
    s = shadow[..., None]
    total = a + s * (1.0 - a)
    colour = frame.astype(np.float32) * (a / np.maximum(total, 1e-6))
    out = np.dstack((_to_u8(colour), _to_u8(total[..., 0] * 255.0)))
    solid = alpha == 255
    out[solid, :3] = frame[solid]
    return out


def composite_with_shadow(frame: np.ndarray, alpha: np.ndarray, composited: np.ndarray,
                          shadow: np.ndarray) -> np.ndarray:
    """Put the shadow between the subject and the background of an already composited image.

    composited = F*a + B*(1-a), so the background's share B*(1-a) is composited - F*a and
    the background itself is never needed: result = F*a + (composited - F*a) * (1 - shadow)."""
    subject = frame.astype(np.float32) * _fraction(alpha)
    share = composited.astype(np.float32) - subject
    return _to_u8(subject + share * (1.0 - shadow[..., None]))


def _checker(h: int, w: int, square: int = 12) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    light = ((yy // square + xx // square) % 2).astype(bool)
    out = np.full((h, w, 3), 102, np.uint8)
    out[light] = 153
    return out


def _tile_size(w: int, h: int) -> Tuple[int, int]:
    scale = min(1.0, CHECK_TILE / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def contact_sheet(cutout: np.ndarray) -> np.ndarray:
    """An RGBA cut-out over white, black, mid-grey, a checkerboard and green, side by side
    (RGB uint8), so halos show up on whichever background they contrast with."""
    h, w = cutout.shape[:2]
    tw, th = _tile_size(w, h)
    a = _fraction(cutout[..., 3])
    # Shrink premultiplied colour, so the transparent pixels' colour cannot bleed into the rim.
    premult = cutout[..., :3].astype(np.float32) * a
    interp = cv2.INTER_AREA if (tw, th) != (w, h) else cv2.INTER_NEAREST
    premult = cv2.resize(premult, (tw, th), interpolation=interp)
    a = cv2.resize(a[..., 0], (tw, th), interpolation=interp)[..., None]
    tiles = []
    for colour in CHECK_COLOURS:
        if colour is None:
            bg = _checker(th, tw).astype(np.float32)
        else:
            bg = np.empty((th, tw, 3), np.float32)
            bg[:] = colour
        tiles.append(_to_u8(premult + bg * (1.0 - a)))
    return np.ascontiguousarray(np.hstack(tiles))
