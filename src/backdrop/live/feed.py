"""The capture thread of the live loop: newest frame only, paced files, a camera that comes back.

Part of the runner (time lives here, pixels do not). The thread owns the source: it reads it,
paces sources that are not real time, and when the source fails (read error, unplugged,
taken by another app) or the consumer reports it frozen, closes it and opens a new one with
backoff until that works. pause() releases the source (the camera light goes off) until
resume(). A non-looping file that ends is not a fault: the feed just ends.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from backdrop.errors import BackdropError
from backdrop.live.watch import Backoff, Clock

logger = logging.getLogger(__name__)
# What a device does when it goes away; anything else is a bug and reaches the caller.
DEVICE_FAULTS = (BackdropError, OSError)
PAUSED_WAIT = 3600.0   # a paused thread sleeps until woken; the bound only keeps it finite


@dataclass
class Captured:
    seq: int
    frame: np.ndarray
    stamp: float        # clock time when the frame was handed over


class Feed:
    """Consumer side: poll(), fault, ended, error, changed (an Event set on every change),
    pause(), resume(), restart(), close()."""

    def __init__(self, source, reopen: Callable[[], object], *, clock: Clock,
                 backoff: Optional[Backoff] = None,
                 changed: Optional[threading.Event] = None):
        self.source = source
        self.name = source.name
        self._reopen = reopen
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.changed = changed or threading.Event()   # the consumer's wake-up call
        self._lock = threading.Lock()
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.latest: Optional[Captured] = None
        self.seq = 0
        self.generation = 1           # bumped on every (re)open
        self.opened_at = clock.now()
        self.fault: Optional[str] = None
        self.faults = 0               # faults begun so far
        self.fault_since = 0.0
        self.attempts = 0             # reopen attempts
        self.ended = False            # the source said it has no more frames
        self.error: Optional[BaseException] = None
        self._paused = False
        self._restart_gen = 0
        self._retry_wait = False      # wait the backoff before the next open
        self._due = 0.0

    # -- consumer side ---------------------------------------------------------------------
    def start(self) -> "Feed":
        self._thread = self.clock.start_thread(self._run, "capture")
        return self

    def poll(self, after: int) -> Optional[Captured]:
        """The newest frame with seq > after, or None; never waits."""
        with self._lock:
            latest = self.latest
        return latest if latest is not None and latest.seq > after else None

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def opening(self) -> bool:
        """True while no source is open (backing off, opening, or paused)."""
        return self.source is None

    def pause(self) -> None:
        if not self._paused:
            with self._lock:
                self._paused = True
                self.latest = None    # stale by the time we resume
            self._wake.set()

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._wake.set()

    def restart(self, reason: str) -> None:
        """The consumer saw no frame for too long: treat the source as failed."""
        with self._lock:
            self._restart_gen = self.generation
        self._set_fault(reason)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            self._drop()
        elif thread is not threading.current_thread():
            thread.join(timeout=2.0)  # a read stuck in the driver keeps its source; we go

    def __enter__(self) -> "Feed":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- capture thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._paused:
                    self._sleep_paused()
                elif self.source is None:
                    self._open()
                elif not self._read():
                    break
        except BaseException as e:  # handed to the consumer, which re-raises it
            self.error = e
        finally:
            self._drop()
            self.changed.set()

    def _sleep_paused(self) -> None:
        self._drop()
        self._wake.clear()
        if self._paused and not self._stop.is_set():
            self.clock.wait(self._wake, PAUSED_WAIT)

    def _open(self) -> None:
        self._wake.clear()
        if self._retry_wait:  # after a fault, not after a pause: resuming must be quick
            self.clock.wait(self._wake, self.backoff.next())
            if self._stop.is_set() or self._paused:
                return
        self.attempts += 1
        try:
            source = self._reopen()
        except DEVICE_FAULTS as e:
            self._retry_wait = True
            self._set_fault(str(e))
            return
        with self._lock:
            self.source, self.name = source, source.name
            self.generation += 1
            self.opened_at = self._due = self.clock.now()
        self._retry_wait = False
        self.backoff.reset()
        self.changed.set()

    def _read(self) -> bool:
        """One frame; False when the source ended."""
        generation = self.generation
        try:
            frame = self.source.read()
        except DEVICE_FAULTS as e:
            self._set_fault(str(e))
            self._drop()
            self._retry_wait = True
            return True
        if self._restart_gen == generation:  # reported frozen while we were in read()
            self._drop()
            self._retry_wait = True
            return True
        if frame is None:
            self.ended = True
            return False
        if not self._paused:
            self._publish(frame)
        if not self.source.realtime and self.source.fps > 0:
            interval = 1.0 / self.source.fps
            now = self.clock.now()
            self._due = max(self._due + interval, now - interval)
            self.clock.wait(self._stop, self._due - now)
        return True

    def _publish(self, frame: np.ndarray) -> None:
        now = self.clock.now()
        with self._lock:
            self.seq += 1
            self.latest = Captured(self.seq, frame, now)
            recovered, self.fault = self.fault is not None, None
        self.changed.set()
        if recovered:
            logger.info(f"source back: {self.name} (after {now - self.fault_since:.1f} s)")

    def _set_fault(self, reason: str) -> None:
        with self._lock:
            new = self.fault is None
            self.fault = reason
            if new:
                self.faults += 1
                self.fault_since = self.clock.now()
        self.changed.set()
        if new:  # once per fault, not once per retry
            logger.warning(f"warning: {reason}; showing a placeholder and reconnecting")

    def _drop(self) -> None:
        source, self.source = self.source, None
        if source is not None:
            with contextlib.suppress(*DEVICE_FAULTS):
                source.close()
