"""Worker processes for the server: each is spawned once, loads its models once and answers
jobs one at a time over a pipe. The event loop admits a bounded number of requests (running
plus waiting); beyond that it answers 503 at once instead of queueing without end. A job
over the time limit costs its worker: the process is killed and a fresh one started, since
a native call cannot be interrupted any other way."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any, Dict, List, Optional

from backdrop.errors import BackdropError, ModelError
from backdrop.serve.apierror import ApiError

logger = logging.getLogger(__name__)
RETRY_AFTER = 2     # seconds a client told "busy" should wait


def worker_main(conn, hide_native: bool, warm_settings: List[Any]) -> None:
    """A worker process: answer jobs until the server closes the pipe (or dies)."""
    # The server decides when to stop: a SIGTERM or Ctrl-C sent to the whole process group
    # must not kill a request half-way; the server finishes running requests, then closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from backdrop.engine.segment import hide_native_stderr, setup_native_libraries
    from backdrop.offline.image import quiet_warnings
    from backdrop.serve.render import Renderers, handle, warm

    if hide_native:
        hide_native_stderr()
    setup_native_libraries()
    quiet_warnings()
    import cv2

    cv2.setNumThreads(1)     # one worker per core already
    renderers = Renderers()
    try:
        warm(renderers, warm_settings)
    except BackdropError as e:
        conn.send(("failed", str(e), e.exit_code))
        return
    conn.send(("ready",))
    try:
        while True:
            try:
                job = conn.recv()
            except (EOFError, OSError):
                break
            conn.send(handle(job, renderers))
    finally:
        renderers.close()
    # Nothing is left to flush but stdio; the interpreter's own teardown (the native
    # libraries') costs seconds that a stopping server would wait for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class _Worker:
    def __init__(self, context, hide_native: bool, warm_settings: List[Any]):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=worker_main, daemon=True, name="backdrop-serve",
                                       args=(child, hide_native, warm_settings))
        self.process.start()
        child.close()

    def wait_ready(self) -> None:
        try:
            message = self.conn.recv()
        except (EOFError, OSError) as e:
            raise ModelError("a server worker process died while starting") from e
        if message[0] != "ready":
            error = ModelError(message[1])
            error.exit_code = message[2]
            raise error

    def call(self, job: Dict[str, Any]):
        self.conn.send(job)
        return self.conn.recv()

    def kill(self) -> None:
        # The pipe is left open: a thread may still wait on it, and gets EOF from the death.
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)

    def stop(self) -> None:
        """Close the pipe (the worker's loop ends) and wait for the process."""
        self.conn.close()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class WorkerPool:
    def __init__(self, workers: int, queue: int, time_limit: float, *, hide_native: bool = True,
                 warm_settings: Optional[List[Any]] = None):
        self.size, self.queue_size, self.time_limit = workers, queue, time_limit
        self.hide_native = hide_native
        self.warm_settings = list(warm_settings or [])
        self.running = self.waiting = self.served = self.restarts = 0
        import multiprocessing      # here: on Windows it imports _winapi at once

        self._context = multiprocessing.get_context("spawn")
        self._all: List[_Worker] = []
        self._idle: Optional[asyncio.Queue] = None

    async def start(self) -> None:
        """Spawn every worker and wait until all have loaded their models; raises the
        first worker's error (e.g. ModelError) when one cannot start."""
        self._idle = asyncio.Queue()
        await asyncio.gather(*(self._launch() for _ in range(self.size)))

    async def _launch(self) -> None:
        worker = await asyncio.to_thread(_Worker, self._context, self.hide_native,
                                         self.warm_settings)
        self._all.append(worker)
        try:
            await asyncio.to_thread(worker.wait_ready)
        except BaseException:
            self._all.remove(worker)
            await asyncio.to_thread(worker.kill)
            raise
        self._idle.put_nowait(worker)

    def state(self) -> Dict[str, Any]:
        return {"workers": self.size, "idle": self._idle.qsize() if self._idle else 0,
                "running": self.running, "waiting": self.waiting,
                "queue_limit": self.queue_size, "served": self.served, "restarts": self.restarts}

    async def run(self, job: Dict[str, Any]):
        """The worker's answer to one job; ApiError 503 when the queue is full or the job
        ran over the time limit."""
        if self.running + self.waiting >= self.size + self.queue_size:
            raise ApiError(503, f"busy: the queue is full ({self.running} running,"
                           f" {self.waiting} waiting); try again shortly",
                           {"Retry-After": str(RETRY_AFTER)})
        self.waiting += 1
        try:
            worker = await self._idle.get()
        finally:
            self.waiting -= 1
        self.running += 1
        call = asyncio.ensure_future(asyncio.to_thread(worker.call, job))
        try:
            # shielded: if this request is cancelled (shutdown), the job still ends in its
            # worker, which is then given back rather than lost to the pool
            answer = await asyncio.wait_for(asyncio.shield(call), self.time_limit)
        except (asyncio.TimeoutError, EOFError, OSError) as e:
            # the abandoned call ends with EOFError once its worker is killed: expected
            call.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._replace(worker)
            raise ApiError(503, _failure_message(e, self.time_limit),
                           {"Retry-After": str(RETRY_AFTER)}) from e
        except asyncio.CancelledError:
            call.add_done_callback(lambda done: self._give_back(worker, done))
            raise
        finally:
            self.running -= 1
        self.served += 1
        self._idle.put_nowait(worker)
        return answer

    def _give_back(self, worker: _Worker, done: "asyncio.Future") -> None:
        if done.cancelled() or done.exception() is not None:
            self._replace(worker)
        else:
            self._idle.put_nowait(worker)

    def _replace(self, worker: _Worker) -> None:
        logger.warning("backdrop: a worker is being restarted (time limit or crash)")
        self.restarts += 1
        self._all.remove(worker)
        worker.kill()
        task = asyncio.get_running_loop().create_task(self._launch())
        task.add_done_callback(_log_failure)

    async def close(self) -> None:
        workers, self._all = self._all, []
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in workers))


def _failure_message(error: BaseException, time_limit: float) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return (f"the request took longer than the time limit of {time_limit:g} s; send a"
                " smaller image or a lower quality")
    return "the worker process died (out of memory?); try again or send a smaller image"


def _log_failure(task: "asyncio.Task") -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error(f"backdrop: error: a replacement worker could not start: {task.exception()}")
