"""Soak: the real live loop (real pipeline and model, a looping video file, a null sink) for
thousands of frames. Memory must stay flat and the loop must never stall."""

import cv2
import numpy as np

from backdrop.config import Config, OutputConfig, PipelineConfig, RunnerConfig, SourceConfig
from backdrop.engine.pipeline import Pipeline
from backdrop.live.runner import STALL, run_live
from backdrop.io.sinks import NullSink
from backdrop.io.sources import open_source

FRAMES, WARMUP = 3000, 300
W, H = 160, 120
MAX_GROWTH_KB = 20 * 1024


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def write_clip(path, astronaut, count=40):
    """A short clip of the astronaut drifting sideways; 1000 fps so the source's pacing
    does not make the test wait (the loop still takes only the newest frame)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 1000.0, (W, H))
    assert writer.isOpened()
    base = cv2.resize(cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR), (W + count, H))
    for i in range(count):
        writer.write(np.ascontiguousarray(base[:, i:i + W]))
    writer.release()


class SamplingSink(NullSink):
    """Counts frames and notes the process RSS after warm-up and at the end."""

    def __init__(self):
        super().__init__()
        self.rss = {}

    def send(self, frame):
        super().send(frame)
        if self.frames in (WARMUP, FRAMES):
            self.rss[self.frames] = rss_kb()


def test_live_loop_memory_is_flat_over_thousands_of_frames(tmp_path, astronaut, capsys):
    clip = tmp_path / "clip.avi"
    write_clip(clip, astronaut)
    sink = SamplingSink()
    cfg = Config(source=SourceConfig(source=str(clip), loop=True),
                 output=OutputConfig(sinks=("null",)),
                 runner=RunnerConfig(frames=FRAMES, status_interval=0))
    stats = run_live(cfg, make_source=lambda: open_source(cfg.source),
                     make_pipeline=lambda p=None: Pipeline(PipelineConfig()),
                     open_sink=lambda spec, **kw: sink)

    assert stats.sent == stats.processed == sink.frames == FRAMES   # every frame sent
    assert stats.placeholders == 0 and stats.faults == 0            # never stalled
    assert stats.max_wait < STALL / 2        # generous: frames come every millisecond
    growth = sink.rss[FRAMES] - sink.rss[WARMUP]
    with capsys.disabled():
        print(f"\nsoak: {FRAMES} frames at {W}x{H}; VmRSS after {WARMUP}:"
              f" {sink.rss[WARMUP] / 1024:.1f} MB, at the end: {sink.rss[FRAMES] / 1024:.1f} MB"
              f" (growth {growth / 1024:+.1f} MB); longest wait for a frame"
              f" {stats.max_wait * 1e3:.1f} ms")
    assert growth < MAX_GROWTH_KB
