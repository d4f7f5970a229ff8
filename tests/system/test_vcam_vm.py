"""System test: the virtual camera, for real, in a QEMU guest with v4l2loopback.

A writer (backdrop itself, or a tiny pyvirtualcam rig that proves the machinery on its own) writes
to /dev/video0 in the guest; ffprobe/ffmpeg, v4l2-ctl and OpenCV read the device back the way a
video-call app would, and the test checks size, pixel format, frame rate and the pixels.

Run: pytest tests/system -m vm            (skips if qemu or the cached guest image is missing)
     BACKDROP_VM_TEST=1 pytest tests/system -m vm   (builds the image if needed; never skips)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import vm

pytestmark = pytest.mark.vm

FORCED = os.environ.get("BACKDROP_VM_TEST") == "1"
DEVICE, WIDTH, HEIGHT, FPS = "/dev/video0", 640, 480, 30
GREEN_BGR = (0, 255, 0)  # '#00ff00'
TOLERANCE = 40  # per channel, after the YUV round trip
PYTHON = shlex.quote(sys.executable)  # the guest sees the host's Python at the same path
BIN = Path(sys.executable).parent

# The writers. Each is one shell command run in the guest from the repository root.
BACKDROP_WRITER = (f"{shlex.quote(str(BIN / 'backdrop'))} live --source demo "
                   f"--background '#00ff00' --sink vcam --vcam-device {DEVICE} "
                   f"--width {WIDTH} --height {HEIGHT} --fps {FPS} --frames 300")
RIG_WRITER = (f"{PYTHON} tests/system/rig_writer.py --device {DEVICE} --width {WIDTH} "
              f"--height {HEIGHT} --fps {FPS} --frames 3000")

GUEST_SCRIPT = """
DEV={device}
mark() {{ echo "$(cut -d' ' -f1 /proc/uptime) $*" >> $OUT/timeline; }}
alive() {{ [ -e /proc/$1/status ] && ! grep -q '^State:[[:space:]]*Z' /proc/$1/status; }}
mark writer start
{writer} > $OUT/writer.log 2>&1 &
WRITER=$!
# exclusive_caps=1: the device offers capture only once a writer streams to it.
i=0
set +x
until v4l2-ctl -d $DEV --get-fmt-video 2>/dev/null | grep -q 'Width/Height *: *[1-9]'; do
  alive $WRITER || {{ echo "writer died before capture was offered"; exit 90; }}
  i=$((i + 1)); [ $i -lt {wait_s} ] || {{ echo "capture never offered"; exit 91; }}
  sleep 1
done
set -x
mark capture offered
v4l2-ctl -d $DEV --all > $OUT/v4l2.txt 2>&1
timeout 60 ffprobe -hide_banner -f v4l2 -i $DEV -show_streams -of json \
  > $OUT/ffprobe.json 2> $OUT/ffprobe.log
mark ffprobe done
timeout {read_s} ffmpeg -hide_banner -nostdin -loglevel info -nostats -f v4l2 -i $DEV \
  -frames:v {n} -c:v copy -f rawvideo -y $OUT/ffmpeg.yuv > $OUT/ffmpeg.log 2>&1
