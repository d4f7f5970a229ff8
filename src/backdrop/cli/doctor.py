"""`backdrop doctor` and `backdrop devices`: what this machine has for live, and the fix for
whatever is missing, per system: v4l2loopback, device permissions and the X display on
Linux; OBS's virtual camera and the camera privacy switch on Windows and macOS.

Every check reads through a `Probe` (kernel files under a root folder, the permission test,
the environment, the format query, the virtual camera), so tests can build a fake /sys, /dev
and /proc tree. Devices are asked through io.devices, never platform code directly.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from backdrop.engine.segment import MEDIAPIPE
from backdrop.io import devices
from backdrop.io.devices import GROUP_FIX, INSTALL, LOCAL, RELOAD, Host, find_holders


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _default_display(env: Mapping[str, str]) -> bool:
    from backdrop.io.preview import x_display_reachable

    display = env.get("DISPLAY", "")
    return bool(display) and x_display_reachable(display)


@dataclass
class Probe:
    """Where the doctor looks. The defaults look at this machine."""

    host: Host = LOCAL
    access: Callable[[str, int], bool] = os.access
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    display: Callable[[Mapping[str, str]], bool] = _default_display
    formats: Callable[[str], List[dict]] = devices.list_formats
    own_pid: int = field(default_factory=os.getpid)
    vcam: Callable[[], Tuple[bool, str]] = devices.virtual_camera_state


# ---------------------------------------------------------------------------- software

def _version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def software_checks() -> List[Check]:
    from backdrop.engine.segment import MODELS

    py = sys.version.split()[0]
    checks = [Check("python", (3, 10) <= sys.version_info[:2] <= (3, 12), py,
                    "use Python 3.10-3.12 (mediapipe 0.10.21 has no 3.13 wheels, LiteRT no"
                    " 3.9 wheels)")]
    mp = _version("mediapipe")
    checks.append(Check("mediapipe", mp == MEDIAPIPE, mp or "not installed",
                        f"pip install 'mediapipe=={MEDIAPIPE}' (the last release that ships"
                        f" the segmentation models)"))
    spec = importlib.util.find_spec("mediapipe")  # locates without importing (slow)
    where = (spec.submodule_search_locations or [""])[0] if spec else ""
    missing = [m.relpath for m in MODELS.values()
               if not where or not os.path.isfile(os.path.join(where, m.relpath))]
    checks.append(Check("models", not missing,
                        "selfie segmentation models present" if not missing
                        else "missing: " + ", ".join(missing),
                        f"pip install --force-reinstall 'mediapipe=={MEDIAPIPE}'"))
    litert, no_wheel = _version("ai-edge-litert"), devices.litert_unavailable()
    checks.append(Check("ai-edge-litert", litert is not None or bool(no_wheel),
                        litert or (f"not installed: {no_wheel}; mediapipe runs the model"
                                   if no_wheel else "not installed"),
                        "pip install ai-edge-litert (runs the model for ~20% less CPU than"
                        " mediapipe, which is used without it)", required=False))
    np_version = _version("numpy") or "not installed"
    checks.append(Check("numpy", np_version[:1] == "1", np_version,
                        "pip install 'numpy<2' (mediapipe 0.10.21 is built against numpy 1)"))
    checks.append(_opencv_check())
    vc = _version("pyvirtualcam")
    checks.append(Check("pyvirtualcam", vc is not None, vc or "not installed",
                        "pip install pyvirtualcam"))
    return checks


def _opencv_check() -> Check:
    fix = ("pip uninstall -y opencv-python opencv-python-headless && pip install --force-reinstall"
           " 'opencv-contrib-python<4.12'")
    others = [d for d in ("opencv-python", "opencv-python-headless") if _version(d)]
    try:
        import cv2
    except ImportError as e:
        return Check("opencv", False, f"cv2 cannot be imported: {e}", fix)
    # No check for cv2.ximgproc (the contrib build): nothing uses it, the guided filter is
    # our own kernel. Only the wheels that overwrite each other's cv2 matter.
    if others:
        return Check("opencv", False, f"{', '.join(others)} installed beside"
                     f" opencv-contrib-python: they overwrite the same cv2", fix)
    return Check("opencv", True, f"cv2 {cv2.__version__}")


# ---------------------------------------------------------------------------- devices

def module_check(params: Optional[Dict[str, str]]) -> List[Check]:
    if params is None:
        return [Check("v4l2loopback", False, "kernel module not loaded: no virtual camera",
                      INSTALL)]
    shown = " ".join(f"{k}={params[k]}" for k in ("devices", "exclusive_caps", "card_label",
                                                   "video_nr") if k in params)
    checks = [Check("v4l2loopback", True, f"loaded; options: {shown or 'not readable'}")]
    caps = devices.exclusive_caps(params)
    if caps is not None and not all(caps):
        checks.append(Check("exclusive_caps", False,
                            "exclusive_caps=0: Chrome-based apps (Meet, Teams, Discord) will"
                            " not list the virtual camera", RELOAD, required=False))
    return checks


def _holders_text(path: str, probe: Probe) -> str:
    found = find_holders([path], probe.host, exclude={probe.own_pid})
    held = ", ".join(f"{name} ({pid})" for pid, name in sorted(found.pids.items()))
    unseen = f"; {found.denied} processes of other users not visible" if found.denied else ""
    return (f"open in: {held}" if held else "open in no program") + unseen


def _sysfs_format(path: str, probe: Probe) -> str:
    text = devices.sysfs_format(path, probe.host)
    return f", format {text}" if text else ""


def vcam_checks(probe: Probe, loaded: bool) -> Tuple[List[Check], bool]:
    """One check per loopback device; and whether live can write to one of them."""
    vcams = devices.list_virtual_cameras(probe.host, probe.access)
    if not vcams:
        if not loaded:
            return [], False
        return [Check("virtual camera", False, "v4l2loopback is loaded but made no devices",
                      RELOAD)], False
    checks, usable = [], False
    for d in vcams:
        state = f"{d['name'] or 'loopback'}{_sysfs_format(d['path'], probe)};" \
                f" {_holders_text(d['path'], probe)}"
        if not d["writable"]:
            checks.append(Check(f"virtual camera {d['path']}", False,
                                f"no permission to write it ({state})", GROUP_FIX))
        else:
            usable = True
            checks.append(Check(f"virtual camera {d['path']}", True, f"writable; {state}"))
    return checks, usable


def desktop_vcam_check(probe: Probe) -> Check:
    """Windows, macOS: whether OBS's virtual camera (or Unity Capture) opens, which is the
    only way to learn that it is installed."""
    ok, detail = probe.vcam()
    if ok:
        return Check("virtual camera", True, f"{detail} opens")
    detail, _, fix = detail.partition(". Fix: ")  # a busy camera's text holds its own fix
    return Check("virtual camera", False, detail, fix)


def camera_checks(probe: Probe) -> List[Check]:
    system = devices.current()
    cams = devices.list_cameras(probe.host)
    if not cams:
        access = "" if system.device_nodes else f"; if one is, {system.camera_access_fix};"
        return [Check("camera", False, "none found (live can use --source demo or a video)",
                      f"plug in a webcam{access}, or use --source demo / --source VIDEO",
                      required=False)]
    checks = []
    for c in cams:
        if system.device_nodes and not probe.access(c["id"], os.R_OK):
            checks.append(Check(f"camera {c['id']}", False, f"{c['name']}: no permission"
                                f" to read it", GROUP_FIX, required=False))
            continue
        try:
            formats = devices.camera_formats(c, probe.formats)
        except OSError as e:
            formats = f"formats cannot be asked ({e.strerror or e})"
        detail = f"{c['name']}: {formats}" if system.device_nodes else formats
        checks.append(Check(f"camera {c['id']}", True, detail))
    return checks


def display_check(probe: Probe) -> Check:
    display = probe.env.get("DISPLAY", "")
    if probe.display(probe.env):
        return Check("display", True, f"X display {display} reachable: preview window works")
    why = f"cannot connect to X display {display}" if display else "DISPLAY is not set"
    return Check("display", False, f"{why}: no preview window",
                 "run from a desktop session (XWayland on Wayland); without a display,"
                 " live needs the virtual camera")


def run_checks(probe: Optional[Probe] = None, *, software: bool = True) -> List[Check]:
    """Everything live needs. A virtual camera or a display must exist (for the default
    sinks); a camera need not (the demo works without)."""
    probe = probe or Probe()
    checks = software_checks() if software else []
    if not devices.current().device_nodes:
        # A Windows or macOS desktop always shows the preview, so live works without the
        # virtual camera (and retries it): a missing one is a warning, as beside a display.
        vcam = desktop_vcam_check(probe)
        vcam.required = False
        return checks + [vcam] + camera_checks(probe)
    params = devices.loopback_parameters(probe.host)
    device_checks = module_check(params)
    more, vcam_ok = vcam_checks(probe, params is not None)
    device_checks += more
    display = display_check(probe)
    display_ok = display.ok
    for c in device_checks:  # either output is enough: the other one becomes a warning
        c.required = c.required and not display_ok
    display.required = not vcam_ok
    return checks + device_checks + camera_checks(probe) + [display]


def report(checks: List[Check]) -> Tuple[List[str], bool]:
    """The lines to print and whether live will work."""
    lines, ok = [], True
    for check in checks:
        mark = "ok" if check.ok else "FAIL" if check.required else "warn"
        lines.append(f"[{mark}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"       fix: {check.fix}")
        ok = ok and (check.ok or not check.required)
    warned = any(not c.ok for c in checks)
    lines.append(("live will work" + (" (see the warnings)" if warned else "")) if ok
                 else "live will not work until the FAIL lines are fixed")
    return lines, ok


def device_lines(probe: Optional[Probe] = None) -> List[str]:
    """`backdrop devices`: cameras with their formats, and virtual cameras with their state."""
    probe = probe or Probe()
    lines = []
    cams = [c for c in camera_checks(probe) if c.name.startswith("camera ")]
    lines.append("cameras:" if cams else "cameras: none (use --source demo, or plug in a webcam)")
    lines += [f"  {c.name[len('camera '):]}  {c.detail}" for c in cams]
    if not devices.current().device_nodes:
        ok, detail = probe.vcam()
        return lines + (["virtual cameras:", f"  {detail}  opens"] if ok else
                        [f"virtual cameras: none; {detail}"])
    vcams, _ = vcam_checks(probe, loaded=True)
    vcams = [c for c in vcams if c.name.startswith("virtual camera ")]
    loaded = devices.loopback_parameters(probe.host) is not None
    lines.append("virtual cameras:" if vcams else "virtual cameras: none (v4l2loopback is "
                 f"{'loaded but made no devices' if loaded else 'not loaded'};"
                 " see `backdrop doctor`)")
    lines += [f"  {c.name[len('virtual camera '):]}  {c.detail}" for c in vcams]
    return lines
