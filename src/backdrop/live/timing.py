"""Per-stage timers and frame-rate statistics (no I/O)."""

from __future__ import annotations

from collections import deque
from typing import Deque, Dict

import numpy as np


def percentiles(values, qs=(50, 95)) -> Dict[str, float]:
    if not len(values):
        return {f"p{q}": 0.0 for q in qs}
    arr = np.asarray(values, dtype=np.float64)
    return {f"p{q}": round(float(np.percentile(arr, q)), 3) for q in qs}


class StageTimes:
    """Milliseconds per named stage, the last `window` samples of each."""

    def __init__(self, window: int = 300):
        self.window = window
        self.samples: Dict[str, Deque[float]] = {}

    def add(self, stage: str, ms: float) -> None:
        if stage not in self.samples:
            self.samples[stage] = deque(maxlen=self.window)
        self.samples[stage].append(ms)

    def add_all(self, times: Dict[str, float]) -> None:
        for stage, ms in times.items():
            self.add(stage, ms)

    def summary(self) -> Dict[str, Dict[str, float]]:
        return {name: percentiles(list(s)) for name, s in self.samples.items()}

    def clear(self) -> None:
        self.samples.clear()


class RateMeter:
    """Frames per second over a sliding window of timestamps."""

    def __init__(self, window: int = 120):
        self._stamps: Deque[float] = deque(maxlen=window)

    def tick(self, now: float) -> None:
        self._stamps.append(now)

    def fps(self) -> float:
        if len(self._stamps) < 2:
            return 0.0
        span = self._stamps[-1] - self._stamps[0]
        return (len(self._stamps) - 1) / span if span > 0 else 0.0
