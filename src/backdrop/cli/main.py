"""Command line: subcommands, building the config, mapping errors to messages and exit codes.

Heavy modules (mediapipe, cv2, numba) are imported inside the commands so `--help` is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import contextlib
import logging
import platform
import sys
from typing import Dict, Iterator, List, Optional

from backdrop import __version__
from backdrop.config import QUALITIES, Config, load
from backdrop.errors import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, BackdropError,
                             InputError, ModelError, SinkError, SourceError, VirtualCameraError)

EXIT_HELP = "exit status:\n" + "\n".join(f"  {code:<4} {what}" for code, what in (
    (EXIT_OK, "done"),
    (EXIT_FAILED, "some inputs failed (image, video), doctor found a problem, or another error"),
    (EXIT_USAGE, "usage or configuration error: a flag, a setting, the config file"),
    (InputError.exit_code, "input file missing or unreadable (source, image, video, background)"),
    (SourceError.exit_code, "camera (or other source) cannot be opened"),
    (SinkError.exit_code, "output cannot be opened or written (file, preview window)"),
    (VirtualCameraError.exit_code, "virtual camera missing, busy or not usable"),
    (ModelError.exit_code, "model cannot be found or loaded"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C, SIGTERM)")))
logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ logging

class _StderrHandler(logging.StreamHandler):
    """Writes to sys.stderr as it is at each record: pytest swaps it per test, and
    hide_native_stderr() replaces it for the length of a command."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def add_verbosity(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """-v/-q, on the main parser and on every subcommand (so both `backdrop -q image x`
    and `backdrop image -q x` work). A subcommand's default must not undo the main
    parser's value, hence SUPPRESS there."""
    default = logging.INFO if top else argparse.SUPPRESS
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", dest="log_level", action="store_const",
                       const=logging.DEBUG, default=default,
                       help="also print debugging details and the native libraries' own lines")
    group.add_argument("-q", "--quiet", dest="log_level", action="store_const",
                       const=logging.WARNING, default=default,
                       help="print only warnings and errors (and no progress bar)")


@contextlib.contextmanager
def logging_to_stderr(level: int) -> Iterator[None]:
    """The `backdrop` loggers' records on stderr, as bare messages (they carry their own
    `warning:` / `backdrop: error:` words, as before). Native libraries' own lines are
    hidden unless the level is DEBUG (-v). Everything is put back on the way out."""
    from backdrop.engine.segment import hide_native_stderr

    root = logging.getLogger("backdrop")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    restore = hide_native_stderr() if level > logging.DEBUG else (lambda: None)
    try:
        yield
    finally:
        restore()
        root.removeHandler(handler)
        root.setLevel(old_level)


# ------------------------------------------------------------------------------ parser

