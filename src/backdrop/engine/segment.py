"""Person segmentation: the Segmenter protocol, MediaPipe backends and the model registry.

Models come from the installed mediapipe==0.10.21 wheel; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Protocol, Tuple, Type

import numpy as np

from backdrop.errors import ModelError
from backdrop.io.frames import Closing

MEDIAPIPE = "0.10.21"   # the last release whose wheel ships the segmentation models


@dataclass(frozen=True)
class ModelInfo:
    name: str
    relpath: str                 # inside the mediapipe package
    input_size: Tuple[int, int]  # (width, height) the model expects


MODELS: Dict[str, ModelInfo] = {
    "landscape": ModelInfo(
        "landscape", "modules/selfie_segmentation/selfie_segmentation_landscape.tflite", (256, 144)),
    "general": ModelInfo(
        "general", "modules/selfie_segmentation/selfie_segmentation.tflite", (256, 256)),
}


class Segmenter(Protocol):
    """Runs a model on an RGB image already shrunk to `input_size`."""

    input_size: Tuple[int, int]

    def segment(self, small_rgb: np.ndarray) -> np.ndarray:
        """Person probability, float32 (h, w) in [0, 1], at input size. The caller may not
        keep the returned array across calls (it can be the backend's own buffer)."""

    def close(self) -> None: ...


def model_path(info: ModelInfo) -> str:
    try:
        import mediapipe
    except ImportError as e:  # pragma: no cover - install problem
        raise ModelError("mediapipe is not installed; reinstall backdrop"
                         " (pip install 'mediapipe==0.10.21')") from e
    path = os.path.join(os.path.dirname(mediapipe.__file__), info.relpath)
    if not os.path.isfile(path):
        raise ModelError(
            f"model {info.name} not found at {path}: mediapipe {mediapipe.__version__} ships no"
            " segmentation models; install mediapipe==0.10.21")
    return path


class MediaPipeSegmenter(Closing):
    """MediaPipe Tasks ImageSegmenter on one of the selfie models."""

    def __init__(self, *, model: str = "landscape"):
        if model not in MODELS:
            raise ModelError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        self.info = MODELS[model]
        self.input_size = self.info.input_size
        path = model_path(self.info)
        try:
            with quiet_stderr():
                self._create(path)
        except Exception as e:  # mediapipe raises RuntimeError/ValueError for broken files
            raise ModelError(f"cannot load model {path}: {e}") from e

    def _create(self, path: str) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=path),
            running_mode=vision.RunningMode.IMAGE,
            output_confidence_masks=True,
            output_category_mask=False)
        with warnings.catch_warnings():  # protobuf deprecation noise inside mediapipe
            warnings.simplefilter("ignore", UserWarning)
            self._segmenter = vision.ImageSegmenter.create_from_options(options)
        w, h = self.input_size
        self.segment(np.zeros((h, w, 3), np.uint8))  # the first run prints; do it here

    def segment(self, small_rgb: np.ndarray) -> np.ndarray:
        w, h = self.input_size
        if small_rgb.shape != (h, w, 3) or small_rgb.dtype != np.uint8:
            raise ValueError(f"expected ({h}, {w}, 3) uint8, got {small_rgb.shape} {small_rgb.dtype}")
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB,
                               data=np.ascontiguousarray(small_rgb))
        result = self._segmenter.segment(image)
        # numpy_view() is read-only memory owned by mediapipe: callers copy what they keep.
        return result.confidence_masks[0].numpy_view()

    def close(self) -> None:
        seg, self._segmenter = getattr(self, "_segmenter", None), None
        if seg is not None:
            seg.close()


