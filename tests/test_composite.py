import numpy as np
import pytest

from backdrop.composite import composite


def test_composite_mixes_by_alpha_and_checks_shapes():
    frame = np.full((2, 3, 3), 200, np.uint8)
    bg = np.full((2, 3, 3), 100, np.uint8)
    alpha = np.array([[0, 255, 128], [64, 192, 1]], np.uint8)
    out = np.zeros_like(frame)
    composite(frame, alpha, bg, out)
    a = alpha.astype(np.float64) / 255
    want = np.round(200 * a + 100 * (1 - a))
    np.testing.assert_array_equal(out[..., 0], want)
    with pytest.raises(ValueError, match="shape"):
        composite(frame, alpha, bg[:1], out)
    with pytest.raises(ValueError, match="alpha"):
        composite(frame, alpha.astype(np.float32), bg, out)
