import glob
import struct

import cv2
import numpy as np
import pytest

from backdrop.io import camera
from backdrop.platform import v4l2
from backdrop.config import SourceConfig
from backdrop.errors import InputError, SourceError
from backdrop.io.camera import CameraSource, negotiate_capture, open_camera
from backdrop.io.sources import DemoSource, open_source
from backdrop.platform.v4l2 import parse_v4l2_capability

W, H, N = 160, 120, 20
RED_BGR = (0, 0, 255)


def bgr_frame(i):
    """Frame i: a distinct flat colour (BGR) with a square moving right; frame 0 pure red."""
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = RED_BGR if i == 0 else ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
    x = 4 + i * 5
    frame[40:70, x:x + 30] = 255
    return frame


@pytest.fixture
def video(tmp_path):
    path = str(tmp_path / "clip.avi")  # MJPG keeps colours close to what was written
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (W, H))
    assert writer.isOpened()
    for i in range(N):
        writer.write(bgr_frame(i))
    writer.release()
    return path


def cfg(**kw):
    return SourceConfig(**kw)


def near(a, b, tol=12):
    return np.all(np.abs(np.asarray(a, int) - np.asarray(b, int)) <= tol)


def check_frame(frame, w, h):
    assert frame.shape == (h, w, 3)
    assert frame.dtype == np.uint8
    assert frame.flags["C_CONTIGUOUS"]


# ---------------------------------------------------------------------------- video files

def test_video_adopts_size_and_fps_and_is_rgb(video):
    with open_source(cfg(source=video, loop=False, fps=60)) as src:
        assert (src.width, src.height, src.fps) == (W, H, 25.0)
        assert src.realtime is False
        assert "clip.avi" in src.name
        first = src.read()
        check_frame(first, W, H)
        # Written as BGR (0, 0, 255): pure red must come out as RGB (255, 0, 0).
        assert near(first[5, 5], (255, 0, 0))
        second = src.read()
        assert near(second[5, 5], bgr_frame(1)[5, 5][::-1])


def test_video_without_loop_ends_after_last_frame(video):
    with open_source(cfg(source=video, loop=False)) as src:
        frames = [src.read() for _ in range(N)]
        assert all(f is not None for f in frames)
        assert src.read() is None
        assert src.read() is None  # stays ended


def test_video_loop_goes_past_the_end(video):
    with open_source(cfg(source=video, loop=True)) as src:
        frames = [src.read() for _ in range(N * 2 + 3)]
    assert all(f is not None and f.shape == (H, W, 3) for f in frames)
    # After the wrap we see frame 0 (pure red) again, then frame 1.
    assert near(frames[N][5, 5], (255, 0, 0))
    assert near(frames[N + 1][5, 5], bgr_frame(1)[5, 5][::-1])


def test_truncated_video_ends_stream(video, tmp_path):
    data = open(video, "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with open_source(cfg(source=str(cut), loop=False)) as src:
        count = 0
        while src.read() is not None:
            count += 1
            assert count < 100
    assert 0 < count < N


def test_missing_source_names_the_path(tmp_path):
    missing = str(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="nope.mp4") as info:
        open_source(cfg(source=missing))
    assert "\n" not in str(info.value)


def test_corrupt_video_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8).tobytes())
    with pytest.raises(InputError, match="bad.mp4") as info:
        open_source(cfg(source=str(bad)))
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------- images

def test_still_image_repeats_the_same_read_only_frame(tmp_path):
    path = str(tmp_path / "still.png")
    img = bgr_frame(0)
    img[0:10, 0:10] = (255, 0, 0)  # a blue corner in BGR
    cv2.imwrite(path, img)
    with open_source(cfg(source=path, fps=12)) as src:
        assert (src.width, src.height, src.fps, src.realtime) == (W, H, 12.0, False)
        a, b = src.read(), src.read()
    assert a is b
    assert not a.flags.writeable
    assert tuple(a[2, 2]) == (0, 0, 255)
    assert tuple(a[50, 100]) == (255, 0, 0)  # red background
    assert tuple(a[50, 10]) == (255, 255, 255)  # the white square


def test_corrupt_image_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(InputError, match="bad.png"):
        open_source(cfg(source=str(bad)))


def make_folder(tmp_path, names_and_indices, corrupt=()):
    folder = tmp_path / "frames"
    folder.mkdir()
    for name, i in names_and_indices:
        cv2.imwrite(str(folder / name), bgr_frame(i))
    for name in corrupt:
        (folder / name).write_bytes(b"\x89PNG garbage")
    (folder / "notes.txt").write_text("not a frame")
    return str(folder)


