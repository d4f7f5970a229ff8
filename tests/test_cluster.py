"""`backdrop image --cluster` and `--skip-existing`: a real Ray cluster of two nodes (a head
and a worker, each `ray start` as its own process, on 127.0.0.1 and 127.0.0.2), the real
model, and the command run as a user runs it (a subprocess, so Ray's state stays out of
pytest). The fault test kills the worker node's raylet while its actor is inside a batch.

Skipped where Ray is not installed; `./dev test` (and so CI) installs it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from backdrop.cli.main import main

REPO = Path(__file__).resolve().parents[1]
SAMPLES = [REPO / "src" / "backdrop" / "assets" / "astronaut.png", REPO / "assets" / "samples" / "coffee.png",
           REPO / "assets" / "samples" / "chelsea.png", REPO / "assets" / "samples" / "rocket.jpg"]
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install 'backdrop[cluster]')")
RAY = [sys.executable, "-m", "ray.scripts.scripts"]     # `ray`, from this very environment
# The test cluster listens on loopback only: no token; node deaths noticed in ~3 s, not ~30.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "1000",
           "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "3"}
START_TIMEOUT_S = 180


def _env() -> dict:
    env = dict(os.environ, **RAY_ENV)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _children(pid: int):
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                yield int(entry.name)


class TwoNodeCluster:
    """`ray start --block` for a head and a worker node, each with its own temp folder; the
    blocking `ray start` processes own their nodes, so stopping them (and anything left
    whose command line names our temp folders) stops exactly this cluster."""

    def __init__(self):
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.root = tempfile.mkdtemp(prefix="bdray")   # short: Ray's socket paths must fit
        self.procs = {}

    def _start(self, name: str, *args: str) -> None:
        temp = os.path.join(self.root, name)
        log = open(os.path.join(self.root, f"{name}.log"), "wb")
        self.procs[name] = subprocess.Popen(
            [*RAY, "start", "--block", "--num-cpus", "1", "--object-store-memory", "80000000",
             "--temp-dir", temp, "--disable-usage-stats", *args],
            stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
        log.close()
        self._wait_started(name)

    def _wait_started(self, name: str) -> None:
        log = Path(self.root, f"{name}.log")
        deadline = time.monotonic() + START_TIMEOUT_S
        while b"block forever" not in log.read_bytes():
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ray start ({name}) did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def start(self) -> "TwoNodeCluster":
        self._start("head", "--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
                    "--include-dashboard=false")
        self._start("worker", "--address", self.address, "--node-ip-address", "127.0.0.2")
        return self

    def worker_raylet(self) -> int:
        pids = [p for p in _children(self.procs["worker"].pid) if "/raylet " in _cmdline(p)]
        assert pids, "the worker node has no raylet"
        return pids[0]

    def worker_actor_busy(self, raylet: int) -> bool:
        """Ray titles an actor's process `ray::ImageActor.run` while it runs a batch."""
        return any("ImageActor.run" in _cmdline(p) for p in _children(raylet))

    def stop(self) -> None:
        for name in ("worker", "head"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        for entry in Path("/proc").iterdir():      # workers Ray put in process groups of their own
            if entry.name.isdigit() and self.root in _cmdline(int(entry.name)):
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    if not HAVE_RAY:
        pytest.skip("Ray is not installed (pip install 'backdrop[cluster]')")
    c = TwoNodeCluster()
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """200 small photos: crops of the four sample pictures, 72 to 128 px."""
    folder = tmp_path_factory.mktemp("shots")
    rng = np.random.default_rng(15)
    pictures = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in SAMPLES]
    for i in range(200):
        picture = pictures[i % len(pictures)]
        h, w = picture.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 0.9))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        size = int(rng.integers(72, 129))
        crop = cv2.resize(picture[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"shot{i:03d}.png"), crop)
    return folder


