"""`backdrop video --cluster`: the video as one Ray task on whichever node has a free core,
the same run_video as on this machine (so the same bytes), with the count of frames done
streaming back for the progress bar. A task whose node dies is run again by Ray; the video
is written through a temp file and a rename, so a retry never leaves half a file.

Ctrl-C stops the tasks through a StopFile, not ray.cancel: see there.

Nothing here prints: progress goes to the caller's callbacks, as with run_video.
"""

from __future__ import annotations

import contextlib
import glob
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

from backdrop.errors import BackdropError
from backdrop.offline.cluster import absolute_background, connected
from backdrop.offline.video import VideoOutcome, VideoPlan

PROGRESS_EVERY_S = 0.5
RETRIES = 2
STOP_WAIT_S = 30.0     # for the tasks to see the StopFile and remove their temp files
CHECK_EVERY_S = 0.25   # how often a task looks for it


@dataclass
class StopFile:
    """The driver's Ctrl-C, seen by its tasks: a hidden file beside the output, on the
    storage every node writes the output (or the chunks) to anyway; a task looks for it
    every CHECK_EVERY_S between frames and stops, its temp file removed.

    Not ray.cancel: in Ray 2.60 cancelling a task whose start is still in flight (submitted
    a moment before) fails a RAY_CHECK in the driver's core worker ("Tried to complete task
    that was not pending", ray-project/ray#54846), which ends this process with status 1
    at once, printing nothing and leaving the chunks behind.
    The name is the run's own (a random part), so another run on the same output cannot
    stop this one's tasks."""
    path: str
    _checked: float = field(default=0.0, compare=False, repr=False)

    @classmethod
    def beside(cls, output: str) -> "StopFile":
        folder, name = os.path.split(os.path.abspath(output.rstrip("/" + os.sep)))
        return cls(os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.stop"))

    def set(self) -> None:
        with contextlib.suppress(OSError):     # the folder: a task may not have made it yet
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            open(self.path, "w").close()

    def is_set(self) -> bool:
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY_S:
            return False
        self._checked = now
        # A directory read, not a lookup of the name: NFS clients cache a failed lookup
        # for up to a minute, longer than the driver waits (STOP_WAIT_S).
        with contextlib.suppress(OSError):
            return os.path.basename(self.path) in os.listdir(os.path.dirname(self.path))
        return False

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class Stopped(Exception):
    """Raised in a task's frame callback when its StopFile is set."""


def run_video_on_cluster(plan: VideoPlan, quality: str, *, subject: str, address: str,
                         on_start: Callable[[int], None] = lambda total: None,
                         on_frame: Callable[[], None] = lambda: None) -> VideoOutcome:
    stop = StopFile.beside(plan.output)
    with connected(address, None) as ray:
        task = ray.remote(num_cpus=1, max_retries=RETRIES, num_returns="streaming")(_video_task)
        stream = task.remote(_absolute(plan), quality, subject, stop)
        starts, outcome = 0, None
        try:
            for ref in stream:
                kind, value = _get(ray, ref)
                starts += kind == "start"
                if kind == "start" and starts == 1:   # once, even when Ray ran it again
                    on_start(value)
                elif kind == "frames":
                    for _ in range(value):
                        on_frame()
                elif kind == "done":
                    outcome = value
        except KeyboardInterrupt:
            _stop_stream(ray, stream, stop)    # run_video removes its temp file
            raise
        finally:
            stop.clear()
        if outcome is None:
            raise BackdropError(f"the Ray task for {plan.source} ended without a result")
        if starts > 1:     # a run that died (its node lost) may have left its temp file
            _sweep_temp_files(_absolute(plan))
        return outcome


def _stop_stream(ray, stream, stop: StopFile) -> None:
    """Tell the task to stop and read its stream to the end, so it writes nothing after
    this returns (for STOP_WAIT_S at most)."""
    stop.set()
    deadline = time.monotonic() + STOP_WAIT_S
    with contextlib.suppress(Exception):        # its end: StopIteration, or its error
        while ray.wait([stream], timeout=max(0.0, deadline - time.monotonic()))[0]:
            ray.get(next(stream))


def _sweep_temp_files(plan: VideoPlan) -> None:
    """The hidden temp files an atomic write leaves when its process is killed: beside the
    video (.talk.mp4.XXXX.part.mp4), or among the frames (.000012.png.XXXX.part)."""
    if "://" in plan.output:
        return
    if plan.to_folder:
        pattern = os.path.join(glob.escape(plan.output), ".*.part")
    else:
        folder, name = os.path.split(plan.output)
        pattern = os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.part*")
    for path in glob.glob(pattern):
        with contextlib.suppress(OSError):
            os.unlink(path)


def _get(ray, ref):
    """The library's own error (a missing input, a bad output) as itself, not wrapped in
    Ray's traceback, so the command says one line as without --cluster."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, BackdropError):
            raise e.cause from None
        raise BackdropError(f"the Ray task failed: {e.cause or e}") from e
    except ray.exceptions.RayError as e:   # its worker or node lost more often than retried
        why = str(e).strip().splitlines()
        raise BackdropError(f"the Ray task was lost: {why[0] if why else type(e).__name__};"
                            " check the cluster (`ray status`)") from e


def _absolute(plan: VideoPlan) -> VideoPlan:
    """Tasks run in other folders (and on other machines): they get absolute paths. The
    decisions made from the paths as given (folder or file, the kind) are kept."""
    output = os.path.abspath(plan.output) + (os.sep if plan.to_folder else "")
    return replace(plan, source=os.path.abspath(plan.source), output=output,
                   background=absolute_background(plan.background))


def _video_task(plan: VideoPlan, quality: str, subject: str, stop: StopFile) -> Iterator:
    """Runs on a node: run_video on a thread of its own, while this generator hands Ray
    ("start", total), ("frames", n) every half second, and ("done", outcome); it ends
    without "done" when `stop` is set."""
    from backdrop.engine.segment import hide_native_stderr, setup_native_libraries
    from backdrop.offline.image import quiet_warnings
    from backdrop.offline.video import run_video

    hide_native_stderr()
    setup_native_libraries()
    quiet_warnings()
    events: queue.Queue = queue.Queue()
    closed = threading.Event()

    def on_frame() -> None:
        if closed.is_set() or stop.is_set():
            raise Stopped     # inside run_video: its clean-up removes the temp file
        events.put(("frame", 1))

    def work() -> None:
        try:
            events.put(("done", run_video(plan, quality, subject=subject,
                                          on_start=lambda total: events.put(("start", total)),
                                          on_frame=on_frame)))
        except Stopped:
            events.put(("stopped", None))
        except BaseException as e:     # raised again on the task's own thread below
            events.put(("error", e))

    thread = threading.Thread(target=work, name="backdrop-video", daemon=True)
    thread.start()
    try:
        yield from _progress(events)
    finally:
        closed.set()
        thread.join()


def _progress(events: queue.Queue) -> Iterator:
    frames, last = 0, time.monotonic()
    while True:
        try:
            kind, value = events.get(timeout=PROGRESS_EVERY_S)
        except queue.Empty:
            kind, value = "tick", None
        frames += kind == "frame"
        if frames and (kind != "frame" or time.monotonic() - last >= PROGRESS_EVERY_S):
            yield ("frames", frames)
            frames, last = 0, time.monotonic()
        if kind == "start":
            yield ("start", value)
        elif kind == "error":
            raise value
        elif kind == "done":
            yield ("done", value)
            return
        elif kind == "stopped":
            return
