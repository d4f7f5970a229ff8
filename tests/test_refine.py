import numpy as np
import pytest

from backdrop.engine.refine import GuidedRefiner, MaskSmoother


def test_smoother_state_does_not_alias_the_input():
    """The trap from the design notes: the segmenter reuses its output buffer."""
    s = MaskSmoother(ratio=0.7)
    buf = np.full((4, 5), 0.5, np.float32)
    first = s.update(buf).copy()
    buf[:] = 1.0                      # the segmenter overwrites its buffer
    np.testing.assert_array_equal(s.update(np.full((4, 5), 0.5, np.float32)),
                                  np.full((4, 5), 0.5, np.float32))
    assert np.array_equal(first, np.full((4, 5), 0.5, np.float32))


def test_smoother_leans_on_history_only_where_uncertain():
    s = MaskSmoother(ratio=0.8)
    s.update(np.zeros((2, 2), np.float32))
    out = s.update(np.array([[1.0, 0.5], [0.0, 0.45]], np.float32))
    assert out[0, 0] == pytest.approx(1.0, abs=1e-3)   # confident: follows at once
    assert out[0, 1] == pytest.approx(0.1, abs=1e-3)   # uncertain: 0.5 + (0 - 0.5) * 0.8
    assert not out.flags.writeable
    buf = np.array(out)
    s.reset()
    np.testing.assert_array_equal(s.update(buf), buf)


def test_smoother_restarts_on_new_size_and_rejects_bad_input():
    s = MaskSmoother()
    s.update(np.zeros((2, 2), np.float32))
    np.testing.assert_array_equal(s.update(np.ones((3, 3), np.float32)), np.ones((3, 3)))
    with pytest.raises(TypeError, match="float32"):
        s.update(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError):
        MaskSmoother(ratio=1.0)


def test_guided_refiner_snaps_a_blocky_mask_to_the_frame_edge():
    # a bright square on dark; the coarse mask is the square blurred and shifted by 2 px
    H = W = 64
    frame = np.zeros((H, W, 3), np.uint8)
    frame[16:48, 16:48] = 220
    truth = np.zeros((H, W), np.float32)
    truth[16:48, 16:48] = 1
    g = 4  # guide is 16x16
    guide = frame[::g, ::g, 0].astype(np.float32) / 255
    coarse = np.zeros((16, 16), np.float32)
    coarse[4:12, 5:13] = 1
    r = GuidedRefiner(radius=2, eps=1e-3)
    a, b = r.coefficients(guide, coarse)
    alpha = np.zeros((H, W), np.uint8)
    r.apply(frame, a, b, alpha)
    naive = np.kron(coarse, np.ones((g, g), np.float32))
    err = lambda m: np.abs(m - truth).mean()
    assert err(alpha / 255.0) < err(naive) * 0.75


def test_guided_refiner_checks_shapes():
    r = GuidedRefiner()
    with pytest.raises(ValueError, match="shape"):
        r.coefficients(np.zeros((4, 4), np.float32), np.zeros((4, 5), np.float32))
    with pytest.raises(TypeError, match="RGB"):
        r.apply(np.zeros((4, 4), np.uint8), np.zeros((2, 2), np.float32),
                np.zeros((2, 2), np.float32), np.zeros((4, 4), np.uint8))


def test_guided_refiner_apply_equals_dense_computation_everywhere():
    """The plan skips cells it proves constant: the result must equal the dense filter."""
    import cv2
    from test_kernels import ref_guided

    rng = np.random.default_rng(3)
    H, W = 90, 160
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:18, 0:32]
    person = np.clip(1.5 - np.hypot((xx - 16) / 8, (yy - 14) / 9), 0, 1).astype(np.float32)
    guide = cv2.resize(frame, (32, 18), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    r = GuidedRefiner(radius=2, eps=1e-3)
    a, b = r.coefficients(grey, person)
    state = r.plan(a, b)
    assert (state == 0).any() and (state == 1).any() and (state == 2).any()
    bg = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    alpha = np.zeros((H, W), np.uint8)
    out = np.zeros_like(bg)
    r.apply(frame, a, b, alpha, out, bg)
    want = ref_guided(frame, a, b, float(r.lo), float(r.scale))
    assert np.abs(alpha.astype(int) - want).max() <= 1
    m = alpha.astype(np.float64)[..., None] / 255
    assert np.abs(out - (frame * m + bg * (1 - m))).max() <= 1


def test_refiner_hold_state_is_its_own_copy_and_resets():
    """The previous matte is owned: a caller scribbling on `alpha` must not move it."""
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    a = np.zeros((4, 6), np.float32)
    b = np.full((4, 6), 0.5, np.float32)
    r = GuidedRefiner(radius=1, hold=4)
    alpha = np.zeros((20, 30), np.uint8)
    r.apply(frame, a, b, alpha)
    first = alpha.copy()
    alpha[:] = 0                                   # the caller reuses the buffer
    r.apply(frame, a, b + np.float32(2 / 255), alpha)   # a change of 2 levels: held
    np.testing.assert_array_equal(alpha, first)
    r.reset()
    r.apply(frame, a, b + np.float32(2 / 255), alpha)   # no history: the new value
    assert (alpha == first + 2).all()


def test_guided_refiner_coefficients_equal_the_textbook_filter():
    """He & Sun's guided filter with box means, image by image, as the reference."""
    import cv2

    rng = np.random.default_rng(11)
    grey = rng.random((30, 40), dtype=np.float32)
    mask = (rng.random((30, 40)) > 0.5).astype(np.float32)
    r = GuidedRefiner(radius=2, eps=1e-2)
    box = lambda img: cv2.boxFilter(img.astype(np.float64), -1, (5, 5),
                                    borderType=cv2.BORDER_REFLECT)
    mi, mp = box(grey), box(mask)
    a = (box(grey * mask) - mi * mp) / (box(grey * grey) - mi * mi + 1e-2)
    b = mp - a * mi
    got_a, got_b = r.coefficients(grey, mask)
    np.testing.assert_allclose(got_a, box(a), atol=2e-4)
    np.testing.assert_allclose(got_b, box(b), atol=2e-4)
