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
from backdrop.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ConfigError, InputError

logger = logging.getLogger(__name__)

IMAGE_HELP = """\
outputs (default: next to each input):
  transparent cut-out   photo.jpg -> photo.cutout.png   (PNG/WebP with a soft alpha channel)
  --background SPEC     photo.jpg -> photo.composite.png (or -o photo.jpg: JPEG is fine here)
  --mask                photo.jpg -> photo.mask.png     (8-bit grey, 255 = subject)
  --check               also photo.check.png: the cut-out on white, black, grey, a
                        checkerboard and green, to spot halos
  --id-photo SPEC       photo.jpg -> photo.id.png: an ID photo (eu, uk, us, cn, in, ca) at
                        --dpi (300): exact size, plain background, head and eye line
                        where the layout wants them; --sheet 4x6in adds photo.id.sheet.png,
                        copies with cut marks. Refused (exit 1, the reason named): no face,
                        several faces, a head cut off, a head too small for the dpi
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

ready-to-use layouts (the subject's box lands on the margins to +-1 px):
  backdrop image cup.jpg --canvas 1000x1000 --background white --align bottom --shadow -o cup.jpg
  backdrop image cup.jpg --canvas brand.png -o post.png           # on a template, its size
  backdrop image cup.jpg --fit --margin 10 -o tight.png            # cropped to the subject
  backdrop image cup.jpg --canvas 800x800 --overlay logo.png -o shop.png
  --background white stays exactly 255: in PNG everywhere nothing is drawn, in JPEG every
  pixel more than 12 px from the subject, its shadow and the overlay (JPEGs are written at
  quality 95 without chroma subsampling). Warnings: a subject enlarged more than 1.5x,
  a source JPEG saved below quality ~40 (noisy edges come from small or blocky sources).
  --background blur and none keep the photo's own background, so they do not combine with
  --canvas or --fit. With --mask, the matte goes through the same placement.

ID photos:
  backdrop image portrait.jpg --id-photo eu --sheet 10x15cm

screenshots:
  backdrop image screenshot.png --subject window --keep-shadow -o window.png
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
    p.add_argument("--keep-shadow", action="store_true",
                   help="with --subject window: keep the window's own drop shadow (as"
                   " semi-transparent black, right on any background)")
    p.add_argument("--check", action="store_true",
                   help="also write a contact sheet per input to inspect the edges")
    p.add_argument("--id-photo", metavar="SPEC",
                   help="an ID photo to the layout SPEC: eu, uk, us, cn, in or ca")
    p.add_argument("--dpi", metavar="N", help="ID photo resolution (default: 300)")
    p.add_argument("--sheet", metavar="SIZE",
                   help="with --id-photo: also a print sheet of that paper size (4x6in,"
                   " 10x15cm), as many copies as fit, with cut marks")
    p.add_argument("--jobs", type=positive_int, metavar="N",
                   help="worker processes for batches (default: one per core, fewer if the"
                   " free memory holds fewer at about 1 GB each; of the cluster with --cluster)")
    cluster_argument(p)
    p.add_argument("--skip-existing", action="store_true",
                   help="leave inputs whose outputs are already there (files appear complete"
                   " or not at all), so a stopped batch run again finishes the rest")
    layout_arguments(p)


def layout_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("ready-to-use layouts")
    g.add_argument("--canvas", metavar="WxH|FILE",
                   help="put the subject, cut to its box and scaled to fit inside the margins,"
                   " on a WxH canvas filled with --background; or on a template image, at the"
                   " template's size")
    g.add_argument("--margin", metavar="PCT",
                   help="space left on every edge, in %% of the canvas's smaller side"
                   " (default 5; with --canvas or --fit)")
    g.add_argument("--align", choices=("center", "bottom"),
                   help="center (default), or bottom: resting on the lower margin, centred"
                   " across (with --shadow: a soft contact shadow under it)")
    g.add_argument("--fit", action="store_true",
                   help="crop the output to the subject plus the margin (no canvas, no scaling)")
    g.add_argument("--overlay", metavar="FILE",
                   help="a PNG with transparency (a logo, a frame) laid over the result: at the"
                   " output's size it covers it; smaller, it keeps its size in the bottom-right"
                   " corner; larger, it is shrunk to fit, centred")


def _plan_images(args: argparse.Namespace):
    from backdrop.config import parse_background
    from backdrop.offline.image import (ImageSettings, choose_format, choose_kind, expand_inputs,
                           make_folders, output_is_folder, plan_outputs)
    from backdrop.offline.layout import check_outputs, output_kind, parse_layout

    _check_window_options(args)
    spec = parse_background(args.background)
    layout = parse_layout(args.canvas, args.margin, args.align, args.fit, args.overlay)
    id_photo = _id_photo(args, spec, layout)
    inputs = expand_inputs(args.inputs, args.recursive)
    to_folder = args.output is not None and output_is_folder(args.output, len(inputs))
    kind = "idphoto" if id_photo else output_kind(layout, choose_kind(spec, args.mask))
    check_outputs(layout, spec.kind, kind)
    fmt = choose_format(args.format, args.output, to_folder, kind)
    settings = ImageSettings(quality=args.quality, background=spec, kind=kind, fmt=fmt,
                             shadow=args.shadow, check=args.check,
                             subject="person" if id_photo else args.subject,
                             layout=layout, id_photo=id_photo,
                             keep_shadow=args.keep_shadow)
    tasks = plan_outputs(inputs, args.output, to_folder, settings)
    make_folders(tasks)
    return settings, tasks


def _id_photo(args: argparse.Namespace, spec, layout):
    """--id-photo/--dpi/--sheet, checked (offline/idphoto.py, shared with the server)."""
    from backdrop.errors import ConfigError
    from backdrop.offline.idphoto import parse_id_photo

    if args.id_photo is None:
        extra = [f for f, v in (("--dpi", args.dpi), ("--sheet", args.sheet)) if v is not None]
        if extra:
            raise ConfigError(f"{' and '.join(extra)} only apply to ID photos: add --id-photo"
                              " SPEC (e.g. --id-photo eu)")
        return None
    if args.subject == "window":
        raise ConfigError("--subject window does not go with --id-photo (an ID photo is of a"
                          " person): drop --subject")
    if layout.active:
        raise ConfigError("--canvas, --fit and --overlay do not go with --id-photo (an ID photo"
                          " has its own fixed layout): drop them")
    for flag, given in (("--mask", args.mask), ("--shadow", args.shadow)):
        if given:
            raise ConfigError(f"{flag} does not go with --id-photo (an ID photo is the person"
                              f" on a plain colour): drop {flag}")
    if spec.kind not in ("transparent", "colour"):
        raise ConfigError("an ID photo needs a plain background: drop --background (the"
                          " layout's own colour) or give a colour, e.g. --background white")
    return parse_id_photo(args.id_photo, args.dpi, args.sheet,
                          spec.colour if spec.kind == "colour" else None)


def _check_window_options(args: argparse.Namespace) -> None:
    if args.keep_shadow and args.subject != "window":
        raise ConfigError("--keep-shadow keeps a screenshot window's own shadow: add --subject"
                          " window (for a new shadow under any subject, use --shadow)")
    if args.keep_shadow and args.shadow:
        raise ConfigError("--shadow adds a new drop shadow and --keep-shadow keeps the"
                          " window's own: choose one")


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
