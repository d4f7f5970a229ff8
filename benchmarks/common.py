"""What every benchmark module shares: where the data is, and how a part says it cannot run."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_EVALDATA = SHARED / "evaldata"
U2NETP_MODEL = SHARED / "models" / "u2netp_float16.tflite"


class Unavailable(Exception):
    """A set or method that cannot run here; the message says why."""
