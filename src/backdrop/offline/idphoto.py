"""ID photos: the layouts (a table with a source for each), reading `--id-photo`/`--dpi`/
`--sheet` (one function for the command and the server), measuring the head on the photo,
placing it, and the refusals. Pure functions on arrays, apart from the face models handed in.

Terms, as the sources use them: the head is measured from the bottom of the chin to the crown,
the top of the head including the hair (the matte's top above the face: no landmark marks it);
the eye line is the height of the eye centres, from the photo's bottom edge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

import cv2
import numpy as np

from backdrop.errors import BackdropError, ConfigError

MM_PER_INCH = 25.4
ISO_EYES = ("ISO/IEC 19794-5:2005 8.3.3 (ICAO token image): eye line 50-70% of the height from"
            " the bottom")


@dataclass(frozen=True)
class IdSpec:
    name: str
    title: str
    size_mm: Tuple[float, float]              # (width, height)
    background: Tuple[int, int, int]
    head_mm: Tuple[float, float]              # chin to crown, inclusive range
    eyes_mm: Tuple[float, float]              # eye line from the bottom edge
    source: str
    top_mm: Optional[Tuple[float, float]] = None   # crown to the top edge, where stated


def _inch(*values: float) -> Tuple[float, ...]:
    return tuple(v * MM_PER_INCH for v in values)


LIGHT_GREY = (224, 224, 224)
WHITE = (255, 255, 255)

SPECS = {s.name: s for s in (
    IdSpec("eu", "EU/Schengen passport and visa, 35x45 mm", (35, 45), LIGHT_GREY, (32, 36),
           (22.5, 31.5),
           "ICAO Doc 9303 Part 3 and the EU Schengen visa photo guidance (35x45 mm, chin to"
           " crown 32-36 mm, i.e. 70-80% of the height; plain light background); " + ISO_EYES),
    IdSpec("uk", "UK passport, 35x45 mm", (35, 45), LIGHT_GREY, (29, 34), (22.5, 31.5),
           "gov.uk 'Photos for passports' (45 mm high by 35 mm wide; crown to chin 29-34 mm;"
           " plain cream or light grey background; states no eye line); " + ISO_EYES),
    IdSpec("us", "US passport and visa, 2x2 in", _inch(2, 2), WHITE, _inch(1, 1.375),
           _inch(1.125, 1.375),
           "travel.state.gov 'Photo Requirements' and its photo composition template (2x2 in;"
           " head 1 to 1 3/8 in from the bottom of the chin to the top of the head; eyes 1 1/8"
           " to 1 3/8 in from the bottom of the photo; white or off-white background)"),
    IdSpec("cn", "Chinese passport and travel document, 33x48 mm", (33, 48), WHITE, (28, 33),
           (24, 33.6),
           "Chinese consular photo requirements for passports and travel documents (33x48 mm;"
           " head height chin to crown 28-33 mm, width 15-22 mm; crown 3-5 mm below the top"
           " edge; white background; states no eye line); " + ISO_EYES, top_mm=(3, 5)),
    IdSpec("in", "Indian visa, 2x2 in", _inch(2, 2), WHITE, _inch(1, 1.375), _inch(1.125, 1.375),
           "Indian visa photo specification (Government of India e-Visa / Indian missions: 2x2"
           " in, head 1 to 1 3/8 in from the top of the hair to the bottom of the chin, eyes"
           " 1 1/8 to 1 3/8 in from the bottom, plain white or off-white background)"),
    IdSpec("ca", "Canadian passport, 50x70 mm", (50, 70), WHITE, (31, 36), (35, 49),
           "canada.ca 'Passport photos' (50 mm wide x 70 mm high; face 31-36 mm from chin to"
           " crown of head; plain white or light-coloured background; states no eye line); "
           + ISO_EYES),
)}

DPI_RANGE = (72, 1200)
# A head enlarged more than this looks soft in print (hair and eyelashes turn to smudges);
# a 512 px portrait whose head is 160 px tall makes a 300 dpi eu photo at about 2.4x.
MAX_UPSCALE = 2.5
# Targets sit this far (a fraction of each range's width) inside the ranges, so that a
# measurement on the result a pixel or two off still lands inside.
INSIDE = 0.2
# Where a source states no top gap: the crown at least this fraction of the height below the
# top edge (hair touching the edge reads as cut off).
MIN_TOP_GAP = 0.05
RELAXED = (0.05, 0.03)   # (INSIDE, MIN_TOP_GAP) for heads the first targets cannot hold
BORDER_TOUCH = 0.02     # a matte border row/column with more subject pixels than this is cut
MAX_ROLL = 5.0          # degrees the eye line may lean before a warning


@dataclass(frozen=True)
class IdPhotoOptions:
    """What --id-photo/--dpi/--sheet asked for, checked. Picklable (batches spawn workers)."""

    spec: str
    dpi: int = 300
    colour: Tuple[int, int, int] = WHITE
    sheet_mm: Optional[Tuple[float, float]] = None

    @property
    def layout(self) -> IdSpec:
        return SPECS[self.spec]

    def px(self, mm: float) -> float:
        return mm * self.dpi / MM_PER_INCH

    @property
    def size_px(self) -> Tuple[int, int]:
        w, h = self.layout.size_mm
        return round(self.px(w)), round(self.px(h))


_UNITS = {"in": MM_PER_INCH, "cm": 10.0, "mm": 1.0}


def parse_sheet(text: str) -> Tuple[float, float]:
    """'4x6in', '10x15cm', '102x152mm' -> (width, height) in mm."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[x×]\s*(\d+(?:\.\d+)?)\s*(in|cm|mm)\s*", str(text).lower())
    if not m or float(m.group(1)) <= 0 or float(m.group(2)) <= 0:
        raise ConfigError(f"sheet '{text}' is not a paper size: use WxH with a unit, e.g. 4x6in,"
                          " 10x15cm or 102x152mm")
    unit = _UNITS[m.group(3)]
    return float(m.group(1)) * unit, float(m.group(2)) * unit


