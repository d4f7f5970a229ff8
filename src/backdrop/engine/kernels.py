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


@njit(cache=True, nogil=True, fastmath=True)
def smooth_masks(prev, new, ratio, out):
    """Uncertainty-weighted temporal smoothing of float32 masks (any 2-D shape).

    Where `new` is confident (near 0 or 1) it is taken as is, so a moving arm is not
    smeared; where it is uncertain (near 0.5) the result leans on `prev` by up to `ratio`.
    `out` may be the same array as `prev`. float32 constants keep the loop in float32,
    which the compiler vectorises (2x faster than with the float64 literals).
    """
    h, w = new.shape
    c1, c2, c3 = np.float32(_C1), np.float32(_C2), np.float32(_C3)
    c4, c5 = np.float32(_C4), np.float32(_C5)
    half, one = np.float32(0.5), np.float32(1.0)
    for y in range(h):
        pr, nw, o = prev[y], new[y], out[y]
        for x in range(w):
            p = nw[x]
            t = p - half
            s = t * t
            conf = min(s * (c1 + s * (c2 + s * (c3 + s * (c4 + s * c5)))), one)
            o[x] = p + (pr[x] - p) * ((one - conf) * ratio)


@njit(cache=True, nogil=True, fastmath=True)
def guided_moments(grey, mask, out):
    """float32 (h, w) guide and mask -> float32 (4, h, w): I, p, I*p, I*I, the four
    images whose box means the guided filter needs."""
    h, w = grey.shape
    for y in range(h):
        g, m = grey[y], mask[y]
        o0, o1, o2, o3 = out[0, y], out[1, y], out[2, y], out[3, y]
        for x in range(w):
            o0[x] = g[x]
            o1[x] = m[x]
            o2[x] = g[x] * m[x]
            o3[x] = g[x] * g[x]


@njit(cache=True, nogil=True, fastmath=True)
def guided_coefficients(means, eps, out):
    """Box means (4, h, w) of I, p, I*p, I*I -> float32 (2, h, w): the guided filter's
    linear coefficients a = cov(I, p) / (var(I) + eps), b = mean(p) - a * mean(I)."""
    h, w = out.shape[1:]
    for y in range(h):
        mi, mp, mip, mii = means[0, y], means[1, y], means[2, y], means[3, y]
        oa, ob = out[0, y], out[1, y]
        for x in range(w):
            a = (mip[x] - mi[x] * mp[x]) / (mii[x] - mi[x] * mi[x] + eps)
            oa[x] = a
            ob[x] = mp[x] - a * mi[x]


@njit(cache=True, nogil=True)
def _reflect(i, n):
    """cv2.BORDER_REFLECT for one step out of [0, n): -1 -> 0, n -> n - 1."""
    if i < 0:
        return -i - 1
    if i >= n:
        return 2 * n - 1 - i
    return i


@njit(cache=True, nogil=True, fastmath=True)
def box_mean(src, r, out, acc):
    """Mean over (2r+1) x (2r+1) windows of float32 (h, w), borders as cv2.BORDER_REFLECT;
    needs r < h and r < w. acc: float32 (w + 2r) scratch. Tap by tap over whole rows, so
    every loop is a flat one the compiler vectorises (4x cv2.boxFilter at guide size)."""
    h, w = src.shape
    n = 2 * r + 1
    inv = np.float32(1.0 / (n * n))
    mid = acc[r:r + w]
    for y in range(h):
        row = src[_reflect(y - r, h)]
        for x in range(w):
            mid[x] = row[x]
        for k in range(1, n):
            row = src[_reflect(y - r + k, h)]
            for x in range(w):
                mid[x] += row[x]
        for j in range(r):
            acc[r - 1 - j] = acc[r + j]
            acc[r + w + j] = acc[r + w - 1 - j]
        o = out[y]
        for x in range(w):
            o[x] = acc[x]
        for k in range(1, n):
            shifted = acc[k:k + w]
            for x in range(w):
                o[x] += shifted[x]
        for x in range(w):
            o[x] *= inv


