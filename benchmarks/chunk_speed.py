"""`backdrop video` on one 720p clip, one process against chunks on two (--jobs 2), one
after the other in the same run (the machine is shared: compare numbers from one run).

The clip is real footage (DAVIS parkour, shared evaldata) forwards and backwards, looped,
with x264's usual keyframe spacing (250 frames at most).

    .venv/bin/python benchmarks/chunk_speed.py [--seconds 40] [--subject person]
        [--quality best] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from chunk_seams import make_clip  # noqa: E402


def run(clip: str, out: str, jobs: int, quality: str, subject: str):
    """(wall seconds, CPU seconds of the command and its worker processes)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "backdrop", "video", clip, "-o", out, "--jobs",
                    str(jobs), "--quality", quality, "--subject", subject], env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return time.monotonic() - started, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--quality", default="best")
    ap.add_argument("--subject", default="person")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    frames = round(args.seconds * 30)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(os.path.join(tmp, "clip.mp4"), frames, 250, 1280, keyint_min=25)
        for jobs in (1, args.jobs):
            seconds, cpu = run(clip, os.path.join(tmp, f"out{jobs}.mp4"), jobs, args.quality,
                               args.subject)
            print(f"--jobs {jobs}: {frames} frames 1280x720 in {seconds:.1f} s ="
                  f" {frames / seconds:.2f} fps (start-up included); CPU {cpu:.0f} s ="
                  f" {cpu / seconds:.2f} cores busy", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
