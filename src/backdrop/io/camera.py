"""Cameras through cv2.VideoCapture: opening one, negotiating its mode, reading RGB frames.

This module is the only user of `cv2.VideoCapture`. Nothing here waits or paces: the runner
owns time.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from backdrop.config import SourceConfig
from backdrop.errors import SourceError
from backdrop.io.frames import Closing, fit_frame, to_rgb
from backdrop.platform import current, fourcc_text, v4l2

MAX_CAMERA_INDEX = 10  # where cameras only have numbers, how far to look for them


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
                       fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)))


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


def _open_capture(target: Any) -> Any:
    """cv2.VideoCapture through this system's camera API (V4L2, DirectShow, AVFoundation)."""
    return cv2.VideoCapture(target, getattr(cv2, current().capture_api, cv2.CAP_ANY))


def _no_camera_hint() -> str:
    return f"use --source demo to try without a camera, or {current().pick_camera}"


def list_cameras() -> List[dict]:
    """Cameras a user can pick with --camera: [{'id', 'name', 'driver'}], id being what
    --camera takes. Linux asks V4L2 (names included, virtual cameras left out). Elsewhere
    OpenCV can neither name cameras nor tell a virtual one (OBS's) from a real one, so the
    indices that open are listed, up to the first that does not, as 'camera N'."""
    if current().device_nodes:
        return [{"id": c["path"], "name": c["name"], "driver": c["driver"]}
                for c in v4l2.list_cameras()]
    found = []
    for index, cap in _indices():
        width, height = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
        cap.release()
        found.append({"id": str(index), "name": f"camera {index}",
                      "driver": current().capture_api[len("CAP_"):],
                      "size": (int(width or 0), int(height or 0))})
    return found


def _indices(capture_factory: Callable[[Any], Any] = _open_capture,
             limit: int = MAX_CAMERA_INDEX) -> Iterator[Tuple[int, Any]]:
    """(index, opened capture) for camera 0, 1, ... until one does not open. The caller
    releases each capture it gets."""
    for index in range(limit):
        with _opencv_quiet():  # a missing index is how the scan ends: not worth a warning
            cap = capture_factory(index)
        if not cap.isOpened():
            cap.release()
            return
        yield index, cap


@contextlib.contextmanager
def _opencv_quiet() -> Iterator[None]:
    set_level = getattr(cv2, "setLogLevel", None)
    before = set_level(1) if set_level else None  # 1: fatal errors only
    try:
        yield
    finally:
        if set_level:
            set_level(before)


def _camera_target(spec: str) -> Tuple[Any, str]:
    """What to open and what to call it. Linux: '0' -> (0, '/dev/video0'), '/dev/video2' as
    is, a name (from `backdrop devices`) -> its node. Elsewhere cameras have only numbers."""
    system = current()
    if spec.isdigit():
        return int(spec), (f"/dev/video{int(spec)}" if system.device_nodes else spec)
    if not system.device_nodes:
        raise SourceError(f"camera '{spec}': on {system.name} cameras are picked by number,"
                          f" {system.pick_camera} (see `backdrop devices`)")
    if "/" not in spec:  # a name as `backdrop devices` shows it
        named = [c["id"] for c in list_cameras() if c["name"].lower() == spec.lower()]
        if not named:
            raise SourceError(f"no camera named '{spec}'; list cameras with `backdrop devices`,"
                              f" or {_no_camera_hint()}")
        return named[0], named[0]
    return spec, spec


def open_camera(cfg: SourceConfig, *,
                capture_factory: Callable[[Any], Any] = _open_capture) -> CameraSource:
    """Open cfg.camera ('auto', an index, a device path or name) and adopt the mode it
    delivers."""
    spec = cfg.camera.strip() or "auto"
    if spec == "auto":
        if not current().device_nodes:
            return _open_first_index(cfg, capture_factory)
        return _open_first_camera(cfg, capture_factory)
    target, label = _camera_target(spec)
    if current().device_nodes:
        if not os.path.exists(label):
            raise SourceError(f"camera {label} not found; list cameras with `backdrop"
                              f" devices`, or {_no_camera_hint()}")
        if not os.access(label, os.R_OK):
            raise SourceError(f"no permission to read camera {label}:"
                              f" {current().camera_access_fix}")
    return _open_one(target, label, cfg, capture_factory)


def _open_one(target: Any, label: str, cfg: SourceConfig,
              capture_factory: Callable[[Any], Any]) -> CameraSource:
    return _adopt(capture_factory(target), label, cfg)


def _adopt(cap: Any, label: str, cfg: SourceConfig) -> CameraSource:
    """Negotiate the mode of an opened capture; release it and explain when that fails."""
    system = current()
    # Where the OS guards cameras with a privacy switch, a refused app sees a camera that
    # does not open (macOS) or delivers nothing (Windows): name that switch too.
    access = "" if system.device_nodes else f", {system.camera_access_fix}"
    try:
        if not cap.isOpened():
            raise SourceError("cannot be opened")
        mode = negotiate_capture(cap, width=cfg.width, height=cfg.height,
                                 fps=cfg.fps, mjpg=cfg.mjpg)
    except SourceError as e:
        cap.release()
        raise SourceError(f"camera {label} {e}: close other apps using it{access}, or pick"
                          f" another with {system.pick_camera}") from e
    except cv2.error as e:  # OpenCV's text spans lines and names C++ files: keep it chained
        cap.release()
        raise SourceError(f"camera {label} refused to start capturing: close other apps"
                          f" using it{access}, or pick another with {system.pick_camera}") from e
    return CameraSource(capture=cap, mode=mode, label=label)


def _open_first_camera(cfg: SourceConfig, capture_factory: Callable[[Any], Any]) -> CameraSource:
    """Linux: the first V4L2 camera we may read that delivers frames."""
    tried, denied = [], []
    last: Optional[Exception] = None
    for cam in list_cameras():
        if not os.access(cam["id"], os.R_OK):
            denied.append(cam["id"])
            continue
        try:
            return _open_one(cam["id"], cam["id"], cfg, capture_factory)
        except SourceError as e:
            tried.append(cam["id"])
            last = e
    if denied:
        raise SourceError(f"no permission to read camera {', '.join(denied)}:"
                          f" {current().camera_access_fix}") from last
    where = f" ({', '.join(tried)} delivered no frame)" if tried else ""
    raise SourceError(f"no camera found{where}; {_no_camera_hint()}") from last


def _open_first_index(cfg: SourceConfig, capture_factory: Callable[[Any], Any]) -> CameraSource:
    """Windows, macOS: camera 0, 1, ... until one delivers frames or one does not open."""
    tried: List[str] = []
    last: Optional[Exception] = None
    for index, cap in _indices(capture_factory):
        try:
            return _adopt(cap, str(index), cfg)
        except SourceError as e:
            tried.append(str(index))
            last = e
    where = f" (camera {', '.join(tried)} delivered no frame)" if tried else ""
    raise SourceError(f"no camera found{where}; if one is plugged in,"
                      f" {current().camera_access_fix}; or {_no_camera_hint()}") from last
