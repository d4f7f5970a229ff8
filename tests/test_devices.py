"""devices.py: V4L2 nodes, formats, v4l2loopback options and who holds a device, read from
fake /dev, /sys and /proc trees; and `backdrop devices` on this machine."""

import errno
import glob
import os
import struct
from pathlib import Path

import pytest

from backdrop.platform import v4l2 as devices


from backdrop.cli.main import main
from backdrop.platform.v4l2 import Host, OpenWatch, find_holders, list_formats
from livefakes import build_tree, hold


def test_scan_tells_loopback_from_camera(tmp_path):
    host = build_tree(tmp_path)
    assert [c["path"] for c in devices.list_cameras(host)] == [str(tmp_path / "dev/video1")]
    vcams = devices.list_virtual_cameras(host, access=lambda p, m: False)
    assert [(v["path"], v["writable"]) for v in vcams] == [(str(tmp_path / "dev/video0"), False)]
    # Without the module loaded, a node under /virtual/ that the driver cannot be asked
    # about is not taken for a loopback device.
    host = build_tree(tmp_path / "other", loopback=False)
    assert devices.list_virtual_cameras(host) == []


def fake_ioctl(formats):
    """An ioctl answering VIDIOC_ENUM_FMT / ENUM_FRAMESIZES from {fourcc: sizes}; a size is
    (w, h) or a stepwise range ((min_w, min_h), (max_w, max_h))."""
    codes = [(name, struct.unpack("<I", name.encode())[0], sizes)
             for name, sizes in formats.items()]

    def ioctl(fd, request, buf):
        index = struct.unpack_from("I", buf, 0)[0]
        if request == devices._VIDIOC_ENUM_FMT:
            if index >= len(codes):
                raise OSError(errno.EINVAL, "end")
            name, code, _ = codes[index]
            struct.pack_into(devices._FMTDESC, buf, 0, index, 1, 0,
                             f"{name} format".encode(), code, 0)
            return 0
        assert request == devices._VIDIOC_ENUM_FRAMESIZES
        code = struct.unpack_from("I", buf, 4)[0]
        sizes = next(s for _, c, s in codes if c == code)
        if index >= len(sizes):
            raise OSError(errno.EINVAL, "end")
        size = sizes[index]
        if isinstance(size[0], tuple):   # stepwise
            (w0, h0), (w1, h1) = size
            struct.pack_into(devices._FRMSIZE, buf, 0, index, code, 3, w0, w1, 8, h0, h1, 8)
        else:
            struct.pack_into(devices._FRMSIZE, buf, 0, index, code, 1, *size, 0, 0, 0, 0)
        return 0

    return ioctl


def test_formats_and_sizes_from_the_driver(tmp_path):
    node = tmp_path / "video1"
    node.write_bytes(b"")
    ioctl = fake_ioctl({"MJPG": [(1280, 720), (640, 480)],
                        "YUYV": [((160, 120), (640, 480))]})
    formats = list_formats(str(node), ioctl=ioctl)
    assert formats == [
        {"fourcc": "MJPG", "description": "MJPG format", "sizes": [(640, 480), (1280, 720)]},
        {"fourcc": "YUYV", "description": "YUYV format", "sizes": [(160, 120), (640, 480)]}]
    assert devices.describe_formats(formats) == "MJPG 1280x720 640x480, YUYV 640x480 160x120"


def test_formats_of_something_that_is_not_a_camera_raise_oserror(tmp_path):
    node = tmp_path / "video1"
    node.write_bytes(b"")
    with pytest.raises(OSError):
        list_formats(str(node))   # a regular file: the real ioctl says ENOTTY


def test_loopback_parameters(tmp_path):
    host = build_tree(tmp_path)
    params = host.loopback_module + "/parameters"
    Path(params, "exclusive_caps").write_text("Y,N,N,N,N,N,N,N\n")
    Path(params, "devices").write_text("2\n")
    assert devices.loopback_parameters(host) == {"exclusive_caps": "Y,N,N,N,N,N,N,N",
                                                 "devices": "2"}
    assert devices.parameter_list("Y,N,,N") == ["Y", "N", "N"]
    assert devices.truthy("Y") and devices.truthy("1") and not devices.truthy("N")
    assert devices.loopback_parameters(Host(str(tmp_path / "nothing"))) is None


def test_find_holders_names_processes_and_skips_ourselves(tmp_path, monkeypatch):
    host = build_tree(tmp_path)
    dev = str(tmp_path / "dev/video0")
    hold(host, 100, dev, "chrome")
    hold(host, 101, "/dev/null", "bash")
    hold(host, 102, dev, "backdrop")
    hold(host, 103, dev, "secret")
    real_listdir = os.listdir

    def listdir(path):
        if str(path).endswith("/103/fd"):
            raise PermissionError(errno.EACCES, "denied")  # another user's process
        return real_listdir(path)

    monkeypatch.setattr(devices.os, "listdir", listdir)
    skip = set()
    found = find_holders([dev], host, exclude={102}, skip=skip)
    assert found.pids == {100: "chrome"} and found.readable == 2 and found.denied == 1
    assert skip == {103}
    again = find_holders([dev], host, exclude={102}, skip=skip)   # not asked twice
    assert again.denied == 1 and skip == {103}
    assert devices.still_holds(100, [dev], host) and not devices.still_holds(101, [dev], host)


def test_open_watch_reports_opens_and_closes(tmp_path):
    node = tmp_path / "video0"
    node.write_bytes(b"")
    watch = OpenWatch([str(node)])
    assert watch.available and not watch.triggered()
    with open(node, "rb"):
        pass
    assert watch.triggered() and not watch.triggered()   # drained
    watch.close()
    watch.close()
    assert not OpenWatch([str(tmp_path / "missing")]).available


def test_device_lines_list_formats_and_state(tmp_path):
    from backdrop.cli.doctor import Probe, device_lines

    host = build_tree(tmp_path)
    dev0 = str(tmp_path / "dev/video0")
    hold(host, 4321, dev0, "zoom")
    probe = Probe(host=host, access=lambda p, m: True, env={}, display=lambda env: False,
                  formats=lambda path: [{"fourcc": "MJPG", "sizes": [(1280, 720)]}])
    lines = device_lines(probe)
    assert lines[0] == "cameras:"
    assert lines[1].endswith("video1  USB Camera: MJPG 1280x720")
    assert lines[2] == "virtual cameras:"
    assert "video0" in lines[3] and "writable" in lines[3] and "zoom (4321)" in lines[3]


@pytest.mark.skipif(bool(glob.glob("/dev/video*")), reason="video devices exist here")
def test_devices_command_on_a_machine_without_any(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("cameras: none")
    assert out[1].startswith("virtual cameras: none") and "backdrop doctor" in out[1]