@njit(cache=True, nogil=True, fastmath=True)
def plan_cells(coef_a, coef_b, lo, hi, spans, state):
    """Per guide cell: 0 if the matte is 0 throughout, 1 if 255 throughout, 2 if it must
    be computed per pixel. Exact, not a guess: a full-res pixel's q is a convex mix of
    a*I+b over the 3x3 cells around its own, with I in [0, 1], so it lies between the
    3x3 minimum of b + min(a, 0) and the 3x3 maximum of b + max(a, 0).
    coef_a, coef_b: float32 (h, w); spans: float32 (4, h, w) scratch; state: uint8 (h, w).
    """
    h, w = coef_a.shape
    zero = np.float32(0.0)
    for y in range(h):                     # per cell, then the extremes of 3 in a row
        a, b = coef_a[y], coef_b[y]
        low, high = spans[0, y], spans[1, y]
        for x in range(w):
            low[x] = b[x] + min(a[x], zero)
            high[x] = b[x] + max(a[x], zero)
        rlow, rhigh = spans[2, y], spans[3, y]
        rlow[0], rhigh[0] = low[0], high[0]
        rlow[w - 1], rhigh[w - 1] = low[w - 1], high[w - 1]
        if w > 1:
            rlow[0], rhigh[0] = min(low[0], low[1]), max(high[0], high[1])
            rlow[w - 1] = min(low[w - 2], low[w - 1])
            rhigh[w - 1] = max(high[w - 2], high[w - 1])
        # the interior over slices from 0, so the loop vectorises (see _edge_row)
        la, lb, lc = low[:w - 2], low[1:w - 1], low[2:]
        ua, ub, uc = high[:w - 2], high[1:w - 1], high[2:]
        ro, rh = rlow[1:w - 1], rhigh[1:w - 1]
        for i in range(w - 2):
            ro[i] = min(min(la[i], lb[i]), lc[i])
            rh[i] = max(max(ua[i], ub[i]), uc[i])
    for y in range(h):                     # and of 3 rows
        y0, y1 = max(y - 1, 0), min(y + 1, h - 1)
        l0, l1, l2 = spans[2, y0], spans[2, y], spans[2, y1]
        u0, u1, u2 = spans[3, y0], spans[3, y], spans[3, y1]
        st = state[y]
        for x in range(w):
            qmin = min(min(l0[x], l1[x]), l2[x])
            qmax = max(max(u0[x], u1[x]), u2[x])
            st[x] = np.uint8(0) if qmax <= lo else (np.uint8(1) if qmin >= hi else np.uint8(2))


