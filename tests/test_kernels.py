"""Each numba kernel against a plain-numpy reference, including read-only inputs."""

import cv2
import numpy as np
import pytest

from backdrop.engine import kernels
from backdrop.engine.kernels import _C1, _C2, _C3, _C4, _C5

rng = np.random.default_rng(7)


def readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def ref_smooth(prev, new, ratio):
    s = (new - 0.5) ** 2
    conf = np.minimum(1.0, s * (_C1 + s * (_C2 + s * (_C3 + s * (_C4 + s * _C5)))))
    return new + (prev - new) * ((1.0 - conf) * ratio)


def ref_blend(frame, alpha, bg):
    a = alpha.astype(np.float64)[..., None] / 255.0
    return np.round(frame * a + bg * (1 - a)).astype(np.uint8)


@pytest.mark.parametrize("ro", [False, True])
def test_smooth_masks_matches_reference(ro):
    prev = rng.random((9, 13), dtype=np.float32)
    new = rng.random((9, 13), dtype=np.float32)
    new[0, :3] = [0.0, 1.0, 0.5]
    out = np.empty_like(new)
    kernels.smooth_masks(readonly(prev) if ro else prev, readonly(new) if ro else new,
                         np.float32(0.7), out)
    np.testing.assert_allclose(out, ref_smooth(prev, new, 0.7), atol=1e-5)
    # confident pixels follow the new frame, an uncertain one leans on history
    assert out[0, 0] == pytest.approx(0.0, abs=1e-3) and out[0, 1] == pytest.approx(1.0, abs=1e-3)
    assert out[0, 2] == pytest.approx(0.5 + (prev[0, 2] - 0.5) * 0.7, abs=1e-5)


def test_smooth_masks_in_place_equals_out_of_place():
    prev = rng.random((5, 6), dtype=np.float32)
    new = rng.random((5, 6), dtype=np.float32)
    out = np.empty_like(new)
    kernels.smooth_masks(prev, new, np.float32(0.5), out)
    state = prev.copy()
    kernels.smooth_masks(state, new, np.float32(0.5), state)
    np.testing.assert_array_equal(state, out)


def ref_resize_linear(img, h, w):
    """Bilinear resize with pixel centres aligned (the cv2.INTER_LINEAR convention)."""
    sh, sw = img.shape
    ys = np.clip((np.arange(h) + 0.5) * sh / h - 0.5, 0, sh - 1)
    xs = np.clip((np.arange(w) + 0.5) * sw / w - 0.5, 0, sw - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, sh - 1), np.minimum(x0 + 1, sw - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bot = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy) + bot * fy


def ref_guided(frame, ca, cb, lo, scale):
    """Dense guided-filter application: upsample a, b; q = a * grey + b; clip."""
    H, W = frame.shape[:2]
    a = ref_resize_linear(ca.astype(np.float64), H, W)
    b = ref_resize_linear(cb.astype(np.float64), H, W)
    f = frame.astype(np.int64)
    grey = (f[..., 0] * 77 + f[..., 1] * 150 + f[..., 2] * 29) / (256 * 255)
    return np.round(np.clip((a * grey + b - lo) * scale, 0, 1) * 255).astype(np.uint8)


NO_PREV = np.zeros((0, 0), np.uint8)


def axis_tables(small, full):
    pos = (np.arange(full) + 0.5) * (small / full)
    cell = np.minimum(np.floor(pos), small - 1).astype(np.int32)
    starts = np.searchsorted(cell, np.arange(small + 1)).astype(np.int32)
    src = np.clip(pos - 0.5, 0, small - 1)
    tap = np.floor(src).astype(np.int32)
    return starts, tap, (src - tap).astype(np.float32)


def run_cells(frame, ca, cb, state, lo, scale, out, alpha, prev=NO_PREV, hold=0, bg=None):
    """bg: (hb, W, 3), stretched to the frame's height; None: the matte alone."""
    H, W = frame.shape[:2]
    (h, w) = ca.shape
    xs, xt, xw = axis_tables(w, W)
    ys, yt, yw = axis_tables(h, H)
    rows = frame.reshape(H, W * 3)[:0] if bg is None else bg.reshape(bg.shape[0], W * 3)
    _, bt, bw = axis_tables(max(1, rows.shape[0]), H)
    kernels.refine_cells(frame.reshape(H, W * 3), ca, cb, state, xs, ys, xt, xw, yt, yw,
                         np.float32(lo), np.float32(scale), rows, bt,
                         np.round(bw * 256).astype(np.uint16), out.reshape(H, W * 3),
                         alpha, np.zeros((4, max(w, W)), np.float32), prev, hold)
    return xs, ys


