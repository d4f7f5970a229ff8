"""Synthetic window screenshots with exact ground truth.

An app window (title bar, UI-like content: text lines, buttons, flat panels; light or dark
theme; optional 1 px border) with rounded corners (radius 0-16 px, sometimes only the top
two, as GNOME draws them) and a soft drop shadow, drawn over a real photo used as wallpaper,
the way macOS, Windows 11 and GNOME capture a window with its surroundings. The truth is the
window's geometry, its anti-aliased matte and the shadow's opacity as drawn.

The window's coverage is computed independently of backdrop's detector: 16x16 sub-pixel
samples per corner pixel tested against the corner circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"
EVALDATA = ROOT.parent / "shared" / "evaldata"


@dataclass(frozen=True)
class Screenshot:
    image: np.ndarray            # (H, W, 3) uint8 RGB
    box: Tuple[int, int, int, int]   # x0, y0, x1, y1: the window is columns x0..x1-1
    radii: Tuple[int, int, int, int]  # top-left, top-right, bottom-right, bottom-left
    alpha: np.ndarray            # float32 (H, W): the window's coverage
    shadow: np.ndarray           # float32 (H, W): the shadow's opacity as drawn
    opacity: float               # the shadow's darkest point (under the window's middle)
    theme: str                   # light | dark
    wallpaper: str               # file name of the photo behind


def wallpapers(extra: bool = True) -> List[Path]:
    """The CC0 samples always; the shared evaluation photos and objects when present."""
    found = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    if extra:
        for name in ("photos", "objects"):
            folder = EVALDATA / name / "images"
            if folder.is_dir():
                found += sorted(folder.glob("*.jpg"))
    return found


def read_rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    ih, iw = image.shape[:2]
    s = max(width / iw, height / ih)
    nw, nh = max(width, round(iw * s)), max(height, round(ih * s))
    scaled = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_CUBIC)
    x, y = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(scaled[y:y + height, x:x + width])


def coverage(h: int, w: int, box, radii, samples: int = 16) -> np.ndarray:
    """Exact-ish area coverage of a rounded rectangle (float32 (H, W))."""
    x0, y0, x1, y1 = box
    out = np.zeros((h, w), np.float32)
    out[y0:y1, x0:x1] = 1.0
    offsets = (np.arange(samples) + 0.5) / samples
    for corner, r in enumerate(radii):
        if r <= 0:
            continue
        # corner square in pixel indices and the circle centre in continuous coordinates
        left = corner in (0, 3)
        top = corner in (0, 1)
        cx = x0 + r if left else x1 - r
        cy = y0 + r if top else y1 - r
        xs = range(x0, x0 + r) if left else range(x1 - r, x1)
        ys = range(y0, y0 + r) if top else range(y1 - r, y1)
        for y in ys:
            for x in xs:
                sx = x + offsets[None, :] - cx
                sy = y + offsets[:, None] - cy
                out[y, x] = np.mean(sx * sx + sy * sy <= r * r)
    return out


def _rounded(canvas, x0, y0, x1, y1, r, colour):
    """A filled rounded rectangle drawn with anti-aliasing (buttons)."""
    r = max(0, min(r, (x1 - x0) // 2, (y1 - y0) // 2))
    cv2.rectangle(canvas, (x0 + r, y0), (x1 - r, y1), colour, -1, cv2.LINE_AA)
    cv2.rectangle(canvas, (x0, y0 + r), (x1, y1 - r), colour, -1, cv2.LINE_AA)
    for cx, cy in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x1 - r, y1 - r), (x0 + r, y1 - r)):
        cv2.circle(canvas, (cx, cy), r, colour, -1, cv2.LINE_AA)


def _text_lines(canvas, rng, x0, y0, x1, y1, ink):
    """Lines of words inside [x0, x1) x [y0, y1), clipped there as a toolkit clips them."""
    box = np.ascontiguousarray(canvas[y0:y1, x0:x1])
    _words(box, rng, ink)
    canvas[y0:y1, x0:x1] = box


def _words(canvas, rng, ink):
    x0, y0 = 0, 0
    y1, x1 = canvas.shape[:2]
    y = y0 + 14
    font = cv2.FONT_HERSHEY_SIMPLEX
    words = ("Settings", "General", "Display", "Network", "backdrop", "window", "Open file",
             "Preferences", "Cancel", "Apply changes", "Lorem ipsum dolor", "sit amet")
    while y < y1 - 6:
        text = " ".join(rng.choice(words, size=rng.integers(1, 5)))
        cv2.putText(canvas, text, (x0 + 8, y), font, 0.42, ink, 1, cv2.LINE_AA)
        y += int(rng.integers(18, 28))
        if x0 + 8 >= x1:
            break


def draw_window(rng, w: int, h: int, theme: str, title_h: int) -> np.ndarray:
    """The window's own pixels, (h, w, 3) uint8: title bar, sidebar, text, buttons."""
    if theme == "light":
        base = int(rng.integers(236, 252))
        bar = base - int(rng.integers(0, 14))
        side = base - int(rng.integers(6, 20))
        ink = (int(rng.integers(20, 70)),) * 3
    else:
        base = int(rng.integers(28, 48))
        bar = base + int(rng.integers(0, 18))
        side = base + int(rng.integers(6, 20))
        ink = (int(rng.integers(190, 235)),) * 3
    win = np.empty((h, w, 3), np.uint8)
    win[:] = base
    win[:title_h] = bar
    accent = tuple(int(c) for c in rng.integers(40, 230, 3))
    # title bar: traffic lights (left) or window buttons (right), a title
    if rng.random() < 0.5:
        for i, c in enumerate(((255, 95, 87), (254, 188, 46), (40, 200, 64))):
            cv2.circle(win, (14 + 20 * i, title_h // 2), 6, c, -1, cv2.LINE_AA)
    else:
        for i in range(3):
            x = w - 20 - 40 * i
            cv2.line(win, (x - 5, title_h // 2), (x + 5, title_h // 2), ink, 1, cv2.LINE_AA)
    cv2.putText(win, "Document - Editor", (w // 2 - 70, title_h // 2 + 5),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, ink, 1, cv2.LINE_AA)
    if rng.random() < 0.7:
        cv2.line(win, (0, title_h), (w, title_h), (bar - 25 if theme == "light" else bar + 25,) * 3, 1)
    sidebar = int(w * rng.uniform(0.18, 0.3)) if rng.random() < 0.6 else 0
    if sidebar:
        win[title_h + 1:, :sidebar] = side
        _text_lines(win, rng, 6, title_h + 6, sidebar - 6, h - 6, ink)
    _text_lines(win, rng, sidebar + 10, title_h + 10, w - 10, h - 50, ink)
    for i in range(int(rng.integers(1, 4))):     # buttons along the bottom
        bx = w - 100 * (i + 1)
        if bx > sidebar + 10:
            _rounded(win, bx, h - 40, bx + 84, h - 14, 6, accent if i == 0 else (side,) * 3)
    if rng.random() < 0.4 and w > 300 and h > 220:   # a flat panel / picture placeholder
        px, py = sidebar + 20, title_h + 50
        win[py:py + 80, px:px + 140] = tuple(int(c) for c in rng.integers(60, 200, 3))
    return win


def shadow_field(h: int, w: int, box, radii, rng) -> Tuple[np.ndarray, float]:
    """The window's silhouette shifted down, blurred: opacity (float32 (H, W))."""
    opacity = float(rng.uniform(0.25, 0.6))
    sigma = float(rng.uniform(5.0, 20.0))
    dy = int(rng.integers(2, max(3, int(sigma))))
    x0, y0, x1, y1 = box
    shifted = coverage(h, w, (x0, min(h, y0 + dy), x1, min(h, y1 + dy)), radii, samples=4)
    return cv2.GaussianBlur(shifted, (0, 0), sigma) * np.float32(opacity), opacity


def make_screenshot(seed: int, paths: Sequence[Path], size=None, theme=None,
                    border=None) -> Screenshot:
    rng = np.random.default_rng(seed)
    W, H = size or (int(rng.integers(640, 1100)), int(rng.integers(420, 720)))
    path = paths[int(rng.integers(len(paths)))]
    wallpaper = cover(read_rgb(path), W, H).astype(np.float32)
    w = int(rng.uniform(0.35, 0.8) * W)
    h = int(rng.uniform(0.4, 0.8) * H)
    margin = 24
    x0 = int(rng.integers(margin, W - w - margin))
    y0 = int(rng.integers(margin, H - h - margin))
    box = (x0, y0, x0 + w, y0 + h)
    r = int(rng.integers(0, 17))
    radii = (r, r, 0, 0) if rng.random() < 0.2 else (r, r, r, r)
    theme = theme or ("light" if rng.random() < 0.6 else "dark")
    win = draw_window(rng, w, h, theme, int(rng.integers(26, 40))).astype(np.float32)
    alpha = coverage(H, W, box, radii)
    if border if border is not None else rng.random() < 0.7:
        # a 1 px line just inside the outline, following the arcs, as the desktops draw one
        inner = coverage(H, W, (x0 + 1, y0 + 1, x0 + w - 1, y0 + h - 1),
                         tuple(max(0, q - 1) for q in radii))
        edge = np.clip(alpha - inner, 0, 1)[y0:y0 + h, x0:x0 + w, None]
        tone = 0.0 if theme == "light" else 255.0
        strength = float(rng.uniform(0.1, 0.3))
        win = win * (1 - strength * edge) + tone * strength * edge
    shadow, opacity = shadow_field(H, W, box, radii, rng)
    out = wallpaper * (1 - shadow[..., None])
    a = alpha[y0:y0 + h, x0:x0 + w, None]
    out[y0:y0 + h, x0:x0 + w] = win * a + out[y0:y0 + h, x0:x0 + w] * (1 - a)
    image = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return Screenshot(image, box, radii, alpha, shadow, opacity, theme, path.name)
