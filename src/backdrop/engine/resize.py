"""Shrinking images the cheap way, with the result of cv2.INTER_AREA."""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np


def shrink(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """`image` resized to `size` (width, height), smaller or equal, averaging over areas.

    At exactly half size cv2's INTER_LINEAR samples between pixel pairs, so it is the
    2x2 mean, and its SIMD path is 2.5x faster than INTER_AREA's general one (1280x720 to
    320x180: 0.34 against 0.88 ms here). Halve while the remaining factor is even on both
    axes, then let INTER_AREA do the rest. Results differ from INTER_AREA by rounding
    (at most 1 level per halving).
    """
    w, h = size
    while image.shape[1] % (2 * w) == 0 and image.shape[0] % (2 * h) == 0:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2),
                           interpolation=cv2.INTER_LINEAR)
    if image.shape[1] != w or image.shape[0] != h:
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return image
