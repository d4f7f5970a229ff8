"""The live loop: everything about time lives here and nowhere else.

A capture thread keeps only the newest frame (never a queue), the main thread runs the
pipeline and the sinks, signals and hotkeys stop or steer it, and an ExitStack releases the
camera and the virtual device on every way out.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np

from .config import Config, parse_background
from .errors import VirtualCameraError
from .timing import RateMeter, StageTimes

Log = Callable[[str], None]


@dataclass
class Captured:
    seq: int
    frame: np.ndarray
    stamp: float        # time.perf_counter() when the frame was handed over


class LatestFrame:
    """Runs source.read() in a thread and keeps only the newest frame.

    Sources that are not real time (files, demo) are paced at their own fps here; a camera
    paces itself. A None from the source ends the stream; an exception is kept and
    re-raised to the consumer.
    """

    def __init__(self, source, *, pace: Optional[bool] = None):
        self.source = source
        self.pace = (not source.realtime) if pace is None else pace
        self._cond = threading.Condition()
        self._latest: Optional[Captured] = None
        self._ended = False
        self._error: Optional[BaseException] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self) -> "LatestFrame":
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = 1.0 / self.source.fps if self.source.fps > 0 else 0.0
        due = time.perf_counter()
        seq = 0
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                seq += 1
                with self._cond:
                    self._latest = Captured(seq, frame, time.perf_counter())
                    self._cond.notify_all()
                if self.pace and interval:
                    due = max(due + interval, time.perf_counter() - interval)
                    self._stop.wait(max(0.0, due - time.perf_counter()))
        except BaseException as e:  # handed to the consumer, which decides
            self._error = e
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def next(self, after: int, timeout: float = 1.0) -> Optional[Captured]:
        """The newest frame with seq > after; None on timeout or when the stream ended.
        Raises what the source raised."""
        deadline = time.perf_counter() + timeout
        with self._cond:
            while True:
                if self._latest is not None and self._latest.seq > after:
                    return self._latest
                if self._error is not None:
                    raise self._error
                if self._ended:
                    return None
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self._cond.wait(left)

    @property
    def ended(self) -> bool:
        return self._ended and self._error is None

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


class Controls:
    """Hotkeys -> pipeline settings. Keys: q/esc quit, b next background, space effect
    on/off, m mirror."""

    def __init__(self, pipeline, backgrounds: Sequence[str], log: Log):
        self.pipeline = pipeline
        self.log = log
        current = str(pipeline.spec)
        names = [current] + [b for b in backgrounds if str(parse_background(b)) != current]
        self.cycle = [parse_background(b) for b in names]
        self.index = 0
        self.saved = None          # background hidden by the space toggle

    def handle(self, key: Optional[str]) -> bool:
        """Apply a key; returns False when the user asked to quit."""
        if key in ("q", "esc"):
            return False
        if key == "b":
            self.index = (self.index + 1) % len(self.cycle)
            self.saved = None
            self.pipeline.set_background(self.cycle[self.index])
            self.log(f"background: {self.cycle[self.index]}")
        elif key == "space":
            if self.saved is None:
                self.saved = self.pipeline.spec
                self.pipeline.set_background("none")
                self.log("effect off (space to turn it back on)")
            else:
                self.pipeline.set_background(self.saved)
                self.saved = None
                self.log(f"effect on: {self.pipeline.spec}")
        elif key == "m":
            self.pipeline.mirror = not self.pipeline.mirror
            self.log(f"mirror {'on' if self.pipeline.mirror else 'off'}")
        return True


def open_sinks(specs: Sequence[str], *, width: int, height: int, fps: float,
               vcam_device: str, log: Log, stack: contextlib.ExitStack,
               opener: Callable) -> List:
    """Open every sink; a missing virtual camera is reported and skipped when other sinks
    remain, fatal when it was the only one."""
    from .sinks import display_available

    wanted: List[str] = []
    for spec in specs:
        if spec == "auto":
            wanted += ["vcam"] + (["preview"] if display_available() else [])
        else:
            wanted.append(spec)
    sinks, failures = [], []
    for spec in dict.fromkeys(wanted):
        try:
            sinks.append(stack.enter_context(
                opener(spec, width=width, height=height, fps=fps, vcam_device=vcam_device)))
        except VirtualCameraError as e:
            failures.append(e)
    if failures and not sinks:
        raise failures[0]
    for e in failures:
        log(f"warning: {e}")
        log(f"continuing with: {', '.join(s.name for s in sinks)}")
    return sinks


def install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set `stop`; returns a function restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    handler = lambda signum, frame: stop.set()
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(s, h) for s, h in old.items()]


class StatusLine:
    def __init__(self, interval: float, log: Log):
        self.interval, self.log = interval, log
        self.times = StageTimes(window=300)
        self.rate = RateMeter()
        self.next_at = time.perf_counter() + interval

    def record(self, now: float, timings: dict) -> None:
        self.rate.tick(now)
        self.times.add_all(timings)
        if self.interval and now >= self.next_at:
            self.next_at = now + self.interval
            parts = [f"{k} {v['p50']:.1f}" for k, v in self.times.summary().items()]
            self.log(f"{self.rate.fps():5.1f} fps | ms p50: " + ", ".join(parts))


@dataclass
class RunStats:
    sent: int            # frames processed and sent
    times: StageTimes    # per-stage ms of the last frames, including send and latency


def run_live(config: Config, *, make_source: Callable, make_pipeline: Callable,
             open_sink: Callable, log: Log, stop: Optional[threading.Event] = None) -> RunStats:
    """Run until stopped, N frames, or the end of a non-looping source."""
    stop = stop or threading.Event()
    restore = install_signal_handlers(stop)
    with contextlib.ExitStack() as stack:
        stack.callback(restore)
        pipeline = stack.enter_context(make_pipeline())
        log(f"kernels and model ready in {pipeline.warm_up():.2f} s")
        source = stack.enter_context(make_source())
        log(f"source: {source.name}")
        sinks = open_sinks(config.output.sinks, width=source.width, height=source.height,
                           fps=source.fps, vcam_device=config.output.vcam_device, log=log,
                           stack=stack, opener=open_sink)
        log("sinks: " + ", ".join(s.name for s in sinks))
        grabber = stack.enter_context(contextlib.closing(LatestFrame(source).start()))
        controls = Controls(pipeline, config.output.backgrounds, log)
        status = StatusLine(config.runner.status_interval, log)
        sent = _loop(config.runner.frames, grabber, pipeline, sinks, controls, status, stop)
        return RunStats(sent=sent, times=status.times)


def _loop(limit: int, grabber: LatestFrame, pipeline, sinks, controls: Controls,
          status: StatusLine, stop: threading.Event) -> int:
    sent, last = 0, 0
    while not stop.is_set() and (limit == 0 or sent < limit):
        captured = grabber.next(last, timeout=0.5)
        if captured is None:
            if grabber.ended:
                break
            continue
        last = captured.seq
        result = pipeline.process(captured.frame)
        t0 = time.perf_counter()
        for sink in sinks:
            sink.send(result.image)
        now = time.perf_counter()
        timings = dict(result.timings, send=(now - t0) * 1e3, latency=(now - captured.stamp) * 1e3)
        status.record(now, timings)
        sent += 1
        if not _poll_keys(sinks, controls):
            break
    return sent


def _poll_keys(sinks, controls: Controls) -> bool:
    for sink in sinks:
        poll = getattr(sink, "poll_key", None)
        if poll is None:
            continue
        if getattr(sink, "closed", False):
            return False
        if not controls.handle(poll()):
            return False
    return True
