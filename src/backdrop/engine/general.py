"""The general-subject model: U²-Netp (salient objects of any kind), shipped in the package.

The selfie models find people only; U²-Netp finds whatever the photo is of (a product, an
animal, a person). It costs ~100x the selfie model (0.12-0.3 s per call on two cores here),
so it serves stills and files, never the live path. Provenance and licence:
`backdrop/models/README.md`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from backdrop.errors import ModelError
from backdrop.io.frames import Closing

MODEL_FILE = Path(__file__).resolve().parents[1] / "models" / "u2netp_float16.tflite"
INPUT_SIZE = (320, 320)
# ImageNet statistics, as U²-Net was trained (after dividing by the image's own maximum).
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


class GeneralSegmenter(Closing):
    """U²-Netp on LiteRT's interpreter; the `Segmenter` protocol (see segment.py).

    `segment()` gives the fused saliency map (output 0; the side outputs are coarser:
    one scored IoU 0.69 against 0.885), min-max normalised as the authors do: the map's
    own range becomes [0, 1], so an image with no salient subject still gets a "subject".
    `peak` keeps the raw maximum of the last call for callers that need to tell the two
    apart."""

    def __init__(self, *, path: Optional[Path] = None, threads: int = 2):
        self.path = Path(path) if path is not None else MODEL_FILE
        self.input_size: Tuple[int, int] = INPUT_SIZE
        self.peak = 0.0
        if not self.path.is_file():
            raise ModelError(f"general model not found at {self.path}; reinstall backdrop"
                             " (the file ships inside the package)")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:
            raise ModelError("the general model needs the ai-edge-litert package, which has no"
                             " wheel for this platform; use --subject person") from e
        from backdrop.engine.segment import quiet_stderr

        try:
            with quiet_stderr():
                self._interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
                self._interpreter.allocate_tensors()
        except Exception as e:   # ValueError/RuntimeError for a damaged or foreign file
            raise ModelError(f"cannot load the general model {self.path}: {e}; reinstall"
                             " backdrop") from e
        self._check_signature()
        self._x = np.empty((1, INPUT_SIZE[1], INPUT_SIZE[0], 3), np.float32)

    def _check_signature(self) -> None:
        w, h = self.input_size
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or tuple(inputs[0]["shape"]) != (1, h, w, 3) or not outputs \
                or tuple(outputs[0]["shape"]) != (1, h, w, 1):
            got = [tuple(d["shape"]) for d in inputs] + [tuple(d["shape"]) for d in outputs]
            raise ModelError(f"{self.path} is not the U²-Netp model backdrop ships (tensors"
                             f" {got}); reinstall backdrop")
        self._input = inputs[0]["index"]
        self._output = outputs[0]["index"]

    def segment(self, small_rgb: np.ndarray) -> np.ndarray:
        """Subject probability, float32 (320, 320) in [0, 1], a new array."""
        w, h = self.input_size
        if small_rgb.shape != (h, w, 3) or small_rgb.dtype != np.uint8:
            raise ValueError(f"expected ({h}, {w}, 3) uint8, got {small_rgb.shape}"
                             f" {small_rgb.dtype}")
        if self._interpreter is None:
            raise ModelError("the general model was closed; create it again")
        x = self._x[0]
        np.multiply(small_rgb, np.float32(1.0 / max(1, int(small_rgb.max()))), out=x)
        x -= _MEAN
        x /= _STD
        self._interpreter.set_tensor(self._input, self._x)
        self._interpreter.invoke()
        out = np.array(self._interpreter.get_tensor(self._output)[0, :, :, 0], np.float32)
        lo, hi = float(out.min()), float(out.max())
        self.peak = hi
        if hi - lo < 1e-6:
            out.fill(0.0)
            return out
        out -= lo
        out *= np.float32(1.0 / (hi - lo))
        return out

    def close(self) -> None:
        self._interpreter = None

