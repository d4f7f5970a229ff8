"""Backgrounds: blur, colour, image and looping video, each rendered at the frame's width
into a buffer it owns; the composite stretches its rows to the frame's height. None of
them looks at the final matte or at any output."""

from __future__ import annotations

from typing import Optional, Protocol, Tuple

import cv2
import numpy as np

from backdrop.engine import kernels
from backdrop.config import BackgroundSpec
from backdrop.errors import InputError
from backdrop.engine.resize import shrink
from backdrop.io.images import is_image_path, read_rgb


class Background(Protocol):
    def render(self, frame: np.ndarray, guide: np.ndarray, person: np.ndarray) -> np.ndarray:
        """The background for `frame` (H, W, 3): uint8 RGB (hb, W, 3), C-contiguous, with
        1 <= hb <= H rows that the composite stretches linearly to H (GuidedRefiner.apply):
        a smooth picture can be given with fewer rows. Owned by the background, valid until
        the next call. `guide` is the frame shrunk (RGB uint8) and `person` the float32
        person probability at the guide's size; only backgrounds made from the frame itself
        use them."""

    def close(self) -> None: ...


class BlurBackground:
    """The frame blurred, computed on a fraction of the small guide image and enlarged:
    here to the frame's width only; the composite enlarges its rows in its own pass.

    The person is left out of the blur (normalised convolution with weights
    (1 - person)^2), so their colours do not bleed outwards into a halo; where only the
    person is near, their own pixels (weighted down to FLOOR) give the plain blur.
    """

    FLOOR = np.float32(1e-3)

    def __init__(self, *, strength: float):
        self.strength = float(strength)     # Gaussian sigma in pixels of a 720p frame
        self._weights: Optional[np.ndarray] = None
        self._small: Optional[np.ndarray] = None
        self._wide: Optional[np.ndarray] = None

    def render(self, frame: np.ndarray, guide: np.ndarray, person: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        gh, gw = guide.shape[:2]
        sigma = self.strength * gh / 720.0    # in guide pixels
        # Blur at a whole fraction of the guide where sigma is 1.5-3 px: the same picture
        # for a fraction of the work, and the shrink is exact halvings in the usual case.
        step = max(1, int(sigma / 1.5))
        size = (max(4, gw // step), max(4, gh // step))
        sigma *= size[0] / gw
        if self._weights is None or self._weights.shape[:2] != size[::-1]:
            self._weights = np.empty((size[1], size[0], 4), np.float32)
            self._small = np.empty((size[1], size[0], 3), np.uint8)
        if self._wide is None or self._wide.shape[:2] != (size[1], w):
            self._wide = np.empty((size[1], w, 3), np.uint8)
        kernels.weigh_background(shrink(guide, size), shrink(person, size), self.FLOOR,
                                 self._weights)
        kernels.unweigh_background(cv2.GaussianBlur(self._weights, (0, 0), sigma), self._small)
        return cv2.resize(self._small, (w, size[1]), dst=self._wide,
                          interpolation=cv2.INTER_LINEAR)

    def close(self) -> None:
        pass


class ColourBackground:
    def __init__(self, *, colour: Tuple[int, int, int]):
        self.colour = tuple(int(c) for c in colour)
        self._out: Optional[np.ndarray] = None

    def render(self, frame: np.ndarray, guide: np.ndarray, person: np.ndarray) -> np.ndarray:
        if self._out is None or self._out.shape[1] != frame.shape[1]:
            self._out = np.empty((1, frame.shape[1], 3), np.uint8)   # one row, stretched
            self._out[:] = self.colour
        return self._out

    def close(self) -> None:
        self._out = None


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width x height without distortion, then crop the centre."""
    ih, iw = image.shape[:2]
    s = max(width / iw, height / ih)
    nw, nh = max(width, round(iw * s)), max(height, round(ih * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (nw, nh), interpolation=interp)
    x, y = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(scaled[y:y + height, x:x + width])


class ImageBackground:
    def __init__(self, *, path: str):
        self.path = path
        self._image = read_rgb(path)
        self._out: Optional[np.ndarray] = None

    def render(self, frame: np.ndarray, guide: np.ndarray, person: np.ndarray) -> np.ndarray:
        if self._out is None or self._out.shape != frame.shape:
            self._out = cover(self._image, frame.shape[1], frame.shape[0])
        return self._out

    def close(self) -> None:
        self._out = None


class VideoBackground:
    """A video or animated GIF, looping, advanced by its own frame rate against the output's."""

    def __init__(self, *, path: str, fps: float = 30.0):
        from backdrop.io.sources import FileSource   # PyAV, through io/video.py

        self.path = path
        self._source = FileSource(path=path, loop=True, fps=fps)
        self._step = (self._source.fps or fps) / fps
        self._due = 0.0
        self._raw = self._next_raw()
        self._fresh = True
        self._out: Optional[np.ndarray] = None

    def _next_raw(self) -> np.ndarray:
        frame = self._source.read()
        if frame is None:
            raise InputError(f"background video '{self.path}' has no readable frames")
        return frame

    def render(self, frame: np.ndarray, guide: np.ndarray, person: np.ndarray) -> np.ndarray:
        self._due += self._step
        while self._due >= 1.0:
            self._raw = self._next_raw()
            self._due -= 1.0
            self._fresh = True
        if self._fresh or self._out is None or self._out.shape != frame.shape:
            self._out = cover(self._raw, frame.shape[1], frame.shape[0])
            self._fresh = False
        return self._out

    def close(self) -> None:
        self._source.close()


def create_background(spec: BackgroundSpec, *, fps: float = 30.0) -> Optional[Background]:
    """None for kinds that composite nothing (none, transparent)."""
    if spec.kind == "blur":
        return BlurBackground(strength=spec.strength)
    if spec.kind == "colour":
        return ColourBackground(colour=spec.colour)
    if spec.kind == "file":
        if is_image_path(spec.path):
            return ImageBackground(path=spec.path)
        return VideoBackground(path=spec.path, fps=fps)   # a video or GIF: anything FFmpeg reads
    return None
