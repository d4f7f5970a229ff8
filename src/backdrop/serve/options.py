"""Query parameters -> what to render. They mirror `backdrop image`'s options; a bad value or
an unknown name is a 422 that says what is accepted. Backgrounds are never file paths or
URLs: the server reads nothing a client names."""

from __future__ import annotations

import re
from typing import Mapping, Tuple

from backdrop.config import IMAGE_SUBJECTS, QUALITIES, BackgroundSpec, parse_background, parse_colour
from backdrop.errors import ConfigError
from backdrop.offline.image import ImageSettings, choose_kind
from backdrop.serve.apierror import ApiError

FORMATS = {"png": "png", "webp": "webp", "jpg": "jpg", "jpeg": "jpg"}
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpg": "image/jpeg"}
REMOVE_OPTIONS = ("background", "format", "mask", "subject", "quality", "shadow", "canvas",
                  "margin", "align", "fit")
REFINE_OPTIONS = ("format", "mask")
DEFAULT_QUALITY = "best"      # as `backdrop image`
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _unknown(query: Mapping[str, str], known: Tuple[str, ...]) -> None:
    for name in query:
        if name not in known:
            raise ApiError(422, f"unknown option '{name}'; this route takes {', '.join(known)}")


def _flag(query: Mapping[str, str], name: str) -> bool:
    text = query.get(name, "false").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ApiError(422, f"{name}={query[name]!r}: expected true or false")


def _choice(query: Mapping[str, str], name: str, choices, default: str) -> str:
    value = query.get(name, default).strip().lower()
    if value not in choices:
        raise ApiError(422, f"{name}={query[name]!r}: expected one of {', '.join(choices)}")
    return value


def _format(query: Mapping[str, str]) -> str:
    return FORMATS[_choice(query, "format", tuple(FORMATS), "png")]


def background(text: str) -> BackgroundSpec:
    low = text.strip().lower()
    named = low in ("none", "off", "transparent") or low == "blur" or low.startswith("blur:")
    if not named and parse_colour(text) is None:
        raise ApiError(422, f"background={text!r}: expected transparent, blur, blur:STRENGTH,"
                       " none or a colour (#00ff00, green); the server opens no files or URLs")
    try:
        return parse_background(text)
    except ConfigError as e:
        raise ApiError(422, str(e)) from e


def _output_format(kind: str, fmt: str) -> None:
    if kind == "mask" and fmt != "png":
        raise ApiError(422, f"mask=true answers an 8-bit greyscale PNG; drop format={fmt}")
    if kind == "cutout" and fmt == "jpg":
        raise ApiError(422, "format=jpg cannot carry the transparent background (JPEG has no"
                       " alpha): ask for format=png or webp, or pass an opaque background"
                       " such as background=white")


def _layout(query: Mapping[str, str], max_pixels: int):
    """canvas=WxH, margin, align, fit as `backdrop image` takes them; a canvas is a size
    only (a template would be a file the server opened)."""
    from backdrop.offline.layout import parse_layout

    canvas = query.get("canvas")
    if canvas is not None:
        size = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", canvas)
        if size is None:
            raise ApiError(422, f"canvas={canvas!r}: expected WxH such as 1000x1000 (the server"
                           " opens no template files)")
        if int(size[1]) * int(size[2]) > max_pixels:
            raise ApiError(413, f"canvas={canvas} is over the limit of {max_pixels / 1e6:g}"
                           " million pixels; ask for a smaller canvas")
    try:
        return parse_layout(canvas, query.get("margin"), query.get("align"), _flag(query, "fit"))
    except ConfigError as e:
        raise ApiError(422, str(e)) from e


def remove_settings(query: Mapping[str, str], max_pixels: int) -> ImageSettings:
    from backdrop.offline.layout import check_outputs, output_kind

    _unknown(query, REMOVE_OPTIONS)
    spec = background(query.get("background", "transparent"))
    layout = _layout(query, max_pixels)
    kind = output_kind(layout, choose_kind(spec, _flag(query, "mask")))
    try:
        check_outputs(layout, spec.kind, kind)
    except ConfigError as e:
        raise ApiError(422, str(e)) from e
    fmt = _format(query)
    _output_format(kind, fmt)
    return ImageSettings(quality=_choice(query, "quality", QUALITIES, DEFAULT_QUALITY),
                         background=spec, kind=kind, fmt=fmt, shadow=_flag(query, "shadow"),
                         subject=_choice(query, "subject", IMAGE_SUBJECTS, "auto"),
                         layout=layout)


def refine_options(query: Mapping[str, str]) -> Tuple[str, str]:
    """(kind, format) for /v1/refine: the cut-out (default) or, with mask=true, the matte."""
    _unknown(query, REFINE_OPTIONS)
    kind = "mask" if _flag(query, "mask") else "cutout"
    fmt = _format(query)
    _output_format(kind, fmt)
    return kind, fmt
