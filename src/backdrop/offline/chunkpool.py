"""`backdrop video --jobs N` on one machine: a long video's chunks (chunks.py) on N spawned
processes, each keeping one Pipeline for the chunks it gets, then the join.

One video in one process keeps its reader, pipeline and writer threads busy but the model
passes of one frame run one after another; chunks run whole pipelines side by side. When:
with more than one job, a video of at least 20 s (chunks of its length / jobs, 10 to 30 s),
or of at least two chunks of the length asked for; shorter clips keep the single run, which
starts faster.
"""

from __future__ import annotations

import os
import queue
import signal
import time
from dataclasses import dataclass
from typing import Callable, Optional

from backdrop.errors import BackdropError, ConfigError
from backdrop.offline.chunks import (CHUNK_SECONDS, ChunkOutcome, ChunkPlan, discard_chunks,
                                     join_chunks, plan_chunks, run_chunk)
from backdrop.offline.video import VideoOutcome, VideoPlan

MIN_CHUNK_SECONDS = 10.0


def local_plan(plan: VideoPlan, jobs: int, chunk_seconds: Optional[float] = None
               ) -> Optional[ChunkPlan]:
    """The chunks to run on `jobs` processes, or None where one run is the better choice."""
    from backdrop.io.video import index_video
    from backdrop.offline.chunks import splittable

    if chunk_seconds is not None and chunk_seconds <= 0:
        raise ConfigError(f"--chunk-seconds must be more than 0; got {chunk_seconds:g}")
    if jobs < 2 or not splittable(plan):
        return None
    index = index_video(plan.source, plan.fps)
    if chunk_seconds is None:
        seconds = len(index.pts) / float(index.fps)
        if seconds < 2 * MIN_CHUNK_SECONDS:
            return None
        chunk_seconds = min(CHUNK_SECONDS, max(MIN_CHUNK_SECONDS, seconds / jobs))
    chunked = plan_chunks(plan, chunk_seconds=chunk_seconds, index=index)
    return chunked if len(chunked.chunks) >= 2 else None


@dataclass(frozen=True)
class _Failure:
    message: str
    exit_code: int


class _Cancelled(Exception):
    pass


_progress = _stop = None


def _init(progress, stop, hide_native: bool) -> None:
    global _progress, _stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides what Ctrl-C means
    from backdrop.engine.segment import hide_native_stderr, setup_native_libraries
    from backdrop.offline.image import quiet_warnings

    if hide_native:
        hide_native_stderr()
    setup_native_libraries()
    quiet_warnings()
    _progress, _stop = progress, stop


def _work(chunked: ChunkPlan, number: int, quality: str, subject: str):
    def tick() -> None:
        if _stop.is_set():
            raise _Cancelled
        _progress.put(1)

    try:   # a process per core already: one model thread each
        return run_chunk(chunked, chunked.chunks[number], quality, subject, threads=1,
                         on_frame=tick)
    except _Cancelled:
        return None
    except BackdropError as e:   # crosses the process boundary with its exit code
        return _Failure(str(e), e.exit_code)


def _drain(progress, on_frame: Callable[[], None]) -> None:
    while True:
        try:
            progress.get_nowait()
        except queue.Empty:
            return
        on_frame()


def _result(future) -> Optional[ChunkOutcome]:
    """A chunk's outcome when it has a problem to report; raises what stopped it."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        result = future.result()
    except BrokenProcessPool as e:
        raise BackdropError("a worker process died (out of memory, or killed); run again,"
                            " or with fewer --jobs") from e
    if isinstance(result, _Failure):
        error = BackdropError(result.message)
        error.exit_code = result.exit_code
        raise error
    return result if isinstance(result, ChunkOutcome) and result.problem else None


def run_local(chunked: ChunkPlan, quality: str, subject: str, jobs: int, *,
              on_start: Callable[[int], None] = lambda total: None,
              on_frame: Callable[[], None] = lambda: None) -> VideoOutcome:
    """Every chunk on `jobs` spawned processes, then the join. On an error or Ctrl-C the
    workers stop within a frame and no chunk file is left behind."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from backdrop.engine.segment import native_stderr_hidden, real_stderr_for_children
    from backdrop.offline.batch import _sigint_ignored

    started = time.monotonic()
    on_start(chunked.frames)
    discard_chunks(chunked)        # what a killed run may have left
    context = multiprocessing.get_context("spawn")   # see batch.py: never fork threads
    progress, stop = context.Queue(), context.Event()
    with _sigint_ignored(), real_stderr_for_children():
        pool = ProcessPoolExecutor(min(jobs, len(chunked.chunks)), mp_context=context,
                                   initializer=_init,
                                   initargs=(progress, stop, native_stderr_hidden()))
        futures = [pool.submit(_work, chunked, c.number, quality, subject)
                   for c in chunked.chunks]
    problems = []
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            _drain(progress, on_frame)
            problems += filter(None, (_result(f) for f in done))
        _drain(progress, on_frame)
        joined = join_chunks(chunked)
    finally:
        stop.set()
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)   # workers remove their own half-written files first
        discard_chunks(chunked)
    first = min(problems, key=lambda outcome: outcome.number).problem if problems else None
    return VideoOutcome(joined.frames, time.monotonic() - started, first, joined.audio)


def default_jobs(requested: Optional[int]) -> int:
    """One process per core unless asked: a chunked run's masks are the single run's (see
    chunks.py), and on two busy cores a 30 s 720p clip ran at 6.3 fps in chunks against 3.8
    in one process (--subject person; auto 3.1 against 2.3; benchmarks/chunk_speed.py)."""
    from backdrop.offline.batch import jobs

    return jobs(requested, os.cpu_count() or 1)