def parse_id_photo(spec: str, dpi=None, sheet: Optional[str] = None,
                   colour: Optional[Tuple[int, int, int]] = None) -> IdPhotoOptions:
    """The command's and the server's options -> IdPhotoOptions; ConfigError naming the fix.
    `colour` replaces the layout's background colour (an explicit --background COLOUR)."""
    name = str(spec).strip().lower()
    if name not in SPECS:
        raise ConfigError(f"unknown ID photo layout '{spec}': choose one of {', '.join(SPECS)}")
    try:
        value = 300 if dpi is None else int(str(dpi).strip())
    except ValueError:
        value = -1
    if not DPI_RANGE[0] <= value <= DPI_RANGE[1]:
        raise ConfigError(f"dpi '{dpi}' must be a whole number from {DPI_RANGE[0]} to"
                          f" {DPI_RANGE[1]}, e.g. 300")
    options = IdPhotoOptions(name, value, colour or SPECS[name].background,
                             None if sheet is None else parse_sheet(sheet))
    if options.sheet_mm is not None:
        from backdrop.offline.printsheet import grid

        if grid(options.size_px, options.sheet_mm, value)[0] == 0:
            raise ConfigError(f"a {SPECS[name].title} photo does not fit on a {sheet} sheet;"
                              " use a larger sheet, e.g. 4x6in")
    return options


# ----------------------------------------------------------------------------- measuring

@dataclass(frozen=True)
class Head:
    """Where the head is in the source photo, in its pixels."""

    crown: float
    eyes: float
    chin: float
    centre_x: float

    @property
    def height(self) -> float:
        return self.chin - self.crown


_EDGES = ("left", "top", "right", "bottom")


def _cut_edge(extent, w: int, h: int, slack: float) -> Optional[str]:
    """Which frame edge the (x0, y0, x1, y1) extent crosses, if any."""
    x0, y0, x1, y1 = extent
    over = (-x0, -y0, x1 - w, y1 - h)
    worst = max(range(4), key=lambda i: over[i])
    return _EDGES[worst] if over[worst] > slack else None


def cut_off(edge: str) -> BackdropError:
    return BackdropError(f"the face is cut off by the photo's {edge} edge: use a photo that"
                         " shows the whole head with some room around it")


def find_face(frame: np.ndarray, faces):
    """The landmarks of the one face in the photo (engine.face.FaceLandmarker `faces`);
    refuses no face, several, or a face cut off by the photo's edge."""
    h, w = frame.shape[:2]
    boxes = faces.detect(frame)
    if not boxes:
        whole = faces.landmarks(frame)       # the detector misses faces cut in half
        if whole is not None and _cut_edge(whole.extent, w, h, 2) is not None:
            raise cut_off(_cut_edge(whole.extent, w, h, 2))
        raise BackdropError("no face found: an ID photo needs one person facing the camera;"
                            " use a photo where the whole face is clearly visible")
    if len(boxes) > 1:
        raise BackdropError(f"found {len(boxes)} faces: an ID photo shows one person; crop the"
                            " photo to one face")
    box = boxes[0]
    edge = _cut_edge((box.x0, box.y0, box.x1, box.y1), w, h, 0.03 * box.size)
    marks = faces.landmarks(frame, box)
    if edge is None and marks is not None:
        edge = _cut_edge(marks.extent, w, h, 0.02 * box.size)
    if edge is not None:
        raise cut_off(edge)
    if marks is None:
        raise BackdropError("the face is not clear enough to find the eyes and chin: use a"
                            " sharper photo of the face, looking into the camera")
    return marks


