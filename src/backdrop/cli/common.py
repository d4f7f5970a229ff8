"""What `backdrop image` and `backdrop video` share: argument types, progress bars that
log lines pass through, and quieting the native libraries."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from typing import Optional

from backdrop.config import IMAGE_SUBJECTS

logger = logging.getLogger(__name__)


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a whole number of {least} or more,"
                                         f" got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):      # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def cluster_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", type=_cluster_address, metavar="ADDRESS",
                        help="run on a Ray cluster: local (a Ray runtime on this machine), auto"
                        " (the one `ray start` or RAY_ADDRESS set up) or ray://HOST:PORT; needs"
                        " pip install 'backdrop[cluster]', and files every node sees (shared"
                        " paths, or URLs such as s3://... with fsspec)")


def _cluster_address(text: str) -> str:
    from backdrop.errors import ConfigError
    from backdrop.offline.cluster import parse_address

    try:
        return parse_address(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--cluster ")) from None


def subject_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subject", choices=IMAGE_SUBJECTS, default="auto",
                        help="what to cut out: auto (default: decided per photo, and per shot"
                        " of a video), person (people only), any (whatever the picture is of:"
                        " a product, an animal), window (backdrop image only: an app window"
                        " out of a screenshot, straight edges kept exact)")


@contextlib.contextmanager
def reporting():
    """Log lines while a progress bar runs go through tqdm.write, which clears the bar,
    prints the line and draws the bar again below it."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.getLogger("backdrop")]):
        yield


def progress_bar(total: Optional[int], unit: str):
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI), where it would only
    # leave carriage-return noise; none with -q either.
    quiet = not logger.isEnabledFor(logging.INFO)
    return tqdm(total=total or None, unit=unit, file=sys.stderr, disable=True if quiet else None,
                dynamic_ncols=True, smoothing=0.1, leave=False)


def quiet_engine() -> None:
    from backdrop.offline.image import quiet_warnings
    from backdrop.engine.segment import setup_native_libraries

    setup_native_libraries()
    quiet_warnings()