def _live_parser(sub) -> None:
    p = sub.add_parser("live", help="webcam -> virtual camera and preview",
                       description="Process a camera (or a file, or the demo scene) live and "
                       "send it to a virtual camera, a preview window and/or a file.")
    p.add_argument("--camera", help="camera index or device path (default: auto)")
    p.add_argument("--source", help="a video, image, folder of frames, or 'demo' instead of a camera")
    p.add_argument("--background", help="blur[:STRENGTH], none, a colour (#00ff00, green), "
                   "or an image/video/GIF path (default: blur)")
    p.add_argument("--sink", action="append", metavar="SINK",
                   help="vcam, preview, null or a video file (.mp4 .mov .mkv .avi: H.264; "
                   ".webm: VP9, about 4x the CPU); repeat for several "
                   "(default: vcam, plus preview when a display exists)")
    p.add_argument("--vcam-device", "--camera-out", dest="vcam_device", metavar="DEV",
                   help="the v4l2loopback device to write to (default: the first one)")
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--fps", type=float)
    p.add_argument("--quality", choices=QUALITIES)
    p.add_argument("--mirror", action="store_true", default=None, help="flip left-right")
    p.add_argument("--no-loop", dest="loop", action="store_false", default=None,
                   help="play a file source once instead of looping")
    p.add_argument("--no-idle", dest="idle", action="store_false", default=None,
                   help="keep processing while no app reads the virtual camera (default:"
                   " pause and release the camera)")
    p.add_argument("--privacy", choices=("off", "freeze", "blank"),
                   help="start with the picture frozen or blanked ('p' in the preview toggles)")
    p.add_argument("--frames", type=int, help="stop after N frames from the source were"
                   " processed and sent (placeholder, paused and privacy frames do not count)")
    p.add_argument("--config", help="a TOML file (`backdrop config > my.toml` writes one with every"
                   " setting); edits of it apply while live runs, as does SIGHUP")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backdrop",
        description="Blur or replace the background behind a person live, or cut any subject"
        " out of photos and videos.",
        epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"backdrop {__version__}")
    add_verbosity(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _live_parser(sub)
    from backdrop.cli import bench
    from backdrop.cli import image, serve, video  # light: no heavy imports at module level
    image.add_parser(sub)
    video.add_parser(sub)
    serve.add_parser(sub)
    bench.add_parser(sub)
    sub.add_parser("devices", help="list cameras and virtual cameras")
    sub.add_parser("doctor", help="check that live will work here, and say how to fix it")
    sub.add_parser("config", help="print every setting with its default, as a TOML file for"
                   " --config (backdrop config > my.toml)")
    for command in sub.choices.values():
        add_verbosity(command)
    return parser


def live_overrides(args: argparse.Namespace) -> Dict[str, Dict]:
    """CLI flags -> the same {section: {key: value}} shape as a TOML file."""
    pick = lambda **kv: {k: v for k, v in kv.items() if v is not None}
    return {
        "source": pick(camera=args.camera, source=args.source, width=args.width,
                       height=args.height, fps=args.fps, loop=args.loop),
        "pipeline": pick(quality=args.quality, background=args.background, mirror=args.mirror),
        "output": pick(sinks=args.sink, vcam_device=args.vcam_device,
                       idle_when_unwatched=args.idle, privacy=args.privacy),
        "runner": pick(frames=args.frames),
    }


def load_live(path: Optional[str], overrides: Dict[str, Dict]) -> Config:
    """The config for live: people only, whatever [pipeline] subject says (that setting is
    for image and video: the general model costs ~100x the person model's CPU)."""
    config = load(path, overrides)
    if config.pipeline.subject != "person":
        logger.warning(f"[pipeline] subject = {config.pipeline.subject!r} applies to image and"
                       " video; live always looks for people")
        config = dataclasses.replace(
            config, pipeline=dataclasses.replace(config.pipeline, subject="person"))
    return config


def cmd_live(args: argparse.Namespace) -> int:
    overrides = live_overrides(args)
    config: Config = load_live(args.config, overrides)
    logger.debug(f"settings: {config}")
    from backdrop.live.runner import run_live
    from backdrop.engine.segment import setup_native_libraries
    from backdrop.io.sinks import open_sink
    from backdrop.io.sources import open_source

    def make_pipeline(p=None):
        # Imported here (numba: 0.6 s), after the source opened: a missing camera fails at once.
        from backdrop.engine.pipeline import Pipeline

        return Pipeline(p or config.pipeline, fps=config.source.fps)

    setup_native_libraries()
    stats = run_live(
        config,
        make_source=lambda: open_source(config.source),
        # Called again with the new [pipeline] settings when an edit changes the quality.
        make_pipeline=make_pipeline,
        open_sink=open_sink,
        config_path=args.config, load_config=lambda: load_live(args.config, overrides))
    extra = [f"{n} {what}" for n, what in ((stats.placeholders, "placeholder"),
                                           (stats.paused, "paused"),
                                           (stats.private, "privacy")) if n]
    logger.info(f"stopped after {stats.sent} frames" + (f" ({', '.join(extra)})" if extra else ""))
    return EXIT_OK


def cmd_devices(args: argparse.Namespace) -> int:
    from backdrop.cli.doctor import device_lines

    print("\n".join(device_lines()))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from backdrop.cli.doctor import report, run_checks

    lines, ok = report(run_checks())
    print("\n".join(lines))
    return EXIT_OK if ok else EXIT_FAILED


def cmd_config(args: argparse.Namespace) -> int:
    from backdrop.config import DEFAULT_FILE

    sys.stdout.write(DEFAULT_FILE.read_text(encoding="utf-8"))
    return EXIT_OK


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from backdrop.cli import bench
    from backdrop.cli import image, serve, video

    commands = {"live": cmd_live, "devices": cmd_devices, "doctor": cmd_doctor,
                "config": cmd_config,
                "bench": bench.cmd_bench, "image": image.cmd_image, "video": video.cmd_video,
                "serve": serve.cmd_serve}
    with logging_to_stderr(args.log_level):
        logger.debug(f"backdrop {__version__}, Python {platform.python_version()},"
                     f" {platform.platform()}: {args.command}")
        try:
            return commands[args.command](args)
        except BackdropError as e:
            logger.error(f"backdrop: error: {e}")
            return e.exit_code
        except KeyboardInterrupt:
            logger.warning("backdrop: interrupted")
            return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
