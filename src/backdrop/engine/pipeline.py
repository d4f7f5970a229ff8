"""Pipeline.process(frame): segment -> smooth -> refine -> composite, one synchronous call
shared by the live, image and video modes. No threads, no sleeping, no devices here."""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, Iterable, Iterator, List, Optional

import cv2
import numpy as np

from backdrop.engine import kernels
from backdrop.engine.background import Background, create_background
from backdrop.config import PipelineConfig, parse_background
from backdrop.engine.refine import GuidedRefiner, MaskSmoother
from backdrop.io.frames import check_frame
from backdrop.engine.models import REFIND, Models
from backdrop.engine.resize import shrink
from backdrop.engine.segment import Segmenter
from backdrop.engine.tracking import ChangeGate


@dataclass(frozen=True)
class Preset:
    """Internal tuning behind --quality."""

    model: str
    guide_width: int        # the low-res guide (and guided-filter) resolution, long side
    radius: int             # guided filter radius, guide pixels
    eps: float
    smoothing: float        # temporal ratio (0 = off)
    crop: bool = True       # run the model on a crop around the person
    two_pass: bool = True   # with no person box yet, find one first in the same frame
    flip: bool = False      # average with a pass on the mirrored crop
    pose: float = 0.0       # weight of the pose model's mask around the person it finds
    hold: int = 6           # keep a pixel's matte when it moved by <= this many levels
    second_model: str = ""  # average with this model too (time to spare: stills, files)
    still_levels: int = 0   # live: reuse the last mask while no tile of the scene changed
                            # by more than this (mean levels); 0 = run the model every frame
    tiles: int = 0          # also run the model on this many tiles along the person
    tile_overlap: float = 0.3   # of a tile, between neighbours
    tile_margin: float = 0.05   # around the person, of their long side
    tile_ramp: float = 0.25     # a tile's weight fades over this much of it at inner edges
    tile_band: float = 0.0      # tiles only act this near the outline, of the person's long side


PRESETS: Dict[str, Preset] = {
    "fast": Preset(model="landscape", guide_width=240, radius=2, eps=2e-3, smoothing=0.6,
                   still_levels=2),
    "balanced": Preset(model="landscape", guide_width=320, radius=2, eps=1e-3, smoothing=0.7,
                       still_levels=2),
    # best is for stills and files: it spends ~3x balanced's model time per frame on a
    # mirrored pass, the second model and tiles along a standing person (see tiling.py).
    # No pose model: found afresh each frame, it misses the person now and then, and its
    # blend switching on and off made `backdrop video` flicker 3x balanced on still scenes
    # (and cost 0.012 IoU / 0.037 BF on held-out portraits). The landscape model averaged
    # in keeps bystanders in wide frames that the square model alone halves.
    "best": Preset(model="general", guide_width=960, radius=3, eps=1e-3, smoothing=0.7,
                   flip=True, tiles=2, tile_band=0.03, second_model="landscape"),
}


SETTLE = 3   # model runs on a still scene before its mask is reused


@dataclass
class Frame:
    """One processed frame. `image` and `alpha` are the pipeline's own buffers: valid until
    the next process() call; copy them to keep them."""

    image: np.ndarray                 # (H, W, 3) uint8 RGB, composited
    alpha: np.ndarray                 # (H, W) uint8 matte, 255 = person
    timings: Dict[str, float] = field(default_factory=dict)   # ms per stage
    # The subject's own colour where alpha is fractional (the frame elsewhere), for cut-outs;
    # None: the frame's pixels (pipelines made without foreground=True).
    colour: Optional[np.ndarray] = None