def crown(alpha: np.ndarray, eyes_y: float, centre_x: float, half_width: float) -> float:
    """The top of the head from the matte (uint8, 255 = person): going up from the eye
    line in a band across the middle of the face, the last row still on the person."""
    h, w = alpha.shape
    x0, x1 = max(0, int(centre_x - half_width)), min(w, int(centre_x + half_width) + 1)
    rows = (alpha[: max(1, int(eyes_y)), x0:x1] >= 64).mean(axis=1) > 0.3
    gaps = np.flatnonzero(~rows)
    top = 0 if gaps.size == 0 else int(gaps[-1]) + 1
    if top == 0:
        raise BackdropError("the top of the head is cut off by the photo's top edge: use a"
                            " photo with room above the hair")
    return float(top)


def tilt_warnings(marks) -> List[str]:
    """ID photo rules want the head level; the layout does not turn it (turning would cut
    the photo's edges across the shoulders), so say so when it is not."""
    (rx, ry), (lx, ly) = marks.right_eye, marks.left_eye
    roll = float(np.degrees(np.arctan2(ly - ry, lx - rx)))
    if abs(roll) <= MAX_ROLL:
        return []
    side = "right" if roll > 0 else "left"     # in the picture, as the viewer sees it
    return [f"the head is tilted {abs(roll):.0f} degrees (the eye on the {side} is lower):"
            " ID photos need a level head; retake it or straighten the photo first"]


def measure(marks, alpha: np.ndarray) -> Head:
    """The head from the face's landmarks (find_face) and the person matte."""
    x0, _, x1, _ = marks.extent
    top = crown(alpha, marks.eye_line, marks.centre_x, 0.25 * (x1 - x0))
    return Head(top, marks.eye_line, marks.chin[1], marks.centre_x)


# ----------------------------------------------------------------------------- placing

@dataclass(frozen=True)
class Placement:
    """Source pixel (x, y) lands on (scale * x + tx, scale * y + ty) of a (width, height)
    photo."""

    scale: float
    tx: float
    ty: float
    size: Tuple[int, int]


def _inner(lo: float, hi: float, inside: float) -> Tuple[float, float]:
    d = (hi - lo) * inside
    return lo + d, hi - d


def _too_small(head: Head, need_px: float, options: IdPhotoOptions) -> BackdropError:
    factor = need_px / head.height
    dpi = int(options.dpi * MAX_UPSCALE / factor)
    fix = f", or dpi {dpi} or less" if dpi >= DPI_RANGE[0] else ""
    return BackdropError(
        f"the head is {head.height:.0f} px tall in the photo, but a {options.dpi} dpi"
        f" {options.spec} photo needs it {need_px:.0f} px tall ({factor:.1f}x enlarged; beyond"
        f" {MAX_UPSCALE:g}x it prints soft): use a larger photo of the face{fix}")


def _solve(head: Head, options: IdPhotoOptions, inside: float,
           top_gap: float) -> Optional[Placement]:
    spec, (width, height) = options.layout, options.size_px
    h_lo, h_hi = (options.px(v) for v in _inner(*spec.head_mm, inside))
    e_lo, e_hi = (height - options.px(v) for v in reversed(_inner(*spec.eyes_mm, inside)))
    t_lo, t_hi = ((options.px(v) for v in _inner(*spec.top_mm, inside)) if spec.top_mm
                  else (top_gap * height, float("inf")))
    ratio = (head.eyes - head.crown) / head.height       # crown -> eyes, of the head height
    mid_head, mid_eyes = (h_lo + h_hi) / 2, (e_lo + e_hi) / 2
    largest = min(h_hi, MAX_UPSCALE * head.height)
    if largest < h_lo:
        return None
    for size in sorted(np.linspace(h_lo, largest, 41), key=lambda v: abs(v - mid_head)):
        lo = max(e_lo, t_lo + ratio * size)              # eye line, from the top
        hi = min(e_hi, t_hi + ratio * size, height - (1 - ratio) * size - 1)
        if lo <= hi:
            eyes = min(max(mid_eyes, lo), hi)
            scale = size / head.height
            return Placement(scale, width / 2 - scale * head.centre_x,
                             eyes - scale * head.eyes, (width, height))
    return None


