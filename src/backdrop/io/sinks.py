"""Frame sinks: video file and null, and `open_sink`, which opens any sink by name.

Sinks take `(H, W, 3) uint8` RGB and do whatever the device needs (BGR for OpenCV, even sizes
for virtual-camera readers, resizing to the size they were opened with). Nothing here waits or
paces: the runner owns time. The virtual camera is in vcam.py, the preview window in preview.py.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import cv2
import numpy as np

from backdrop.errors import SinkError
from backdrop.io.frames import Closing, check_frame, even, fit_frame
from backdrop.io.preview import PreviewSink
from backdrop.io.vcam import VirtualCameraSink

VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}  # verified here


class Sink(Protocol):
    name: str

    def send(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------- files

def _partial_path(path: str) -> str:
    """Hidden temp file beside the target, keeping the extension (OpenCV picks the container
    from it): out/clip.mp4 -> out/.clip.partial.mp4."""
    folder, base = os.path.split(path)
    stem, ext = os.path.splitext(base)
    return os.path.join(folder, f".{stem}.partial{ext}")


class VideoFileSink(Closing):
    """Writes a video file atomically: the target appears only once it is complete."""

    def __init__(self, *, path: str, width: int, height: int, fps: float) -> None:
        self.path = str(path)
        ext = os.path.splitext(self.path)[1].lower()
        if ext not in VIDEO_CODECS:
            raise SinkError(f"cannot write video '{self.path}': unsupported extension"
                            f" '{ext or 'none'}'; use one of {', '.join(VIDEO_CODECS)}")
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise SinkError(f"cannot write video '{self.path}': folder {folder} does not"
                            f" exist; create it first")
        self.width, self.height, self.fps = even(width), even(height), float(fps)
        self.frames = 0
        self._tmp = _partial_path(self.path)
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[ext])
        self._writer = cv2.VideoWriter(self._tmp, fourcc, self.fps, (self.width, self.height))
        if not self._writer.isOpened():
            self._writer.release()
            self._writer = None
            self._remove_tmp()
            raise SinkError(f"cannot write video '{self.path}': OpenCV could not start a"
                            f" {VIDEO_CODECS[ext]} {ext} writer; check the folder is writable")
        self.name = f"video file {self.path} {self.width}x{self.height} {self.fps:g}fps"

    def send(self, frame: np.ndarray) -> None:
        if self._writer is None:
            raise SinkError(f"{self.name} was closed; open the sink again")
        check_frame(frame)
        bgr = cv2.cvtColor(fit_frame(frame, self.width, self.height), cv2.COLOR_RGB2BGR)
        try:
            self._writer.write(bgr)
        except cv2.error as e:
            self.abort()
            raise SinkError(f"writing video '{self.path}' failed; check free disk space") from e
        self.frames += 1

    def _remove_tmp(self) -> None:
        try:
            os.remove(self._tmp)
        except FileNotFoundError:
            pass

    def abort(self) -> None:
        """Stop without touching the target (used on errors and Ctrl-C)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()
        self._remove_tmp()

    def close(self) -> None:
        """Finish the file and move it onto the target; with no frames, leave no file."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.release()
        if self.frames == 0 or not os.path.exists(self._tmp):
            self._remove_tmp()
            return
        try:
            os.replace(self._tmp, self.path)
        except OSError as e:
            self._remove_tmp()
            raise SinkError(f"cannot write video '{self.path}': {e.strerror}; check the"
                            f" target is writable") from e

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:  # a half-written file from a crash must not replace a good one
            self.abort()
        else:
            self.close()


class NullSink(Closing):
    """Discards frames and counts them (benchmarks, --frames runs, tests)."""

    name = "null"

    def __init__(self) -> None:
        self.frames = 0

    def send(self, frame: np.ndarray) -> None:
        self.frames += 1


# ---------------------------------------------------------------------------- dispatch

def open_sink(spec: str, *, width: int, height: int, fps: float, vcam_device: str = "") -> Sink:
    """'vcam' | 'preview' | 'null' | a video file path -> an opened sink."""
    kind = spec.strip()
    if kind.lower() == "vcam":
        return VirtualCameraSink(width=width, height=height, fps=fps, device=vcam_device)
    if kind.lower() == "preview":
        return PreviewSink()
    if kind.lower() == "null":
        return NullSink()
    if not kind:
        raise SinkError("empty sink: use vcam, preview, null or a video file path")
    return VideoFileSink(path=os.path.expanduser(kind), width=width, height=height, fps=fps)
