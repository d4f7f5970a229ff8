"""Time helpers for the runner: the clock it waits on, retry backoff, and the two things it
watches between frames (the config file, and who is reading the virtual camera).

Nothing here starts a thread or sleeps on its own; the runner calls these from its loop.
The clock is an object so tests can replace real time with a simulated one.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Dict, List, Optional, Set, Tuple

from backdrop.platform.v4l2 import LOCAL, Host, OpenWatch, find_holders, still_holds


class Clock:
    """Real time. A test clock offers the same three methods."""

    def now(self) -> float:
        return time.perf_counter()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Block until `event` is set or `timeout` seconds pass; True if it was set."""
        return event.wait(max(0.0, timeout))

    def start_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread


class Backoff:
    """Retry delays: `first`, doubling up to `limit`; reset() after a success."""

    def __init__(self, first: float = 0.5, limit: float = 5.0):
        self.first, self.limit = first, limit
        self.delay = first

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, self.limit)
        return delay

    def reset(self) -> None:
        self.delay = self.first


class FileWatch:
    """Notices edits of one file by polling its mtime/size/inode (no extra dependency)."""

    def __init__(self, path: str, clock: Clock, interval: float = 0.5):
        self.path, self.clock, self.interval = str(path), clock, interval
        self.seen = self._signature()
        self.next_at = clock.now() + interval

    def _signature(self) -> Optional[Tuple[int, int, int]]:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        # Editors that save by renaming change the inode; quick saves may keep the mtime.
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def changed(self) -> bool:
        """True once per edit (checked at most every `interval` seconds)."""
        now = self.clock.now()
        if now < self.next_at:
            return False
        self.next_at = now + self.interval
        sig = self._signature()
        if sig == self.seen:
            return False
        self.seen = sig
        return True


class ViewerWatch:
    """Is another process reading the virtual camera(s)?

    v4l2loopback has no event for a reader arriving, so this looks at /proc/*/fd for other
    processes holding the device open. The full scan costs ~7 us per open file on the
    machine, so it runs only when inotify saw the device opened or closed, every `rescan`
    seconds as a safety net, or on every poll where inotify is unavailable; known readers
    are re-checked cheaply. Processes of other users cannot be looked into: when no process
    at all can be, the answer is None (cannot tell). Linux only: the runner makes none where
    `platform.idle_detection_unavailable()` says why not.
    """

    def __init__(self, devices: List[str], clock: Clock, *, host: Host = LOCAL,
                 interval: float = 0.25, rescan: float = 5.0, grace: float = 2.0):
        self.devices, self.clock, self.host = list(devices), clock, host
        self.interval, self.rescan, self.grace = interval, rescan, grace
        self.events = OpenWatch(self.devices)
        self.readers: Dict[int, str] = {}
        self._denied: Set[int] = set()   # pids whose fds we may not read: not asked again
        self._exclude = {os.getpid()}
        self.next_poll = clock.now()
        self.next_scan = clock.now()
        self.last_seen = clock.now()     # a fresh start counts as watched for `grace` s
        self.known = True                # False when we could not look into any process

    def _scan(self, now: float) -> None:
        found = find_holders(self.devices, self.host, exclude=self._exclude, skip=self._denied)
        self.readers = found.pids
        self.known = found.readable > 0 or found.denied == 0
        self.next_scan = now + self.rescan

    def _refresh(self, now: float) -> None:
        triggered = self.events.triggered()
        self.readers = {pid: name for pid, name in self.readers.items()
                        if still_holds(pid, self.devices, self.host)}
        # A known reader answers the question; otherwise scan when inotify saw something,
        # on the safety timer, or every poll where inotify is not available.
        if triggered or now >= self.next_scan or not (self.readers or self.events.available):
            self._scan(now)

    def watched(self) -> Optional[bool]:
        """True while a reader is there (or left less than `grace` s ago, so apps that open
        the device just to list it do not make us flap); None when we cannot tell."""
        now = self.clock.now()
        if now >= self.next_poll:
            self.next_poll = now + self.interval
            self._refresh(now)
            if self.readers:
                self.last_seen = now
        if not self.known:
            return None
        return bool(self.readers) or now - self.last_seen < self.grace

    def close(self) -> None:
        self.events.close()
