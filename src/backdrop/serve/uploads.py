"""Reading a request's image parts within the limits: the content type is checked before the
body is read, the body is read up to the byte limit and no further, multipart bodies are
parsed in memory (Starlette's form parser spools large files to disk; nothing here may
touch the disk), and every image's header is checked before a worker decodes it."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from starlette.requests import Request

from backdrop.serve.apierror import ApiError
from backdrop.serve.images import KINDS, Limits, check

Part = Tuple[bytes, Optional[str]]      # (data, its own content type)
_HOW = ("send the image as the body with Content-Type image/png (or image/jpeg, image/webp)"
        " or as the field 'image' of a multipart/form-data body")


# image/* subtypes that can hold what images.ACCEPTED decodes; any other image type (GIF,
# SVG, HEIC...) is refused before its body is read
IMAGE_SUBTYPES = {"png", "x-png", "apng", "jpeg", "jpg", "pjpeg", "webp", "bmp", "x-bmp",
                  "x-ms-bmp", "tiff", "x-tiff"}


def _media_type(value: Optional[str]) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _refuse_other_images(media: str, where: str) -> None:
    if media.startswith("image/") and media[6:] not in IMAGE_SUBTYPES:
        raise ApiError(415, f"{where} is {media}, which is not accepted; send {KINDS}")


async def read_body(request: Request, limits: Limits) -> bytes:
    declared = request.headers.get("content-length")
    too_big = ApiError(413, f"the request body is over the limit of"
                       f" {limits.max_bytes / 2**20:g} MB; send a smaller image")
    if declared is not None:
        try:
            if int(declared) > limits.max_bytes:
                raise too_big
        except ValueError:
            raise ApiError(400, f"Content-Length {declared!r} is not a number") from None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_bytes:
            raise too_big
    return bytes(body)


def parse_multipart(body: bytes, content_type: str) -> Dict[str, Part]:
    """Every part of a multipart/form-data body by field name, kept in memory."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise ApiError(400, "the multipart/form-data body has no boundary in its Content-Type")
    parts: Dict[str, Part] = {}
    state: Dict[str, object] = {}

    def header_end() -> None:
        state["headers"][bytes(state["field"]).lower()] = bytes(state["value"])
        state["field"], state["value"] = bytearray(), bytearray()

    def part_end() -> None:
        headers = state["headers"]
        disposition = parse_options_header(headers.get(b"content-disposition", b""))[1]
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        kind = headers.get(b"content-type")
        parts[name] = (bytes(state["data"]), kind.decode("latin-1") if kind else None)

    callbacks = {
        "on_part_begin": lambda: state.update(headers={}, data=bytearray(), field=bytearray(),
                                              value=bytearray()),
        "on_header_field": lambda d, s, e: state["field"].extend(d[s:e]),
        "on_header_value": lambda d, s, e: state["value"].extend(d[s:e]),
        "on_header_end": header_end,
        "on_part_data": lambda d, s, e: state["data"].extend(d[s:e]),
        "on_part_end": part_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except MultipartParseError as e:
        raise ApiError(400, f"the multipart/form-data body cannot be parsed ({e})") from e
    return parts


def _image_part(parts: Dict[str, Part], name: str) -> bytes:
    if name not in parts:
        found = ", ".join(repr(n) for n in parts) or "none"
        raise ApiError(422, f"the multipart body has no field '{name}' (fields: {found})")
    data, kind = parts[name]
    media = _media_type(kind)
    _refuse_other_images(media, f"the field '{name}'")
    if media and not media.startswith("image/") and media != "application/octet-stream":
        raise ApiError(415, f"the field '{name}' is {media}, not an image; send {KINDS}")
    return data


async def image_parts(request: Request, names: Tuple[str, ...], limits: Limits,
                      raw_allowed: bool) -> Dict[str, bytes]:
    """The named image parts of the request, each header-checked (400/413/415 otherwise).
    With `raw_allowed` a body of Content-Type image/* is the (only) part `names[0]`."""
    media = _media_type(request.headers.get("content-type"))
    _refuse_other_images(media, "the body")
    if media.startswith("image/") and raw_allowed:
        images = {names[0]: await read_body(request, limits)}
    elif media == "multipart/form-data":
        parts = parse_multipart(await read_body(request, limits),
                                request.headers["content-type"])
        images = {name: _image_part(parts, name) for name in names}
    else:
        how = _HOW if raw_allowed else ("send a multipart/form-data body with the fields "
                                        + ", ".join(names))
        raise ApiError(415, f"Content-Type {media or '(none)'} is not an image; {how}")
    for name, data in images.items():
        check(data, name, limits)
    return images
