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


@pytest.fixture(scope="session")
def eval_photos():
    """A few real photos with hand-made masks from ../shared/evaldata (skip when absent)."""
    photos = EVALDATA / "photos"
    if not (photos / "images").is_dir():
        pytest.skip("../shared/evaldata is not present")
    stems = sorted(p.stem for p in (photos / "images").glob("*.jpg"))[:6]
    out = []
    for s in stems:
        img = read_rgb(photos / "images" / f"{s}.jpg")
        mask = cv2.imread(str(photos / "masks" / f"{s}.png"), cv2.IMREAD_GRAYSCALE)
        out.append((s, img, mask))
    return out


@pytest.fixture(scope="session")
def eval_objects():
    """A few real photos of objects and animals with masks (ECSSD, ../shared; skip when absent)."""
    objects = EVALDATA / "objects"
    if not (objects / "images").is_dir():
        pytest.skip("../shared/evaldata/objects is not present")
    stems = sorted(p.stem for p in (objects / "images").glob("*.jpg"))[:8]
    return [(s, read_rgb(objects / "images" / f"{s}.jpg"),
             cv2.imread(str(objects / "masks" / f"{s}.png"), cv2.IMREAD_GRAYSCALE))
            for s in stems]


@pytest.fixture(autouse=True)
def _backdrop_logs_captured(caplog):
    """caplog sees backdrop's INFO records too (what a user reads on stderr); the root
    logger's default would keep only warnings."""
    caplog.set_level(logging.INFO, logger="backdrop")
