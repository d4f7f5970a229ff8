"""What every source and sink shares: the frame check, colour conversion at the cv2 boundary,
fitting a frame to a size, and the context-manager plumbing."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


class Closing:
    """Context-manager plumbing shared by sources and sinks; close() holds nothing by default."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        pass


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """OpenCV's BGR (or grey/BGRA) -> a new C-contiguous RGB array."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def even(n: int) -> int:
    """Largest even size <= n (and at least 2): 4:2:0 readers and encoders need even sizes."""
    return max(2, int(n) - int(n) % 2)


def fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Make a frame exactly width x height: crop the odd pixel, else resize; never crash."""
    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    if w - width in (0, 1) and h - height in (0, 1):
        return np.ascontiguousarray(frame[:height, :width])
    shrink = w > width or h > height
    return cv2.resize(frame, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def check_frame(frame: np.ndarray, name: str = "frame", *, contiguous: bool = False) -> None:
    """Raise TypeError unless `frame` is (H, W, 3) uint8 RGB (and ValueError unless it is
    C-contiguous, where the caller's kernels need that)."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3:
        got = f"{frame.shape} {frame.dtype}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise TypeError(f"{name}: expected an (H, W, 3) uint8 RGB frame, got {got}")
    if contiguous and not frame.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous frame (use np.ascontiguousarray)")
