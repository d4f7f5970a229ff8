"""The runner's set of sinks: opened together, written together, failing one at a time.

A sink whose send raises is reported once and taken out while the others go on; the virtual
camera is then reopened with backoff (so is one that was missing at start, when other
sinks could go on without it). Part of the runner: it reads the runner's clock, never sleeps.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

from backdrop.errors import BackdropError, SinkError, VirtualCameraError
from backdrop.live.watch import Backoff, Clock

logger = logging.getLogger(__name__)
HEALTH_INTERVAL = 1.0   # seconds between checks of devices that cannot report write errors


@dataclass
class Slot:
    spec: str
    sink: Optional[object] = None
    retry: bool = False          # reopen after a failure (the virtual camera)
    due: float = 0.0             # next reopen attempt (clock time)
    backoff: Backoff = field(default_factory=Backoff)
    error: Optional[BaseException] = None


def is_vcam(spec: str) -> bool:
    return spec.strip().lower() == "vcam"


class Outputs:
    """Every sink of a live run. Close it to close them all."""

    def __init__(self, slots: List[Slot], *, open_one: Callable[[str], object], clock: Clock):
        self.slots, self.open_one, self.clock = slots, open_one, clock
        self.next_health = clock.now() + HEALTH_INTERVAL
        self.failures = 0        # sends or checks that failed
        self.reopened = 0        # sinks brought back

    @property
    def sinks(self) -> List[object]:
        return [s.sink for s in self.slots if s.sink is not None]

    def send(self, frame) -> None:
        for slot in self.slots:
            if slot.sink is None:
                continue
            try:
                slot.sink.send(frame)
            except (BackdropError, OSError) as e:
                self._failed(slot, e)
        self._check_alive()

    def maintain(self) -> None:
        """Between frames: health-check devices, reopen the ones that are due."""
        now = self.clock.now()
        if now >= self.next_health:
            self.next_health = now + HEALTH_INTERVAL
            for slot in self.slots:
                check = getattr(slot.sink, "check", None)
                if check is not None:
                    try:
                        check()
                    except (BackdropError, OSError) as e:
                        self._failed(slot, e)
        for slot in self.slots:
            if slot.sink is None and slot.retry and now >= slot.due:
                self._reopen(slot, now)
        self._check_alive()

    def _failed(self, slot: Slot, error: BaseException) -> None:
        self.failures += 1
        sink, slot.sink, slot.error = slot.sink, None, error
        with contextlib.suppress(Exception):  # it already failed; closing may fail too
            sink.close()
        if slot.retry:
            slot.backoff.reset()
            slot.due = self.clock.now() + slot.backoff.next()
            logger.warning(f"warning: {error}; reopening it, the other outputs go on")
        else:
            logger.warning(f"warning: {error}; dropped that output, the others go on")

    def _reopen(self, slot: Slot, now: float) -> None:
        try:
            slot.sink = self.open_one(slot.spec)
        except (BackdropError, OSError) as e:
            slot.error = e
            slot.due = now + slot.backoff.next()
            return
        slot.error = None
        slot.backoff.reset()
        self.reopened += 1
        logger.info(f"output back: {slot.sink.name}")

    def _check_alive(self) -> None:
        if not any(s.sink is not None or s.retry for s in self.slots):
            first = next((s.error for s in self.slots if s.error is not None), None)
            raise SinkError(f"every output failed: {first}") from first

    def close(self) -> None:
        errors = []
        for slot in self.slots:
            sink, slot.sink = slot.sink, None
            if sink is not None:
                try:
                    sink.close()
                except BaseException as e:  # close the others first, then report
                    errors.append(e)
        if errors:
            raise errors[0]

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def expand(specs: Sequence[str], display_available: Callable[[], bool]) -> List[str]:
    """'auto' -> vcam (+ preview when a display exists); duplicates dropped, order kept."""
    wanted: List[str] = []
    for spec in specs:
        if spec == "auto":
            wanted += ["vcam"] + (["preview"] if display_available() else [])
        else:
            wanted.append(spec)
    return list(dict.fromkeys(wanted))


def open_outputs(specs: Sequence[str], *, open_one: Callable[[str], object], clock: Clock,
                 display_available: Callable[[], bool]) -> Outputs:
    """Open every sink. A missing virtual camera is reported and retried in the background
    when other sinks remain, fatal when it was the only one."""
    slots, failures = [], []
    outputs = Outputs(slots, open_one=open_one, clock=clock)
    try:
        for spec in expand(specs, display_available):
            slot = Slot(spec, retry=is_vcam(spec))
            try:
                slot.sink = open_one(spec)
            except VirtualCameraError as e:
                slot.error = e
                failures.append(e)
            slots.append(slot)
    except BaseException:
        outputs.close()  # the ones already open
        raise
    if failures and not outputs.sinks:
        raise failures[0]
    for slot in slots:
        if slot.error is not None:
            slot.due = clock.now() + slot.backoff.next()
            logger.warning(f"warning: {slot.error}")
    if failures:
        logger.warning(f"continuing with: {', '.join(s.name for s in outputs.sinks)}"
                       f" (trying the virtual camera again every few seconds)")
    return outputs
