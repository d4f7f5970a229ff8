"""Running many image tasks on a Ray cluster: actors that each keep one ImageWorker (one
Pipeline, as a pool process does) for every batch of inputs they get, one per core of the
cluster. An actor or node that dies has its batches handed to the live actors; every output
is written through a temp file and a rename, so a retry never leaves a half file and an input
is reported once. Results come back as they finish, like batch.pool_results; nothing here
prints.

Ray is optional (`pip install 'backdrop[cluster]'`) and imported only when a cluster is asked
for, so `backdrop image` without --cluster never pays for it.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import logging
import os
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Deque, Dict, Iterator, List, Optional

from backdrop.errors import BackdropError, ConfigError
from backdrop.offline.batch import outputs_of

INSTALL_HINT = "pip install 'backdrop[cluster]'"
# Only results (a few hundred bytes each) travel through the object store: a local runtime
# need not reserve Ray's default, 30 % of memory, in /dev/shm.
OBJECT_STORE_BYTES = 96 * 1024 * 1024
IN_FLIGHT = 2           # batches queued on each actor, so it never waits for the driver
MAX_ATTEMPTS = 3        # an input whose worker died this often fails alone (it may be the cause)
# Ray gives a new node a fixed 30 s to register; on a busy machine its Python agents can take
# longer to start (measured here: 20 s with six busy processes on two cores). Once more, then.
START_TRIES = 2
WAIT_FOR_WORKERS_S = 120.0


def parse_address(text: str) -> str:
    """--cluster ADDRESS: local, auto, ray://HOST:PORT, or HOST:PORT of a head node."""
    if text in ("local", "auto"):
        return text
    rest = text[len("ray://"):] if text.startswith("ray://") else text
    host, _, port = rest.rpartition(":")
    if host and port.isdigit():
        return text
    raise ConfigError(f"--cluster {text!r}: expected local (a Ray runtime on this machine), auto"
                      " (the cluster `ray start` or RAY_ADDRESS set up), or ray://HOST:PORT")


def import_ray():
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"--cluster needs Ray, which is not installed: {INSTALL_HINT}") from e
    return ray


@dataclass
class ClusterStats:
    """What the run did beyond the results: for the command's closing lines and the tests."""
    workers: int = 0
    lost_workers: int = 0
    retried: int = 0                        # inputs handed to another worker after a loss
    retried_sources: List[str] = field(default_factory=list)


def _start(ray, kwargs: dict, tries: int) -> None:
    for attempt in range(1, tries + 1):
        try:
            with warnings.catch_warnings():     # the message below says it in one line
                warnings.simplefilter("ignore")
                ray.init(**kwargs)
            return
        except ConnectionError as e:
            raise BackdropError(f"no Ray cluster at --cluster {kwargs['address']} ({e}); start"
                                " one with `ray start --head`, set RAY_ADDRESS, or use"
                                " --cluster local") from e
        except Exception as e:   # Ray raises a bare Exception when a node is slow to start
            with contextlib.suppress(Exception):
                ray.shutdown()
            if attempt == tries or "timed out" not in str(e):
                raise BackdropError(f"could not start Ray ({e}); the machine may be too busy:"
                                    " try again, or use --jobs without --cluster") from e


@contextlib.contextmanager
def _keeping_sigterm() -> Iterator[None]:
    """ray.init makes SIGTERM a bare sys.exit(15): `kill` would end the command with
    status 15 and not a word. A handler the caller installed (the video command's: SIGTERM
    as Ctrl-C) is put back; Python's default is not (Ray's exit at least runs the clean-up)."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if callable(previous) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def connected(address: str, cpus: Optional[int]) -> Iterator:
    """Ray, initialised for `address` (left as it is if the caller already did)."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    # No usage report: these machines (and many clusters) have no route out, and the
    # attempt only slows the start.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # ERROR: Ray's warnings (token authentication on, and the like) are not the user's
    # business mid-batch; its errors still show.
    kwargs = dict(address=address, logging_level=logging.ERROR, log_to_driver=False)
    if address == "local":
        kwargs.update(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                      object_store_memory=OBJECT_STORE_BYTES)
    with _keeping_sigterm():
        _start(ray, kwargs, START_TRIES if address == "local" else 1)
    try:
        yield ray
    finally:
        ray.shutdown()


class ImageActor:
    """One ImageWorker per actor, the same as one pool process (one model thread, one
    OpenCV thread: a worker per core already), so the bytes match a --jobs run."""

    def __init__(self, settings, hide_native: bool = True):
        from backdrop.engine.segment import hide_native_stderr, setup_native_libraries
        from backdrop.offline.image import ImageWorker, quiet_warnings

        if hide_native:
            hide_native_stderr()
        setup_native_libraries()
        quiet_warnings()
        import cv2

        cv2.setNumThreads(1)
        self.worker, self.error = None, None
        try:
            self.worker = ImageWorker(settings, threads=1)
        except BackdropError as e:    # every batch answers with it; the command stops
            self.error = e

    def ready(self) -> bool:
        return True

    def run(self, tasks) -> list:
        from backdrop.offline.image import ImageResult

        if self.worker is None:
            return [ImageResult(t.source, error=str(self.error), fatal=True,
                                exit_code=self.error.exit_code) for t in tasks]
        return [self.worker.run(task) for task in tasks]


