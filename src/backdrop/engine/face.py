"""Where a face is and where its eyes and chin are: MediaPipe's full-range face detector and
its Face Mesh landmarker (both in the mediapipe==0.10.21 wheel; nothing is downloaded). What
ID-photo layouts measure; the crown (top of the hair) is not a landmark and comes from the
person matte (offline/idphoto.py).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from backdrop.errors import ModelError
from backdrop.io.frames import Closing

# Face Mesh landmark numbers (the canonical 468-point topology)
CHIN = 152
RIGHT_EYE = (33, 133)      # outer and inner corner of the subject's right eye
LEFT_EYE = (362, 263)

# The mesh runs on a square crop this many detection boxes wide around the face: its own
# short-range detector needs the face large in its input, which whole street photos are
# not (it found none of six faces 70 px wide in 550 px photos; on crops it finds them).
CROP_BOXES = 2.4
CROP_SIZE = 384


@dataclass(frozen=True)
class FaceBox:
    """A detection, in pixels of the frame; may extend past the frame's edges."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def size(self) -> float:
        return max(self.x1 - self.x0, self.y1 - self.y0)


@dataclass(frozen=True)
class Landmarks:
    """Eye centres and chin in pixels of the frame, and the extent of all 468 points
    (x0, y0, x1, y1), which leaves the frame when the face is cut off by its edge."""

    right_eye: Tuple[float, float]
    left_eye: Tuple[float, float]
    chin: Tuple[float, float]
    extent: Tuple[float, float, float, float]

    @property
    def eye_line(self) -> float:
        return (self.right_eye[1] + self.left_eye[1]) / 2

    @property
    def centre_x(self) -> float:
        """Between the eyes: the face's vertical axis."""
        return (self.right_eye[0] + self.left_eye[0]) / 2


def _points(landmarks, sx: float, sy: float, x0: float, y0: float) -> np.ndarray:
    return np.array([(p.x * sx + x0, p.y * sy + y0) for p in landmarks.landmark], np.float64)


class FaceLandmarker(Closing):
    """Faces in a photo (full-range detector: small faces too) and the landmarks of one."""

    def __init__(self, *, confidence: float = 0.5):
        import mediapipe as mp

        from backdrop.engine.segment import quiet_stderr

        with quiet_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                self._detector = mp.solutions.face_detection.FaceDetection(
                    model_selection=1, min_detection_confidence=confidence)
                self._mesh = mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                    min_detection_confidence=confidence)
                blank = np.zeros((64, 64, 3), np.uint8)
                self._detector.process(blank)       # the graphs load and print on first use
                self._mesh.process(blank)
            except Exception as e:
                raise ModelError(f"cannot load the face models: {e}") from e

    def detect(self, frame: np.ndarray) -> List[FaceBox]:
        """Every face the detector finds, best first."""
        h, w = frame.shape[:2]
        result = self._detector.process(np.ascontiguousarray(frame))
        boxes = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            boxes.append(FaceBox(b.xmin * w, b.ymin * h, (b.xmin + b.width) * w,
                                 (b.ymin + b.height) * h, float(d.score[0])))
        return sorted(boxes, key=lambda b: -b.score)

    def landmarks(self, frame: np.ndarray, box: Optional[FaceBox] = None) -> Optional[Landmarks]:
        """The landmarks of the face in `box` (of the whole frame without one), or None when
        the mesh finds no face there. Parts of the crop beyond the frame are black, so a face
        cut off by the edge gives points outside the frame."""
        import cv2

        if box is None:
            h, w = frame.shape[:2]
            return self._from(self._mesh.process(np.ascontiguousarray(frame)), w, h, 0.0, 0.0)
        side = CROP_BOXES * box.size
        cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        n = int(round(side))
        h, w = frame.shape[:2]
        # black beyond the frame's edges, then one resize (by area when shrinking: a large
        # photo's face can be a thousand pixels wide)
        crop = np.zeros((n, n, 3), np.uint8)
        fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + n), min(h, y0 + n)
        if fx1 > fx0 and fy1 > fy0:
            crop[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0] = frame[fy0:fy1, fx0:fx1]
        crop = cv2.resize(crop, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA
                          if n > CROP_SIZE else cv2.INTER_LINEAR)
        side = float(n)
        return self._from(self._mesh.process(crop), side, side, x0, y0)

    @staticmethod
    def _from(result, sx: float, sy: float, x0: float, y0: float) -> Optional[Landmarks]:
        faces = result.multi_face_landmarks
        if not faces:
            return None
        p = _points(faces[0], sx, sy, x0, y0)
        return Landmarks(tuple(p[list(RIGHT_EYE)].mean(axis=0)),
                         tuple(p[list(LEFT_EYE)].mean(axis=0)), tuple(p[CHIN]),
                         (p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()))

    def close(self) -> None:
        for name in ("_detector", "_mesh"):
            model = getattr(self, name, None)
            setattr(self, name, None)
            if model is not None:
                model.close()
