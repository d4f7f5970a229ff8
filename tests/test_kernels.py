"""Each numba kernel against a plain-numpy reference, including read-only inputs."""

import numpy as np
import pytest

from backdrop import kernels
from backdrop.kernels import _C1, _C2, _C3, _C4, _C5

rng = np.random.default_rng(7)


def readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def ref_smooth(prev, new, ratio):
    s = (new - 0.5) ** 2
    conf = np.minimum(1.0, s * (_C1 + s * (_C2 + s * (_C3 + s * (_C4 + s * _C5)))))
    return new + (prev - new) * ((1.0 - conf) * ratio)


def ref_resize_linear(img, h, w):
    """Bilinear resize with pixel centres aligned (cv2.INTER_LINEAR convention)."""
    sh, sw = img.shape
    ys = np.clip((np.arange(h) + 0.5) * sh / h - 0.5, 0, sh - 1)
    xs = np.clip((np.arange(w) + 0.5) * sw / w - 0.5, 0, sw - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, sh - 1), np.minimum(x0 + 1, sw - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bot = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy) + bot * fy


def ref_blend(frame, alpha, bg):
    a = alpha.astype(np.float64)[..., None] / 255.0
    return np.round(frame * a + bg * (1 - a)).astype(np.uint8)


def ref_guided(frame, ca, cb, lo, scale, bg):
    H, W = frame.shape[:2]
    a = ref_resize_linear(ca.astype(np.float64), H, W)
    b = ref_resize_linear(cb.astype(np.float64), H, W)
    f = frame.astype(np.int64)
    grey = (f[..., 0] * 77 + f[..., 1] * 150 + f[..., 2] * 29) / (256 * 255)
    alpha = np.round(np.clip((a * grey + b - lo) * scale, 0, 1) * 255).astype(np.uint8)
    return alpha, ref_blend(frame, alpha, bg)


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


@pytest.mark.parametrize("src,dst", [(4, 8), (7, 19), (180, 1080), (5, 5), (9, 4)])
def test_bilinear_tables_match_reference_resize(src, dst):
    img = rng.random((src, 3))
    i0, i1, f = kernels.bilinear_tables(src, dst)
    got = img[i0] * (1 - f[:, None]) + img[i1] * f[:, None]
    want = ref_resize_linear(img, dst, 3)
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("ro", [False, True])
def test_blend_u8_matches_reference(ro):
    frame = rng.integers(0, 256, (6, 11, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (6, 11, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (6, 11), dtype=np.uint8)
    alpha[0, :2] = [0, 255]
    out = np.zeros_like(frame)
    args = [readonly(x) if ro else x for x in (frame, alpha, bg)]
    kernels.blend_u8(*args, out)
    np.testing.assert_array_equal(out, ref_blend(frame, alpha, bg))
    assert (out[0, 0] == bg[0, 0]).all() and (out[0, 1] == frame[0, 1]).all()


def _guided_inputs(H=23, W=31, h=6, w=8):
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    ca = (rng.random((h, w), dtype=np.float32) - 0.5) * 2
    cb = rng.random((h, w), dtype=np.float32)
    bg = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    tables = kernels.bilinear_tables(h, H) + kernels.bilinear_tables(w, W)
    return frame, ca, cb, bg, tables


@pytest.mark.parametrize("ro", [False, True])
def test_guided_blend_matches_reference(ro):
    frame, ca, cb, bg, tables = _guided_inputs()
    lo, scale = np.float32(0.1), np.float32(1 / 0.8)
    H, W = frame.shape[:2]
    alpha = np.zeros((H, W), np.uint8)
    out = np.zeros_like(frame)
    rows = np.zeros((2, ca.shape[1]), np.float32)
    args = [readonly(x) if ro else x for x in (frame, ca, cb)]
    kernels.guided_blend(*args, *tables, lo, scale, readonly(bg) if ro else bg, out, alpha, rows)
    want_alpha, want_out = ref_guided(frame, ca, cb, 0.1, 1 / 0.8, bg)
    # float32 vs float64 rounding may move a value by one level
    assert np.abs(alpha.astype(int) - want_alpha).max() <= 1
    assert np.abs(out.astype(int) - ref_blend(frame, alpha, bg)).max() == 0
    assert np.abs(out.astype(int) - want_out).max() <= 2
    assert 0 < (alpha == 0).sum() + (alpha == 255).sum() < alpha.size  # clipping exercised


def test_guided_blend_alpha_only_leaves_out_untouched():
    frame, ca, cb, bg, tables = _guided_inputs()
    alpha = np.zeros(frame.shape[:2], np.uint8)
    empty = np.zeros((0, 0, 3), np.uint8)
    rows = np.zeros((2, ca.shape[1]), np.float32)
    kernels.guided_blend(frame, ca, cb, *tables, np.float32(0), np.float32(1), empty, empty,
                         alpha, rows)
    want_alpha, _ = ref_guided(frame, ca, cb, 0.0, 1.0, bg)
    assert np.abs(alpha.astype(int) - want_alpha).max() <= 1


def test_warm_up_compiles_everything():
    assert kernels.warm_up() >= 0
    for k in (kernels.smooth_masks, kernels.guided_blend, kernels.blend_u8):
        assert k.signatures, f"{k.__name__} was not compiled"