@njit(cache=True, nogil=True, fastmath=True)
def refine_cells(frame, coef_a, coef_b, state, xs, ys, x0, fx, y0, fy, lo, scale,
                 bg, by0, bfy, out, alpha, scratch, prev, hold):
    """The guided filter's full-resolution step, cell by cell, fused with the composite.

    frame, out: uint8 (H, 3W), rows of packed RGB (a reshaped (H, W, 3) frame).
    coef_a, coef_b: float32 (h, w) at guide resolution; state: uint8 (h, w) per guide cell,
    0 = background, 1 = person, 2 = edge. Cell (cy, cx) covers rows ys[cy]:ys[cy+1] and
    columns xs[cx]:xs[cx+1]. Background cells get alpha 0, person cells 255. Edge cells
    compute per pixel q = a * grey/255 + b with a, b sampled bilinearly (x0/fx, y0/fy:
    left/top tap and its weight per full-res column/row; the other tap is index + 1,
    clamped) and alpha = clip((q - lo) * scale, 0, 1) as uint8.
    bg: uint8 (hb, 3W), the background, its rows stretched to H: output row y is row
    by0[y] and the next (clamped) mixed by bfy[y] / 256 (uint16, 0..256). Every pixel of
    `out` is written: background, frame, or frame over background by alpha. A 0-row bg
    composites nothing and leaves `out` alone (the matte alone).
    scratch: float32 (4, max(w, W)) work rows.
    prev: uint8 (H, W), the previous frame's matte, or a 0-row array for none; in edge
    cells, where the new value is within `hold` levels of it the old value is kept, so
    sensor noise on a still edge does not shimmer while real motion passes at once.
    """
    h, w = coef_a.shape
    held = prev.shape[0] == alpha.shape[0]
    blend = bg.shape[0] > 0
    for cy in range(h):
        cx = 0
        while cx < w:
            s = state[cy, cx]
            ce = cx + 1
            while ce < w and state[cy, ce] == s:
                ce += 1
            X0, X1 = xs[cx], xs[ce]
            for y in range(ys[cy], ys[cy + 1]):
                if s == 2:
                    _edge_row(frame, coef_a, coef_b, y, cx, ce, xs, x0, fx, y0, fy, lo,
                              scale, bg, by0, bfy, out, alpha, scratch, prev, held, hold)
                    continue
                al = alpha[y, X0:X1]
                value = np.uint8(255) if s == 1 else np.uint8(0)
                for i in range(al.shape[0]):
                    al[i] = value
                if not blend:
                    continue
                dst = out[y, 3 * X0:3 * X1]
                if s == 1:
                    src = frame[y, 3 * X0:3 * X1]
                    for i in range(dst.shape[0]):
                        dst[i] = src[i]
                else:
                    _background_row(bg, by0, bfy, y, 3 * X0, dst)
            cx = ce


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def _background_row(bg, by0, bfy, y, start, dst):
    """dst = the background's row for output row y, from byte `start` on."""
    n = dst.shape[0]
    ya = by0[y]
    wb = bfy[y]
    top = bg[ya, start:start + n]
    if wb == 0:
        for i in range(n):
            dst[i] = top[i]
        return
    bottom = bg[min(ya + 1, bg.shape[0] - 1), start:start + n]
    wt = np.uint16(256) - wb
    for i in range(n):
        dst[i] = np.uint8((np.uint16(top[i]) * wt + np.uint16(bottom[i]) * wb
                           + np.uint16(128)) >> np.uint16(8))


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def _edge_row(frame, coef_a, coef_b, y, cx, ce, xs, x0, fx, y0, fy, lo, scale, bg, by0,
              bfy, out, alpha, scratch, prev, held, hold):
    """One row of a run of edge cells. Every loop runs over slices that start at 0, so
    indices are provably non-negative: numba then drops its negative-index wraparound
    and the compiler vectorises the loops (4x faster than indexing the full rows)."""
    h, w = coef_a.shape
    one = np.float32(1.0)
    X0, X1 = xs[cx], xs[ce]
    n = X1 - X0
    ya = y0[y]
    yb = min(ya + 1, h - 1)
    wy = fy[y]
    ca, cb = scratch[0], scratch[1]
    for j in range(max(cx - 1, 0), min(ce + 1, w)):     # the coefficient columns used
        ca[j] = coef_a[ya, j] * (one - wy) + coef_a[yb, j] * wy
        cb[j] = coef_b[ya, j] * (one - wy) + coef_b[yb, j] * wy
    taps, wts = x0[X0:X1], fx[X0:X1]
    a_row, b_row = scratch[2, :n], scratch[3, :n]
    last = np.uint64(w - 1)
    for i in range(n):
        xa = np.uint64(taps[i])
        xb = min(xa + np.uint64(1), last)
        wx = wts[i]
        a_row[i] = ca[xa] * (one - wx) + ca[xb] * wx
        b_row[i] = cb[xa] * (one - wx) + cb[xb] * wx
    fr = frame[y, 3 * X0:3 * X1]
    al = alpha[y, X0:X1]
    k = np.float32(1.0 / (256.0 * 255.0))
    for i in range(n):
        grey = np.float32(np.int32(fr[3 * i]) * 77 + np.int32(fr[3 * i + 1]) * 150
                          + np.int32(fr[3 * i + 2]) * 29) * k
        q = ((a_row[i] * grey + b_row[i]) - lo) * scale
        q = min(max(q, np.float32(0.0)), one)
        al[i] = np.uint8(q * np.float32(255.0) + np.float32(0.5))
    if held:
        pr = prev[y, X0:X1]
        for i in range(n):
            if abs(np.int32(al[i]) - np.int32(pr[i])) <= hold:
                al[i] = pr[i]
    if bg.shape[0] > 0:
        o = out[y, 3 * X0:3 * X1]
        _background_row(bg, by0, bfy, y, 3 * X0, o)
        for i in range(n):
            m = np.uint16(al[i])
            nm = np.uint16(255) - m
            for c in range(3):
                v = np.uint16(fr[3 * i + c]) * m + np.uint16(o[3 * i + c]) * nm + np.uint16(128)
                o[3 * i + c] = np.uint8((v + (v >> np.uint16(8))) >> np.uint16(8))


