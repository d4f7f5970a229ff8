"""Fakes for the live loop's boundaries, and a simulated clock that makes its timing exact.

SimClock: virtual time that moves only when every thread taking part (the test's thread and
the threads the runner starts through the clock) is waiting on it, and then jumps straight
to the nearest deadline. So a 2 s stall or a 4 s backoff takes no real time, nothing depends
on how fast this machine is, and every wait is recorded.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from backdrop.config import parse_background
from backdrop.platform.v4l2 import Host
from backdrop.errors import SinkError, SourceError
from backdrop.engine.pipeline import Frame


def logged(caplog, text: str, level: Optional[int] = None) -> int:
    """How many log records (at `level`, when given) say `text`: the lines a user reads."""
    return sum(text in r.getMessage() and (level is None or r.levelno == level)
               for r in caplog.records)


class SimClock:
    def __init__(self, start: float = 1000.0):
        self.t = start
        self._cv = threading.Condition()
        self._participants = 1            # the thread that runs the test
        self._waiting = {}                # id -> (event, deadline)
        self.waits: List[Tuple[str, float]] = []   # (thread name, timeout) of every wait

    def now(self) -> float:
        with self._cv:
            return self.t

    def start_thread(self, target, name):
        with self._cv:
            self._participants += 1

        def run():
            try:
                target()
            finally:
                with self._cv:
                    self._participants -= 1
                    self._cv.notify_all()

        thread = _SimThread(self, target=run, name=name, daemon=True)
        thread.start()
        return thread

    def _step_aside(self, count: int) -> None:
        with self._cv:
            self._participants += count
            self._cv.notify_all()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        with self._cv:
            self.waits.append((threading.current_thread().name, timeout))
            key = object()
            deadline = self.t + max(0.0, timeout)
            self._waiting[key] = (event, deadline)
            try:
                while True:
                    if event.is_set():
                        return True
                    if self.t >= deadline:
                        return False
                    self._advance()
                    if self.t >= deadline or event.is_set():
                        continue
                    # Event.set() does not notify this condition: look again shortly.
                    self._cv.wait(0.005)
            finally:
                del self._waiting[key]
                self._cv.notify_all()

    def _advance(self) -> None:
        """Everyone waits and nobody's event is set: jump to the nearest deadline."""
        if len(self._waiting) < self._participants:
            return
        if any(event.is_set() for event, _ in self._waiting.values()):
            return
        self.t = max(self.t, min(deadline for _, deadline in self._waiting.values()))
        self._cv.notify_all()

    def waits_of(self, thread: str, at_least: float = 0.0, at_most: float = 1e9) -> List[float]:
        return [w for name, w in self.waits if name == thread and at_least <= w <= at_most]


class _SimThread(threading.Thread):
    """While a thread joins this one it takes no part in the clock: time may move for the
    thread it waits for."""

    def __init__(self, clock: SimClock, **kw):
        super().__init__(**kw)
        self._clock = clock

    def join(self, timeout=None):
        self._clock._step_aside(-1)
        try:
            super().join(timeout)
        finally:
            self._clock._step_aside(+1)


def flat(value: int, width: int = 64, height: int = 48) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def value_of(frame: np.ndarray) -> Optional[int]:
    """The value of a flat frame (a real one here); None for a placeholder or still."""
    v = int(frame[0, 0, 0])
    return v if (frame == v).all() else None


