"""A contact sheet: per photo, the upper body and its cut-out on five plain colours."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

import synthetic
from common import Unavailable
from methods import make_method

SHEET_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128),
                 "green": (0, 255, 0), "magenta": (255, 0, 255)}


def contact_sheet(evaldata: Path, out: Path, count: int = 4) -> None:
    """PNG grid: per photo, the upper body and its cut-out on five backgrounds."""
    root = evaldata / "photos"
    if not (root / "images").is_dir():
        print(f"no contact sheet: {root} not found", file=sys.stderr)
        return
    try:
        method, label = make_method("backdrop-balanced"), "backdrop-balanced"
    except Unavailable as e:
        print(f"contact sheet: {e}; using raw-general", file=sys.stderr)
        method, label = make_method("raw-general"), "raw-general"
    rows = []
    try:
        for stem in synthetic.photo_stems(root)[:count]:
            rgb, truth = synthetic.load_pair(root / "images", root / "masks", stem)
            method.reset()
            rows.append(_sheet_row(rgb, truth, np.clip(method.matte(rgb), 0, 1)))
    finally:
        method.close()
    cv2.imwrite(str(out), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print(f"contact sheet ({label}) written to {out}")


def _sheet_row(rgb: np.ndarray, truth: np.ndarray, alpha: np.ndarray,
               cell: tuple[int, int] = (300, 360)) -> np.ndarray:
    """Head and torso of one photo: original, then composites on each colour."""
    ys, xs = np.nonzero(truth >= 128)
    y0, y1 = max(ys.min() - 10, 0), ys.min() + (ys.max() - ys.min()) // 2
    x0, x1 = max(xs.min() - 20, 0), xs.max() + 20
    frame, a = rgb[y0:y1, x0:x1].astype(np.float32), alpha[y0:y1, x0:x1, None]
    tiles = [rgb[y0:y1, x0:x1]]
    for colour in SHEET_COLOURS.values():
        tiles.append((frame * a + np.float32(colour) * (1 - a) + 0.5).astype(np.uint8))
    return np.hstack([_fit(t, cell) for t in tiles])


def _fit(tile: np.ndarray, cell: tuple[int, int]) -> np.ndarray:
    """Scale ``tile`` into a (w, h) cell, centred on a dark-blue pad."""
    scale = min(cell[0] / tile.shape[1], cell[1] / tile.shape[0])
    w, h = max(1, round(tile.shape[1] * scale)), max(1, round(tile.shape[0] * scale))
    out = np.full((cell[1], cell[0], 3), (20, 20, 60), np.uint8)
    top, left = (cell[1] - h) // 2, (cell[0] - w) // 2
    out[top:top + h, left:left + w] = cv2.resize(tile, (w, h), interpolation=cv2.INTER_AREA)
    return out
