"""Frame sources: camera, video file, still image, folder of frames, built-in demo.

Every source hands out `(height, width, 3) uint8` RGB, C-contiguous, at the size it reports.
Cameras are in camera.py; colour conversion and resizing of device frames happen in io and
nowhere downstream. Nothing here waits or paces: the runner owns time.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, List, Optional, Protocol

import cv2
import numpy as np

from backdrop.config import SourceConfig
from backdrop.errors import InputError
from backdrop.io.camera import open_camera
from backdrop.io.frames import Closing, fit_frame, to_rgb

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
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

def _unreadable(kind: str, path: str) -> InputError:
    if kind == "video":
        fix = f"re-encode it, e.g. ffmpeg -i '{path}' fixed.mp4"
    else:
        fix = "convert it to jpg, png, webp, bmp or tif"
    return InputError(f"{kind} '{path}' cannot be decoded (corrupt or unsupported format); {fix}")


def _file_fps(value: float, fallback: float) -> float:
    return float(value) if value and math.isfinite(value) and 0 < value <= 1000 else float(fallback)


class VideoFileSource(Closing):
    """A video file, optionally looping; the runner paces it at `fps`."""

    realtime = False

    def __init__(self, *, path: str, loop: bool, fallback_fps: float) -> None:
        self.path, self.loop = str(path), loop
        self._cap = None
        self._cap = self._open()
        ok, frame = self._cap.read()
        if not ok or frame is None:
            self.close()
            raise _unreadable("video", self.path)
        self._pending: Optional[np.ndarray] = frame
        self.height, self.width = int(frame.shape[0]), int(frame.shape[1])
        self.fps = _file_fps(self._cap.get(cv2.CAP_PROP_FPS), fallback_fps)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: Optional[int] = count if count > 0 else None
        self._ended = False
        self.name = (f"video {self.path} {self.width}x{self.height} {self.fps:g}fps"
                     f"{' (looping)' if loop else ''}")

    def _open(self) -> Any:
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            cap.release()
            raise _unreadable("video", self.path)
        return cap

    def _rewind(self) -> Optional[np.ndarray]:
        """Back to the first frame; reopen when the container refuses to seek."""
        if self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
            ok, frame = self._cap.read()
            if ok and frame is not None:
                return frame
        self._cap.release()
        self._cap = self._open()
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise _unreadable("video", self.path)
        return frame

    def read(self) -> Optional[np.ndarray]:
        if self._ended or self._cap is None:
            return None
        frame, self._pending = self._pending, None
        if frame is None:
            ok, frame = self._cap.read()
            # A truncated file also ends here: for a one-shot source that is the end of stream.
            if not ok or frame is None:
                if not self.loop:
                    self._ended = True
                    return None
                frame = self._rewind()
        return fit_frame(to_rgb(frame), self.width, self.height)

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


class ImageSource(Closing):
    """A still image repeated forever; the same read-only array every time."""

    realtime = False

    def __init__(self, *, path: str, fps: float) -> None:
        self.path = str(path)
        bgr = cv2.imread(self.path, cv2.IMREAD_COLOR)  # applies EXIF orientation
        if bgr is None:
            raise _unreadable("image", self.path)
        self._frame = to_rgb(bgr)
        self._frame.flags.writeable = False
        self.height, self.width = self._frame.shape[:2]
        self.fps = float(fps)
        self.frame_count: Optional[int] = None
        self.name = f"image {self.path} {self.width}x{self.height}"

    def read(self) -> Optional[np.ndarray]:
        return self._frame


def list_frame_files(folder: str) -> List[str]:
    """Image files in a folder, sorted by name (the order of a frame sequence)."""
    with os.scandir(folder) as it:
        names = [e.name for e in it
                 if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS]
    return [os.path.join(folder, n) for n in sorted(names)]


class FrameFolderSource(Closing):
    """A folder of frames played in name order; an unreadable frame is skipped."""

    realtime = False

    def __init__(self, *, folder: str, loop: bool, fps: float) -> None:
        self.folder, self.loop, self.fps = str(folder), loop, float(fps)
        self.files = list_frame_files(self.folder)
        if not self.files:
            raise InputError(f"folder '{self.folder}' has no frames; put images"
                             f" ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) in it")
        self.frame_count: Optional[int] = len(self.files)
        self._next = 0
        self.last_path: Optional[str] = None  # file of the frame read() returned last
        first = self._read_next(stop_at_end=True)
        if first is None:
            raise InputError(f"folder '{self.folder}': none of its {len(self.files)} images"
                             f" can be decoded; check the files")
        self.height, self.width = first.shape[:2]
        self._pending: Optional[np.ndarray] = first
        self.name = (f"frames {self.folder} ({len(self.files)} files)"
                     f" {self.width}x{self.height} {self.fps:g}fps")

    def _read_next(self, stop_at_end: bool) -> Optional[np.ndarray]:
        """Decode the next readable file; None at the end (or when nothing is readable)."""
        misses = 0
        while misses < len(self.files):
            if self._next >= len(self.files):
                if stop_at_end:
                    return None
                self._next = 0
            path = self.files[self._next]
            self._next += 1
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            if bgr is not None:
                self.last_path = path
                return to_rgb(bgr)
            misses += 1
        return None

    def read(self) -> Optional[np.ndarray]:
        frame, self._pending = self._pending, None
        if frame is None:
            frame = self._read_next(stop_at_end=not self.loop)
            if frame is None and self.loop:
                raise InputError(f"folder '{self.folder}': its images can no longer be"
                                 f" decoded; check the files")
        if frame is None:
            return None
        return fit_frame(frame, self.width, self.height)


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
    if os.path.isdir(path):
        return FrameFolderSource(folder=path, loop=cfg.loop, fps=cfg.fps)
    if not os.access(path, os.R_OK):
        raise InputError(f"source '{spec}' cannot be read: no permission; check its mode")
    if os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS:
        return ImageSource(path=path, fps=cfg.fps)
    return VideoFileSource(path=path, loop=cfg.loop, fallback_fps=cfg.fps)
