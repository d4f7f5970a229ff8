"""What a photo is of: the person model's map, the general model's, or both averaged.

`--subject person` keeps the person models alone, `any` the general model alone, and `auto`
(stills and files) decides per photo and per shot of a video from how the two maps agree:

- no person found (less than MIN_PERSON of the frame): the general model alone. A product,
  an animal, a screenshot.
- the two outlines agree (IoU of their >= 0.5 regions at least AGREE): a photo of a person.
  Their average: the two models fail in different places (measured on the shared people
  photos, IoU / boundary F: person model `best` 0.941 / 0.912, general 0.941 / 0.922,
  average 0.949 / 0.934).
- they disagree: the salient subject is not simply the person (a person far behind a
  product, a cat on a sofa that the person model half takes). The general model alone: on
  the shared objects set averaging there cost 0.2 IoU, keeping the general map cost nothing.

All maps are float32 probabilities at the same (guide) size; nothing here runs a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from backdrop.config import SUBJECTS

MIN_PERSON = 0.005   # of the frame: below this the person model found nobody
AGREE = 0.7          # IoU of the two >= 0.5 regions above which both see the same subject
# A new shot: the guide's mean absolute change (levels) above which a video's decision is
# taken again. A cut changes most pixels by tens of levels; motion inside a shot by a few.
SHOT_CHANGE = 28.0


def agreement(person: np.ndarray, general: np.ndarray) -> float:
    """IoU of the two maps' >= 0.5 regions (0 when both are empty)."""
    p, g = person >= 0.5, general >= 0.5
    union = np.count_nonzero(p | g)
    return np.count_nonzero(p & g) / union if union else 0.0


def decide(person: np.ndarray, general: np.ndarray) -> str:
    """'general' or 'both' for one picture (the `auto` rule; see the module notes)."""
    if np.count_nonzero(person >= 0.5) < MIN_PERSON * person.size:
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
    models from frame to frame (that would flicker), only at a cut."""

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

    def choose(self, guide: np.ndarray, person: Optional[np.ndarray],
               general: Optional[np.ndarray]) -> str:
        """'person', 'general' or 'both' for this frame."""
        if self.subject == "person":
            return "person"
        if self.subject == "any":
            return "general"
        if self.new_shot(guide) or self.choice is None:
            self.choice = decide(person, general)
        return self.choice
