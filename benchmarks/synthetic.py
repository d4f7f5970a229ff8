"""Deterministic synthetic webcam sequences with exact ground truth.

A person is cut out of an evaldata photo (head and torso), scaled to a
webcam-like size, placed at the bottom of a 640x480 frame in front of another
photo whose own person has been painted out and blurred, then rendered with
sensor noise and brightness flicker (``static``) plus slow sinusoidal motion
(``moving``).  Frames are RGB uint8, masks uint8 (255 = person).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FRAME_W, FRAME_H = 640, 480
HEAD_TORSO = 0.5  # top fraction of a full-body person kept: head and torso


@dataclass(frozen=True)
class Scene:
    """Premultiplied foreground layer and its masks (taller than the frame by the
    overhang, so shifting up never shows the cut), and the frame-sized background."""

    fg: np.ndarray  # float32 (H + overhang, W, 3): colour * alpha
    alpha: np.ndarray  # float32 (H + overhang, W): softened truth, blending weight
    truth: np.ndarray  # uint8 (H + overhang, W)
    background: np.ndarray  # float32 (H, W, 3)
    stems: tuple[str, str]  # (person photo, background photo)


def photo_stems(photos_dir: Path) -> list[str]:
    """Sorted stems of photos that have both an image and a mask."""
    images = {p.stem for p in (Path(photos_dir) / "images").glob("*.jpg")}
    masks = {p.stem for p in (Path(photos_dir) / "masks").glob("*.png")}
    return sorted(images & masks)


def load_pair(images_dir: Path, masks_dir: Path, stem: str, ext: str = ".jpg"):
    """(RGB uint8 image, uint8 mask) of one evaldata item."""
    bgr = cv2.imread(str(Path(images_dir) / f"{stem}{ext}"), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(Path(masks_dir) / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    if bgr is None or mask is None:
        raise FileNotFoundError(f"cannot read image or mask for {stem} in {images_dir}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), mask


def _person_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask >= 128)
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def _clone_fill(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` with background copied from beside it (shifted sideways)."""
    out, hole = rgb.copy(), hole.copy()
    xs = np.nonzero(hole.any(axis=0))[0]
    shift = int(xs[-1] - xs[0] + 10)
    for direction in (1, -1, 1, -1):
        src_hole = np.roll(hole, direction * shift, axis=1)
        fill = hole & ~src_hole
        out[fill] = np.roll(out, direction * shift, axis=1)[fill]
        hole &= ~fill
    if hole.any():
        out = cv2.inpaint(out, hole.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    return out


def _clean_background(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Paint the person out with nearby background and blur that region heavily."""
    hole = cv2.dilate((mask >= 128).astype(np.uint8), np.ones((25, 25), np.uint8))
    filled = cv2.GaussianBlur(_clone_fill(rgb, hole.astype(bool)), (0, 0), 3)
    weight = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), 15)[..., None]
    return rgb.astype(np.float32) * (1.0 - weight) + filled.astype(np.float32) * weight


def make_background(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """640x480 float32 background from the top of a photo, person removed, defocused."""
    clean = _clean_background(rgb, mask)
    h, w = mask.shape
    crop_h = min(h, w * FRAME_H // FRAME_W)
    top = clean[:crop_h]
    bg = cv2.resize(top, (FRAME_W, FRAME_H), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(bg, (0, 0), 1.5)


def make_person_layer(rgb: np.ndarray, mask: np.ndarray, *, height_frac: float,
                      x_center: float, overhang: int):
    """Head-and-torso cut-out placed at the bottom of the frame.

    The top ``HEAD_TORSO`` of the person is scaled so that it spans ``height_frac`` of the
    frame height; ``overhang`` more pixels continue below the frame edge so that
    vertical motion never reveals the cut. Returns (colour, truth), both
    ``overhang`` rows taller than the frame.
    """
    y0, y1, x0, x1 = _person_box(mask)
    scale = height_frac * FRAME_H / (HEAD_TORSO * (y1 - y0))
    crop_bottom = min(mask.shape[0], int(y0 + HEAD_TORSO * (y1 - y0) + overhang / scale))
    cx0, cx1 = max(0, x0 - 20), min(mask.shape[1], x1 + 20)
    size = (round((cx1 - cx0) * scale), round((crop_bottom - y0) * scale))
    colour = cv2.resize(rgb[y0:crop_bottom, cx0:cx1], size, interpolation=cv2.INTER_AREA)
    truth = cv2.resize(mask[y0:crop_bottom, cx0:cx1], size, interpolation=cv2.INTER_AREA)
    top = FRAME_H - round(height_frac * FRAME_H)
    left = round(x_center * FRAME_W - size[0] / 2)
    canvas_rgb = np.zeros((FRAME_H + overhang, FRAME_W, 3), np.uint8)
    canvas_mask = np.zeros((FRAME_H + overhang, FRAME_W), np.uint8)
    _paste(canvas_rgb, colour, top, left)
    _paste(canvas_mask, truth, top, left)
    return canvas_rgb, canvas_mask


def _paste(canvas: np.ndarray, patch: np.ndarray, top: int, left: int) -> None:
    """Copy ``patch`` into ``canvas`` at (top, left), clipped to the canvas."""
    h, w = canvas.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + patch.shape[0], h), min(left + patch.shape[1], w)
    if y1 > y0 and x1 > x0:
        canvas[y0:y1, x0:x1] = patch[y0 - top : y1 - top, x0 - left : x1 - left]


def build_scene(photos_dir: Path, seed: int = 0, *, overhang: int = 40) -> Scene:
    """Pick a person photo and a different background photo from ``seed``."""
    stems = photo_stems(photos_dir)
    if len(stems) < 2:
        raise FileNotFoundError(f"need at least two photos with masks in {photos_dir}")
    rng = np.random.default_rng(seed)
    i, j = rng.choice(len(stems), size=2, replace=False)
    images, masks = Path(photos_dir) / "images", Path(photos_dir) / "masks"
    person_rgb, person_mask = load_pair(images, masks, stems[i])
    bg_rgb, bg_mask = load_pair(images, masks, stems[j])
    colour, truth = make_person_layer(
        person_rgb, person_mask, height_frac=float(rng.uniform(0.45, 0.6)),
        x_center=float(rng.uniform(0.42, 0.58)), overhang=overhang)
    alpha = cv2.GaussianBlur(truth, (0, 0), 0.7).astype(np.float32) / 255.0
    fg = colour.astype(np.float32) * alpha[..., None]
    return Scene(fg, alpha, truth, make_background(bg_rgb, bg_mask), (stems[i], stems[j]))


def _finish(image: np.ndarray, rng: np.random.Generator, noise_sigma: float,
            flicker: float) -> np.ndarray:
    """Apply per-frame brightness gain and Gaussian sensor noise; to uint8 RGB."""
    gain = 1.0 + rng.uniform(-flicker, flicker)
    noise = rng.normal(0.0, noise_sigma, image.shape).astype(np.float32)
    out = image * np.float32(gain) + noise
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    return fg + bg * (1.0 - alpha)[..., None]


def render_static(photos_dir: Path, n_frames: int = 60, seed: int = 0, *,
                  noise_sigma: float = 2.5, flicker: float = 0.03):
    """No motion: only sensor noise and +-``flicker`` brightness per frame.

    Returns (frames, masks): lists of RGB uint8 and uint8 masks, masks identical.
    """
    scene = build_scene(photos_dir, seed)
    rng = np.random.default_rng(seed + 1_000)
    fg, alpha = scene.fg[:FRAME_H], scene.alpha[:FRAME_H]
    clean = _composite(fg, alpha, scene.background)
    frames = [_finish(clean, rng, noise_sigma, flicker) for _ in range(n_frames)]
    return frames, [scene.truth[:FRAME_H].copy() for _ in range(n_frames)]


def motion_offset(t: int, *, amp_x: float = 30.0, amp_y: float = 6.0,
                  period: float = 60.0) -> tuple[float, float]:
    """Sinusoidal sub-pixel offset; peak speed amp_x * 2pi / period (~3 px/frame)."""
    phase = 2.0 * np.pi * t / period
    return amp_x * float(np.sin(phase)), amp_y * float(np.sin(2.0 * phase + 0.7))


def _shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Translate by (dx, dy) and keep the frame-sized top of the result."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, (FRAME_W, FRAME_H),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def render_moving(photos_dir: Path, n_frames: int = 60, seed: int = 0, *,
                  noise_sigma: float = 2.5, flicker: float = 0.03):
    """Slow sinusoidal translation of the person plus noise and flicker.

    The truth of each frame is the shifted truth mask (uint8); the blend uses
    the shifted softened mask. Returns (frames, masks).
    """
    scene = build_scene(photos_dir, seed)
    rng = np.random.default_rng(seed + 2_000)
    frames, masks = [], []
    for t in range(n_frames):
        dx, dy = motion_offset(t)
        fg, alpha = _shift(scene.fg, dx, dy), _shift(scene.alpha, dx, dy)
        frames.append(_finish(_composite(fg, alpha, scene.background), rng, noise_sigma, flicker))
        masks.append(_shift(scene.truth, dx, dy))
    return frames, masks


GENERATORS = {"static": render_static, "moving": render_moving}
