"""`backdrop video`: arguments, progress bar, messages, exit codes. The work is in
offline/video.py."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal

from backdrop.cli.common import (cluster_argument, positive_float, positive_int, progress_bar,
                                 quiet_engine, reporting, subject_argument)
from backdrop.config import QUALITIES
from backdrop.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ConfigError

logger = logging.getLogger(__name__)

VIDEO_HELP = """\
OUTPUT decides the result:
  clip.webm / clip.mov  transparent video by default (VP9 with alpha / ProRes 4444)
  clip.mp4 / .mkv / .avi  composited (H.264), background blur by default; these cannot be
                        transparent
  frames/ (ends with /, an existing folder, or no extension)
                        one PNG per frame: RGBA cut-outs by default, RGB with an opaque
                        --background, 8-bit masks with --mask; named after the input frames,
                        or 000000.png, 000001.png, ... for a video
The input's frame rate, size and audio are kept (audio is copied, or re-encoded when the
container needs it). A video of at least 20 s runs in chunks on --jobs N processes (default:
one per core): chunks of its length / jobs (10 to 30 s, or --chunk-seconds) that start on its
keyframes, each warmed up on the frames before it so the smoothing carries on across the
seams, joined without a second encode (a video --background always runs in one process).
With --cluster the chunks are Ray tasks, one CPU each (jobs: the cluster's CPUs, or --jobs),
joined on this machine; a shorter video is one task.
The masks are the same as a one-process run's (--jobs 1).
Ctrl-C leaves no partial video. A damaged input is processed as far as
it can be read (exit status 1, saying where it stopped); one that cannot be read at all
exits 3. The other exit statuses: backdrop --help.

examples:
  backdrop video talk.mp4 -o talk-blur.mp4
  backdrop video talk.mp4 -o talk-cutout.webm
  backdrop video talk.mp4 -o talk-green.mp4 --background '#00ff00'
  backdrop video frames/ -o masks/ --mask
"""



def add_parser(sub) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    v = sub.add_parser("video", help="remove or replace the background of a video",
                       description="Process a video file or a folder of frames in order.",
                       epilog=VIDEO_HELP, formatter_class=raw)
    v.add_argument("input", metavar="INPUT", help="a video file or a folder of frames")
    v.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="a video file (.mp4 .mkv .avi .webm .mov) or a folder for PNG frames")
    v.add_argument("--background", metavar="SPEC",
                   help="transparent, blur[:STRENGTH], a colour, an image/video path, or none"
                   " (default: transparent for .webm/.mov/folders, blur otherwise)")
    v.add_argument("--mask", action="store_true", help="write the matte (grey, 255 = subject)")
    v.add_argument("--quality", choices=QUALITIES, default="best", help="default: best")
    subject_argument(v)
    v.add_argument("--fps", type=positive_float,
                   help="frame rate for a folder of frames (default: 30)")
    v.add_argument("--jobs", type=positive_int, metavar="N",
                   help="processes for a long video, each on a chunk of it (default: one per"
                   " core, fewer if the free memory holds fewer at about 1 GB each; see"
                   " below)")
    v.add_argument("--chunk-seconds", type=positive_float, metavar="S",
                   help="length of those chunks (default: the video's length / jobs, 10 to 30)")
    cluster_argument(v)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """`kill` gets the same clean-up as Ctrl-C (no partial video left behind)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_video(args: argparse.Namespace) -> int:
    with reporting():
        return _run_video(args)


def _run(plan, args: argparse.Namespace, on_start, on_frame):
    from backdrop.offline.chunkpool import default_jobs, local_plan, run_local
    from backdrop.offline.video import run_video

    if args.cluster:      # chunks as tasks when long, else the video as one task
        from backdrop.offline.cluster_chunks import run_on_cluster

        def on_chunks(chunks: int, jobs: int) -> None:
            logger.info(f"backdrop: {chunks} chunks on {jobs} cluster CPUs")

        return run_on_cluster(plan, args.quality, subject=args.subject, address=args.cluster,
                              jobs=args.jobs, chunk_seconds=args.chunk_seconds,
                              on_chunks=on_chunks, on_start=on_start, on_frame=on_frame)
    jobs = default_jobs(args.jobs)
    chunked = local_plan(plan, jobs, args.chunk_seconds)
    if chunked is None:
        return run_video(plan, args.quality, subject=args.subject, on_start=on_start,
                         on_frame=on_frame)
    jobs = min(jobs, len(chunked.chunks))
    logger.info(f"backdrop: {len(chunked.chunks)} chunks on {jobs} processes")
    return run_local(chunked, args.quality, args.subject, jobs, on_start=on_start,
                     on_frame=on_frame)


def _run_video(args: argparse.Namespace) -> int:
    from backdrop.offline.video import plan_video

    if args.subject == "window":
        raise ConfigError("--subject window cuts an app window out of a still screenshot"
                          " (backdrop image); for a screen recording use --subject any")
    if args.cluster:
        from backdrop.offline.cluster import import_ray

        import_ray()    # before any work: without Ray, one line that says how to get it
    plan = plan_video(args.input, args.output, args.background, args.mask, args.fps)
    quiet_engine()
    logger.debug(f"{plan.source} -> {plan.output} ({plan.kind}, background {plan.background}),"
                 f" quality {args.quality}, subject {args.subject}")
    state = {"bar": None, "done": 0}

    def on_start(total: int) -> None:
        state["bar"] = progress_bar(total, "frame")

    def on_frame() -> None:
        state["done"] += 1
        if state["bar"] is not None:
            state["bar"].update()

    try:
        with _sigterm_as_interrupt():
            outcome = _run(plan, args, on_start, on_frame)
    except KeyboardInterrupt:
        left = ("the frames done so far are in " + plan.output if plan.to_folder
                else "no video was written")
        logger.warning(f"backdrop: interrupted after {state['done']} frames; {left}")
        return EXIT_INTERRUPTED
    finally:
        if state["bar"] is not None:
            state["bar"].close()
    audio = {"copied": ", audio copied", "re-encoded": ", audio re-encoded"}.get(outcome.audio, "")
    logger.info(f"backdrop: wrote {plan.output}: {outcome.frames} frames in {outcome.seconds:.1f} s"
                f" ({outcome.frames / max(outcome.seconds, 1e-9):.1f} fps){audio}")
    if outcome.problem:
        logger.warning(f"backdrop: warning: {plan.source}: {outcome.problem}; the output holds"
                       f" the {outcome.frames} frames that could be read")
        return EXIT_FAILED
    return EXIT_OK
