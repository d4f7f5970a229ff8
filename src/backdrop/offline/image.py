"""`backdrop image`, the library side: planning every output before
anything is written (so a bad -o or an input about to be overwritten is refused up front),
and processing one image per call in a worker that owns one Pipeline.

Nothing here prints; results come back as ImageResult values and the command reports them.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from backdrop.config import BackgroundSpec
from backdrop.errors import BackdropError, ConfigError, InputError, SinkError
from backdrop.io.images import ALPHA_FORMATS, FORMAT_EXTENSION, WRITE_FORMATS
from backdrop.offline.inputs import (CHECK_SUFFIX, SHEET_SUFFIX, SUFFIXES, ImageInput,  # noqa: F401
                                     expand_inputs)
from backdrop.offline.layout import NO_LAYOUT, Layout

if TYPE_CHECKING:
    from backdrop.offline.idphoto import IdPhotoOptions



@dataclass(frozen=True)
class ImageSettings:
    quality: str
    background: BackgroundSpec
    kind: str            # cutout (transparent) | composite (opaque background) | mask
    fmt: str             # png | webp | jpg
    shadow: bool = False
    check: bool = False
    subject: str = "auto"     # auto | person | any (see engine/subject.py) | window
    layout: Layout = NO_LAYOUT   # canvas, margins, overlay (see offline/layout.py)
    id_photo: Optional["IdPhotoOptions"] = None    # kind "idphoto" (offline/idphoto.py)
    keep_shadow: bool = False  # window only: keep its own drop shadow (offline/screenshot.py)


@dataclass(frozen=True)
class ImageTask:
    source: str
    output: str
    check: Optional[str] = None
    sheet: Optional[str] = None     # the ID photo's print sheet


@dataclass
class ImageResult:
    source: str
    written: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    error: Optional[str] = None
    input_error: bool = False    # the input itself is bad (as opposed to writing failed)
    fatal: bool = False          # nothing can work (the worker could not start): stop the batch
    exit_code: int = 1           # with fatal: the exit code of the error that stopped it


# ----------------------------------------------------------------------------- outputs

def choose_kind(spec: BackgroundSpec, mask: bool) -> str:
    if mask:
        return "mask"
    return "cutout" if spec.kind == "transparent" else "composite"


def jpeg_refusal(target: str) -> ConfigError:
    return ConfigError(
        f"JPEG cannot store transparency, so a transparent cut-out cannot go to {target}:"
        " write PNG or WebP instead (a .png/.webp name or --format png), or pass"
        " --background COLOR (e.g. --background white) for an opaque JPEG")


def output_is_folder(out: str, count: int) -> bool:
    """-o names a folder when it ends with '/', exists as one, has no extension, or there
    are several inputs; otherwise it is one file."""
    if out.endswith(("/", os.sep)) or os.path.isdir(out):
        return True
    ext = os.path.splitext(out)[1].lower()
    if ext in WRITE_FORMATS:
        if count > 1:
            raise ConfigError(f"-o {out} names one file but there are {count} inputs; give a"
                              f" folder instead (e.g. -o {os.path.splitext(out)[0]}/)")
        return False
    if ext == "" or count > 1:
        return True
    raise ConfigError(f"cannot write '{ext}' images: name the output .png, .webp or .jpg, or"
                      " end -o with / to write into a folder")


def choose_format(requested: Optional[str], out: Optional[str], to_folder: bool,
                  kind: str) -> str:
    """--format, or the -o file's extension (they must agree), defaulting to PNG."""
    from_name = None if (out is None or to_folder) else WRITE_FORMATS[os.path.splitext(out)[1].lower()]
    if requested and from_name and requested != from_name:
        raise ConfigError(f"-o {out} is {from_name.upper()} but --format {requested} was asked;"
                          " drop one of them")
    fmt = requested or from_name or "png"
    if kind == "mask" and fmt != "png":
        raise ConfigError("--mask writes 8-bit greyscale PNG; name the output .png or drop --format")
    if kind == "cutout" and fmt not in ALPHA_FORMATS:
        raise jpeg_refusal(out if from_name else "--format jpg")
    return fmt


def _targets(item: ImageInput, out: Optional[str], to_folder: bool,
             settings: ImageSettings) -> Tuple[str, str]:
    """(output path, contact-sheet path) for one input."""
    ext = FORMAT_EXTENSION[settings.fmt]
    stem = os.path.splitext(os.path.basename(item.path))[0]
    if out is None:
        base = os.path.join(os.path.dirname(item.path), stem)
        return base + SUFFIXES[settings.kind] + ext, base + CHECK_SUFFIX + ".png"
    if to_folder:
        base = os.path.join(out, os.path.dirname(item.relative), stem)
        return base + ext, base + CHECK_SUFFIX + ".png"
    return out, os.path.splitext(out)[0] + CHECK_SUFFIX + ".png"


