"""What a photo is of: the person model's map, the general model's, or both averaged.

`--subject person` keeps the person models alone, `any` the general model alone, and `auto`
(stills and files) decides per photo, and per shot of a video (taken again every
models.REFIND frames, so that a chunk of a long video decides as the whole run does):

- a photo of a person: a face is found (FaceFinder) and the two outlines agree (IoU of the
  maps' >= 0.5 regions at least AGREE). Their average: the two models fail in different
  places (shared people photos, IoU / boundary F: person model `best` 0.941 / 0.912,
  general model 0.941 / 0.922, average 0.949 / 0.934).
- anything else: the general model alone. A product, an animal, a screenshot, or a person
  who is not what the photo is of. The person models answer for cups and cats too (on the
  shared objects their outline agreed with the general model's in half of the photos), so
  agreement alone is not enough: averaging there half-erased a saucer. Measured on the 200
  shared objects: general alone 0.879 / 0.830, face + agreement 0.879 / 0.831, agreement
  alone 0.877 / 0.822, the plain average 0.635 / 0.615.
- several people whose outline the general model does not share: still the general model.
  Taking the person map there lost on both such photos of the shared objects (IoU 0.18 and
  0.42 against 0.39 and 0.69); for a group photo, use `--subject person`.

All maps are float32 probabilities at the same (guide) size; nothing here runs a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from backdrop.config import SUBJECTS

MIN_PERSON = 0.005   # of the frame: below this the person model found nobody
AGREE = 0.6          # IoU of the two >= 0.5 regions above which both see the same subject
                     # (shared sets: 0.5-0.7 all within 0.001 IoU of each other)
# A new shot: the guide's mean absolute change (levels) above which a video's decision is
# taken again. A cut changes most pixels by tens of levels; motion inside a shot by a few.
SHOT_CHANGE = 28.0


def agreement(person: np.ndarray, general: np.ndarray) -> float:
    """IoU of the two maps' >= 0.5 regions (0 when both are empty)."""
    p, g = person >= 0.5, general >= 0.5
    union = np.count_nonzero(p | g)
    return np.count_nonzero(p & g) / union if union else 0.0


def decide(person: np.ndarray, general: np.ndarray, faces: int) -> str:
    """'general' or 'both' for one picture (the `auto` rule; see the module notes)."""
    if faces == 0 or np.count_nonzero(person >= 0.5) < MIN_PERSON * person.size:
        return "general"
    return "both" if agreement(person, general) >= AGREE else "general"


def combine(person: np.ndarray, general: np.ndarray, choice: str) -> np.ndarray:
    """The map for `choice` ('person', 'general' or 'both') as a new array."""
    if choice == "person":
        return person.copy()
    if choice == "general":
        return general.copy()
    out = person + general
    out *= np.float32(0.5)
    return out


@dataclass
class SubjectChooser:
    """Keeps `auto`'s decision for the rest of a shot: a video's subject does not switch
    models from frame to frame (that would flicker), only at a cut (and when reset)."""

    subject: str = "auto"
    choice: Optional[str] = None
    _last: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        if self.subject not in SUBJECTS:
            raise ValueError(f"subject must be one of {', '.join(SUBJECTS)}, got {self.subject!r}")

    def reset(self) -> None:
        self.choice, self._last = None, None

    def new_shot(self, guide: np.ndarray) -> bool:
        """True on the first frame and when `guide` (the low-res RGB frame) is a cut."""
        small = guide[::4, ::4].astype(np.float32)
        last, self._last = self._last, small
        if last is None or last.shape != small.shape:
            return True
        return float(np.mean(np.abs(small - last))) > SHOT_CHANGE

    def choose(self, guide: np.ndarray, person: Callable[[], np.ndarray],
               general: Optional[np.ndarray], faces: Callable[[], int]) -> str:
        """'person', 'general' or 'both' for this frame. `person` makes the person map and
        `faces` counts the faces; both are called only when a decision is due (the first
        frame of a shot), so a product photo or a shot of one pays for neither after."""
        if self.subject == "person":
            return "person"
        if self.subject == "any":
            return "general"
        if self.new_shot(guide) or self.choice is None:
            self.choice = decide(person(), general, faces())
        return self.choice
