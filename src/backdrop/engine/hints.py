"""Touch-up strokes as hard constraints: the user paints "keep" (this is subject) and
"remove" (this is background) on a cut-out, and the matte is re-solved around them.

A stroke is a hint about a region, not only about the pixels under it: a remove stroke
across a background object the model kept removes that object up to its own edge, with
a fractional alpha on that edge taken from the image. So the touched region is re-solved
with the same closed-form matting as the outline (matting.py), from a trimap made of:

- the stroke's region: the connected pixels of the stroke's own colours (Lab, lightness
  at half weight) on the side of 0.5 the old matte got wrong (what the model kept, for a
  remove stroke; what it dropped, for a keep stroke), seams and small holes filled. Only
  a region that ends within 1.5 stroke lengths (at least REACH of the image) counts: one
  that runs on (a stroke across a cup the colour of its saucer) says nothing about where
  the user meant to stop. Its inside is sure (the stroke's side), its edge unknown.
- unknown: also a ring round each stroke (its width, at least NEAR of the image) and the
  old soft outline next to the region;
- sure: the strokes themselves, and the old matte split at 0.5 everywhere else.

Only the re-decided pixels are written back; everything else is bit-identical to the old
matte. The solve runs in a window around the strokes, shrunk to WORK_PIXELS if larger,
and only on the unknowns' box (~0.1-0.25 s for a touch-up on a 1 MP photo here).

For the server: `warm_up()` once per process (pymatting compiles ~3 s on first use);
`new = refine_with_strokes(frame, alpha, keep, remove)`, then
`colour = refresh_foreground(frame, new, alpha, colour)` for a glow-free cut-out
(`colour`: the one the pipeline made, `Frame.colour`, or None for the frame itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

WORK_PIXELS = 250_000   # the window around the strokes is solved at most at this size
REACH = 0.10            # a stroke's region grows at least this much of the image's long side
MAX_REACH = 0.35        # ... and at most this much, even for a long stroke
NEAR = 0.02             # the unknown ring round a stroke, as a part of the long side
EDGE = 3                # px (working) added round the grown region: its mixed edge pixels
COLOUR_TOL = 16.0       # Lab distance (OpenCV's 8-bit Lab) that counts as the stroke's colour
MAX_TOL = 30.0          # a textured stroke widens the tolerance, up to this
SURE = 0.98            # a solved alpha beyond this (or 1 - it) is the pixel's own 1 (or 0)
FOREGROUND_SIGMA = 6.0  # matting.estimate_foreground's default
PALETTE = 4             # colours a stroke is summarised by


def _check(frame, alpha, keep, remove) -> None:
    if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3
            and frame.shape[2] == 3):
        raise ValueError("frame: expected a (H, W, 3) uint8 RGB array, got "
                         f"{getattr(frame, 'shape', type(frame))} {getattr(frame, 'dtype', '')}")
    h, w = frame.shape[:2]
    if not (isinstance(alpha, np.ndarray) and alpha.shape == (h, w)
            and np.issubdtype(alpha.dtype, np.floating)):
        raise ValueError(f"alpha: expected a ({h}, {w}) float array in 0..1, got "
                         f"{getattr(alpha, 'shape', type(alpha))} {getattr(alpha, 'dtype', '')}")
    for name, m in (("keep", keep), ("remove", remove)):
        if not (isinstance(m, np.ndarray) and m.shape == (h, w) and m.dtype == np.bool_):
            raise ValueError(f"{name}: expected a ({h}, {w}) bool array, got "
                             f"{getattr(m, 'shape', type(m))} {getattr(m, 'dtype', '')}")


@dataclass(frozen=True)
class _Window:
    y0: int
    y1: int
    x0: int
    x1: int
    scale: float      # working px per image px (<= 1)
    side: int         # the image's long side (px): radii are parts of it
    cut: Tuple[bool, bool, bool, bool]   # top, bottom, left, right cut through the image


def _window(strokes: np.ndarray) -> _Window:
    """The part of the image a touch-up can change, plus room for the solve's anchors."""
    h, w = strokes.shape
    side = max(h, w)
    ys, xs = np.nonzero(strokes)
    _, _, stats, _ = cv2.connectedComponentsWithStats(strokes.astype(np.uint8), connectivity=8)
    reach = _reach(stats[1:, 2:4].max(), REACH * side, MAX_REACH * side)
    pad = int(np.ceil(reach + (NEAR + 0.02) * side)) + 2 * EDGE + 4
    y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + pad + 1)
    scale = min(1.0, float(np.sqrt(WORK_PIXELS / ((y1 - y0) * (x1 - x0)))))
    return _Window(int(y0), int(y1), int(x0), int(x1), scale, side,
                   (y0 > 0, y1 < h, x0 > 0, x1 < w))


