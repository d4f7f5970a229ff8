"""Running the service: bind the socket (so a taken port is one clear error), start the
worker processes and wait until their models are loaded, serve with uvicorn until SIGTERM
or Ctrl-C, then let the running requests finish before the workers are closed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional

from backdrop.errors import ConfigError
from backdrop.serve.images import Limits

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8750
    workers: int = 2
    token: Optional[str] = None
    queue: int = 16                 # requests waiting for a worker, beyond the running ones
    time_limit: float = 120.0       # seconds of processing per request
    limits: Limits = field(default_factory=Limits)
    hide_native: bool = True


def bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise ConfigError(f"--host {host}: not an address of this machine ({e.strerror})") from e
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror}); choose another"
                          " --port, or stop what is using it") from e
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def default_warm_settings():
    """What a bare `POST /v1/remove` asks for: loaded in every worker at start."""
    from backdrop.config import BackgroundSpec
    from backdrop.offline.image import ImageSettings
    from backdrop.serve.options import DEFAULT_QUALITY

    return [ImageSettings(quality=DEFAULT_QUALITY, background=BackgroundSpec("transparent"),
                          kind="cutout", fmt="png")]


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises the signal that stopped it once it has shut down, which would
        end the process before the workers are closed; keep it, and report it instead."""

        stopped_by: Optional[int] = None

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                yield
                if self._captured_signals:
                    self.stopped_by = self._captured_signals[0]
                self._captured_signals.clear()

    return Server


async def _serve(settings: ServeSettings, sock: socket.socket,
                 on_ready: Callable[[str], None]) -> Optional[int]:
    import uvicorn

    from backdrop.serve.app import create_app
    from backdrop.serve.pool import WorkerPool

    # Every running job holds a thread waiting on its worker's pipe.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=2 * settings.workers + 4, thread_name_prefix="serve"))
    pool = WorkerPool(settings.workers, settings.queue, settings.time_limit,
                      hide_native=settings.hide_native, warm_settings=default_warm_settings())
    try:
        await pool.start()
        app = create_app(pool, settings.limits, settings.token)
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,
                                server_header=False,
                                timeout_graceful_shutdown=int(settings.time_limit) + 10)
        server = _server_class()(config)
        host, port = sock.getsockname()[:2]
        on_ready(f"http://{'[' + host + ']' if ':' in host else host}:{port}/")
        await server.serve(sockets=[sock])
        return server.stopped_by
    finally:
        await pool.close()


def run(settings: ServeSettings, sock: socket.socket,
        on_ready: Callable[[str], None]) -> Optional[int]:
    """Serve on `sock` (from bind()) until stopped; returns the signal number that stopped
    it (or None). The socket is closed on the way out."""
    from backdrop.engine.segment import real_stderr_for_children

    try:
        # Workers (started now and as replacements later) get the real stderr so their
        # Python errors show; they hide native libraries' lines themselves. This process
        # loads no model, so its own fd 2 can stay real meanwhile.
        with real_stderr_for_children():
            return asyncio.run(_serve(settings, sock, on_ready))
    finally:
        sock.close()