class Closes:
    """Counts its close() calls (`closed`); as a context manager, closes on exit."""

    closed = 0

    def close(self):
        self.closed += 1

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class FakeCamera(Closes):
    """A real-time source: one frame per 1/fps of clock time with the given values, then
    `then`: 'error' (unplugged), 'freeze' (read blocks until `unfreeze`), 'end' or 'repeat'
    (the last value forever)."""

    realtime = True

    def __init__(self, clock, values, *, then="repeat", fps=30.0, width=64, height=48,
                 name="fake camera"):
        self.clock, self.values, self.then = clock, list(values), then
        self.fps, self.width, self.height, self.name = fps, width, height, name
        self.i, self.closed = 0, 0
        self.unfreeze = threading.Event()
        self._never = threading.Event()

    def read(self):
        if self.closed:
            raise SourceError(f"{self.name} was closed")
        self.clock.wait(self._never, 1.0 / self.fps)   # the device paces itself
        if self.i < len(self.values):
            self.i += 1
            return flat(self.values[self.i - 1], self.width, self.height)
        if self.then == "error":
            raise SourceError(f"{self.name} stopped delivering frames: check it is plugged in")
        if self.then == "freeze":
            self.clock.wait(self.unfreeze, 1e6)
            return flat(self.values[-1], self.width, self.height)
        if self.then == "end":
            return None
        return flat(self.values[-1], self.width, self.height)



class Opener:
    """make_source(): hands out the scripted sources in turn; an exception is raised."""

    def __init__(self, *script):
        self.script, self.calls = list(script), 0

    def __call__(self):
        self.calls += 1
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, BaseException):
            raise item
        return item


class FakePipeline(Closes):
    def __init__(self, config=None):
        self.config = config
        self.spec, self.mirror, self.closed, self.seen = parse_background("blur"), False, 0, []
        self.specs = []

    def warm_up(self):
        return 0.0

    def process(self, frame):
        self.seen.append(int(frame[0, 0, 0]))
        self.specs.append(str(self.spec))
        return Frame(image=frame, alpha=frame[..., 0], timings={"segment": 1.0})

    def set_background(self, spec):
        self.spec = parse_background(spec) if isinstance(spec, str) else spec



class FakeSink(Closes):
    """Records frames (copies) with the clock time; `on_send(sink)` runs after each."""

    def __init__(self, name="fake", clock=None, on_send=None, fail_at=None, device=None):
        self.name, self.clock, self.on_send, self.fail_at = name, clock, on_send, fail_at
        self.frames, self.times, self.closed = [], [], 0
        if device is not None:
            self.device = device

    def send(self, frame):
        if self.fail_at is not None and len(self.frames) >= self.fail_at:
            raise SinkError(f"writing to {self.name} failed: the device went away")
        self.frames.append(frame.copy())
        self.times.append(self.clock.now() if self.clock else 0.0)
        if self.on_send:
            self.on_send(self)

    def values(self):
        return [value_of(f) for f in self.frames]



class FakePreview(FakeSink):
    """A preview: the user watches it, and keys come from it (`keys[n]` after n frames)."""

    def __init__(self, name="preview", keys=None, **kw):
        super().__init__(name, **kw)
        self.keys = dict(keys or {})

    def poll_key(self):
        return self.keys.pop(len(self.frames), None)


# ---------------------------------------------------------------------------- a fake machine

def build_tree(root: Path, *, loopback=True, camera=True):
    """/dev/video0: a v4l2loopback node (sysfs under /virtual/); /dev/video1: a USB camera."""
    (root / "dev").mkdir(parents=True)
    classes = root / "sys" / "class" / "video4linux"
    classes.mkdir(parents=True)
    if loopback:
        (root / "sys" / "module" / "v4l2loopback" / "parameters").mkdir(parents=True)
        real = root / "sys" / "devices" / "virtual" / "video4linux" / "video0"
        real.mkdir(parents=True)
        (real / "name").write_text("Dummy video device (0x0000)\n")
        (classes / "video0").symlink_to(real)
        (root / "dev" / "video0").write_bytes(b"")
    if camera:
        real = root / "sys" / "devices" / "pci0000:00" / "usb1" / "video4linux" / "video1"
        real.mkdir(parents=True)
        (real / "name").write_text("USB Camera\n")
        (classes / "video1").symlink_to(real)
        (root / "dev" / "video1").write_bytes(b"")
    return Host(str(root))


def hold(host, pid, target, name, fd=5):
    proc = Path(host.proc, str(pid))
    (proc / "fd").mkdir(parents=True, exist_ok=True)
    (proc / "fd" / str(fd)).symlink_to(target)
    (proc / "comm").write_text(name + "\n")
