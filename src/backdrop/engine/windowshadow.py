"""A window's own drop shadow in a screenshot: measured as the darkening of the wallpaper
around it, kept as a smooth semi-transparent black layer (so it looks right on any new
background, which the screenshot's shadowed wallpaper pixels would not).

The model is the desktops' own: the window's rectangle, offset (mostly down), blurred by a
Gaussian and partly opaque. It is fitted to the median darkening profile outwards from the
middle half of each side (medians, so the wallpaper's own pattern averages out), by grid
search over softness and offsets with the opacity solved in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from backdrop.engine.window import Window

SHADOW_REACH = 48        # px out from each side where the shadow is measured
MIN_REACH = 12           # px: a side with less room than this says nothing
FAR = 8                  # px beyond the reach taken as unshadowed wallpaper
NOISE = 0.03             # darkening profiles lighter than this somewhere are wallpaper
MIN_FIT = 0.7            # share of the measured darkening the fitted shadow must explain
MAX_SHADOW = 0.8         # a desktop shadow never hides the wallpaper outright
MIN_SHADOW = 0.03        # fainter than this: no shadow worth keeping


@dataclass(frozen=True)
class Shadow:
    opacity: float      # darkest point (under the window's middle)
    sigma: float        # Gaussian softness, px
    dx: float           # offset of the shadow's rectangle from the window's, px
    dy: float


def _profiles(frame: np.ndarray, box, reach: int):
    """How much darker the wallpaper is at each distance from each side than further out:
    per side (top, bottom, left, right) a profile 1 - brightness(d)/brightness(far) for
    d = 0..n-1, n <= reach as the picture allows (median over the side's middle half, so
    the wallpaper's own pattern averages out), or None where the picture ends too close."""
    luma = frame.astype(np.float32).mean(axis=2) + 1.0
    h, w = luma.shape
    x0, y0, x1, y1 = box
    mid_x = slice(x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4)
    mid_y = slice(y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4)
    room = [min(reach + FAR, m) for m in (y0, h - y1, x0, w - x1)]
    strips = (luma[y0 - room[0]:y0, mid_x][::-1], luma[y1:y1 + room[1], mid_x],
              luma[mid_y, x0 - room[2]:x0][:, ::-1].T, luma[mid_y, x1:x1 + room[3]].T)
    out = []
    for strip, space in zip(strips, room):
        n = space - FAR
        if n < MIN_REACH:
            out.append(None)
            continue
        unshadowed = np.median(strip[n:], axis=0)
        profile = 1.0 - np.median(strip[:n] / unshadowed[None, :], axis=1)
        # A shadow only darkens, most near the window: a side where the wallpaper's own
        # light and dark outweigh it tells nothing about the shadow.
        plausible = profile.min() > -NOISE and profile[:4].mean() >= profile[-4:].mean()
        out.append(profile if plausible else None)
    if out[2] is not None and out[3] is not None:
        # The shadow is the same left and right; the wallpaper seldom darkens towards
        # the window on both sides alike, so the lesser darkening is the shadow's.
        n = min(len(out[2]), len(out[3]))
        out[2] = out[3] = np.minimum(out[2][:n], out[3][:n])
    return out


def _phi(t: np.ndarray) -> np.ndarray:
    """The standard normal CDF, from erf by Abramowitz and Stegun 7.1.26 (error < 1.5e-7:
    far below a shadow's 8-bit steps; numpy has no erf and scipy is no dependency)."""
    x = np.abs(t) / np.sqrt(2.0)
    k = 1.0 / (1.0 + 0.3275911 * x)
    poly = k * (0.254829592 + k * (-0.284496736 + k * (1.421413741
                                                       + k * (-1.453152027 + k * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(t) * erf)


def _fit(profiles, shapes):
    """Least squares of the profiles against the shapes over the grid the shapes span:
    (opacity, share of the darkening explained) per grid point, or None."""
    syg = sgg = yy = 0.0
    for profile, shape in zip(profiles, shapes):
        if profile is not None:
            n = len(profile)     # the first outside pixel line is 0.5 px from the edge
            g = shape(np.arange(n) + 0.5) - shape(np.array([n + FAR / 2]))   # far: unshadowed
            syg = syg + (g * profile).sum(axis=-1)
            sgg = sgg + (g * g).sum(axis=-1)
            yy += float((profile * profile).sum())
    if not yy:
        return None
    opacity = np.clip(syg / np.maximum(sgg, 1e-9), 0.0, 1.0)
    return opacity, (2 * opacity * syg - opacity * opacity * sgg) / yy


def estimate_shadow(frame: np.ndarray, window: Window,
                    reach: int = SHADOW_REACH) -> Optional[Shadow]:
    """The window's own drop shadow, as a Gaussian-blurred copy of its rectangle, offset
    down and partly opaque, fitted to how much the wallpaper darkens towards each side.

    Softness and opacity come from the left and right sides, where the shadow is the
    same (the desktops centre it across) and the lesser darkening of the two is taken, so
    a wallpaper darker on one side does not pass for shadow; the offset down then from the
    top and bottom. None when there is no room to measure, it is too faint to keep, or
    the fit is not believable (the wallpaper's own light and dark, not a shadow)."""
    top, bottom, left, right = _profiles(frame, window.box, reach)
    sigmas = np.arange(1.0, reach / 2.0, 0.5)
    side = left if left is not None else right      # the two are merged when both exist
    across = lambda t: _phi(-t[None, :] / sigmas[:, None])      # noqa: E731
    fitted = _fit([side], [across])
    if fitted is None:
        return None
    opacity, explained = fitted
    k = int(np.argmax(explained))
    best, sigma = float(opacity[k]), float(sigmas[k])
    if best < MIN_SHADOW or best > MAX_SHADOW or explained[k] < MIN_FIT \
            or sigma >= sigmas.max():
        return None
    return Shadow(best, sigma, 0.0, _offset_down(top, bottom, best, sigma))


def _offset_down(top, bottom, opacity: float, sigma: float) -> float:
    """How far down the shadow sits: the offset (0..sigma, as the desktops draw it) that
    fits the top and bottom profiles best at the softness and opacity found."""
    offsets = np.arange(0.0, np.floor(sigma) + 1)
    errors = np.zeros(len(offsets))
    for profile, sign in ((top, -1.0), (bottom, 1.0)):
        if profile is None:
            continue
        n = len(profile)
        t = np.r_[np.arange(n) + 0.5, n + FAR / 2][None, :]
        g = _phi((sign * offsets[:, None] - t) / sigma)
        model = opacity * (g[:, :-1] - g[:, -1:])
        errors += ((model - profile[None, :]) ** 2).sum(axis=1)
    return float(offsets[int(np.argmin(errors))])


def shadow_matte(shape: Tuple[int, int], window: Window, shadow: Shadow) -> np.ndarray:
    """The shadow's opacity, float32 (H, W): the window's rectangle shifted and blurred."""
    h, w = shape
    x0, y0, x1, y1 = window.box
    xs = np.arange(w, dtype=np.float64) + 0.5
    ys = np.arange(h, dtype=np.float64) + 0.5
    fx = _phi((xs - x0 - shadow.dx) / shadow.sigma) - _phi((xs - x1 - shadow.dx) / shadow.sigma)
    fy = _phi((ys - y0 - shadow.dy) / shadow.sigma) - _phi((ys - y1 - shadow.dy) / shadow.sigma)
    return (shadow.opacity * fy[:, None] * fx[None, :]).astype(np.float32)
