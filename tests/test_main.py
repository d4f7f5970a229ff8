"""The command line's exit codes: one per kind of problem, so scripts can tell them apart
(and none of them is argparse's 2 unless it is a usage or config mistake)."""

import importlib

import pytest

from backdrop import errors
from backdrop.cli.main import build_parser, main
from backdrop.engine import segment
from backdrop.io import camera, vcam

LIVE = ["live", "--source", "demo", "--width", "160", "--height", "120", "--frames", "2"]


def error_line(capsys):
    err = capsys.readouterr().err
    lines = [m for m in err.splitlines() if m.startswith("backdrop: error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_every_error_class_has_its_own_exit_code():
    classes = [errors.ConfigError, errors.InputError, errors.SourceError, errors.SinkError,
               errors.VirtualCameraError, errors.ModelError]
    codes = [c.exit_code for c in classes]
    assert codes == [2, 3, 4, 5, 6, 7]
    assert errors.BackdropError.exit_code == 1
    assert not {0, 1, 130} & set(codes)


def test_a_usage_mistake_exits_2_like_argparse(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["live", "--no-such-flag"])
    assert exc.value.code == 2


def test_a_bad_setting_is_a_config_error(capsys):
    assert main(LIVE + ["--sink", "null", "--background", "#nope"]) == 2
    assert "#nope" in error_line(capsys)


def test_a_missing_input_file(tmp_path, capsys):
    assert main(["image", str(tmp_path / "nope.jpg")]) == 3
    assert "nope.jpg" in error_line(capsys)
    assert main(["live", "--source", str(tmp_path / "nope.mp4"), "--sink", "null"]) == 3
    assert "nope.mp4" in error_line(capsys)


def test_no_camera(monkeypatch, capsys):
    monkeypatch.setattr(camera, "list_cameras", lambda: [])
    assert main(["live", "--sink", "null", "--frames", "2"]) == 4
    assert "no camera found" in error_line(capsys)


def test_an_output_that_cannot_be_written(tmp_path, capsys):
    out = tmp_path / "missing" / "out.mp4"
    assert main(LIVE + ["--sink", str(out)]) == 5
    assert "does not exist" in error_line(capsys)


def test_no_virtual_camera(capsys):
    if vcam.list_virtual_cameras():
        pytest.skip("a v4l2loopback device exists here")
    assert main(LIVE + ["--sink", "vcam"]) == 6
    assert "v4l2loopback" in error_line(capsys)


def test_a_model_that_cannot_be_found(monkeypatch, capsys):
    for name, info in list(segment.MODELS.items()):
        monkeypatch.setitem(segment.MODELS, name, segment.ModelInfo(
            name, "modules/nowhere/missing.tflite", info.input_size))
    assert main(LIVE + ["--sink", "null"]) == 7
    assert "missing.tflite" in error_line(capsys)


def test_interrupted_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    cli = importlib.import_module("backdrop.cli.main")   # the package's `main` is the function
    monkeypatch.setattr(cli, "cmd_devices", interrupted)
    assert main(["devices"]) == 130


def test_the_table_is_in_the_help():
    text = " ".join(build_parser().format_help().split())
    assert "exit status:" in text
    for code, words in [(0, "done"), (1, "some inputs failed"), (2, "usage or configuration"),
                        (3, "input file"), (4, "camera"), (5, "output"), (6, "virtual camera"),
                        (7, "model"), (130, "interrupted")]:
        assert f" {code} {words}" in text, (code, words)


def test_a_batch_worker_that_cannot_start_exits_with_its_errors_own_code(monkeypatch):
    """With --jobs N the error crosses a process boundary as text; its code must come too
    (a missing model is 7 whether one process ran or several)."""
    from backdrop.offline.batch import fatal_error
    from backdrop.config import parse_background
    from backdrop.offline import image

    def broken(settings, **kw):
        raise errors.ModelError("model x not found; reinstall backdrop")

    monkeypatch.setattr(image, "ImageWorker", broken)
    monkeypatch.setattr(image, "_worker", None)
    monkeypatch.setattr(image.signal, "signal", lambda *a: None)   # workers ignore Ctrl-C; we must not
    settings = image.ImageSettings(quality="fast", background=parse_background("transparent"),
                                   kind="cutout", fmt="png")
    image.init_worker(settings, hide_native=False)
    result = image.run_in_worker(image.ImageTask("a.jpg", "a.png", None))
    assert result.fatal and result.exit_code == errors.ModelError.exit_code == 7
    error = fatal_error(result)
    assert isinstance(error, errors.BackdropError) and error.exit_code == 7
    assert str(error) == "model x not found; reinstall backdrop"


@pytest.mark.parametrize("flag,value", [("--fps", "0"), ("--fps", "-30"), ("--fps", "nan"),
                                        ("--chunk-seconds", "-5"), ("--chunk-seconds", "abc")])
def test_video_numbers_must_be_above_zero(flag, value, capsys):
    """A frame rate or chunk length of 0 or less is a usage error before any file is opened."""
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["video", "in.mp4", "-o", "out.mp4", flag, value])
    assert stop.value.code == 2
    assert f"expected a number above 0, got '{value}'" in capsys.readouterr().err
