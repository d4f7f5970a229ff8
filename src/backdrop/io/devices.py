"""What cameras and virtual cameras this machine has, whatever the system: the door through
which `backdrop devices` and `backdrop doctor` ask (cli never imports platform itself).

On Linux everything comes from V4L2 and sysfs through a `Host` (so tests can build a fake
/dev, /sys and /proc tree); on Windows and macOS cameras are found by opening indices with
OpenCV, and the virtual camera by opening it with pyvirtualcam.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from backdrop.errors import VirtualCameraError
from backdrop.platform import GROUP_FIX, LINUX, MODPROBE, System, current, litert_unavailable
from backdrop.platform.v4l2 import (LOCAL, Host, describe_formats, find_holders, list_formats,
                                    loopback_parameters, parameter_list, truthy)

__all__ = ["GROUP_FIX", "INSTALL", "LOCAL", "MODPROBE", "RELOAD", "Host", "System",
           "camera_formats", "current", "describe_formats", "exclusive_caps", "find_holders",
           "list_cameras", "list_formats", "list_virtual_cameras", "litert_unavailable",
           "loopback_parameters", "open_virtual_camera", "sysfs_format",
           "virtual_camera_state"]

INSTALL = LINUX.vcam_fix
RELOAD = f"sudo modprobe -r v4l2loopback && {MODPROBE}"


def list_cameras(host: Host = LOCAL) -> List[dict]:
    """Cameras a user can pick with --camera: [{'id', 'name', 'driver'}] (Linux: 'id' is the
    /dev/video node; elsewhere the index, and 'size' the mode it opens in)."""
    if current().device_nodes:
        from backdrop.platform import v4l2

        return [{"id": c["path"], "name": c["name"], "driver": c["driver"]}
                for c in v4l2.list_cameras(host)]
    from backdrop.io.camera import list_cameras as probe

    return probe()


def camera_formats(cam: dict, formats: Callable[[str], List[dict]] = list_formats) -> str:
    """What a camera offers, as one line; raises OSError when the driver cannot be asked.
    OpenCV cannot ask a camera what it offers, so elsewhere only its opening size is known."""
    if current().device_nodes:
        return describe_formats(formats(cam["id"]))
    width, height = cam.get("size", (0, 0))
    return f"opens at {width}x{height} ({cam['driver']})" if width else f"opens ({cam['driver']})"


def list_virtual_cameras(host: Host = LOCAL,
                         access: Callable[[str, int], bool] = os.access) -> List[dict]:
    """Linux: the v4l2loopback devices [{'path', 'name', 'loopback', 'writable'}]. Elsewhere
    the virtual camera is not a file: see open_virtual_camera()."""
    if not current().device_nodes:
        return []
    from backdrop.platform import v4l2

    return v4l2.list_virtual_cameras(host, access)


def exclusive_caps(params: Dict[str, str]) -> Optional[List[bool]]:
    """exclusive_caps of each device v4l2loopback made (None when not readable)."""
    if "exclusive_caps" not in params:
        return None
    values = [truthy(v) for v in parameter_list(params["exclusive_caps"])]
    try:
        count = max(1, int(params.get("devices", "1")))
    except ValueError:
        count = 1
    return values[:count]


def sysfs_format(path: str, host: Host = LOCAL) -> str:
    """The format a loopback device currently carries, as sysfs tells ('' if unknown)."""
    node = os.path.join(host.sysfs_v4l, os.path.basename(path), "format")
    try:
        return Path(node).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def open_virtual_camera(factory: Optional[Callable] = None) -> str:
    """Open and close the virtual camera once, the way `live` does; its name when that
    works. Raises VirtualCameraError naming this system's fix. (Windows and macOS: whether
    OBS's virtual camera is installed can only be learnt by opening it.)"""
    from backdrop.io.vcam import VirtualCameraSink

    with VirtualCameraSink(width=640, height=480, fps=30, camera_factory=factory) as sink:
        return sink.device


def virtual_camera_state(factory: Optional[Callable] = None) -> Tuple[bool, str]:
    """(True, device name) or (False, the one-line reason with its fix)."""
    try:
        return True, open_virtual_camera(factory)
    except VirtualCameraError as e:
        return False, str(e)
