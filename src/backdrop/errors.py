"""One exception hierarchy. The library raises these; only the CLI prints them, and exits
with the class's `exit_code`: one per kind of problem, so a script can tell a missing camera
from a mistyped flag (the table: README "Exit codes", `backdrop --help`)."""

EXIT_OK = 0
EXIT_FAILED = 1          # some inputs of a batch failed, doctor found a problem, other errors
EXIT_USAGE = 2           # what argparse exits with for a usage mistake
EXIT_INTERRUPTED = 130   # Ctrl-C or SIGTERM: 128 + SIGINT, as shells report it


class BackdropError(Exception):
    """Base class: a problem the user can fix. The message names it and the fix."""

    exit_code = EXIT_FAILED


class ConfigError(BackdropError):
    """A setting, flag or config file is invalid."""

    exit_code = EXIT_USAGE


class InputError(BackdropError):
    """An input file (source, background, image, video) is missing or unreadable."""

    exit_code = 3


class SourceError(BackdropError):
    """A camera or other frame source cannot be opened or stopped delivering."""

    exit_code = 4


class SinkError(BackdropError):
    """An output (virtual camera, window, file) cannot be opened or written."""

    exit_code = 5


class VirtualCameraError(SinkError):
    """The virtual camera device is missing, busy or not usable."""

    exit_code = 6


class ModelError(BackdropError):
    """The segmentation model cannot be found or loaded."""

    exit_code = 7
