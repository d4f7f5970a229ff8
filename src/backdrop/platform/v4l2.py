"""V4L2 devices on this machine: cameras, v4l2loopback nodes, their formats and who holds them.

Everything reads kernel files through a `Host` whose root is "/" normally, so tests (and
`backdrop doctor`'s tests) can build a fake /dev, /sys and /proc tree in a temporary folder.
Nothing here opens a device for streaming; the ioctls only ask questions. `fcntl` is imported
where an ioctl is made, so this module imports (and its pure parts run) on any system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import glob
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Set

from backdrop.platform import fourcc_text

# struct v4l2_capability: driver[16] card[32] bus_info[32] version capabilities device_caps rsv[3]
_V4L2_CAP_FMT = "16s32s32sIII12x"
_VIDIOC_QUERYCAP = 0x80685600
_CAP_VIDEO_CAPTURE, _CAP_VIDEO_OUTPUT = 0x1, 0x2
_CAP_VIDEO_CAPTURE_MPLANE, _CAP_VIDEO_OUTPUT_MPLANE = 0x1000, 0x2000
_CAP_DEVICE_CAPS = 0x80000000
# struct v4l2_fmtdesc: index type flags description[32] pixelformat mbus_code reserved[3]
_FMTDESC = "III32sII12x"
_VIDIOC_ENUM_FMT = 0xC0405602
# struct v4l2_frmsizeenum: index pixel_format type, then discrete w h or stepwise
# min_w max_w step_w min_h max_h step_h, reserved[2]
_FRMSIZE = "III6I8x"
_VIDIOC_ENUM_FRAMESIZES = 0xC02C564A
_BUF_TYPE_VIDEO_CAPTURE = 1
_FRMSIZE_TYPE_DISCRETE = 1
_MAX_ENUM = 64  # a driver that never says EINVAL must not hang us

SYSFS_V4L = "/sys/class/video4linux"


@dataclass(frozen=True)
class Host:
    """Where the kernel's files are: "/" on a real machine, a fake tree in tests."""

    root: str = "/"

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def dev_glob(self) -> str:
        return self.path("dev", "video*")

    @property
    def sysfs_v4l(self) -> str:
        return self.path("sys", "class", "video4linux")

    @property
    def loopback_module(self) -> str:
        return self.path("sys", "module", "v4l2loopback")

    @property
    def proc(self) -> str:
        return self.path("proc")


LOCAL = Host()


# ---------------------------------------------------------------------------- capabilities

def parse_v4l2_capability(raw: bytes) -> dict:
    """Decode a VIDIOC_QUERYCAP answer into driver/card and what the node can do."""
    driver, card, _bus, _ver, caps, dev_caps = struct.unpack(_V4L2_CAP_FMT, raw)
    # device_caps describes this node; capabilities describes the whole physical device.
    node = dev_caps if caps & _CAP_DEVICE_CAPS else caps
    return {
        "driver": driver.split(b"\0", 1)[0].decode(errors="replace"),
        "card": card.split(b"\0", 1)[0].decode(errors="replace"),
        "capture": bool(node & (_CAP_VIDEO_CAPTURE | _CAP_VIDEO_CAPTURE_MPLANE)),
        "output": bool(node & (_CAP_VIDEO_OUTPUT | _CAP_VIDEO_OUTPUT_MPLANE)),
    }


def _ioctl(fd: int, request: int, buf: bytearray) -> None:
    import fcntl  # POSIX only: imported when a device is asked, never at import

    fcntl.ioctl(fd, request, buf)


