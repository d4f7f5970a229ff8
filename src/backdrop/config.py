"""Settings: frozen dataclasses, defaults, TOML loading and validation.

Validated once at load; nothing here is parsed per frame. TOML sections map onto the
dataclasses below field by field, and CLI flags override the same fields.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple

from backdrop.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

QUALITIES = ("fast", "balanced", "best")
PRIVACY = ("off", "freeze", "blank")
MODELS = ("auto", "landscape", "general")
SUBJECTS = ("auto", "person", "any")
IMAGE_SUBJECTS = SUBJECTS + ("window",)   # window: an app window out of a still screenshot
NAMED_COLOURS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128),
    "gray": (128, 128, 128), "red": (255, 0, 0), "green": (0, 255, 0),
    "blue": (0, 0, 255), "yellow": (255, 255, 0), "cyan": (0, 255, 255),
    "magenta": (255, 0, 255), "orange": (255, 165, 0), "purple": (128, 0, 128),
}
DEFAULT_BLUR = 12.0
MAX_BLUR = 100.0


@dataclass(frozen=True)
class BackgroundSpec:
    """What to put behind the person. kind: blur | none | colour | transparent | file."""

    kind: str
    strength: float = DEFAULT_BLUR
    colour: Tuple[int, int, int] = (0, 0, 0)
    path: str = ""

    def __str__(self) -> str:
        if self.kind == "blur":
            return f"blur:{self.strength:g}"
        if self.kind == "colour":
            return "#%02x%02x%02x" % self.colour
        return self.path if self.kind == "file" else self.kind


def parse_colour(text: str) -> Optional[Tuple[int, int, int]]:
    """'#0f0', '#00ff00', '00ff00' or a colour name -> (r, g, b); None if not a colour."""
    t = text.strip().lower()
    if t in NAMED_COLOURS:
        return NAMED_COLOURS[t]
    m = re.fullmatch(r"#?([0-9a-f]{6}|[0-9a-f]{3})", t)
    if not m:
        return None
    h = m.group(1)
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))


def parse_background(spec: str) -> BackgroundSpec:
    """Parse a --background SPEC; raise ConfigError naming the allowed forms."""
    text = str(spec).strip()
    low = text.lower()
    if low in ("none", "off"):
        return BackgroundSpec("none")
    if low == "transparent":
        return BackgroundSpec("transparent")
    if low == "blur" or low.startswith("blur:"):
        raw = low.partition(":")[2] or str(DEFAULT_BLUR)
        try:
            strength = float(raw)
        except ValueError:
            strength = -1.0
        if not 0 < strength <= MAX_BLUR:
            raise ConfigError(
                f"background '{text}': blur strength must be a number in (0, {MAX_BLUR:g}],"
                f" e.g. blur:12")
        return BackgroundSpec("blur", strength=strength)
    colour = parse_colour(text)
    if colour is not None:
        return BackgroundSpec("colour", colour=colour)
    if text.startswith("#") or not text:
        raise ConfigError(
            f"background '{text}' is not a colour: use #rrggbb (e.g. #00ff00) or a name"
            f" like green, white, black")
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"background '{text}': no such file, and not blur, none, transparent or a colour"
            f" (#rrggbb or a name like green)")
    return BackgroundSpec("file", path=str(path))


@dataclass(frozen=True)
class SourceConfig:
    camera: str = "auto"        # "auto", an index ("0") or a device path ("/dev/video2")
    source: str = ""            # a video, image, folder of frames or "demo"; empty = camera
    width: int = 1280
    height: int = 720
    fps: float = 30.0
    loop: bool = True           # loop file sources
    mjpg: bool = True           # ask cameras for MJPG (more fps at high resolutions over USB)


@dataclass(frozen=True)
class PipelineConfig:
    quality: str = "balanced"
    model: str = "auto"         # auto: chosen by the quality preset
    background: BackgroundSpec = field(default_factory=lambda: BackgroundSpec("blur"))
    mirror: bool = False
    # What to cut out: person (the person models), any (the general model: products,
    # animals, screenshots), auto (decided per photo / shot). Stills and files only: live
    # always runs the person models (the general model costs ~100x their CPU).
    subject: str = "person"

    @classmethod
    def preset(cls, quality: str, **changes: Any) -> "PipelineConfig":
        return validate_pipeline(cls(quality=quality, **changes))


@dataclass(frozen=True)
class OutputConfig:
    sinks: Tuple[str, ...] = ("auto",)   # auto = vcam + preview when a display exists
    vcam_device: str = ""               # empty: the first v4l2loopback device
    backgrounds: Tuple[str, ...] = ("blur", "none")  # cycled by the 'b' hotkey
    idle_when_unwatched: bool = True    # pause (camera released) while no app reads the vcam
    privacy: str = "off"                # off | freeze | blank: what the others see now
    privacy_key: str = "blank"          # freeze | blank: what the 'p' key switches to


@dataclass(frozen=True)
class RunnerConfig:
    frames: int = 0                 # stop after N source frames sent; 0 = run until stopped
    status_interval: float = 5.0    # seconds between status lines; 0 = none


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)


SECTIONS = {"source": SourceConfig, "pipeline": PipelineConfig,
            "output": OutputConfig, "runner": RunnerConfig}


def _coerce(section: str, key: str, value: Any, default: Any) -> Any:
    where = f"[{section}] {key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings, got {value!r}")
        return tuple(value)
    if isinstance(default, BackgroundSpec):
        return parse_background(value) if not isinstance(value, BackgroundSpec) else value
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return str(value)


def _section(name: str, cls: type, current: Any, values: Mapping[str, Any]) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"[{name}] must be a table of settings, got {values!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"unknown setting [{name}] {key}; allowed: {', '.join(sorted(known))}")
        changes[key] = _coerce(name, key, value, getattr(current, key))
    return dataclasses.replace(current, **changes)


def merge(config: Config, overrides: Mapping[str, Mapping[str, Any]]) -> Config:
    """Apply {section: {key: value}} (from TOML or CLI flags) and validate the result."""
    changes = {}
    for name, values in overrides.items():
        if name not in SECTIONS:
            raise ConfigError(
                f"unknown section [{name}]; allowed: {', '.join(sorted(SECTIONS))}")
        changes[name] = _section(name, SECTIONS[name], getattr(config, name), values)
    return validate(dataclasses.replace(config, **changes))


def load(path: Optional[os.PathLike] = None, overrides: Optional[Mapping] = None) -> Config:
    """Defaults, then the TOML file (if any), then overrides; validated."""
    config = Config()
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {p} not found; `backdrop config > {p}` writes one with"
                              " every setting") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {p} cannot be read: {e}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {p} is not valid TOML: {e}") from e
        config = merge(config, resolve_paths(data, p.resolve().parent))
    return merge(config, overrides or {})


DEFAULT_FILE = Path(__file__).resolve().parent / "default.toml"
_NOT_PATHS = {"", "auto", "demo", "vcam", "preview", "null"}


def _relative_to(folder: Path, value: Any, *, kind: str) -> Any:
    """A relative file path in a config file means: beside that file, not the working folder.
    kind: "path"; "background" (a SPEC that may be a file); "sink" (a file has an extension)."""
    if not isinstance(value, str) or value.strip().lower() in _NOT_PATHS:
        return value
    if kind == "sink" and not Path(value).suffix:
        return value
    if kind == "background":
        low = value.strip().lower()
        if low in ("none", "off", "transparent") or low.startswith("blur") \
                or parse_colour(value) is not None or value.strip().startswith("#"):
            return value
    path = Path(value).expanduser()
    return value if path.is_absolute() else str(folder / path)


def resolve_paths(data: Mapping[str, Any], folder: Path) -> Mapping[str, Any]:
    """Copy of a config file's tables with its relative paths made relative to `folder`
    ([source] source, [pipeline] background, [output] sinks and backgrounds)."""
    out = {name: dict(values) if isinstance(values, Mapping) else values
           for name, values in data.items()}
    edits = (("source", "source", "path"), ("pipeline", "background", "background"),
             ("output", "sinks", "sink"), ("output", "backgrounds", "background"))
    for section, key, kind in edits:
        table = out.get(section)
        if not isinstance(table, dict) or key not in table:
            continue
        value = table[key]
        if isinstance(value, list):
            table[key] = [_relative_to(folder, v, kind=kind) for v in value]
        else:
            table[key] = _relative_to(folder, value, kind=kind)
    return out


def _choice(where: str, value: str, allowed: Tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(allowed)}; got {value!r}")


def validate_pipeline(p: PipelineConfig) -> PipelineConfig:
    _choice("[pipeline] quality", p.quality, QUALITIES)
    _choice("[pipeline] model", p.model, MODELS)
    _choice("[pipeline] subject", p.subject, SUBJECTS)
    return p


def validate(config: Config) -> Config:
    s = config.source
    if not (16 <= s.width <= 7680 and 16 <= s.height <= 4320):
        raise ConfigError(
            f"[source] width x height must be between 16x16 and 7680x4320; got {s.width}x{s.height}")
    if not 1 <= s.fps <= 240:
        raise ConfigError(f"[source] fps must be between 1 and 240; got {s.fps:g}")
    validate_pipeline(config.pipeline)
    for spec in config.output.backgrounds:
        parse_background(spec)
    _choice("[output] privacy", config.output.privacy, PRIVACY)
    _choice("[output] privacy_key", config.output.privacy_key, PRIVACY[1:])
    if not config.output.sinks:
        raise ConfigError("[output] sinks must name at least one sink: vcam, preview, null or a file")
    if config.runner.frames < 0:
        raise ConfigError(f"[runner] frames must be 0 (no limit) or more; got {config.runner.frames}")
    if config.runner.status_interval < 0:
        raise ConfigError("[runner] status_interval must be 0 (off) or more seconds")
    return config
