"""Overlap decoding, processing and encoding of a video file on separate threads.

PyAV, OpenCV, MediaPipe and the numba kernels release the GIL, so a reader thread, the
caller's thread (the pipeline) and a writer thread use both cores. Done one after another
they kept 0.9 of the 2 cores busy; a 10 s 720p clip took 17.7-22.3 s that way and 15.6 s
threaded, on the same (shared, loaded) machine.
Both helpers are context managers that stop and join their thread on exit, so the caller
can close the container a thread was using right after.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple

_POLL = 0.1   # seconds between checks of the stop flag while a queue is full


class _Stopped(Exception):
    """Raised inside the producer by put() once the consumer has gone, to end it."""


class Prefetch:
    """Runs `produce(put)` in a thread and yields what it produces, `depth` items ahead.

    `produce` returns an iterable of items, yielded as ("item", x); it may also call
    put(("other kind", y)) to pass other events in order. An exception in the thread is
    raised again in the consumer."""

    def __init__(self, produce: Callable[[Callable], Iterable], depth: int = 4):
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(produce,),
                                        name="backdrop-read", daemon=True)
        self._thread.start()

    def put(self, event: Tuple[str, Any]) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                self._queue.put(event, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _run(self, produce) -> None:
        try:
            try:
                for item in produce(self.put):
                    self.put(("item", item))
                self.put(("end", None))
            except _Stopped:
                raise
            except BaseException as e:   # handed to the consumer, which decides
                self.put(("error", e))
        except _Stopped:
            return

    def __iter__(self) -> Iterator[Tuple[str, Any]]:
        while True:
            kind, value = self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield kind, value

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:                      # unblock a producer waiting on a full queue
                self._queue.get(timeout=_POLL)
            except queue.Empty:
                pass

    def __enter__(self) -> "Prefetch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WriterThread:
    """Calls handle(kind, value) for each submitted event, in order, on its own thread.
    A failure there is raised from the next submit() or from finish()."""

    def __init__(self, handle: Callable[[str, Any], None], depth: int = 4):
        self._handle = handle
        self._queue: queue.Queue = queue.Queue(depth)
        self._error: Optional[BaseException] = None
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backdrop-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            if self._error is None and not self._abort.is_set():
                try:
                    self._handle(*event)
                except BaseException as e:
                    self._error = e

    def submit(self, kind: str, value: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((kind, value))

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def finish(self) -> None:
        """Wait until everything submitted is handled (again: no-op)."""
        self._stop()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Drop what is queued; wait only for the event being handled."""
        self._abort.set()
        self._stop()

    def __enter__(self) -> "WriterThread":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()
