"""The Starlette application: routes, the token check, JSON errors. Handlers only check and
forward: the pixels are worked in the pool's processes, so the event loop stays free to
answer /health and refuse what it must while images are being processed."""

from __future__ import annotations

import hmac
import json
from typing import Dict, Optional

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backdrop import __version__
from backdrop.serve.apierror import ApiError
from backdrop.serve.images import Limits
from backdrop.serve.openapi import openapi
from backdrop.serve.options import refine_options, remove_settings
from backdrop.serve.page import page_file
from backdrop.serve.pool import WorkerPool
from backdrop.serve.uploads import image_parts

# A browser cannot send a Bearer token when it opens the page; it can answer a Basic
# challenge, and then sends it with every request of the page: any user name, the token as
# the password. Scripts send "Authorization: Bearer TOKEN".
CHALLENGE = 'Basic realm="backdrop: any user name, the token as the password"'

# The page loads nothing from elsewhere; the policy makes that a rule the browser enforces.
PAGE_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:;"
                                           " object-src 'none'; base-uri 'none'"}


def _error(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _authorised(header: str, token: str) -> bool:
    import base64

    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    else:
        return False
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


class TokenGuard:
    """ASGI middleware: every HTTP request needs the token (the page included)."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not _authorised(header, self.token):
                message = ("this server needs its token: send 'Authorization: Bearer TOKEN'"
                           if not header else "wrong token in the Authorization header")
                response = _error(401, message, {"WWW-Authenticate": CHALLENGE})
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def _answer(answer) -> Response:
    if answer[0] == "error":
        return _error(answer[1], answer[2])
    _, body, media_type, warnings = answer
    headers = {}
    if warnings:
        text = "; ".join(warnings).encode("ascii", "replace").decode("ascii")
        headers["X-Backdrop-Warnings"] = text
    return Response(body, media_type=media_type, headers=headers)


async def page(request: Request) -> Response:
    name = request.path_params.get("name", "index.html")
    found = page_file(name)
    if found is None:
        raise ApiError(404, f"no such file: /page/{name}")
    body, media_type = found
    return Response(body, media_type=media_type, headers=PAGE_HEADERS)


async def api_error(request: Request, exc: ApiError) -> Response:
    return _error(exc.status, exc.message, exc.headers)


async def http_error(request: Request, exc: HTTPException) -> Response:
    return _error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                  exc.headers)


async def unexpected(request: Request, exc: Exception) -> Response:
    return _error(500, f"unexpected {type(exc).__name__}: {exc}")


def create_app(pool: WorkerPool, limits: Limits, token: Optional[str] = None):
    async def remove(request: Request) -> Response:
        settings = remove_settings(request.query_params, limits.max_pixels)
        parts = await image_parts(request, ("image",), limits, raw_allowed=True)
        return _answer(await pool.run({"kind": "remove", "image": parts["image"],
                                       "settings": settings, "limits": limits}))

    async def refine(request: Request) -> Response:
        kind, fmt = refine_options(request.query_params)
        parts = await image_parts(request, ("image", "matte", "hints"), limits,
                                  raw_allowed=False)
        return _answer(await pool.run(dict(parts, kind="refine", out=kind, fmt=fmt,
                                           limits=limits)))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__, "queue": pool.state(),
                             "limits": {"max_bytes": limits.max_bytes,
                                        "max_pixels": limits.max_pixels}})

    async def spec(request: Request) -> Response:
        return Response(json.dumps(openapi(__version__, limits)), media_type="application/json")

    routes = [Route("/", page, methods=["GET"]),
              Route("/page/{name}", page, methods=["GET"]),
              Route("/health", health, methods=["GET"]),
              Route("/openapi.json", spec, methods=["GET"]),
              Route("/v1/remove", remove, methods=["POST"]),
              Route("/v1/refine", refine, methods=["POST"])]
    app = Starlette(routes=routes, exception_handlers={ApiError: api_error,
                                                       HTTPException: http_error,
                                                       Exception: unexpected})
    return TokenGuard(app, token) if token else app
