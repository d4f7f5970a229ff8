"""`backdrop doctor`: checks that say whether live will work, each with its fix."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import List


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def run_checks() -> List[Check]:
    from .sinks import display_available, list_virtual_cameras
    from .sources import list_cameras

    checks = [Check("python", (3, 9) <= sys.version_info[:2] <= (3, 12),
                    sys.version.split()[0], "use Python 3.9-3.12 (mediapipe 0.10.21 has no 3.13 wheels)")]
    loaded = os.path.isdir("/sys/module/v4l2loopback")
    checks.append(Check("v4l2loopback", loaded, "loaded" if loaded else "kernel module not loaded",
                        'sudo apt install v4l2loopback-dkms && sudo modprobe v4l2loopback'
                        ' devices=1 exclusive_caps=1 card_label="backdrop"'))
    vcams = list_virtual_cameras()
    checks.append(Check("virtual camera", bool(vcams),
                        ", ".join(c["path"] for c in vcams) or "no loopback device",
                        "load v4l2loopback (see above)"))
    cams = list_cameras()
    checks.append(Check("camera", bool(cams), ", ".join(c["path"] for c in cams) or "none found",
                        "plug in a webcam, or use --source demo / --source VIDEO", required=False))
    disp = display_available()
    checks.append(Check("display", disp, "available" if disp else "none (no preview window)",
                        "run in a desktop session, or use --sink vcam only", required=False))
    return checks
