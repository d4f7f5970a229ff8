"""The live loop with fakes at its boundaries: a source, a pipeline and sinks."""

import os
import signal
import threading
from logging import INFO, WARNING

import numpy as np
import pytest

from backdrop.config import Config, OutputConfig, RunnerConfig, load
from backdrop.live.controls import Controls
from backdrop.errors import SourceError, VirtualCameraError
from backdrop.live.feed import Feed
from backdrop.live.outputs import open_outputs
from backdrop.live.runner import run_live
from backdrop.live.watch import Clock
from livefakes import (Closes, FakeCamera, FakePipeline, FakePreview, FakeSink, SimClock, logged,
                       value_of)


class FakeSource(Closes):
    def __init__(self, n=10, realtime=False, fps=1000.0, fail_at=None, error=SourceError):
        self.width, self.height, self.fps, self.realtime = 8, 6, fps, realtime
        self.name, self.n, self.i, self.fail_at, self.closed = "fake", n, 0, fail_at, 0
        self.error = error

    def read(self):
        if self.fail_at is not None and self.i == self.fail_at:
            raise self.error("camera unplugged")
        if self.i >= self.n:
            return None
        self.i += 1
        return np.full((6, 8, 3), self.i, np.uint8)


def run(source, sinks, frames=0, backgrounds=("blur", "none")):
    pipe = FakePipeline()
    cfg = Config(output=OutputConfig(sinks=tuple(s.name for s in sinks), backgrounds=backgrounds),
                 runner=RunnerConfig(frames=frames, status_interval=0))
    by_name = {s.name: s for s in sinks}
    stats = run_live(cfg, make_source=lambda: source, make_pipeline=lambda: pipe,
                     open_sink=lambda spec, **kw: by_name[spec])
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


def test_a_bug_in_the_source_reaches_the_caller_and_devices_are_released():
    """Device faults are retried (test_faults.py); anything else is a bug and must surface."""
    src, sink = FakeSource(n=100, fail_at=2, error=RuntimeError), FakeSink()
    with pytest.raises(RuntimeError, match="unplugged"):
        run(src, [sink])
    assert src.closed and sink.closed == 1


def test_a_source_that_cannot_be_opened_at_start_reaches_the_caller():
    def make_source():
        raise SourceError("no camera found; use --source demo")

    sink = FakeSink()
    cfg = Config(output=OutputConfig(sinks=("fake",)), runner=RunnerConfig(status_interval=0))
    pipe = FakePipeline()
    with pytest.raises(SourceError, match="--source demo"):
        run_live(cfg, make_source=make_source, make_pipeline=lambda: pipe,
                 open_sink=lambda spec, **kw: sink)
    assert pipe.closed == 0 and sink.closed == 0   # nothing built or opened after the failure


def test_a_missing_camera_is_reported_before_the_warm_up():
    """The warm-up takes up to 7 s; "no camera found" must not wait for it."""
    warmed = []

    class Pipeline(FakePipeline):
        def warm_up(self):
            warmed.append(self)
            return 0.0

    def make_source():
        raise SourceError("no camera found; use --source demo")

    cfg = Config(output=OutputConfig(sinks=("fake",)), runner=RunnerConfig(status_interval=0))
    with pytest.raises(SourceError, match="no camera found"):
        run_live(cfg, make_source=make_source, make_pipeline=Pipeline,
                 open_sink=lambda spec, **kw: FakeSink())
    assert warmed == []


def test_feed_keeps_only_the_newest():
    src = FakeSource(n=50, fps=1e6)
    with Feed(src, lambda: src, clock=Clock()).start() as feed:
        got, last = [], 0
        while not (feed.ended and feed.poll(last) is None):
            feed.changed.clear()
            c = feed.poll(last)
            if c is None:
                assert feed.changed.wait(5)
                continue
            got.append(c.seq)
            last = c.seq
    assert got == sorted(set(got)) and got[-1] == 50
    assert src.closed == 1 and feed.faults == 0


def test_missing_vcam_is_skipped_when_other_sinks_remain(caplog):
    good = FakeSink("null")

    def opener(spec):
        if spec == "vcam":
            raise VirtualCameraError("no virtual camera: modprobe v4l2loopback exclusive_caps=1")
        return good

    kw = dict(open_one=opener, clock=Clock(), display_available=lambda: False)
    with open_outputs(["vcam", "null"], **kw) as outputs:
        assert outputs.sinks == [good]
    assert logged(caplog, "modprobe", WARNING) and logged(caplog, "continuing with: null")
    with pytest.raises(VirtualCameraError):
        open_outputs(["vcam"], **kw)


def test_auto_sinks_are_vcam_plus_preview_only_with_a_display():
    opened = []
    kw = dict(open_one=lambda spec: opened.append(spec) or FakeSink(spec), clock=Clock())
    open_outputs(["auto", "null"], display_available=lambda: False, **kw).close()
    open_outputs(["auto"], display_available=lambda: True, **kw).close()
    assert opened == ["vcam", "null", "vcam", "preview"]


