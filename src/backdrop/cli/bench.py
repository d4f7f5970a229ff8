"""`backdrop bench`: speed of the live pipeline (no devices) on a moving scene with a real
person, per resolution and mode, plus capture-to-send latency through the real runner."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Sequence

import numpy as np

RESOLUTIONS = {"480p": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
# blur and image: the demo scene (a real person, swaying slowly); still: blur on the same
# person holding still, with camera noise (someone reading), where the live presets reuse
# the mask instead of running the model.
MODES = ("blur", "image", "still")
WARMUP = 10
logger = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure the live pipeline's speed",
                       description="Run the live pipeline without devices on the demo scene "
                       "and print fps, CPU per frame and per-stage milliseconds.")
    p.add_argument("--resolution", action="append", choices=list(RESOLUTIONS),
                   help="repeat for several (default: all)")
    p.add_argument("--mode", action="append", choices=MODES, help="default: all")
    p.add_argument("--frames", type=int, default=200, help="timed frames per case (default 200)")
    p.add_argument("--quality", default="balanced", choices=("fast", "balanced", "best"))
    p.add_argument("--latency", action=argparse.BooleanOptionalAction, default=True,
                   help="also run the real live loop at 30 fps and report capture-to-send latency")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def render_scene(width: int, height: int, count: int) -> List[np.ndarray]:
    """`count` consecutive frames of the demo scene (a real person, moving)."""
    from backdrop.config import SourceConfig
    from backdrop.io.sources import open_source

    with open_source(SourceConfig(source="demo", width=width, height=height)) as src:
        return [np.array(src.read(), copy=True) for _ in range(count)]


def still_scene(frame: np.ndarray, count: int, noise: float = 2.0) -> List[np.ndarray]:
    """`count` copies of `frame` with fresh Gaussian sensor noise each (a webcam on a
    person holding still)."""
    rng = np.random.default_rng(0)
    shape, base = frame.shape, frame.astype(np.float32)
    return [np.clip(base + rng.standard_normal(shape, dtype=np.float32) * np.float32(noise),
                    0, 255).astype(np.uint8) for _ in range(count)]


def background_image(width: int, height: int, folder: str) -> str:
    """A photo-like background (smooth colour gradients and soft shapes), written as PNG."""
    import cv2

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([90 + 80 * x / width, 120 + 60 * y / height,
                    170 - 70 * x / width], axis=-1)
    for cx, cy, r, col in ((0.2, 0.3, 0.15, (230, 200, 120)), (0.8, 0.6, 0.2, (60, 110, 70))):
        d = np.hypot(x - cx * width, y - cy * height) / (r * width)
        img += (np.clip(1 - d, 0, 1)[..., None] * (np.array(col) - img)) * 0.8
    path = os.path.join(folder, f"bg_{width}x{height}.png")
    cv2.imwrite(path, cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    return path


def measure(process: Callable[[np.ndarray], Dict[str, float]], frames: Sequence[np.ndarray],
            count: int, warmup: int = 10) -> Dict:
    """Run `process` (returns per-stage ms) on `count` frames cycling through `frames`."""
    from backdrop.live.timing import StageTimes, percentiles

    for i in range(warmup):
        process(frames[i % len(frames)])
    stages = StageTimes(window=count)
    totals = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(count):
        t = time.perf_counter()
        stages.add_all(process(frames[i % len(frames)]))
        totals.append((time.perf_counter() - t) * 1e3)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"fps": round(count / wall, 1), "cpu_ms_per_frame": round(cpu * 1e3 / count, 3),
            "frame_ms": percentiles(totals), "stages": stages.summary()}


def bench_pipeline(width: int, height: int, mode: str, frames: Sequence[np.ndarray],
                   count: int, quality: str, folder: str) -> Dict:
    from backdrop.config import PipelineConfig, parse_background
    from backdrop.engine.pipeline import Pipeline
    from backdrop.io.sinks import NullSink

    spec = background_image(width, height, folder) if mode == "image" else "blur"
    if mode == "still":
        frames = still_scene(frames[0], 16)
    sink = NullSink()
    with Pipeline(PipelineConfig.preset(quality, background=parse_background(spec))) as pipe:
        pipe.warm_up()

        def process(frame):
            result = pipe.process(frame)
            t = time.perf_counter()
            sink.send(result.image)
            return dict(result.timings, send=(time.perf_counter() - t) * 1e3)

        runs = pipe.model_runs
        report = measure(process, frames, count, warmup=WARMUP)
        # the live presets reuse the mask while the scene stands still: say how often not
        report["model_runs_per_frame"] = round((pipe.model_runs - runs) / (count + WARMUP), 3)
        return report


class LoopSource:
    """Pre-rendered frames handed over at `fps`, like a camera delivering buffers."""

    realtime = False

    def __init__(self, frames: Sequence[np.ndarray], fps: float):
        self.frames, self.fps, self.i = frames, fps, 0
        self.height, self.width = frames[0].shape[:2]
        self.name = f"pre-rendered demo {self.width}x{self.height} {fps:g}fps"

    def read(self):
        self.i += 1
        return self.frames[self.i % len(self.frames)]

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def bench_latency(frames: Sequence[np.ndarray], count: int, quality: str) -> Dict:
    """The real runner at 30 fps into a null sink: capture-to-send latency and CPU/frame."""
    from backdrop.config import Config, OutputConfig, PipelineConfig, RunnerConfig
    from backdrop.engine.pipeline import Pipeline
    from backdrop.live.runner import run_live
    from backdrop.io.sinks import open_sink
    from backdrop.live.timing import percentiles

    cfg = Config(output=OutputConfig(sinks=("null",)),
                 runner=RunnerConfig(frames=count, status_interval=0))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with _live_lines_hidden():
        stats = run_live(cfg, make_source=lambda: LoopSource(frames, 30.0),
                         make_pipeline=lambda: Pipeline(PipelineConfig.preset(quality)),
                         open_sink=open_sink, stop=threading.Event())
    sent = stats.sent
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"frames": sent, "fps": round(sent / wall, 1),
            "cpu_ms_per_frame": round(cpu * 1e3 / max(sent, 1), 3),
            "latency_ms": percentiles(_steady(list(stats.times.samples["latency"])))}


@contextlib.contextmanager
def _live_lines_hidden():
    """The live loop's start-up lines (model ready, source, sinks) would only interleave
    with the bench's own; -v shows them."""
    live = logging.getLogger("backdrop.live")
    old = live.level
    if not live.isEnabledFor(logging.DEBUG):
        live.setLevel(logging.WARNING)
    try:
        yield
    finally:
        live.setLevel(old)


