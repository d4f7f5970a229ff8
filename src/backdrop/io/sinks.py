"""Frame sinks: virtual camera, preview window, video file, null.

Sinks take `(H, W, 3) uint8` RGB and do whatever the device needs (BGR for OpenCV, even sizes
for virtual-camera readers, resizing to the size they were opened with). Nothing here waits or
paces: the runner owns time. pyvirtualcam and OpenCV's GUI are only touched when used.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any, Callable, Optional, Protocol

import cv2
import numpy as np

from backdrop.errors import SinkError, VirtualCameraError
from backdrop.platform.v4l2 import list_virtual_cameras, loopback_parameters  # noqa: F401 (re-exported)
from backdrop.io.sources import _Closing

MODPROBE = 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="backdrop"'
NO_LOOPBACK = ("no virtual camera: v4l2loopback is not loaded. Fix: sudo apt install"
               f" v4l2loopback-dkms && {MODPROBE}")
VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}  # verified here
KEY_NAMES = {27: "esc", 32: "space", 13: "enter", 10: "enter", 9: "tab", 8: "backspace",
             127: "backspace"}


class Sink(Protocol):
    name: str

    def send(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...


def even(n: int) -> int:
    """Largest even size <= n (and at least 2): 4:2:0 readers and encoders need even sizes."""
    return max(2, int(n) - int(n) % 2)


def fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Make a frame exactly width x height: crop the odd pixel, else resize; never crash."""
    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    if w - width in (0, 1) and h - height in (0, 1):
        return np.ascontiguousarray(frame[:height, :width])
    shrink = w > width or h > height
    return cv2.resize(frame, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame)
        raise TypeError(f"expected an (H, W, 3) uint8 RGB frame, got {got}")


# ---------------------------------------------------------------------------- virtual camera

def _vcam_message(error: str, device: str) -> str:
    """One line naming what is wrong with the virtual camera and how to fix it."""
    text = error.lower()
    what = f"virtual camera {device}" if device else "the virtual camera"
    pick = "or pick another with --vcam-device /dev/videoN (see `backdrop devices`)"
    if "permission" in text or (device and os.path.exists(device)
                                and not os.access(device, os.W_OK)):
        return (f"no permission to write {what}. Fix: sudo usermod -aG video $USER and log"
                f" in again")
    if "busy" in text:
        return f"{what} is busy: close the other program sending to it, {pick}"
    if "no v4l2 loopback device found" in text or "modprobe v4l2loopback" in text:
        return _no_free_loopback()
    if "does not exist" in text or (device and not os.path.exists(device)):
        return (f"{what} does not exist. Fix: pick one listed by `backdrop devices`, or create"
                f" one: {MODPROBE}")
    if "not a video output device" in text and _is_loopback(device):
        # With exclusive_caps=1 a loopback node stops offering output once a writer has it.
        return f"{what} is busy: close the other program sending to it, {pick}"
    if device and ("not a v4l2 device" in text or "not a video output device" in text
                   or "could not be queried" in text or "could not be opened" in text):
        return (f"{device} is not a v4l2loopback device (a real camera or another file). Fix:"
                f" pick one listed by `backdrop devices`, or create one: {MODPROBE}")
    # pyvirtualcam puts one "'backend' backend: reason" line per backend it tried.
    reasons = [line.split("backend: ", 1)[-1].strip() for line in error.splitlines()]
    reason = "; ".join(r.rstrip(".") for r in reasons if r) or "unknown error"
    return f"{what} cannot be opened: {reason}. Fix: {MODPROBE}"


def _no_free_loopback() -> str:
    """Why pyvirtualcam's scan of /dev/video* found no loopback device it could use."""
    vcams = list_virtual_cameras()
    denied = [d["path"] for d in vcams if not d["writable"]]
    if denied:  # pyvirtualcam's scan skips nodes it cannot open
        return (f"no permission to write the virtual camera {', '.join(denied)}. Fix:"
                f" sudo usermod -aG video $USER and log in again")
    if vcams:  # loopback is loaded, but every device already has a writer
        return (f"every virtual camera ({', '.join(d['path'] for d in vcams)}) is in use"
                f" by another program. Fix: close it, or add one: sudo modprobe -r"
                f" v4l2loopback && {MODPROBE}")
    if loopback_parameters() is not None:
        return ("no virtual camera: v4l2loopback is loaded but has no devices. Fix: sudo"
                f" modprobe -r v4l2loopback && {MODPROBE}")
    return NO_LOOPBACK


def _is_loopback(device: str) -> bool:
    return any(d["path"] == device for d in list_virtual_cameras())


