"""Tiles over a tall person: more model pixels on each part of them.

The general model sees 256x256. A standing person 800 px tall then gets about 0.3 model
pixels per image pixel, so hands, feet, hair and the edge of a bag blur into the
background. Running the model also on overlapping tiles of the person (each its own
256x256 pass) doubles that. A tile loses context (one that holds only legs), so the tiles
do not replace the pass over the whole person: they are averaged with it, with weights
that fade to nothing at a tile's inner edges so no seam shows where a tile stops.
"""

from __future__ import annotations

from typing import List, Tuple

import cv2
import numpy as np

from backdrop.engine.tracking import Box, Extent, fit_box


def grow(extent: Extent, margin: float, width: int, height: int) -> Extent:
    """`extent` grown by `margin` times its long side on each side, clipped to the frame."""
    x0, y0, x1, y1 = extent
    pad = margin * max(x1 - x0, y1 - y0)
    return (max(x0 - pad, 0.0), max(y0 - pad, 0.0),
            min(x1 + pad, float(width)), min(y1 + pad, float(height)))


def tile_boxes(extent: Extent, *, tiles: int, overlap: float, margin: float, aspect: float,
               width: int, height: int) -> List[Box]:
    """`tiles` boxes that cover the person's extent (grown by `margin` times its long
    side) along its long axis, neighbours overlapping by `overlap` of a tile. Each box
    is then fitted to the model's aspect like the crop box."""
    if tiles < 1 or not 0 <= overlap < 1:
        raise ValueError(f"bad tiling tiles={tiles} overlap={overlap}")
    x0, y0, x1, y1 = grow(extent, margin, width, height)
    vertical = (y1 - y0) * aspect >= (x1 - x0)
    length = (y1 - y0) if vertical else (x1 - x0)
    step_count = tiles - (tiles - 1) * overlap
    size = length / step_count
    boxes = []
    for i in range(tiles):
        start = (y0 if vertical else x0) + i * size * (1 - overlap)
        if vertical:
            part = (x0, start, x1, start + size)
        else:
            part = (start, y0, start + size, y1)
        boxes.append(fit_box(*part, aspect=aspect, width=width, height=height, min_height=0))
    return boxes


def feather(box: Box, gbox: Box, frame_size: Tuple[int, int],
            ramp: float) -> np.ndarray:
    """Weights (float32, gbox's shape) for a tile placed at `gbox` of a guide-size map:
    1 inside, falling linearly towards 0 over `ramp` of the tile's size at each edge that
    lies inside the frame. An edge on the frame's border keeps full weight: nothing lies
    beyond it that the tile could have missed."""
    gx0, gy0, gx1, gy1 = gbox
    x0, y0, x1, y1 = box
    w, h = frame_size
    wx = _ramp(gx1 - gx0, ramp, x0 > 0, x1 < w)
    wy = _ramp(gy1 - gy0, ramp, y0 > 0, y1 < h)
    return np.outer(wy, wx).astype(np.float32)


def _ramp(n: int, ramp: float, fade_start: bool, fade_end: bool) -> np.ndarray:
    """1-D weights over n cells: linear from near 0 up to 1 over ramp * n cells at each
    end that fades, 1 elsewhere. Cell centres are used, so no weight is exactly 0."""
    weights = np.ones(n, np.float64)
    width = ramp * n
    if width <= 0:
        return weights
    centres = np.arange(n) + 0.5
    if fade_start:
        weights = np.minimum(weights, centres / width)
    if fade_end:
        weights = np.minimum(weights, (n - centres) / width)
    return weights


def boundary_gate(person: np.ndarray, radius: float) -> np.ndarray:
    """Weights (float32, person's shape) that let the tiles move the person's outline but
    not invent or drop whole parts: 1 on the outline of `person >= 0.5`, falling linearly
    to 0 at `radius` map pixels from it, on both sides."""
    inside = (person >= 0.5).astype(np.uint8)
    if radius <= 0:
        return np.ones(person.shape, np.float32)
    to_outside = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    to_inside = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3)
    # a pixel beside the outline is ~1 from the other side; count that as on it
    distance = np.maximum(np.where(inside == 1, to_outside, to_inside) - 1, 0)
    return np.clip(1 - distance / np.float32(radius), 0, 1).astype(np.float32)
