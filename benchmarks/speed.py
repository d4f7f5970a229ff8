"""Speed of backdrop's live pipeline against the straightforward implementation, same run.

The straightforward version is what the well-known peers ship: the same model on the
whole frame, the mask enlarged to full resolution as float, a full-frame Gaussian blur,
and float compositing `fg * a + bg * (1 - a)`. Both run on the same pre-rendered frames of
the demo scene (a real person, moving), one after the other, several rounds, so every
figure comes with a ratio measured on the same machine at the same time.

    .venv/bin/python benchmarks/speed.py [--frames 150] [--rounds 3] [--resolution 720p ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys

import cv2
import numpy as np

from backdrop.cli.bench import RESOLUTIONS, bench_pipeline, measure, render_scene
from backdrop.engine.segment import create_segmenter, setup_native_libraries


class Straightforward:
    """Model on the whole frame, float mask at full size, full blur, float blend."""

    def __init__(self, sigma_at_720p: float = 12.0):
        self.segmenter = create_segmenter(model="landscape")
        self.sigma_at_720p = sigma_at_720p

    def process(self, frame: np.ndarray):
        import time

        t0 = time.perf_counter()
        small = cv2.resize(frame, self.segmenter.input_size, interpolation=cv2.INTER_LINEAR)
        mask = np.array(self.segmenter.segment(small))
        t1 = time.perf_counter()
        h, w = frame.shape[:2]
        alpha = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        t2 = time.perf_counter()
        bg = cv2.GaussianBlur(frame, (0, 0), self.sigma_at_720p * h / 720)
        t3 = time.perf_counter()
        out = (frame * alpha + bg * (1.0 - alpha)).astype(np.uint8)
        t4 = time.perf_counter()
        assert out.shape == frame.shape
        ms = lambda a, b: (b - a) * 1e3
        return {"segment": ms(t0, t1), "refine": ms(t1, t2), "background": ms(t2, t3),
                "composite": ms(t3, t4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--resolution", action="append", choices=list(RESOLUTIONS))
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    import tempfile

    setup_native_libraries()   # as backdrop runs: both sides get one OpenCV thread

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        naive = Straightforward()
        for name in args.resolution or list(RESOLUTIONS):
            w, h = RESOLUTIONS[name]
            frames = render_scene(w, h, 48)
            ours, theirs = [], []
            for _ in range(args.rounds):      # interleaved, so drift in load hits both
                ours.append(bench_pipeline(w, h, "blur", frames, args.frames, "balanced", folder))
                theirs.append(measure(naive.process, frames, args.frames))
            cpu_o = statistics.median(r["cpu_ms_per_frame"] for r in ours)
            cpu_t = statistics.median(r["cpu_ms_per_frame"] for r in theirs)
            p50_o = statistics.median(r["frame_ms"]["p50"] for r in ours)
            p50_t = statistics.median(r["frame_ms"]["p50"] for r in theirs)
            rows.append((name, cpu_o, cpu_t, p50_o, p50_t))
    print(f"{'res':6} {'backdrop cpu ms/f':>18} {'straightforward':>16} {'ratio':>6}"
          f" {'backdrop p50 ms':>16} {'straightforward':>16} {'ratio':>6}")
    for name, co, ct, po, pt in rows:
        print(f"{name:6} {co:18.2f} {ct:16.2f} {ct / co:6.1f} {po:16.2f} {pt:16.2f} {pt / po:6.1f}")
    print(f"(blur mode, balanced quality, median of {args.rounds} interleaved rounds"
          f" of {args.frames} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