@njit(cache=True, nogil=True, fastmath=True)
def weigh_background(rgb, person, floor, out):
    """Weights for a blur that leaves the person out (normalised convolution).

    rgb: uint8 (h, w, 3); person: float32 (h, w) in [0, 1]. Writes float32 (h, w, 4):
    (r*k, g*k, b*k, k) with k = max((1 - person)^2, floor). After a blur, colour = the
    first three over the fourth: the background nearby, with the person's colours
    weighted down to `floor`, so where only the person is near it is the plain blur.
    """
    h, w = person.shape
    for y in range(h):
        p, c, o = person[y], rgb[y], out[y]
        for x in range(w):
            k = np.float32(1.0) - p[x]
            k = max(k * k, floor)
            o[x, 0] = np.float32(c[x, 0]) * k
            o[x, 1] = np.float32(c[x, 1]) * k
            o[x, 2] = np.float32(c[x, 2]) * k
            o[x, 3] = k


@njit(cache=True, nogil=True, fastmath=True)
def unweigh_background(blurred, out):
    """float32 (h, w, 4) from a blurred weigh_background -> uint8 (h, w, 3), rounded."""
    h, w = out.shape[:2]
    for y in range(h):
        b, o = blurred[y], out[y]
        for x in range(w):
            inv = np.float32(1.0) / max(b[x, 3], np.float32(1e-12))
            for c in range(3):
                v = b[x, c] * inv + np.float32(0.5)
                o[x, c] = np.uint8(min(max(v, np.float32(0.0)), np.float32(255.0)))


def warm_up() -> float:
    """Compile (or load from cache) every kernel on tiny inputs; returns seconds spent.
    Call before opening devices so the first frame is not late."""
    t = time.perf_counter()
    m = np.zeros((4, 4), np.float32)
    smooth_masks(m, m, np.float32(0.5), m.copy())
    moments = np.zeros((4, 4, 4), np.float32)
    guided_moments(m, m, moments)
    # numba compiles one specialisation per read-only flag of each argument: the live path
    # passes the smoother's state as a read-only view (refine.MaskSmoother.update).
    guided_moments(m, _readonly(m), moments)
    guided_coefficients(moments, np.float32(1e-3), np.zeros((2, 4, 4), np.float32))
    box_mean(m, 1, m.copy(), np.zeros(6, np.float32))
    rgb = np.zeros((2, 2, 3), np.uint8)
    weights = np.zeros((2, 2, 4), np.float32)
    weigh_background(rgb, m[:2, :2].copy(), np.float32(1e-3), weights)
    unweigh_background(weights, rgb)
    plan_cells(m, m, np.float32(0.1), np.float32(0.9), np.zeros((4, 4, 4), np.float32),
               np.zeros((4, 4), np.uint8))
    frame = np.zeros((8, 24), np.uint8)
    grey = np.zeros((8, 8), np.uint8)
    coef = np.zeros((1, 1), np.float32)
    edges = np.array([0, 8], np.int32)
    taps = np.zeros(8, np.int32)
    weights = np.zeros(8, np.uint16)
    for state in (0, 1, 2):
        cells = np.full((1, 1), state, np.uint8)
        for bg in (frame[:2], frame[:0]):
            for prev, hold in ((grey.copy(), 2), (np.zeros((0, 0), np.uint8), 0)):
                refine_cells(frame, coef, coef, cells, edges, edges, taps, coef[0], taps,
                             coef[0], np.float32(0), np.float32(1), bg, taps, weights,
                             frame.copy(), grey.copy(), np.zeros((4, 8), np.float32), prev,
                             hold)
    # and a read-only frame: what a still-image source (io/sources.ImageSource) hands out
    refine_cells(_readonly(frame), coef, coef, cells, edges, edges, taps, coef[0], taps, coef[0],
                 np.float32(0), np.float32(1), frame[:2], taps, weights, frame.copy(),
                 grey.copy(), np.zeros((4, 8), np.float32), grey.copy(), 2)
    return time.perf_counter() - t


def _readonly(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a