class Pipeline:
    def __init__(self, config: Optional[PipelineConfig] = None, *,
                 segmenter: Optional[Segmenter] = None, fps: float = 30.0,
                 preset: Optional[Preset] = None, matting: bool = False,
                 foreground: bool = False, threads: int = 2):
        """matting: re-solve alpha on the outline with closed-form matting (stills: 0.1-0.5 s
        a photo); foreground: give the outline the subject's own colour (files: tens of ms a
        frame). Neither is for live (matting.py). threads: the general model's (one per
        process where a batch runs a process per core)."""
        self.config = config or PipelineConfig()
        self.matting, self.foreground = matting, foreground or matting
        self.preset = preset or PRESETS[self.config.quality]   # preset: for benchmarks
        model = self.preset.model if self.config.model == "auto" else self.config.model
        self.models = Models(self.preset, model=model, subject=self.config.subject,
                             segmenter=segmenter, threads=threads,
                             auto_model=(segmenter is None and self.config.model == "auto"
                                         and model != "general"))
        self.smoother = MaskSmoother(ratio=self.preset.smoothing)
        self._size = (0, 0)
        self.gate = ChangeGate(threshold=self.preset.still_levels)
        self._still: Optional[np.ndarray] = None   # the mask reused while nothing moves
        self._calm = 0                   # frames in a row the scene has not moved
        self.refiner = GuidedRefiner(radius=self.preset.radius, eps=self.preset.eps,
                                     hold=self.preset.hold)
        self.fps = fps
        self.mirror = self.config.mirror
        self.spec = self.config.background
        self.background: Optional[Background] = create_background(self.spec, fps=fps)
        self._buffers: Dict[str, np.ndarray] = {}

    # -- live controls -------------------------------------------------------------------
    def set_background(self, spec) -> None:
        """Swap the background (a BackgroundSpec or SPEC string); takes effect next frame."""
        spec = parse_background(spec) if isinstance(spec, str) else spec
        new = create_background(spec, fps=self.fps)
        old, self.background, self.spec = self.background, new, spec
        if old is not None:
            old.close()

    @property
    def segmenter(self) -> Segmenter:
        return self.models.segmenter

    @property
    def tracker(self):
        return self.models.tracker

    @property
    def model_runs(self) -> int:
        """Frames the person model ran on (the rest reused a mask)."""
        return self.models.runs

    def reset(self) -> None:
        """Forget temporal state (call between unrelated images or videos)."""
        self.smoother.reset()
        self.models.reset()
        self.refiner.reset()
        self.gate.reset()
        self._still = None
        self._calm = 0

    # -- processing ----------------------------------------------------------------------
    def _buffer(self, name: str, shape, dtype=np.uint8) -> np.ndarray:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != tuple(shape):
            buf = self._buffers[name] = np.empty(shape, dtype)
        return buf

    def _guide_size(self, w: int, h: int):
        k = max(1, round(max(w, h) / self.preset.guide_width))
        return max(1, w // k), max(1, h // k)

    def _person(self, frame: np.ndarray, t: Dict[str, float], smooth: bool = True):
        """Model + smoothing at low res: (guide_rgb, person probability at guide size)."""
        h, w = frame.shape[:2]
        t0 = time.perf_counter()
        gsize = self._guide_size(w, h)
        guide = shrink(frame, gsize)
        if (w, h) != self._size:         # a box from another frame size means nothing here
            self.reset()
            self._size = (w, h)
        gated = smooth and self.preset.still_levels > 0
        if gated:
            # After the scene stops, the model runs SETTLE more frames so the smoothing
            # (which leans on history where unsure) settles before the mask is reused.
            self._calm = self._calm + 1 if not self.gate.moved(guide) else 0
            if self._calm > SETTLE:
                t["segment"] = (time.perf_counter() - t0) * 1e3
                t["smooth"] = 0.0
                return guide, self._still
        person = self.models.subject_map(frame, guide, gsize)
        t1 = time.perf_counter()
        smoothed = self.smoother.update(person) if smooth else person
        if self.preset.crop:
            self.tracker.update(smoothed, w, h)
        if gated:
            self.gate.model_ran(guide)
            self._still = smoothed       # the smoother's own state: unchanged until it runs
        t2 = time.perf_counter()
        t["segment"] = (t1 - t0) * 1e3
        t["smooth"] = (t2 - t1) * 1e3
        return guide, smoothed

    def process(self, frame: np.ndarray) -> Frame:
        return self._run(frame, composite_wanted=True)

    def process_sequence(self, frames: Iterable[np.ndarray], *, composite: bool = True,
                         lookahead: int = 1, slots: Optional[Iterable[int]] = None
                         ) -> Iterator[Frame]:
        """The frames of a file, in order, with smoothing that also looks `lookahead`
        frames ahead: where the model is unsure about a pixel in this frame, it leans on
        the mean of the frames around it (before and after, so without lag); where it is
        sure, it is taken as is, so a moving arm is not smeared. Yields one Frame per
        input, in order; frames are copied while they wait for the frames after them.
        `slots`: each frame's place in its file, in frame durations from the file's time 0
        (a chunk's frames are numbered as the whole file's; see REFIND); default 0, 1, ...
        A frame that starts a new stretch of REFIND slots is taken as if it were the first."""
        self.reset()
        pending: Deque = deque()
        maps: Deque = deque(maxlen=2 * lookahead + 1)

        def emit(index: int) -> Frame:
            frame, guide, t = pending.popleft()
            around = [m for i, m in enumerate(maps)
                      if i != index and abs(i - index) <= lookahead]
            person = maps[index].copy()
            if around:
                neighbours = np.mean(around, axis=0, dtype=np.float32)
                kernels.smooth_masks(neighbours, maps[index], self.smoother.ratio, person)
            return self._render(frame, guide, person, t, composite_wanted=composite)

        stretch = None
        for frame, slot in zip(frames, itertools.count() if slots is None else slots):
            check_frame(frame, "frame", contiguous=True)
            if slot // REFIND != stretch:
                stretch = slot // REFIND
                self.models.reset()
            t: Dict[str, float] = {}
            guide, person = self._person(frame, t, smooth=False)
            pending.append((frame.copy(), guide, t))
            maps.append(np.array(person))
            if len(pending) > lookahead:
                yield emit(len(maps) - len(pending))
        while pending:
            yield emit(len(maps) - len(pending))

    def matte_sequence(self, frames: Iterable[np.ndarray]) -> List[np.ndarray]:
        """Mattes (float32 0..1) of a whole sequence with look-ahead smoothing."""
        return [r.alpha.astype(np.float32) * np.float32(1 / 255)
                for r in self.process_sequence(frames, composite=False)]

    def _run(self, frame: np.ndarray, *, composite_wanted: bool) -> Frame:
        check_frame(frame, "frame", contiguous=True)
        if not frame.flags.writeable:
            # A read-only array (np.asarray of a PIL image, a memory-mapped file) is another
            # type to numba, and the refine kernel's signature writes into its rows' type.
            frame = frame.copy()
        t: Dict[str, float] = {}
        if composite_wanted and self.spec.kind == "none":
            out = self._buffer("out", frame.shape)
            alpha = self._buffer("alpha", frame.shape[:2])
            np.copyto(out, frame)
            alpha.fill(255)
            return self._finish(out, alpha, t)
        guide, person = self._person(frame, t)
        return self._render(frame, guide, person, t, composite_wanted=composite_wanted)

    def _render(self, frame: np.ndarray, guide: np.ndarray, person: np.ndarray,
                t: Dict[str, float], *, composite_wanted: bool) -> Frame:
        """Refine the person map against the frame and composite."""
        out = self._buffer("out", frame.shape)
        alpha = self._buffer("alpha", frame.shape[:2])
        t0 = time.perf_counter()
        grey = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1 / 255)
        coef_a, coef_b = self.refiner.coefficients(grey, person)
        t1 = time.perf_counter()
        background = None
        if composite_wanted and self.background is not None:
            background = self.background.render(frame, guide, person)
        elif composite_wanted:
            np.copyto(out, frame)
        t2 = time.perf_counter()
        # With foreground colour, _edges composites from that colour: the kernel's own
        # composite would be written over, so it only makes the matte then.
        into = None if background is None or self.foreground else out
        self.refiner.apply(frame, coef_a, coef_b, alpha, into, None if into is None else background)
        t3 = time.perf_counter()
        t["refine"] = (t1 - t0) * 1e3
        t["background"] = (t2 - t1) * 1e3
        t["composite"] = (t3 - t2) * 1e3
        colour = None
        if self.foreground:
            colour = self._edges(frame, alpha, out, background)
            t["matting"] = (time.perf_counter() - t3) * 1e3
        return self._finish(out, alpha, t, colour)

    def _edges(self, frame: np.ndarray, alpha: np.ndarray, out: np.ndarray,
               background: Optional[np.ndarray]) -> np.ndarray:
        """Matting-grade edges (matting.py): alpha re-solved on the outline (if asked), the
        subject's colour there, and the composite made again from both."""
        from backdrop.engine.matting import estimate_foreground, refine_alpha

        a = alpha.astype(np.float32) * np.float32(1 / 255)
        # People only: on the shared objects (cluttered scenes whose colours repeat in the
        # background) re-solving the outline cost 0.01 IoU; on people it gained a little
        # IoU and a third of the edge-colour error.
        if self.matting and self.models.choice != "general":
            a = refine_alpha(frame, a)
            np.copyto(alpha, np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8))
        colour = estimate_foreground(frame, a)
        if background is not None:
            h, w = frame.shape[:2]
            back = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
            a3 = a[..., None]
            np.copyto(out, np.clip(colour * a3 + back * (1 - a3) + 0.5, 0, 255).astype(np.uint8))
        return colour

    def _finish(self, out: np.ndarray, alpha: np.ndarray, t: Dict[str, float],
                colour: Optional[np.ndarray] = None) -> Frame:
        if self.mirror:  # the matte too: a cut-out or a mask must match the picture
            mirrored = self._buffer("mirrored", out.shape)
            cv2.flip(out, 1, dst=mirrored)
            flipped = self._buffer("mirrored_alpha", alpha.shape)
            cv2.flip(alpha, 1, dst=flipped)
            out, alpha = mirrored, flipped
            colour = None if colour is None else np.ascontiguousarray(colour[:, ::-1])
        return Frame(image=out, alpha=alpha, timings=t, colour=colour)

    def matte(self, frame: np.ndarray) -> np.ndarray:
        """The person matte as float32 (H, W) in [0, 1] (a new array); no compositing."""
        return self._run(frame, composite_wanted=False).alpha.astype(np.float32) * np.float32(1 / 255)

    def warm_up(self) -> float:
        """Compile kernels, load every model this pipeline may call and run each once
        (see Models.warm_up); returns seconds spent."""
        t = time.perf_counter()
        kernels.warm_up()
        self.models.warm_up()
        return time.perf_counter() - t

    def close(self) -> None:
        if self.background is not None:
            self.background.close()
            self.background = None
        if self.models is not None:
            self.models.close()
            self.models = None

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
