"""Fault injection: cameras that fail or freeze, sinks that fail, a virtual camera that is
missing or goes away. Time is simulated (SimClock), so the waits are exact and instant."""

import threading
from logging import INFO, WARNING

import numpy as np
import pytest

from backdrop.io import vcam
from backdrop.io.vcam import NO_LOOPBACK
from backdrop.cli.main import main
from backdrop.config import Config, OutputConfig, RunnerConfig
from backdrop.errors import SinkError, SourceError, VirtualCameraError
from backdrop.live.runner import STALL, run_live
from livefakes import FakeCamera, FakePipeline, FakeSink, Opener, SimClock, logged

FPS = 30.0
FRAME = 1 / FPS


def run(clock, opener, by_name, stop, *, frames=0):
    cfg = Config(output=OutputConfig(sinks=tuple(by_name)),
                 runner=RunnerConfig(status_interval=0, frames=frames))

    def open_sink(spec, **kw):
        item = by_name[spec]
        return item(**kw) if callable(item) else item

    stats = run_live(cfg, make_source=opener, make_pipeline=FakePipeline, open_sink=open_sink,
                     clock=clock, stop=stop)
    return stats


def stop_after(stop, count, real_from=0):
    """on_send: set `stop` once `count` real frames with values >= real_from were sent."""
    def on_send(sink):
        if sum(1 for v in sink.values() if v is not None and v >= real_from) >= count:
            stop.set()
    return on_send


def runs(values):
    """[None, None, 5, 6, None] -> [('still', 2), ('real', 2), ('still', 1)]"""
    out = []
    for v in values:
        kind = "still" if v is None else "real"
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + 1)
        else:
            out.append((kind, 1))
    return out


# ---------------------------------------------------------------------------- camera faults

def test_camera_error_keeps_the_output_alive_and_reconnects_with_backoff(caplog):
    clock, stop = SimClock(), threading.Event()
    cam1 = FakeCamera(clock, range(100, 110), then="error", fps=FPS)
    cam2 = FakeCamera(clock, range(200, 10**6), fps=FPS)
    gone = SourceError("no camera found; use --source demo")
    opener = Opener(cam1, gone, gone, gone, cam2)
    sink = FakeSink("s", clock=clock, on_send=stop_after(stop, 30, real_from=200))
    stats = run(clock, opener, {"s": sink}, stop)

    values = sink.values()
    assert [k for k, _ in runs(values)] == ["real", "still", "real"]
    first_still = values.index(None)
    assert values[:first_still] == list(range(100, 110))
    assert all(v >= 200 for v in values if v is not None and values.index(v) > first_still)
    # Backoff: one open attempt per wait, the waits doubling; never a busy loop.
    assert clock.waits_of("capture", at_least=0.5) == [0.5, 1.0, 2.0, 4.0]
    assert opener.calls == 5 and stats.reopen_attempts == 4 and stats.faults == 1
    # The output kept its frame rate through the 7.5 s the camera was gone.
    still_times = [t for t, v in zip(sink.times, values) if v is None]
    assert np.allclose(np.diff(still_times), FRAME, atol=1e-6)
    assert abs(stats.placeholders - 7.5 * FPS) <= 2
    # The placeholder is the last picture dimmed, with a note drawn on it.
    still = sink.frames[first_still]
    assert abs(int(still[0, 0, 0]) - int(109 * 0.45)) <= 1 and still.max() > 200   # white text
    assert cam1.closed == 1
    assert logged(caplog, "stopped delivering", WARNING) == 1       # reported once
    assert logged(caplog, "source back", INFO) == 1


def test_frames_limit_counts_pictures_from_the_source_not_placeholders():
    clock = SimClock()
    cam1 = FakeCamera(clock, range(100, 110), then="error", fps=FPS)
    cam2 = FakeCamera(clock, range(200, 10**6), fps=FPS)
    opener = Opener(cam1, SourceError("no camera found; use --source demo"), cam2)
    sink = FakeSink("s", clock=clock)
    stats = run(clock, opener, {"s": sink}, threading.Event(), frames=30)
    values = sink.values()
    assert [k for k, _ in runs(values)] == ["real", "still", "real"]
    assert len([v for v in values if v is not None]) == stats.processed == 30
    assert stats.placeholders > 15 and stats.sent == len(values) == 30 + stats.placeholders