@dataclass
class _Batch:
    tasks: list
    attempts: int = 0


def batch_size(count: int, workers: int) -> int:
    """Inputs per call. Measured here, an empty call there and back costs 0.7 ms and an
    image 20 ms (tiny, fast) to 700 ms (best, auto), and two calls wait on each actor: a
    bigger batch would save under 4 %. Batches of up to 4 keep the driver's bookkeeping
    small on million-image runs, about eight calls per worker keep the end balanced, and
    a lost worker takes little work with it."""
    return max(1, min(4, count // max(1, workers * 8)))


def cluster_results(tasks, settings, *, address: str, jobs: Optional[int] = None,
                    batch: Optional[int] = None, stats: Optional[ClusterStats] = None,
                    hide_native: bool = True) -> Iterator:
    """ImageResults as they finish, from actors on the cluster at `address`: `jobs` of
    them, or one per CPU the cluster has."""
    stats = stats if stats is not None else ClusterStats()
    settings = _absolute_settings(settings)
    given = {_absolute(task).source: task for task in tasks}
    tasks = [_absolute(task) for task in tasks]
    with connected(address, jobs) as ray:
        workers = max(1, min(jobs or int(ray.cluster_resources().get("CPU", 1)), len(tasks)))
        size = batch or batch_size(len(tasks), workers)
        queue = collections.deque(_Batch(tasks[i:i + size]) for i in range(0, len(tasks), size))
        run = _Run(ray, settings, hide_native, stats)
        try:
            run.spawn(workers)
            for result in run.drain(queue):
                yield _as_given(result, given[result.source])
        finally:
            _sweep_temp_files(tasks, stats.retried_sources + run.stop())


class _Run:
    """The driver's side: which actors are alive, what each holds, and what goes back in
    the queue when one dies."""

    def __init__(self, ray, settings, hide_native: bool, stats: ClusterStats):
        self.ray, self.stats = ray, stats
        self.remote = ray.remote(num_cpus=1, max_restarts=0)(ImageActor)
        self.settings_ref = ray.put(settings)
        self.hide_native = hide_native
        self.starting: Dict = {}        # ready() ref -> actor not yet known to be up
        self.live: List = []
        self.calls: Dict = {}           # run() ref -> (actor, batch)
        self.spawned = 0
        self.limit = 0
        self.start_error = ""           # why the last actor could not start, for the message

    def spawn(self, count: int) -> None:
        self.limit = self.limit or 3 * count + 4     # replacements for actors that keep dying
        for _ in range(min(count, self.limit - self.spawned)):
            actor = self.remote.remote(self.settings_ref, self.hide_native)
            self.starting[actor.ready.remote()] = actor
            self.spawned += 1

    def drain(self, queue: Deque[_Batch]) -> Iterator:
        waited_since = time.monotonic()
        while queue or self.calls:
            self._dispatch(queue)
            pending = list(self.calls) + list(self.starting)
            if not pending:
                why = f" (the last said: {self.start_error})" if self.start_error else ""
                raise BackdropError("every Ray worker was lost and none can be started; check"
                                    f" the cluster (`ray status`), and that backdrop is installed"
                                    f" on every node{why}")
            ready, _ = self.ray.wait(pending, num_returns=1, timeout=5.0)
            if not ready:
                if not self.calls and time.monotonic() - waited_since > WAIT_FOR_WORKERS_S:
                    raise BackdropError(f"no Ray worker could start in {WAIT_FOR_WORKERS_S:.0f} s;"
                                        " is there a free CPU on the cluster? (`ray status`)")
                continue
            waited_since = time.monotonic()
            yield from self._collect(ready[0], queue)

    def _dispatch(self, queue: Deque[_Batch]) -> None:
        for actor in self.live:
            held = sum(1 for owner, _ in self.calls.values() if owner is actor)
            for _ in range(IN_FLIGHT - held):
                if not queue:
                    return
                batch = queue.popleft()
                batch.attempts += 1
                self.calls[actor.run.remote(batch.tasks)] = (actor, batch)

    def _collect(self, ref, queue: Deque[_Batch]) -> Iterator:
        errors = self.ray.exceptions
        if ref in self.starting:
            actor = self.starting.pop(ref)
            try:
                self.ray.get(ref)
            except errors.RayError as e:
                self.start_error = str(e).strip().splitlines()[-1][:300] if str(e).strip() else ""
                self.stats.lost_workers += 1
                self.spawn(1)
                return
            self.live.append(actor)
            self.stats.workers = max(self.stats.workers, len(self.live))
            return
        actor, batch = self.calls[ref]
        try:
            results = self.ray.get(ref)
        except errors.RayTaskError as e:   # a bug in the worker, not a lost node: no retry
            del self.calls[ref]
            yield from _failed(batch.tasks, f"the Ray worker failed: {e.cause or e}")
            return
        except errors.RayError:
            yield from self._lost(actor, queue)
            return
        del self.calls[ref]
        yield from results

    def _lost(self, actor, queue: Deque[_Batch]) -> Iterator:
        """The actor died (its process or its node): everything it held goes back to the
        front of the queue, and a replacement is asked for where the cluster has room. An
        input that was on a dying worker MAX_ATTEMPTS times fails alone."""
        if actor in self.live:
            self.live.remove(actor)
            self.stats.lost_workers += 1
            self.spawn(1)
        with contextlib.suppress(Exception):
            self.ray.kill(actor, no_restart=True)
        refs = [ref for ref, (owner, _) in self.calls.items() if owner is actor]
        held = [self.calls.pop(ref)[1] for ref in refs]     # in the order they were sent
        for waiting in held[1:]:     # an actor runs its calls in order: only the first ran
            waiting.attempts -= 1
        for lost in reversed(held):
            if lost.attempts >= MAX_ATTEMPTS and len(lost.tasks) == 1:
                yield from _failed(lost.tasks, f"the worker processing it died {lost.attempts}"
                                   " times (a crash, or out of memory?)")
                continue
            self.stats.retried += len(lost.tasks)
            self.stats.retried_sources.extend(t.source for t in lost.tasks)
            for retry in reversed(_retries(lost)):
                queue.appendleft(retry)

    def stop(self) -> List[str]:
        """Ends every actor; returns the inputs that were still on one (a kill can land
        between a worker's temp file and its rename)."""
        actors = self.live + list(self.starting.values())
        for actor in actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
        held = [t.source for _, batch in self.calls.values() for t in batch.tasks]
        if self.calls:      # the kills land when these calls fail: then no worker writes on
            with contextlib.suppress(Exception):
                self.ray.wait(list(self.calls), num_returns=len(self.calls), timeout=10.0)
        self.live, self.starting, self.calls = [], {}, {}
        return held


def _retries(batch: _Batch) -> List[_Batch]:
    """A batch lost twice goes on one input at a time, so an input that kills its worker
    (a decoder crash, memory) is found and fails alone instead of taking others with it."""
    if batch.attempts >= 2 and len(batch.tasks) > 1:
        return [_Batch([task], batch.attempts) for task in batch.tasks]
    return [batch]


def absolute_background(spec):
    """A background picture's path, absolute: workers run in other folders."""
    return replace(spec, path=os.path.abspath(spec.path)) if spec.kind == "file" else spec


def _absolute_settings(settings):
    """The pictures the settings name (background, canvas template, overlay), absolute."""
    layout = settings.layout
    layout = replace(layout, template=layout.template and _absolute_path(layout.template),
                     overlay=layout.overlay and _absolute_path(layout.overlay))
    return replace(settings, background=absolute_background(settings.background), layout=layout)


def _absolute(task):
    """Workers run in other folders (and on other machines): they get absolute paths."""
    return replace(task, source=_absolute_path(task.source), output=_absolute_path(task.output),
                   check=task.check and _absolute_path(task.check),
                   sheet=task.sheet and _absolute_path(task.sheet))


def _absolute_path(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _as_given(result, task):
    """The result in the user's own spelling of the paths, as a run without --cluster says."""
    names = {_absolute_path(p): p for p in [task.source] + outputs_of(task)}
    result.source = task.source
    result.written = [names.get(path, path) for path in result.written]
    for path, given in names.items():
        if result.error:
            result.error = result.error.replace(path, given)
        result.warnings = [note.replace(path, given) for note in result.warnings]
    return result


def _failed(tasks, message: str) -> Iterator:
    from backdrop.offline.image import ImageResult

    for task in tasks:
        yield ImageResult(task.source, error=f"'{task.source}': {message}")


def _sweep_temp_files(tasks, retried_sources: List[str]) -> None:
    """A worker killed between creating its temp file and renaming it leaves the hidden
    temp file behind (the output itself is whole or absent): remove those of the inputs that
    were on a worker that died or was stopped."""
    retried = set(retried_sources)
    for task in tasks:
        if task.source not in retried:
            continue
        for path in outputs_of(task):
            if "://" in path:      # object stores: an upload is whole or absent
                continue
            folder, name = os.path.split(os.path.abspath(path))
            for tmp in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.part")):
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
