"""How many warm-up frames a chunk needs (offline/chunks.py): a chunked run's mattes
against the single run's, per warm-up length, at the seams and everywhere.

The clip is real footage (DAVIS parkour, shared evaldata) played forwards and backwards,
encoded here with a keyframe every GOP frames; chunks of CHUNK seconds.

    .venv/bin/python benchmarks/chunk_seams.py [--warmup 0 2 4 8 16] [--frames 240]
        [--gop 12] [--chunk 2] [--quality best] [--subject auto] [--width 480]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
FRAMES = REPO.parent / "shared" / "evaldata" / "video" / "parkour" / "images"


def make_clip(path: str, frames: int, gop: int, width: int, fps: int = 30,
              keyint_min: int = 0) -> str:
    files = sorted(FRAMES.glob("*.jpg"))
    order = files + files[-2:0:-1]           # forwards and back: no jump at the loop
    height = round(width * 9 / 16) // 2 * 2     # the footage is 854x480, about 16:9
    with av.open(path, "w") as out:
        options = {"g": str(gop), "keyint_min": str(keyint_min or gop)}
        if not keyint_min:     # exactly every `gop` frames; else x264's own choice
            options["sc_threshold"] = "0"
        video = out.add_stream("libx264", rate=fps, options=options)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            bgr = cv2.resize(cv2.imread(str(order[i % len(order)])), (width, height),
                             interpolation=cv2.INTER_AREA)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            out.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(video.encode(None))
    return path


def masks(folder: str) -> list:
    return [cv2.imread(os.path.join(folder, n), cv2.IMREAD_GRAYSCALE)
            for n in sorted(os.listdir(folder)) if n.endswith(".png")]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a >= 128, b >= 128
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup", type=int, nargs="+", default=[0, 2, 4, 8, 16])
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--gop", type=int, default=12)
    ap.add_argument("--chunk", type=float, default=2.0)
    ap.add_argument("--quality", default="best")
    ap.add_argument("--subject", default="auto")
    ap.add_argument("--width", type=int, default=480)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from backdrop.offline.chunks import plan_chunks, run_one_process
    from backdrop.offline.video import plan_video, run_video

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(os.path.join(tmp, "clip.mp4"), args.frames, args.gop, args.width)
        t = time.monotonic()
        run_video(plan_video(clip, os.path.join(tmp, "single") + "/", None, True), args.quality,
                  subject=args.subject)
        print(f"single run: {time.monotonic() - t:.1f} s", flush=True)
        single = masks(os.path.join(tmp, "single"))
        for warmup in args.warmup:
            out = os.path.join(tmp, f"w{warmup}") + "/"
            chunked = plan_chunks(plan_video(clip, out, None, True), chunk_seconds=args.chunk,
                                  warmup=warmup)
            run_one_process(chunked, args.quality, subject=args.subject)
            got = masks(out)
            assert len(got) == len(single), (len(got), len(single))
            scores = [iou(a, b) for a, b in zip(single, got)]
            seams = [c.span.index for c in chunked.chunks[1:]]
            at = [scores[s + d] for s in seams for d in range(3)]
            # a seam shows where the mask jumps more from the frame before than it does
            # in the single run
            jumps = [iou(got[s - 1], got[s]) - iou(single[s - 1], single[s]) for s in seams]
            print(f"warm-up {warmup:2d}: {len(seams)} seams; IoU at seams (3 frames each) min"
                  f" {min(at):.4f} mean {np.mean(at):.4f}; all frames min {min(scores):.4f}"
                  f" mean {np.mean(scores):.4f}; IoU with the frame before, at a seam, against"
                  f" the single run's: worst {min(jumps):+.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
