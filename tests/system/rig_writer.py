"""Rig writer for the VM test: solid #00ff00 frames with a grey square in the middle.

Stands in for `backdrop live` to prove the VM, v4l2loopback, 9p and the reading side on their own.
"""

import argparse
import signal

import numpy as np
import pyvirtualcam

parser = argparse.ArgumentParser()
parser.add_argument("--device", default="/dev/video0")
parser.add_argument("--width", type=int, default=640)
parser.add_argument("--height", type=int, default=480)
parser.add_argument("--fps", type=float, default=30)
parser.add_argument("--frames", type=int, default=600)
args = parser.parse_args()

frame = np.zeros((args.height, args.width, 3), np.uint8)
frame[:, :] = (0, 255, 0)
cy, cx, half = args.height // 2, args.width // 2, min(args.width, args.height) // 4
frame[cy - half:cy + half, cx - half:cx + half] = (128, 128, 128)

with pyvirtualcam.Camera(args.width, args.height, args.fps, device=args.device) as cam:
    print(f"rig writer: {cam.device} {cam.width}x{cam.height} {cam.fps} fps {cam.native_fmt}",
          flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # stop cleanly, like backdrop
    for _ in range(args.frames):
        if stop:
            break
        cam.send(frame)
        cam.sleep_until_next_frame()
print("rig writer: done", flush=True)
