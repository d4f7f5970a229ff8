"""numba kernels: pure functions over arrays that write into caller-given buffers.

Rules (design notes, section 3): no state, no config, no I/O, no globals, no allocation per
call. The public wrapper in refine.py checks shapes and dtypes; these trust.
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
def refine_spans(frame, coef_a, coef_b, spans, xs, ys, x0, fx, y0, fy, lo, scale, blend,
                 out, alpha, scratch, prev, hold):
    """The guided filter's full-resolution step, only along the listed spans of cells.

    coef_a, coef_b: float32 (h, w) at guide resolution; per pixel q = a * grey/255 + b with
    a, b sampled bilinearly (x0/fx, y0/fy: left/top tap and its weight per full-res
    column/row; the other tap is index + 1, clamped). alpha = clip((q - lo) * scale, 0, 1)
    as uint8. spans: int32 (n, 3) of (cell row, first cell column, end cell column); cell
    (cy, cx) covers rows ys[cy]:ys[cy+1], columns xs[cx]:xs[cx+1]. With blend, `out`
    must already hold the background there and becomes frame over background.
    scratch: float32 (4, max(w, W)) work rows. Each span row runs as three flat loops
    (interpolate, matte, blend) that the compiler can vectorise.
    prev: uint8 (H, W), the previous frame's matte, or a 0-row array for none; where the
    new value is within `hold` levels of it the old value is kept, so sensor noise on a
    still edge does not shimmer while real motion (a larger change) passes at once.
    """
    h, w = coef_a.shape
    k = np.float32(1.0 / (256.0 * 255.0))
    one = np.float32(1.0)
    ca_row, cb_row, a_row, b_row = scratch[0], scratch[1], scratch[2], scratch[3]
    held = prev.shape[0] == alpha.shape[0]
    for n in range(spans.shape[0]):
        cy, c_first, c_end = spans[n, 0], spans[n, 1], spans[n, 2]
        X0, X1 = xs[c_first], xs[c_end]
        j0, j1 = max(c_first - 1, 0), min(c_end + 1, w)   # coefficient columns used
        for y in range(ys[cy], ys[cy + 1]):
            ya = y0[y]
            yb = min(ya + 1, h - 1)
            wy = fy[y]
            for j in range(j0, j1):
                ca_row[j] = coef_a[ya, j] * (one - wy) + coef_a[yb, j] * wy
                cb_row[j] = coef_b[ya, j] * (one - wy) + coef_b[yb, j] * wy
            for x in range(X0, X1):
                xa = x0[x]
                xb = min(xa + 1, w - 1)
                wx = fx[x]
                a_row[x] = ca_row[xa] * (one - wx) + ca_row[xb] * wx
                b_row[x] = cb_row[xa] * (one - wx) + cb_row[xb] * wx
            fr = frame[y]
            al = alpha[y]
            for x in range(X0, X1):
                grey = np.float32(np.int32(fr[x, 0]) * 77 + np.int32(fr[x, 1]) * 150
                                  + np.int32(fr[x, 2]) * 29) * k
                q = ((a_row[x] * grey + b_row[x]) - lo) * scale
                q = min(max(q, np.float32(0.0)), one)
                al[x] = np.uint8(q * np.float32(255.0) + np.float32(0.5))
            if held:
                pr = prev[y]
                for x in range(X0, X1):
                    if abs(np.int32(al[x]) - np.int32(pr[x])) <= hold:
                        al[x] = pr[x]
            if blend:
                o = out[y]
                for x in range(X0, X1):
                    m = np.uint16(al[x])
                    nm = np.uint16(255) - m
                    for c in range(3):
                        v = np.uint16(fr[x, c]) * m + np.uint16(o[x, c]) * nm + np.uint16(128)
                        o[x, c] = np.uint8((v + (v >> np.uint16(8))) >> np.uint16(8))


def warm_up() -> float:
    """Compile (or load from cache) every kernel on tiny inputs; returns seconds spent.
    Call before opening devices so the first frame is not late."""
    t = time.perf_counter()
    m = np.zeros((4, 4), np.float32)
    smooth_masks(m, m, np.float32(0.5), m.copy())
    frame = np.zeros((8, 8, 3), np.uint8)
    grey = np.zeros((8, 8), np.uint8)
    coef = np.zeros((1, 1), np.float32)
    spans = np.array([[0, 0, 1]], np.int32)
    edges = np.array([0, 8], np.int32)
    taps = np.zeros(8, np.int32)
    for blend in (True, False):
        refine_spans(frame, coef, coef, spans, edges, edges, taps, coef[0], taps, coef[0],
                     np.float32(0), np.float32(1), blend, frame.copy(), grey.copy(),
                     np.zeros((4, 8), np.float32), grey.copy(), 2)
        refine_spans(frame, coef, coef, spans, edges, edges, taps, coef[0], taps, coef[0],
                     np.float32(0), np.float32(1), blend, frame.copy(), grey.copy(),
                     np.zeros((4, 8), np.float32), np.zeros((0, 0), np.uint8), 0)
    return time.perf_counter() - t
