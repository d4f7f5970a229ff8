import cv2
import numpy as np
import pytest

from backdrop.engine.resize import shrink

rng = np.random.default_rng(3)


@pytest.mark.parametrize("shape,size,halvings", [
    ((720, 1280, 3), (320, 180), 2),     # 4x: two exact halvings
    ((1080, 1920, 3), (320, 180), 1),    # 6x: one halving, then 3x by area
    ((480, 640, 3), (320, 240), 1),
    ((90, 166, 3), (40, 30), 0),         # not a whole factor: area only
    ((64, 96), (12, 8), 3),              # float mask, 8x
])
def test_shrink_equals_inter_area_within_rounding(shape, size, halvings):
    if len(shape) == 2:
        img = rng.random(shape, dtype=np.float32)
    else:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
    got = shrink(img, size)
    want = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    assert got.shape == want.shape and got.dtype == img.dtype
    tol = 1e-5 if img.dtype == np.float32 else halvings
    assert np.abs(got.astype(np.float64) - want).max() <= tol


def test_shrink_to_the_same_size_is_the_image():
    img = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    np.testing.assert_array_equal(shrink(img, (12, 10)), img)
