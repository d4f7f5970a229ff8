"""What differs per operating system, in one place: how cameras are opened and listed, which
virtual camera pyvirtualcam drives, the fix texts that name each system's settings, and
whether the live loop can tell who reads the virtual camera.

`current()` reads `sys.platform` at call time, so tests can simulate another system. Linux's
V4L2, /proc, inotify and v4l2loopback code is in v4l2.py, which imports nothing Linux-only at
module level. Only io and the live loop use this package; it imports nothing else from backdrop.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Optional

MODPROBE = 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="backdrop"'
GROUP_FIX = "sudo usermod -aG video $USER, then log out and back in"

_OBS = "OBS Studio (obsproject.com)"


@dataclass(frozen=True)
class System:
    """One operating system as backdrop sees it."""

    name: str                      # for messages: "Linux", "Windows", "macOS"
    capture_api: str               # the cv2.CAP_* backend cameras are opened with
    device_nodes: bool             # cameras and virtual cameras are /dev/video* nodes (V4L2)
    pick_camera: str               # how a user names another camera
    camera_access_fix: str         # where the OS grants camera access
    vcam_backend: Optional[str]    # pyvirtualcam backend; None tries each one it has
    vcam_fix: str                  # how to get a virtual camera
    x_display: bool                # a preview window needs a reachable X server


LINUX = System(
    name="Linux", capture_api="CAP_V4L2", device_nodes=True,
    pick_camera="--camera /dev/videoN",
    camera_access_fix="run `sudo usermod -aG video $USER` and log in again",
    vcam_backend="v4l2loopback",
    vcam_fix=f"sudo apt install v4l2loopback-dkms && {MODPROBE}",
    x_display=True)

# DirectShow opens in well under a second and honours the MJPG request; Media Foundation,
# OpenCV's default there, takes seconds to open many webcams.
WINDOWS = System(
    name="Windows", capture_api="CAP_DSHOW", device_nodes=False,
    pick_camera="--camera N (0, 1, ...)",
    camera_access_fix="allow camera access in Settings > Privacy > Camera, including 'Let"
                      " desktop apps access your camera'",
    vcam_backend=None,  # pyvirtualcam tries OBS's virtual camera, then Unity Capture
    vcam_fix=f"install {_OBS} 26 or later, which brings its virtual camera, or install"
             f" Unity Capture",
    x_display=False)

MACOS = System(
    name="macOS", capture_api="CAP_AVFOUNDATION", device_nodes=False,
    pick_camera="--camera N (0, 1, ...)",
    camera_access_fix="allow camera access for your terminal app in System Settings > Privacy"
                      " & Security > Camera",
    vcam_backend="obs",
    vcam_fix=f"install {_OBS} 30 or later, start its virtual camera once (Start Virtual"
             f" Camera) and allow its system extension in System Settings > Privacy & Security",
    x_display=False)


def current() -> System:
    """The system we run on, from sys.platform now (tests change it to simulate another)."""
    if sys.platform.startswith(("win", "cygwin")):
        return WINDOWS
    if sys.platform == "darwin":
        return MACOS
    return LINUX


def litert_unavailable() -> str:
    """'' where ai-edge-litert publishes a wheel backdrop can use (>= 1.2); otherwise why
    not. pyproject.toml's marker for it says the same."""
    import platform as stdlib_platform  # this package shadows the name inside backdrop

    if sys.platform == "darwin" and stdlib_platform.machine() == "x86_64":
        return "ai-edge-litert has no wheel for Intel macs"
    if sys.version_info < (3, 10):
        return "backdrop uses ai-edge-litert from Python 3.10 on"
    return ""


def idle_detection_unavailable() -> str:
    """'' where the live loop can see which programs read the virtual camera (Linux: their
    open files under /proc, woken by inotify); otherwise why it cannot."""
    system = current()
    if not system.device_nodes:
        return f"{system.name} does not tell which apps read the virtual camera"
    if not os.path.isdir("/proc/self/fd"):
        return "/proc is not mounted, so the apps reading the virtual camera cannot be seen"
    return ""


def fourcc_text(code: float) -> str:
    """A four-character code (V4L2 pixel format, OpenCV's CAP_PROP_FOURCC) as text: 'MJPG';
    '' when there is none or it is not printable."""
    value = int(code) if code and math.isfinite(code) else 0
    text = "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4)).strip("\0 ")
    return text if text.isprintable() else ""