def query_v4l2_device(path: str) -> Optional[dict]:
    """Ask the driver what a /dev/video node is; None if it cannot be asked (no access...)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # read access is enough to query
    except OSError:
        return None
    try:
        buf = bytearray(struct.calcsize(_V4L2_CAP_FMT))
        _ioctl(fd, _VIDIOC_QUERYCAP, buf)
        return parse_v4l2_capability(bytes(buf))
    except OSError:
        return None
    finally:
        os.close(fd)


def _node_number(path: str) -> int:
    return int(re.sub(r"\D", "", os.path.basename(path)) or 1 << 30)


def scan_video_devices(dev_glob: str = "/dev/video*", sysfs: str = SYSFS_V4L, *,
                       module_dir: str = "/sys/module/v4l2loopback",
                       query: Callable[[str], Optional[dict]] = query_v4l2_device) -> List[dict]:
    """/dev/video* nodes in number order: path, name, driver, capture, output, loopback.

    capture/output are None when the driver could not be asked (e.g. no permission).
    """
    loopback_loaded = os.path.isdir(module_dir)
    found = []
    for path in sorted(glob.glob(dev_glob), key=_node_number):
        node = os.path.join(sysfs, os.path.basename(path))
        try:
            name = Path(node, "name").read_text(encoding="utf-8").strip()
        except OSError:
            name = ""
        caps = query(path) or {"driver": "", "card": "", "capture": None, "output": None}
        # Loopback nodes have no parent bus device, so sysfs files them under /virtual/.
        virtual = "/virtual/" in os.path.realpath(node)
        loopback = (caps["driver"] == "v4l2 loopback" or "loopback" in name.lower()
                    or (loopback_loaded and virtual and not caps["driver"]))
        found.append({"path": path, "name": name or caps["card"], "driver": caps["driver"],
                      "capture": caps["capture"], "output": caps["output"],
                      "loopback": loopback})
    return found


def scan_host(host: Host = LOCAL) -> List[dict]:
    return scan_video_devices(host.dev_glob, host.sysfs_v4l, module_dir=host.loopback_module)


def list_cameras(host: Host = LOCAL) -> List[dict]:
    """Capture devices a user could pick with --camera (virtual cameras and metadata nodes
    left out): [{'path', 'name', 'driver'}]."""
    return [{"path": d["path"], "name": d["name"] or os.path.basename(d["path"]),
             "driver": d["driver"]}
            for d in scan_host(host) if not d["loopback"] and d["capture"] is not False]


def list_virtual_cameras(host: Host = LOCAL,
                         access: Callable[[str, int], bool] = os.access) -> List[dict]:
    """v4l2loopback devices: [{'path', 'name', 'loopback': True, 'writable'}]."""
    return [{"path": d["path"], "name": d["name"], "loopback": True,
             "writable": access(d["path"], os.W_OK)}
            for d in scan_host(host) if d["loopback"]]


# ---------------------------------------------------------------------------- formats

def _enum(fd: int, request: int, fmt: str, head: tuple, ioctl: Callable) -> List[tuple]:
    """Run an index-enumerating ioctl until the driver says EINVAL. The struct starts with
    the u32 index followed by the u32 fields in `head` (type, pixel format)."""
    out = []
    for index in range(_MAX_ENUM):
        buf = bytearray(struct.calcsize(fmt))
        struct.pack_into("I" * (1 + len(head)), buf, 0, index, *head)
        try:
            ioctl(fd, request, buf)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            break
        out.append(struct.unpack(fmt, bytes(buf)))
    return out


def list_formats(path: str, *, ioctl: Callable = _ioctl,
                 opener: Callable[[str], int] = lambda p: os.open(p, os.O_RDONLY | os.O_NONBLOCK)
                 ) -> List[dict]:
    """What a capture device offers: [{'fourcc', 'description', 'sizes': [(w, h), ...]}].

    Stepwise/continuous size ranges are reported as their smallest and largest size.
    Raises OSError when the device cannot be opened or asked.
    """
    fd = opener(path)
    try:
        formats = []
        for entry in _enum(fd, _VIDIOC_ENUM_FMT, _FMTDESC, (_BUF_TYPE_VIDEO_CAPTURE, 0), ioctl):
            _, _, _, desc, pixfmt, _ = entry
            sizes = []
            for s in _enum(fd, _VIDIOC_ENUM_FRAMESIZES, _FRMSIZE, (pixfmt,), ioctl):
                kind, a, b, c, d, e, _f = s[2:]
                # discrete: width, height; stepwise: min_w, max_w, step_w, min_h, max_h
                sizes += [(a, b)] if kind == _FRMSIZE_TYPE_DISCRETE else [(a, d), (b, e)]
            formats.append({"fourcc": fourcc_text(pixfmt),
                            "description": desc.split(b"\0", 1)[0].decode(errors="replace"),
                            "sizes": sorted(set(sizes))})
        return formats
    finally:
        os.close(fd)


def describe_formats(formats: List[dict]) -> str:
    """'MJPG 1920x1080 1280x720, YUYV 640x480' (sizes largest first)."""
    parts = []
    for f in formats:
        sizes = sorted(f["sizes"], key=lambda s: s[0] * s[1], reverse=True)
        parts.append(" ".join([f["fourcc"]] + [f"{w}x{h}" for w, h in sizes]))
    return ", ".join(parts) or "no formats reported"


# ---------------------------------------------------------------------------- v4l2loopback

def loopback_parameters(host: Host = LOCAL) -> Optional[Dict[str, str]]:
    """The loaded v4l2loopback module's options ({} if unreadable); None when not loaded."""
    if not os.path.isdir(host.loopback_module):
        return None
    params: Dict[str, str] = {}
    folder = os.path.join(host.loopback_module, "parameters")
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return params
    for name in names:
        try:
            params[name] = Path(folder, name).read_text(encoding="utf-8").strip()
        except OSError:
            continue
    return params


