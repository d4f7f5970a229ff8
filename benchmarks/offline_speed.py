"""Speed of `backdrop image` and `backdrop video` per quality and subject, on this machine.

- image: ms per photo of about 1 MP (wall and CPU), through the same worker `backdrop image`
  uses (read, pipeline with matting, cut-out PNG written), on a person (the astronaut,
  1024x1024) and a product (the coffee cup, 1224x816); the first call of each worker
  (model loading, compilation) is left out.
- video: frames per second of `backdrop video` on 60 frames of the 720p demo scene (a real
  person, moving), to a transparent .webm and a composited .mp4.

    .venv/bin/python benchmarks/offline_speed.py [--repeat 5] [--frames 60] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
PHOTOS = {"person": (REPO / "src" / "backdrop" / "assets" / "astronaut.png", (1024, 1024)),
          "product": (REPO / "assets" / "samples" / "coffee.png", (1224, 816))}
QUALITIES = ("fast", "balanced", "best")
SUBJECTS = ("person", "auto", "any")


def _photo(folder: str, name: str) -> str:
    path, size = PHOTOS[name]
    out = os.path.join(folder, f"{name}.png")
    cv2.imwrite(out, cv2.resize(cv2.imread(str(path)), size, interpolation=cv2.INTER_CUBIC))
    return out


def time_images(folder: str, repeat: int) -> dict:
    from backdrop.config import parse_background
    from backdrop.offline.image import ImageSettings, ImageTask, ImageWorker

    rows = {}
    for quality in QUALITIES:
        for subject in SUBJECTS:
            settings = ImageSettings(quality=quality, background=parse_background("transparent"),
                                     kind="cutout", fmt="png", subject=subject)
            worker = ImageWorker(settings)
            for name in PHOTOS:
                task = ImageTask(_photo(folder, name), os.path.join(folder, "out.png"), None)
                worker.run(task)                       # loading and compiling: not counted
                wall, cpu = [], []
                for _ in range(repeat):
                    w0, c0 = time.perf_counter(), time.process_time()
                    result = worker.run(task)
                    wall.append((time.perf_counter() - w0) * 1e3)
                    cpu.append((time.process_time() - c0) * 1e3)
                    assert result.error is None, result.error
                rows[f"{quality}/{subject}/{name}"] = {
                    "wall_ms": round(statistics.median(wall), 1),
                    "cpu_ms": round(statistics.median(cpu), 1)}
                print(f"image {quality:8s} {subject:6s} {name:7s} {rows[f'{quality}/{subject}/{name}']}",
                      file=sys.stderr, flush=True)
            worker.close()
    return rows


def time_videos(folder: str, frames: int) -> dict:
    from backdrop.io.sources import DemoSource
    from backdrop.io.videowrite import VideoFileSink
    from backdrop.offline.video import plan_video, run_video

    clip = os.path.join(folder, "demo.mp4")
    demo = DemoSource(width=1280, height=720, fps=30)
    with VideoFileSink(path=clip, width=1280, height=720, fps=30) as sink:
        for _ in range(frames):
            sink.send(demo.read())
    rows = {}
    for quality in QUALITIES:
        for subject in SUBJECTS:
            for out in ("cutout.webm", "blur.mp4"):
                plan = plan_video(clip, os.path.join(folder, out), None, False)
                w0, c0 = time.perf_counter(), time.process_time()
                outcome = run_video(plan, quality, subject=subject)
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                rows[f"{quality}/{subject}/{out}"] = {
                    "fps": round(outcome.frames / wall, 2),
                    "cpu_ms_per_frame": round(cpu * 1e3 / outcome.frames, 1)}
                print(f"video {quality:8s} {subject:6s} {out:12s} {rows[f'{quality}/{subject}/{out}']}",
                      file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5, help="timed runs per photo")
    p.add_argument("--frames", type=int, default=60, help="frames of the 720p clip")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--skip-video", action="store_true")
    args = p.parse_args(argv)
    from backdrop.engine.segment import hide_native_stderr, setup_native_libraries

    setup_native_libraries()
    hide_native_stderr()
    with tempfile.TemporaryDirectory() as folder:
        report = {"image": time_images(folder, args.repeat)}
        if not args.skip_video:
            report["video"] = time_videos(folder, args.frames)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