def test_hotkeys_cycle_toggle_mirror_privacy_and_quit():
    pipe = FakePipeline()
    c = Controls(pipe, ["blur", "#00ff00", "none"])
    assert c.handle("b") and pipe.spec.kind == "colour"
    assert c.handle("b") and pipe.spec.kind == "none"
    assert c.handle("b") and pipe.spec.kind == "blur"
    assert c.handle("space") and pipe.spec.kind == "none"
    assert c.handle("space") and pipe.spec.kind == "blur"
    assert c.handle("m") and pipe.mirror
    assert c.handle("p") and c.privacy == "blank"
    assert c.handle("p") and c.privacy == "off"
    c.privacy_key = "freeze"
    assert c.handle("p") and c.privacy == "freeze"
    assert c.handle(None) and c.handle("x")
    assert not c.handle("q") and not c.handle("esc")


def test_live_flags_map_onto_settings():
    from backdrop.cli.main import build_parser, live_overrides

    args = build_parser().parse_args(["live", "--no-idle", "--privacy", "blank"])
    assert live_overrides(args)["output"] == {"idle_when_unwatched": False, "privacy": "blank"}
    assert live_overrides(build_parser().parse_args(["live"]))["output"] == {}


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
                     open_sink=lambda spec, **kw: s, stop=stop)
    assert stats.sent == 3 and s.closed == 1
    assert len(stats.times.samples["latency"]) == 3


# ---------------------------------------------------------------------------- live control

def live(clock, sinks, *, config=None, make_source=None, make_pipeline=None, **kw):
    """run_live on the simulated clock with fake cameras (a new one per open); returns
    (stats, pipelines); what it logged is in caplog."""
    pipes = []
    make_source = make_source or (lambda: FakeCamera(clock, range(1, 10**6)))

    def make(p=None):
        pipes.append(FakePipeline(p))
        return pipes[-1]

    by_name = {s.name: s for s in sinks}
    cfg = config or Config(output=OutputConfig(sinks=tuple(by_name)),
                           runner=RunnerConfig(status_interval=0))
    stats = run_live(cfg, make_source=make_source, make_pipeline=make_pipeline or make,
                     open_sink=lambda spec, **k: by_name[spec], clock=clock,
                     **kw)
    return stats, pipes


def test_privacy_key_blanks_then_freezes_and_releases_the_camera(caplog):
    clock = SimClock()
    cams = []

    def camera():
        cams.append(FakeCamera(clock, range(len(cams) * 1000 + 1, 10**6)))
        return cams[-1]

    stop = threading.Event()
    keys = {10: "p", 40: "p"}   # blank from frame 10 to 40, then live again

    def on_send(sink):
        if len(sink.frames) == 60:
            stop.set()

    preview = FakePreview(keys=keys, clock=clock, on_send=on_send)
    stats, _ = live(clock, [preview], make_source=camera, stop=stop)
    kinds = [value_of(f) is not None for f in preview.frames]
    assert all(kinds[:10]) and not any(kinds[10:40]) and all(kinds[41:])
    blank = preview.frames[20]
    assert blank.std() > 0  # a flat frame with a note, not the picture
    assert stats.private == 30
    assert len(cams) == 2 and cams[0].closed == 1   # released meanwhile, then opened again
    assert logged(caplog, "privacy on") and logged(caplog, "privacy off")
    # The blank frames kept coming at the camera's frame rate.
    gaps = np.diff(preview.times[11:39])
    assert np.allclose(gaps, 1 / 30, atol=1e-6)


def test_frames_limit_does_not_count_privacy_frames():
    clock = SimClock()
    preview = FakePreview(keys={5: "p", 25: "p"}, clock=clock)   # blank for 20 frames
    cfg = Config(output=OutputConfig(sinks=("preview",)),
                 runner=RunnerConfig(frames=30, status_interval=0))
    stats, _ = live(clock, [preview], config=cfg)
    pictures = [v for v in preview.values() if v is not None]
    assert len(pictures) == stats.processed == 30 and stats.private == 20
    assert stats.sent == len(preview.frames) == 50


def test_config_privacy_freeze_repeats_the_last_output(tmp_path, caplog):
    clock = SimClock()
    path = tmp_path / "live.toml"
    path.write_text('[output]\nsinks = ["s"]\n')
    stop = threading.Event()

    def on_send(sink):
        if len(sink.frames) == 10:
            path.write_text('[output]\nsinks = ["s"]\nprivacy = "freeze"\n')
        if len(sink.frames) == 80:
            stop.set()

    sink = FakeSink("s", clock=clock, on_send=on_send)
    stats, _ = live(clock, [sink], config=load(path), stop=stop,
                    config_path=str(path), load_config=lambda: load(path))
    values = sink.values()
    # The camera's values only grow; from the edit on, the last picture repeats.
    k = next(i for i in range(1, len(values)) if values[i] == values[i - 1])
    assert 10 <= k <= 10 + 16   # applied within ~0.5 s at 30 fps
    assert all((f == sink.frames[k - 1]).all() for f in sink.frames[k:])
    assert stats.private == 80 - k
    assert any("privacy freeze" in m for m in caplog.messages)


