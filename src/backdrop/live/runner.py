"""The live loop: everything about time lives here and in its helpers (feed.py: the capture
thread; outputs.py: sinks that fail one at a time; watch.py: clock, backoff, watchers).

The main thread runs the pipeline and the sinks at the camera's pace. When the camera
fails or freezes, the virtual camera keeps getting a placeholder at its frame rate while the
feed reconnects; while no app is watching, or privacy is on, the camera is released and a
still frame is sent instead. Signals, hotkeys and config edits steer it between frames, and
an ExitStack releases the camera and the virtual device on every way out. Pixels are made
elsewhere (pipeline.py, placeholder.py); this module only decides what to send when.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from backdrop.live import placeholder
from backdrop.config import Config
from backdrop.live.controls import KEYS, Controls
from backdrop.errors import BackdropError
from backdrop.live.feed import Feed
from backdrop.live.outputs import Outputs, is_vcam, open_outputs
from backdrop.live.timing import RateMeter, StageTimes
from backdrop.live.watch import Clock, FileWatch, ViewerWatch
from backdrop.platform import idle_detection_unavailable

logger = logging.getLogger(__name__)
STALL = 2.0       # seconds without a frame from an open camera: treat it as frozen
IDLE_FPS = 1.0    # still frames per second while nobody watches: readers that attach see one
TICK = 0.25       # longest the loop waits without looking at keys, viewers and the config


@dataclass
class RunStats:
    sent: int            # frames sent (processed ones and stills: placeholder, paused, privacy)
    times: StageTimes    # per-stage ms of the last processed frames, including send and latency
    processed: int = 0       # frames from the source, processed and sent (what --frames counts)
    placeholders: int = 0    # "camera unavailable" frames
    paused: int = 0          # frames sent while nobody watched
    private: int = 0         # frames sent while privacy was on
    faults: int = 0          # camera faults (errors and freezes)
    reopen_attempts: int = 0
    max_wait: float = 0.0    # longest wait for a camera frame while live, seconds


def install_signal_handlers(stop: threading.Event, wake: threading.Event,
                            reload: Optional[threading.Event]) -> Callable[[], None]:
    """SIGINT/SIGTERM set `stop`; SIGHUP (only when there is a config file) sets `reload`.
    Returns a function restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_stop(signum, frame):
        stop.set()
        wake.set()

    def on_hup(signum, frame):
        reload.set()
        wake.set()

    wanted = {signal.SIGINT: on_stop, signal.SIGTERM: on_stop}
    if reload is not None and hasattr(signal, "SIGHUP"):
        wanted[signal.SIGHUP] = on_hup
    old = {s: signal.signal(s, h) for s, h in wanted.items()}
    return lambda: [signal.signal(s, h) for s, h in old.items()]


class StatusLine:
    def __init__(self, interval: float, clock: Clock):
        self.interval = interval
        self.times = StageTimes(window=300)
        self.rate = RateMeter()
        self.next_at = clock.now() + interval

    def record(self, now: float, timings: dict) -> None:
        self.rate.tick(now)
        self.times.add_all(timings)
        if self.interval and now >= self.next_at:
            self.next_at = now + self.interval
            parts = [f"{k} {v['p50']:.1f}" for k, v in self.times.summary().items()]
            logger.info(f"{self.rate.fps():5.1f} fps | ms p50: " + ", ".join(parts))