def plan_outputs(inputs: Sequence[ImageInput], out: Optional[str], to_folder: bool,
                 settings: ImageSettings) -> List[ImageTask]:
    """One task per input. Refuses (ConfigError) outputs that would overwrite an input or
    that two inputs would both write."""
    sources = {os.path.realpath(i.path): i.path for i in inputs}
    claimed: Dict[str, str] = {}
    tasks = []
    for item in inputs:
        target, sheet = _targets(item, out, to_folder, settings)
        prints = (os.path.splitext(target)[0] + SHEET_SUFFIX + os.path.splitext(target)[1]
                  if settings.id_photo and settings.id_photo.sheet_mm else None)
        paths = [target] + ([sheet] if settings.check else []) + ([prints] if prints else [])
        for path in paths:
            real = os.path.realpath(path)
            if real in sources:
                raise ConfigError(f"refusing to overwrite the input '{sources[real]}' with an"
                                  " output; choose another -o folder or file name")
            if real in claimed:
                raise ConfigError(f"'{claimed[real]}' and '{item.path}' would both be written to"
                                  f" '{path}'; process them into separate -o folders")
            claimed[real] = item.path
        tasks.append(ImageTask(item.path, target, sheet if settings.check else None, prints))
    return tasks


def make_folders(tasks: Sequence[ImageTask]) -> None:
    """Create the output folders (and mirrored subfolders) before any worker writes."""
    # URLs: object stores have no folders to make (fsspec makes them where a backend has)
    for folder in sorted({os.path.dirname(os.path.abspath(t.output)) for t in tasks
                          if "://" not in t.output}):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create the output folder '{folder}': {e.strerror}") from e


# ----------------------------------------------------------------------------- workers

@dataclass
class Rendered:
    image: "object"      # the output array: (H, W) mask, (H, W, 3) RGB or (H, W, 4) RGBA
    layer: "object"      # the RGBA cut-out it came from (for the check sheet)
    warnings: List[str]
    sheet: "object" = None   # the ID photo's print sheet, when one was asked for

    def check_sheet(self):
        from backdrop.offline import cutout

        return cutout.contact_sheet(self.layer)


def make_pipeline(settings: ImageSettings, threads: int = 2, spec=None):
    """The Pipeline an ImageWorker of these settings runs: it depends only on the quality
    and the subject (the background is set per image)."""
    from backdrop.config import PipelineConfig
    from backdrop.engine.pipeline import Pipeline

    spec = spec or BackgroundSpec("transparent")
    return Pipeline(PipelineConfig.preset(settings.quality, background=spec,
                                          subject=settings.subject), matting=True, threads=threads)


