"""Methods under test: raw models (the baselines peers ship) and backdrop's presets.

Every method has reset(), matte(frame) -> float32 (H, W) in [0, 1] and close(); a method
may add matte_sequence(frames) for a whole video. METHODS maps a name to a factory, so a
new method is one line there. Names not listed that start with ``backdrop-`` are built on
the fly: ``backdrop-<quality>[-<subject>][,field=value...]``, e.g. ``backdrop-best,pose=0``
(one preset field changed) or ``backdrop-best-any`` (a subject setting, once
PipelineConfig has one; until then such methods report as unavailable).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from common import U2NETP_MODEL, Unavailable


class RawMediaPipe:
    """MediaPipe selfie segmentation of the whole frame: no refinement, no state.
    Without ``pre_resize``, MediaPipe resizes to the model input itself (bilinear), as
    mp.solutions.selfie_segmentation does; that reproduces the evaldata README numbers."""

    def __init__(self, model_file: str, size: tuple[int, int], pre_resize: bool = True):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        path = os.path.join(os.path.dirname(mp.__file__), "modules",
                            "selfie_segmentation", model_file)
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=path),
            running_mode=vision.RunningMode.IMAGE,
            output_confidence_masks=True, output_category_mask=False)
        self._mp, self._size, self._pre_resize = mp, size, pre_resize
        self._segmenter = vision.ImageSegmenter.create_from_options(options)

    def reset(self) -> None:
        """Nothing to forget: every frame is independent."""

    def matte(self, frame: np.ndarray) -> np.ndarray:
        frame_in = (cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
                    if self._pre_resize else frame)
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB,
                               data=np.ascontiguousarray(frame_in))
        prob = self._segmenter.segment(image).confidence_masks[0].numpy_view()
        h, w = frame.shape[:2]
        return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)

    def close(self) -> None:
        self._segmenter.close()


class RawU2Netp:
    """U²-Netp (general salient object) on the whole frame, as its README prescribes: 320x320
    input, RGB / max, ImageNet mean and std; output 0 (the fused map) min-max normalised and
    resized back. No refinement, no state. The input is shrunk with PIL's Lanczos filter, as
    rembg does: on objects/ that gives the README's IoU 0.885 (cv2 INTER_AREA: 0.878)."""

    SIZE = 320
    MEAN = np.float32([0.485, 0.456, 0.406])
    STD = np.float32([0.229, 0.224, 0.225])

    def __init__(self, path: Path = U2NETP_MODEL, threads: int = 2):
        if not Path(path).is_file():
            raise Unavailable(f"{path} not found")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:
            raise Unavailable(f"LiteRT is not installed ({e})") from e
        self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self._interpreter.allocate_tensors()
        (inp,), out = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if tuple(inp["shape"]) != (1, self.SIZE, self.SIZE, 3):
            raise Unavailable(f"{path} takes {inp['shape']}, not 1x320x320x3")
        self._input, self._output = inp["index"], out[0]["index"]

    def reset(self) -> None:
        """Nothing to forget: every frame is independent."""

    def matte(self, frame: np.ndarray) -> np.ndarray:
        from PIL import Image

        small = np.asarray(Image.fromarray(frame).resize((self.SIZE, self.SIZE), Image.LANCZOS))
        x = small.astype(np.float32) / max(float(small.max()), 1e-6)
        x = (x - self.MEAN) / self.STD
        self._interpreter.set_tensor(self._input, x[None])
        self._interpreter.invoke()
        fused = self._interpreter.get_tensor(self._output)[0, :, :, 0].astype(np.float32)
        lo, hi = float(fused.min()), float(fused.max())
        norm = (fused - lo) / max(hi - lo, 1e-8)
        h, w = frame.shape[:2]
        return cv2.resize(norm, (w, h), interpolation=cv2.INTER_LINEAR)

    def close(self) -> None:
        self._interpreter = None


