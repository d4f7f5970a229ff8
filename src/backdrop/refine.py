"""From the model's coarse mask to a full-resolution matte: temporal smoothing state and
fast guided-filter edge refinement (heavy part at low resolution, see He & Sun 2015)."""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from . import kernels


def check_mask(name: str, mask: np.ndarray, shape: Optional[Tuple[int, int]] = None) -> None:
    if not isinstance(mask, np.ndarray) or mask.ndim != 2 or mask.dtype != np.float32:
        got = f"{mask.shape} {mask.dtype}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(f"{name}: expected a 2-D float32 mask, got {got}")
    if shape is not None and mask.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {mask.shape}")


def check_frame(name: str, frame: np.ndarray) -> None:
    if (not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3
            or frame.dtype != np.uint8):
        got = f"{frame.shape} {frame.dtype}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise TypeError(f"{name}: expected an (H, W, 3) uint8 RGB frame, got {got}")
    if not frame.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous frame (use np.ascontiguousarray)")


class MaskSmoother:
    """Temporal smoothing that trusts the new mask where it is confident and history where
    it is not. Keeps its own copy of the state: the segmenter's output buffer is reused by
    the segmenter and must never be aliased here."""

    def __init__(self, *, ratio: float = 0.7):
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        self.ratio = np.float32(ratio)
        self._state: Optional[np.ndarray] = None

    def reset(self) -> None:
        self._state = None

    def update(self, mask: np.ndarray) -> np.ndarray:
        """Smooth `mask` against history; returns the internal state (read-only view)."""
        check_mask("mask", mask)
        if self._state is None or self._state.shape != mask.shape or self.ratio == 0:
            self._state = np.array(mask, dtype=np.float32, copy=True)
        else:
            kernels.smooth_masks(self._state, mask, self.ratio, self._state)
        view = self._state.view()
        view.flags.writeable = False
        return view


class GuidedRefiner:
    """Fast guided filter: coefficients from a grey guide at low resolution, upsampled and
    applied to the full-resolution grey frame.

    radius and eps are in guide pixels and grey-level variance (0..1 scale). lo/hi stretch
    the filtered mask so the inside is solid and the background clear.
    """

    def __init__(self, *, radius: int = 4, eps: float = 1e-3, lo: float = 0.1, hi: float = 0.9):
        if radius < 1 or eps <= 0 or not 0 <= lo < hi <= 1:
            raise ValueError(f"bad guided filter settings radius={radius} eps={eps} lo={lo} hi={hi}")
        self.ksize = (2 * radius + 1, 2 * radius + 1)
        self.eps = np.float32(eps)
        self.lo = np.float32(lo)
        self.scale = np.float32(1.0 / (hi - lo))
        self._full: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None

    def coefficients(self, guide_grey: np.ndarray, mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """guide_grey, mask: float32 (h, w), same shape. Returns mean_a, mean_b at (h, w)."""
        check_mask("guide_grey", guide_grey)
        check_mask("mask", mask, guide_grey.shape)
        box = lambda img: cv2.boxFilter(img, cv2.CV_32F, self.ksize, borderType=cv2.BORDER_REFLECT)
        mean_i = box(guide_grey)
        mean_p = box(mask)
        cov_ip = box(guide_grey * mask) - mean_i * mean_p
        var_i = box(guide_grey * guide_grey) - mean_i * mean_i
        a = cov_ip / (var_i + self.eps)
        b = mean_p - a * mean_i
        return box(a), box(b)

    def apply(self, frame: np.ndarray, coef_a: np.ndarray, coef_b: np.ndarray,
              alpha: np.ndarray) -> None:
        """Write the full-resolution matte (uint8, 255 = person) into `alpha`."""
        check_frame("frame", frame)
        H, W = frame.shape[:2]
        check_mask("coef_a", coef_a)
        check_mask("coef_b", coef_b, coef_a.shape)
        if alpha.shape != (H, W) or alpha.dtype != np.uint8 or not alpha.flags.c_contiguous:
            raise ValueError(f"alpha: expected ({H}, {W}) uint8 C-contiguous, got"
                             f" {alpha.shape} {alpha.dtype}")
        if self._full is None or self._full[0].shape != (H, W):
            self._full = (np.empty((H, W), np.uint8), np.empty((H, W), np.float32),
                          np.empty((H, W), np.float32))
        grey, full_a, full_b = self._full
        cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY, dst=grey)
        cv2.resize(coef_a, (W, H), dst=full_a, interpolation=cv2.INTER_LINEAR)
        cv2.resize(coef_b, (W, H), dst=full_b, interpolation=cv2.INTER_LINEAR)
        kernels.guided_alpha(grey, full_a, full_b, self.lo, self.scale, alpha)
