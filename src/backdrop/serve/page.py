"""The page's files (static/: plain HTML, JavaScript and CSS, no build step, nothing fetched
from elsewhere), read from the installed package once and served from memory."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Optional, Tuple

MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".png": "image/png",
               ".svg": "image/svg+xml"}


@functools.lru_cache(maxsize=None)
def _files() -> dict:
    folder = resources.files("backdrop.serve") / "static"
    found = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in MEDIA_TYPES:
            found[item.name] = (item.read_bytes(), MEDIA_TYPES[suffix])
    return found


def page_file(name: str) -> Optional[Tuple[bytes, str]]:
    """(bytes, media type) of one of the page's files, or None: only files that ship in
    static/ are ever answered (a name is a key here, never a path)."""
    return _files().get(name)
