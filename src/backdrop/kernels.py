"""numba kernels: pure functions over arrays that write into caller-given buffers.

Rules (design notes, section 3): no state, no config, no I/O, no globals, no allocation per
call. The public wrappers in refine.py / composite.py check shapes and dtypes; these trust.
Every kernel has a numpy reference in tests/test_kernels.py.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

# MediaPipe's SegmentationSmoothingCalculator: a polynomial fit of 1 - binary entropy of p.
_C1, _C2, _C3, _C4, _C5 = 5.68842, -0.748699, -57.8051, 291.309, -624.717


@njit(cache=True, nogil=True)
def smooth_masks(prev, new, ratio, out):
    """Uncertainty-weighted temporal smoothing of float32 masks (any 2-D shape).

    Where `new` is confident (near 0 or 1) it is taken as is, so a moving arm is not
    smeared; where it is uncertain (near 0.5) the result leans on `prev` by up to `ratio`.
    `out` may be the same array as `prev`.
    """
    h, w = new.shape
    for y in range(h):
        for x in range(w):
            p = new[y, x]
            t = p - 0.5
            s = t * t
            conf = s * (_C1 + s * (_C2 + s * (_C3 + s * (_C4 + s * _C5))))
            if conf > 1.0:
                conf = 1.0
            uncertainty = 1.0 - conf
            out[y, x] = p + (prev[y, x] - p) * (uncertainty * ratio)


@njit(cache=True, nogil=True)
def guided_blend(frame, coef_a, coef_b, y0, y1, fy, x0, x1, fx, lo, scale, bg, out, alpha, rows):
    """Apply a fast guided filter and blend, in one pass over the full-resolution frame.

    coef_a, coef_b: float32 (h, w) guided-filter coefficients computed at low resolution
    for a grey guide in 0..1. For each output pixel they are sampled bilinearly (row and
    column tables y0/y1/fy, x0/x1/fx), q = a * grey + b, and the matte is
    alpha = clip((q - lo) * scale, 0, 1) stored as uint8 0..255 in `alpha`.
    out = frame * alpha + bg * (1 - alpha), uint8 with rounding. `bg` may be None-like
    (a 0-row array) to only compute alpha. `rows` is float32 (2, w) scratch space.
    """
    H, W = alpha.shape
    w = coef_a.shape[1]
    ra = rows[0]
    rb = rows[1]
    blend = bg.shape[0] == H
    for y in range(H):
        ya, yb, f = y0[y], y1[y], fy[y]
        for i in range(w):
            ra[i] = coef_a[ya, i] + (coef_a[yb, i] - coef_a[ya, i]) * f
            rb[i] = coef_b[ya, i] + (coef_b[yb, i] - coef_b[ya, i]) * f
        for x in range(W):
            xa, xb, g = x0[x], x1[x], fx[x]
            a = ra[xa] + (ra[xb] - ra[xa]) * g
            b = rb[xa] + (rb[xb] - rb[xa]) * g
            r = np.int32(frame[y, x, 0])
            gg = np.int32(frame[y, x, 1])
            bl = np.int32(frame[y, x, 2])
            grey = (r * 77 + gg * 150 + bl * 29) * np.float32(1.0 / (256 * 255))
            q = ((a * grey + b) - lo) * scale
            if q < 0.0:
                q = 0.0
            elif q > 1.0:
                q = 1.0
            m = np.int32(q * 255.0 + 0.5)
            alpha[y, x] = m
            if blend:
                n = 255 - m
                for c in range(3):
                    v = np.int32(frame[y, x, c]) * m + np.int32(bg[y, x, c]) * n + 128
                    out[y, x, c] = (v + (v >> 8)) >> 8


@njit(cache=True, nogil=True)
def blend_u8(frame, alpha, bg, out):
    """out = frame * a + bg * (1 - a) with a = alpha / 255, all uint8, rounded."""
    H, W = alpha.shape
    for y in range(H):
        for x in range(W):
            m = np.int32(alpha[y, x])
            n = 255 - m
            for c in range(3):
                v = np.int32(frame[y, x, c]) * m + np.int32(bg[y, x, c]) * n + 128
                out[y, x, c] = (v + (v >> 8)) >> 8


def bilinear_tables(src: int, dst: int):
    """Index and weight tables for resizing an axis of length src to dst (pixel centres
    aligned, as cv2.INTER_LINEAR does)."""
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    pos = np.clip(pos, 0, src - 1)
    i0 = np.floor(pos).astype(np.int32)
    i1 = np.minimum(i0 + 1, src - 1).astype(np.int32)
    return i0, i1, (pos - i0).astype(np.float32)


def warm_up() -> float:
    """Compile (or load from cache) every kernel on tiny inputs; returns seconds spent.
    Call before opening devices so the first frame is not late."""
    t = time.perf_counter()
    m = np.zeros((4, 4), np.float32)
    smooth_masks(m, m, np.float32(0.5), m.copy())
    frame = np.zeros((8, 8, 3), np.uint8)
    y0, y1, fy = bilinear_tables(4, 8)
    alpha = np.zeros((8, 8), np.uint8)
    for bg in (frame, np.zeros((0, 0, 3), np.uint8)):
        guided_blend(frame, m, m, y0, y1, fy, y0, y1, fy, np.float32(0), np.float32(1),
                     bg, frame.copy(), alpha, np.zeros((2, 4), np.float32))
    blend_u8(frame, alpha, frame, frame.copy())
    return time.perf_counter() - t
