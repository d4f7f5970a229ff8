"""From the model's coarse mask to a full-resolution matte: temporal smoothing state and
fast guided-filter edge refinement (heavy part at low resolution, see He & Sun 2015)."""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from backdrop.engine import kernels
from backdrop.io.frames import check_frame


def check_mask(name: str, mask: np.ndarray, shape: Optional[Tuple[int, int]] = None) -> None:
    if not isinstance(mask, np.ndarray) or mask.ndim != 2 or mask.dtype != np.float32:
        got = f"{mask.shape} {mask.dtype}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(f"{name}: expected a 2-D float32 mask, got {got}")
    if shape is not None and mask.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {mask.shape}")


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
    """Fast guided filter: coefficients from a grey guide at low resolution, applied to the
    full-resolution frame in the same pass that blends it over the background.

    radius and eps are in guide pixels and grey-level variance (0..1 scale). lo/hi stretch
    the filtered mask so the inside is solid and the background clear.
    """

    _no_prev = np.zeros((0, 0), np.uint8)

    def __init__(self, *, radius: int = 4, eps: float = 1e-3, lo: float = 0.1, hi: float = 0.9,
                 hold: int = 0):
        if radius < 1 or eps <= 0 or not 0 <= lo < hi <= 1:
            raise ValueError(f"bad guided filter settings radius={radius} eps={eps} lo={lo} hi={hi}")
        self.ksize = (2 * radius + 1, 2 * radius + 1)
        self.eps = np.float32(eps)
        self.lo = np.float32(lo)
        self.scale = np.float32(1.0 / (hi - lo))
        self.hi = np.float32(hi)
        self._state = np.zeros((0, 0), np.uint8)
        self._spans = np.zeros((0, 0, 0), np.float32)
        self._tables: dict = {}
        self._scratch = np.zeros((4, 1), np.float32)
        self.radius = int(radius)
        self._moments = self._means = np.zeros((0, 0, 0), np.float32)
        self._acc = np.zeros(0, np.float32)
        self.hold = int(hold)                # levels of 255; 0 = no temporal hold
        self._prev: Optional[np.ndarray] = None

    def reset(self) -> None:
        """Forget the previous matte (between unrelated images or videos)."""
        self._prev = None

    def coefficients(self, guide_grey: np.ndarray, mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """guide_grey, mask: float32 (h, w), same shape. Returns mean_a, mean_b at (h, w):
        the refiner's own buffers, valid until the next call."""
        check_mask("guide_grey", guide_grey)
        check_mask("mask", mask, guide_grey.shape)
        h, w = mask.shape
        if self._moments.shape[1:] != (h, w):
            self._moments = np.empty((4, h, w), np.float32)
            self._means = np.empty((4, h, w), np.float32)
            self._acc = np.empty(w + 2 * self.radius, np.float32)
            self._ab = np.empty((2, h, w), np.float32)
            self._coef = np.empty((2, h, w), np.float32)
        kernels.guided_moments(guide_grey, mask, self._moments)
        for plane, mean in zip(self._moments, self._means):
            self._box(plane, mean)
        kernels.guided_coefficients(self._means, self.eps, self._ab)
        self._box(self._ab[0], self._coef[0])
        self._box(self._ab[1], self._coef[1])
        return self._coef[0], self._coef[1]

    def _box(self, src: np.ndarray, out: np.ndarray) -> None:
        if self.radius < min(src.shape):
            kernels.box_mean(src, self.radius, out, self._acc)
        else:                                  # a guide smaller than the window
            cv2.boxFilter(src, -1, self.ksize, dst=out, borderType=cv2.BORDER_REFLECT)

    def plan(self, coef_a: np.ndarray, coef_b: np.ndarray) -> np.ndarray:
        """Per guide cell: 0 if the matte is 0 throughout, 1 if 255 throughout, 2 if it
        must be computed per pixel (kernels.plan_cells; exact, not a guess). The returned
        array is reused by the next call."""
        h, w = coef_a.shape
        if self._state.shape != (h, w):
            self._state = np.empty((h, w), np.uint8)
            self._spans = np.empty((4, h, w), np.float32)
        kernels.plan_cells(coef_a, coef_b, self.lo, self.hi, self._spans, self._state)
        return self._state

    def apply(self, frame: np.ndarray, coef_a: np.ndarray, coef_b: np.ndarray,
              alpha: np.ndarray, out: Optional[np.ndarray] = None,
              background: Optional[np.ndarray] = None) -> None:
        """Write the full-resolution matte (uint8, 255 = person) into `alpha`, and with
        `out` and `background` the frame over the background into `out`.

        background: uint8 RGB (hb, W, 3), the frame's width and hb <= H rows, stretched to
        the frame's height linearly (cv2.INTER_LINEAR's convention): a blur computed small
        is enlarged here, in the same pass, and a colour can be a single row.

        One kernel pass: cells the plan proves constant are filled (from the frame where
        they are person, from the background where not); only cells on the person's edge
        compute per pixel.
        """
        check_frame(frame, "frame", contiguous=True)
        H, W = frame.shape[:2]
        check_mask("coef_a", coef_a)
        check_mask("coef_b", coef_b, coef_a.shape)
        if alpha.shape != (H, W) or alpha.dtype != np.uint8 or not alpha.flags.c_contiguous:
            raise ValueError(f"alpha: expected ({H}, {W}) uint8 C-contiguous, got"
                             f" {alpha.shape} {alpha.dtype}")
        if (out is None) != (background is None):
            raise ValueError("out and background go together")
        if out is not None:
            check_frame(out, "out", contiguous=True)
            check_frame(background, "background", contiguous=True)
            if out.shape != frame.shape:
                raise ValueError(f"out must have the frame's shape {frame.shape}")
            if background.shape[1] != W or not 0 < background.shape[0] <= H:
                raise ValueError(f"background: expected 1..{H} rows of width {W}, got"
                                 f" {background.shape[:2]}")
        state = self.plan(coef_a, coef_b)
        h, w = state.shape
        xs, xtap, xw = self._axis(w, W)
        ys, ytap, yw = self._axis(h, H)
        if self._scratch.shape[1] < max(w, W):
            self._scratch = np.zeros((4, max(w, W)), np.float32)
        prev = self._prev if self._prev is not None and self._prev.shape == (H, W) else None
        rows = frame.reshape(H, W * 3)
        if background is None:                 # no rows: the kernel writes alpha alone
            bg, dst = rows[:0], rows
        else:
            bg = background.reshape(-1, W * 3)
            dst = out.reshape(H, W * 3)
        btap, bw = self._stretch(max(1, bg.shape[0]), H)
        kernels.refine_cells(rows, coef_a, coef_b, state, xs, ys, xtap, xw, ytap, yw,
                             self.lo, self.scale, bg, btap, bw, dst, alpha, self._scratch,
                             prev if prev is not None else self._no_prev, self.hold)
        if self.hold:
            # our own copy: the caller may keep or change `alpha`
            if prev is None:
                self._prev = alpha.copy()
            else:
                np.copyto(prev, alpha)

    def _stretch(self, small: int, full: int):
        """(top row, weight of the next in 256ths) per output row, cached."""
        key = ("stretch", small, full)
        if key not in self._tables:
            _, tap, weight = self._axis(small, full)
            self._tables[key] = (tap, np.round(weight * 256).astype(np.uint16))
        return self._tables[key]

    def _axis(self, small: int, full: int):
        """(cell starts (small + 1), left tap, tap weight) per full-res index, cached.
        Cells follow cv2.INTER_NEAREST_EXACT: index i belongs to cell floor((i + .5) * s/f)."""
        key = (small, full)
        if key not in self._tables:
            if len(self._tables) > 8:
                self._tables.clear()
            pos = (np.arange(full) + 0.5) * (small / full)
            cell = np.minimum(np.floor(pos), small - 1).astype(np.int32)
            starts = np.searchsorted(cell, np.arange(small + 1)).astype(np.int32)
            src = np.clip(pos - 0.5, 0, small - 1)
            tap = np.floor(src).astype(np.int32)
            self._tables[key] = (starts, tap, (src - tap).astype(np.float32))
        return self._tables[key]
