"""What finds a window in a screenshot: measured on generated screenshots of known geometry.

    PYTHONPATH=src python benchmarks/window.py [--count 60] [--methods geometry,model]
    PYTHONPATH=src python benchmarks/window.py --jpeg 85            # screenshots saved as JPEG
    PYTHONPATH=src python benchmarks/window.py --false-positives   # shared photos, objects

Per method: mean and worst window IoU (soft: sum(min)/sum(max) of the mattes), the worst
corner error (px: the box's corners; the model's box is that of its alpha >= 0.5), and how
many screenshots met IoU >= 0.99 and corner error <= 2 px. `model` is what
`backdrop image --subject any` makes (U²-Netp, refined, best quality); `geometry` is
engine/window.py. `--false-positives` runs the geometric detector on the shared photos of
people and objects and lists those where it finds a window.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import screenshots  # noqa: E402


def soft_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.minimum(a, b).sum() / max(np.maximum(a, b).sum(), 1e-6))


def corner_error(box, truth) -> int:
    return int(max(abs(p - t) for p, t in zip(box, truth)))


def geometry(shot):
    from backdrop.engine.window import find_window, window_matte

    found = find_window(shot.image)
    if found is None:
        return np.zeros_like(shot.alpha), None, None
    return window_matte(shot.alpha.shape, found), found.box, found.radii


class Model:
    def __init__(self):
        from backdrop.config import BackgroundSpec, PipelineConfig
        from backdrop.engine.pipeline import Pipeline

        config = PipelineConfig.preset("best", background=BackgroundSpec("transparent"),
                                       subject="any")
        self.pipeline = Pipeline(config, matting=True, threads=2)

    def __call__(self, shot):
        self.pipeline.reset()
        alpha = self.pipeline.process(shot.image).alpha.astype(np.float32) / 255
        ys, xs = np.nonzero(alpha >= 0.5)
        box = None if xs.size == 0 else (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        return alpha, box, None


def measure(method, shots):
    ious, errors, radius_errors, met = [], [], [], 0
    started = time.perf_counter()
    for shot in shots:
        alpha, box, *radii = method(shot)
        if radii and radii[0] is not None:
            radius_errors.append(max(abs(a - b) for a, b in zip(radii[0], shot.radii)))
        iou = soft_iou(alpha, shot.alpha)
        err = 999 if box is None else corner_error(box, shot.box)
        ious.append(iou)
        errors.append(err)
        met += iou >= 0.99 and err <= 2
    took = (time.perf_counter() - started) / len(shots)
    return {"mean_iou": float(np.mean(ious)), "min_iou": float(np.min(ious)),
            "max_corner_px": int(np.max(errors)), "met": met, "n": len(shots),
            "s_per_image": took, "worst": int(np.argmin(ious)),
            "max_radius_px": max(radius_errors) if radius_errors else None}


def as_jpeg(shot, quality: int):
    import dataclasses

    import cv2

    ok, data = cv2.imencode(".jpg", shot.image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return dataclasses.replace(shot, image=cv2.imdecode(data, cv2.IMREAD_UNCHANGED))


def false_positives():
    from backdrop.engine.window import find_window

    paths = [p for p in screenshots.wallpapers() if p.parent.name == "images"]
    hits = []
    for path in paths:
        found = find_window(screenshots.read_rgb(path))
        if found is not None:
            hits.append((path.parent.parent.name + "/" + path.name, found))
    sure = [name for name, found in hits if found.score >= 0.9]
    print(f"geometric detector fired on {len(hits)} of {len(paths)} shared photos,"
          f" {len(sure)} of them with score >= 0.9")
    for name, found in hits:
        print(f"  {name}: box {found.box} score {found.score:.2f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=60)
    p.add_argument("--methods", default="geometry,model")
    p.add_argument("--jpeg", type=int, metavar="Q",
                   help="measure on the screenshots saved as JPEG of this quality")
    p.add_argument("--false-positives", action="store_true")
    args = p.parse_args(argv)
    if args.false_positives:
        false_positives()
        return
    paths = screenshots.wallpapers()
    shots = [screenshots.make_screenshot(seed, paths) for seed in range(args.count)]
    if args.jpeg:
        shots = [as_jpeg(shot, args.jpeg) for shot in shots]
    print(f"{len(shots)} screenshots over {len(paths)} wallpapers"
          + (f", saved as JPEG quality {args.jpeg}" if args.jpeg else ""))
    print("method     mean IoU  min IoU  max corner px  met (IoU>=0.99, corner<=2)  s/image"
          "  max radius error px")
    for name in args.methods.split(","):
        method = geometry if name == "geometry" else Model()
        r = measure(method, shots)
        print(f"{name:<10} {r['mean_iou']:8.4f} {r['min_iou']:8.4f} {r['max_corner_px']:14d}"
              f"  {r['met']:3d}/{r['n']:<3d}{'':22s}{r['s_per_image']:.3f}"
              f"  {r['max_radius_px'] if r['max_radius_px'] is not None else '-'}"
              f"   (worst: seed {r['worst']})")


if __name__ == "__main__":
    main()
