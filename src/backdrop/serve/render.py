"""The work a worker process does for one request, from bytes to bytes: decode, render with
an ImageWorker kept from earlier requests, encode. Runs in the spawned workers (pool.py);
answers are plain tuples so they cross the process boundary cheaply:
("ok", body, media type, warnings) or ("error", status, message)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Dict, List, Tuple

import numpy as np

from backdrop.errors import BackdropError
from backdrop.offline.image import ImageSettings, ImageWorker, make_pipeline
from backdrop.serve.apierror import ApiError
from backdrop.serve.images import Limits, decode_matte, decode_rgb, decode_strokes
from backdrop.serve.options import MEDIA_TYPES

logger = logging.getLogger(__name__)
# A Pipeline holds the models of one quality and subject (~100-300 MB); a few stay loaded,
# the oldest go. The ImageWorkers on them (background, format, layout: no models) are cheap:
# a client cycling through colours or canvas sizes does not make a worker load models again.
KEPT_PIPELINES = 3
KEPT_WORKERS = 64
Answer = Tuple[Any, ...]


class Renderers:
    """ImageWorkers by settings, sharing a Pipeline per quality and subject; the least
    recently used dropped first."""

    def __init__(self, keep: int = KEPT_PIPELINES, workers: int = KEPT_WORKERS):
        self.keep, self.keep_workers = keep, workers
        self._pipelines: "OrderedDict[tuple, Any]" = OrderedDict()
        self._workers: "OrderedDict[ImageSettings, ImageWorker]" = OrderedDict()

    def get(self, settings: ImageSettings) -> ImageWorker:
        worker = self._workers.pop(settings, None)
        if worker is None:
            worker = ImageWorker(settings, threads=1, pipeline=self._pipeline(settings))
        elif worker.pipeline is not None:
            self._pipelines.move_to_end(_models(settings))
        self._workers[settings] = worker
        while len(self._workers) > self.keep_workers:
            self._workers.popitem(last=False)[1].close()
        return worker

    def _pipeline(self, settings: ImageSettings):
        """The shared Pipeline for these settings (None for a screenshot: no model)."""
        if settings.subject == "window":
            return None
        key = _models(settings)
        pipeline = self._pipelines.pop(key, None) or make_pipeline(settings, threads=1)
        self._pipelines[key] = pipeline
        while len(self._pipelines) > self.keep:
            old_key, old = self._pipelines.popitem(last=False)
            for s in [s for s in self._workers if _models(s) == old_key]:
                self._workers.pop(s).close()
            old.close()
        return pipeline

    def close(self) -> None:
        while self._workers:
            self._workers.popitem()[1].close()
        while self._pipelines:
            self._pipelines.popitem()[1].close()


def _models(settings: ImageSettings) -> tuple:
    return settings.quality, settings.subject


def _encode(image: np.ndarray, fmt: str) -> bytes:
    from backdrop.io.images import encode

    if image.dtype != np.uint8:     # a matte: float 0..1
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return encode(image, fmt)


def remove(job: Dict[str, Any], renderers: Renderers) -> Answer:
    settings: ImageSettings = job["settings"]
    frame = decode_rgb(job["image"], "image", job["limits"])
    rendered = renderers.get(settings).render(frame)
    return "ok", _encode(rendered.image, settings.fmt), MEDIA_TYPES[settings.fmt], rendered.warnings


def _same_size(frame: np.ndarray, other: np.ndarray, what: str) -> None:
    if other.shape[:2] != frame.shape[:2]:
        raise ApiError(422, f"the {what} is {other.shape[1]}x{other.shape[0]} but the image is"
                       f" {frame.shape[1]}x{frame.shape[0]}; send them at the same size")


def refine(job: Dict[str, Any], renderers: Renderers) -> Answer:
    """The matte re-solved around keep/remove strokes (engine/hints.py), and the subject's
    colour re-estimated where the matte moved (no old background left on a new edge); far
    from the strokes the cut-out stays as it came."""
    from backdrop.engine.hints import refine_with_strokes, refresh_foreground
    from backdrop.offline import cutout

    limits: Limits = job["limits"]
    frame = decode_rgb(job["image"], "image", limits)
    previous, colour = decode_matte(job["matte"], "matte", limits)
    keep, drop = decode_strokes(job["hints"], "hints image", limits)
    _same_size(frame, previous, "matte")
    _same_size(frame, keep, "hints image")
    alpha = np.clip(refine_with_strokes(frame, previous, keep, drop), 0.0, 1.0)
    fmt = job["fmt"]
    if job["out"] == "mask":
        return "ok", _encode(alpha, fmt), MEDIA_TYPES[fmt], []
    if colour is not None:
        # a cut-out's RGB is zero where it was transparent: the frame's own there
        colour = np.where(previous[..., None] > 0, colour, frame)
    colour = refresh_foreground(frame, alpha, previous, colour)
    a8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return "ok", _encode(cutout.rgba(colour, a8), fmt), MEDIA_TYPES[fmt], []


def handle(job: Dict[str, Any], renderers: Renderers) -> Answer:
    """Any job -> an answer; never raises (a worker must outlive a bad request)."""
    try:
        return (remove if job["kind"] == "remove" else refine)(job, renderers)
    except ApiError as e:
        return "error", e.status, e.message
    except BackdropError as e:
        return "error", 422, str(e)
    except MemoryError:
        return "error", 413, "the image is too large to process in the memory available"
    except Exception as e:  # one odd image must not take the worker down
        logger.exception("unexpected error in a worker")
        return "error", 500, f"unexpected {type(e).__name__}: {e}"


def warm(renderers: Renderers, settings: List[ImageSettings]) -> None:
    """Load the default models and compile the kernels before the first request arrives
    (the first render in a process otherwise takes seconds longer)."""
    from backdrop.engine import hints

    for s in settings:
        renderers.get(s).pipeline.warm_up()
    hints.warm_up()