def _backdrop(*args, cluster=None, cwd=None) -> subprocess.Popen:
    env = _env()
    if cluster is not None:
        env["RAY_ADDRESS"] = cluster.address
    return subprocess.Popen([sys.executable, "-m", "backdrop", "image", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                            cwd=cwd)


def _finish(proc: subprocess.Popen, timeout: float = 600):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _check_outputs(inputs: Path, out: Path, names) -> None:
    """Every output decodes, with alpha, at its input's size; nothing else is in the folder
    (no temp file, no second copy)."""
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for name in names:
        image = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        source = cv2.imread(str(inputs / name), cv2.IMREAD_COLOR)
        assert image is not None, f"{name} does not decode"
        assert image.shape == source.shape[:2] + (4,)


def test_address_forms_and_a_mistyped_one(capsys):
    from backdrop.offline.cluster import parse_address

    for ok in ("local", "auto", "ray://head.example:10001", "10.0.0.5:6379"):
        assert parse_address(ok) == ok
    with pytest.raises(SystemExit) as e:
        main(["image", "x.png", "--cluster", "head.example"])
    assert e.value.code == 2 and "ray://HOST:PORT" in capsys.readouterr().err


def test_without_ray_one_line_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)     # what `import ray` does when it is missing
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.imread(str(SAMPLES[0])))
    assert main(["image", str(photo), "-o", str(tmp_path / "out.png"), "--cluster", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'backdrop[cluster]'" in err[0]
    assert not (tmp_path / "out.png").exists()


def test_skip_existing_needs_every_file_of_a_task(tmp_path):
    from backdrop.offline.batch import pending
    from backdrop.offline.image import ImageTask

    (tmp_path / "a.png").write_bytes(b"done")
    (tmp_path / "b.png").write_bytes(b"done")
    (tmp_path / "b.check.png").write_bytes(b"done")
    tasks = [ImageTask("a.jpg", str(tmp_path / "a.png"), str(tmp_path / "a.check.png")),
             ImageTask("b.jpg", str(tmp_path / "b.png"), str(tmp_path / "b.check.png")),
             ImageTask("c.jpg", str(tmp_path / "c.png")),
             ImageTask("d.jpg", str(tmp_path / "b.png"), sheet=str(tmp_path / "d.sheet.png"))]
    todo, done = pending(tasks)
    assert [t.source for t in todo] == ["a.jpg", "c.jpg", "d.jpg"]
    assert [t.source for t in done] == ["b.jpg"]


def test_skip_existing_leaves_finished_outputs_alone(shots, tmp_path, capsys):
    out = tmp_path / "out"
    names = [f"shot{i:03d}.png" for i in range(3)]
    inputs = [str(shots / n) for n in names]
    assert main(["image", *inputs, "-o", str(out), "--jobs", "1", "--quality", "fast"]) == 0
    kept = os.stat(out / names[0])
    (out / names[1]).unlink()
    capsys.readouterr()
    assert main(["image", *inputs, "-o", str(out), "--jobs", "1", "--quality", "fast",
                 "--skip-existing"]) == 0
    assert "1 written, 2 skipped" in capsys.readouterr().err
    assert os.stat(out / names[0]).st_mtime_ns == kept.st_mtime_ns
    _check_outputs(shots, out, names)


def test_a_busy_machine_gets_a_second_try_at_starting_ray():
    from backdrop.errors import BackdropError
    from backdrop.offline.cluster import _start

    class SlowRay:
        def __init__(self, failures):
            self.failures, self.calls, self.shutdowns = failures, 0, 0

        def init(self, **kwargs):
            self.calls += 1
            if self.calls <= self.failures:    # what Ray raises when the raylet registers late
                raise Exception("The current node timed out during startup. This could happen")

        def shutdown(self):
            self.shutdowns += 1

    ray = SlowRay(failures=1)
    _start(ray, {"address": "local"}, tries=2)
    assert ray.calls == 2 and ray.shutdowns == 1
    with pytest.raises(BackdropError, match="too busy"):
        _start(SlowRay(failures=2), {"address": "local"}, tries=2)


def test_urls_go_through_fsspec(shots, capsys):
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    names = [f"shot{i:03d}.png" for i in range(3)]
    for name in names:
        memory.pipe(f"/in15/{name}", (shots / name).read_bytes())
    memory.pipe("/in15/broken.png", b"not an image")
    args = ["image", "memory://in15/", "-o", "memory://out15/", "--jobs", "1", "--quality", "fast"]
    try:
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "memory://in15/broken.png" in err and "3 written, 1 failed" in err
        for name in names:
            data = np.frombuffer(memory.cat(f"/out15/{name}"), np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
            assert image.shape == cv2.imread(str(shots / name)).shape[:2] + (4,)
        assert main(args + ["--skip-existing"]) == 1
        assert "0 written, 3 skipped (already there), 1 failed" in capsys.readouterr().err
    finally:
        memory.rm("/in15", recursive=True)
        memory.rm("/out15", recursive=True)


@needs_ray
def test_cluster_output_is_byte_identical_and_a_corrupt_input_fails_alone(cluster, shots, tmp_path):
    """Relative paths everywhere (inputs, outputs, a background picture, an overlay): the
    workers run in other folders."""
    names = [f"shot{i:03d}.png" for i in range(0, 200, 40)]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in names:
        (inputs / name).write_bytes((shots / name).read_bytes())
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 50)
    cv2.imwrite(str(tmp_path / "bg.png"), cv2.imread(str(SAMPLES[1])))
    logo = np.zeros((24, 24, 4), np.uint8)
    logo[4:20, 4:20] = (0, 0, 255, 200)
    cv2.imwrite(str(tmp_path / "logo.png"), logo)
    options = ["--background", "bg.png", "--overlay", "logo.png"]
    code, err = _finish(_backdrop("in", "-o", "ray", *options, "--cluster", "auto",
                                  cluster=cluster, cwd=tmp_path))
    assert code == 1, err
    assert "in/broken.png" in err and f"{len(names)} written, 1 failed" in err
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(names)
    code, err = _finish(_backdrop("in", "-o", "pool", *options, "--jobs", "2", cwd=tmp_path))
    assert code == 1, err
    for name in names:
        ours = cv2.imread(str(tmp_path / "ray" / name), cv2.IMREAD_UNCHANGED)
        assert ours.shape == cv2.imread(str(inputs / name)).shape, "an opaque composite"
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "pool" / name).read_bytes(), name


@needs_ray
def test_an_interrupted_cluster_run_finishes_with_skip_existing(cluster, shots, tmp_path):
    names = sorted(p.name for p in shots.iterdir())[:60]
    inputs = [shots / n for n in names]
    out = tmp_path / "out"
    args = [*inputs, "-o", out, "--subject", "person", "--cluster", "auto"]
    proc = _backdrop(*args, cluster=cluster)
    deadline = time.monotonic() + 300
    while not (out.is_dir() and len([p for p in out.iterdir() if not p.name.startswith(".")]) >= 10):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    code, err = _finish(proc)
    assert code == 130, err
    done = {p.name: os.stat(p) for p in out.iterdir()}
    assert 10 <= len(done) < 60 and not [n for n in done if n.startswith(".")], sorted(done)
    code, err = _finish(_backdrop(*args, "--skip-existing", cluster=cluster))
    assert code == 0, err
    assert f"{60 - len(done)} written, {len(done)} skipped" in err
    for name, before in done.items():
        assert os.stat(out / name).st_mtime_ns == before.st_mtime_ns, f"{name} was redone"
    _check_outputs(shots, out, names)


@needs_ray
def test_a_video_runs_as_one_task_with_the_same_bytes(cluster, tmp_path):
    from backdrop.io.sources import DemoSource
    from backdrop.io.videowrite import VideoFileSink

    clip = tmp_path / "clip.mp4"
    demo = DemoSource(width=160, height=120, fps=30)
    with VideoFileSink(path=str(clip), width=160, height=120, fps=30) as sink:
        for _ in range(8):
            sink.send(demo.read())
    env = dict(_env(), RAY_ADDRESS=cluster.address)
    runs = {}
    for name, extra in (("local", []), ("ray", ["--cluster", "auto"])):
        out = tmp_path / f"{name}.mp4"
        proc = subprocess.run([sys.executable, "-m", "backdrop", "video", str(clip), "-o", str(out),
                               "--subject", "person", *extra], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        assert "8 frames" in proc.stderr
        runs[name] = out.read_bytes()
    assert runs["ray"] == runs["local"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@needs_ray
def test_a_long_video_runs_in_chunks_as_tasks_like_jobs_2(cluster, tmp_path):
    """4 chunks (5 s, --chunk-seconds 1) as Ray tasks on the two nodes, joined here, against
    the same chunks on two local processes: the same frames, timestamps and masks."""
    from test_chunks import FRAMES, decode, make_clip

    clip = make_clip(tmp_path / "clip.mp4")
    env = dict(_env(), RAY_ADDRESS=cluster.address)
    runs = {}
    for name, extra in (("local", ["--jobs", "2"]), ("ray", ["--cluster", "auto"])):
        out = tmp_path / f"{name}.mp4"
        proc = subprocess.run([sys.executable, "-m", "backdrop", "video", str(clip), "-o", str(out),
                               "--mask", "--quality", "fast", "--subject", "person",
                               "--chunk-seconds", "1", *extra], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        assert f"{FRAMES} frames" in proc.stderr
        runs[name] = out
    assert "4 chunks on 2 cluster CPUs" in proc.stderr
    local, ray = decode(runs["local"]), decode(runs["ray"])
    assert len(ray["pts"]) == FRAMES and ray["errors"] == []
    assert ray["pts"] == local["pts"] and ray["audio"] == local["audio"]
    assert _masks(runs["ray"]) == _masks(runs["local"])
    assert runs["ray"].read_bytes() == runs["local"].read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@needs_ray
def test_an_interrupted_chunked_video_leaves_no_chunks(cluster, tmp_path):
    """Ctrl-C once a chunk is written (of 8), while the next ones start: the running tasks
    stop and the chunks' folder is removed; no video, nothing hidden left. (It was flaky:
    ray.cancel of a chunk just submitted crashed the driver, status 1 and not a word.)"""
    from backdrop.errors import EXIT_INTERRUPTED
    from test_chunks import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=300, audio=False)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "backdrop", "video", str(clip), "-o", str(out),
                             "--quality", "fast", "--subject", "person", "--chunk-seconds", "1",
                             "--cluster", "auto"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(_env(), RAY_ADDRESS=cluster.address))
    # Any chunk, not chunk 0: a warm worker can run chunks 1 to 7 while a cold one still
    # loads chunk 0's models, which then lives only for the moment before the join.
    chunks = tmp_path / ".out.mp4.chunks"
    _wait_for(proc, lambda: any(chunks.glob("chunk-*.mp4")))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "8 chunks on 2 cluster CPUs" in err and "no video was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@needs_ray
def test_kill_during_a_video_task_is_an_interrupt(cluster, tmp_path):
    """SIGTERM while the task writes a short video (one task): the same clean-up and message
    as Ctrl-C. (ray.init had made SIGTERM a bare exit with status 15, saying nothing.)"""
    from backdrop.errors import EXIT_INTERRUPTED
    from test_chunks import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=300, audio=False)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "backdrop", "video", str(clip), "-o", str(out),
                             "--quality", "fast", "--subject", "person", "--cluster", "auto"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(_env(), RAY_ADDRESS=cluster.address))
    _wait_for(proc, lambda: any(tmp_path.glob(".out.mp4.*.part.mp4")))    # its temp file
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "interrupted" in err and "no video was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended first: {proc.communicate()[1][-2000:]}"
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the run never got there: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)