def _reach(extent, low: float, high: float):
    """How far a stroke's region may run from it: a scribble across an object usually
    spans most of it, so one and a half times the stroke's own length."""
    return np.clip(1.5 * extent, low, high)


def _disc(radius: int) -> np.ndarray:
    r = max(1, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _palette(lab: np.ndarray, stroke: np.ndarray) -> Tuple[np.ndarray, float]:
    """A few colours that sum up the pixels under a stroke, and how far a pixel may be from
    them to count as the stroke's colour (wider for a textured stroke)."""
    samples = lab[stroke]
    if samples.shape[0] > 4000:
        samples = samples[np.random.default_rng(0).choice(samples.shape[0], 4000, False)]
    k = min(PALETTE, samples.shape[0])
    if k < 2:
        return samples[:1], COLOUR_TOL
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    cv2.setRNGSeed(0)       # the same strokes give the same matte
    _, _, centres = cv2.kmeans(samples, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    spread = np.sqrt(((samples[:, None] - centres[None]) ** 2).sum(-1).min(1))
    return centres, float(np.clip(2.0 * np.percentile(spread, 90), COLOUR_TOL, MAX_TOL))


def _grown(lab, stroke, wrong, win: _Window) -> np.ndarray:
    """The regions of the stroke's colours that the old matte got wrong and that the stroke
    touches, each only if it ends within reach of the stroke: an object, up to its own edge.
    A region that runs on (a stroke across a saucer the colour of the cup on it) says
    nothing about where the user meant to stop, so it is left to the ring round the stroke."""
    candidate = (_similar(lab, stroke) & wrong) | stroke
    n, labels, stats, _ = cv2.connectedComponentsWithStats(candidate.astype(np.uint8),
                                                           connectivity=8)
    away = cv2.distanceTransform((~stroke).astype(np.uint8), cv2.DIST_L2, 3)
    _, strokes, s_stats, _ = cv2.connectedComponentsWithStats(stroke.astype(np.uint8),
                                                              connectivity=8)
    k = win.side * win.scale
    reach = _reach(s_stats[:, 2:4].max(1), REACH * k, MAX_REACH * k)    # each stroke its own
    h, w = stroke.shape
    ok = np.zeros(n, bool)
    for i in np.setdiff1d(np.unique(labels[stroke]), [0]):
        x, y, bw, bh = stats[i, :4]
        top, bottom, left, right = win.cut    # the image's own border ends a region
        if (top and y == 0) or (bottom and y + bh == h) or (left and x == 0) or \
                (right and x + bw == w):
            continue              # runs on out of the window
        box = np.s_[y:y + bh, x:x + bw]
        inside = labels[box] == i
        ok[i] = away[box][inside].max() <= reach[strokes[box][inside & stroke[box]]].max()
    return _solid(ok[labels]) & ~stroke


def _similar(lab, stroke) -> np.ndarray:
    """The pixels of the stroke's own colours."""
    centres, tol = _palette(lab, stroke)
    similar = np.zeros(stroke.shape, bool)
    for c in centres:       # cv2 does the per-pixel arithmetic 5x faster than numpy here
        d = cv2.subtract(lab, tuple(float(v) for v in c) + (0.0,))
        similar |= cv2.transform(cv2.multiply(d, d), np.ones((1, 3))) <= tol * tol
    return similar


def _solid(region: np.ndarray) -> np.ndarray:
    """The region with its seams and small holes filled: an object's dark joints and
    highlights are its own, though not the stroke's colour. A large hole stays (the
    background seen through a mug's handle)."""
    closed = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_CLOSE, _disc(EDGE))
    n, holes, stats, _ = cv2.connectedComponentsWithStats(1 - closed, connectivity=4)
    h, w = region.shape
    x, y, bw, bh, area = stats.T
    small = (area < 0.1 * closed.sum()) & (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    small[0] = False         # label 0 is the region itself
    return (closed > 0) | small[holes]


def _trimap(image, a, keep, remove, win: _Window) -> Tuple[np.ndarray, np.ndarray]:
    """The working window's trimap (see the module's note), and the pixels it re-decides."""
    near_px = NEAR * win.side * win.scale
    lab = cv2.cvtColor(cv2.GaussianBlur(image, (0, 0), 1.0), cv2.COLOR_RGB2LAB).astype(np.float32)
    # Lightness counts half: shading and seams on one object (a lit slab with dark joints)
    # change it more than they change the hue.
    lab[..., 0] *= 0.5
    old_in = a >= 0.5
    trimap = old_in.astype(np.float64)
    touched, ring, sure = (np.zeros(a.shape, bool) for _ in range(3))
    # What the old matte got wrong is split at 0.5: with "any trace of subject" instead, a
    # keep stroke's region ran on round the subject's whole soft rim of the same colour.
    for stroke, wrong, side in ((remove, old_in, 0.0), (keep, ~old_in, 1.0)):
        if not stroke.any():
            continue
        grown = stroke | _grown(lab, stroke, wrong, win)
        touched |= grown
        # Inside the region, away from its edge, the stroke's colour is the stroke's side:
        # left to the solve, a textured piece came back speckled (0.93 among the 1s).
        inner = cv2.erode(grown.astype(np.uint8), _disc(EDGE)) > 0
        trimap[inner], sure = side, sure | inner
        width = 2.0 * cv2.distanceTransform(stroke.astype(np.uint8), cv2.DIST_L2, 3).max()
        ring |= cv2.dilate(stroke.astype(np.uint8), _disc(max(3.0, width, near_px))) > 0
    unknown = ring | (cv2.dilate(touched.astype(np.uint8), _disc(EDGE)) > 0)
    soft = (a > 0.004) & (a < 0.996)     # a 1 % tail left round a removed object shows on black
    unknown |= soft & (cv2.dilate(touched.astype(np.uint8), _disc(2 * EDGE)) > 0)
    unknown &= ~sure & ~keep & ~remove
    trimap[unknown], trimap[keep], trimap[remove] = 0.5, 1.0, 0.0
    return trimap, unknown | sure


def _shrink(x: np.ndarray, size) -> np.ndarray:
    return cv2.resize(x, size, interpolation=cv2.INTER_AREA)


def _solve(image: np.ndarray, trimap: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """Closed-form alpha for the unknown pixels of `trimap` (float32; the rest as given)."""
    solved = trimap.copy()
    # The matting Laplacian couples pixels at most 2 apart: groups of unknowns further apart
    # are separate problems, and each needs only its own box (a keep stroke at one side and
    # a remove stroke at the other: two small solves, not one over the whole window).
    grown = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    for i in range(1, n):
        x, y, bw, bh = stats[i, :4]
        box = np.s_[max(0, y - 3):y + bh + 3, max(0, x - 3):x + bw + 3]
        mine = (labels[box] == i) & unknown[box]
        solved[box][mine] = _solve_box(image[box], trimap[box])[mine]
    # the solve's residue (a 1 % haze over a removed object) is not the image's alpha
    solved = np.where(solved < 1 - SURE, 0.0, np.where(solved > SURE, 1.0, solved))
    return np.clip(solved, 0.0, 1.0).astype(np.float32)


def _solve_box(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    from pymatting import estimate_alpha_cf

    known = trimap[trimap != 0.5]
    if not np.any(known == 1.0) or not np.any(known == 0.0):
        # one side only (a remove stroke took a whole blob): nothing to solve between
        return np.full(trimap.shape, 1.0 if np.any(known == 1.0) else 0.0)
    return estimate_alpha_cf(image.astype(np.float64) / 255.0, trimap)


def refine_with_strokes(frame: np.ndarray, alpha: np.ndarray, keep: np.ndarray,
                        remove: np.ndarray) -> np.ndarray:
    """The matte (float32 (H, W) in 0..1, a new array) with the strokes applied: exactly 1
    under `keep`, exactly 0 under `remove` (remove wins where both are painted: send the
    later stroke's pixels cleared from the earlier mask), the region they touch re-solved
    from `frame` (uint8 (H, W, 3) RGB), and every other pixel as it was in `alpha`."""
    _check(frame, alpha, keep, remove)
    out = alpha.astype(np.float32, copy=True)
    keep = keep & ~remove
    strokes = keep | remove
    if not strokes.any():
        return out
    win = _window(strokes)
    sl = np.s_[win.y0:win.y1, win.x0:win.x1]
    full = (win.x1 - win.x0, win.y1 - win.y0)
    a = out[sl]
    image, k_small, r_small = frame[sl], keep[sl], remove[sl]
    if win.scale < 1:
        size = (max(1, round(full[0] * win.scale)), max(1, round(full[1] * win.scale)))
        image, a = _shrink(image, size), _shrink(a, size)
        # a thin stroke must survive the shrink: any covered working pixel is painted
        r_small = _shrink(r_small.astype(np.float32), size) > 0
        k_small = (_shrink(k_small.astype(np.float32), size) > 0) & ~r_small
    trimap, decided = _trimap(image, a, k_small, r_small, win)
    if decided.any():
        solved = _solve(image, trimap, trimap == 0.5)
        if win.scale < 1:
            solved = cv2.resize(solved, full, interpolation=cv2.INTER_LINEAR)
            decided = cv2.resize(decided.astype(np.uint8), full,
                                 interpolation=cv2.INTER_NEAREST) > 0
        out[sl][decided] = solved[decided]
    out[keep], out[remove] = 1.0, 0.0
    return out


def refresh_foreground(frame: np.ndarray, alpha: np.ndarray, previous: np.ndarray,
                       colour: Optional[np.ndarray] = None) -> np.ndarray:
    """The subject's colour (uint8 (H, W, 3), a new array) after a touch-up turned the matte
    `previous` into `alpha`: re-estimated (matting.estimate_foreground) where the matte
    changed and as far round it as the estimate looks; elsewhere `colour`, the colour made
    with the old matte (default: the frame itself). A new edge then carries the subject's
    colour, not the removed object's (no glow of it on a new background)."""
    from backdrop.engine.matting import estimate_foreground

    _check(frame, alpha, np.zeros(alpha.shape, bool), np.zeros(alpha.shape, bool))
    if not (isinstance(previous, np.ndarray) and previous.shape == alpha.shape):
        raise ValueError(f"previous: expected a {alpha.shape} float array, got "
                         f"{getattr(previous, 'shape', type(previous))}")
    if colour is not None and not (isinstance(colour, np.ndarray) and colour.dtype == np.uint8
                                   and colour.shape == frame.shape):
        raise ValueError(f"colour: expected a {frame.shape} uint8 array, got "
                         f"{getattr(colour, 'shape', type(colour))} {getattr(colour, 'dtype', '')}")
    out = np.array(frame if colour is None else colour, copy=True)
    changed = alpha != previous
    if not changed.any():
        return out
    look = int(3 * FOREGROUND_SIGMA) + 2     # the estimate's local means reach this far
    ys, xs = np.nonzero(changed)
    pad = 2 * look
    y0, y1 = max(0, ys.min() - pad), min(alpha.shape[0], ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(alpha.shape[1], xs.max() + pad + 1)
    box = np.s_[y0:y1, x0:x1]
    estimate = estimate_foreground(frame[box], alpha[box].astype(np.float32),
                                   sigma=FOREGROUND_SIGMA)
    near = cv2.dilate(changed[box].astype(np.uint8), _disc(look)) > 0
    out[box][near] = estimate[near]
    return out


def warm_up() -> None:
    """One touch-up on a tiny made-up picture: pymatting's numba code compiles on its first
    call in a process (~3 s here), which a server should pay at start, not on a user's
    first stroke."""
    yy, xx = np.mgrid[:48, :48]
    inside = (yy - 24) ** 2 + (xx - 24) ** 2 < 144
    frame = np.where(inside & (xx < 24), 200, np.where(inside, 120, 40)).astype(np.uint8)
    frame = np.ascontiguousarray(np.repeat(frame[..., None], 3, axis=2))
    remove = np.zeros((48, 48), bool)
    remove[22:26, 28:34] = True       # the disc's right half: its edge with the left is solved
    refresh_foreground(frame, refine_with_strokes(frame, inside.astype(np.float32),
                                                  np.zeros_like(remove), remove),
                       inside.astype(np.float32))
