"""Pipeline.process(frame): segment -> smooth -> refine -> composite, one synchronous call
shared by the live, image and video modes. No threads, no sleeping, no devices here."""

from __future__ import annotations

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
from backdrop.engine.resize import shrink
from backdrop.engine.segment import PoseMasker, Segmenter, create_segmenter
from backdrop.engine.tracking import ChangeGate, CropTracker, person_extent
from backdrop.engine import tiling


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
    # best is for stills and files: it spends ~4x balanced's model time per frame on
    # tiles along a standing person and on the pose model (see tiling.py, PoseMasker)
    "best": Preset(model="general", guide_width=960, radius=3, eps=1e-3, smoothing=0.7,
                   flip=True, tiles=2, tile_band=0.03, pose=0.5),
}


SETTLE = 3   # model runs on a still scene before its mask is reused


@dataclass
class Frame:
    """One processed frame. `image` and `alpha` are the pipeline's own buffers: valid until
    the next process() call; copy them to keep them."""

    image: np.ndarray                 # (H, W, 3) uint8 RGB, composited
    alpha: np.ndarray                 # (H, W) uint8 matte, 255 = person
    timings: Dict[str, float] = field(default_factory=dict)   # ms per stage


def _guide_box(box, frame_size, gsize):
    """A full-resolution box in guide pixels (at least one pixel each way)."""
    (x0, y0, x1, y1), (w, h), (gw, gh) = box, frame_size, gsize
    gx0, gy0 = round(x0 * gw / w), round(y0 * gh / h)
    return gx0, gy0, max(gx0 + 1, round(x1 * gw / w)), max(gy0 + 1, round(y1 * gh / h))


