"""Frame sources: camera, video file, still image, folder of frames, built-in demo.

Every source hands out `(height, width, 3) uint8` RGB, C-contiguous, at the size it reports.
This module is the only user of `cv2.VideoCapture`; colour conversion and resizing of device
frames happen here and nowhere downstream. Nothing here waits or paces: the runner owns time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional, Protocol, Tuple

import cv2
import numpy as np

from backdrop.config import SourceConfig
# Device scanning lives in devices.py; the other names stay importable from here.
from backdrop.platform.v4l2 import (_V4L2_CAP_FMT, list_cameras, parse_v4l2_capability,  # noqa: F401
                      scan_video_devices)
from backdrop.errors import InputError, SourceError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
ASTRONAUT = Path(__file__).resolve().parents[1] / "assets" / "astronaut.png"
NO_CAMERA_HINT = "use --source demo to try without a camera, or --camera /dev/videoN"


class Source(Protocol):
    width: int
    height: int
    fps: float
    realtime: bool
    name: str

    def read(self) -> Optional[np.ndarray]: ...

    def close(self) -> None: ...


class _Closing:
    """Context-manager plumbing shared by every source; close() holds nothing by default."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        pass


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """OpenCV's BGR (or grey/BGRA) -> a new C-contiguous RGB array."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Keep the promise of a fixed size when a stream changes resolution mid-way."""
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    shrink = frame.shape[1] > width
    return cv2.resize(frame, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


# ---------------------------------------------------------------------------- camera

def _fourcc_text(value: float) -> str:
    code = int(value) if value and math.isfinite(value) else 0
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip("\0 ") if text.isprintable() else ""


@dataclass(frozen=True)
class CaptureMode:
    width: int
    height: int
    fps: float
    fourcc: str


def negotiate_capture(cap: Any, *, width: int, height: int, fps: float, mjpg: bool,
                      first_frame_tries: int = 5) -> CaptureMode:
    """Ask an opened capture for a mode, then adopt what it actually delivers.

    Cameras silently fall back to another size or rate when they refuse the request; trusting
    the request is a known crash in peers. The first real frame is the final word on size.
    Raises SourceError (message without the device name) if no frame arrives.
    """
    if mjpg:
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    cap.set(cv2.CAP_PROP_FPS, fps)
    # A one-frame driver queue keeps latency at one frame instead of four.
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    frame = None
    for _ in range(max(1, first_frame_tries)):  # the first reads after a mode switch may fail
        ok, frame = cap.read()
        if ok and frame is not None and frame.size:
            break
        frame = None
    if frame is None:
        raise SourceError("opened but delivered no frame")
    real_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
    if not (math.isfinite(real_fps) and 0 < real_fps <= 1000):
        real_fps = float(fps)
    return CaptureMode(int(frame.shape[1]), int(frame.shape[0]), real_fps,
                       _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)))


class CameraSource(_Closing):
    """A live camera; the device paces frames (realtime)."""

    realtime = True

    def __init__(self, *, capture: Any, mode: CaptureMode, label: str) -> None:
        self._cap = capture
        self.label = label
        self.width, self.height, self.fps = mode.width, mode.height, mode.fps
        fourcc = f" {mode.fourcc}" if mode.fourcc else ""
        self.name = f"camera {label} {mode.width}x{mode.height}{fourcc} {mode.fps:g}fps"

    def read(self) -> Optional[np.ndarray]:
        if self._cap is None:
            raise SourceError(f"camera {self.label} was closed; open the source again")
        try:
            ok, frame = self._cap.read()
        except cv2.error as e:
            raise SourceError(f"camera {self.label} failed to deliver a frame: check it is"
                              f" plugged in and not in use by another app") from e
        if not ok or frame is None:
            raise SourceError(
                f"camera {self.label} stopped delivering frames: check it is plugged in"
                f" and not in use by another app")
        return _fit(to_rgb(frame), self.width, self.height)

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