def test_frozen_camera_is_noticed_after_two_seconds_and_reopened(caplog):
    clock, stop = SimClock(), threading.Event()
    cam1 = FakeCamera(clock, range(100, 110), then="freeze", fps=FPS)
    cam2 = FakeCamera(clock, range(200, 10**6), fps=FPS)
    opener = Opener(cam1, cam2)
    done = stop_after(stop, 20, real_from=200)

    def on_send(sink):
        if sink.values().count(None) == 10:
            cam1.unfreeze.set()   # the driver finally returns (a stale frame)
        done(sink)

    sink = FakeSink("s", clock=clock, on_send=on_send)
    stats = run(clock, opener, {"s": sink}, stop)

    values = sink.values()
    assert [k for k, _ in runs(values)] == ["real", "still", "real"]
    first_still = values.index(None)
    gap = sink.times[first_still] - sink.times[first_still - 1]
    assert STALL <= gap <= STALL + 2 * FRAME
    assert 109 not in values[first_still:]      # the stale frame after the freeze was dropped
    assert cam1.closed == 1 and opener.calls == 2
    assert clock.waits_of("capture", at_least=0.5, at_most=60) == [0.5]
    assert stats.faults == 1
    assert logged(caplog, "delivered no frame for 2 s", WARNING) == 1


def test_end_of_a_non_looping_file_is_not_a_fault(caplog):
    clock = SimClock()
    cam = FakeCamera(clock, range(1, 20), then="end", fps=FPS)
    cam.realtime = False
    sink = FakeSink("s", clock=clock)
    stats = run(clock, Opener(cam), {"s": sink}, threading.Event())
    assert sink.values() == list(range(1, 20))
    assert stats.faults == 0 and stats.placeholders == 0
    assert not [r for r in caplog.records if r.levelno >= WARNING]


def test_placeholder_before_any_frame_is_the_background_or_grey():
    from backdrop.live import placeholder
    from backdrop.config import parse_background

    green = placeholder.unavailable(None, 320, 240, parse_background("#00ff00"))
    assert tuple(green[5, 5]) == (0, 255, 0) and green.shape == (240, 320, 3)
    grey = placeholder.unavailable(None, 320, 240, parse_background("blur"))
    assert grey[5, 5].max() < 60 and grey.max() > 200   # dark, with white text


# ---------------------------------------------------------------------------- sink faults

class OpenScript:
    """open_sink for one spec: returns/raises the scripted items in turn, noting the time."""

    def __init__(self, clock, *items):
        self.clock, self.items, self.times = clock, list(items), []

    def __call__(self, **kw):
        self.times.append(self.clock.now())
        item = self.items.pop(0) if len(self.items) > 1 else self.items[0]
        if isinstance(item, BaseException):
            raise item
        return item


def test_failing_vcam_is_reported_once_reopened_with_backoff_while_others_go_on(caplog):
    clock, stop = SimClock(), threading.Event()
    vcam1 = FakeSink("vcam", clock=clock, fail_at=5)
    vcam2 = FakeSink("vcam", clock=clock)
    busy = VirtualCameraError("virtual camera /dev/video9 is busy")
    vcam = OpenScript(clock, vcam1, busy, busy, vcam2)
    null = FakeSink("null", clock=clock, on_send=lambda s: len(s.frames) == 200 and stop.set())
    stats = run(clock, Opener(FakeCamera(clock, range(1, 10**6))),
                {"vcam": vcam, "null": null}, stop)

    assert len(null.frames) == stats.sent == 200          # the other sink never missed one
    assert len(vcam1.frames) == 5 and vcam1.closed == 1
    assert len(vcam2.frames) > 50       # back after 0.5 + 1 + 2 s of 6.7 s
    gaps = np.diff(vcam.times[1:])   # opened at start, then after 0.5, 1 and 2 s
    assert np.allclose(gaps, [1.0, 2.0], atol=FRAME + 1e-6)
    assert 0.5 <= vcam.times[1] - null.times[5] <= 0.5 + FRAME + 1e-6  # frame 6 failed
    assert logged(caplog, "reopening it", WARNING) == 1
    assert logged(caplog, "output back", INFO) == 1


def test_failing_file_sink_is_dropped_and_the_run_goes_on(caplog):
    clock, stop = SimClock(), threading.Event()
    broken = FakeSink("out.mp4", clock=clock, fail_at=3)
    good = FakeSink("null", clock=clock, on_send=lambda s: len(s.frames) == 50 and stop.set())
    run(clock, Opener(FakeCamera(clock, range(1, 10**6))),
        {"out.mp4": broken, "null": good}, stop)
    assert len(broken.frames) == 3 and len(good.frames) == 50
    assert logged(caplog, "dropped that output", WARNING) == 1


def test_when_every_output_failed_for_good_the_run_ends_with_the_error():
    clock = SimClock()
    broken = FakeSink("out.mp4", clock=clock, fail_at=3)
    with pytest.raises(SinkError, match="every output failed: .*went away"):
        run(clock, Opener(FakeCamera(clock, range(1, 10**6))), {"out.mp4": broken},
            threading.Event())
    assert broken.closed == 1