class BackdropAdapter:
    """reset()/matte() over a backdrop Pipeline; matte_sequence() (the look-ahead path of
    `backdrop video`) when asked for. ``changed``: the preset was overridden."""

    def __init__(self, pipeline, sequence: bool, changed: bool, lookahead: int = 0):
        self.pipeline, self.changed, self._lookahead = pipeline, changed, lookahead
        if sequence:
            self.matte_sequence = self._matte_sequence

    def _matte_sequence(self, frames) -> list[np.ndarray]:
        if not self._lookahead:
            return self.pipeline.matte_sequence(frames)
        return [r.alpha.astype(np.float32) / 255 for r in self.pipeline.process_sequence(
            frames, composite=False, lookahead=self._lookahead)]

    def reset(self) -> None:
        self.pipeline.reset()

    def matte(self, frame: np.ndarray) -> np.ndarray:
        return self.pipeline.matte(frame)

    def close(self) -> None:
        self.pipeline.close()


def _convert(preset, key: str, value: str):
    if not hasattr(preset, key):
        raise Unavailable(f"the preset has no field {key!r}")
    kind = type(getattr(preset, key))
    if kind is bool:
        return bool(int(value))
    return kind(float(value)) if kind in (int, float) else value


def backdrop_method(spec: str) -> BackdropAdapter:
    """The one place that talks to the backdrop package. ``spec`` is
    ``<quality>[-<subject>][,field=value...]``. ``seq=1``/``seq=0`` chooses the look-ahead
    path of `backdrop video` for sequences (default: with ``best`` only, as before);
    ``look=N`` takes it with N frames of look-ahead instead of the pipeline's default. A
    changed ``model`` acts as a preset change would: with the configured model "auto",
    portrait frames still go to the general model."""
    from backdrop.config import PipelineConfig
    from backdrop.engine.pipeline import PRESETS, Pipeline

    head, *changes = spec.split(",")
    quality, _, subject = head.partition("-")
    if quality not in PRESETS:
        raise Unavailable(f"unknown quality {quality!r}")
    options = {}
    if subject:
        if "subject" not in {f.name for f in dataclasses.fields(PipelineConfig)}:
            raise Unavailable("PipelineConfig has no subject setting yet")
        options["subject"] = subject
    preset, sequence, lookahead = PRESETS[quality], quality == "best", 0
    for change in changes:
        key, _, value = change.partition("=")
        if key == "seq":
            sequence = value == "1"
        elif key == "look":
            sequence, lookahead = True, int(value)
        else:
            preset = dataclasses.replace(preset, **{key: _convert(preset, key, value)})
    changed = preset != PRESETS[quality]
    config = PipelineConfig.preset(quality, **options)
    # Without changes, the pipeline picks its own preset, exactly as the commands do.
    pipeline = Pipeline(config, preset=preset) if changed else Pipeline(config)
    return BackdropAdapter(pipeline, sequence, changed, lookahead)


# name -> factory. Add a method here with one line.
METHODS: dict[str, Callable[[], object]] = {
    "raw-general": lambda: RawMediaPipe("selfie_segmentation.tflite", (256, 256)),
    "raw-landscape": lambda: RawMediaPipe("selfie_segmentation_landscape.tflite", (256, 144)),
    "raw-general-mpresize": lambda: RawMediaPipe("selfie_segmentation.tflite", (256, 256), False),
    "raw-landscape-mpresize": lambda: RawMediaPipe(
        "selfie_segmentation_landscape.tflite", (256, 144), False),
    "raw-u2netp": RawU2Netp,
    "backdrop-fast": lambda: backdrop_method("fast"),
    "backdrop-balanced": lambda: backdrop_method("balanced"),
    "backdrop-best": lambda: backdrop_method("best"),
    "backdrop-best-auto": lambda: backdrop_method("best-auto"),
}


def make_method(name: str):
    """Build a method by name; raise Unavailable with the reason when it cannot run."""
    if name in METHODS:
        factory = METHODS[name]
    elif name.startswith("backdrop-"):
        def factory():
            return backdrop_method(name.removeprefix("backdrop-"))
    else:
        raise Unavailable(f"unknown method {name}; known: {', '.join(METHODS)}")
    try:
        return factory()
    except Unavailable:
        raise
    except ImportError as e:
        raise Unavailable(f"cannot import what it needs ({e})") from e
    except Exception as e:  # a half-written package must not stop the baseline run
        raise Unavailable(f"failed to start: {type(e).__name__}: {e}") from e