def place(head: Head, options: IdPhotoOptions) -> Placement:
    """Scale and shift putting the head height, the eye line and the gap above the crown
    inside the layout's ranges (as near their middles as they allow each other, enlarging
    as little as that needs), the face centred across. Targets keep a margin inside the
    ranges; a head whose proportions leave no room for it (big hair: the eyes far below
    the crown) gets a narrower one."""
    least = options.px(_inner(*options.layout.head_mm, RELAXED[0])[0])
    if least > MAX_UPSCALE * head.height:
        raise _too_small(head, least, options)
    for inside, top_gap in ((INSIDE, MIN_TOP_GAP), RELAXED):
        placement = _solve(head, options, inside, top_gap)
        if placement is not None:
            return placement
    raise BackdropError(f"this head does not fit the {options.spec} layout's head-height and"
                        " eye-line ranges together (the eyes sit unusually high or low in it):"
                        " use a photo looking straight into the camera, head level")


def check_room(alpha: np.ndarray, at: Placement, spec: IdSpec) -> None:
    """Where the photo does not reach the layout's edge the rest is filled with the
    background colour: fine where the matte is empty along that edge of the photo, a cut
    through the person where it is not (refused)."""
    h, w = alpha.shape
    width, height = at.size
    ys = slice(max(0, int(-at.ty / at.scale)), min(h, int((height - at.ty) / at.scale) + 1))
    xs = slice(max(0, int(-at.tx / at.scale)), min(w, int((width - at.tx) / at.scale) + 1))
    edges = {"top": (at.ty > 0, alpha[0, xs]), "bottom": (at.ty + at.scale * h < height,
                                                         alpha[h - 1, xs]),
             "left": (at.tx > 0, alpha[ys, 0]), "right": (at.tx + at.scale * w < width,
                                                         alpha[ys, w - 1])}
    for edge, (inside, line) in edges.items():
        if inside and line.size and np.count_nonzero(line >= 128) > BORDER_TOUCH * line.size:
            raise _no_room(edge, spec)


def _no_room(edge: str, spec: IdSpec) -> BackdropError:
    if edge == "top":
        return BackdropError("the top of the head is cut off by the photo's top edge: use a"
                             " photo with room above the hair")
    if edge == "bottom":
        return BackdropError(f"the photo ends too close below the chin for the {spec.name}"
                             " layout (the shoulders would stop short of its bottom edge): use"
                             " a photo that shows the shoulders")
    return BackdropError(f"the person is cut off by the photo's {edge} edge inside the"
                         f" {spec.name} frame: use a photo with more room beside the shoulders")


def compose(colour: np.ndarray, alpha: np.ndarray, at: Placement,
            background: Tuple[int, int, int]) -> np.ndarray:
    """The subject's colour (uint8 RGB, glow-free on the outline) and matte placed on the
    background colour: (height, width, 3) uint8, exactly `background` where the matte is 0."""
    scale, tx, ty = at.scale, at.tx, at.ty
    if scale < 1:      # shrink by area first: warpAffine alone would alias
        h, w = alpha.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        colour = cv2.resize(colour, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        scale = scale * w / size[0]     # what is left is about 1
    # Placement works on pixel edges (landmarks: 0..width), warpAffine on pixel centres
    shift = 0.5 * scale - 0.5
    m = np.float64([[scale, 0, tx + shift], [0, scale, ty + shift]])
    fg = cv2.warpAffine(colour, m, at.size, flags=cv2.INTER_CUBIC,
                        borderMode=cv2.BORDER_REPLICATE)
    a = cv2.warpAffine(alpha, m, at.size, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a3 = (a.astype(np.float32) * np.float32(1 / 255))[..., None]
    back = np.float32(background)
    out = np.clip(fg.astype(np.float32) * a3 + back * (1 - a3) + 0.5, 0, 255).astype(np.uint8)
    out[a == 0] = background
    return out


def make(frame: np.ndarray, marks, alpha: np.ndarray, colour: np.ndarray,
         options: IdPhotoOptions) -> np.ndarray:
    """The ID photo from a photo, its face's landmarks, its matte and subject colour."""
    head = measure(marks, alpha)
    at = place(head, options)
    check_room(alpha, at, options.layout)
    return compose(colour, alpha, at, options.colour)
