"""The virtual camera through pyvirtualcam (v4l2loopback on Linux, OBS's virtual camera on
Windows and macOS, or Unity Capture on Windows), with one-line errors that name the cause and
that system's fix."""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

import numpy as np

from backdrop.errors import SinkError, VirtualCameraError
from backdrop.io.frames import Closing, check_frame, even, fit_frame
from backdrop.platform import LINUX, MODPROBE, WINDOWS, current
from backdrop.platform.v4l2 import list_virtual_cameras, loopback_parameters

NO_LOOPBACK = f"no virtual camera: v4l2loopback is not loaded. Fix: {LINUX.vcam_fix}"


def _reasons(error: str, *, backends: bool = False) -> str:
    """pyvirtualcam puts one "'backend' backend: reason" line per backend it tried: one
    line of them, naming the backends when several were tried."""
    reasons = []
    for line in error.splitlines():
        name, sep, reason = line.partition(" backend: ")
        name, reason = (name, reason) if sep else ("", line)
        reason = reason.strip().rstrip(".")
        if reason:
            reasons.append(f"{name.strip(chr(39))}: {reason}" if backends and name else reason)
    return "; ".join(reasons) or "unknown error"


def _vcam_message(error: str, device: str) -> str:
    """One line naming what is wrong with the virtual camera and how to fix it here."""
    if current().device_nodes:
        return _loopback_message(error, device)
    return _obs_message(error, device)


def _obs_message(error: str, device: str) -> str:
    """Windows and macOS: OBS's virtual camera (or Unity Capture) and pyvirtualcam's texts."""
    system, text = current(), error.lower()
    if "multiple cameras" in text or "could not be started" in text:
        # macOS allows one sender per process; on Windows the shared queue already has one.
        return ("the virtual camera is in use: stop OBS's own virtual camera (Stop Virtual"
                " Camera) or the other program sending to it, then try again")
    if device and ("supports only" in text or "registered with this name" in text):
        unity = " (or name a Unity Capture device)" if system is WINDOWS else ""
        return (f"there is no virtual camera named '{device}' on {system.name}: leave out"
                f" --vcam-device to use OBS Virtual Camera{unity}")
    return f"no virtual camera ({_reasons(error, backends=True)}). Fix: {system.vcam_fix}"


def _loopback_message(error: str, device: str) -> str:
    """Linux: what is wrong with the v4l2loopback device."""
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
    return f"{what} cannot be opened: {_reasons(error)}. Fix: {MODPROBE}"


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


class VirtualCameraSink(Closing):
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
        system = current()
        try:
            self._cam = factory(self.width, self.height, self.fps,
                                fmt=pyvirtualcam.PixelFormat.RGB,
                                device=device or None, backend=system.vcam_backend)
        except Exception as e:  # pyvirtualcam raises RuntimeError; backends may raise more
            raise VirtualCameraError(_vcam_message(str(e), device)) from e
        self.device = str(getattr(self._cam, "device", device) or device)
        self.name = f"virtual camera {self.device} {self.width}x{self.height} {self.fps:g}fps"
        self._rdev: Optional[int] = None
        if system.device_nodes and self.device:  # elsewhere the device is a name, not a file
            try:  # the device number, to notice later that the node went away or was replaced
                self._rdev = os.stat(self.device).st_rdev
            except OSError:
                self._rdev = None

    def send(self, frame: np.ndarray) -> None:
        if self._cam is None:
            raise SinkError(f"{self.name} was closed; open the sink again")
        check_frame(frame)
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

