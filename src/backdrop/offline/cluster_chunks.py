"""`backdrop video --cluster` for a long video: its chunks (chunks.py) as Ray tasks, one
core each, at most `jobs` at a time (the cluster's CPUs unless --jobs), then the join on
this machine. The same rule as `--jobs` decides when to split (chunkpool.local_plan);
shorter videos and a video background keep the single task of cluster_video.py.

A chunk whose node dies is run again by Ray: run_chunk writes its file in the hidden
`.<output>.chunks/` folder through a temp file and a rename, so a retry never leaves half a
chunk, and that folder is removed whatever happens (on Ctrl-C or an error, once the chunks
still running have seen the run's StopFile, cluster_video.py, and stopped). Progress is
counted per chunk (its frames when it finishes): a retried chunk then counts once.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Optional

from backdrop.offline.chunkpool import local_plan
from backdrop.offline.chunks import ChunkPlan, discard_chunks, join_chunks
from backdrop.offline.cluster import connected
from backdrop.offline.cluster_video import (RETRIES, STOP_WAIT_S, StopFile, Stopped, _absolute,
                                            _get, run_video_on_cluster)
from backdrop.offline.video import VideoOutcome, VideoPlan


def run_on_cluster(plan: VideoPlan, quality: str, *, subject: str, address: str,
                   jobs: Optional[int] = None, chunk_seconds: Optional[float] = None,
                   on_chunks: Callable[[int, int], None] = lambda chunks, jobs: None,
                   on_start: Callable[[int], None] = lambda total: None,
                   on_frame: Callable[[], None] = lambda: None) -> VideoOutcome:
    """The video on the cluster at `address`: in chunks when it is long enough, else as
    one task. `on_chunks(chunks, jobs)` is called when it is split."""
    plan = _absolute(plan)
    with connected(address, None) as ray:
        jobs = jobs or int(ray.cluster_resources().get("CPU", 1))
        chunked = local_plan(plan, jobs, chunk_seconds)
        if chunked is None:
            return run_video_on_cluster(plan, quality, subject=subject, address=address,
                                        on_start=on_start, on_frame=on_frame)
        jobs = min(jobs, len(chunked.chunks))
        on_chunks(len(chunked.chunks), jobs)
        return _run_chunks(ray, chunked, quality, subject, jobs, on_start, on_frame)


def _run_chunks(ray, chunked: ChunkPlan, quality: str, subject: str, jobs: int,
                on_start: Callable[[int], None], on_frame: Callable[[], None]) -> VideoOutcome:
    started = time.monotonic()
    on_start(chunked.frames)
    stop = StopFile.beside(chunked.video.output)
    discard_chunks(chunked)        # what a killed run may have left
    task = ray.remote(num_cpus=1, max_retries=RETRIES)(_chunk_task)
    waiting = list(chunked.chunks)
    running, problems = [], []
    try:
        while waiting or running:
            while waiting and len(running) < jobs:   # --jobs caps what runs at once
                number = waiting.pop(0).number
                running.append(task.remote(chunked, number, quality, subject, stop))
            done, running = ray.wait(running, num_returns=1, timeout=0.5)
            for ref in done:
                outcome = _get(ray, ref)
                problems += [outcome] if outcome.problem else []
                for _ in range(outcome.frames):
                    on_frame()
        joined = join_chunks(chunked)
    finally:
        try:
            _stop(ray, running, stop)
        finally:       # even on a second Ctrl-C
            discard_chunks(chunked)
    first = min(problems, key=lambda outcome: outcome.number).problem if problems else None
    return VideoOutcome(joined.frames, time.monotonic() - started, first, joined.audio)


def _stop(ray, running: list, stop: StopFile) -> None:
    """Stop the chunks still running (each removes its temp file) and wait for them, so
    none writes into the folder after it is removed."""
    if not running:
        return
    stop.set()
    try:
        with contextlib.suppress(Exception):
            ray.wait(running, num_returns=len(running), timeout=STOP_WAIT_S)
    finally:
        stop.clear()


def _chunk_task(chunked: ChunkPlan, number: int, quality: str, subject: str, stop: StopFile):
    """Runs on a node: one chunk, with one model thread (a task per core already), the
    same as a `--jobs` process; the worker keeps its pipeline for the next chunk. None
    when `stop` was set."""
    from backdrop.engine.segment import hide_native_stderr, setup_native_libraries
    from backdrop.offline.chunks import run_chunk
    from backdrop.offline.image import quiet_warnings

    def on_frame() -> None:
        if stop.is_set():
            raise Stopped      # inside run_chunk: its file is not written

    if stop.is_set():          # it started after the Ctrl-C: no need to load the models
        return None
    hide_native_stderr()
    setup_native_libraries()
    quiet_warnings()
    try:
        return run_chunk(chunked, chunked.chunks[number], quality, subject, threads=1,
                         on_frame=on_frame)
    except Stopped:
        return None