def test_vcam_missing_at_start_goes_on_with_the_others_and_is_retried(caplog):
    clock, stop = SimClock(), threading.Event()
    missing = VirtualCameraError(NO_LOOPBACK)
    later = FakeSink("vcam", clock=clock)
    vcam = OpenScript(clock, *[missing] * 7, later)   # the user runs modprobe meanwhile
    null = FakeSink("null", clock=clock, on_send=lambda s: len(s.frames) == 900 and stop.set())
    run(clock, Opener(FakeCamera(clock, range(1, 10**6))),
        {"vcam": vcam, "null": null}, stop)
    assert len(null.frames) == 900 and len(later.frames) > 0
    assert np.allclose(np.diff(vcam.times), [0.5, 1, 2, 4, 5, 5, 5], atol=FRAME + 1e-6)
    assert logged(caplog, "modprobe v4l2loopback", WARNING) == 1   # once, not per retry
    assert logged(caplog, "continuing with: null")


def test_vcam_alone_missing_exits_non_zero_with_the_modprobe_fix(capsys):
    if vcam.list_virtual_cameras():
        pytest.skip("a v4l2loopback device exists here")
    code = main(["live", "--source", "demo", "--sink", "vcam", "--frames", "3",
                 "--width", "160", "--height", "120"])
    err = capsys.readouterr().err
    assert code != 0
    line = [m for m in err.splitlines() if m.startswith("backdrop: error")]
    assert len(line) == 1 and "modprobe v4l2loopback" in line[0]
    assert "exclusive_caps=1" in line[0] and "Traceback" not in err


def test_vcam_whose_device_goes_away_is_noticed_and_reopened(tmp_path, caplog):
    """pyvirtualcam only prints a failed write, so the sink's health check must notice."""
    clock, stop = SimClock(), threading.Event()
    device = tmp_path / "video7"
    device.write_bytes(b"")

    cameras = []

    class Camera:  # pyvirtualcam.Camera's surface
        def __init__(self, width, height, fps, *, fmt, device=None, backend=None):
            self.device, self.sent = device, 0
            cameras.append(self)

        def send(self, frame):
            self.sent += 1

        def close(self):
            pass

    made = []

    def open_vcam(width, height, fps, vcam_device):
        made.append(vcam.VirtualCameraSink(width=width, height=height, fps=fps,
                                            device=str(device), camera_factory=Camera))
        return made[-1]

    def on_send(sink):
        if len(sink.frames) == 30:
            device.unlink()          # v4l2loopback device removed
        if len(sink.frames) == 60:
            device.write_bytes(b"")  # and created again
        if len(sink.frames) == 150:
            stop.set()

    null = FakeSink("null", clock=clock, on_send=on_send)
    run(clock, Opener(FakeCamera(clock, range(1, 10**6))),
        {"vcam": open_vcam, "null": null}, stop)
    assert 30 <= cameras[0].sent <= 30 + FPS + 1   # noticed within a second
    assert len(made) >= 2 and cameras[-1].sent > 0
    assert logged(caplog, "went away", WARNING) == 1 and logged(caplog, "output back")


@pytest.mark.parametrize("error,device,vcams,loaded,expect", [
    ("Device /dev/video4 could not be opened due to missing permissions. Did you add your"
     " user to the 'video' group?", "", [], True, "no permission to write the virtual camera."),
    ("No v4l2 loopback device found at /dev/video[0-99]. Did you run 'modprobe"
     " v4l2loopback'?", "", [], False, "v4l2loopback is not loaded"),
    ("No v4l2 loopback device found at /dev/video[0-99]. Did you run 'modprobe"
     " v4l2loopback'?", "", [], True, "loaded but has no devices"),
    ("No v4l2 loopback device found", "", [{"path": "/dev/video4", "writable": False}], True,
     "no permission to write the virtual camera /dev/video4"),
    ("No v4l2 loopback device found", "", [{"path": "/dev/video4", "writable": True}], True,
     "every virtual camera (/dev/video4) is in use"),
    ("Virtual camera device /dev/video4 could not be configured: Device or resource busy",
     "/dev/video4", [], True, "is busy: close the other program"),
])
def test_every_vcam_problem_is_one_line_with_its_fix(monkeypatch, error, device, vcams, loaded,
                                                     expect):
    monkeypatch.setattr(vcam, "list_virtual_cameras", lambda: vcams)
    monkeypatch.setattr(vcam, "loopback_parameters", lambda: {} if loaded else None)
    monkeypatch.setattr(vcam.os.path, "exists", lambda p: True)
    monkeypatch.setattr(vcam.os, "access", lambda p, m: True)
    message = vcam._vcam_message(error, device)
    assert expect in message and "\n" not in message
    assert "Fix:" in message or "close the other program" in message
