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


@pytest.mark.parametrize("ro", [False, True])
def test_guided_alpha_matches_reference(ro):
    grey = rng.integers(0, 256, (23, 31), dtype=np.uint8)
    ca = (rng.random((23, 31), dtype=np.float32) - 0.5) * 2
    cb = rng.random((23, 31), dtype=np.float32)
    alpha = np.zeros((23, 31), np.uint8)
    args = [readonly(x) if ro else x for x in (grey, ca, cb)]
    kernels.guided_alpha(*args, np.float32(0.1), np.float32(1 / 0.8), alpha)
    q = np.clip((ca * (grey / 255.0) + cb - 0.1) / 0.8, 0, 1)
    want = np.round(q * 255)
    # float32 with fastmath vs float64: at most one level apart
    assert np.abs(alpha.astype(int) - want).max() <= 1
    assert (alpha == 0).any() and (alpha == 255).any() and ((alpha > 0) & (alpha < 255)).any()


def test_warm_up_compiles_everything():
    assert kernels.warm_up() >= 0
    for k in (kernels.smooth_masks, kernels.guided_alpha, kernels.blend_u8):
        assert k.signatures, f"{k.__name__} was not compiled"
