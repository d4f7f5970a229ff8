"""Running many image tasks: in this process, or on a pool of spawned processes that each
keep one ImageWorker (one Pipeline) for every image they get. Nothing here prints; results
come back as they finish."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Iterator, List, Optional, Tuple

from backdrop.errors import BackdropError


# What one worker process may need: the models of `best` with `auto` and a 4 MP photo
# peaked at 1.06 GB; a 720p video chunk at 0.71 GB.
PROCESS_BYTES = 1 << 30


def jobs(requested: Optional[int], count: int) -> int:
    """Processes for `count` tasks: as asked, or one per core, but no more than the memory
    free now holds (16 processes on a 16-thread laptop with 8 GB would swap or be killed)."""
    if requested:
        return max(1, min(requested, count))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    room = available_memory()
    if room is not None:
        cores = min(cores, room // PROCESS_BYTES)
    return max(1, min(cores, count))


def available_memory() -> Optional[int]:
    """Bytes of memory free for new processes, from the system's own count (Linux's
    MemAvailable, Windows' available physical memory, half of a Mac's memory: macOS
    compresses and swaps before it reports memory as short); None where unknown."""
    try:
        if sys.platform.startswith("linux"):
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        elif sys.platform == "win32":
            return _windows_available()
        elif sys.platform == "darwin":
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _windows_available() -> Optional[int]:
    import ctypes

    class MemoryStatus(ctypes.Structure):     # MEMORYSTATUSEX
        _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong)] + [
            (name, ctypes.c_ulonglong) for name in (
                "total", "available", "total_page", "available_page", "total_virtual",
                "available_virtual", "available_extended")]

    status = MemoryStatus()
    status.length = ctypes.sizeof(MemoryStatus)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
        return None
    return int(status.available)


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
