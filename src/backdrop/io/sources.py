"""Frame sources: camera, video file, still image, folder of frames, built-in demo.

Every source hands out `(height, width, 3) uint8` RGB, C-contiguous, at the size it reports.
Cameras are in camera.py; colour conversion and resizing of device frames happen in io and
nowhere downstream. Nothing here waits or paces: the runner owns time.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Protocol

import cv2
import numpy as np

from backdrop.config import SourceConfig
from backdrop.errors import InputError
from backdrop.io.camera import open_camera
from backdrop.io.frames import Closing, fit_frame, to_rgb
from backdrop.io.images import is_image_path, read_rgb
from backdrop.io.video import nothing_decoded, open_reader

ASTRONAUT = Path(__file__).resolve().parents[1] / "assets" / "astronaut.png"


class Source(Protocol):
    width: int
    height: int
    fps: float
    realtime: bool
    name: str

    def read(self) -> Optional[np.ndarray]: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------- files

class FileSource(Closing):
    """A video file or a folder of frames, played once or looping, read through io/video.py
    (the reader `backdrop video` uses). Frames keep the first frame's size; the runner paces
    them at `fps` (the file's own rate, else the configured one). A truncated or damaged
    video ends where it stops decoding; looping starts it over."""

    realtime = False

    def __init__(self, *, path: str, loop: bool, fps: float) -> None:
        self.path, self.loop, self._fps = str(path), loop, fps
        self._reader = None
        self._open()
        first = self._next()
        if first is None:
            error = nothing_decoded(self._reader)
            self.close()
            raise error
        self._pending: Optional[np.ndarray] = first
        self.height, self.width = first.shape[:2]
        self.fps = float(self._reader.fps)
        self.frame_count: Optional[int] = self._reader.expected or None
        self.name = (f"{self._reader.label} {self.width}x{self.height} {self.fps:g}fps"
                     f"{' (looping)' if loop else ''}")

    def _open(self) -> None:
        self._reader = open_reader(self.path, self._fps)
        self._frames = self._reader.frames()
        self.last_name: Optional[str] = None   # the name (file stem) of the last frame read

    def _next(self) -> Optional[np.ndarray]:
        item = next(self._frames, None)
        if item is None:
            return None
        self.last_name = item[2]
        return item[0]

    def read(self) -> Optional[np.ndarray]:
        if self._reader is None:
            return None
        frame, self._pending = self._pending, None
        if frame is None:
            frame = self._next()
        if frame is None and self.loop:
            # Opening again is the one rewind that works for every container and for a file
            # cut short; measured here it costs about what seeking back does (most of it is
            # decoding up to the first frame, which both must do).
            self._reader.close()
            self._open()
            frame = self._next()
            if frame is None:
                raise nothing_decoded(self._reader)
        if frame is None:
            return None
        return fit_frame(frame, self.width, self.height)

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()


class ImageSource(Closing):
    """A still image repeated forever; the same read-only array every time."""

    realtime = False

    def __init__(self, *, path: str, fps: float) -> None:
        self.path = str(path)
        self._frame = read_rgb(self.path)   # EXIF orientation applied
        self._frame.flags.writeable = False
        self.height, self.width = self._frame.shape[:2]
        self.fps = float(fps)
        self.frame_count: Optional[int] = None
        self.name = f"image {self.path} {self.width}x{self.height}"

    def read(self) -> Optional[np.ndarray]:
        return self._frame


# ---------------------------------------------------------------------------- demo

# Where the astronaut's face is in the 512x512 portrait: the framing anchor.
_FACE_XY = (225.0, 120.0)


class DemoSource(Closing):
    """The NASA astronaut portrait framed like a webcam shot, with a slow deterministic sway."""

    realtime = False

    def __init__(self, *, width: int, height: int, fps: float,
                 image_path: Path = ASTRONAUT) -> None:
        bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"demo picture '{image_path}' is missing; reinstall backdrop")
        self._src = to_rgb(bgr)
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.frame_count: Optional[int] = None
        self.index = 0
        sh, sw = self._src.shape[:2]
        # Cover the frame, then place the face on the centre line, 40% down (headroom above),
        # clamped so the picture always covers the frame before the sway.
        self._scale = max(self.width / sw, self.height / sh)
        fx, fy = _FACE_XY
        self._ox = min(0.0, max(self.width - sw * self._scale, self.width / 2 - fx * self._scale))
        self._oy = min(0.0, max(self.height - sh * self._scale,
                                0.4 * self.height - fy * self._scale))
        # Warping straight to 1080p costs ~12 ms on one core; warping to a grid that still
        # oversamples the 512-px portrait 1.25x and enlarging with resize costs ~3 ms.
        self._step = max(1, int(self._scale / 1.25))
        self.name = f"demo (astronaut) {self.width}x{self.height} {self.fps:g}fps"

    def frame_at(self, index: int) -> np.ndarray:
        """The frame shown at `index`: a pure function of the index."""
        t = index / self.fps
        zoom = 1.02 + 0.02 * math.sin(2 * math.pi * t / 9.0)  # never below 1: stays covered
        amp = max(2.0, 0.005 * self.width)
        dx = amp * math.sin(2 * math.pi * t / 7.0)
        dy = 0.6 * amp * math.sin(2 * math.pi * t / 5.0 + 1.0)
        cx, cy, k = self.width / 2, self.height / 2, self._step
        a = zoom * self._scale / k
        tx = (zoom * (self._ox - cx) + cx + dx) / k
        ty = (zoom * (self._oy - cy) + cy + dy) / k
        matrix = np.array([[a, 0.0, tx], [0.0, a, ty]], dtype=np.float64)
        size = (math.ceil(self.width / k), math.ceil(self.height / k))
        out = cv2.warpAffine(self._src, matrix, size, flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
        if k > 1:
            out = cv2.resize(out, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        return out

    def read(self) -> Optional[np.ndarray]:
        frame = self.frame_at(self.index)
        self.index += 1
        return frame


# ---------------------------------------------------------------------------- dispatch

def open_source(cfg: SourceConfig) -> Source:
    """The source cfg describes: camera (cfg.source empty), 'demo', or a path."""
    spec = cfg.source.strip()
    if not spec:
        return open_camera(cfg)
    if spec.lower() == "demo":
        return DemoSource(width=cfg.width, height=cfg.height, fps=cfg.fps)
    path = os.path.expanduser(spec)
    if not os.path.exists(path):
        raise InputError(f"source '{spec}' not found; give a video, an image, a folder of"
                         f" frames, or 'demo'")
    if not os.access(path, os.R_OK):
        raise InputError(f"source '{spec}' cannot be read: no permission; check its mode")
    if not os.path.isdir(path) and is_image_path(path):
        return ImageSource(path=path, fps=cfg.fps)
    return FileSource(path=path, loop=cfg.loop, fps=cfg.fps)
