"""The pixels of a layout (layout.py decides where things go): the subject cut to its box,
scaled and laid on a canvas filled with the background (a colour, an image, a template or
nothing), a shadow under it, an overlay over everything.

Layers are combined in premultiplied float32 with the "over" operator, so a background
pixel that nothing covers keeps its exact value (white stays 255, not 254).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import cv2
import numpy as np

from backdrop.config import BackgroundSpec
from backdrop.offline import cutout
from backdrop.offline.layout import (Layout, Placement, cut_edge_warning, place,
                                     upscale_warning)

# The subject's box: pixels at least this opaque, in blobs at least SPECK of the largest
# blob's area. Fainter haze and stray specks outside the box are cut off; otherwise a
# 2%-alpha smudge in a corner would decide where the product goes.
ALPHA_FLOOR = 32
SPECK = 0.002
# Contact shadow: an elliptical soft shadow where the object meets the ground, as wide as
# the object's base; a tight dark core and a wider, lighter penumbra. It stays inside the
# bottom margin (at most 3/4 of it below the base).
CONTACT_WIDTH = 0.55        # half-width as a fraction of the base's width
CONTACT_FLATNESS = 0.09     # half-height as a fraction of the half-width
CONTACT_LAYERS = ((0.8, 0.5, 0.45), (1.1, 1.0, 0.25))   # (width, height, opacity) factors
FAINT = 0.5 / 255           # shadow opacity that cannot change an 8-bit pixel: made exactly 0


def subject_box(alpha: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """(x0, y0, x1, y1), ends exclusive, of the subject in an (H, W) uint8 matte; None when
    there is none."""
    solid = (alpha >= ALPHA_FLOOR).view(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    if count <= 1:
        return None
    stats = stats[1:]
    areas = stats[:, cv2.CC_STAT_AREA]
    keep = stats[areas >= max(1.0, SPECK * areas.max())]
    x0, y0 = keep[:, cv2.CC_STAT_LEFT].min(), keep[:, cv2.CC_STAT_TOP].min()
    x1 = (keep[:, cv2.CC_STAT_LEFT] + keep[:, cv2.CC_STAT_WIDTH]).max()
    y1 = (keep[:, cv2.CC_STAT_TOP] + keep[:, cv2.CC_STAT_HEIGHT]).max()
    return int(x0), int(y0), int(x1), int(y1)


def scaled_subject(layer: np.ndarray, placement: Placement) -> Tuple[np.ndarray, np.ndarray]:
    """The straight-RGBA layer cut to the box and scaled: (premultiplied colour (h, w, 3)
    0..255, alpha (h, w) 0..1), float32. Scaling premultiplied colour keeps the transparent
    pixels' (black) colour out of the outline."""
    x0, y0, x1, y1 = placement.box
    crop = layer[y0:y1, x0:x1].astype(np.float32)
    crop[..., :3] *= crop[..., 3:4] * np.float32(1 / 255)
    if placement.size != (x1 - x0, y1 - y0):
        interp = cv2.INTER_AREA if placement.scale < 1 else cv2.INTER_CUBIC
        crop = cv2.resize(crop, placement.size, interpolation=interp)
    alpha = np.clip(crop[..., 3] * np.float32(1 / 255), 0.0, 1.0)
    colour = np.clip(crop[..., :3], 0.0, None)
    np.minimum(colour, alpha[..., None] * 255.0, out=colour)   # cubic overshoot
    return colour, alpha


def _ellipse(shade: np.ndarray, cx: float, cy: float, rx: float, ry: float,
             opacity: float) -> None:
    """Add a soft elliptical blob to `shade` (as "over"): `opacity` at the centre, 14% of it
    on the ellipse (rx, ry), 0 from 1.5x (where it has fallen to 1%: the cut is invisible).
    Only the blob's own rectangle is computed."""
    h, w = shade.shape
    x0, x1 = max(0, int(cx - 1.5 * rx)), min(w, int(cx + 1.5 * rx) + 2)
    y0, y1 = max(0, int(cy - 1.5 * ry)), min(h, int(cy + 1.5 * ry) + 2)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    r2 = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    blob = np.where(r2 < 2.25, opacity * np.exp(-2.0 * r2), 0.0).astype(np.float32)
    region = shade[y0:y1, x0:x1]
    region[:] = 1.0 - (1.0 - region) * (1.0 - blob)


