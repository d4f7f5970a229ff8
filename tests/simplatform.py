"""Run backdrop as if on Windows or macOS, on this Linux machine.

    python tests/simplatform.py win32|darwin [--vcam ok|missing|busy] [--report FILE] -- ARGS

Before backdrop is imported it:
- blocks the modules Windows lacks (`import fcntl` raises ImportError, as there): anything
  Linux-only imported at module level fails the run;
- sets sys.platform, which backdrop reads at call time to pick the system's code paths
  (numba and mediapipe, Linux builds here, are imported under the real one: see NATIVE);
- hides /proc, /sys and /dev/video* from backdrop's own code (third-party code is left alone):
  a touch is reported on stderr as "simplatform: backdrop touched ..." and fails as on macOS;
- puts a fake `pyvirtualcam` at its boundary: its Camera checks frames like the real one and
  records them, or raises pyvirtualcam's real error text for that system (--vcam missing,
  busy). The backends it offers are the real ones for the system (obs, unitycapture).
Then it calls backdrop's main(ARGS) and exits with its code; --report writes a JSON summary
of what the fake camera got.

What this cannot show: real DirectShow/AVFoundation capture, real OBS, real window systems.
"""

from __future__ import annotations

import argparse
import builtins
import enum
import io
import json
import os
import signal
import sys
import sysconfig
import types

# Linux builds here that choose their binaries and helpers by sys.platform at import (numba's
# llvmlite looks for a .dylib on macOS, mediapipe for winreg on Windows): they are imported
# under the real sys.platform, whenever something first imports them.
NATIVE = ("numba", "llvmlite", "mediapipe", "asyncio")   # asyncio: its Windows loop is native
REAL_PLATFORM = sys.platform
BLOCKED = ("fcntl", "termios", "tty", "pty", "resource", "grp")
HIDDEN = ("/proc", "/sys", "/dev/video")
BACKENDS = {"win32": ["obs", "unitycapture"], "darwin": ["obs"]}
# pyvirtualcam's own texts (native_windows_obs, native_windows_unity_capture,
# native_macos_obs_cmioextension, 0.15)
MISSING = {
    "obs-win32": "OBS Virtual Camera device not found! Did you install OBS?",
    "unitycapture": "No camera registered. Did you install any camera?",
    "obs-darwin": "OBS Virtual Camera is not installed in your system. Use the Virtual Camera"
                  " function in OBS 30.0 or later to trigger the installation and activate the"
                  " System Extension in System Settings. You may need to restart your machine"
                  " after that. [Device not found]",
}
BUSY = {"win32": "virtual camera output could not be started",
        "darwin": "Multiple cameras are not supported by this backend."}
STDLIB = sysconfig.get_paths()["stdlib"]


class FakeVirtualCamera:
    """What the fake pyvirtualcam.Camera saw: one per process."""

    opened: list = []

    def __init__(self, width, height, fps, *, fmt=None, device=None, backend=None,
                 print_fps=False):
        system, mode = sys.platform, os.environ.get("SIMPLATFORM_VCAM", "ok")
        tried = [backend] if backend else BACKENDS[system]
        for name in tried:
            if name not in BACKENDS[system]:
                raise KeyError(name)  # what pyvirtualcam does for a backend it does not have
        if mode == "missing":
            raise RuntimeError("\n".join(
                f"'{n}' backend: {MISSING.get(n, MISSING.get(f'{n}-{system}'))}" for n in tried))
        if mode == "busy":
            raise RuntimeError(f"'{tried[0]}' backend: {BUSY[system]}")
        self.args = {"width": width, "height": height, "fps": fps, "fmt": str(fmt),
                     "device": device, "backend": backend}
        self.device = "OBS Virtual Camera"
        self.frames, self.closed, self.means = 0, 0, []
        FakeVirtualCamera.opened.append(self)

    def send(self, frame):
        shape = (self.args["height"], self.args["width"], 3)
        if frame.shape != shape or str(frame.dtype) != "uint8":
            raise ValueError(f"unexpected frame shape: {frame.shape} != {shape}")
        if not frame.flags["C_CONTIGUOUS"]:
            raise ValueError("frame is not C-contiguous")
        self.frames += 1
        self.means.append(float(frame.mean()))

    def close(self):
        self.closed += 1


def fake_pyvirtualcam() -> types.ModuleType:
    module = types.ModuleType("pyvirtualcam")
    module.__version__ = "0.15.0"
    module.PixelFormat = enum.Enum("PixelFormat", ["RGB", "BGR", "RGBA", "GRAY", "I420"])
    module.Camera = FakeVirtualCamera
    return module


def _for_backdrop() -> bool:
    """Is the running call made by backdrop (through the standard library only)?"""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("backdrop"):
            return True
        if not frame.f_code.co_filename.startswith(STDLIB):
            return False
        frame = frame.f_back
    return False


def _hide(function):
    def guarded(path, *args, **kwargs):
        text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else ""
        if text.startswith(HIDDEN) and _for_backdrop():
            sys.stderr.write(f"simplatform: backdrop touched {text}\n")
            raise FileNotFoundError(2, "No such file or directory (simulated)", text)
        return function(path, *args, **kwargs)
    return guarded


def _native_as_itself(real_import):
    def importing(name, globals=None, locals=None, fromlist=(), level=0):
        top = name.partition(".")[0]
        if level or top not in NATIVE or top in sys.modules:
            return real_import(name, globals, locals, fromlist, level)
        simulated, sys.platform = sys.platform, REAL_PLATFORM
        try:
            return real_import(name, globals, locals, fromlist, level)
        finally:
            sys.platform = simulated
    return importing


def simulate(system: str) -> None:
    """Make this process look like `system` to backdrop. Call before importing backdrop."""
    if any(name == "backdrop" or name.startswith("backdrop.") for name in sys.modules):
        raise RuntimeError("simulate() must run before backdrop is imported")
    builtins.__import__ = _native_as_itself(builtins.__import__)
    for name in BLOCKED:
        sys.modules[name] = None  # `import fcntl` now raises ImportError
    sys.platform = system
    for name in ("listdir", "scandir", "stat", "lstat", "open", "readlink", "access"):
        setattr(os, name, _hide(getattr(os, name)))
    builtins.open = io.open = _hide(io.open)
    if system == "win32" and hasattr(signal, "SIGHUP"):
        del signal.SIGHUP
    if hasattr(os, "sched_getaffinity"):
        del os.sched_getaffinity
    sys.modules["pyvirtualcam"] = fake_pyvirtualcam()


def report() -> dict:
    return {"cameras": [{**cam.args, "frames": cam.frames, "closed": cam.closed,
                         "mean_first": cam.means[0] if cam.means else None}
                        for cam in FakeVirtualCamera.opened]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=sorted(BACKENDS))
    parser.add_argument("--vcam", choices=("ok", "missing", "busy"), default="ok")
    parser.add_argument("--report", help="write what the fake virtual camera got (JSON)")
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    opts, args = parser.parse_args(argv[:cut]), argv[cut + 1:]
    os.environ["SIMPLATFORM_VCAM"] = opts.vcam
    simulate(opts.system)
    from backdrop.cli.main import main as backdrop_main

    code = backdrop_main(args)
    if opts.report:
        with io.open(opts.report, "w", encoding="utf-8") as f:  # our write, not backdrop's
            json.dump(report(), f)
    return code


if __name__ == "__main__":
    sys.exit(main())
