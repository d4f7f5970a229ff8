"""Where and when to run the model: a crop around the person found in the previous frame,
and not at all while the scene stands still.

The selfie models see the whole frame at 256x144 or 256x256; a person who fills a third
of it gets a third of the model's pixels. Cropping around them gives the model more pixels
on the subject. The box follows the person with a margin for motion, and falls back to
the whole frame when nobody was found.
"""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

Box = Tuple[int, int, int, int]  # x0, y0, x1, y1 in full-resolution pixels, end exclusive
Extent = Tuple[float, float, float, float]   # the same, not rounded


# The model tolerates a squeezed picture (live use already squeezes 4:3 into 16:9), so
# the crop may be up to this far from the model's aspect before it is widened.
MAX_SQUEEZE = 1.5


def fit_box(x0: float, y0: float, x1: float, y1: float, *, aspect: float, width: int,
            height: int, min_height: float) -> Box:
    """Grow (x0, y0, x1, y1) to within MAX_SQUEEZE of the model's aspect (w/h) and at
    least `min_height` pixels tall, keep its centre where possible, shift it inside the
    frame."""
    bw, bh = x1 - x0, max(y1 - y0, min_height)
    if bw / bh < aspect / MAX_SQUEEZE:
        bw = bh * aspect / MAX_SQUEEZE
    elif bw / bh > aspect * MAX_SQUEEZE:
        bh = bw / (aspect * MAX_SQUEEZE)
    bw, bh = min(bw, width), min(bh, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    nx0 = min(max(cx - bw / 2, 0), width - bw)
    ny0 = min(max(cy - bh / 2, 0), height - bh)
    return (int(round(nx0)), int(round(ny0)), int(round(nx0 + bw)), int(round(ny0 + bh)))


def person_extent(person: np.ndarray, width: int, height: int,
                  threshold: float = 0.5) -> Optional[Extent]:
    """Bounding box of `person >= threshold` (a map of any size covering the frame), in
    full-resolution pixels; None when nobody is there (fewer than 4 pixels)."""
    found = (person >= threshold).view(np.uint8)
    if cv2.countNonZero(found) < 4:
        return None
    bx, by, bw, bh = cv2.boundingRect(found)    # 5x faster than np.nonzero
    sy, sx = height / person.shape[0], width / person.shape[1]
    return (bx * sx, by * sy, (bx + bw) * sx, (by + bh) * sy)


class CropTracker:
    """Keeps the crop box between frames. `margin` is added on each side as a fraction of
    the person's size; the box only moves when the person gets near its edge or it has
    become much too large, so it does not jitter with the mask."""

    def __init__(self, *, aspect: float, margin: float = 0.25, min_height: float = 0.3):
        self.aspect = aspect
        self.margin = margin
        self.min_height = min_height     # fraction of the frame height
        self._box: Optional[Box] = None

    def reset(self) -> None:
        self._box = None

    @property
    def box(self) -> Optional[Box]:
        return self._box

    def update(self, person: np.ndarray, width: int, height: int) -> None:
        """Choose the next box from the person probability (any size, covering the frame)."""
        extent = person_extent(person, width, height)
        if extent is None:
            self._box = None                  # nobody: the next frame looks at everything
            return
        px0, py0, px1, py1 = extent
        if self._box is not None and self._still_fits(px0, py0, px1, py1, width, height):
            return
        mx, my = (px1 - px0) * self.margin, (py1 - py0) * self.margin
        self._box = fit_box(px0 - mx, py0 - my, px1 + mx, py1 + my, aspect=self.aspect,
                            width=width, height=height, min_height=self.min_height * height)

    def _still_fits(self, px0: float, py0: float, px1: float, py1: float,
                    width: int, height: int) -> bool:
        """The person is inside the box with a third of the margin to spare (or touches a
        frame edge the box also touches), and fills at least a fifth of it."""
        bx0, by0, bx1, by1 = self._box
        pad_x, pad_y = (px1 - px0) * self.margin / 3, (py1 - py0) * self.margin / 3
        inside = ((px0 - pad_x >= bx0 or bx0 == 0) and (px1 + pad_x <= bx1 or bx1 >= width)
                  and (py0 - pad_y >= by0 or by0 == 0) and (py1 + pad_y <= by1 or by1 >= height))
        return inside and (px1 - px0) * (py1 - py0) >= 0.2 * (bx1 - bx0) * (by1 - by0)


class ChangeGate:
    """Says whether the scene moved since the model last ran, from the small guide image.

    The frame is compared with the one the model last saw (not the previous frame, so a
    slow drift adds up and is caught) as the mean absolute difference over tiles of
    `tile` x `tile` guide pixels; the scene moved when any tile changed by more than
    `threshold` levels, after matching overall brightness. Sensor noise averages out over
    a tile (a guide pixel is already the mean of 4x4 or more camera pixels); an edge
    moving by a guide pixel changes its tile by several levels.
    """

    def __init__(self, *, threshold: int = 2, tile: int = 8):
        self.threshold = int(threshold)
        self.tile = int(tile)
        self._seen: Optional[np.ndarray] = None
        self._seen_level = 1.0               # its overall brightness (sum of channel means)

    def reset(self) -> None:
        self._seen = None

    def moved(self, guide: np.ndarray) -> bool:
        if self._seen is None or self._seen.shape != guide.shape:
            return True
        h, w = guide.shape[:2]
        # A camera's exposure breathing changes every pixel a little and the person not at
        # all: compare against the old frame brought to the new one's brightness.
        gain = sum(cv2.mean(guide)) / self._seen_level
        diff = cv2.absdiff(guide, cv2.convertScaleAbs(self._seen, alpha=gain))
        tiles = cv2.resize(diff, (max(1, w // self.tile), max(1, h // self.tile)),
                           interpolation=cv2.INTER_AREA)
        return int(tiles.max()) > self.threshold

    def model_ran(self, guide: np.ndarray) -> None:
        """Remember what the model saw (a copy: the caller's buffer may change)."""
        if self._seen is None or self._seen.shape != guide.shape:
            self._seen = guide.copy()
        else:
            np.copyto(self._seen, guide)
        self._seen_level = max(sum(cv2.mean(guide)), 1.0)