def _open_capture_v4l2(target: Any) -> Any:
    return cv2.VideoCapture(target, cv2.CAP_V4L2)


def _camera_target(spec: str) -> Tuple[Any, str]:
    """'0' -> (0, '/dev/video0'); '/dev/video2' -> ('/dev/video2', '/dev/video2')."""
    if spec.isdigit():
        return int(spec), f"/dev/video{int(spec)}"
    return spec, spec


def open_camera(cfg: SourceConfig, *,
                capture_factory: Callable[[Any], Any] = _open_capture_v4l2) -> CameraSource:
    """Open cfg.camera ('auto', an index or a path) and adopt the mode it delivers."""
    spec = cfg.camera.strip() or "auto"
    if spec == "auto":
        return _open_first_camera(cfg, capture_factory)
    target, label = _camera_target(spec)
    if not os.path.exists(label):
        raise SourceError(f"camera {label} not found; list cameras with `backdrop devices`,"
                          f" or {NO_CAMERA_HINT}")
    if not os.access(label, os.R_OK):
        raise SourceError(f"no permission to read camera {label}: run"
                          f" `sudo usermod -aG video $USER` and log in again")
    return _open_one(target, label, cfg, capture_factory)


def _open_one(target: Any, label: str, cfg: SourceConfig,
              capture_factory: Callable[[Any], Any]) -> CameraSource:
    cap = capture_factory(target)
    try:
        if not cap.isOpened():
            raise SourceError("cannot be opened")
        mode = negotiate_capture(cap, width=cfg.width, height=cfg.height,
                                 fps=cfg.fps, mjpg=cfg.mjpg)
    except SourceError as e:
        cap.release()
        raise SourceError(f"camera {label} {e}: close other apps using it, or pick another"
                          f" with --camera /dev/videoN") from e
    except cv2.error as e:  # OpenCV's text spans lines and names C++ files: keep it chained
        cap.release()
        raise SourceError(f"camera {label} refused to start capturing: close other apps"
                          f" using it, or pick another with --camera /dev/videoN") from e
    return CameraSource(capture=cap, mode=mode, label=label)


def _open_first_camera(cfg: SourceConfig, capture_factory: Callable[[Any], Any]) -> CameraSource:
    tried, denied = [], []
    last: Optional[Exception] = None
    for cam in list_cameras():
        if not os.access(cam["path"], os.R_OK):
            denied.append(cam["path"])
            continue
        try:
            return _open_one(cam["path"], cam["path"], cfg, capture_factory)
        except SourceError as e:
            tried.append(cam["path"])
            last = e
    if denied:
        raise SourceError(f"no permission to read camera {', '.join(denied)}: run"
                          f" `sudo usermod -aG video $USER` and log in again") from last
    where = f" ({', '.join(tried)} delivered no frame)" if tried else ""
    raise SourceError(f"no camera found{where}; {NO_CAMERA_HINT}") from last


# ---------------------------------------------------------------------------- files

def _unreadable(kind: str, path: str) -> InputError:
    if kind == "video":
        fix = f"re-encode it, e.g. ffmpeg -i '{path}' fixed.mp4"
    else:
        fix = "convert it to jpg, png, webp, bmp or tif"
    return InputError(f"{kind} '{path}' cannot be decoded (corrupt or unsupported format); {fix}")


def _file_fps(value: float, fallback: float) -> float:
    return float(value) if value and math.isfinite(value) and 0 < value <= 1000 else float(fallback)


class VideoFileSource(_Closing):
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
        return _fit(to_rgb(frame), self.width, self.height)

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


class ImageSource(_Closing):
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


class FrameFolderSource(_Closing):
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
        return _fit(frame, self.width, self.height)


# ---------------------------------------------------------------------------- demo

# Where the astronaut's face is in the 512x512 portrait: the framing anchor.
_FACE_XY = (225.0, 120.0)


class DemoSource(_Closing):
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