def _masks(path: Path) -> list:
    import av

    with av.open(str(path)) as c:
        return [frame.to_ndarray(format="gray").tobytes() for frame in c.decode(video=0)]


@needs_ray
def test_losing_a_node_mid_batch_loses_nothing(cluster, shots, tmp_path):
    """Runs last: the worker node stays dead."""
    out = tmp_path / "out"
    raylet = cluster.worker_raylet()
    started = time.monotonic()
    proc = _backdrop(shots, "-o", out, "--subject", "person", "--cluster", "auto", cluster=cluster)
    # mid-run: a good part written, and the worker node's actor inside a batch
    while not (len(list(out.glob("*.png"))) >= 40 and cluster.worker_actor_busy(raylet)):
        assert proc.poll() is None, "the batch ended before the worker node's actor ran:" \
            f" {proc.communicate()[1][-2000:]}"
        time.sleep(0.02)
    written_before = len(list(out.glob("*.png")))
    os.kill(raylet, signal.SIGKILL)
    code, err = _finish(proc)
    took = time.monotonic() - started
    assert code == 0, err
    assert "200 written, 0 failed" in err
    assert "Ray worker(s) lost" in err, err
    _check_outputs(shots, out, sorted(p.name for p in shots.iterdir()))
    lost = [line for line in err.splitlines() if "lost" in line]
    print(f"\nnode killed after {written_before} outputs; {lost[0]}; whole run {took:.1f} s")


