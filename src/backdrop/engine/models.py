"""The models a preset runs on one frame, and how their maps become one subject map.

The person model runs on a crop around the tracked person (more model pixels on them), with
a mirrored pass, a second model, tiles along a tall person and the pose model where the
preset asks. For `--subject any` or `auto` the general model (U²-Netp) runs on the whole
frame, and subject.py decides what the picture is of. Everything comes back as float32
probability at the guide's size; the pipeline smooths and refines it.
"""

from __future__ import annotations

import logging
from typing import Optional

import cv2
import numpy as np

from backdrop.engine import tiling
from backdrop.engine.general import GeneralSegmenter
from backdrop.engine.segment import FaceFinder, PoseMasker, Segmenter, create_segmenter
from backdrop.engine.subject import SubjectChooser, combine
from backdrop.engine.tracking import CropTracker, person_extent
from backdrop.errors import ModelError

logger = logging.getLogger(__name__)

# In a file, the first frame of every stretch of REFIND frame durations (by the frames' own
# timestamps, so frames that could not be decoded do not shift it) is taken as if it were
# the first: the crop box is found afresh and `auto` decides again what the subject is. Kept
# from frame to frame, both depend on every frame since they were last set (a box stays
# while the person fits in it, a decision for the whole shot), and a run that starts in
# the middle (a chunk of a long video) could not find the same ones: on the parkour clip
# its masks differed from the whole run's by up to 0.23 IoU (--subject person) and 0.99
# (auto). With it, a run that starts on such a frame matches the whole run's from there
# (IoU 1.0 on every frame). Its price on the parkour clip against the truth: person
# 0.879 -> 0.875 IoU, auto 0.869 -> 0.875; the synthetic still and moving scenes, and
# their flicker, unchanged.
REFIND = 32


def guide_box(box, frame_size, gsize):
    """A full-resolution box in guide pixels (at least one pixel each way)."""
    (x0, y0, x1, y1), (w, h), (gw, gh) = box, frame_size, gsize
    gx0, gy0 = round(x0 * gw / w), round(y0 * gh / h)
    return gx0, gy0, max(gx0 + 1, round(x1 * gw / w)), max(gy0 + 1, round(y1 * gh / h))


def lanczos(frame: np.ndarray, size) -> np.ndarray:
    """Shrink as U²-Net's users do (PIL's Lanczos, whose kernel widens with the factor): on
    the 200 shared objects the raw model scored IoU 0.885 so, 0.878 after cv2's INTER_AREA."""
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.LANCZOS))


def _general_model(subject: str, threads: int) -> Optional[GeneralSegmenter]:
    """The general model for subject any/auto. Where LiteRT has no wheel (Intel macs),
    `auto` goes on with people only, said once; `any` cannot and raises."""
    if subject == "person":
        return None
    try:
        return GeneralSegmenter(threads=threads)
    except ModelError as e:
        if subject == "any" or not isinstance(e.__cause__, ImportError):
            raise
        logger.warning(f"warning: {e}; --subject auto finds people only here")
        return None


