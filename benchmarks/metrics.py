"""Mask-quality metrics on 8-bit masks (255 = person).

Definitions follow ../shared/evaldata/README.md so numbers compare across
projects: IoU, DAVIS boundary F, MAE, flicker and binary flip rate.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

THRESHOLD = 128  # a pixel is "person" when its 8-bit value is >= 128
BOUNDARY_TOLERANCE = 0.0075  # fraction of the image diagonal (DAVIS)


def to_uint8(matte: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Float matte in [0, 1] of the given (H, W) shape -> uint8 0..255, rounded."""
    matte = np.asarray(matte)
    if matte.shape != shape:
        raise ValueError(f"matte shape {matte.shape} differs from frame {shape}")
    return (np.clip(matte, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> None:
    for name, m in (("prediction", pred), ("truth", truth)):
        if m.dtype != np.uint8 or m.ndim != 2:
            raise TypeError(f"{name} must be a (H, W) uint8 mask, got {m.dtype} {m.shape}")
    if pred.shape != truth.shape:
        raise ValueError(f"shape mismatch: prediction {pred.shape} vs truth {truth.shape}")


def binarize(mask: np.ndarray) -> np.ndarray:
    """Boolean person mask: value >= 128."""
    return mask >= THRESHOLD


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of the binarized masks; 1.0 when both are empty."""
    _check_pair(pred, truth)
    p, t = binarize(pred), binarize(truth)
    union = np.count_nonzero(p | t)
    if union == 0:
        return 1.0
    return np.count_nonzero(p & t) / union


def boundary_map(binary: np.ndarray) -> np.ndarray:
    """1-px boundary: pixels whose right, lower or lower-right neighbour differs.

    Neighbours outside the image do not count (as in DAVIS ``seg2bmap``), so the
    frame border itself is never a boundary.
    """
    b = np.zeros(binary.shape, dtype=bool)
    b[:, :-1] |= binary[:, :-1] != binary[:, 1:]
    b[:-1, :] |= binary[:-1, :] != binary[1:, :]
    b[:-1, :-1] |= binary[:-1, :-1] != binary[1:, 1:]
    return b


def boundary_radius(shape: tuple[int, int]) -> int:
    """Matching tolerance in pixels: ceil(0.0075 x image diagonal)."""
    return math.ceil(BOUNDARY_TOLERANCE * math.hypot(shape[0], shape[1]))


def disk(radius: int) -> np.ndarray:
    """Disk structuring element (x^2 + y^2 <= r^2), uint8, like skimage's disk."""
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y <= radius * radius).astype(np.uint8)


def boundary_prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """DAVIS boundary (precision, recall, F).

    Edge cases (as DAVIS): no boundary in either mask -> (1, 1, 1); only the
    truth has one -> (1, 0, 0); only the prediction has one -> (0, 1, 0).
    """
    _check_pair(pred, truth)
    pb, tb = boundary_map(binarize(pred)), boundary_map(binarize(truth))
    n_p, n_t = np.count_nonzero(pb), np.count_nonzero(tb)
    if n_p == 0 and n_t == 0:
        return 1.0, 1.0, 1.0
    if n_p == 0:
        return 1.0, 0.0, 0.0
    if n_t == 0:
        return 0.0, 1.0, 0.0
    kernel = disk(boundary_radius(pred.shape))
    t_dil = cv2.dilate(tb.view(np.uint8), kernel).view(bool)
    p_dil = cv2.dilate(pb.view(np.uint8), kernel).view(bool)
    precision = np.count_nonzero(pb & t_dil) / n_p
    recall = np.count_nonzero(tb & p_dil) / n_t
    if precision + recall == 0:
        return precision, recall, 0.0
    return precision, recall, 2 * precision * recall / (precision + recall)


def boundary_f(pred: np.ndarray, truth: np.ndarray) -> float:
    """DAVIS boundary F-measure."""
    return boundary_prf(pred, truth)[2]


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean |pred - truth| on a 0..1 scale, using the soft prediction."""
    _check_pair(pred, truth)
    diff = cv2.absdiff(pred, truth)
    return float(cv2.mean(diff)[0]) / 255.0


def temporal_change(masks: Sequence[np.ndarray]) -> float:
    """Mean over t >= 1 of mean |M(t) - M(t-1)| on 0..1; NaN for < 2 frames."""
    if len(masks) < 2:
        return math.nan
    total = sum(cv2.mean(cv2.absdiff(a, b))[0] for a, b in zip(masks[:-1], masks[1:]))
    return total / (len(masks) - 1) / 255.0


def flicker(preds: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> float:
    """Temporal change of the prediction minus that of the truth (0..1 scale)."""
    if len(preds) != len(truths):
        raise ValueError(f"{len(preds)} predictions vs {len(truths)} truth masks")
    return temporal_change(preds) - temporal_change(truths)


def flip_rate(masks: Sequence[np.ndarray]) -> float:
    """Mean over t >= 1 of the fraction of pixels whose binary label flips."""
    if len(masks) < 2:
        return math.nan
    bins = [binarize(m) for m in masks]
    flips = sum(np.count_nonzero(a != b) / a.size for a, b in zip(bins[:-1], bins[1:]))
    return flips / (len(masks) - 1)


def frame_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """IoU, boundary F and MAE for one frame."""
    return {"iou": iou(pred, truth), "bf": boundary_f(pred, truth), "mae": mae(pred, truth)}


def sequence_scores(preds: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> dict[str, float]:
    """Per-frame means plus flicker and flip rates of a sequence."""
    scores = summarize([frame_scores(p, t) for p, t in zip(preds, truths)])
    scores["flicker"] = flicker(preds, truths)
    scores["flip_rate"] = flip_rate(preds)
    scores["flip_rate_truth"] = flip_rate(truths)
    return scores


def summarize(per_frame: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of each per-frame score."""
    if not per_frame:
        return {}
    return {k: float(np.mean([s[k] for s in per_frame])) for k in per_frame[0]}