def test_folder_sorted_by_name_skipping_corrupt_frame(tmp_path):
    # Written out of order; names decide the order. 0002.png is corrupt.
    folder = make_folder(tmp_path, [("0003.png", 3), ("0001.png", 1), ("0004.jpg", 4)],
                         corrupt=["0002.png"])
    with open_source(cfg(source=folder, loop=False)) as src:
        assert (src.width, src.height) == (W, H)
        got = []
        while (f := src.read()) is not None:
            got.append((src.last_name, f[5, 5].copy()))
    assert [n for n, _ in got] == ["0001", "0003", "0004"]
    for (_, px), i in zip(got, (1, 3, 4)):
        assert near(px, bgr_frame(i)[5, 5][::-1])


def test_folder_loops(tmp_path):
    folder = make_folder(tmp_path, [("a.png", 1), ("b.png", 2)], corrupt=["c.png"])
    with open_source(cfg(source=folder, loop=True)) as src:
        names = []
        for _ in range(5):
            assert src.read() is not None
            names.append(src.last_name)
    assert names == ["a", "b", "a", "b", "a"]


def test_folder_without_images_is_an_input_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        open_source(cfg(source=str(tmp_path / "empty")))


def test_folder_of_only_corrupt_images_is_an_input_error(tmp_path):
    folder = make_folder(tmp_path, [], corrupt=["1.png", "2.png"])
    with pytest.raises(InputError, match="frames"):
        open_source(cfg(source=folder))


# ---------------------------------------------------------------------------- demo

@pytest.mark.parametrize("w,h", [(640, 480), (1280, 720), (1920, 1080), (641, 361)])
def test_demo_shape(w, h):
    with open_source(cfg(source="demo", width=w, height=h, fps=30)) as src:
        assert (src.width, src.height, src.fps, src.realtime) == (w, h, 30.0, False)
        check_frame(src.read(), w, h)
        check_frame(src.read(), w, h)


def test_demo_is_deterministic_and_moves():
    a = DemoSource(width=640, height=480, fps=30)
    b = DemoSource(width=640, height=480, fps=30)
    assert np.array_equal(a.frame_at(42), b.frame_at(42))
    assert np.array_equal(a.read(), b.frame_at(0))
    diff = np.abs(a.frame_at(0).astype(int) - a.frame_at(90).astype(int)).mean()
    assert diff > 2.0  # three seconds apart: visibly moved
    near_diff = np.abs(a.frame_at(0).astype(int) - a.frame_at(1).astype(int)).mean()
    assert near_diff < diff  # and the motion is smooth


def test_demo_frames_the_face_in_the_upper_half():
    # Skin of the astronaut's face is bright and warm; it should sit in the upper half.
    frame = DemoSource(width=1280, height=720, fps=30).frame_at(0)
    r, g, b = (frame[..., c].astype(int) for c in range(3))
    skin = (r > 150) & (r - b > 40) & (g > 90) & (r > g)
    ys, xs = np.nonzero(skin[:, 400:880])
    assert ys.size > 1000
    assert 0.15 * 720 < np.median(ys) < 0.5 * 720


def test_demo_missing_picture_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="demo"):
        DemoSource(width=64, height=64, fps=30, image_path=tmp_path / "gone.png")


# ---------------------------------------------------------------------------- cameras

class FakeCapture:
    """Stands in for cv2.VideoCapture on a camera that refuses the requested mode."""

    def __init__(self, *, deliver=(640, 480), report=None, fps=30.0, fail_first=0,
                 opened=True, frames=3):
        self.deliver, self.report = deliver, report or deliver
        self.fps, self.fail_first, self.opened, self.frames = fps, fail_first, opened, frames
        self.sets, self.released, self.reads = [], False, 0

    def isOpened(self):
        return self.opened

    def set(self, prop, value):
        self.sets.append((prop, value))
        return True  # V4L2 says yes and then does what it likes

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: self.report[0], cv2.CAP_PROP_FRAME_HEIGHT:
                self.report[1], cv2.CAP_PROP_FPS: self.fps,
                cv2.CAP_PROP_FOURCC: cv2.VideoWriter_fourcc(*"MJPG")}.get(prop, 0.0)

    def read(self):
        self.reads += 1
        if self.reads <= self.fail_first or self.reads > self.fail_first + self.frames:
            return False, None
        w, h = self.deliver
        frame = np.zeros((h, w, 3), np.uint8)
        frame[..., 2] = 255  # BGR red
        return True, frame

    def release(self):
        self.released = True


def test_negotiation_adopts_what_the_camera_delivers():
    cap = FakeCapture(deliver=(640, 480), report=(1920, 1080), fps=0.0, fail_first=2)
    mode = negotiate_capture(cap, width=1920, height=1080, fps=30, mjpg=True)
    assert (mode.width, mode.height, mode.fps, mode.fourcc) == (640, 480, 30.0, "MJPG")
    props = [p for p, _ in cap.sets]
    # MJPG must be asked for before the size, or drivers pick the size under YUYV limits.
    assert props.index(cv2.CAP_PROP_FOURCC) < props.index(cv2.CAP_PROP_FRAME_WIDTH)
    assert (cv2.CAP_PROP_BUFFERSIZE, 1) in cap.sets