class LiveLoop:
    """One pass per frame or wake-up: steer (keys, config, outputs), then either process the
    newest camera frame, or send the still frame the current state calls for."""

    def __init__(self, *, config: Config, feed: Feed, outputs: Outputs, controls: Controls,
                 clock: Clock, stop: threading.Event, reload: threading.Event,
                 size: Tuple[int, int, float],
                 config_watch: Optional[FileWatch] = None,
                 load_config: Optional[Callable[[], Config]] = None):
        self.config, self.feed, self.outputs, self.controls = config, feed, outputs, controls
        self.clock, self.stop, self.reload = clock, stop, reload
        self.width, self.height, self.fps = size
        self.config_watch, self.load_config = config_watch, load_config
        self.status = StatusLine(config.runner.status_interval, clock)
        self.stats = RunStats(sent=0, times=self.status.times)
        # Idle needs to see who reads the virtual camera; where the system cannot tell, it is
        # off (said once), or a virtual-camera-only run would pause for good after 2 s.
        self.idle_unavailable = idle_detection_unavailable()
        self.idle_enabled = config.output.idle_when_unwatched and not self.idle_unavailable
        if (config.output.idle_when_unwatched and self.idle_unavailable
                and any(is_vcam(slot.spec) for slot in outputs.slots)):
            logger.info(f"idle when unwatched is off: {self.idle_unavailable}")
        self.viewers: Dict[Tuple[str, ...], ViewerWatch] = {}
        self.idle = False
        self.last_seq = 0
        self.last_out = None         # the last processed image (the pipeline's buffer)
        self.still, self.still_kind, self.next_still = None, "", 0.0
        self.expect_since = clock.now()

    def run(self) -> RunStats:
        # --frames counts pictures from the source, not the stills sent while there was none
        limit = self.config.runner.frames
        try:
            while not self.stop.is_set() and (limit == 0 or self.stats.processed < limit):
                self.feed.changed.clear()  # before looking: a change after this wakes us
                if not self._steer():
                    break
                mode = self._mode()
                if mode != "live":
                    self._hold(mode)
                elif not self._live():
                    break
        finally:
            self.stats.faults, self.stats.reopen_attempts = self.feed.faults, self.feed.attempts
            for watch in self.viewers.values():
                watch.close()
        return self.stats

    # -- steering --------------------------------------------------------------------------
    def _steer(self) -> bool:
        """Keys, config edits and output upkeep; False when the user asked to quit."""
        self._maybe_reload()
        self.outputs.maintain()
        for sink in self.outputs.sinks:
            poll = getattr(sink, "poll_key", None)
            if poll is None:
                continue
            if getattr(sink, "closed", False) or not self.controls.handle(poll()):
                return False
        return True

    def _maybe_reload(self) -> None:
        asked = self.reload.is_set()
        self.reload.clear()
        if not asked and not (self.config_watch is not None and self.config_watch.changed()):
            return
        if self.load_config is None:
            logger.warning("SIGHUP: there is no --config file to reload")
            return
        where = f"config {self.config_watch.path}" if self.config_watch else "config"
        try:
            new = self.load_config()
            done = self.controls.apply(self.config, new)
        except BackdropError as e:
            logger.warning(f"{where}: {e}; keeping the previous settings")
            return
        wanted = new.output.idle_when_unwatched and not self.idle_unavailable
        if wanted != self.idle_enabled:
            self.idle_enabled = wanted
            done.append(f"idle when unwatched {'on' if self.idle_enabled else 'off'}")
        self.status.interval = new.runner.status_interval
        self.config = new
        logger.info(f"{where} reloaded: {', '.join(done) or 'no live setting changed'}")

    def _mode(self) -> str:
        if self.controls.privacy != "off":
            return self.controls.privacy
        return "idle" if self._unwatched() else "live"

    def _unwatched(self) -> bool:
        """True when every output is a virtual camera that no process reads."""
        sinks = self.outputs.sinks
        devices = tuple(getattr(s, "device", "") or "" for s in sinks)
        if not self.idle_enabled or not sinks or not all(devices):
            self.idle = False  # a preview (the user watches) or a file takes every frame
            return False
        watch = self.viewers.get(devices)
        if watch is None:
            watch = self.viewers[devices] = ViewerWatch(list(devices), self.clock)
        watched = watch.watched()
        if watched is None:
            self.idle_enabled = self.idle = False
            logger.warning(f"cannot see which programs read {', '.join(devices)} (no access to"
                           f" other processes' open files): idle when unwatched is off")
            return False
        if watched == self.idle:  # a change of state
            self.idle = not watched
            who = ", ".join(sorted(set(watch.readers.values()))) or "an app"
            logger.info(f"{who} opened {', '.join(devices)}: resuming" if watched else
                        f"no app is reading {', '.join(devices)}: paused, camera released")
        return self.idle

    # -- sending ---------------------------------------------------------------------------
    def _live(self) -> bool:
        """Process the newest frame, or keep the output alive while there is none."""
        now = self.clock.now()
        if self.feed.paused:
            self.feed.resume()
            self.expect_since = now
        if self.feed.error is not None:
            raise self.feed.error
        captured = self.feed.poll(self.last_seq)
        if captured is not None:
            self._process(captured)
            return True
        if self.feed.ended:
            return False
        since = max(self.expect_since, self.feed.opened_at)
        if self.feed.fault is None and not self.feed.opening and now - since >= STALL:
            self.feed.restart(f"{self.feed.name} delivered no frame for {STALL:g} s")
        if self.feed.fault is not None:
            self._send_still("fault", now, 1.0 / self.fps)
            due = self.next_still
        else:
            due = since + STALL
        self.clock.wait(self.feed.changed, min(due, now + TICK) - now)
        return True

    def _process(self, captured) -> None:
        start = self.clock.now()
        if not self.still_kind:  # waits across a fault, a pause or privacy do not count
            self.stats.max_wait = max(self.stats.max_wait, start - self.expect_since)
        result = self.controls.pipeline.process(captured.frame)
        t0 = self.clock.now()
        self.outputs.send(result.image)
        now = self.clock.now()
        self.status.record(now, dict(result.timings, send=(now - t0) * 1e3,
                                     latency=(now - captured.stamp) * 1e3))
        self.last_seq, self.last_out, self.expect_since = captured.seq, result.image, now
        self.still_kind = ""
        self.stats.sent += 1
        self.stats.processed += 1

    def _hold(self, mode: str) -> None:
        """Idle or privacy: camera released, a still frame at a low (idle) or full rate."""
        self.feed.pause()
        now = self.clock.now()
        self._send_still(mode, now, 1.0 / IDLE_FPS if mode == "idle" else 1.0 / self.fps)
        self.clock.wait(self.feed.changed, min(self.next_still, now + TICK) - now)

    def _send_still(self, kind: str, now: float, period: float) -> None:
        if kind != self.still_kind:  # made once per state, then re-sent
            self.still, self.still_kind, self.next_still = self._make_still(kind), kind, now
        if now < self.next_still:
            return
        self.outputs.send(self.still)
        self.next_still = max(self.next_still + period, now)
        self.stats.sent += 1
        counter = {"fault": "placeholders", "idle": "paused"}.get(kind, "private")
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)

    def _make_still(self, kind: str):
        w, h = self.width, self.height
        if kind == "fault":
            spec = getattr(self.controls.pipeline, "spec", None)
            return placeholder.unavailable(self.last_out, w, h, spec)
        if kind == "idle":
            return placeholder.paused(w, h)
        if kind == "freeze":
            return placeholder.frozen(self.last_out, w, h)
        return placeholder.blank(w, h)