@pytest.mark.parametrize("ro", [False, True])
@pytest.mark.parametrize("size", [(23, 31, 6, 8), (40, 64, 10, 16), (7, 9, 7, 9)])
def test_refine_cells_edge_cells_match_dense_reference(ro, size):
    H, W, h, w = size
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    ca = (rng.random((h, w), dtype=np.float32) - 0.5) * 2
    cb = rng.random((h, w), dtype=np.float32)
    state = np.full((h, w), 2, np.uint8)                      # every cell computed
    alpha = np.zeros((H, W), np.uint8)
    out = np.zeros_like(bg)
    f, a, b, g = (readonly(x) if ro else x for x in (frame, ca, cb, bg))
    run_cells(f, a, b, readonly(state) if ro else state, 0.1, 1.25, out, alpha, bg=g)
    want = ref_guided(frame, ca, cb, 0.1, 1.25)
    assert np.abs(alpha.astype(int) - want).max() <= 1      # float32 vs float64
    np.testing.assert_array_equal(out, ref_blend(frame, alpha, bg))
    assert (alpha == 0).any() and (alpha == 255).any() and ((alpha > 0) & (alpha < 255)).any()


def test_refine_cells_fills_constant_cells_and_computes_only_edges():
    H, W, h, w = 20, 30, 4, 6
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    ca = rng.random((h, w), dtype=np.float32)
    cb = rng.random((h, w), dtype=np.float32)
    state = rng.integers(0, 3, (h, w)).astype(np.uint8)
    state[1, 2:4] = 2
    alpha = np.full((H, W), 7, np.uint8)
    bg = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    out = np.zeros_like(bg)
    xs, ys = run_cells(frame, ca, cb, state, 0.0, 1.0, out, alpha, bg=bg)
    cell = np.repeat(np.repeat(state, np.diff(ys), axis=0), np.diff(xs), axis=1)
    want = ref_guided(frame, ca, cb, 0.0, 1.0)
    assert (alpha[cell == 0] == 0).all() and (alpha[cell == 1] == 255).all()
    assert np.abs(alpha[cell == 2].astype(int) - want[cell == 2]).max() <= 1
    np.testing.assert_array_equal(out[cell == 0], bg[cell == 0])   # every pixel written
    np.testing.assert_array_equal(out[cell == 1], frame[cell == 1])
    np.testing.assert_array_equal(out[cell == 2], ref_blend(frame, alpha, bg)[cell == 2])


def ref_plan(ca, cb, lo, hi):
    """The plan with cv2: 3x3 erode/dilate of each cell's extreme q over I in [0, 1]."""
    k = np.ones((3, 3), np.uint8)
    qmin = cv2.erode(cb + np.minimum(ca, 0), k)
    qmax = cv2.dilate(cb + np.maximum(ca, 0), k)
    return np.where(qmax <= lo, 0, np.where(qmin >= hi, 1, 2)).astype(np.uint8)


@pytest.mark.parametrize("ro", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (18, 32), (45, 80)])
def test_plan_cells_matches_erode_dilate_reference(ro, shape):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    # a smooth blob (solid inside, clear outside) plus noise: all three states occur
    blob = np.clip(1.6 - np.hypot(xx - shape[1] / 2, yy - shape[0] / 2) / 6, 0, 1)
    cb = (blob + rng.normal(0, 0.05, shape)).astype(np.float32)
    ca = rng.normal(0, 0.1, shape).astype(np.float32)
    state = np.full(shape, 9, np.uint8)
    a, b = (readonly(x) if ro else x for x in (ca, cb))
    kernels.plan_cells(a, b, np.float32(0.1), np.float32(0.9),
                       np.zeros((4,) + shape, np.float32), state)
    np.testing.assert_array_equal(state, ref_plan(ca, cb, np.float32(0.1), np.float32(0.9)))
    if shape == (45, 80):
        assert set(np.unique(state)) == {0, 1, 2}


@pytest.mark.parametrize("rows", [1, 5, 12])
def test_refine_cells_stretches_a_short_background_like_inter_linear(rows):
    """A background of fewer rows than the frame (a blur computed small, a colour as one
    row) is enlarged in the same pass: as cv2.INTER_LINEAR would, within rounding."""
    H, W, h, w = 24, 32, 6, 8
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (rows, W, 3), dtype=np.uint8)
    ca, cb = rng.random((h, w), dtype=np.float32), rng.random((h, w), dtype=np.float32)
    state = rng.integers(0, 3, (h, w)).astype(np.uint8)
    out = np.zeros_like(frame)
    alpha = np.zeros((H, W), np.uint8)
    xs, ys = run_cells(frame, ca, cb, state, 0.0, 1.0, out, alpha, bg=bg)
    tall = cv2.resize(bg, (W, H), interpolation=cv2.INTER_LINEAR)
    cell = np.repeat(np.repeat(state, np.diff(ys), axis=0), np.diff(xs), axis=1)
    assert np.abs(out[cell == 0].astype(int) - tall[cell == 0]).max() <= 1
    assert np.abs(out.astype(int) - ref_blend(frame, alpha, tall)).max() <= 1
    if rows == 1:
        np.testing.assert_array_equal(out[cell == 0], np.broadcast_to(bg, tall.shape)[cell == 0])


