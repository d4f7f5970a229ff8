"""One exception hierarchy. The library raises these; only the CLI prints them."""


class BackdropError(Exception):
    """Base class: a problem the user can fix. The message names it and the fix."""

    exit_code = 2


class ConfigError(BackdropError):
    """A setting, flag or config file is invalid."""


class InputError(BackdropError):
    """An input file (source, background, image, video) is missing or unreadable."""


class SourceError(BackdropError):
    """A camera or other frame source cannot be opened or stopped delivering."""


class SinkError(BackdropError):
    """An output (virtual camera, window, file) cannot be opened or written."""


class VirtualCameraError(SinkError):
    """The virtual camera device is missing, busy or not usable."""


class ModelError(BackdropError):
    """The segmentation model cannot be found or loaded."""
