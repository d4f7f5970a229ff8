import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "src" / "backdrop" / "assets"
EVALDATA = ROOT.parent / "shared" / "evaldata"


def read_rgb(path) -> np.ndarray:
    return np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """NASA portrait (public domain), 512x512 RGB: a real person for tests."""
    return read_rgb(ASSETS / "astronaut.png")


def eval_set(name: str, count: int):
    """The first `count` (stem, RGB image, 8-bit mask) of ../shared/evaldata/<name>; skips
    the test when the data is not there."""
    folder = EVALDATA / name
    if not (folder / "images").is_dir():
        pytest.skip(f"../shared/evaldata/{name} is not present")
    stems = sorted(p.stem for p in (folder / "images").glob("*.jpg"))[:count]
    return [(s, read_rgb(folder / "images" / f"{s}.jpg"),
             cv2.imread(str(folder / "masks" / f"{s}.png"), cv2.IMREAD_GRAYSCALE))
            for s in stems]


@pytest.fixture(scope="session")
def eval_photos():
    """A few real photos of people with hand-made masks."""
    return eval_set("photos", 6)


@pytest.fixture(scope="session")
def eval_objects():
    """A few real photos of objects and animals with masks (ECSSD)."""
    return eval_set("objects", 8)


@pytest.fixture(autouse=True)
def _backdrop_logs_captured(caplog):
    """caplog sees backdrop's INFO records too (what a user reads on stderr); the root
    logger's default would keep only warnings."""
    caplog.set_level(logging.INFO, logger="backdrop")


@pytest.fixture(scope="session")
def serve_server(tmp_path_factory):
    """One real `backdrop serve` (2 workers) for the server and page tests."""
    from servehelp import ServerProcess

    srv = ServerProcess(tmp_path_factory.mktemp("serve") / "server.log", workers=2)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
