"""Ready-to-use layouts: where the cut-out goes (`--canvas WxH|FILE`, `--fit`, `--margin`,
`--align`) and what goes over it (`--overlay`). One parse function turns the options into a
frozen, picklable Layout for the command (and its spawned batch workers) and for the server's
query parameters alike; the geometry is pure arithmetic here, the pixels are in canvas.py.

Nothing heavy is imported at module level: ImageSettings carries a Layout.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from backdrop.errors import ConfigError

DEFAULT_MARGIN = 5.0       # % of the canvas's smaller side, on every edge
MAX_MARGIN = 45.0          # beyond this there is hardly a canvas left for the subject
MAX_SIDE = 8000            # px; a float RGBA canvas this size is already ~1 GB
ALIGNS = ("center", "bottom")
# Enlarging a cut-out more than this shows: its soft outline becomes a visible blur.
MAX_UPSCALE = 1.5


@dataclass(frozen=True)
class Layout:
    canvas: Optional[Tuple[int, int]] = None   # (width, height) of the output; None: no canvas
    template: str = ""            # the canvas's image (its own size), or "" for a plain fill
    template_opaque: bool = False  # the template covers every pixel (the output is opaque)
    fit: bool = False             # crop to the subject plus the margin, no scaling
    margin: float = DEFAULT_MARGIN
    align: str = "center"
    overlay: str = ""             # a PNG/WebP with alpha composited over the result

    @property
    def places(self) -> bool:
        """The subject is cut to its box and placed on a new canvas (--canvas or --fit)."""
        return self.canvas is not None or self.fit

    @property
    def active(self) -> bool:
        return self.places or bool(self.overlay)


NO_LAYOUT = Layout()


def _size(text: str) -> Optional[Tuple[int, int]]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        return None
    w, h = int(m.group(1)), int(m.group(2))
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        raise ConfigError(f"--canvas {text}: width and height must be whole numbers from 1 to"
                          f" {MAX_SIDE} px, e.g. --canvas 1000x1000")
    return w, h


def _option_image(flag: str, path: str, missing: str):
    """The image an option names, RGB or RGBA; ConfigError when it is missing or unreadable."""
    from backdrop.errors import InputError
    from backdrop.io.images import read_rgba

    if not os.path.isfile(path):
        raise ConfigError(f"{flag} {path}: {missing}")
    try:
        return read_rgba(path)
    except InputError as e:
        raise ConfigError(f"{flag} {path}: {e}") from e


def _template(text: str) -> Tuple[Tuple[int, int], bool]:
    """(size, opaque) of a template image; ConfigError when it is missing or unreadable."""
    image = _option_image("--canvas", text, "no such image file, and not a size like 1000x1000")
    h, w = image.shape[:2]
    if max(w, h) > MAX_SIDE:
        raise ConfigError(f"--canvas {text} is {w}x{h} px; templates up to {MAX_SIDE} px a side"
                          " are supported: shrink it first")
    return (w, h), image.shape[2] == 3 or bool((image[..., 3] == 255).all())


def _margin(value: Union[str, float, None]) -> float:
    if value is None:
        return DEFAULT_MARGIN
    try:
        margin = float(value)
    except (TypeError, ValueError):
        margin = math.nan
    if not 0 <= margin <= MAX_MARGIN:     # also refuses nan
        raise ConfigError(f"--margin {value}: must be a number from 0 to {MAX_MARGIN:g}"
                          " (% of the canvas's smaller side), e.g. --margin 5")
    return margin


def _overlay(path: str) -> str:
    image = _option_image("--overlay", path, "no such file")
    if image.shape[2] != 4:
        raise ConfigError(f"--overlay {path} has no alpha channel, so it would hide the whole"
                          " picture: save it as a PNG (or WebP) with transparency")
    return path


def parse_layout(canvas: Optional[str] = None, margin: Union[str, float, None] = None,
                 align: Optional[str] = None, fit: bool = False,
                 overlay: Optional[str] = None) -> Layout:
    """The layout options as given (None: not given) -> a validated Layout; ConfigError with
    one line naming the option and the fix otherwise."""
    if fit and canvas:
        raise ConfigError("--fit crops the output to the subject and --canvas sets its size:"
                          " use one of them")
    if (margin is not None or align) and not (canvas or fit):
        name = "--margin" if margin is not None else "--align"
        raise ConfigError(f"{name} places the subject on a canvas: add --canvas WxH (or --fit)")
    if align and align not in ALIGNS:
        raise ConfigError(f"--align {align}: use one of {', '.join(ALIGNS)}")
    if align and fit:
        raise ConfigError("--align places the subject on a --canvas; --fit leaves the same"
                          " margin on every side: drop --align")
    size, template, opaque = None, "", False
    if canvas:
        size = _size(canvas)
        if size is None:
            size, opaque = _template(canvas)
            template = canvas
    return Layout(canvas=size, template=template, template_opaque=opaque, fit=bool(fit),
                  margin=_margin(margin), align=align or "center",
                  overlay=_overlay(overlay) if overlay else "")


def output_kind(layout: Layout, kind: str) -> str:
    """An opaque template makes the output opaque even with the default transparent
    background (so a JPEG can hold it)."""
    return "composite" if kind == "cutout" and layout.template_opaque else kind


def check_outputs(layout: Layout, background_kind: str, kind: str) -> None:
    """Refuse combinations that cannot mean anything (ConfigError)."""
    if layout.places and background_kind in ("blur", "none"):
        what = "--canvas" if layout.canvas else "--fit"
        raise ConfigError(f"--background {background_kind} keeps the photo's own background,"
                          f" which {what} replaces: use a colour (e.g. white), an image or"
                          " transparent")
    if layout.overlay and kind == "mask":
        raise ConfigError("--overlay draws over the picture but --mask writes only the matte:"
                          " drop one of them")


# ----------------------------------------------------------------------------- geometry

@dataclass(frozen=True)
class Placement:
    canvas: Tuple[int, int]        # output (width, height)
    box: Tuple[int, int, int, int]  # the subject's box in the source: x0, y0, x1, y1 (exclusive)
    size: Tuple[int, int]          # the box's (width, height) on the canvas
    at: Tuple[int, int]            # its top-left corner on the canvas
    scale: float


def margin_px(margin: float, width: int, height: int) -> int:
    return round(margin / 100.0 * min(width, height))


def place(layout: Layout, box: Tuple[int, int, int, int]) -> Placement:
    """Where the subject's box lands: scaled to fit inside the canvas less the margins
    (centred, or resting on the lower margin), or, with --fit, unscaled with a margin that
    is the same percentage of the result's smaller side as on a canvas."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    if layout.fit:
        p = layout.margin / 100.0
        m = round(p * min(bw, bh) / (1.0 - 2.0 * p))   # m = p * min(bw + 2m, bh + 2m)
        return Placement((bw + 2 * m, bh + 2 * m), box, (bw, bh), (m, m), 1.0)
    width, height = layout.canvas
    m = margin_px(layout.margin, width, height)
    iw, ih = max(1, width - 2 * m), max(1, height - 2 * m)
    scale = min(iw / bw, ih / bh)
    nw, nh = min(iw, max(1, round(bw * scale))), min(ih, max(1, round(bh * scale)))
    x = m + (iw - nw) // 2
    y = height - m - nh if layout.align == "bottom" else m + (ih - nh) // 2
    return Placement((width, height), box, (nw, nh), (x, y), scale)