class _Ref:
    def __init__(self, run):
        self.run = run


class FakeRay:
    """Ray at its boundary, for the driver's bookkeeping: actors run a batch when its result
    is asked for; an actor given an input named in `kills` dies with every call it holds
    (as a node does), `kills[name]` times for that input."""

    class exceptions:
        class RayError(Exception):
            pass

        class RayTaskError(RayError):
            cause = None

    def __init__(self, kills, start_error=None):
        self.kills = dict(kills)
        self.ran = []
        self.start_error = start_error

    def is_initialized(self):
        return True

    def cluster_resources(self):
        return {"CPU": 2.0}

    def put(self, value):
        return value

    def kill(self, actor, no_restart=True):
        actor.dead = True

    def wait(self, refs, num_returns=1, timeout=None):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref.run()

    def remote(self, **options):
        fake = self

        class Actor:
            dead = False

            def __init__(self):
                self.ready = type("M", (), {"remote": lambda _: _Ref(self._ready)})()
                self.run = type("M", (), {"remote": lambda _, tasks: _Ref(lambda: self._run(tasks))})()

            def _ready(self):
                if fake.start_error:
                    raise fake.exceptions.RayError(f"The actor died in __init__:\n{fake.start_error}")
                return True

            def _run(self, tasks):
                from backdrop.offline.image import ImageResult

                if self.dead:
                    raise fake.exceptions.RayError("actor died")
                for task in tasks:
                    name = os.path.basename(task.source)
                    if fake.kills.get(name, 0) > 0:
                        fake.kills[name] -= 1
                        self.dead = True
                        raise fake.exceptions.RayError("actor died")
                fake.ran.extend(t.source for t in tasks)
                return [ImageResult(t.source, written=[t.output]) for t in tasks]

        return lambda cls: type("Factory", (), {"remote": staticmethod(lambda *a: Actor())})()


