"""`backdrop image`: arguments, progress bar, messages, exit codes. The work is in
offline/image.py (one photo) and offline/batch.py (many, on several processes)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import time

from backdrop.cli.common import (cluster_argument, positive_int, progress_bar, quiet_engine,
                                 reporting, subject_argument)
from backdrop.config import QUALITIES
from backdrop.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, InputError

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
  backdrop image /shared/shoot/ -o /shared/cutouts/ --cluster auto --skip-existing
"""


def add_parser(sub) -> None:
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
    subject_argument(p)
    p.add_argument("-r", "--recursive", action="store_true", help="look into subfolders")
    p.add_argument("--shadow", action="store_true", help="add a soft drop shadow")
    p.add_argument("--check", action="store_true",
                   help="also write a contact sheet per input to inspect the edges")
    p.add_argument("--jobs", type=positive_int, metavar="N",
                   help="worker processes for batches (default: one per core, of the"
                   " cluster with --cluster)")
    cluster_argument(p)
    p.add_argument("--skip-existing", action="store_true",
                   help="leave inputs whose outputs are already there (files appear complete"
                   " or not at all), so a stopped batch run again finishes the rest")


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
    with reporting():
        return _run_images(args)


def _run_images(args: argparse.Namespace) -> int:
    from concurrent.futures.process import BrokenProcessPool

    from backdrop.offline import batch

    if args.cluster:
        from backdrop.offline.cluster import import_ray

        import_ray()    # before any work: without Ray, one line that says how to get it
    settings, tasks = _plan_images(args)
    single = len(tasks) == 1
    skipped = 0
    if args.skip_existing:
        tasks, done = batch.pending(tasks)
        skipped = len(done)
        for task in done:
            logger.log(logging.INFO if single else logging.DEBUG,
                       f"backdrop: skipped {task.source}: {task.output} is already there")
        if not tasks and single:
            return EXIT_OK
    quiet_engine()
    jobs = batch.jobs(args.jobs, len(tasks))
    logger.debug(f"{len(tasks)} image(s), quality {settings.quality}, {settings.kind}"
                 f" as {settings.fmt}, {args.cluster or f'{jobs} process(es)'}")
    written = failed = 0
    last_error = None
    started = time.monotonic()
    bar = None if single else progress_bar(len(tasks), "img")
    results, stats = _results(args, tasks, settings, single, jobs)
    try:
        for result in results:
            if result.fatal:
                raise batch.fatal_error(result)
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
    if stats is not None and stats.retried:
        logger.warning(f"backdrop: {stats.lost_workers} Ray worker(s) lost; their"
                       f" {stats.retried} image(s) were redone on the others")
    if single:
        return EXIT_OK if not failed else (InputError.exit_code if last_error.input_error
                                            else EXIT_FAILED)
    took = time.monotonic() - started
    skipped_note = f" {skipped} skipped (already there)," if args.skip_existing else ""
    logger.info(f"backdrop: {written} written,{skipped_note} {failed} failed in {took:.1f} s"
                f" ({(written + failed) / max(took, 1e-9):.1f} images/s)")
    return EXIT_FAILED if failed else EXIT_OK


def _results(args: argparse.Namespace, tasks, settings, single: bool, jobs: int):
    """The ImageResults as they finish, from this process, a process pool or a Ray
    cluster (and the cluster's own counts)."""
    from backdrop.offline import batch

    if not tasks:
        return iter(()), None
    if args.cluster:
        from backdrop.engine.segment import native_stderr_hidden
        from backdrop.offline.cluster import ClusterStats, cluster_results

        stats = ClusterStats()
        return cluster_results(tasks, settings, address=args.cluster, jobs=args.jobs,
                               stats=stats, hide_native=native_stderr_hidden()), stats
    if single or jobs == 1:
        return batch.local_results(tasks, settings), None
    return batch.pool_results(tasks, settings, jobs), None