class Models:
    """Owns every model one pipeline may call (created up front, so warm-up can load them
    all) and the crop tracker that says where the person model looks."""

    def __init__(self, preset, *, model: str, subject: str = "person", auto_model: bool,
                 segmenter: Optional[Segmenter] = None, threads: int = 2):
        self.preset = preset
        self.segmenter = segmenter if segmenter is not None else create_segmenter(model=model)
        self.second = (create_segmenter(model=preset.second_model)
                       if preset.second_model else None)
        # With model "auto", portrait frames go to the square general model: squeezing a
        # standing person into the 16:9 landscape input cost 0.016 BF on the photos.
        self.auto_model = auto_model
        self._portrait: Optional[Segmenter] = None
        self._pose: Optional[PoseMasker] = None
        self.general = _general_model(subject, threads)
        if self.general is None:
            subject = "person" if subject == "auto" else subject
        self.subject = SubjectChooser(subject)
        self.faces = FaceFinder() if subject == "auto" else None
        mw, mh = self.segmenter.input_size
        self.tracker = CropTracker(aspect=mw / mh)
        self.runs = 0                    # frames the person model ran on
        self.choice = "person"           # what the last frame's map was made of

    def reset(self) -> None:
        """Forget the crop box and `auto`'s decision (a new file, or a REFIND frame)."""
        self.tracker.reset()
        self.subject.reset()

    # -- the map -------------------------------------------------------------------------
    def subject_map(self, frame: np.ndarray, guide: np.ndarray, gsize) -> np.ndarray:
        """Subject probability at guide size, a new array."""
        if self.subject.subject == "person":
            self.choice = "person"
            return self._people(frame, gsize)
        general = self._general_map(frame, gsize)
        # The decision needs only one plain pass of the person model: on a product photo
        # the preset's mirrored and second-model passes would be spent for nothing.
        self.choice = self.subject.choose(guide, lambda: self._segment(frame, gsize, None, plain=True),
                                          general, lambda: self.faces.count(frame))
        if self.choice == "general":     # not a person photo: the person models would not help
            return general
        return combine(self._people(frame, gsize), general, "both")

    def _people(self, frame: np.ndarray, gsize) -> np.ndarray:
        """The person map as the preset makes it: crop, tiles, pose."""
        person = self._first_pass(frame, gsize)
        if self.preset.tiles:
            person = self._tiled(frame, gsize, person)
        if self.preset.pose:
            person = self._with_pose(frame, gsize, person)
        return person

    def _first_pass(self, frame: np.ndarray, gsize) -> np.ndarray:
        h, w = frame.shape[:2]
        crop = self.preset.crop
        person = self._segment(frame, gsize, self.tracker.box if crop else None)
        if crop and self.preset.two_pass and self.tracker.box is None:
            self.tracker.update(person, w, h)
            if self.tracker.box is not None:
                person = self._segment(frame, gsize, self.tracker.box)
        return person

    def _general_map(self, frame: np.ndarray, gsize) -> np.ndarray:
        """The general model on the whole frame (it wants the whole scene to find what
        stands out), at guide size."""
        small = lanczos(frame, self.general.input_size)
        return cv2.resize(self.general.segment(small), gsize, interpolation=cv2.INTER_LINEAR)

    def _segment(self, frame: np.ndarray, gsize, box, *, plain: bool = False) -> np.ndarray:
        """Person probability at guide size from the model run on `box` (None: all);
        `plain`: one pass of the main model only (no mirrored pass, no second model)."""
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = box or (0, 0, w, h)
        # INTER_LINEAR, as MediaPipe resizes itself: the model was trained on such input;
        # an area-averaged (softer) input cost ~10 IoU points on real video.
        raw = self._run_model(self.segmenter_for(w, h), frame[y0:y1, x0:x1], flip=not plain)
        self.runs += 1
        if self.second is not None and not plain:
            extra = self._run_model(self.second, frame[y0:y1, x0:x1])
            raw += cv2.resize(extra, raw.shape[::-1], interpolation=cv2.INTER_LINEAR)
            raw *= 0.5
        if box is None:
            return cv2.resize(raw, gsize, interpolation=cv2.INTER_LINEAR)
        gx0, gy0, gx1, gy1 = guide_box(box, (w, h), gsize)
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
        segmenter = self.segmenter_for(w, h)
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
            gx0, gy0, gx1, gy1 = gbox = guide_box(box, (w, h), gsize)
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
        mask = self.pose_masker().mask(frame)
        if mask is None:
            return person
        h, w = frame.shape[:2]
        pose = cv2.resize(mask, gsize, interpolation=cv2.INTER_AREA)
        extent = person_extent(pose, w, h)
        if extent is None:
            return person
        x0, y0, x1, y1 = tiling.grow(extent, 0.1, w, h)
        box = (int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
        gx0, gy0, gx1, gy1 = gbox = guide_box(box, (w, h), gsize)
        weight = np.zeros(person.shape, np.float32)
        weight[gy0:gy1, gx0:gx1] = tiling.feather(box, gbox, (w, h), 0.1) * self.preset.pose
        return person + (pose - person) * weight

    # -- models --------------------------------------------------------------------------
    def segmenter_for(self, w: int, h: int) -> Segmenter:
        chosen = self.segmenter
        if self.auto_model and h > w * 1.1:
            chosen = self.portrait_segmenter()
        mw, mh = chosen.input_size
        self.tracker.aspect = mw / mh
        return chosen

    def portrait_segmenter(self) -> Segmenter:
        if self._portrait is None:
            self._portrait = create_segmenter(model="general")
        return self._portrait

    def pose_masker(self) -> PoseMasker:
        if self._pose is None:
            self._pose = PoseMasker()
        return self._pose

    def _run_model(self, segmenter: Segmenter, crop: np.ndarray, *,
                   flip: bool = True) -> np.ndarray:
        """One model on a crop (any size), plus its mirrored pass when the preset (and
        `flip`) says so."""
        small = cv2.resize(crop, segmenter.input_size, interpolation=cv2.INTER_LINEAR)
        raw = np.array(segmenter.segment(small), dtype=np.float32)   # ours to keep
        if self.preset.flip and flip:
            mirrored = segmenter.segment(np.ascontiguousarray(small[:, ::-1]))
            raw += mirrored[:, ::-1]
            raw *= 0.5
        # The model's sigmoid gives values down to 1e-41 far from the person: subnormal
        # floats, on which every later multiply takes a slow microcode path (the guided
        # filter ran 2x slower on real output than on random input). Nothing < 1e-6 matters.
        cv2.threshold(raw, 1e-6, 0, cv2.THRESH_TOZERO, dst=raw)
        return raw

    def warm_up(self) -> None:
        """Load every model this preset may call and run each once. The portrait and pose
        models are otherwise loaded on the first frame that needs them, which made a live
        first frame ~450 ms late; the portrait model is loaded even for a landscape camera
        (a few ms): a source may still send portrait frames later."""
        segmenters = [self.segmenter, self.second, self.general]
        if self.auto_model:
            segmenters.append(self.portrait_segmenter())
        for seg in filter(None, segmenters):
            w, h = seg.input_size
            seg.segment(np.zeros((h, w, 3), np.uint8))
        if self.preset.pose:
            self.pose_masker()          # loads and runs the model once itself

    def close(self) -> None:
        for seg in (self.segmenter, self.second, self._portrait, self._pose, self.general,
                    self.faces):
            if seg is not None:
                seg.close()
        self.segmenter = self.second = self._portrait = self._pose = None
        self.general = self.faces = None
