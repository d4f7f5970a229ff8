"""`backdrop image` and `backdrop video`: arguments, progress bars, messages, exit codes.

The work itself is in imagejob.py / videojob.py (and imageio, videoio, cutout); this module
only reports. Heavy imports happen inside the commands so `backdrop --help` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from typing import Iterator, Optional

from backdrop.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from backdrop.config import QUALITIES, SUBJECTS
from backdrop.errors import BackdropError, InputError

logger = logging.getLogger(__name__)

IMAGE_HELP = """\
outputs (default: next to each input):
  transparent cut-out   photo.jpg -> photo.cutout.png   (PNG/WebP with a soft alpha channel)
  --background SPEC     photo.jpg -> photo.composite.png (or -o photo.jpg: JPEG is fine here)
  --mask                photo.jpg -> photo.mask.png     (8-bit grey, 255 = subject)
  --check               also photo.check.png: the cut-out on white, black, grey, a
                        checkerboard and green, to spot halos
  -o FILE for one input; -o DIR/ for several (created if missing; same stems, and
  subfolders mirrored with -r). Inputs are never overwritten; files appear complete or not
  at all. Folder scans skip earlier outputs (*.cutout.*, *.mask.*, *.composite.*, *.check.*).
  Fully transparent pixels are stored black: the removed background is not kept in the file.
  Exit status: 0 all written, 1 some inputs failed, 2 usage error, 3 an input is missing
  (or the only one is unreadable), 130 interrupted; the others: backdrop --help.

examples:
  backdrop image photo.jpg
  backdrop image shoot/ -r -o cutouts/ --check
  backdrop image 'shots/*.jpg' --background white -o white/ --format webp
"""

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
container needs it). Ctrl-C leaves no partial video. A damaged input is processed as far as
it can be read (exit status 1, saying where it stopped); one that cannot be read at all
exits 3. The other exit statuses: backdrop --help.

examples:
  backdrop video talk.mp4 -o talk-blur.mp4
  backdrop video talk.mp4 -o talk-cutout.webm
  backdrop video talk.mp4 -o talk-green.mp4 --background '#00ff00'
  backdrop video frames/ -o masks/ --mask
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _subject_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subject", choices=SUBJECTS, default="auto",
                        help="what to cut out: auto (default: decided per photo, and per shot"
                        " of a video), person (people only), any (whatever the picture is of:"
                        " a product, an animal, a screenshot)")


def add_parsers(sub) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("image", help="remove or replace the background of photos",
                       description="Cut the subject out of photos (a person, a product, an"
                       " animal: transparent PNG/WebP), put it on another background, or write"
                       " its mask.",
                       epilog=IMAGE_HELP, formatter_class=raw)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files (JPEG, PNG, WebP, BMP, TIFF), folders, or patterns"
                   " like 'shots/*.jpg'")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (one input) or folder")
    p.add_argument("--background", default="transparent", metavar="SPEC",
                   help="transparent (default), blur[:STRENGTH], a colour (#00ff00, white),"
                   " an image path, or none")
    p.add_argument("--mask", action="store_true", help="write the matte: 8-bit grey PNG")
    p.add_argument("--format", choices=("png", "webp", "jpg"),
                   help="output format (default: png, or the -o file's extension);"
                   " jpg only with an opaque --background")
    p.add_argument("--quality", choices=QUALITIES, default="best", help="default: best")
    _subject_argument(p)
    p.add_argument("-r", "--recursive", action="store_true", help="look into subfolders")
    p.add_argument("--shadow", action="store_true", help="add a soft drop shadow")
    p.add_argument("--check", action="store_true",
                   help="also write a contact sheet per input to inspect the edges")
    p.add_argument("--jobs", type=_positive_int, metavar="N",
                   help="worker processes for batches (default: one per core)")

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
    _subject_argument(v)
    v.add_argument("--fps", type=_positive_float,
                   help="frame rate for a folder of frames (default: 30)")


# ------------------------------------------------------------------------------ reporting

@contextlib.contextmanager
def _reporting():
    """Log lines while a progress bar runs go through tqdm.write, which clears the bar,
    prints the line and draws the bar again below it."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.getLogger("backdrop")]):
        yield


def _bar(total: Optional[int], unit: str):
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI), where it would only
    # leave carriage-return noise; none with -q either.
    quiet = not logger.isEnabledFor(logging.INFO)
    return tqdm(total=total or None, unit=unit, file=sys.stderr, disable=True if quiet else None,
                dynamic_ncols=True, smoothing=0.1, leave=False)


def _quiet_engine() -> None:
    from backdrop.offline.image import quiet_warnings
    from backdrop.engine.segment import setup_native_libraries

    setup_native_libraries()
    quiet_warnings()


# ------------------------------------------------------------------------------ image

def _plan_images(args: argparse.Namespace):
    from backdrop.config import parse_background
    from backdrop.offline.image import (ImageSettings, choose_format, choose_kind, expand_inputs,
                           make_folders, output_is_folder, plan_outputs)

    spec = parse_background(args.background)
    inputs = expand_inputs(args.inputs, args.recursive)
    to_folder = args.output is not None and output_is_folder(args.output, len(inputs))
    kind = choose_kind(spec, args.mask)
    fmt = choose_format(args.format, args.output, to_folder, kind)
    settings = ImageSettings(quality=args.quality, background=spec, kind=kind, fmt=fmt,
                             shadow=args.shadow, check=args.check, subject=args.subject)
    tasks = plan_outputs(inputs, args.output, to_folder, settings)
    make_folders(tasks)
    return settings, tasks


