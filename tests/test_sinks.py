import os
import shutil
import socket
import subprocess

import cv2
import numpy as np
import pytest

from backdrop.io import preview, vcam
from backdrop.errors import SinkError, VirtualCameraError
from backdrop.io.frames import fit_frame
from backdrop.io.preview import PreviewSink
from backdrop.io.sinks import NullSink, open_sink
from backdrop.io.vcam import VirtualCameraSink
from backdrop.io.videowrite import VideoFileSink

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (40, 40, 40), (250, 250, 250)]


def rgb(colour, w=160, h=120):
    frame = np.empty((h, w, 3), np.uint8)
    frame[:] = colour
    return frame


# ---------------------------------------------------------------------------- null / dispatch

def test_null_sink_counts():
    with NullSink() as sink:
        for _ in range(7):
            sink.send(rgb(COLOURS[0]))
    assert sink.frames == 7


def test_open_sink_dispatch(tmp_path, monkeypatch):
    assert isinstance(open_sink("null", width=64, height=64, fps=30), NullSink)
    assert isinstance(open_sink(" NULL ", width=64, height=64, fps=30), NullSink)
    file_sink = open_sink(str(tmp_path / "a.mkv"), width=64, height=64, fps=30)
    assert isinstance(file_sink, VideoFileSink)
    file_sink.close()
    with pytest.raises(VirtualCameraError):
        open_sink("vcam", width=64, height=64, fps=30, vcam_device="/dev/video63")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError, match="preview"):
        open_sink("preview", width=64, height=64, fps=30)
    with pytest.raises(SinkError, match="vcam"):
        open_sink("", width=64, height=64, fps=30)


# ---------------------------------------------------------------------------- virtual camera

needs_no_loopback = pytest.mark.skipif(
    bool(vcam.list_virtual_cameras()), reason="a v4l2loopback device exists here")


@needs_no_loopback
def test_real_pyvirtualcam_without_device_explains_modprobe():
    with pytest.raises(VirtualCameraError) as info:
        VirtualCameraSink(width=640, height=480, fps=30)
    message = str(info.value)
    assert "modprobe v4l2loopback" in message and "exclusive_caps=1" in message
    assert "\n" not in message
    assert isinstance(info.value.__cause__, RuntimeError)


def test_real_pyvirtualcam_named_missing_device():
    with pytest.raises(VirtualCameraError, match="/dev/video63") as info:
        VirtualCameraSink(width=640, height=480, fps=30, device="/dev/video63")
    assert "does not exist" in str(info.value)
    assert "\n" not in str(info.value)


def test_real_pyvirtualcam_device_that_is_not_a_camera(tmp_path):
    with pytest.raises(VirtualCameraError, match="not a v4l2loopback device") as info:
        VirtualCameraSink(width=640, height=480, fps=30, device=str(tmp_path))
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("text,expect", [
    ("'v4l2loopback' backend: Virtual camera device /dev/video4 could not be configured:"
     " Device or resource busy", "busy"),
    ("'v4l2loopback' backend: Device /dev/video4 could not be opened: Permission denied",
     "usermod"),
    ("'v4l2loopback' backend: something new\nsecond line", "something"),
])
def test_vcam_messages_are_one_line_with_a_fix(text, expect):
    message = vcam._vcam_message(text, "/dev/null")
    assert expect in message
    assert "\n" not in message


class FakeCamera:
    """Stands in for pyvirtualcam.Camera: checks shapes like the real one."""

    def __init__(self, width, height, fps, *, fmt, device=None, backend=None):
        self.args = dict(width=width, height=height, fps=fps, fmt=fmt, device=device,
                         backend=backend)
        self.device = device or "/dev/video9"
        self.sent, self.closed, self.fail = [], 0, False

    def send(self, frame):
        if self.fail:
            raise ValueError("device went away")
        assert frame.flags["C_CONTIGUOUS"] and frame.dtype == np.uint8
        assert frame.shape == (self.args["height"], self.args["width"], 3)
        self.sent.append(frame.copy())

    def close(self):
        self.closed += 1


def make_vcam(**kw):
    made = []

    def factory(*args, **kwargs):
        made.append(FakeCamera(*args, **kwargs))
        return made[-1]

    sink = VirtualCameraSink(camera_factory=factory, **kw)
    return sink, made[0]


def test_vcam_opens_rgb_v4l2loopback_at_even_size():
    import pyvirtualcam

    sink, cam = make_vcam(width=641, height=361, fps=30)
    assert cam.args == dict(width=640, height=360, fps=30.0, fmt=pyvirtualcam.PixelFormat.RGB,
                            device=None, backend="v4l2loopback")
    assert "640x360" in sink.name and "/dev/video9" in sink.name
    odd = rgb(COLOURS[0], 641, 361)
    odd[:, 640] = 0  # the column that must be cropped away
    sink.send(odd)
    assert cam.sent[0].shape == (360, 640, 3)
    assert (cam.sent[0] == COLOURS[0]).all()
    sink.close()
    sink.close()
    assert cam.closed == 1


