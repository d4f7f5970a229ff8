"""A print sheet of ID photos: as many copies as fit on a paper size at the photo's dpi,
in a centred grid with a gap between copies and thin cut marks in the gaps. Pure functions."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

MM_PER_INCH = 25.4
MARGIN_MM = 2.0     # labs trim (or cannot print) about this much of the paper edge
GAP_MM = 2.0        # between copies: room for a cut on each side of the marks
MARK_GREY = 96      # cut marks: visible on the white paper, not black ink bars
PAPER = 255


def _px(mm: float, dpi: int) -> int:
    return round(mm * dpi / MM_PER_INCH)


def _fit(photo: Tuple[int, int], sheet: Tuple[int, int], dpi: int) -> Tuple[int, int]:
    (pw, ph), (sw, sh) = photo, sheet
    margin, gap = _px(MARGIN_MM, dpi), _px(GAP_MM, dpi)
    cols = max(0, (sw - 2 * margin + gap) // (pw + gap))
    rows = max(0, (sh - 2 * margin + gap) // (ph + gap))
    return cols, rows


def grid(photo: Tuple[int, int], sheet_mm: Tuple[float, float],
         dpi: int) -> Tuple[int, Tuple[int, int], Tuple[int, int]]:
    """(copies, (cols, rows), sheet size in px) for a (width, height) px photo: the sheet
    as given or turned a quarter, whichever holds more (as given on a tie)."""
    sheet = (_px(sheet_mm[0], dpi), _px(sheet_mm[1], dpi))
    best = None
    for size in (sheet, sheet[::-1]):
        cols, rows = _fit(photo, size, dpi)
        if best is None or cols * rows > best[0]:
            best = (cols * rows, (cols, rows), size)
    return best


def positions(photo: Tuple[int, int], cols: int, rows: int, size: Tuple[int, int],
              dpi: int) -> List[Tuple[int, int]]:
    """Top-left corners of the copies, the grid centred on the sheet."""
    (pw, ph), gap = photo, _px(GAP_MM, dpi)
    x0 = (size[0] - (cols * pw + (cols - 1) * gap)) // 2
    y0 = (size[1] - (rows * ph + (rows - 1) * gap)) // 2
    return [(x0 + c * (pw + gap), y0 + r * (ph + gap)) for r in range(rows) for c in range(cols)]


def _marks(sheet: np.ndarray, x: int, y: int, pw: int, ph: int, dpi: int) -> None:
    """Short lines on the continuation of each edge, just outside each corner."""
    gap = _px(GAP_MM, dpi)
    length, away, thick = max(2, gap // 2 - 1), 1, max(1, round(dpi / 300))
    h, w = sheet.shape[:2]
    for cx in (x, x + pw - thick):
        for y_from, y_to in ((y - away - length, y - away), (y + ph + away, y + ph + away + length)):
            sheet[max(0, y_from):min(h, y_to), cx:cx + thick] = MARK_GREY
    for cy in (y, y + ph - thick):
        for x_from, x_to in ((x - away - length, x - away), (x + pw + away, x + pw + away + length)):
            sheet[cy:cy + thick, max(0, x_from):min(w, x_to)] = MARK_GREY


def make_sheet(photo: np.ndarray, sheet_mm: Tuple[float, float], dpi: int) -> np.ndarray:
    """The sheet: (H, W, 3) uint8, white paper, copies of `photo` with cut marks."""
    ph, pw = photo.shape[:2]
    count, (cols, rows), size = grid((pw, ph), sheet_mm, dpi)
    if count == 0:
        raise ValueError(f"a {pw}x{ph} photo does not fit a {size[0]}x{size[1]} sheet")
    sheet = np.full((size[1], size[0], 3), PAPER, np.uint8)
    corners = positions((pw, ph), cols, rows, size, dpi)
    for x, y in corners:      # marks first: a neighbour's copy never loses pixels to them
        _marks(sheet, x, y, pw, ph, dpi)
    for x, y in corners:
        sheet[y:y + ph, x:x + pw] = photo
    return sheet