def contact_shadow(alpha: np.ndarray, placement: Placement) -> np.ndarray:
    """(H, W) opacity of a soft elliptical shadow under the base of the placed subject."""
    h, w = alpha.shape
    x, y = placement.at
    nw, nh = placement.size
    bottom = y + nh
    rows = alpha[max(y, bottom - max(2, nh // 20)):bottom]
    cols = np.flatnonzero((rows >= 0.5).any(axis=0))
    left, right = (cols[0], cols[-1] + 1) if cols.size else (x, x + nw)
    half = max(2.0, CONTACT_WIDTH * (right - left))
    # 1.25 ry reaches below the base: keep it within 3/4 of the space under the subject
    flat = min(half * CONTACT_FLATNESS, 0.6 * (h - bottom))
    shade = np.zeros((h, w), np.float32)
    for wide, tall, opacity in CONTACT_LAYERS:
        rx, ry = half * wide, max(1.5, flat * tall)
        _ellipse(shade, (left + right) / 2.0, bottom - 0.25 * ry, rx, ry, opacity)
    return shade


def _shadow(alpha: np.ndarray, placement: Placement, layout: Layout) -> np.ndarray:
    if layout.canvas is not None and layout.align == "bottom":
        shade = contact_shadow(alpha, placement)
    else:   # the drop shadow people get, computed on the canvas
        shade = cutout.shadow_matte(alpha * np.float32(255))
    shade[shade < FAINT] = 0.0
    return shade


def _to_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def overlay_onto(image: np.ndarray, overlay: np.ndarray) -> np.ndarray:
    """An RGBA overlay over an RGB or straight-RGBA uint8 image. The overlay's size: the
    image's is used as is; a smaller one keeps its size in the bottom-right corner (a logo);
    a larger one is scaled down to fit inside, centred."""
    h, w = image.shape[:2]
    oh, ow = overlay.shape[:2]
    if ow > w or oh > h:
        s = min(w / ow, h / oh)
        ow, oh = max(1, round(ow * s)), max(1, round(oh * s))
        overlay = cv2.resize(overlay, (ow, oh), interpolation=cv2.INTER_AREA)
        x, y = (w - ow) // 2, (h - oh) // 2
    else:
        x, y = w - ow, h - oh
    out = image.copy()
    region = out[y:y + oh, x:x + ow].astype(np.float32)
    a = overlay[..., 3:4].astype(np.float32) * np.float32(1 / 255)
    colour = overlay[..., :3].astype(np.float32)
    if image.shape[2] == 3:
        out[y:y + oh, x:x + ow] = _to_u8(colour * a + region * (1.0 - a))
        return out
    below = region[..., 3:4] * np.float32(1 / 255)
    total = a + below * (1.0 - a)
    mixed = (colour * a + region[..., :3] * below * (1.0 - a)) / np.maximum(total, 1e-6)
    out[y:y + oh, x:x + ow] = np.dstack((_to_u8(mixed), _to_u8(total[..., 0] * 255.0)))
    return out


class Canvas:
    """Renders cut-outs into one layout; holds the template, the background image and the
    overlay, read once per worker process."""

    def __init__(self, layout: Layout, background: BackgroundSpec, shadow: bool):
        from backdrop.io.images import read_rgb, read_rgba

        self.layout, self.background, self.shadow = layout, background, shadow
        self.template = read_rgba(layout.template) if layout.template else None
        self.overlay = read_rgba(layout.overlay) if layout.overlay else None
        self._image = read_rgb(background.path) if background.kind == "file" else None

    def render(self, layer: np.ndarray, kind: str) -> Tuple[np.ndarray, List[str]]:
        """The straight-RGBA cut-out (the whole photo's size) -> the output image for `kind`
        (mask, cutout or composite) and warnings."""
        h, w = layer.shape[:2]
        placement = place(self.layout, subject_box(layer[..., 3]) or (0, 0, w, h))
        notes = [cut_edge_warning(layer[..., 3])]
        notes += [] if self.layout.fit else [upscale_warning(placement)]
        colour, alpha = scaled_subject(layer, placement)
        (x, y), (nw, nh) = placement.at, placement.size
        width, height = placement.canvas
        where = np.s_[y:y + nh, x:x + nw]
        if kind == "mask":
            matte = np.zeros((height, width), np.uint8)
            matte[where] = _to_u8(alpha * 255.0)
            return matte, [n for n in notes if n]
        paint, cover = self._base(width, height)
        if self.shadow:
            full = np.zeros((height, width), np.float32)
            full[where] = alpha
            shade = _shadow(full, placement, self.layout)
            paint *= (1.0 - shade)[..., None]
            cover[:] = shade + cover * (1.0 - shade)
        paint[where] = colour + paint[where] * (1.0 - alpha)[..., None]
        cover[where] = alpha + cover[where] * (1.0 - alpha)
        return self._finish(paint, cover, kind), [n for n in notes if n]

    def add_overlay(self, image: np.ndarray) -> np.ndarray:
        return image if self.overlay is None else overlay_onto(image, self.overlay)

    def _base(self, width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
        """Premultiplied colour and coverage of the background, with the template over it."""
        paint = np.zeros((height, width, 3), np.float32)
        cover = np.zeros((height, width), np.float32)
        spec = self.background
        if spec.kind == "colour":
            paint[:] = spec.colour
            cover[:] = 1.0
        elif self._image is not None:
            from backdrop.engine.background import cover as cover_image

            paint[:] = cover_image(self._image, width, height)
            cover[:] = 1.0
        if self.template is not None:
            t = self.template.astype(np.float32)
            a = t[..., 3] * np.float32(1 / 255) if t.shape[2] == 4 else np.ones_like(cover)
            paint[:] = t[..., :3] * a[..., None] + paint * (1.0 - a)[..., None]
            cover[:] = a + cover * (1.0 - a)
        return paint, cover

    @staticmethod
    def _finish(paint: np.ndarray, cover: np.ndarray, kind: str) -> np.ndarray:
        if kind != "cutout":    # opaque background: coverage is 1 everywhere
            return _to_u8(paint)
        alpha = _to_u8(cover * 255.0)
        colour = _to_u8(paint / np.maximum(cover, 1e-6)[..., None])
        colour[alpha == 0] = 0   # as cutout.rgba: nothing hidden under full transparency
        return np.dstack((colour, alpha))
