"""Frames the live loop shows instead of the camera: camera unavailable, paused while no app
is watching, privacy. Made once per state change (never per frame) and sent repeatedly.

All take and return `(H, W, 3) uint8` RGB and return new arrays (the runner re-sends them
while the pipeline reuses its own buffers).
"""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from backdrop.config import BackgroundSpec

UNAVAILABLE = "camera unavailable - reconnecting"   # Hershey fonts have no em dash
PAUSED = "paused: no app is watching"
PRIVACY = "camera off"
_DARK = (40, 40, 44)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    if frame.shape[:2] == (height, width):
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def with_note(image: np.ndarray, text: str) -> np.ndarray:
    """Write `text` centred on a dark band across the lower third, sized to the frame."""
    h, w = image.shape[:2]
    (tw, _), _ = cv2.getTextSize(text, _FONT, 1.0, 2)
    # About 60% of the width for the long notes, the same size for short ones; small
    # frames get at least a readable size, if it fits.
    scale = min(0.95 * w / tw, max(0.35, min(0.6 * w / tw, 1.6 * w / 1280)))
    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thick)
    x, y = (w - tw) // 2, int(h * 0.75) + th // 2
    pad = max(4, th // 2)
    top, bottom = max(0, y - th - pad), min(h, y + base + pad)
    # Darken the band rather than painting it flat, so the picture still shows through.
    image[top:bottom] = (image[top:bottom] * 0.35).astype(np.uint8)
    cv2.putText(image, text, (x, y), _FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return image


def flat(width: int, height: int, colour: Tuple[int, int, int] = _DARK) -> np.ndarray:
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = colour
    return frame


def unavailable(last: Optional[np.ndarray], width: int, height: int,
                background: Optional[BackgroundSpec] = None,
                text: str = UNAVAILABLE) -> np.ndarray:
    """The last good output dimmed, with a note; without one, the background colour (or a
    dark grey for blur/images, which need a camera frame) with the note."""
    if last is not None:
        base = (_fit(last, width, height) * 0.45).astype(np.uint8)
    elif background is not None and background.kind == "colour":
        base = flat(width, height, background.colour)
    else:
        base = flat(width, height)
    return with_note(np.ascontiguousarray(base), text)


def paused(width: int, height: int, text: str = PAUSED) -> np.ndarray:
    """Shown at a low rate while no app reads the virtual camera; no picture of the user."""
    return with_note(flat(width, height), text)


def blank(width: int, height: int, text: str = PRIVACY) -> np.ndarray:
    """Privacy 'blank': a flat frame with a short note."""
    return with_note(flat(width, height), text)


def frozen(last: Optional[np.ndarray], width: int, height: int) -> np.ndarray:
    """Privacy 'freeze': a copy of the last output (blank if there was none)."""
    if last is None:
        return blank(width, height)
    return np.array(_fit(last, width, height), copy=True)
