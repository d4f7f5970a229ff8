"""Cameras through cv2.VideoCapture: opening one, negotiating its mode, reading RGB frames.

This module is the only user of `cv2.VideoCapture`. Nothing here waits or paces: the runner
owns time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import cv2
import numpy as np

from backdrop.config import SourceConfig
from backdrop.errors import SourceError
from backdrop.io.frames import Closing, fit_frame, to_rgb
from backdrop.platform.v4l2 import list_cameras

NO_CAMERA_HINT = "use --source demo to try without a camera, or --camera /dev/videoN"


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


class CameraSource(Closing):
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
        return fit_frame(to_rgb(frame), self.width, self.height)

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