class LiteRTSegmenter(Closing):
    """The same model files run by LiteRT's interpreter directly (XNNPACK, one thread).

    MediaPipe's graph around the model only scales the input to [0, 1] when the image is
    already the model's size, so the output is the same to 1e-7 (landscape) and 3e-5
    (general), for less CPU: 1.5 against 1.8-1.9 ms per landscape call here. XNNPACK runs
    the models' MediaPipe op (Convolution2DTransposeBias) itself."""

    def __init__(self, *, model: str = "landscape"):
        if model not in MODELS:
            raise ModelError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        self.info = MODELS[model]
        self.input_size = self.info.input_size
        w, h = self.input_size
        path = model_path(self.info)
        from ai_edge_litert.interpreter import Interpreter

        try:
            with quiet_stderr():
                self._interpreter = Interpreter(model_path=path, num_threads=1)
                self._interpreter.allocate_tensors()
        except Exception as e:  # ValueError/RuntimeError for a broken or foreign file
            raise ModelError(f"cannot load model {path}: {e}") from e
        (inp,), (out,) = (self._interpreter.get_input_details(),
                          self._interpreter.get_output_details())
        if tuple(inp["shape"]) != (1, h, w, 3) or tuple(out["shape"]) != (1, h, w, 1):
            raise ModelError(f"model {path} takes {inp['shape']} and gives {out['shape']},"
                             f" not (1, {h}, {w}, 3/1); reinstall 'mediapipe=={MEDIAPIPE}'")
        self._input, self._output = inp["index"], out["index"]
        self._x = np.empty((1, h, w, 3), np.float32)

    def segment(self, small_rgb: np.ndarray) -> np.ndarray:
        w, h = self.input_size
        if small_rgb.shape != (h, w, 3) or small_rgb.dtype != np.uint8:
            raise ValueError(f"expected ({h}, {w}, 3) uint8, got {small_rgb.shape} {small_rgb.dtype}")
        np.multiply(small_rgb, np.float32(1 / 255), out=self._x[0])
        self._interpreter.set_tensor(self._input, self._x)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output)[0, :, :, 0]

    def close(self) -> None:
        self._interpreter = None


def _litert_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


SEGMENTERS: Dict[str, Type] = {"litert": LiteRTSegmenter, "mediapipe": MediaPipeSegmenter}


def create_segmenter(*, backend: str = "auto", model: str = "landscape") -> Segmenter:
    """backend "auto": LiteRT where it is installed (less CPU, same masks), else MediaPipe."""
    if backend == "auto":
        backend = "litert" if _litert_available() else "mediapipe"
    if backend not in SEGMENTERS:
        raise ModelError(f"unknown segmenter {backend!r}; choose one of {', '.join(SEGMENTERS)}")
    return SEGMENTERS[backend](model=model)


@contextlib.contextmanager
def quiet_stderr():
    """MediaPipe and TFLite write INFO/WARNING lines straight to fd 2 while loading, which
    no environment variable of 0.10.21 silences. Hide fd 2 for that moment only."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_real_stderr: Optional[int] = None   # a copy of the real fd 2 while native output is hidden


def _stderr_is_fd2() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a StringIO, pytest's capture
        return False


def hide_native_stderr() -> Callable[[], None]:
    """Send what native code writes to fd 2 to /dev/null, for the whole process, and give
    Python's sys.stderr a copy of the real stderr. Returns the function that undoes it.

    TFLite, MediaPipe (absl) and OpenCV write to fd 2 themselves: on load, and on the pose
    graph's first frames from its own threads, where quiet_stderr() cannot reach; nothing
    in mediapipe 0.10.21 turns that off. Python's own output (logging, warnings, tracebacks,
    progress bars) goes through sys.stderr and still shows. Does nothing when sys.stderr is
    not fd 2 already (pytest's capture, an application that redirected it)."""
    global _real_stderr
    if _real_stderr is not None or not _stderr_is_fd2():
        return lambda: None
    old = sys.stderr
    old.flush()
    real = os.dup(2)
    sys.stderr = open(real, "w", buffering=1, encoding=old.encoding, errors=old.errors)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    _real_stderr = real

    def restore() -> None:
        global _real_stderr
        sys.stderr.flush()
        os.dup2(real, 2)
        _real_stderr = None
        mine, sys.stderr = sys.stderr, old
        mine.close()  # closes `real`

    return restore


def native_stderr_hidden() -> bool:
    return _real_stderr is not None


@contextlib.contextmanager
def real_stderr_for_children():
    """Processes started inside get the real stderr as their fd 2 (and not /dev/null), so
    their Python errors show; they hide native output themselves (hide_native_stderr)."""
    if _real_stderr is None:
        yield
        return
    os.dup2(_real_stderr, 2)
    try:
        yield
    finally:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)