def _jobs(requested: Optional[int], count: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(requested or cores, count))


def _local_results(tasks, settings) -> Iterator:
    from backdrop.offline.image import ImageWorker

    worker = ImageWorker(settings)
    try:
        for task in tasks:
            yield worker.run(task)
    finally:
        worker.close()


@contextlib.contextmanager
def _sigint_ignored():
    """Spawned children inherit an ignored SIGINT through exec, so a Ctrl-C while they
    start cannot print their tracebacks; the parent alone decides what Ctrl-C means."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def fatal_error(result) -> BackdropError:
    """The error that stopped a batch's workers, with its own exit code (a missing model
    exits 7 whether one process ran or several)."""
    error = BackdropError(result.error)
    error.exit_code = result.exit_code
    return error


def _pool_results(tasks, settings, jobs: int) -> Iterator:
    """Results as they finish, from `jobs` spawned processes with one Pipeline each."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from backdrop.engine.segment import native_stderr_hidden, real_stderr_for_children
    from backdrop.offline.image import init_worker, run_in_worker

    # spawn, not fork: the parent may already run mediapipe/OpenCV threads (tests, library
    # use), and forking a process with live threads can deadlock the child.
    context = multiprocessing.get_context("spawn")
    with _sigint_ignored(), real_stderr_for_children():
        pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=init_worker,
                                   initargs=(settings, native_stderr_hidden()))
        futures = [pool.submit(run_in_worker, task) for task in tasks]
    seen = set()
    try:
        for future in as_completed(futures):
            seen.add(future)
            yield future.result()
    except KeyboardInterrupt:
        # Drop the queue, let the images in progress finish (their files are complete),
        # and report those too so the counts are right.
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)
        for future in futures:
            if future not in seen and future.done() and not future.cancelled():
                yield future.result()
        raise
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)


def _report(result, single: bool) -> None:
    for note in result.warnings:
        logger.warning(f"backdrop: warning: {result.source}: {note}")
    if result.error:
        where = "" if result.source in result.error else f"{result.source}: "
        logger.log(logging.ERROR if single else logging.WARNING,
                   f"backdrop: {'error' if single else 'skipped'}: {where}{result.error}")
    elif single:
        logger.info("backdrop: wrote " + ", ".join(result.written))


def cmd_image(args: argparse.Namespace) -> int:
    with _reporting():
        return _run_images(args)


def _run_images(args: argparse.Namespace) -> int:
    from concurrent.futures.process import BrokenProcessPool

    settings, tasks = _plan_images(args)
    _quiet_engine()
    single = len(tasks) == 1
    jobs = _jobs(args.jobs, len(tasks))
    logger.debug(f"{len(tasks)} image(s), quality {settings.quality}, {settings.kind}"
                 f" as {settings.fmt}, {jobs} process(es)")
    written = failed = 0
    last_error = None
    started = time.monotonic()
    bar = None if single else _bar(len(tasks), "img")
    results = (_local_results(tasks, settings) if single or jobs == 1
               else _pool_results(tasks, settings, jobs))
    try:
        for result in results:
            if result.fatal:
                raise fatal_error(result)
            _report(result, single)
            written += result.error is None
            failed += result.error is not None
            last_error = result if result.error else last_error
            if bar is not None:
                bar.update()
    except KeyboardInterrupt:
        logger.warning(f"backdrop: interrupted: {written} written, {failed} failed,"
                       f" {len(tasks) - written - failed} not processed (no partial files were left)")
        return EXIT_INTERRUPTED
    except BrokenProcessPool:
        logger.error(f"backdrop: error: a worker process died (out of memory?) after {written}"
                     " images; try --jobs 1")
        return EXIT_FAILED
    finally:
        if bar is not None:
            bar.close()
        with contextlib.suppress(Exception):
            results.close()
    if single:
        return EXIT_OK if not failed else (InputError.exit_code if last_error.input_error
                                            else EXIT_FAILED)
    took = time.monotonic() - started
    logger.info(f"backdrop: {written} written, {failed} failed in {took:.1f} s"
                f" ({(written + failed) / max(took, 1e-9):.1f} images/s)")
    return EXIT_FAILED if failed else EXIT_OK


# ------------------------------------------------------------------------------ video

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
    with _reporting():
        return _run_video(args)


def _run_video(args: argparse.Namespace) -> int:
    from backdrop.offline.video import plan_video, run_video

    plan = plan_video(args.input, args.output, args.background, args.mask, args.fps)
    _quiet_engine()
    logger.debug(f"{plan.source} -> {plan.output} ({plan.kind}, background {plan.background}),"
                 f" quality {args.quality}, subject {args.subject}")
    state = {"bar": None, "done": 0}

    def on_start(total: int) -> None:
        state["bar"] = _bar(total, "frame")

    def on_frame() -> None:
        state["done"] += 1
        if state["bar"] is not None:
            state["bar"].update()

    try:
        with _sigterm_as_interrupt():
            outcome = run_video(plan, args.quality, subject=args.subject, on_start=on_start,
                                on_frame=on_frame)
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


COMMANDS = {"image": cmd_image, "video": cmd_video}