mark ffmpeg done
{python} tests/system/guest_read_cv.py $DEV $OUT {n} {read_s}
mark opencv done
kill -TERM $WRITER  # stop as a user or service manager would; it must exit cleanly
wait $WRITER
echo $? > $OUT/writer_exit
mark writer exited
"""


@pytest.fixture(scope="module")
def guest_image():
    """Make sure the cached guest image exists; build it only when BACKDROP_VM_TEST=1."""
    if FORCED:
        try:
            vm.build_image()
        except Exception as exc:  # noqa: BLE001 - any failure to build must fail the test
            pytest.fail(f"building the guest image failed: {exc}")
        return
    if vm.qemu_binary() is None:
        pytest.skip("qemu-system-x86_64 not installed (set BACKDROP_VM_TEST=1 to install & build)")
    if not vm.image_ready():
        pytest.skip(f"no complete guest image in {vm.cache_dir()} "
                    "(set BACKDROP_VM_TEST=1 to build it, ~2 min)")


def green_fraction(bgr: np.ndarray) -> float:
    diff = np.abs(bgr.astype(np.int16) - np.array(GREEN_BGR, np.int16))
    return float(np.mean(np.all(diff <= TOLERANCE, axis=-1)))


def regions(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(border: top, left and right bands 1/10 of the size wide, central third of the frame).

    The bottom band is left out: a webcam subject's shoulders fill it (the demo scene's do).
    """
    h, w = frame.shape[:2]
    bh, bw = h // 10, w // 10
    border = np.concatenate([frame[:bh].reshape(-1, 3), frame[bh:, :bw].reshape(-1, 3),
                             frame[bh:, -bw:].reshape(-1, 3)])
    return border, frame[h // 3:2 * h // 3, w // 3:2 * w // 3].reshape(-1, 3)


def check_pixels(name: str, frame: np.ndarray, min_border_green: float,
                 min_centre_other: float) -> dict:
    assert frame.shape == (HEIGHT, WIDTH, 3), f"{name}: frame shape {frame.shape}"
    border, centre = regions(frame)
    stats = {"border_green": round(green_fraction(border), 3),
             "centre_not_green": round(1 - green_fraction(centre), 3),
             "border_mean_bgr": [round(float(v), 1) for v in border.mean(axis=0)],
             "centre_mean_bgr": [round(float(v), 1) for v in centre.mean(axis=0)]}
    assert stats["border_green"] >= min_border_green, f"{name}: background not green: {stats}"
    assert stats["centre_not_green"] >= min_centre_other, f"{name}: subject is green: {stats}"
    return stats


def run_dir(tmp_path: Path, name: str) -> Path:
    """$BACKDROP_VM_ARTIFACTS/NAME when set (kept for a look), else pytest's tmp_path."""
    keep = os.environ.get("BACKDROP_VM_ARTIFACTS")
    if not keep:
        return tmp_path / name
    path = Path(keep) / name
    shutil.rmtree(path, ignore_errors=True)
    return path


def roundtrip(writer: str, run_dir: Path, timeout: float, frames: int, min_border_green: float,
              min_centre_other: float) -> dict:
    script = GUEST_SCRIPT.format(device=DEVICE, writer=writer, wait_s=int(timeout * 0.6),
                                 n=frames, read_s=int(timeout * 0.25), python=PYTHON)
    res = vm.run_in_vm(script, run_dir, timeout=timeout)
    out = res.out_dir
    text = lambda name: (out / name).read_text(errors="replace") if (out / name).exists() else ""
    context = (f"\n--- script.log (exit {res.exit_code}, timed out {res.timed_out}) ---\n"
               f"{res.log[-3000:]}\n--- writer.log ---\n{text('writer.log')[-3000:]}\n"
               f"--- console ---\n{res.console[-2000:]}\n(all in {out})")
    assert res.exit_code == 0, f"guest script failed{context}"
    assert text("writer_exit").strip() == "0", f"writer failed{context}"

    # The device itself (v4l2-ctl): format and frame rate as a consumer negotiates them.
    v4l2 = text("v4l2.txt")
    cap_fmt = v4l2.split("Format Video Capture:", 1)[-1]
    assert re.search(rf"Width/Height\s*:\s*{WIDTH}/{HEIGHT}", cap_fmt), v4l2
    assert re.search(r"Pixel Format\s*:\s*'YU12'", cap_fmt), v4l2  # YU12 == I420
    cap_parm = v4l2.split("Streaming Parameters Video Capture:", 1)[-1]
    assert re.search(rf"Frames per second:\s*{FPS}\.0+ \({FPS}/1\)", cap_parm), v4l2

    # ffprobe / ffmpeg.
    stream = (json.loads(text("ffprobe.json") or "{}").get("streams") or [{}])[0]
    assert (stream.get("width"), stream.get("height")) == (WIDTH, HEIGHT), stream
    assert stream.get("pix_fmt") == "yuv420p", stream
    assert stream.get("r_frame_rate") == f"{FPS}/1", stream
    assert re.search(rf"rawvideo \(I420 .*yuv420p.*{WIDTH}x{HEIGHT}.* {FPS} fps",
                     text("ffmpeg.log")), text("ffmpeg.log")
    raw = np.fromfile(out / "ffmpeg.yuv", np.uint8)
    size = WIDTH * HEIGHT * 3 // 2
    assert raw.size == frames * size, f"ffmpeg read {raw.size / size} frames"
    yuv = raw[-size:].reshape(HEIGHT * 3 // 2, WIDTH)
    ff_frame = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)
    cv2.imwrite(str(out / "ffmpeg_frame.png"), ff_frame)

    # OpenCV, as a video-call app reads a webcam.
    info = json.loads(text("cv_info.json") or "{}")
    assert info.get("opened"), info
    assert (info.get("width"), info.get("height")) == (WIDTH, HEIGHT), info
    assert info.get("fps") == pytest.approx(FPS), info
    assert info.get("frames_read") == frames, info
    cv_frame = cv2.imread(str(out / "cv_frame.png"))
    assert cv_frame is not None, info

    summary = {"boot_seconds": res.boot_seconds, "vm_wall_seconds": round(res.wall_seconds, 1),
               "timeline": text("timeline").splitlines(), "ffprobe": {
                   k: stream.get(k) for k in ("width", "height", "pix_fmt", "r_frame_rate")},
               "opencv": info,
               "ffmpeg_pixels": check_pixels("ffmpeg", ff_frame, min_border_green,
                                             min_centre_other),
               "opencv_pixels": check_pixels("opencv", cv_frame, min_border_green,
                                             min_centre_other)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return summary


def test_rig_roundtrip(guest_image, tmp_path):
    """The machinery alone: pyvirtualcam writes green frames with a grey square; read back."""
    s = roundtrip(RIG_WRITER, run_dir(tmp_path, "rig"), timeout=300, frames=10,
                  min_border_green=0.99, min_centre_other=0.99)
    for reader in ("ffmpeg_pixels", "opencv_pixels"):  # what was sent, within a few levels
        assert s[reader]["border_mean_bgr"] == pytest.approx(GREEN_BGR, abs=3), s
        assert s[reader]["centre_mean_bgr"] == pytest.approx([128, 128, 128], abs=3), s


def test_backdrop_live_vcam(guest_image, tmp_path):
    """backdrop live --sink vcam: the demo person on a #00ff00 background reaches a consumer."""
    if not (BIN / "backdrop").exists():
        msg = f"backdrop is not installed in {sys.prefix}"
        pytest.fail(msg) if FORCED else pytest.skip(msg)
    roundtrip(BACKDROP_WRITER, run_dir(tmp_path, "backdrop"), timeout=720, frames=3,
              min_border_green=0.8, min_centre_other=0.5)