def parameter_list(value: str) -> List[str]:
    """'Y,N,N' or '1,0' (a module_param_array) -> ['Y', 'N', 'N']."""
    return [v.strip() for v in value.split(",") if v.strip()]


def truthy(value: str) -> bool:
    return value.strip().upper() in ("Y", "1", "TRUE", "YES")


# ---------------------------------------------------------------------------- who holds a device

@dataclass
class Holders:
    """Processes with a device open, from their /proc/PID/fd links."""

    pids: Dict[int, str] = field(default_factory=dict)   # pid -> command name
    readable: int = 0     # other processes whose open files we could see
    denied: int = 0       # other processes we were not allowed to look into


def _is_held_by(fd_dir: str, targets: Set[str]) -> bool:
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) in targets:
                return True
        except OSError:  # the fd was closed meanwhile
            continue
    return False


def process_name(pid: int, host: Host = LOCAL) -> str:
    try:
        return Path(host.proc, str(pid), "comm").read_text(encoding="utf-8").strip()
    except OSError:
        return "?"


def find_holders(devices: List[str], host: Host = LOCAL, *, exclude: Set[int] = frozenset(),
                 skip: Optional[Set[int]] = None) -> Holders:
    """Which processes (other than `exclude`) hold any of `devices` open.

    `skip` is a caller-kept cache of pids whose fds we may not read (another user's): they
    are not asked again, and pids found unreadable are added to it.
    """
    targets = {os.path.realpath(d) for d in devices} | set(devices)
    found = Holders()
    try:
        entries = os.listdir(host.proc)
    except OSError:
        return found
    if skip is not None:  # forget pids that ended: the number may come back as another process
        skip.intersection_update(int(e) for e in entries if e.isdigit())
    for entry in entries:
        if not entry.isdigit() or int(entry) in exclude:
            continue
        pid = int(entry)
        if skip is not None and pid in skip:
            found.denied += 1
            continue
        try:
            held = _is_held_by(os.path.join(host.proc, entry, "fd"), targets)
        except PermissionError:
            found.denied += 1
            if skip is not None:
                skip.add(pid)
            continue
        except OSError:  # the process ended meanwhile
            continue
        found.readable += 1
        if held:
            found.pids[pid] = process_name(pid, host)
    return found


def still_holds(pid: int, devices: List[str], host: Host = LOCAL) -> bool:
    """Cheap re-check of one known holder."""
    targets = {os.path.realpath(d) for d in devices} | set(devices)
    try:
        return _is_held_by(os.path.join(host.proc, str(pid), "fd"), targets)
    except OSError:
        return False


# ---------------------------------------------------------------------------- open events

_IN_OPEN, _IN_CLOSE_WRITE, _IN_CLOSE_NOWRITE = 0x20, 0x08, 0x10
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000


class OpenWatch:
    """inotify on device nodes: tells that some process opened or closed one since the last
    call, so the costly /proc scan only runs when something changed. `available` is False
    where inotify cannot be used; callers then scan on a timer."""

    def __init__(self, paths: List[str]):
        self.fd = -1
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd < 0:
                return
            mask = _IN_OPEN | _IN_CLOSE_WRITE | _IN_CLOSE_NOWRITE
            if all(libc.inotify_add_watch(fd, p.encode(), mask) >= 0 for p in paths) and paths:
                self.fd = fd
            else:
                os.close(fd)
        except (OSError, AttributeError):
            self.fd = -1

    @property
    def available(self) -> bool:
        return self.fd >= 0

    def triggered(self) -> bool:
        """True if any open/close happened since the last call (drains the events)."""
        if self.fd < 0:
            return False
        seen = False
        while True:
            try:
                if not os.read(self.fd, 4096):
                    return seen
                seen = True
            except BlockingIOError:
                return seen
            except OSError:
                return seen

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