def setup_native_libraries() -> None:
    """Native libraries print INFO/WARNING lines to stderr (TFLite on load, OpenCV once per
    unreadable file); keep a user's terminal to our own one-line messages.

    And one OpenCV thread: cv2 splits large resizes over both cores, which on two cores
    costs more CPU in all (bench, 1080p blur: 8.1 -> 7.7 ms of CPU per frame) for a little
    less wall time. The live path's budget is CPU, and offline jobs run one pipeline per
    core already."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    import cv2

    cv2.setLogLevel(2)  # 2 = errors only (cv2.utils.logging is not exposed in 4.11)
    cv2.setNumThreads(1)


class PoseMasker:
    """The segmentation output of MediaPipe's pose model (pose_landmark_full.tflite, in
    the wheel), on a whole frame. It finds one person and was trained on whole bodies, so
    on a standing person it sees dresses, legs and feet the selfie models half miss; its
    errors differ from theirs, which is what makes averaging the two pay.

    Runs in static-image mode: every frame is found afresh and nothing is kept, so frames
    of any size mix freely (its tracking mode smooths over time, fails on a change of
    size, and its reset() costs a model reload, 40 ms here). Only model_complexity=1
    ships in the wheel: 0 and 2 would be downloaded on first use."""

    def __init__(self):
        import mediapipe as mp

        with quiet_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                self._pose = mp.solutions.pose.Pose(
                    static_image_mode=True, model_complexity=1, enable_segmentation=True)
                # the graph loads its models on the first frame (~90 ms) and prints: do it here
                self._pose.process(np.zeros((64, 64, 3), np.uint8))
            except Exception as e:
                raise ModelError(f"cannot load the pose model: {e}") from e

    def mask(self, frame: np.ndarray) -> "np.ndarray | None":
        """Person probability, float32 at the frame's size (a new array), or None when the
        model found nobody."""
        result = self._pose.process(frame)
        if result.segmentation_mask is None:
            return None
        mask = np.array(result.segmentation_mask, dtype=np.float32)
        # subnormal values far from the person slow every later multiply (see _run_model)
        import cv2

        cv2.threshold(mask, 1e-6, 0, cv2.THRESH_TOZERO, dst=mask)
        return mask

    def close(self) -> None:
        pose, self._pose = getattr(self, "_pose", None), None
        if pose is not None:
            pose.close()


class FaceFinder:
    """MediaPipe's full-range face detector (face_detection_full_range_sparse.tflite, in the
    wheel): does the picture show a person? The person models also answer for cups and
    cats; a face is what tells a person from a thing. Full range because a standing person
    is small in the frame: it found a face in 78 of the 80 shared photos of people, the
    short-range model in 22."""

    def __init__(self, *, confidence: float = 0.5):
        import mediapipe as mp

        with quiet_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                self._detector = mp.solutions.face_detection.FaceDetection(
                    model_selection=1, min_detection_confidence=confidence)
                self._detector.process(np.zeros((64, 64, 3), np.uint8))   # loads and prints
            except Exception as e:
                raise ModelError(f"cannot load the face detection model: {e}") from e

    def detections(self, frame: np.ndarray) -> list:
        """MediaPipe's detections (relative box, score) in an RGB frame."""
        return list(self._detector.process(np.ascontiguousarray(frame)).detections or [])

    def count(self, frame: np.ndarray) -> int:
        """How many faces the detector finds in an RGB frame."""
        return len(self.detections(frame))

    def close(self) -> None:
        detector, self._detector = getattr(self, "_detector", None), None
        if detector is not None:
            detector.close()
