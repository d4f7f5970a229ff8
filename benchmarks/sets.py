"""The evaluation sets: frames with truth masks, loaded from ../shared/evaldata or rendered.

``photos`` (80 people with hand-made masks), ``objects`` (200 ECSSD images, any salient
subject), ``parkour`` (100-frame real video), ``synthetic-static`` and ``synthetic-moving``
(rendered from the photos with exact truth; one sequence per seed, so a conclusion about
stability does not rest on one scene). ``edge-colour`` is measured apart (edge.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import synthetic
from common import Unavailable

MASK_SETS = ("photos", "objects", "parkour", "synthetic-static", "synthetic-moving")


@dataclass
class EvalSet:
    """Frames (RGB uint8) with truth masks; ``sequence`` if they form one video. ``group``
    names the set a seeded sequence belongs to (its rows are also averaged under it)."""

    name: str
    sequence: bool
    stems: list[str]
    frames: list[np.ndarray]
    truths: list[np.ndarray]
    group: str = ""


def _load_folder(name: str, root: Path, stems: list[str], sequence: bool) -> EvalSet:
    pairs = [synthetic.load_pair(root / "images", root / "masks", s) for s in stems]
    return EvalSet(name, sequence, stems, [p[0] for p in pairs], [p[1] for p in pairs], name)


def _root(name: str, evaldata: Path) -> Path:
    if name == "parkour":
        return evaldata / "video" / "parkour"
    return evaldata / ("objects" if name == "objects" else "photos")


def load_sets(name: str, evaldata: Path, limit: int | None, frames: int,
              seeds: list[int]) -> list[EvalSet]:
    """Load or render one evaluation set (a synthetic one once per seed); raise
    Unavailable when its data is missing."""
    root = _root(name, evaldata)
    if not (root / "images").is_dir() or not (root / "masks").is_dir():
        need = " (synthetic sets are rendered from the photos)" if name.startswith("syn") else ""
        raise Unavailable(f"{root} not found{need}; pass --evaldata DIR")
    if name in ("photos", "objects"):
        return [_load_folder(name, root, synthetic.photo_stems(root)[:limit], False)]
    if name == "parkour":
        stems = sorted(p.stem for p in (root / "images").glob("*.jpg")
                       if (root / "masks" / f"{p.stem}.png").exists())
        return [_load_folder(name, root, stems[:limit], True)]
    n = min(limit, frames) if limit else frames
    out = []
    for seed in seeds:
        rendered, truths = synthetic.GENERATORS[name.split("-", 1)[1]](root, n, seed)
        out.append(EvalSet(f"{name}:s{seed}", True, [f"{i:05d}" for i in range(n)],
                           rendered, truths, name))
    return out
