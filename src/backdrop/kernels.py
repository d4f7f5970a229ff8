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


@njit(cache=True, nogil=True, fastmath=True)
def guided_alpha(grey, coef_a, coef_b, lo, scale, alpha):
    """Apply guided-filter coefficients at full resolution: q = a * grey / 255 + b, then
    alpha = clip((q - lo) * scale, 0, 1) as uint8 0..255.

    All arrays (H, W), C-contiguous: grey and alpha uint8, coef_a/coef_b float32 (already
    upsampled). One flat loop over contiguous memory so the compiler vectorises it.
    """
    g = grey.reshape(-1)
    a = coef_a.reshape(-1)
    b = coef_b.reshape(-1)
    al = alpha.reshape(-1)
    k = np.float32(1.0 / 255.0)
    for i in range(al.shape[0]):
        q = ((a[i] * (np.float32(g[i]) * k) + b[i]) - lo) * scale
        q = min(max(q, np.float32(0.0)), np.float32(1.0))
        al[i] = np.uint8(q * np.float32(255.0) + np.float32(0.5))


@njit(cache=True, nogil=True)
def blend_u8(frame, alpha, bg, out):
    """out = frame * a + bg * (1 - a), a = alpha / 255, uint8 with rounding.

    frame, bg, out (H, W, 3) and alpha (H, W), C-contiguous. uint16 arithmetic over flat
    memory: (v + (v >> 8)) >> 8 with v = f*m + g*(255-m) + 128 equals round(v / 255).
    """
    f = frame.reshape(-1)
    g = bg.reshape(-1)
    o = out.reshape(-1)
    al = alpha.reshape(-1)
    for i in range(al.shape[0]):
        m = np.uint16(al[i])
        n = np.uint16(255) - m
        for c in range(3):
            j = 3 * i + c
            v = np.uint16(f[j]) * m + np.uint16(g[j]) * n + np.uint16(128)
            o[j] = np.uint8((v + (v >> np.uint16(8))) >> np.uint16(8))


def warm_up() -> float:
    """Compile (or load from cache) every kernel on tiny inputs; returns seconds spent.
    Call before opening devices so the first frame is not late."""
    t = time.perf_counter()
    m = np.zeros((4, 4), np.float32)
    smooth_masks(m, m, np.float32(0.5), m.copy())
    frame = np.zeros((8, 8, 3), np.uint8)
    grey = np.zeros((8, 8), np.uint8)
    coef = np.zeros((8, 8), np.float32)
    guided_alpha(grey, coef, coef, np.float32(0), np.float32(1), grey.copy())
    blend_u8(frame, grey, frame, frame.copy())
    return time.perf_counter() - t