def _fake_run(monkeypatch, kills, count=20, start_error=None):
    from backdrop.config import parse_background
    from backdrop.offline import cluster
    from backdrop.offline.image import ImageSettings, ImageTask

    fake = FakeRay(kills, start_error)
    monkeypatch.setattr(cluster, "import_ray", lambda: fake)
    settings = ImageSettings(quality="fast", background=parse_background("transparent"),
                             kind="cutout", fmt="png")
    tasks = [ImageTask(f"in/{i:02d}.png", f"out/{i:02d}.png") for i in range(count)]
    stats = cluster.ClusterStats()
    results = list(cluster.cluster_results(tasks, settings, address="auto", batch=4, stats=stats))
    return tasks, results, stats, fake


def test_a_lost_worker_has_its_batches_redone_once_each(monkeypatch):
    tasks, results, stats, fake = _fake_run(monkeypatch, {"09.png": 1})
    assert sorted(r.source for r in results) == sorted(t.source for t in tasks)
    assert all(r.error is None for r in results)
    assert sorted(fake.ran) == sorted(os.path.abspath(t.source) for t in tasks), \
        "an input ran twice or never"
    assert stats.lost_workers == 1 and stats.retried >= 4
    assert results[0].written == ["out/" + os.path.basename(results[0].source)], "paths as given"


def test_an_input_that_keeps_killing_its_worker_fails_alone(monkeypatch):
    tasks, results, stats, fake = _fake_run(monkeypatch, {"09.png": 99})
    failed = [r for r in results if r.error]
    assert [r.source for r in failed] == ["in/09.png"] and "died 3 times" in failed[0].error
    assert sorted(r.source for r in results) == sorted(t.source for t in tasks)
    assert sorted(fake.ran) == sorted(os.path.abspath(t.source) for t in tasks
                                      if t.source != "in/09.png")


def test_workers_that_cannot_start_end_the_run_with_their_reason(monkeypatch):
    from backdrop.errors import BackdropError

    with pytest.raises(BackdropError, match="No module named 'backdrop'"):
        _fake_run(monkeypatch, {}, start_error="ModuleNotFoundError: No module named 'backdrop'")


def test_a_runs_stop_file_is_its_own_and_seen_by_its_tasks(tmp_path):
    """Ctrl-C reaches a run's tasks through a hidden file beside the output; another run on
    the same output has its own, so it cannot stop this one's tasks."""
    import pickle

    from backdrop.offline.cluster_video import CHECK_EVERY_S, StopFile

    mine, other = (StopFile.beside(str(tmp_path / "out.mp4")) for _ in range(2))
    assert mine.path != other.path and os.path.basename(mine.path).startswith(".out.mp4.")
    task_copy = pickle.loads(pickle.dumps(mine))           # what a task gets
    assert not task_copy.is_set()
    other.set()
    time.sleep(CHECK_EVERY_S * 1.5)
    assert not task_copy.is_set()
    mine.set()
    time.sleep(CHECK_EVERY_S * 1.5)
    assert task_copy.is_set()
    mine.clear(), other.clear()
    assert list(tmp_path.iterdir()) == []