def test_refine_cells_without_blend_leaves_out_alone():
    frame = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    ca, cb = rng.random((3, 4), dtype=np.float32), rng.random((3, 4), dtype=np.float32)
    state = np.array([[0, 1, 2, 2]] * 3, np.uint8)
    out = np.full_like(frame, 9)
    alpha = np.zeros((12, 16), np.uint8)
    run_cells(frame, ca, cb, state, 0.0, 1.0, out, alpha)
    assert (out == 9).all() and (alpha[:, 4:8] == 255).all()


def test_refine_cells_holds_small_changes_and_passes_large_ones():
    H, W, h, w = 12, 16, 3, 4
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    ca = np.zeros((h, w), np.float32)
    cb = np.full((h, w), 0.5, np.float32)                  # alpha 128 everywhere
    prev = np.full((H, W), 125, np.uint8)
    prev[0, :4] = [100, 131, 128, 200]
    alpha = np.zeros((H, W), np.uint8)
    run_cells(readonly(frame), ca, cb, np.full((h, w), 2, np.uint8), 0.0, 1.0, frame.copy(),
              alpha, readonly(prev), 3)
    ref = np.where(np.abs(128 - prev.astype(int)) <= 3, prev, 128)
    np.testing.assert_array_equal(alpha, ref)
    assert alpha[0, :4].tolist() == [128, 131, 128, 128] and alpha[1, 0] == 125


def test_warm_up_compiles_everything():
    assert kernels.warm_up() >= 0
    for k in (kernels.smooth_masks, kernels.refine_cells, kernels.plan_cells,
              kernels.weigh_background,
              kernels.guided_moments, kernels.guided_coefficients, kernels.box_mean,
              kernels.unweigh_background):
        assert k.signatures, f"{k.__name__} was not compiled"


@pytest.mark.parametrize("ro", [False, True])
def test_weigh_and_unweigh_background_match_reference(ro):
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    person = rng.random((5, 7), dtype=np.float32)
    person[0, :2] = [0.0, 1.0]
    weights = np.empty((5, 7, 4), np.float32)
    kernels.weigh_background(readonly(rgb) if ro else rgb, readonly(person) if ro else person,
                             np.float32(1e-3), weights)
    k = np.maximum((1.0 - person) ** 2, 1e-3)
    np.testing.assert_allclose(weights[..., 3], k, rtol=1e-5)
    np.testing.assert_allclose(weights[..., :3], rgb * k[..., None], rtol=1e-5)
    assert weights[0, 0, 3] == 1.0 and weights[0, 1, 3] == pytest.approx(1e-3)
    out = np.empty_like(rgb)
    kernels.unweigh_background(readonly(weights) if ro else weights, out)
    np.testing.assert_array_equal(out, rgb)                     # weight cancels exactly
    mixed = weights.copy()
    mixed[..., :3] *= 3.0                                       # -> 3x the colour, clipped
    kernels.unweigh_background(mixed, out)
    np.testing.assert_array_equal(out, np.clip(np.round(rgb * 3.0), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("ro", [False, True])
def test_guided_moments_and_coefficients_match_reference(ro):
    grey = rng.random((6, 9), dtype=np.float32)
    mask = rng.random((6, 9), dtype=np.float32)
    moments = np.empty((4, 6, 9), np.float32)
    kernels.guided_moments(readonly(grey) if ro else grey, readonly(mask) if ro else mask,
                           moments)
    np.testing.assert_allclose(moments, np.stack([grey, mask, grey * mask, grey * grey]),
                               rtol=1e-6)
    means = rng.random((4, 6, 9), dtype=np.float32)
    ab = np.empty((2, 6, 9), np.float32)
    kernels.guided_coefficients(readonly(means) if ro else means, np.float32(1e-2), ab)
    mi, mp, mip, mii = means.astype(np.float64)
    a = (mip - mi * mp) / (mii - mi * mi + 1e-2)
    np.testing.assert_allclose(ab[0], a, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ab[1], mp - a * mi, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("ro", [False, True])
@pytest.mark.parametrize("shape,r", [((12, 17), 2), ((5, 4), 3), ((30, 40), 1), ((9, 9), 4)])
def test_box_mean_matches_cv2_reflect(ro, shape, r):
    import cv2

    src = rng.random(shape, dtype=np.float32)
    out = np.empty_like(src)
    kernels.box_mean(readonly(src) if ro else src, r, out, np.empty(shape[1] + 2 * r, np.float32))
    want = cv2.boxFilter(src.astype(np.float64), -1, (2 * r + 1, 2 * r + 1),
                         borderType=cv2.BORDER_REFLECT)
    np.testing.assert_allclose(out, want, atol=1e-5)
