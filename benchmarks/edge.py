"""Edge colour: what a user sees as a glow or a dark fringe around a cut-out.

A person from the photos set is pasted with a true alpha A (the truth mask softened by a
Gaussian of sigma 1.5 px) on a plain light and on a plain dark backdrop,
I = A * person + (1 - A) * backdrop. A method cuts I out (alpha a, colour F), the cut-out
is composited on the opposite colour (light -> black, dark -> white) and compared with the
exact composite A * person + (1 - A) * opposite: mean absolute error in levels (0..255, over
the 3 channels) within BAND px of the truth's outline. The alpha error |a - A| in the same
band (levels) is reported beside it.

Rows ``oracle-alpha`` (a = A, F = I: the input pixels, as backdrop's cut-out writes them)
and ``oracle-alpha+fg`` (a = A, F = person: zero by construction) separate what the alpha
and what the colour contribute. backdrop methods go through `backdrop image`'s own worker
(offline/image.py ImageWorker: Pipeline.process, cutout.rgba, PNG encode) and the PNG it
writes is read back; other methods give a matte, and F = I (the same cutout.rgba rule).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

import metrics
import synthetic
from common import Unavailable

SIGMA = 1.5
BAND = 8
LIGHT, DARK, BLACK, WHITE = (235, 235, 235), (20, 20, 20), (0, 0, 0), (255, 255, 255)
# name -> (backdrop the person is pasted on, colour the cut-out is composited on)
CASES = {"light->black": (LIGHT, BLACK), "dark->white": (DARK, WHITE)}
ORACLES = ("oracle-alpha", "oracle-alpha+fg")


# ----------------------------------------------------------------------------- the maths

def true_alpha(truth: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """The truth mask (uint8) softened: float32 (H, W) in [0, 1]."""
    return cv2.GaussianBlur(truth.astype(np.float32) / 255.0, (0, 0), sigma)


def composite(colour: np.ndarray, alpha: np.ndarray, backdrop) -> np.ndarray:
    """colour * alpha + backdrop * (1 - alpha), float32 (H, W, 3) levels; ``alpha`` in [0, 1]."""
    a = alpha.astype(np.float32)[..., None]
    return colour.astype(np.float32) * a + np.float32(backdrop) * (1.0 - a)


def paste(person: np.ndarray, alpha: np.ndarray, backdrop) -> np.ndarray:
    """The person on a plain backdrop, as a camera would store it: uint8 RGB."""
    return np.clip(composite(person, alpha, backdrop) + 0.5, 0, 255).astype(np.uint8)


def outline_band(truth: np.ndarray, radius: int = BAND) -> np.ndarray:
    """Pixels within ``radius`` px (Euclidean) of the outline of truth >= 128."""
    boundary = metrics.boundary_map(metrics.binarize(truth))
    if not boundary.any():
        return np.zeros(truth.shape, bool)
    distance = cv2.distanceTransform((~boundary).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= radius


def edge_error(colour: np.ndarray, alpha: np.ndarray, person: np.ndarray, true_a: np.ndarray,
               opposite, band: np.ndarray) -> float:
    """Mean |cut-out on ``opposite`` - exact composite| in levels over ``band`` and channels."""
    got = composite(colour, alpha, opposite)
    want = composite(person, true_a, opposite)
    return float(np.abs(got - want)[band].mean())


def alpha_error(alpha: np.ndarray, true_a: np.ndarray, band: np.ndarray) -> float:
    """Mean |alpha - A| over ``band``, in levels of 255."""
    return 255.0 * float(np.abs(alpha.astype(np.float32) - true_a)[band].mean())


# ----------------------------------------------------------------------------- cut-outs

class ImageJobCutter:
    """`backdrop image --background transparent` on one picture: its worker writes the PNG,
    which is read back. A method with a changed preset lends the worker its pipeline."""

    def __init__(self, spec: str, adapter, folder: Path):
        from backdrop.config import BackgroundSpec
        from backdrop.offline.image import ImageSettings, ImageWorker

        quality, _, subject = spec.split(",")[0].partition("-")
        # "backdrop-best" is the preset as PipelineConfig has it (people); "-auto" etc. the
        # worker exactly as `backdrop image --subject auto` builds it (matting included)
        settings = ImageSettings(quality=quality, background=BackgroundSpec("transparent"),
                                 kind="cutout", fmt="png", subject=subject or "person")
        self._worker = ImageWorker(settings)
        if adapter.changed:
            self._worker.pipeline.close()
            self._worker.pipeline = adapter.pipeline
            adapter.pipeline.set_background(settings.background)
        else:
            adapter.close()
        self._folder = folder

    def cut(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from backdrop.offline.image import ImageTask

        src, out = self._folder / "in.png", self._folder / "out.png"
        cv2.imwrite(str(src), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        result = self._worker.run(ImageTask(str(src), str(out)))
        if result.error:
            raise RuntimeError(result.error)
        rgba = cv2.cvtColor(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
        return rgba[..., :3], rgba[..., 3].astype(np.float32) / 255.0

    def close(self) -> None:
        self._worker.close()


class MatteCutter:
    """Any other method: its matte (8-bit, as a PNG would hold it) over the input pixels."""

    def __init__(self, method):
        self._method = method

    def cut(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._method.reset()
        alpha = metrics.to_uint8(self._method.matte(image), image.shape[:2])
        return image, alpha.astype(np.float32) / 255.0

    def close(self) -> None:
        self._method.close()


def open_cutters(names, make_method, folder: Path, skipped: dict) -> dict:
    cutters = {}
    for name in names:
        try:
            method = make_method(name)
            if name.startswith("backdrop-"):
                cutters[name] = ImageJobCutter(name.removeprefix("backdrop-"), method, folder)
            else:
                cutters[name] = MatteCutter(method)
        except (Unavailable, ImportError) as e:
            skipped[name] = str(e)
            print(f"edge-colour: skipping method {name}: {e}", file=sys.stderr)
    return cutters


# ----------------------------------------------------------------------------- the set

def _cut(name, cutters, image, person, true_a):
    if name == "oracle-alpha":
        return image, true_a
    if name == "oracle-alpha+fg":
        return person, true_a
    return cutters[name].cut(image)


def run_edge(photos: Path, count: int, names, make_method, skipped: dict) -> list[dict]:
    """One row per (method, case): mean edge and alpha error over the first ``count``
    photos. Oracle rows first."""
    if not (photos / "images").is_dir():
        raise Unavailable(f"{photos} not found; pass --evaldata DIR")
    stems = synthetic.photo_stems(photos)[:count]
    sums: dict = {}
    with tempfile.TemporaryDirectory(prefix="edge-colour-") as tmp:
        cutters = open_cutters(names, make_method, Path(tmp), skipped)
        order = [*ORACLES, *cutters]
        try:
            for stem in stems:
                person, truth = synthetic.load_pair(photos / "images", photos / "masks", stem)
                true_a, band = true_alpha(truth), outline_band(truth)
                for case, (backdrop, opposite) in CASES.items():
                    image = paste(person, true_a, backdrop)
                    for name in order:
                        colour, alpha = _cut(name, cutters, image, person, true_a)
                        err = edge_error(colour, alpha, person, true_a, opposite, band)
                        total = sums.setdefault((name, case), [0.0, 0.0])
                        total[0] += err
                        total[1] += alpha_error(alpha, true_a, band)
                print(f"  edge-colour {stem} done", file=sys.stderr)
        finally:
            for cutter in cutters.values():
                cutter.close()
    return [{"set": "edge-colour", "method": name, "case": case, "n": len(stems),
             "edge_err": sums[name, case][0] / len(stems),
             "alpha_err": sums[name, case][1] / len(stems)}
            for name in order for case in CASES]


def format_edge_table(rows: list[dict]) -> str:
    mw = max(28, *(len(r["method"]) + 2 for r in rows))
    head = f"{'method':<{mw}}{'case':<15}{'n':>4}{'edge err':>10}{'alpha err':>11}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['method']:<{mw}}{r['case']:<15}{r['n']:>4}{r['edge_err']:>10.2f}"
                     f"{r['alpha_err']:>11.2f}")
    return "\n".join(lines)
