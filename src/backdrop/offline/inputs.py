"""Finding the inputs of `backdrop image`: files, folders (recursively with -r) and glob
patterns, in the order given, each once, skipping the outputs of earlier runs."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import List, Sequence

from backdrop.errors import InputError
from backdrop.io.images import is_image_path

# Default output names next to the input: photo.jpg -> photo.cutout.png, photo.mask.png, ...
SUFFIXES = {"cutout": ".cutout", "composite": ".composite", "mask": ".mask", "idphoto": ".id"}
CHECK_SUFFIX = ".check"
SHEET_SUFFIX = ".sheet"     # the ID photo's print sheet, beside the photo
_OUR_SUFFIXES = tuple(SUFFIXES.values()) + (CHECK_SUFFIX, SHEET_SUFFIX)


@dataclass(frozen=True)
class ImageInput:
    path: str
    relative: str        # where it sits under the folder it was found in; its name otherwise



def _ours(name: str) -> bool:
    """Outputs of an earlier run (photo.cutout.png) and hidden temp files are not inputs."""
    stem = os.path.splitext(name)[0]
    return name.startswith(".") or stem.endswith(_OUR_SUFFIXES)


def _scan_folder(folder: str, recursive: bool) -> List[ImageInput]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if is_image_path(name) and not _ours(name):
                path = os.path.normpath(os.path.join(root, name))
                found.append(ImageInput(path, os.path.relpath(path, folder)))
    return found


def _expand_url(arg: str, recursive: bool) -> List[ImageInput]:
    from backdrop.io import remote

    if not remote.is_folder(arg):
        return [ImageInput(arg, arg.rstrip("/").rsplit("/", 1)[-1])]
    found = [ImageInput(url, relative) for url, relative in remote.list_files(arg, recursive)
             if is_image_path(url) and not _ours(os.path.basename(url))]
    if not found:
        raise InputError(f"folder '{arg}' holds no JPEG, PNG, WebP, BMP or TIFF images")
    return found


def _expand_one(arg: str, recursive: bool) -> List[ImageInput]:
    if "://" in arg:      # s3://bucket/shoot/ and the like, through fsspec
        return _expand_url(arg, recursive)
    if os.path.isdir(arg):
        found = _scan_folder(arg, recursive)
        if not found:
            more = "" if recursive else " (use -r to look in its subfolders)"
            raise InputError(f"folder '{arg}' holds no JPEG, PNG, WebP, BMP or TIFF images{more}")
        return found
    if os.path.exists(arg):
        return [ImageInput(arg, os.path.basename(arg))]
    if glob.has_magic(arg):     # quoted patterns, and shells that do not expand them
        matches = sorted(glob.glob(arg, recursive=recursive))
        files = [m for m in matches
                 if os.path.isfile(m) and is_image_path(m) and not _ours(os.path.basename(m))]
        if not files:
            raise InputError(f"pattern '{arg}' matches no images")
        return [ImageInput(m, os.path.basename(m)) for m in files]
    raise InputError(f"'{arg}': no such file or folder")


def expand_inputs(args: Sequence[str], recursive: bool = False) -> List[ImageInput]:
    """Files, folders (recursively with `recursive`) and glob patterns -> image inputs, in
    the order given, each once."""
    seen, inputs = set(), []
    for arg in args:
        for item in _expand_one(arg, recursive):
            key = os.path.realpath(item.path)
            if key not in seen:
                seen.add(key)
                inputs.append(item)
    return inputs