def test_negotiation_without_mjpg_does_not_ask_for_it():
    cap = FakeCapture()
    negotiate_capture(cap, width=640, height=480, fps=30, mjpg=False)
    assert cv2.CAP_PROP_FOURCC not in [p for p, _ in cap.sets]


def test_camera_refusing_1080p_reports_and_delivers_640x480(monkeypatch, tmp_path):
    fake_dev = tmp_path / "video9"
    fake_dev.write_bytes(b"")
    cap = FakeCapture(deliver=(640, 480), report=(1920, 1080), fps=15.0)
    opened_with = []

    def factory(target):
        opened_with.append(target)
        return cap

    src = open_camera(cfg(camera=str(fake_dev), width=1920, height=1080, fps=30),
                      capture_factory=factory)
    assert opened_with == [str(fake_dev)]
    assert isinstance(src, CameraSource) and src.realtime
    assert (src.width, src.height, src.fps) == (640, 480, 15.0)
    assert "640x480" in src.name and "MJPG" in src.name
    frame = src.read()
    check_frame(frame, 640, 480)
    assert tuple(frame[0, 0]) == (255, 0, 0)
    src.read()
    with pytest.raises(SourceError, match="stopped delivering"):
        src.read()  # fake ran out of frames: like an unplugged camera
    src.close()
    src.close()
    assert cap.released


def test_camera_that_delivers_nothing_is_released_and_reported(tmp_path):
    fake_dev = tmp_path / "video3"
    fake_dev.write_bytes(b"")
    cap = FakeCapture(frames=0)
    with pytest.raises(SourceError, match="delivered no frame") as info:
        open_camera(cfg(camera=str(fake_dev)), capture_factory=lambda t: cap)
    assert cap.released
    assert "--camera" in str(info.value)


def test_named_camera_missing():
    with pytest.raises(SourceError, match="/dev/video77") as info:
        open_source(cfg(camera="/dev/video77"))
    assert "--source demo" in str(info.value)


def test_camera_index_maps_to_device_path():
    assert camera._camera_target("2") == (2, "/dev/video2")
    assert camera._camera_target("/dev/video5") == ("/dev/video5", "/dev/video5")


@pytest.mark.skipif(bool(glob.glob("/dev/video*")), reason="a video device exists here")
def test_auto_camera_without_cameras_suggests_demo():
    with pytest.raises(SourceError, match="no camera found") as info:
        open_source(cfg(camera="auto"))
    assert "--source demo" in str(info.value)
    assert "--camera /dev/videoN" in str(info.value)
    assert camera.list_cameras() == []


def test_auto_camera_skips_devices_that_fail(monkeypatch):
    monkeypatch.setattr(camera, "list_cameras", lambda: [
        {"id": "/dev/null", "name": "dead", "driver": ""},
        {"id": "/dev/zero", "name": "good", "driver": ""}])
    caps = {"/dev/null": FakeCapture(opened=False), "/dev/zero": FakeCapture()}
    src = open_camera(cfg(camera="auto"), capture_factory=lambda t: caps[t])
    assert src.label == "/dev/zero"
    assert caps["/dev/null"].released
    src.close()


def test_parse_v4l2_capability():
    raw = struct.pack(v4l2._V4L2_CAP_FMT, b"v4l2 loopback", b"backdrop", b"platform:v4l2",
                      1, 0x85200003, 0x05200002)
    caps = parse_v4l2_capability(raw)
    assert caps == {"driver": "v4l2 loopback", "card": "backdrop", "capture": False,
                    "output": True}
    raw = struct.pack(v4l2._V4L2_CAP_FMT, b"uvcvideo", b"Webcam", b"usb-1", 1,
                      0x84A00001, 0x04200001)
    assert parse_v4l2_capability(raw)["capture"] is True


def test_scan_reads_names_from_sysfs(tmp_path):
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    for n, name in ((10, "Dummy loopback"), (2, "USB Camera")):
        (dev / f"video{n}").write_bytes(b"")
        (sysfs / f"video{n}").mkdir(parents=True)
        (sysfs / f"video{n}" / "name").write_text(name + "\n")
    found = v4l2.scan_video_devices(str(dev / "video*"), str(sysfs))
    assert [d["path"][-7:] for d in found] == ["/video2", "video10"]  # numeric order
    assert [d["name"] for d in found] == ["USB Camera", "Dummy loopback"]
    assert [d["loopback"] for d in found] == [False, True]
