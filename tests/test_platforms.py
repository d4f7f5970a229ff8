"""Windows and macOS, simulated on this Linux machine (tests/simplatform.py): nothing Linux-only
is imported, `live`, `devices` and `doctor` run without a traceback, and every message names
that system's fix. The commands run in a subprocess as a user would start them; the virtual
camera is a fake at pyvirtualcam's boundary that raises pyvirtualcam's real texts.

What this cannot show: a real camera through DirectShow or AVFoundation, a real OBS virtual
camera, a real window system. Those need the real machines.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from backdrop import platform
from backdrop.cli import doctor
from backdrop.config import SourceConfig
from backdrop.errors import SourceError
from backdrop.io import camera, devices, preview, vcam
from backdrop.io.vcam import VirtualCameraSink
from backdrop.platform import v4l2

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
SYSTEMS = ["win32", "darwin"]
NAMES = {"win32": "Windows", "darwin": "macOS"}
VCAM_FIX = {"win32": "Unity Capture", "darwin": "System Settings > Privacy & Security"}


def simulated(system, *args, vcam="ok", report=None, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(HERE)]))
    env.pop("DISPLAY", None)  # a preview on this machine must not be what makes it work
    extra = ["--report", str(report)] if report else []
    proc = subprocess.run([sys.executable, str(HERE / "simplatform.py"), system, "--vcam", vcam,
                           *extra, "--", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both, both
    assert "simplatform: backdrop touched" not in both, both  # no /proc, /sys, /dev/video
    return proc


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_module_imports_without_linux_only_modules(system):
    code = ("import pkgutil, sys, importlib, simplatform\n"
            f"simplatform.simulate({system!r})\n"
            "import backdrop\n"
            "names = [m.name for m in pkgutil.walk_packages(backdrop.__path__, 'backdrop.')]\n"
            "for name in names: importlib.import_module(name)\n"
            "try:\n    import fcntl\nexcept ImportError:\n    print('fcntl blocked')\n"
            "print(len(names), 'modules', sys.platform)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(HERE)]))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "fcntl blocked"
    count, _, platform = lines[1].split()
    assert int(count) > 30 and platform == system


@pytest.mark.parametrize("system", SYSTEMS)
def test_live_to_the_virtual_camera_alone_runs_and_does_not_pause(system, tmp_path):
    # 30 frames at 10 fps take 3 s: past the 2 s after which idle detection, if it ran,
    # would find no reader (there is no /proc) and pause.
    report = tmp_path / "vcam.json"
    proc = simulated(system, "live", "--source", "demo", "--sink", "vcam", "--frames", "30",
                     "--fps", "10", "--width", "320", "--height", "240", report=report)
    assert proc.returncode == 0, proc.stderr
    (cam,) = json.loads(report.read_text())["cameras"]
    assert cam["frames"] == 30 and cam["closed"] == 1
    assert (cam["width"], cam["height"]) == (320, 240)
    # Windows: None lets pyvirtualcam try OBS, then Unity Capture; macOS has OBS only.
    assert cam["backend"] == {"win32": None, "darwin": "obs"}[system]
    assert 40 < cam["mean_first"] < 220  # a picture, not a black or "paused" frame
    log = proc.stderr.splitlines()
    assert [line for line in log if "idle" in line] == [
        f"idle when unwatched is off: {NAMES[system]} does not tell which apps read the"
        f" virtual camera"]
    assert "paused" not in proc.stderr
    assert "stopped after 30 frames" in log[-1]


@pytest.mark.parametrize("system", SYSTEMS)
def test_live_without_a_virtual_camera_says_the_fix_in_one_line(system):
    proc = simulated(system, "live", "--source", "demo", "--sink", "vcam", "--frames", "3",
                     vcam="missing")
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("backdrop: error:")]
    assert len(errors) == 1, proc.stderr
    assert "no virtual camera (obs: " in errors[0] and "Fix: install OBS Studio" in errors[0]
    assert VCAM_FIX[system] in errors[0]
    assert "modprobe" not in errors[0]


@pytest.mark.parametrize("system", SYSTEMS)
def test_devices_lists_cameras_and_the_obs_virtual_camera(system):
    proc = simulated(system, "devices")
    assert proc.returncode == 0
    # This machine has no camera, and OpenCV here has no DirectShow/AVFoundation to find one.
    assert proc.stdout.splitlines() == ["cameras: none (use --source demo, or plug in a webcam)",
                                        "virtual cameras:", "  OBS Virtual Camera  opens"]
    missing = simulated(system, "devices", vcam="missing")
    assert missing.returncode == 0
    last = missing.stdout.splitlines()[-1]
    assert last.startswith("virtual cameras: none; no virtual camera (obs: ")
    assert VCAM_FIX[system] in last


@pytest.mark.parametrize("system", SYSTEMS)
def test_doctor_checks_what_applies_to_the_system(system):
    proc = simulated(system, "doctor", vcam="missing")
    out = proc.stdout.splitlines()
    assert "v4l2loopback" not in proc.stdout and "display" not in proc.stdout
    (vcam,) = [i for i, line in enumerate(out) if line.startswith("[warn] virtual camera:")]
    assert "OBS Virtual Camera" in out[vcam]
    assert out[vcam + 1].startswith("       fix: install OBS Studio")
    assert VCAM_FIX[system] in out[vcam + 1]
    camera = [line for line in out if "fix: plug in a webcam" in line]
    assert camera and {"win32": "Settings > Privacy > Camera",
                       "darwin": "System Settings > Privacy & Security > Camera"}[system] in camera[0]
    ok = simulated(system, "doctor")
    assert "[ok] virtual camera: OBS Virtual Camera opens" in ok.stdout


# ---------------------------------------------------------------------------- in this process
# The same choices, made by sys.platform at call time, checked piece by piece.

class Capture:
    """Stands in for cv2.VideoCapture: opens or not, delivers `frames` BGR frames."""

    def __init__(self, target=None, api=None, *, opened=True, frames=3):
        self.target, self.api, self.opened, self.frames = target, api, opened, frames
        self.released = False

    def isOpened(self):
        return self.opened

    def set(self, prop, value):
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 480,
                cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FOURCC: cv2.VideoWriter_fourcc(*"MJPG")
                }.get(prop, 0.0)

    def read(self):
        if self.frames <= 0:
            return False, None
        self.frames -= 1
        return True, np.zeros((480, 640, 3), np.uint8)

    def release(self):
        self.released = True


@pytest.mark.parametrize("system,api", [("linux", "CAP_V4L2"), ("win32", "CAP_DSHOW"),
                                        ("darwin", "CAP_AVFOUNDATION")])
def test_cameras_open_through_the_systems_capture_api(monkeypatch, system, api):
    made = []
    monkeypatch.setattr(cv2, "VideoCapture", lambda *a: made.append(Capture(*a)) or made[-1])
    monkeypatch.setattr(sys, "platform", system)
    camera._open_capture(0)
    assert made[0].target == 0 and made[0].api == getattr(cv2, api)


@pytest.mark.parametrize("system", ["win32", "darwin"])
def test_camera_0_is_index_0_where_cameras_have_no_device_files(monkeypatch, system):
    monkeypatch.setattr(sys, "platform", system)
    opened = []
    src = camera.open_camera(SourceConfig(camera="0"),
                             capture_factory=lambda t: opened.append(t) or Capture(t))
    assert opened == [0] and src.name == "camera 0 640x480 MJPG 30fps"
    src.close()
    with pytest.raises(SourceError, match="picked by number") as info:
        camera.open_camera(SourceConfig(camera="FaceTime HD Camera"))
    assert "--camera N (0, 1, ...)" in str(info.value)


def test_camera_0_is_dev_video0_on_linux_and_names_work(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "linux")
    assert camera._camera_target("0") == (0, "/dev/video0")
    node = tmp_path / "video4"
    node.write_bytes(b"")
    monkeypatch.setattr(v4l2, "list_cameras", lambda host=None: [
        {"path": str(node), "name": "USB Camera", "driver": "uvcvideo"}])
    src = camera.open_camera(SourceConfig(camera="usb camera"), capture_factory=Capture)
    assert src.label == str(node)
    src.close()
    with pytest.raises(SourceError, match="no camera named 'Other'"):
        camera.open_camera(SourceConfig(camera="Other"), capture_factory=Capture)


@pytest.mark.parametrize("system", ["win32", "darwin"])
def test_auto_camera_tries_indices_until_one_does_not_open(monkeypatch, system):
    monkeypatch.setattr(sys, "platform", system)
    caps = [Capture(frames=0), Capture(), Capture(opened=False)]
    src = camera.open_camera(SourceConfig(camera="auto"), capture_factory=lambda i: caps[i])
    assert src.label == "1" and caps[0].released and not caps[1].released
    src.close()
    shut = Capture(opened=False)
    with pytest.raises(SourceError, match="no camera found") as info:
        camera.open_camera(SourceConfig(camera="auto"), capture_factory=lambda i: shut)
    assert shut.released
    privacy = {"win32": "Settings > Privacy > Camera",
               "darwin": "System Settings > Privacy & Security > Camera"}[system]
    assert privacy in str(info.value) and "--source demo" in str(info.value)


def test_a_refused_camera_names_the_privacy_switch(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(SourceError, match="delivered no frame") as info:
        camera.open_camera(SourceConfig(camera="1"), capture_factory=lambda t: Capture(frames=0))
    assert "System Settings > Privacy & Security > Camera" in str(info.value)


@pytest.mark.parametrize("system", ["win32", "darwin"])
def test_listing_cameras_by_index_stops_at_the_first_that_does_not_open(monkeypatch, system):
    monkeypatch.setattr(sys, "platform", system)
    caps = [Capture(), Capture(), Capture(opened=False), Capture()]
    monkeypatch.setattr(cv2, "VideoCapture", lambda index, api: caps[index])
    found = devices.list_cameras()
    assert [(c["id"], c["name"]) for c in found] == [("0", "camera 0"), ("1", "camera 1")]
    assert all(c.released for c in caps[:3]) and not caps[3].released
    assert devices.camera_formats(found[0]).startswith("opens at 640x480")


@pytest.mark.parametrize("system,backend", [("linux", "v4l2loopback"), ("win32", None),
                                            ("darwin", "obs")])
def test_vcam_uses_the_systems_pyvirtualcam_backend(monkeypatch, system, backend):
    monkeypatch.setattr(sys, "platform", system)
    made = []

    class Camera:
        def __init__(self, width, height, fps, *, fmt, device=None, backend=None):
            self.backend, self.device = backend, "OBS Virtual Camera"
            made.append(self)

        def close(self):
            pass

    sink = VirtualCameraSink(width=64, height=48, fps=30, camera_factory=Camera)
    assert made[0].backend == backend
    sink.check()  # a name, not a file: nothing to stat (it would fail for a missing file)
    sink.close()


# pyvirtualcam's texts, as its native backends raise them (0.15)
OBS_WIN = ("'obs' backend: OBS Virtual Camera device not found! Did you install OBS?\n"
           "'unitycapture' backend: No camera registered. Did you install any camera?")
OBS_MAC = ("'obs' backend: OBS Virtual Camera is not installed in your system. Use the Virtual"
           " Camera function in OBS 30.0 or later to trigger the installation and activate the"
           " System Extension in System Settings. You may need to restart your machine after"
           " that. [Device not found]")
LOOPBACK = "'v4l2loopback' backend: No v4l2 loopback device found at /dev/video[0-99]."


@pytest.mark.parametrize("system,error,device,expect", [
    ("win32", OBS_WIN, "", ["obs: OBS Virtual Camera device not found",
                            "unitycapture: No camera registered", "install OBS Studio",
                            "Unity Capture"]),
    ("darwin", OBS_MAC, "", ["obs: OBS Virtual Camera is not installed", "OBS Studio",
                             "30 or later", "System Settings > Privacy & Security"]),
    ("win32", "'obs' backend: virtual camera output could not be started", "",
     ["in use", "Stop Virtual Camera"]),
    ("darwin", "'obs' backend: Multiple cameras are not supported by this backend.", "",
     ["in use"]),
    ("darwin", "'obs' backend: This backend supports only the 'OBS Virtual Camera' device.",
     "/dev/video2", ["no virtual camera named '/dev/video2' on macOS", "leave out"]),
    ("linux", LOOPBACK, "", ["modprobe v4l2loopback", "exclusive_caps=1"]),
])
def test_vcam_errors_name_the_systems_fix(monkeypatch, system, error, device, expect):
    monkeypatch.setattr(sys, "platform", system)
    message = vcam._vcam_message(error, device)
    assert "\n" not in message
    for part in expect:
        assert part in message
    others = {"linux": ["OBS"], "win32": ["modprobe", "System Settings"],
              "darwin": ["modprobe", "Unity"]}[system]
    assert not any(o in message for o in others), message


@pytest.mark.parametrize("system", ["win32", "darwin"])
def test_windows_and_macos_need_no_x_server_for_the_preview(monkeypatch, system):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", system)
    assert preview.display_available()
    monkeypatch.setattr(sys, "platform", "linux")
    assert not preview.display_available()


def test_idle_detection_only_where_readers_can_be_seen(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    assert platform.idle_detection_unavailable() == ""  # this machine has /proc
    for system, name in NAMES.items():
        monkeypatch.setattr(sys, "platform", system)
        assert platform.idle_detection_unavailable().startswith(f"{name} does not tell")


def test_one_fourcc_decoder_for_drivers_and_opencv():
    assert platform.fourcc_text(cv2.VideoWriter_fourcc(*"MJPG")) == "MJPG"  # a float from cv2
    assert platform.fourcc_text(0x56595559) == "YUYV"  # an int from V4L2
    assert platform.fourcc_text(float("nan")) == platform.fourcc_text(0) == ""
    assert platform.fourcc_text(0x01020304) == ""  # not printable
    assert v4l2.fourcc_text is platform.fourcc_text and camera.fourcc_text is platform.fourcc_text


@pytest.mark.parametrize("system", ["win32", "darwin"])
def test_doctor_on_a_desktop_system_checks_the_obs_camera_not_v4l2loopback(monkeypatch, system):
    monkeypatch.setattr(sys, "platform", system)
    monkeypatch.setattr(cv2, "VideoCapture", lambda index, api: Capture(opened=index < 1))
    probe = doctor.Probe(vcam=lambda: (True, "OBS Virtual Camera"))
    checks = {c.name: c for c in doctor.run_checks(probe, software=False)}
    assert set(checks) == {"virtual camera", "camera 0"}
    assert checks["virtual camera"].ok and checks["camera 0"].detail.startswith("opens at 640x480")
    lines, ok = doctor.report(list(checks.values()))
    assert ok and lines[-1] == "live will work"


def test_doctor_does_not_ask_intel_macs_for_litert(monkeypatch):
    import platform as stdlib_platform

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(stdlib_platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(doctor, "_version", lambda dist: None if dist == "ai-edge-litert"
                        else "1")
    check = {c.name: c for c in doctor.software_checks()}["ai-edge-litert"]
    assert check.ok and "no wheel for Intel macs" in check.detail
    monkeypatch.setattr(stdlib_platform, "machine", lambda: "arm64")
    assert not {c.name: c for c in doctor.software_checks()}["ai-edge-litert"].ok


def test_without_ai_edge_litert_the_mediapipe_segmenter_runs(monkeypatch):
    # pyproject.toml leaves ai-edge-litert out where it has no wheel (Intel macs).
    import importlib.util

    from backdrop.engine.segment import MediaPipeSegmenter, create_segmenter

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ai_edge_litert" else real(name, *a))
    seg = create_segmenter()
    try:
        assert isinstance(seg, MediaPipeSegmenter)
        w, h = seg.input_size
        mask = seg.segment(np.zeros((h, w, 3), np.uint8))
        assert mask.shape == (h, w)
    finally:
        seg.close()


def test_batches_take_no_more_processes_than_free_memory_holds(monkeypatch):
    """Linux reads MemAvailable; Windows' and macOS's own counts are simulated here through
    the calls backdrop makes (GlobalMemoryStatusEx, sysconf)."""
    import ctypes
    from types import SimpleNamespace

    from backdrop.offline import batch

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    gib = 1 << 30
    linux = batch.available_memory()
    assert linux is not None and 0 < linux < 1 << 50
    monkeypatch.setattr(batch, "available_memory", lambda: 3 * gib + 5)
    assert batch.jobs(None, 100) == 3 and batch.jobs(None, 2) == 2
    assert batch.jobs(12, 100) == 12                      # asked for: as asked
    monkeypatch.setattr(batch, "available_memory", lambda: gib // 2)
    assert batch.jobs(None, 100) == 1
    monkeypatch.setattr(batch, "available_memory", lambda: None)
    assert batch.jobs(None, 100) == 16
    monkeypatch.undo()

    class Kernel32:
        def GlobalMemoryStatusEx(self, status):
            assert status._obj.length == ctypes.sizeof(status._obj)   # as Windows checks
            status._obj.available = 6 * gib
            return 1

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(ctypes, "windll", SimpleNamespace(kernel32=Kernel32()), raising=False)
    assert batch.available_memory() == 6 * gib
    monkeypatch.setattr(sys, "platform", "darwin")
    sizes = {"SC_PHYS_PAGES": 4 * 1024 * 1024, "SC_PAGE_SIZE": 4096}     # 16 GB
    monkeypatch.setattr(os, "sysconf", sizes.__getitem__)
    assert batch.available_memory() == 8 * gib
