"""Files named by URL (`s3://bucket/shoot/`, `gs://…`, `file:///…`) through fsspec, for batches
whose inputs and outputs live on object storage every node of a cluster reaches. fsspec and
its backend (s3fs, gcsfs, …) are the user's to install; local paths never touch this module.

An object store writes an object whole when the upload closes (no reader sees part of it),
which is what the temp file and rename give on a local disk.
"""

from __future__ import annotations

import posixpath
from typing import List, Tuple

from backdrop.errors import ConfigError, InputError, SinkError


def is_url(path: str) -> bool:
    scheme, sep, _ = path.partition("://")
    return bool(sep) and scheme.replace("+", "").isalnum()


def _fs(url: str):
    try:
        import fsspec
    except ImportError as e:
        raise ConfigError(f"'{url}' is a URL, which needs fsspec and its backend for"
                          f" {url.split('://')[0]}:// (pip install fsspec s3fs, or gcsfs, ...)") from e
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as e:
        raise ConfigError(f"cannot open '{url}': {e}") from e


def _with_scheme(url: str, path: str) -> str:
    scheme = url.split("://", 1)[0]
    return path if is_url(path) else f"{scheme}://{path.lstrip('/') if scheme != 'file' else path}"


def exists(url: str) -> bool:
    fs, path = _fs(url)
    return fs.exists(path)


def is_folder(url: str) -> bool:
    fs, path = _fs(url)
    return url.endswith("/") or fs.isdir(path)


def list_files(url: str, recursive: bool) -> List[Tuple[str, str]]:
    """(file URL, its path under `url`) for the files in a folder URL, sorted."""
    fs, root = _fs(url)
    root = root.rstrip("/")
    found = fs.find(root) if recursive else [p for p in fs.ls(root, detail=False) if fs.isfile(p)]
    return [(_with_scheme(url, p), posixpath.relpath(p, root)) for p in sorted(found)]


def read_bytes(url: str) -> bytes:
    fs, path = _fs(url)
    try:
        with fs.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as e:
        raise InputError(f"'{url}': no such file") from e
    except OSError as e:
        raise InputError(f"cannot read '{url}': {e}") from e


def write_bytes(url: str, data: bytes) -> None:
    fs, path = _fs(url)
    parent = posixpath.dirname(path)
    try:
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with fs.transaction:     # the file appears when the write is done, never in part
            with fs.open(path, "wb") as f:
                f.write(data)
    except OSError as e:
        raise SinkError(f"cannot write '{url}': {e}") from e