def run_live(config: Config, *, make_source: Callable, make_pipeline: Callable,
             open_sink: Callable, stop: Optional[threading.Event] = None,
             clock: Optional[Clock] = None, config_path: Optional[str] = None,
             load_config: Optional[Callable[[], Config]] = None,
             display_available: Optional[Callable[[], bool]] = None) -> RunStats:
    """Run until stopped, N frames, the end of a non-looping source, or 'q' in the preview.

    make_source() opens the source (again after a fault); make_pipeline() builds the
    pipeline, and make_pipeline(pipeline_config) a new one when an edit of `config_path`
    changes the quality. load_config() re-reads the settings (file and flags) on an edit
    or SIGHUP. `clock` is for tests: it replaces real time and the capture thread's start.
    """
    clock = clock or Clock()
    stop = stop or threading.Event()
    reload, wake = threading.Event(), threading.Event()
    with contextlib.ExitStack() as stack:
        stack.callback(install_signal_handlers(stop, wake, reload if config_path else None))
        # The source first: a missing camera is reported at once, not after the warm-up
        # (up to 7 s). Its capture thread starts after the warm-up, so no frame waits.
        feed = stack.enter_context(Feed(make_source(), make_source, clock=clock,
                                        changed=wake))
        logger.info(f"source: {feed.name}")
        current: List = [make_pipeline()]
        stack.callback(lambda: current[0].close())
        logger.info(f"kernels and model ready in {current[0].warm_up():.2f} s")
        source = feed.source
        outputs = stack.enter_context(_open_outputs(config, source, open_sink, clock,
                                                    display_available))
        logger.info("sinks: " + ", ".join(s.name for s in outputs.sinks))
        if any(hasattr(s, "poll_key") for s in outputs.sinks):
            logger.info(f"keys in the preview: {KEYS}")
        controls = Controls(current[0], config.output.backgrounds,
                            privacy=config.output.privacy,
                            privacy_key=config.output.privacy_key,
                            rebuild=lambda p: _rebuild(make_pipeline, p, current))
        feed.start()
        loop = LiveLoop(config=config, feed=feed, outputs=outputs, controls=controls,
                        clock=clock, stop=stop, reload=reload,
                        size=(source.width, source.height, source.fps),
                        config_watch=FileWatch(config_path, clock) if config_path else None,
                        load_config=load_config)
        return loop.run()


def _open_outputs(config: Config, source, open_sink: Callable, clock: Clock,
                  display_available: Optional[Callable[[], bool]]) -> Outputs:
    if display_available is None:
        from backdrop.io.preview import display_available
    w, h, fps, dev = source.width, source.height, source.fps, config.output.vcam_device

    def open_one(spec: str):
        return open_sink(spec, width=w, height=h, fps=fps, vcam_device=dev)

    return open_outputs(config.output.sinks, open_one=open_one, clock=clock,
                        display_available=display_available)


def _rebuild(make_pipeline: Callable, pipeline_config, current: List):
    """A new pipeline for a quality change, warmed up before it replaces the old one."""
    fresh = make_pipeline(pipeline_config)
    try:
        logger.info(f"pipeline rebuilt for quality {pipeline_config.quality} in"
                    f" {fresh.warm_up():.2f} s")
    except BaseException:
        fresh.close()
        raise
    current[0] = fresh
    return fresh
