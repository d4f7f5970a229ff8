"""The OpenAPI description served at /openapi.json, written out by hand: five routes do not
need a framework to generate it, and this way it says exactly what the handlers do."""

from __future__ import annotations

from typing import Any, Dict

from backdrop.config import IMAGE_SUBJECTS, QUALITIES
from backdrop.serve.images import Limits

_ERROR = {"description": "", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}}
_IMAGE_TYPES = ("image/png", "image/webp", "image/jpeg")


def _errors(*codes: int) -> Dict[str, Any]:
    what = {400: "the image cannot be read (damaged, truncated, empty)",
            401: "the token is missing or wrong (when the server has one)",
            413: "the body or the image's pixel count is over the limit",
            415: "the body or a part is not an image type the server accepts",
            422: "a bad option or a missing part",
            503: "the queue is full or the request ran over the time limit (see Retry-After)"}
    return {str(c): dict(_ERROR, description=what[c]) for c in codes}


def _query(name: str, description: str, schema: Dict[str, Any]) -> Dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


def _image_answer() -> Dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {"description": "the image", "content": {t: binary for t in _IMAGE_TYPES}}


def _multipart(*fields: str) -> Dict[str, Any]:
    props = {f: {"type": "string", "format": "binary"} for f in fields}
    return {"multipart/form-data": {"schema": {"type": "object", "properties": props,
                                               "required": list(fields)}}}


def openapi(version: str, limits: Limits) -> Dict[str, Any]:
    fmt = _query("format", "png (default), webp or jpg (jpg only with an opaque background)",
                 {"type": "string", "enum": ["png", "webp", "jpg"], "default": "png"})
    mask = _query("mask", "answer the 8-bit greyscale matte (255 = subject)",
                  {"type": "boolean", "default": False})
    binary = {"schema": {"type": "string", "format": "binary"}}
    remove = {
        "summary": "Remove (or replace) the background of one image",
        "description": f"Body limit {limits.max_bytes} bytes, {limits.max_pixels} pixels.",
        "parameters": [
            _query("background", "transparent (default), blur, blur:STRENGTH, none or a colour",
                   {"type": "string", "default": "transparent"}),
            fmt, mask,
            _query("subject", "what to cut out", {"type": "string", "enum": list(IMAGE_SUBJECTS)}),
            _query("quality", "speed against edge quality",
                   {"type": "string", "enum": list(QUALITIES), "default": "best"}),
            _query("shadow", "add a soft drop shadow", {"type": "boolean", "default": False}),
            _query("canvas", "WxH: the subject scaled onto a canvas of that size",
                   {"type": "string", "pattern": "^[0-9]+x[0-9]+$"}),
            _query("margin", "space on every edge, % of the canvas's smaller side",
                   {"type": "number", "default": 5}),
            _query("align", "on the canvas", {"type": "string", "enum": ["center", "bottom"]}),
            _query("fit", "crop to the subject plus the margin",
                   {"type": "boolean", "default": False})],
        "requestBody": {"required": True, "content": dict(
            {t: binary for t in ("image/png", "image/jpeg", "image/webp", "image/bmp",
                                 "image/tiff")}, **_multipart("image"))},
        "responses": dict({"200": _image_answer()}, **_errors(400, 401, 413, 415, 422, 503))}
    refine = {
        "summary": "Re-solve a matte around keep (green) and remove (red) strokes",
        "description": "image: the photo; matte: a grey matte or the cut-out (its alpha);"
                       " hints: same size, green = keep, red = remove, anything else no hint.",
        "parameters": [fmt, mask],
        "requestBody": {"required": True, "content": _multipart("image", "matte", "hints")},
        "responses": dict({"200": _image_answer()},
                          **_errors(400, 401, 413, 415, 422, 503))}
    plain = lambda summary, media: {"get": {"summary": summary, "responses": {
        "200": {"description": summary, "content": {media: {}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "backdrop", "version": version,
                 "description": "Background removal as a service: `backdrop serve`."},
        "paths": {"/v1/remove": {"post": remove}, "/v1/refine": {"post": refine},
                  "/health": plain("version and queue state", "application/json"),
                  "/openapi.json": plain("this description", "application/json"),
                  "/": plain("the page", "text/html")},
    }
