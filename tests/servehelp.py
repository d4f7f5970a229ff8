"""A real `backdrop serve` process on 127.0.0.1 for the server and page tests: started
with the command line users run, ready once /health reports every worker idle."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"
ASTRONAUT = ROOT / "src" / "backdrop" / "assets" / "astronaut.png"
PHOTOS = ROOT.parent / "shared" / "evaldata" / "photos" / "images"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, log_path: Path, *args: str, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log_path = log_path
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep
                   + os.environ.get("PYTHONPATH", ""))
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backdrop", "serve", "--port", str(self.port),
             "--workers", str(workers), *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, headers: Optional[dict] = None, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"backdrop serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                state = httpx.get(self.url + "/health", headers=headers, timeout=5).json()
                if state["queue"]["idle"] == self.workers:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"backdrop serve did not get ready:\n{self.log()}")

    def children(self) -> List[int]:
        # each thread lists the children it started (workers are started from threads)
        found = []
        for path in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            found += [int(p) for p in path.read_text().split()]
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def png_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def some_photos(count: int) -> List[Path]:
    """The shared photos of people when present, else the repository's samples."""
    shared = sorted(PHOTOS.glob("*.jpg"))[:count] if PHOTOS.is_dir() else []
    return shared or sorted(SAMPLES.glob("*.*g"))[:count] + [ASTRONAUT]
