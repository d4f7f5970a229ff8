"""Blending the frame over a background through the matte (no state)."""

from __future__ import annotations

import numpy as np

from . import kernels
from .refine import check_frame


def composite(frame: np.ndarray, alpha: np.ndarray, bg: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = frame where alpha is 255, bg where it is 0, rounded mix between; returns out."""
    for name, arr in (("frame", frame), ("bg", bg), ("out", out)):
        check_frame(name, arr)
    if bg.shape != frame.shape or out.shape != frame.shape:
        raise ValueError(f"bg and out must have the frame's shape {frame.shape};"
                         f" got {bg.shape} and {out.shape}")
    if alpha.shape != frame.shape[:2] or alpha.dtype != np.uint8 or not alpha.flags.c_contiguous:
        raise ValueError(f"alpha: expected {frame.shape[:2]} uint8 C-contiguous, got"
                         f" {alpha.shape} {alpha.dtype}")
    kernels.blend_u8(frame, alpha, bg, out)
    return out
