"""What the commands write to stderr: our own lines only (no TFLite/MediaPipe/OpenCV lines,
which native code writes to fd 2 itself), less with -q, more with -v.

The commands run as real processes (`python -m backdrop`, this checkout's code first on the
path) and stderr is read from their fd 2, the only place native lines can be seen."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

from backdrop.cli.main import build_parser
from test_offline_video import make_video

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "src" / "backdrop" / "assets" / "astronaut.png"
NATIVE = re.compile(r"^INFO: Created TensorFlow|^[IWEF]\d{4}|XNNPACK|landmark_projection"
                    r"|absl::InitializeLog|inference_feedback", re.M)
LIVE = ["live", "--source", "demo", "--sink", "null", "--frames", "5",
        "--width", "320", "--height", "240", "--quality", "best"]   # best: the pose model too
BENCH = ["bench", "--resolution", "480p", "--mode", "blur", "--frames", "2", "--no-latency",
         "--quality", "fast"]


COMMANDS = [
    ["image", "photo.png", "-o", "fast.png", "--quality", "fast"],
    ["image", "photo.png", "-o", "balanced.png", "--quality", "balanced"],
    ["image", "photo.png", "-o", "best.png", "--quality", "best"],   # the pose model
    ["image", "photo.png", "-o", "mask.png", "--mask"],
    ["video", "clip.mp4", "-o", "out.mp4", "--quality", "best"],
    LIVE,
    BENCH,
    ["devices"],
    ["doctor"],
]
QUIET = [["image", "-q", "photo.png", "-o", "quiet.png"], LIVE + ["-q"], ["-q", "devices"]]
BATCH = ["image", "batch", "-o", "cutouts/", "--jobs", "2"]   # best: the pose model


class Commands:
    """`python -m backdrop ARGS` in `folder`, each run once. They take seconds each, mostly
    in imports and model loads, so all are started up front, three at a time, and each
    test waits for its own."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.pool = ThreadPoolExecutor(3)
        self.runs: Dict[Tuple[str, ...], Future] = {}

    def start(self, *args: str) -> None:
        if args not in self.runs:
            self.runs[args] = self.pool.submit(self._run, args)

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        self.start(*args)
        return self.runs[args].result()

    def _run(self, args: Tuple[str, ...]) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        env.pop("DISPLAY", None)
        return subprocess.run([sys.executable, "-m", "backdrop", *args], cwd=self.folder,
                              env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=300)


def lines(text: str) -> list:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def backdrop(tmp_path_factory) -> Iterator[Commands]:
    folder = tmp_path_factory.mktemp("logging")
    shutil.copy(ASTRONAUT, folder / "photo.png")
    make_video(folder / "clip.mp4", frames=6, audio=False)
    (folder / "batch").mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(ASTRONAUT, folder / "batch" / name)
    (folder / "batch" / "c.png").write_text("not an image")
    commands = Commands(folder)
    for args in COMMANDS + QUIET + [LIVE + ["-v"], BATCH]:
        commands.start(*args)
    yield commands
    commands.pool.shutdown(wait=True)


@pytest.mark.parametrize("args", COMMANDS, ids=[
    "image-fast", "image-balanced", "image-best", "image-mask", "video", "live", "bench",
    "devices", "doctor"])
def test_no_native_lines_on_stderr(backdrop, args):
    run = backdrop(*args)
    # doctor exits 1 here: no virtual camera, no display
    assert run.returncode == (1 if args[0] == "doctor" else 0), run.stderr
    assert not NATIVE.findall(run.stderr), run.stderr
    assert "Traceback" not in run.stderr
    if args[0] in ("image", "video"):
        assert run.stderr.startswith("backdrop: wrote"), run.stderr
    if args[0] == "live":
        assert "stopped after" in lines(run.stderr)[-1]


@pytest.mark.parametrize("args", QUIET, ids=["image", "live", "devices"])
def test_quiet_leaves_stderr_empty(backdrop, args):
    run = backdrop(*args)
    assert run.returncode == 0 and run.stderr == ""
    output = [a for a in args if a.startswith("quiet.")]
    assert not output or (backdrop.folder / output[0]).stat().st_size > 0


def test_verbose_says_more_than_the_default(backdrop):
    default, verbose = backdrop(*LIVE), backdrop(*LIVE, "-v")
    assert default.returncode == verbose.returncode == 0
    assert len(lines(verbose.stderr)) > len(lines(default.stderr)) >= 4
    assert re.search(r"^backdrop \S+, Python .*: live$", verbose.stderr, re.M)
    assert "settings: Config(" in verbose.stderr and "settings:" not in default.stderr


def test_a_user_error_still_shows_with_quiet(backdrop):
    run = backdrop("image", "-q", "missing.png")
    assert run.returncode == 3   # InputError
    assert run.stderr == "backdrop: error: 'missing.png': no such file or folder\n"


def test_worker_processes_are_quiet_too(backdrop):
    """A batch runs in spawned worker processes, which start their own models."""
    run = backdrop(*BATCH)
    assert run.returncode == 1 and not NATIVE.findall(run.stderr), run.stderr
    assert lines(run.stderr)[0].startswith("backdrop: skipped: 'batch/c.png'")
    assert lines(run.stderr)[-1].startswith("backdrop: 2 written, 1 failed")
    assert sorted(p.name for p in (backdrop.folder / "cutouts").iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize("argv,level", [
    (["live"], logging.INFO),
    (["-v", "live"], logging.DEBUG),
    (["live", "-v"], logging.DEBUG),
    (["-q", "image", "x.png"], logging.WARNING),
    (["image", "x.png", "--quiet"], logging.WARNING),
    (["-v", "video", "a.mp4", "-o", "b.mp4", "-q"], logging.WARNING),   # the last one wins
    (["bench", "-v"], logging.DEBUG),
    (["doctor", "-q"], logging.WARNING),
])
def test_verbosity_before_or_after_the_command(argv, level):
    assert build_parser().parse_args(argv).log_level == level


def test_verbose_and_quiet_together_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["devices", "-v", "-q"])
    assert "not allowed with" in capsys.readouterr().err