class Pipeline:
    def __init__(self, config: Optional[PipelineConfig] = None, *,
                 segmenter: Optional[Segmenter] = None, fps: float = 30.0,
                 preset: Optional[Preset] = None):
        self.config = config or PipelineConfig()
        self.preset = preset or PRESETS[self.config.quality]   # preset: for benchmarks
        model = self.preset.model if self.config.model == "auto" else self.config.model
        self.segmenter = segmenter if segmenter is not None else create_segmenter(model=model)
        self.smoother = MaskSmoother(ratio=self.preset.smoothing)
        self.second = (create_segmenter(model=self.preset.second_model)
                       if self.preset.second_model else None)
        # With model "auto", portrait frames go to the square general model: squeezing a
        # standing person into the 16:9 landscape input cost 0.016 BF on the photos.
        self._auto_model = segmenter is None and self.config.model == "auto" and model != "general"
        self._portrait: Optional[Segmenter] = None
        self._pose: Optional[PoseMasker] = None
        self._size = (0, 0)
        mw, mh = self.segmenter.input_size
        self.tracker = CropTracker(aspect=mw / mh)
        self.gate = ChangeGate(threshold=self.preset.still_levels)
        self.model_runs = 0              # frames the model ran on (the rest reused a mask)
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

    def reset(self) -> None:
        """Forget temporal state (call between unrelated images or videos)."""
        self.smoother.reset()
        self.tracker.reset()
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
        crop = self.preset.crop
        person = self._segment(frame, gsize, self.tracker.box if crop else None)
        if crop and self.preset.two_pass and self.tracker.box is None:
            self.tracker.update(person, w, h)
            if self.tracker.box is not None:
                person = self._segment(frame, gsize, self.tracker.box)
        if self.preset.tiles:
            person = self._tiled(frame, gsize, person)
        if self.preset.pose:
            person = self._with_pose(frame, gsize, person)
        t1 = time.perf_counter()
        smoothed = self.smoother.update(person) if smooth else person
        if crop:
            self.tracker.update(smoothed, w, h)
        if gated:
            self.gate.model_ran(guide)
            self._still = smoothed       # the smoother's own state: unchanged until it runs
        t2 = time.perf_counter()
        t["segment"] = (t1 - t0) * 1e3
        t["smooth"] = (t2 - t1) * 1e3
        return guide, smoothed

    def _segment(self, frame: np.ndarray, gsize, box) -> np.ndarray:
        """Person probability at guide size from the model run on `box` (None: all)."""
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = box or (0, 0, w, h)
        # INTER_LINEAR, as MediaPipe resizes itself: the model was trained on such input;
        # an area-averaged (softer) input cost ~10 IoU points on real video.
        raw = self._run_model(self._segmenter_for(w, h), frame[y0:y1, x0:x1])
        self.model_runs += 1
        if self.second is not None:
            extra = self._run_model(self.second, frame[y0:y1, x0:x1])
            raw += cv2.resize(extra, raw.shape[::-1], interpolation=cv2.INTER_LINEAR)
            raw *= 0.5
        if box is None:
            return cv2.resize(raw, gsize, interpolation=cv2.INTER_LINEAR)
        gx0, gy0, gx1, gy1 = _guide_box(box, (w, h), gsize)
        person = np.zeros(gsize[::-1], np.float32)
        person[gy0:gy1, gx0:gx1] = cv2.resize(raw, (gx1 - gx0, gy1 - gy0),
                                              interpolation=cv2.INTER_LINEAR)
        return person

    def _tiled(self, frame: np.ndarray, gsize, person: np.ndarray) -> np.ndarray:
        """`person` averaged with model passes on tiles along the person (see tiling.py)."""
        h, w = frame.shape[:2]
        extent = person_extent(person, w, h)
        if extent is None:
            return person
        p = self.preset
        segmenter = self._segmenter_for(w, h)
        mw, mh = segmenter.input_size
        total = person.copy()
        gate = None
        if p.tile_band > 0:
            long_side = max(extent[2] - extent[0], extent[3] - extent[1]) * gsize[1] / h
            gate = tiling.boundary_gate(person, p.tile_band * long_side)
        weight = np.ones(person.shape, np.float32)    # the whole pass counts as one tile
        for box in tiling.tile_boxes(extent, tiles=p.tiles, overlap=p.tile_overlap,
                                     margin=p.tile_margin, aspect=mw / mh, width=w, height=h):
            x0, y0, x1, y1 = box
            gx0, gy0, gx1, gy1 = gbox = _guide_box(box, (w, h), gsize)
            raw = self._run_model(segmenter, frame[y0:y1, x0:x1])
            part = cv2.resize(raw, (gx1 - gx0, gy1 - gy0), interpolation=cv2.INTER_LINEAR)
            fade = tiling.feather(box, gbox, (w, h), p.tile_ramp)
            if gate is not None:
                fade *= gate[gy0:gy1, gx0:gx1]
            total[gy0:gy1, gx0:gx1] += part * fade
            weight[gy0:gy1, gx0:gx1] += fade
        return total / weight

    def _with_pose(self, frame: np.ndarray, gsize, person: np.ndarray) -> np.ndarray:
        """`person` averaged with the pose model's mask, inside a box around the one person
        that model finds (feathered at its edges). Anyone else keeps the selfie mask alone:
        the pose model sees one person, and must not halve a second one."""
        mask = self._pose_masker().mask(frame)
        if mask is None:
            return person
        h, w = frame.shape[:2]
        pose = cv2.resize(mask, gsize, interpolation=cv2.INTER_AREA)
        extent = person_extent(pose, w, h)
        if extent is None:
            return person
        x0, y0, x1, y1 = tiling.grow(extent, 0.1, w, h)
        box = (int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
        gx0, gy0, gx1, gy1 = gbox = _guide_box(box, (w, h), gsize)
        weight = np.zeros(person.shape, np.float32)
        weight[gy0:gy1, gx0:gx1] = tiling.feather(box, gbox, (w, h), 0.1) * self.preset.pose
        return person + (pose - person) * weight

    def _segmenter_for(self, w: int, h: int) -> Segmenter:
        chosen = self.segmenter
        if self._auto_model and h > w * 1.1:
            chosen = self._portrait_segmenter()
        mw, mh = chosen.input_size
        self.tracker.aspect = mw / mh
        return chosen

    def _portrait_segmenter(self) -> Segmenter:
        if self._portrait is None:
            self._portrait = create_segmenter(model="general")
        return self._portrait

    def _pose_masker(self) -> PoseMasker:
        if self._pose is None:
            self._pose = PoseMasker()
        return self._pose

    def _run_model(self, segmenter: Segmenter, crop: np.ndarray) -> np.ndarray:
        """One model on a crop (any size), plus its mirrored pass when the preset says so."""
        small = cv2.resize(crop, segmenter.input_size, interpolation=cv2.INTER_LINEAR)
        raw = np.array(segmenter.segment(small), dtype=np.float32)   # ours to keep
        if self.preset.flip:
            mirrored = segmenter.segment(np.ascontiguousarray(small[:, ::-1]))
            raw += mirrored[:, ::-1]
            raw *= 0.5
        # The model's sigmoid gives values down to 1e-41 far from the person: subnormal
        # floats, on which every later multiply takes a slow microcode path (the guided
        # filter ran 2x slower on real output than on random input). Nothing < 1e-6 matters.
        cv2.threshold(raw, 1e-6, 0, cv2.THRESH_TOZERO, dst=raw)
        return raw

    def process(self, frame: np.ndarray) -> Frame:
        return self._run(frame, composite_wanted=True)

    def process_sequence(self, frames: Iterable[np.ndarray], *, composite: bool = True,
                         lookahead: int = 1) -> Iterator[Frame]:
        """The frames of a file, in order, with smoothing that also looks `lookahead`
        frames ahead: where the model is unsure about a pixel in this frame, it leans on
        the mean of the frames around it (before and after, so without lag); where it is
        sure, it is taken as is, so a moving arm is not smeared. Yields one Frame per
        input, in order; frames are copied while they wait for the frames after them."""
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

        for frame in frames:
            check_frame(frame, "frame", contiguous=True)
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
        self.refiner.apply(frame, coef_a, coef_b, alpha, None if background is None else out,
                           background)
        t3 = time.perf_counter()
        t["refine"] = (t1 - t0) * 1e3
        t["background"] = (t2 - t1) * 1e3
        t["composite"] = (t3 - t2) * 1e3
        return self._finish(out, alpha, t)

    def _finish(self, out: np.ndarray, alpha: np.ndarray, t: Dict[str, float]) -> Frame:
        if self.mirror:  # the matte too: a cut-out or a mask must match the picture
            mirrored = self._buffer("mirrored", out.shape)
            cv2.flip(out, 1, dst=mirrored)
            flipped = self._buffer("mirrored_alpha", alpha.shape)
            cv2.flip(alpha, 1, dst=flipped)
            out, alpha = mirrored, flipped
        return Frame(image=out, alpha=alpha, timings=t)

    def matte(self, frame: np.ndarray) -> np.ndarray:
        """The person matte as float32 (H, W) in [0, 1] (a new array); no compositing."""
        return self._run(frame, composite_wanted=False).alpha.astype(np.float32) * np.float32(1 / 255)

    def warm_up(self) -> float:
        """Compile kernels, load every model this preset may call and run each once;
        returns seconds spent. The portrait and pose models are otherwise loaded on the
        first frame that needs them, which made a live first frame ~450 ms late; the
        portrait model is loaded even for a landscape camera (a few ms): a source may
        still send portrait frames later."""
        t = time.perf_counter()
        kernels.warm_up()
        segmenters = [self.segmenter, self.second]
        if self._auto_model:
            segmenters.append(self._portrait_segmenter())
        for seg in filter(None, segmenters):
            w, h = seg.input_size
            seg.segment(np.zeros((h, w, 3), np.uint8))
        if self.preset.pose:
            self._pose_masker()          # loads and runs the model once itself
        return time.perf_counter() - t

    def close(self) -> None:
        if self.background is not None:
            self.background.close()
            self.background = None
        for seg in (self.segmenter, self.second, self._portrait, self._pose):
            if seg is not None:
                seg.close()
        self.segmenter = self.second = self._portrait = self._pose = None

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
