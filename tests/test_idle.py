"""Idle when unwatched: with no app reading the virtual camera, the camera is released and a
"paused" frame goes out once a second; an app opening the device resumes the picture.

The reader is a real process holding the (stand-in) device file open, found the way the
runner finds real readers: inotify on the node plus /proc/*/fd.
"""

import subprocess
import sys
import threading
from logging import INFO, WARNING
from pathlib import Path

import numpy as np
import pytest

from backdrop.platform import v4l2 as devices

from backdrop.live import runner, watch
from backdrop.config import Config, OutputConfig, RunnerConfig
from backdrop.platform.v4l2 import Host, Holders
from backdrop.live.runner import run_live
from backdrop.live.watch import ViewerWatch
from livefakes import FakeCamera, FakePipeline, FakeSink, SimClock, logged

READER = "import sys; f = open(sys.argv[1], 'rb'); print('open', flush=True); sys.stdin.read()"


def start_reader(path):
    """Another program opening the virtual camera; returns once it holds it open."""
    proc = subprocess.Popen([sys.executable, "-c", READER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "open"
    return proc


def stop_reader(proc):
    proc.stdin.close()
    proc.wait(timeout=30)
    proc.stdout.close()


def live(clock, sinks, stop, **cfg):
    cams = []

    def camera():
        cams.append(FakeCamera(clock, range(len(cams) * 120 + 1, 256)))  # then repeats
        return cams[-1]

    by_name = {s.name: s for s in sinks}
    config = Config(output=OutputConfig(sinks=tuple(by_name), **cfg),
                    runner=RunnerConfig(status_interval=0))
    stats = run_live(config, make_source=camera, make_pipeline=FakePipeline,
                     open_sink=lambda spec, **kw: by_name[spec], clock=clock,
                     stop=stop)
    return stats, cams


def test_pauses_without_readers_and_resumes_when_an_app_opens_the_vcam(tmp_path, caplog):
    clock, stop = SimClock(), threading.Event()
    dev = tmp_path / "video9"
    dev.write_bytes(b"")
    marks, reader = {}, {}

    def on_send(sink):
        paused = sink.values()[-1] is None
        n_paused = sink.values().count(None)
        if n_paused == 3 and "opened" not in marks:
            reader["proc"] = start_reader(dev)
            marks["opened"] = clock.now()
        elif "opened" in marks and not paused and "resumed" not in marks:
            marks["resumed"] = clock.now()
            marks["resumed_at"] = len(sink.frames)
        elif "resumed" in marks and len(sink.frames) == marks["resumed_at"] + 60:
            stop_reader(reader.pop("proc"))
            marks["left"] = clock.now()
        elif "left" in marks and paused:
            marks["idle_again"] = clock.now()
            stop.set()

    vcam = FakeSink("vcam", clock=clock, device=str(dev), on_send=on_send)
    try:
        stats, cams = live(clock, [vcam], stop)
    finally:
        if "proc" in reader:
            stop_reader(reader["proc"])
    values, times = vcam.values(), np.array(vcam.times)
    start = times[0]
    first_paused = values.index(None)
    assert 2.0 - 1e-6 <= times[first_paused] - start <= 2.0 + 0.25 + 1 / 30   # grace time
    assert cams[0].closed == 1                                      # camera released
    # Paused frames at one a second, flat and dark with a note: no picture of the user.
    assert np.allclose(np.diff(times[first_paused:first_paused + 3]), 1.0)
    assert vcam.frames[first_paused][0, 0].max() < 60
    # An app opens the device: the picture is back within a fraction of a second.
    assert marks["resumed"] - marks["opened"] <= 0.25 + 2 / 30
    assert len(cams) == 2 and values[marks["resumed_at"] - 1] >= 120
    # It leaves: paused again after the grace time (counted from the last poll that saw it),
    # camera released again.
    assert 2.0 - 0.25 <= marks["idle_again"] - marks["left"] <= 2.0 + 0.25 + 2 / 30
    assert cams[1].closed == 1
    assert stats.paused == 4 and logged(caplog, "paused, camera released", INFO) == 2
    assert any("opened" in m and "resuming" in m for m in caplog.messages)


def test_no_idle_keeps_processing(tmp_path):
    clock, stop = SimClock(), threading.Event()
    dev = tmp_path / "video9"
    dev.write_bytes(b"")
    vcam = FakeSink("vcam", clock=clock, device=str(dev),
                    on_send=lambda s: len(s.frames) == 300 and stop.set())
    stats, cams = live(clock, [vcam], stop, idle_when_unwatched=False)
    assert stats.processed == 300 and stats.paused == 0 and len(cams) == 1


def test_cannot_tell_who_reads_means_always_watched_said_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(watch, "find_holders", lambda *a, **k: Holders(readable=0, denied=40))
    clock, stop = SimClock(), threading.Event()
    dev = tmp_path / "video9"
    dev.write_bytes(b"")
    vcam = FakeSink("vcam", clock=clock, device=str(dev),
                    on_send=lambda s: len(s.frames) == 300 and stop.set())
    stats, _ = live(clock, [vcam], stop)
    assert stats.paused == 0 and stats.processed == 300
    assert logged(caplog, "cannot see which programs read", WARNING) == 1


@pytest.mark.parametrize("system,name", [("win32", "Windows"), ("darwin", "macOS")])
def test_where_readers_cannot_be_seen_idle_is_off_and_said_once(monkeypatch, caplog, system,
                                                                 name):
    # OBS's virtual camera is a name, not a file: nothing under /proc tells who reads it, so
    # a watch would find no reader and pause for good after the grace time.
    monkeypatch.setattr(sys, "platform", system)
    made = []
    monkeypatch.setattr(runner, "ViewerWatch", lambda *a, **k: made.append(a) or ViewerWatch(*a, **k))
    clock, stop = SimClock(), threading.Event()
    vcam = FakeSink("vcam", clock=clock, device="OBS Virtual Camera",
                    on_send=lambda s: len(s.frames) == 300 and stop.set())  # 10 s
    stats, cams = live(clock, [vcam], stop)
    assert stats.processed == 300 and stats.paused == 0 and len(cams) == 1
    assert vcam.times[-1] - vcam.times[0] > 9.0 and not made
    assert [r.getMessage() for r in caplog.records if "idle" in r.getMessage()] == [
        f"idle when unwatched is off: {name} does not tell which apps read the virtual camera"]


# ---------------------------------------------------------------------------- ViewerWatch

class StepClock:
    def __init__(self):
        self.t = 0.0

    def now(self):
        return self.t


@pytest.fixture
def fake_host(tmp_path):
    """A fake /dev/video0 and /proc with one unrelated process (pid 10)."""
    host = Host(str(tmp_path))
    (tmp_path / "dev").mkdir()
    dev = tmp_path / "dev" / "video0"
    dev.write_bytes(b"")
    fd = tmp_path / "proc" / "10" / "fd"
    fd.mkdir(parents=True)
    (fd / "0").symlink_to("/dev/null")
    return host, dev


def add_reader(host, dev, pid=20, name="zoom"):
    proc = Path(host.root, "proc", str(pid))
    (proc / "fd").mkdir(parents=True, exist_ok=True)
    (proc / "fd" / "7").symlink_to(dev)
    (proc / "comm").write_text(name + "\n")
    with open(dev, "rb"):  # what the app does: opening the node is what inotify reports
        pass


def test_viewer_watch_scans_only_when_something_happened(fake_host, monkeypatch):
    host, dev = fake_host
    scans = []
    real = devices.find_holders
    monkeypatch.setattr(watch, "find_holders", lambda *a, **k: scans.append(1) or real(*a, **k))
    clock = StepClock()
    viewers = ViewerWatch([str(dev)], clock, host=host)
    assert viewers.events.available
    seen = []
    for _ in range(16):  # 4 s of polls at 4 Hz with nobody there
        seen.append(viewers.watched())
        clock.t += 0.25
    assert seen[:8] == [True] * 8 and not any(seen[9:])   # watched only during the grace time
    assert len(scans) == 1                                  # inotify: no event, no rescan
    add_reader(host, dev)
    assert viewers.watched() is True and viewers.readers == {20: "zoom"}
    assert len(scans) == 2
    for _ in range(8):  # a known reader is re-checked cheaply, not by a full scan
        clock.t += 0.25
        assert viewers.watched() is True
    assert len(scans) == 2
    clock.t += 5.0
    viewers.watched()
    assert len(scans) == 3    # the safety rescan
    viewers.close()


def test_viewer_watch_without_inotify_scans_every_poll(fake_host, monkeypatch):
    host, dev = fake_host
    monkeypatch.setattr(devices.OpenWatch, "available", property(lambda self: False))
    clock = StepClock()
    viewers = ViewerWatch([str(dev)], clock, host=host)
    for _ in range(12):
        clock.t += 0.25
        viewers.watched()
    assert viewers.watched() is False
    add_reader(host, dev, name="obs")
    clock.t += 0.25
    assert viewers.watched() is True and viewers.readers == {20: "obs"}
