"""Runs in the guest: read a V4L2 device with OpenCV as a video-call app would.

Usage: guest_read_cv.py DEVICE OUT_DIR [FRAMES [DEADLINE_S]]. Writes OUT_DIR/cv_info.json and
cv_frame.png (the last frame read, BGR). Reads that time out (a slow writer: backdrop under TCG
emulation makes a frame every few seconds) are retried until the deadline.
"""

import json
import sys
import time
from pathlib import Path

import cv2

device, out = sys.argv[1], Path(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 10
deadline = time.monotonic() + (float(sys.argv[4]) if len(sys.argv) > 4 else 120)
cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
info = {"opened": cap.isOpened(), "backend": cap.getBackendName() if cap.isOpened() else None}
frames = []
if cap.isOpened():
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
    info.update(width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                fps=cap.get(cv2.CAP_PROP_FPS),
                fourcc=fourcc.to_bytes(4, "little").decode("ascii", "replace"))
    failed = 0
    while len(frames) < count and time.monotonic() < deadline:
        ok, frame = cap.read()
        if ok:
            frames.append(frame)
        else:
            failed += 1
    info["failed_reads"] = failed
    cap.release()
info["frames_read"] = len(frames)
if frames:
    info["frame_shape"] = list(frames[-1].shape)
    cv2.imwrite(str(out / "cv_frame.png"), frames[-1])
(out / "cv_info.json").write_text(json.dumps(info, indent=1))
print(json.dumps(info))
sys.exit(0 if frames else 1)
