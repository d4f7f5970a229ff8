"""`backdrop doctor`: on this machine (no camera, no v4l2loopback, no display) and on fake
/sys, /dev and /proc trees showing the problems users meet."""

import os
from pathlib import Path

import pytest

from backdrop.cli import doctor
from backdrop.cli.main import main
from backdrop.cli.doctor import Probe, report, run_checks
from livefakes import build_tree, hold


def by_name(checks):
    return {c.name: c for c in checks}


@pytest.mark.skipif(os.path.isdir("/sys/module/v4l2loopback"), reason="v4l2loopback loaded")
def test_this_machine_has_no_virtual_camera_nor_display(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "[FAIL] v4l2loopback: kernel module not loaded: no virtual camera" in out
    fixes = [line for line in out if line.strip().startswith("fix:")]
    assert any("modprobe v4l2loopback" in f and "exclusive_caps=1" in f for f in fixes)
    assert any(line.startswith("[FAIL] display") for line in out)
    assert any(line.startswith("[warn] camera: none found") for line in out)  # demo works
    assert out[-1] == "live will not work until the FAIL lines are fixed"


def test_software_checks_pass_here():
    checks = by_name(doctor.software_checks())
    assert set(checks) == {"python", "mediapipe", "models", "ai-edge-litert", "numpy", "opencv",
                           "pyvirtualcam"}
    failing = [f"{c.name}: {c.detail}" for c in checks.values() if not c.ok]
    assert not failing
    assert checks["mediapipe"].detail == "0.10.21" and checks["opencv"].detail.startswith("cv2 ")


def test_opencv_without_its_contrib_modules_passes(monkeypatch):
    """Nothing in backdrop uses cv2.ximgproc (the guided filter is our own kernel), so a
    cv2 without it must not fail the check."""
    import cv2

    monkeypatch.delattr(cv2, "ximgproc")
    check = by_name(doctor.software_checks())["opencv"]
    assert check.ok, check.detail
    assert check.detail == f"cv2 {cv2.__version__}"


def probe_for(host, *, writable=True, display=False, formats=None):
    def access(path, mode):
        return writable or not path.endswith("video0")

    return Probe(host=host, access=access, env={}, display=lambda env: display,
                 formats=formats or (lambda path: [{"fourcc": "YUYV", "sizes": [(640, 480)]}]),
                 own_pid=1)


def test_module_without_exclusive_caps_and_a_device_without_permission(tmp_path):
    host = build_tree(tmp_path)
    params = Path(host.loopback_module, "parameters")
    (params / "exclusive_caps").write_text("N,N,N,N,N,N,N,N\n")
    (params / "devices").write_text("1\n")
    (params / "card_label").write_text("backdrop\n")
    hold(host, 4321, str(tmp_path / "dev/video0"), "zoom")
    checks = run_checks(probe_for(host, writable=False), software=False)
    c = by_name(checks)
    assert c["v4l2loopback"].ok and "exclusive_caps=N" in c["v4l2loopback"].detail
    caps = c["exclusive_caps"]
    assert not caps.ok and not caps.required and "Chrome" in caps.detail
    assert "modprobe -r v4l2loopback" in caps.fix and "exclusive_caps=1" in caps.fix
    vcam = c[f"virtual camera {tmp_path}/dev/video0"]
    assert not vcam.ok and vcam.required and "no permission" in vcam.detail
    assert "usermod -aG video" in vcam.fix and "zoom (4321)" in vcam.detail
    cam = c[f"camera {tmp_path}/dev/video1"]
    assert cam.ok and "USB Camera: YUYV 640x480" in cam.detail
    lines, ok = report(checks)
    assert not ok and lines[-1].startswith("live will not work")
    assert "[warn] exclusive_caps" in "\n".join(lines)


def test_a_display_alone_is_enough_and_the_vcam_problems_become_warnings(tmp_path):
    host = build_tree(tmp_path, loopback=False)
    checks = run_checks(probe_for(host, display=True), software=False)
    c = by_name(checks)
    assert not c["v4l2loopback"].ok and not c["v4l2loopback"].required
    assert c["display"].ok
    lines, ok = report(checks)
    assert ok and lines[-1] == "live will work (see the warnings)"
    assert any(line.startswith("[warn] v4l2loopback") for line in lines)


def test_a_working_vcam_without_display_is_enough(tmp_path):
    host = build_tree(tmp_path, camera=False)
    Path(host.loopback_module, "parameters", "exclusive_caps").write_text("Y,N,N,N\n")
    checks = run_checks(probe_for(host), software=False)
    c = by_name(checks)
    assert "exclusive_caps" not in c
    assert c[f"virtual camera {tmp_path}/dev/video0"].ok
    assert not c["display"].ok and not c["display"].required
    assert not c["camera"].ok and not c["camera"].required
    assert report(checks)[1]


def test_module_loaded_without_devices(tmp_path):
    host = build_tree(tmp_path, camera=False)
    os.remove(tmp_path / "dev/video0")
    c = by_name(run_checks(probe_for(host), software=False))
    assert "made no devices" in c["virtual camera"].detail
    assert "modprobe -r v4l2loopback" in c["virtual camera"].fix
