"""The live loop with fakes at its boundaries: a source, a pipeline and sinks."""

import contextlib
import threading

import numpy as np
import pytest

from backdrop.config import Config, OutputConfig, RunnerConfig, parse_background
from backdrop.errors import SourceError, VirtualCameraError
from backdrop.pipeline import Frame
from backdrop.runner import Controls, LatestFrame, open_sinks, run_live


class FakeSource:
    def __init__(self, n=10, realtime=False, fps=1000.0, fail_at=None):
        self.width, self.height, self.fps, self.realtime = 8, 6, fps, realtime
        self.name, self.n, self.i, self.fail_at, self.closed = "fake", n, 0, fail_at, 0

    def read(self):
        if self.fail_at is not None and self.i == self.fail_at:
            raise SourceError("camera unplugged")
        if self.i >= self.n:
            return None
        self.i += 1
        return np.full((6, 8, 3), self.i, np.uint8)

    def close(self):
        self.closed += 1

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class FakePipeline:
    def __init__(self):
        self.spec, self.mirror, self.closed, self.seen = parse_background("blur"), False, 0, []

    def warm_up(self):
        return 0.0

    def process(self, frame):
        self.seen.append(int(frame[0, 0, 0]))
        return Frame(image=frame, alpha=frame[..., 0], timings={"segment": 1.0})

    def set_background(self, spec):
        self.spec = parse_background(spec) if isinstance(spec, str) else spec

    def close(self):
        self.closed += 1

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class FakeSink:
    def __init__(self, name="fake", keys=()):
        self.name, self.frames, self.closed, self.keys = name, [], 0, list(keys)

    def send(self, frame):
        self.frames.append(frame.copy())

    def close(self):
        self.closed += 1

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def run(source, sinks, frames=0, backgrounds=("blur", "none")):
    pipe = FakePipeline()
    cfg = Config(output=OutputConfig(sinks=tuple(s.name for s in sinks), backgrounds=backgrounds),
                 runner=RunnerConfig(frames=frames, status_interval=0))
    by_name = {s.name: s for s in sinks}
    stats = run_live(cfg, make_source=lambda: source, make_pipeline=lambda: pipe,
                     open_sink=lambda spec, **kw: by_name[spec], log=lambda m: None)
    return stats.sent, pipe


def test_stops_after_n_frames_and_releases_everything():
    src, sink = FakeSource(n=1000), FakeSink()
    sent, pipe = run(src, [sink], frames=5)
    assert sent == 5 and len(sink.frames) == 5
    assert src.closed >= 1 and sink.closed == 1 and pipe.closed == 1
    assert pipe.seen == sorted(pipe.seen) and len(set(pipe.seen)) == 5   # newest, in order


def test_end_of_a_non_looping_source_ends_the_run():
    src, sink = FakeSource(n=3, fps=1e6), FakeSink()
    sent, _ = run(src, [sink])
    assert 1 <= sent <= 3 and src.closed


def test_source_error_reaches_the_caller_and_devices_are_released():
    src, sink = FakeSource(n=100, fail_at=2), FakeSink()
    with pytest.raises(SourceError, match="unplugged"):
        run(src, [sink])
    assert src.closed and sink.closed == 1


def test_latest_frame_keeps_only_the_newest():
    src = FakeSource(n=50, fps=1e6)
    with contextlib.closing(LatestFrame(src).start()) as grab:
        got = []
        last = 0
        while True:
            c = grab.next(last, timeout=2)
            if c is None:
                break
            got.append(c.seq)
            last = c.seq
    assert got == sorted(set(got)) and got[-1] == 50


def test_missing_vcam_is_skipped_when_other_sinks_remain():
    logs = []
    good = FakeSink("null")

    def opener(spec, **kw):
        if spec == "vcam":
            raise VirtualCameraError("no virtual camera: modprobe v4l2loopback exclusive_caps=1")
        return good

    with contextlib.ExitStack() as stack:
        sinks = open_sinks(["vcam", "null"], width=8, height=6, fps=30, vcam_device="",
                           log=logs.append, stack=stack, opener=opener)
    assert sinks == [good]
    assert any("modprobe" in m for m in logs) and any("continuing with: null" in m for m in logs)
    with pytest.raises(VirtualCameraError):
        with contextlib.ExitStack() as stack:
            open_sinks(["vcam"], width=8, height=6, fps=30, vcam_device="", log=logs.append,
                       stack=stack, opener=opener)


def test_hotkeys_cycle_toggle_mirror_and_quit():
    pipe, logs = FakePipeline(), []
    c = Controls(pipe, ["blur", "#00ff00", "none"], logs.append)
    assert c.handle("b") and pipe.spec.kind == "colour"
    assert c.handle("b") and pipe.spec.kind == "none"
    assert c.handle("b") and pipe.spec.kind == "blur"
    assert c.handle("space") and pipe.spec.kind == "none"
    assert c.handle("space") and pipe.spec.kind == "blur"
    assert c.handle("m") and pipe.mirror
    assert c.handle(None) and c.handle("x")
    assert not c.handle("q") and not c.handle("esc")


def test_stop_event_ends_the_loop():
    src = FakeSource(n=10**9)
    stop = threading.Event()

    class StoppingSink(FakeSink):
        def send(self, frame):
            super().send(frame)
            if len(self.frames) == 3:
                stop.set()

    s = StoppingSink()
    cfg = Config(output=OutputConfig(sinks=("s",)), runner=RunnerConfig(status_interval=0))
    stats = run_live(cfg, make_source=lambda: src, make_pipeline=FakePipeline,
                     open_sink=lambda spec, **kw: s, log=lambda m: None, stop=stop)
    assert stats.sent == 3 and s.closed == 1
    assert len(stats.times.samples["latency"]) == 3
