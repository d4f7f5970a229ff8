"""`backdrop image --subject window`: an app window cut out of a screenshot.

The matte comes from geometry (engine/window.py), not from the models: the pipeline's
refinement (guided filter, matting) would soften the window's straight, pixel-exact edges.
The window's own drop shadow is dropped, or kept (`--keep-shadow`) as a smooth
semi-transparent black layer estimated from the wallpaper's darkening
(engine/windowshadow.py), so it looks right on any new background.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import cv2
import numpy as np

from backdrop.config import BackgroundSpec
from backdrop.engine.background import create_background
from backdrop.engine.window import find_window, window_colour, window_matte
from backdrop.engine.windowshadow import estimate_shadow, shadow_matte
from backdrop.errors import BackdropError
from backdrop.offline import cutout

GUIDE_WIDTH = 640     # the blur background works on the picture shrunk to about this

NO_WINDOW = ("no app window found (it looks for a window's straight edges and corners over"
             " the desktop); for any other subject use --subject any")
NO_SHADOW = ("could not measure the window's own shadow (too little wallpaper around it, or"
             " too busy a wallpaper): kept none; --shadow adds a generic one instead")


class ScreenshotRenderer:
    """One screenshot in, the window out: a mask, an RGBA cut-out or a composite."""

    def __init__(self, *, kind: str, background: BackgroundSpec, keep_shadow: bool = False,
                 shadow: bool = False):
        self.kind = kind
        self.keep_shadow = keep_shadow
        self.shadow = shadow
        self.background = create_background(background) if kind == "composite" else None

    def render(self, frame: np.ndarray) -> Tuple[np.ndarray, np.ndarray, List[str]]:
        """(output image, RGBA layer for the check sheet, warnings)."""
        window = find_window(frame)
        if window is None:
            raise BackdropError(NO_WINDOW)
        alpha = window_matte(frame.shape[:2], window)
        a8 = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
        colour = window_colour(frame, alpha, window)
        shadow = self._shadow(frame, window, a8)
        warnings = [NO_SHADOW] if self.keep_shadow and shadow is None else []
        layer = (cutout.rgba(colour, a8) if shadow is None
                 else cutout.rgba_with_shadow(colour, a8, shadow))
        if self.kind == "mask":
            return a8, layer, warnings
        if self.kind == "cutout":
            return layer, layer, warnings
        return self._composite(frame, colour, alpha, shadow), layer, warnings

    def _shadow(self, frame: np.ndarray, window, a8: np.ndarray) -> Optional[np.ndarray]:
        if self.keep_shadow:
            found = estimate_shadow(frame, window)
            return None if found is None else shadow_matte(a8.shape, window, found)
        return cutout.shadow_matte(a8) if self.shadow else None

    def _composite(self, frame: np.ndarray, colour: np.ndarray, alpha: np.ndarray,
                   shadow: Optional[np.ndarray]) -> np.ndarray:
        if self.background is None:            # --background none: the screenshot as it is
            return frame.copy()
        h, w = alpha.shape
        scale = min(1.0, GUIDE_WIDTH / w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        guide = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        small = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        rows = self.background.render(frame, guide, small)
        back = cv2.resize(rows, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        if shadow is not None:
            back *= 1.0 - shadow[..., None]
        a = alpha[..., None]
        out = colour.astype(np.float32) * a + back * (1.0 - a)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def close(self) -> None:
        if self.background is not None:
            self.background.close()