def _steady(samples: List[float], skip: int = 5) -> List[float]:
    """Leave out the first frames (start-up), unless that would leave nothing."""
    return samples[skip:] if len(samples) > 2 * skip else samples


def run_bench(resolutions: Sequence[str], modes: Sequence[str], count: int, quality: str,
              latency: bool) -> Dict:
    report: Dict = {"quality": quality, "frames": count, "cpus": os.cpu_count(),
                    "resolutions": {}}
    with tempfile.TemporaryDirectory() as folder:
        for name in resolutions:
            w, h = RESOLUTIONS[name]
            frames = render_scene(w, h, 48)
            entry = report["resolutions"][name] = {"width": w, "height": h, "modes": {}}
            for mode in modes:
                logger.info(f"bench {name} {mode} ...")
                entry["modes"][mode] = bench_pipeline(w, h, mode, frames, count, quality, folder)
            if latency:
                logger.info(f"bench {name} live loop at 30 fps ...")
                entry["live_30fps"] = bench_latency(frames, min(count, 150), quality)
    return report


def format_table(report: Dict) -> str:
    order = ["segment", "smooth", "refine", "background", "composite", "send"]
    head = (f"{'res':6} {'mode':6} {'fps':>7} {'cpu ms/f':>9} {'frame p50':>9} {'p95':>6} "
            f"{'model/f':>7} | "
            + " ".join(f"{s:>10}" for s in order) + "   (stage ms p50)")
    lines = [head, "-" * len(head)]
    for res, entry in report["resolutions"].items():
        for mode, m in entry["modes"].items():
            st = m["stages"]
            lines.append(
                f"{res:6} {mode:6} {m['fps']:7.1f} {m['cpu_ms_per_frame']:9.2f} "
                f"{m['frame_ms']['p50']:9.2f} {m['frame_ms']['p95']:6.2f} "
                f"{m.get('model_runs_per_frame', 1):7.2f} | "
                + " ".join(f"{st.get(s, {}).get('p50', 0):10.2f}" for s in order))
        live = entry.get("live_30fps")
        if live:
            lines.append(f"{res:6} live loop at 30 fps: {live['fps']:.1f} fps, "
                         f"{live['cpu_ms_per_frame']:.2f} CPU ms/frame, capture-to-send latency "
                         f"p50 {live['latency_ms']['p50']:.1f} ms, p95 {live['latency_ms']['p95']:.1f} ms")
    return "\n".join(lines)


def cmd_bench(args) -> int:
    from backdrop.errors import ConfigError
    from backdrop.engine.segment import setup_native_libraries

    if args.frames < 1:
        raise ConfigError("--frames must be at least 1")
    setup_native_libraries()
    report = run_bench(args.resolution or list(RESOLUTIONS), args.mode or list(MODES),
                       args.frames, args.quality, args.latency)
    print(json.dumps(report) if args.json else format_table(report))
    sys.stdout.flush()
    return 0