class ImageWorker:
    """One Pipeline, reused for every image this process handles (loading the model costs
    ~0.5 s; an image costs tens of milliseconds)."""

    def __init__(self, settings: ImageSettings, *, threads: int = 2, pipeline=None):
        """`pipeline`: a make_pipeline(settings) to use and not close (the server's workers
        share one between settings that differ only in what is done with the cut-out)."""
        self.settings = settings
        self._owns_pipeline = pipeline is None
        self._faces = None      # FaceLandmarker, loaded by the first ID photo
        # A mask needs no compositing: the transparent spec makes the pipeline skip it; a
        # layout or an ID photo composites onto its own canvas, so neither does the pipeline.
        placed = settings.kind in ("mask", "idphoto") or settings.layout.places
        self._spec = spec = BackgroundSpec("transparent") if placed else settings.background
        self.pipeline = self.screenshot = None
        if settings.subject == "window":     # geometry, no model: offline/screenshot.py
            from backdrop.offline.screenshot import ScreenshotRenderer

            # On a layout the canvas composites and shadows the cut-out, as for any subject.
            placed = settings.layout.places
            self.screenshot = ScreenshotRenderer(
                kind="cutout" if placed else settings.kind, background=settings.background,
                keep_shadow=settings.keep_shadow, shadow=settings.shadow and not placed)
        elif pipeline is not None:
            self.pipeline = pipeline
        else:
            self.pipeline = make_pipeline(settings, threads, spec)
        self.canvas = None
        if settings.layout.active:
            from backdrop.offline.canvas import Canvas

            self.canvas = Canvas(settings.layout, settings.background, settings.shadow)

    def run(self, task: ImageTask) -> ImageResult:
        result = ImageResult(task.source)
        try:
            self._run(task, result)
        except BackdropError as e:
            result.error, result.input_error = str(e), isinstance(e, InputError)
        except MemoryError:
            result.error = f"'{task.source}' is too large to process in the memory available"
        except Exception as e:  # one odd file must not end a batch of thousands
            result.error = f"'{task.source}': unexpected {type(e).__name__}: {e}"
        return result

    def _run(self, task: ImageTask, result: ImageResult) -> None:
        from backdrop.io.images import jpeg_quality, read_rgb, write_image
        from backdrop.offline.cutout import compression_warnings

        rendered = self.render(read_rgb(task.source))
        result.warnings = rendered.warnings + compression_warnings(jpeg_quality(task.source))
        dpi = self.settings.id_photo.dpi if self.settings.id_photo is not None else None
        write_image(task.output, rendered.image, self.settings.fmt, dpi)
        result.written.append(task.output)
        if task.check:
            write_image(task.check, rendered.check_sheet(), "png")
            result.written.append(task.check)
        if task.sheet and rendered.sheet is not None:
            write_image(task.sheet, rendered.sheet, self.settings.fmt, dpi)
            result.written.append(task.sheet)

    def render(self, frame) -> "Rendered":
        """The output image for one RGB frame, as the settings ask (no file involved: the
        server encodes it to bytes, the command writes it)."""
        import numpy as np

        from backdrop.offline import cutout

        if self.settings.id_photo is not None:
            return self._id_photo(frame)
        if self.screenshot is not None:
            image, layer, warnings = self.screenshot.render(frame)
            return self._place(image, layer, warnings)
        processed = self._process(frame)
        alpha = processed.alpha.copy()
        h, w = alpha.shape
        warnings = cutout.quality_warnings(
            w, h, alpha, "person" if self.settings.subject == "person" else "subject")
        placed = self.settings.layout.places
        shadow = cutout.shadow_matte(alpha) if self.settings.shadow and not placed else None
        # the subject's own colour on its outline, not the old background's (no glow)
        colour = frame if processed.colour is None else processed.colour
        layer = (cutout.rgba(colour, alpha) if shadow is None
                 else cutout.rgba_with_shadow(colour, alpha, shadow))
        kind = self.settings.kind
        if placed or kind == "cutout":
            image = layer
        elif kind == "mask":
            image = alpha
        elif shadow is not None:
            image = cutout.composite_with_shadow(frame, alpha, processed.image, shadow)
        else:
            image = np.array(processed.image, copy=True)
        return self._place(image, layer, warnings)

    def _place(self, image, layer, warnings: List[str]) -> "Rendered":
        """The layout's canvas and overlay, when one was asked for."""
        if self.settings.layout.places:
            image, notes = self.canvas.render(layer, self.settings.kind)
            warnings = warnings + notes
        if self.canvas is not None:
            image = self.canvas.add_overlay(image)
        return Rendered(image, layer, warnings)

    def _id_photo(self, frame) -> "Rendered":
        """The face is checked before the (slower) cut-out; the layout is idphoto.py's."""
        from backdrop.offline import cutout, idphoto, printsheet

        if self._faces is None:
            from backdrop.engine.face import FaceLandmarker

            self._faces = FaceLandmarker()
        marks = idphoto.find_face(frame, self._faces)
        processed = self._process(frame)
        alpha = processed.alpha.copy()
        colour = frame if processed.colour is None else processed.colour
        options = self.settings.id_photo
        photo = idphoto.make(frame, marks, alpha, colour, options)
        sheet = (None if options.sheet_mm is None
                 else printsheet.make_sheet(photo, options.sheet_mm, options.dpi))
        return Rendered(photo, cutout.rgba(colour, alpha), idphoto.tilt_warnings(marks), sheet)

    def _process(self, frame):
        if self.pipeline.spec != self._spec:     # a shared pipeline, last used by others
            self.pipeline.set_background(self._spec)
        self.pipeline.reset()           # independent photos: no temporal smoothing across them
        return self.pipeline.process(frame)

    def close(self) -> None:
        for part in (self.pipeline if self._owns_pipeline else None, self.screenshot,
                     self._faces):
            if part is not None:
                part.close()
        self._faces = None


_worker: Optional[ImageWorker] = None
_worker_error: Optional[BackdropError] = None


def init_worker(settings: ImageSettings, hide_native: bool = True) -> None:
    """ProcessPoolExecutor initializer: one Pipeline per worker process. `hide_native`:
    what the parent does with native libraries' lines (shown with -v), for the process's
    lifetime."""
    global _worker, _worker_error
    # Ctrl-C reaches the whole process group; the parent decides, workers finish their image.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from backdrop.engine.segment import hide_native_stderr, setup_native_libraries

    if hide_native:
        hide_native_stderr()
    setup_native_libraries()
    quiet_warnings()
    import cv2

    cv2.setNumThreads(1)    # one worker per core already; more threads only contend
    try:
        _worker = ImageWorker(settings, threads=1)   # a worker per core: one thread each
    except BackdropError as e:
        # Raising here would break the pool with a traceback on stderr; instead every task
        # answers with this message and the parent stops the batch with it.
        _worker_error = e


def run_in_worker(task: ImageTask) -> ImageResult:
    if _worker is None:
        error = _worker_error or BackdropError("worker not initialised")
        return ImageResult(task.source, error=str(error), fatal=True,
                           exit_code=error.exit_code)
    return _worker.run(task)


def quiet_warnings() -> None:
    """mediapipe 0.10.21 emits a protobuf deprecation UserWarning on every model load."""
    import warnings

    warnings.filterwarnings("ignore", message=r"MessageFactory class is deprecated",
                            category=UserWarning)