def test_vcam_resizes_frames_of_another_size():
    sink, cam = make_vcam(width=640, height=480, fps=30, device="/dev/video9")
    assert cam.args["device"] == "/dev/video9"
    sink.send(rgb(COLOURS[1], 1280, 720))
    sink.send(rgb(COLOURS[2], 320, 240))
    assert [f.shape for f in cam.sent] == [(480, 640, 3)] * 2
    assert (cam.sent[1] == COLOURS[2]).all()


def test_vcam_send_failure_is_a_sink_error():
    sink, cam = make_vcam(width=64, height=64, fps=30)
    cam.fail = True
    with pytest.raises(SinkError, match="virtual camera") as info:
        sink.send(rgb(COLOURS[0], 64, 64))
    assert isinstance(info.value.__cause__, ValueError)


def test_fit_frame_is_identity_when_size_matches():
    frame = rgb(COLOURS[0], 64, 48)
    assert fit_frame(frame, 64, 48) is frame
    assert fit_frame(frame, 32, 24).shape == (24, 32, 3)


# ---------------------------------------------------------------------------- preview

def test_preview_without_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert preview.display_available() is False
    with pytest.raises(SinkError, match="no display for the preview window") as info:
        PreviewSink()
    assert "--sink vcam" in str(info.value)


def test_preview_with_unreachable_display_does_not_abort(monkeypatch):
    # Qt would abort the process on this DISPLAY; the sink must refuse first.
    monkeypatch.setenv("DISPLAY", ":987")
    assert preview.display_available() is False
    with pytest.raises(SinkError, match=":987"):
        PreviewSink()


def test_wayland_without_xwayland_is_not_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    with pytest.raises(SinkError, match="XWayland"):
        PreviewSink()


def free_display_number():
    for n in range(90, 200):
        if not os.path.exists(f"/tmp/.X{n}-lock") and not os.path.exists(f"/tmp/.X11-unix/X{n}"):
            return n
    pytest.skip("no free X display number")


@pytest.fixture(scope="session")
def xvfb_display():
    """One Xvfb for the whole session: Qt connects to one X display per process and hangs
    if that server goes away, so every preview test must share the same one."""
    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    n = free_display_number()
    # -displayfd: Xvfb writes the number once it accepts connections, so no sleeping.
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "800x600x24", "-nolisten", "tcp",
                             "-displayfd", str(write_fd)], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as ready:
        line = ready.readline().strip()
    if line != str(n):
        proc.kill()
        proc.wait()
        pytest.skip(f"Xvfb did not start on :{n}")
    yield f":{n}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def xvfb(xvfb_display, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb_display)
    return xvfb_display


def test_preview_under_xvfb(xvfb):
    assert preview.display_available()
    sink = PreviewSink(title="backdrop-test")
    assert sink.closed is False
    assert sink.poll_key() is None  # nothing shown yet
    sink.send(rgb(COLOURS[0], 320, 240))
    assert sink.closed is False
    assert sink.poll_key() is None
    sink.send(rgb(COLOURS[1], 320, 240))
    sink.close()
    assert sink.closed is True
    sink.close()
    sink.send(rgb(COLOURS[1], 320, 240))  # after close: ignored, no window comes back
    assert sink.poll_key() is None


def test_preview_closed_by_the_user_stays_closed(xvfb):
    sink = PreviewSink(title="backdrop-close")
    sink.send(rgb(COLOURS[0], 320, 240))
    assert sink.closed is False
    cv2.destroyWindow("backdrop-close")  # what the window manager's close button does
    cv2.waitKey(1)
    assert sink.closed is True
    sink.send(rgb(COLOURS[1], 320, 240))  # must not bring the window back
    assert sink.closed is True
    sink.close()


def test_preview_key_names(monkeypatch):
    sink = PreviewSink.__new__(PreviewSink)  # no window needed to map key codes
    codes = iter([ord("Q"), 27, 32, 13, -1, 0x1000012, ord("b")])
    monkeypatch.setattr(cv2, "waitKey", lambda delay: next(codes))
    assert [sink._wait_key() for _ in range(7)] == ["q", "esc", "space", "enter", None, None,
                                                    "b"]


def test_x_display_reachable_parses_forms():
    assert preview.x_display_reachable("garbage") is False
    assert preview.x_display_reachable(":notanumber") is False
    with socket.socket() as s:  # a closed TCP port on localhost: refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if port >= 6000:
        assert preview.x_display_reachable(f"127.0.0.1:{port - 6000}") is False