class VirtualCameraSink(_Closing):
    """Publishes frames on a v4l2loopback device (OBS's virtual camera elsewhere)."""

    def __init__(self, *, width: int, height: int, fps: float, device: str = "",
                 camera_factory: Optional[Callable[..., Any]] = None) -> None:
        # Odd sizes break some readers (and I420 halves the chroma grid): drop the odd pixel.
        self.width, self.height, self.fps = even(width), even(height), float(fps)
        try:
            import pyvirtualcam
        except ImportError as e:
            raise VirtualCameraError("pyvirtualcam cannot be imported; reinstall backdrop"
                                     " (pip install pyvirtualcam)") from e
        factory = camera_factory or pyvirtualcam.Camera
        backend = "v4l2loopback" if sys.platform.startswith("linux") else None
        try:
            self._cam = factory(self.width, self.height, self.fps,
                                fmt=pyvirtualcam.PixelFormat.RGB,
                                device=device or None, backend=backend)
        except Exception as e:  # pyvirtualcam raises RuntimeError; backends may raise more
            raise VirtualCameraError(_vcam_message(str(e), device)) from e
        self.device = str(getattr(self._cam, "device", device) or device)
        self.name = f"virtual camera {self.device} {self.width}x{self.height} {self.fps:g}fps"
        try:  # the device number, to notice later that the node went away or was replaced
            self._rdev: Optional[int] = os.stat(self.device).st_rdev if self.device else None
        except OSError:
            self._rdev = None

    def send(self, frame: np.ndarray) -> None:
        if self._cam is None:
            raise SinkError(f"{self.name} was closed; open the sink again")
        _check_frame(frame)
        frame = np.ascontiguousarray(fit_frame(frame, self.width, self.height))
        try:
            self._cam.send(frame)
        except Exception as e:
            raise SinkError(f"writing to the virtual camera {self.device} failed: the device"
                            f" went away or was reconfigured") from e

    def check(self) -> None:
        """Raise SinkError if the device node went away or was replaced.

        pyvirtualcam only prints a failed write to stderr, so the runner calls this now and
        then to notice a lost device and reopen it.
        """
        if self._rdev is None:
            return
        try:
            rdev = os.stat(self.device).st_rdev
        except OSError as e:
            raise SinkError(f"the virtual camera {self.device} went away (v4l2loopback device"
                            f" removed)") from e
        if rdev != self._rdev:
            raise SinkError(f"the virtual camera {self.device} was replaced by another device")

    def close(self) -> None:
        cam, self._cam = getattr(self, "_cam", None), None
        if cam is not None:
            cam.close()


# ---------------------------------------------------------------------------- preview

def display_available() -> bool:
    """True when a preview window can be shown.

    On Linux that means an X server we can reach: OpenCV's wheel ships only Qt's xcb plugin,
    so a Wayland session without XWayland (or a stale DISPLAY) cannot show a window, and Qt
    aborts the process instead of raising when it tries.
    """
    if not sys.platform.startswith("linux"):
        return True
    display = os.environ.get("DISPLAY", "")
    return bool(display) and x_display_reachable(display)


def x_display_reachable(display: str) -> bool:
    """Can the X server named by DISPLAY be connected to?

    OpenCV's Qt backend aborts the whole process when it cannot, so ask first.
    """
    host, _, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if not number.isdigit():
        return False
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        targets = [(socket.AF_UNIX, "\0" + path), (socket.AF_UNIX, path)]
    else:
        targets = [(socket.AF_INET, (host, 6000 + int(number)))]
    for family, address in targets:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(address)
                return True
        except OSError:
            continue
    return False


# Resizable, keeps the aspect ratio, and without Qt's toolbar and status bar (GUI_NORMAL).
_WINDOW_FLAGS = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL


class PreviewSink(_Closing):
    """An OpenCV window showing the output; also where hotkeys come from."""

    def __init__(self, *, title: str = "backdrop") -> None:
        if not display_available():
            display = os.environ.get("DISPLAY", "")
            why = (f"cannot connect to X display {display}" if display else
                   "DISPLAY is not set (XWayland is needed on Wayland)")
            raise SinkError(f"no display for the preview window: {why}; use --sink vcam or"
                            f" a file, or run under a desktop session")
        self.title = title
        self.name = f"preview window '{title}'"
        self._shown = False
        self._closed = False
        self._key: Optional[str] = None

    def send(self, frame: np.ndarray) -> None:
        if self._closed or self.closed:
            return  # imshow would bring back the window the user just closed
        _check_frame(frame)
        try:
            if not self._shown:
                cv2.namedWindow(self.title, _WINDOW_FLAGS)
                cv2.resizeWindow(self.title, frame.shape[1], frame.shape[0])
            cv2.imshow(self.title, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        except cv2.error as e:
            raise SinkError("the preview window cannot be shown: OpenCV has no GUI here;"
                            " use --sink vcam or a file") from e
        self._shown = True
        # The window only paints while events are pumped; keep a key pressed meanwhile.
        key = self._wait_key()
        self._key = key or self._key

    def _wait_key(self) -> Optional[str]:
        code = cv2.waitKey(1)
        if code is None or code < 0:
            return None
        if code in KEY_NAMES:
            return KEY_NAMES[code]
        return chr(code).lower() if 33 <= code <= 126 else None

    def poll_key(self) -> Optional[str]:
        """The key pressed since the last call ('q', 'b', 'esc', 'space', ...) or None."""
        if not self._shown or self._closed:
            return None
        key, self._key = self._key, None
        return key or self._wait_key()

    @property
    def closed(self) -> bool:
        """True once the user closed the window (or close() was called)."""
        if self._closed:
            return True
        if not self._shown:
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._shown:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)  # lets the GUI process the destroy before we go
            except cv2.error:
                pass


# ---------------------------------------------------------------------------- files

def _partial_path(path: str) -> str:
    """Hidden temp file beside the target, keeping the extension (OpenCV picks the container
    from it): out/clip.mp4 -> out/.clip.partial.mp4."""
    folder, base = os.path.split(path)
    stem, ext = os.path.splitext(base)
    return os.path.join(folder, f".{stem}.partial{ext}")


class VideoFileSink(_Closing):
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
        _check_frame(frame)
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


class NullSink(_Closing):
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
