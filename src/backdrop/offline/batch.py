"""Running many image tasks: in this process, or on a pool of spawned processes that each
keep one ImageWorker (one Pipeline) for every image they get. Nothing here prints; results
come back as they finish."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Iterator, List, Optional, Tuple

from backdrop.errors import BackdropError


def jobs(requested: Optional[int], count: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(requested or cores, count))


def outputs_of(task) -> List[str]:
    """Every file a task writes: the output, and its check sheet and print sheet if asked."""
    return [task.output] + [path for path in (task.check, task.sheet) if path]


def pending(tasks) -> Tuple[List, List]:
    """(tasks still to do, tasks already done). Outputs are renamed into place whole, so
    one that exists is complete; a task is done when all its files exist."""
    from backdrop.io import remote

    def there(path: str) -> bool:
        return remote.exists(path) if remote.is_url(path) else os.path.exists(path)

    todo, done = [], []
    for task in tasks:
        (done if all(map(there, outputs_of(task))) else todo).append(task)
    return todo, done


def local_results(tasks, settings) -> Iterator:
    from backdrop.offline.image import ImageWorker

    worker = ImageWorker(settings)
    try:
        for task in tasks:
            yield worker.run(task)
    finally:
        worker.close()


@contextlib.contextmanager
def _sigint_ignored():
    """Spawned children inherit an ignored SIGINT through exec, so a Ctrl-C while they
    start cannot print their tracebacks; the parent alone decides what Ctrl-C means."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def fatal_error(result) -> BackdropError:
    """The error that stopped a batch's workers, with its own exit code (a missing model
    exits 7 whether one process ran or several)."""
    error = BackdropError(result.error)
    error.exit_code = result.exit_code
    return error


def pool_results(tasks, settings, jobs: int) -> Iterator:
    """Results as they finish, from `jobs` spawned processes with one Pipeline each."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from backdrop.engine.segment import native_stderr_hidden, real_stderr_for_children
    from backdrop.offline.image import init_worker, run_in_worker

    # spawn, not fork: the parent may already run mediapipe/OpenCV threads (tests, library
    # use), and forking a process with live threads can deadlock the child.
    context = multiprocessing.get_context("spawn")
    with _sigint_ignored(), real_stderr_for_children():
        pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=init_worker,
                                   initargs=(settings, native_stderr_hidden()))
        futures = [pool.submit(run_in_worker, task) for task in tasks]
    seen = set()
    try:
        for future in as_completed(futures):
            seen.add(future)
            yield future.result()
    except KeyboardInterrupt:
        # Drop the queue, let the images in progress finish (their files are complete),
        # and report those too so the counts are right.
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)
        for future in futures:
            if future not in seen and future.done() and not future.cancelled():
                yield future.result()
        raise
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)