def test_config_edits_apply_live_and_bad_ones_keep_the_old_settings(tmp_path, caplog):
    clock = SimClock()
    path = tmp_path / "live.toml"
    path.write_text('[output]\nsinks = ["s"]\n[pipeline]\nbackground = "blur"\n')
    edits = {
        20: '[output]\nsinks = ["s"]\n[pipeline]\nbackground = "#00ff00"\nmirror = true\n',
        60: '[output]\nsinks = ["s"]\n[pipeline]\nbackground = "#nope"\n',
        100: '[output]\nsinks = ["s"]\n[pipeline]\nbackground = "#00ff00"\nmirror = true\n'
             'quality = "best"\n',
        140: '[output]\nsinks = ["s", "other"]\n[pipeline]\nbackground = "#00ff00"\n'
             'mirror = true\nquality = "best"\n',
    }
    stop = threading.Event()

    def on_send(sink):
        n = len(sink.frames)
        if n in edits:
            path.write_text(edits[n])
            os.utime(path, ns=(n * 10**9, n * 10**9))  # an edit within the same mtime tick
        if n == 180:
            stop.set()

    sink = FakeSink("s", clock=clock, on_send=on_send)
    stats, pipes = live(clock, [sink], config=load(path), stop=stop, config_path=str(path),
                        load_config=lambda: load(path))
    first = pipes[0]
    assert first.specs[0] == "blur:12" and first.specs[-1] == "#00ff00" and first.mirror
    assert first.specs.index("#00ff00") <= 20 + 16   # applied within ~0.5 s at 30 fps
    bad = [m for m in caplog.messages if "#nope" in m]
    assert len(bad) == 1 and "keeping the previous settings" in bad[0] and "\n" not in bad[0]
    # quality needs a new pipeline: built from the new settings, the old one closed
    assert len(pipes) == 2 and pipes[1].config.quality == "best" and first.closed == 1
    assert pipes[1].seen and pipes[1].mirror is False  # FakePipeline ignores config.mirror
    assert any("[output] sinks" in m and "restart" in m for m in caplog.messages)
    assert stats.sent == 180


def test_sighup_reloads_the_config(tmp_path, caplog):
    clock = SimClock()
    path = tmp_path / "live.toml"
    path.write_text('[output]\nsinks = ["s"]\n')
    stop = threading.Event()
    real = os.stat(path)

    def on_send(sink):
        n = len(sink.frames)
        if n == 10:  # same size, same mtime: only the signal can tell
            path.write_text('[output]\nsinks = ["t"]\n')
            os.utime(path, ns=(real.st_atime_ns, real.st_mtime_ns))
        if n == 12:
            os.kill(os.getpid(), signal.SIGHUP)
        if n == 20:
            stop.set()

    sink = FakeSink("s", clock=clock, on_send=on_send)
    old = signal.getsignal(signal.SIGHUP)
    live(clock, [sink], config=load(path), stop=stop, config_path=str(path),
         load_config=lambda: load(path))
    assert any("[output] sinks" in m for m in caplog.messages)
    assert signal.getsignal(signal.SIGHUP) == old   # restored


def test_preview_means_someone_watches(tmp_path):
    """With a preview open the vcam's lack of readers does not pause anything."""
    clock = SimClock()
    dev = tmp_path / "video9"
    dev.write_bytes(b"")
    stop = threading.Event()
    vcam = FakeSink("vcam", clock=clock, device=str(dev))
    preview = FakePreview(clock=clock, on_send=lambda s: len(s.frames) == 200 and stop.set())
    stats, _ = live(clock, [vcam, preview], stop=stop)
    assert stats.paused == 0 and stats.processed == 200   # 200 frames = 6.7 s > the 2 s grace


def test_status_line_is_an_info_record_once_per_interval(caplog):
    clock, stop = SimClock(), threading.Event()
    sink = FakeSink("s", clock=clock, on_send=lambda s: len(s.frames) == 100 and stop.set())
    cfg = Config(output=OutputConfig(sinks=("s",)), runner=RunnerConfig(status_interval=1.0))
    live(clock, [sink], config=cfg, stop=stop)     # 100 frames at 30 fps: 3.3 s
    status = [r for r in caplog.records if "fps | ms p50: segment 1.0" in r.getMessage()]
    assert len(status) == 3
    assert all(r.levelno == INFO and r.name == "backdrop.live.runner" for r in status)
