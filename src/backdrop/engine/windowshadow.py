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
FAR = 8                  # px beyond the reach taken as unshadowed wallpaper
NOISE = 0.03             # darkening profiles lighter than this somewhere are wallpaper
MAX_SHADOW = 0.8         # a desktop shadow never hides the wallpaper outright
MIN_SHADOW = 0.03        # fainter than this: no shadow worth keeping


@dataclass(frozen=True)
class Shadow:
    opacity: float      # darkest point (under the window's middle)
    sigma: float        # Gaussian softness, px
    dx: float           # offset of the shadow's rectangle from the window's, px
    dy: float


def _profiles(frame: np.ndarray, box, reach: int):
    """How much darker the wallpaper is at each distance from each side than at `reach`
    px out: per side (top, bottom, left, right) a profile 1 - brightness(d)/brightness(reach)
    for d = 0..reach-1 (median over the side's middle half, so the wallpaper's own
    pattern averages out), or None where the picture ends too close to the side."""
    luma = frame.astype(np.float32).mean(axis=2) + 1.0
    h, w = luma.shape
    x0, y0, x1, y1 = box
    mid_x = slice(x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4)
    mid_y = slice(y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4)
    far = reach + FAR
    strips = (luma[y0 - far:y0, mid_x][::-1] if y0 >= far else None,
              luma[y1:y1 + far, mid_x] if y1 + far <= h else None,
              luma[mid_y, x0 - far:x0][:, ::-1].T if x0 >= far else None,
              luma[mid_y, x1:x1 + far].T if x1 + far <= w else None)
    out = []
    for strip in strips:
        if strip is None:
            out.append(None)
            continue
        unshadowed = np.median(strip[reach:], axis=0)
        profile = 1.0 - np.median(strip[:reach] / unshadowed[None, :], axis=1)
        # A shadow only darkens, most near the window: a side where the wallpaper's own
        # light and dark outweigh it tells nothing about the shadow.
        plausible = profile.min() > -NOISE and profile[:4].mean() >= profile[-8:].mean()
        out.append(profile if plausible else None)
    if out[2] is not None and out[3] is not None:
        # The shadow is the same left and right; the wallpaper seldom darkens towards
        # the window on both sides alike, so the lesser darkening is the shadow's.
        out[2] = out[3] = np.minimum(out[2], out[3])
    return out


def _phi(t: np.ndarray) -> np.ndarray:
    """The standard normal CDF (vectorised erf)."""
    from scipy.special import ndtr

    return ndtr(t)


def estimate_shadow(frame: np.ndarray, window: Window,
                    reach: int = SHADOW_REACH) -> Optional[Shadow]:
    """The window's own drop shadow, as a Gaussian-blurred copy of its rectangle, offset and
    partly opaque, fitted to how much the wallpaper darkens towards each side. None when no
    side has room to measure it or it is too faint to keep."""
    profiles = _profiles(frame, window.box, reach)
    d = np.arange(reach, dtype=np.float64) + 0.5
    sigmas = np.arange(1.0, reach / 2.0, 0.5)[:, None, None]
    offsets = np.arange(0.0, reach // 2 + 1)     # shadows fall down (or straight behind)
    sy = offsets[None, :, None]             # shadow offset down
    sx = 0.0    # the desktops centre a window's shadow across; a free dx only fits noise
    # Each side's predicted darkening shape (opacity 1); the outward distance d of the
    # first outside pixel row is 0.5 from the edge.
    shapes = (lambda t: _phi((-t - sy) / sigmas), lambda t: _phi((sy - t) / sigmas),
              lambda t: _phi((-t - sx) / sigmas), lambda t: _phi((sx - t) / sigmas))
    syg = sgg = 0.0
    used = 0
    for profile, shape in zip(profiles, shapes):
        if profile is None:
            continue
        g = shape(d) - shape(np.array([reach + FAR / 2]))   # relative to the far reference
        syg = syg + (g * profile).sum(axis=-1)
        sgg = sgg + (g * g).sum(axis=-1)
        used += 1
    if not used:
        return None
    opacity = np.clip(syg / np.maximum(sgg, 1e-9), 0.0, MAX_SHADOW)
    fit = opacity * syg      # error = |y|^2 - opacity * syg: the largest reduction wins
    k = np.unravel_index(int(np.argmax(fit)), fit.shape)
    best = float(opacity[k])
    if best < MIN_SHADOW:
        return None
    sigma = float(sigmas.ravel()[k[0]])
    return Shadow(best, sigma, 0.0, float(offsets[k[1]]))


def shadow_matte(shape: Tuple[int, int], window: Window, shadow: Shadow) -> np.ndarray:
    """The shadow's opacity, float32 (H, W): the window's rectangle shifted and blurred."""
    h, w = shape
    x0, y0, x1, y1 = window.box
    xs = np.arange(w, dtype=np.float64) + 0.5
    ys = np.arange(h, dtype=np.float64) + 0.5
    fx = _phi((xs - x0 - shadow.dx) / shadow.sigma) - _phi((xs - x1 - shadow.dx) / shadow.sigma)
    fy = _phi((ys - y0 - shadow.dy) / shadow.sigma) - _phi((ys - y1 - shadow.dy) / shadow.sigma)
    return (shadow.opacity * fy[:, None] * fx[None, :]).astype(np.float32)
