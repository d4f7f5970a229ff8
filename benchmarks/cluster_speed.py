"""Ray's overhead on one machine: `backdrop image --cluster local` against the plain process
pool (`--jobs N`) on the same photos, in one run, and whether batching small images per Ray
call pays.

- command: images/s of the whole command (start-up, model loading, every image written),
  each mode a fresh process, run pool, cluster, cluster, pool (a drifting load favours
  neither), the outputs compared byte for byte.
- calls: images/s of the cluster's actors on a runtime already up, one image per call
  against the automatic batch size (so only the per-call cost differs), and the time of
  one empty call there and back.

    .venv/bin/python benchmarks/cluster_speed.py [--count 200] [--size 128] [--jobs 2]
        [--subject auto] [--quality best] [--json FILE] [--no-calls]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES = [REPO / "src" / "backdrop" / "assets" / "astronaut.png", REPO / "assets" / "samples" / "coffee.png",
           REPO / "assets" / "samples" / "chelsea.png", REPO / "assets" / "samples" / "rocket.jpg"]


def make_photos(folder: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    pictures = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in SAMPLES]
    for i in range(count):
        picture = pictures[i % len(pictures)]
        h, w = picture.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 0.9))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = cv2.resize(picture[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"p{i:04d}.png"), crop)


def run_command(photos: Path, out: Path, extra: list, options: list) -> dict:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "backdrop", "image", str(photos), "-o", str(out),
                           *options, *extra], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"backdrop {' '.join(extra)} failed:\n{proc.stderr[-3000:]}")
    count = len(list(out.glob("*.png")))
    rate = re.search(r"\(([\d.]+) images/s\)", proc.stderr)
    return {"images": count, "wall_s": round(wall, 2), "images_per_s": round(count / wall, 2),
            "images_per_s_after_start": float(rate.group(1)) if rate else None}


def time_calls(photos: Path, out: Path, jobs: int, subject: str, quality: str) -> dict:
    from backdrop.config import parse_background
    from backdrop.offline.cluster import cluster_results, connected
    from backdrop.offline.image import ImageSettings, ImageTask

    settings = ImageSettings(quality=quality, background=parse_background("transparent"),
                             kind="cutout", fmt="png", subject=subject)
    out.mkdir()
    tasks = [ImageTask(str(p), str(out / p.name)) for p in sorted(photos.glob("*.png"))]
    rows = {}
    with connected("local", jobs):
        for name, batch in (("warm-up", None), ("one image per call", 1), ("automatic batch", None)):
            started = time.perf_counter()
            results = list(cluster_results(tasks, settings, address="local", jobs=jobs, batch=batch))
            took = time.perf_counter() - started
            assert all(r.error is None for r in results), [r.error for r in results if r.error][:3]
            if name != "warm-up":
                rows[name] = {"images_per_s": round(len(tasks) / took, 2), "wall_s": round(took, 2)}
            print(f"calls {name}: {len(tasks) / took:.2f} images/s", file=sys.stderr, flush=True)
        rows["empty_call_ms"] = round(_empty_call_ms(settings), 2)
    return rows


def _empty_call_ms(settings, calls: int = 200) -> float:
    """What one Ray call costs without work: an actor's run([]) there and back."""
    import ray

    from backdrop.offline.cluster import ImageActor

    actor = ray.remote(num_cpus=1)(ImageActor).remote(settings)
    ray.get(actor.ready.remote())
    started = time.perf_counter()
    for _ in range(calls):
        ray.get(actor.run.remote([]))
    took = (time.perf_counter() - started) / calls * 1e3
    ray.kill(actor)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=128, help="side of the square photos, px")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--subject", default="auto")
    parser.add_argument("--quality", default="best")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--no-calls", action="store_true", help="only the command comparison")
    args = parser.parse_args()
    options = ["--jobs", str(args.jobs), "--subject", args.subject, "--quality", args.quality]
    report = {"count": args.count, "size": args.size, "jobs": args.jobs, "subject": args.subject,
              "quality": args.quality, "cpus": os.cpu_count(), "load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp, "photos")
        photos.mkdir()
        make_photos(photos, args.count, args.size)
        # ABBA order: a machine whose load drifts during the run favours neither mode
        runs = {"pool": [], "cluster_local": []}
        for i, mode in enumerate(("pool", "cluster_local", "cluster_local", "pool")):
            extra = ["--cluster", "local"] if mode == "cluster_local" else []
            runs[mode].append(run_command(photos, Path(tmp, f"{mode}{i}"), extra, options))
            print(f"{mode}: {runs[mode][-1]}", file=sys.stderr, flush=True)
        same = all(Path(tmp, "pool0", p.name).read_bytes() == p.read_bytes()
                   for p in Path(tmp, "cluster_local1").glob("*.png"))
        rate = {mode: round(statistics.mean(r["images_per_s"] for r in rows), 2)
                for mode, rows in runs.items()}
        report["command"] = {"runs": runs, "images_per_s": rate, "byte_identical": same,
                             "cluster_over_pool": round(rate["cluster_local"] / rate["pool"], 3)}
        if args.no_calls:
            return _print(report, args.json)
        report["calls"] = time_calls(photos, Path(tmp, "calls"), args.jobs, args.subject, args.quality)
    _print(report, args.json)


def _print(report: dict, path) -> None:
    print(json.dumps(report, indent=2))
    if path:
        Path(path).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
