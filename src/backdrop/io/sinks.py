"""Frame sinks: the Sink protocol, the null sink, and `open_sink`, which opens any sink by name.

Sinks take `(H, W, 3) uint8` RGB and do whatever the device needs (BGR for OpenCV, even sizes
for virtual-camera readers, resizing to the size they were opened with). Nothing here waits or
paces: the runner owns time. The virtual camera is in vcam.py, the preview window in
preview.py, the video file in videowrite.py (the same writer `backdrop video` uses).
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from backdrop.errors import SinkError
from backdrop.io.frames import Closing
from backdrop.io.preview import PreviewSink
from backdrop.io.vcam import VirtualCameraSink


class Sink(Protocol):
    name: str

    def send(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...


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
    from backdrop.io.videowrite import VideoFileSink   # PyAV loads only when a file is written

    return VideoFileSink(os.path.expanduser(kind), width=width, height=height, fps=fps,
                         live=True)