# A subject opaque along this share of a photo edge was cut by the frame: on a canvas that
# edge shows as a straight line through it (a cat's head cut off at the top of the photo).
CUT_EDGE_SHARE = 0.10


def cut_edge_warning(alpha) -> Optional[str]:
    """Say which photo edges cut through the subject; None when none does."""
    rows, cols = alpha.shape
    edges = {"top": alpha[0], "bottom": alpha[-1], "left": alpha[:, 0], "right": alpha[:, -1]}
    cut = [name for name, line in edges.items() if (line >= 128).mean() >= CUT_EDGE_SHARE]
    if not cut:
        return None
    names = cut[0] if len(cut) == 1 else ", ".join(cut[:-1]) + " and " + cut[-1]
    return (f"the photo's {names} edge{'s' if len(cut) > 1 else ''} cut"
            f"{'' if len(cut) > 1 else 's'} through the subject, which shows as a straight"
            " edge on the canvas; use a photo with room around the subject")


def upscale_warning(placement: Placement) -> Optional[str]:
    """Noisy, soft edges come from small sources: say so when the subject is enlarged."""
    if placement.scale <= MAX_UPSCALE:
        return None
    bw = placement.box[2] - placement.box[0]
    bh = placement.box[3] - placement.box[1]
    w, h = placement.canvas
    need_w = math.ceil(placement.size[0] / MAX_UPSCALE)
    need_h = math.ceil(placement.size[1] / MAX_UPSCALE)
    return (f"the subject ({bw}x{bh} px in the photo) is enlarged {placement.scale:.1f}x to fill"
            f" the {w}x{h} canvas, so its edges will look soft; use a photo where it is at least"
            f" {need_w}x{need_h} px, or a smaller canvas")
