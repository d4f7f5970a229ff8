"""Chunked video runs (offline/chunks.py, chunkpool.py): planned on real encoded files,
compared with the single run of the same options, joined files decoded back with PyAV."""

from __future__ import annotations

import os
from pathlib import Path

import av
import av.logging
import cv2
import numpy as np
import pytest

from backdrop.cli.main import main
from backdrop.engine.models import REFIND
from backdrop.errors import SinkError
from backdrop.io.video import index_video
from backdrop.offline import chunks
from backdrop.offline.chunks import join_chunks, plan_chunks, run_chunk, run_one_process
from backdrop.offline.video import plan_video, run_video, slot_of
from test_offline_video import mux_sine

ASTRONAUT = Path(__file__).resolve().parents[1] / "src" / "backdrop" / "assets" / "astronaut.png"
W, H, FPS, RATE, GOP, FRAMES = 160, 120, 30, 44100, 12, 150
FAST = ("fast", "person")        # quality, subject: the cheap pipeline for plumbing tests


def _frames(count: int):
    rgb = cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (W + 64, H + 64), interpolation=cv2.INTER_AREA)
    for i in range(count):   # the person drifts and bobs, so every frame differs
        x, y = 32 + round(30 * np.sin(i / 7)), 32 + round(20 * np.sin(i / 11))
        yield np.ascontiguousarray(rgb[y:y + H, x:x + W])


def make_clip(path: Path, frames: int = FRAMES, audio: bool = True) -> Path:
    """H.264 with a keyframe every GOP frames (and B-frames), and an AAC sine as long."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={
            "g": str(GOP), "keyint_min": str(GOP), "sc_threshold": "0", "bf": "2"})
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        sound = out.add_stream("aac", rate=RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
            mux_sine(out, sound, frames * RATE // FPS)
        for frame in _frames(frames):
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(video.encode(None))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("chunks") / "clip.mp4")


def decode(path: Path, codec: str = "") -> dict:
    """Every frame decoded, with its timestamp; the audio's length; FFmpeg's errors."""
    level = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    try:
        frames, audio, keys, seconds, logs = _decode(path, codec)
    finally:
        av.logging.set_level(level)
    return {"pts": [f.pts for f in frames], "formats": {f.format.name for f in frames},
            "audio": seconds, "keyframes": keys,
            "errors": [text for lvl, _, text in logs if lvl <= av.logging.ERROR]}


def _decode(path: Path, codec: str):
    with av.logging.Capture(True) as logs, av.open(str(path)) as c:
        video = c.streams.video[0]
        audio = c.streams.audio[0] if c.streams.audio else None
        decoder = av.CodecContext.create(codec, "r") if codec else video.codec_context
        frames, ticks, keys = [], 0, 0
        for p in c.demux(*c.streams.video[:1], *c.streams.audio[:1]):
            if p.stream.type == "video" and p.size:
                frames += decoder.decode(p)
                keys += p.is_keyframe
            elif p.stream.type == "audio":
                ticks += p.duration or 0
        frames += decoder.decode(None)
        seconds = None if audio is None else ticks * float(audio.time_base)
    return frames, audio, keys, seconds, logs


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a >= 128, b >= 128
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_chunks_start_on_keyframes_with_warm_up_before(clip):
    index = index_video(str(clip))
    assert len(index.pts) == FRAMES and index.keyframes[:3] == (0, GOP, 2 * GOP)
    plan = plan_video(str(clip), str(clip.with_name("x.mp4")), None, False)
    chunked = plan_chunks(plan, chunk_seconds=1.0, warmup=8)
    firsts = [c.span.index for c in chunked.chunks]
    # 1 s = 30 frames: the first keyframe at least that far after the last start
    assert firsts == [0, 36, 72, 108] and sum(c.frames for c in chunked.chunks) == FRAMES
    for before, chunk in zip(chunked.chunks, chunked.chunks[1:]):
        span = chunk.span
        assert before.span.stop == span.first == index.pts[span.index]
        # the warm-up: at least 8 frames, from the first frame of a stretch of REFIND
        # frame slots, where the single run takes a frame as if it were its first
        # (engine/models.py); here a frame's slot is its place
        warm = index.pts.index(span.warm)
        assert warm % REFIND == 0 and 8 <= span.index - warm < 8 + REFIND
        assert slot_of(float(span.warm * index.time_base), FPS) == warm
        assert span.seek == index.pts[warm // GOP * GOP]   # the keyframe before it
    assert chunked.chunks[-1].span.stop is None and chunked.workdir.endswith(".x.mp4.chunks")


def test_when_a_local_run_uses_chunks(clip, tmp_path):
    from backdrop.errors import ConfigError
    from backdrop.offline.chunkpool import local_plan

    plan = plan_video(str(clip), str(tmp_path / "out.mp4"), None, False)
    assert local_plan(plan, 2) is None                  # 5 s: shorter than two 10 s chunks
    assert local_plan(plan, 1, 1.0) is None             # one process: the single run
    assert len(local_plan(plan, 2, 1.0).chunks) == 4
    looping = plan_video(str(clip), str(tmp_path / "out.mp4"), str(clip), False)
    assert local_plan(looping, 2, 1.0) is None          # a video background: one run
    assert len(plan_chunks(looping, chunk_seconds=1.0).chunks) == 1
    with pytest.raises(ConfigError, match="--chunk-seconds"):
        local_plan(plan, 2, 0.0)


def _masks(folder: Path) -> list:
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob("*.png"))]


def test_chunked_masks_match_the_single_run_at_the_seams(tmp_path):
    """The default quality (crop tracker, tiles, look-ahead smoothing, temporal hold); the
    people-only subject, as `auto`'s general model costs 10x more a frame (its seams are
    measured by benchmarks/chunk_seams.py)."""
    clip = make_clip(tmp_path / "clip.mp4", 90, audio=False)
    single, chunked_out = tmp_path / "single", tmp_path / "chunked"
    run_video(plan_video(str(clip), f"{single}/", None, True), "best", subject="person")
    chunked = plan_chunks(plan_video(str(clip), f"{chunked_out}/", None, True),
                          chunk_seconds=0.8)
    assert len(chunked.chunks) == 4
    outcome = run_one_process(chunked, "best", "person")
    names = sorted(p.name for p in single.iterdir())
    assert sorted(p.name for p in chunked_out.iterdir()) == names and len(names) == 90
    assert outcome.frames == 90 and outcome.problem is None
    scores = [iou(a, b) for a, b in zip(_masks(single), _masks(chunked_out))]
    seams = [c.span.index + d for c in chunked.chunks[1:] for d in range(3)]
    assert min(scores[s] for s in seams) >= 0.99, [round(scores[s], 4) for s in seams]
    assert min(scores) >= 0.99


@pytest.mark.parametrize("ext, codec", [(".mp4", ""), (".webm", "libvpx-vp9"), (".mov", "")])
def test_joined_file_decodes_fully_with_the_single_runs_timestamps(clip, tmp_path, ext, codec):
    single, joined = tmp_path / f"single{ext}", tmp_path / f"joined{ext}"
    run_video(plan_video(str(clip), str(single), None, False), FAST[0], subject=FAST[1])
    chunked = plan_chunks(plan_video(str(clip), str(joined), None, False), chunk_seconds=1.0)
    outcome = run_one_process(chunked, *FAST)
    want, got = decode(single, codec), decode(joined, codec)
    assert len(got["pts"]) == FRAMES and got["pts"] == want["pts"] and got["errors"] == []
    assert got["formats"] == want["formats"]       # yuva420p for webm: the alpha survived
    assert got["keyframes"] >= len(chunked.chunks)  # each chunk starts on its own
    assert got["audio"] == pytest.approx(want["audio"], abs=0.03) and got["audio"] > 4.9
    assert outcome.audio == ("copied" if ext != ".webm" else "re-encoded")
    assert leftovers(tmp_path) == []


def test_a_folder_of_frames_splits_anywhere(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, rgb in enumerate(_frames(40)):
        cv2.imwrite(str(frames / f"f{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    single, joined = tmp_path / "single.mp4", tmp_path / "joined.mp4"
    run_video(plan_video(str(frames), str(single), None, False), *FAST[:1], subject=FAST[1])
    chunked = plan_chunks(plan_video(str(frames), str(joined), None, False), chunk_seconds=0.5)
    assert [c.span.index for c in chunked.chunks] == [0, 15, 30]
    # 40 frames: every warm-up starts on frame 0, the only REFIND frame before 30 - 8
    assert [c.span.warm for c in chunked.chunks] == [0] * 3
    run_one_process(chunked, *FAST)
    want, got = decode(single), decode(joined)
    assert got["pts"] == want["pts"] and len(got["pts"]) == 40 and got["errors"] == []
    assert leftovers(tmp_path) == []


def test_a_failing_chunk_leaves_no_files(clip, tmp_path, monkeypatch):
    from backdrop.engine.pipeline import Pipeline

    real, calls = Pipeline._render, {"n": 0}

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 70:                      # in the second chunk
            raise RuntimeError("boom")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_render", failing)
    out = tmp_path / "out.mp4"
    chunked = plan_chunks(plan_video(str(clip), str(out), None, False), chunk_seconds=1.0)
    with pytest.raises(RuntimeError, match="boom"):
        run_one_process(chunked, *FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_interrupted_local_run_leaves_no_files(clip, tmp_path):
    from backdrop.offline.chunkpool import run_local

    out = tmp_path / "out.mp4"
    chunked = plan_chunks(plan_video(str(clip), str(out), None, False), chunk_seconds=1.0)
    seen = {"n": 0}

    def ctrl_c() -> None:      # Ctrl-C reaches the parent while the workers are busy
        seen["n"] += 1
        if seen["n"] == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_local(chunked, *FAST, 2, on_frame=ctrl_c)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_chunk_failing_in_a_worker_stops_the_run_with_its_exit_code(clip, tmp_path):
    import shutil

    from backdrop.errors import BackdropError
    from backdrop.offline.chunkpool import run_local

    source = tmp_path / "in.mp4"
    shutil.copy(clip, source)
    chunked = plan_chunks(plan_video(str(source), str(tmp_path / "out.mp4"), None, False),
                          chunk_seconds=1.0)
    source.write_bytes(b"not a video any more")     # as if replaced after planning
    with pytest.raises(BackdropError, match="in.mp4") as caught:
        run_local(chunked, *FAST, 2)
    assert caught.value.exit_code == 3                # an unreadable input, as in one process
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_join_names_a_missing_chunk(clip, tmp_path):
    chunked = plan_chunks(plan_video(str(clip), str(tmp_path / "out.mp4"), None, False),
                          chunk_seconds=2.0)
    run_chunk(chunked, chunked.chunks[0], *FAST)
    assert os.path.exists(chunked.chunk_path(chunked.chunks[0]))
    with pytest.raises(SinkError, match="chunk 1 .* is missing"):
        join_chunks(chunked)
    chunks.discard_chunks(chunked)
    chunks.close_pipeline()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cli_jobs_2_runs_chunks_on_two_processes(clip, tmp_path, capsys):
    out = tmp_path / "out.mkv"
    assert main(["video", str(clip), "-o", str(out), "--jobs", "2", "--chunk-seconds", "1",
                 "--quality", "fast", "--subject", "person"]) == 0
    err = capsys.readouterr().err
    assert "4 chunks on 2 processes" in err and f"{FRAMES} frames" in err
    got = decode(out)
    assert len(got["pts"]) == FRAMES and got["audio"] > 4.9 and got["errors"] == []
    assert got["pts"] == sorted(got["pts"])
    assert leftovers(tmp_path) == []


def test_by_default_a_long_video_runs_in_chunks_on_every_core(clip, tmp_path, monkeypatch):
    """The chunked run's masks are the single run's (the test above), so it is the default
    where it pays: a video of 20 s or more, on more than one core."""
    from backdrop.offline.chunkpool import default_jobs, local_plan

    from backdrop.offline import batch

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    monkeypatch.setattr(batch, "available_memory", lambda: 8 << 30)   # room for 8
    assert default_jobs(None) == 3 and default_jobs(1) == 1
    long = make_clip(tmp_path / "long.mp4", 20 * FPS, audio=False)
    chunked = local_plan(plan_video(str(long), str(tmp_path / "out.mp4"), None, False),
                         default_jobs(None))
    assert chunked is not None and len(chunked.chunks) == 2       # 20 s: two chunks of 10
    assert local_plan(plan_video(str(clip), str(tmp_path / "o.mp4"), None, False),
                      default_jobs(None)) is None                 # 5 s: one run
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert default_jobs(None) == 1                                # one core: one run


def _resets(slots: list) -> list:
    """Where a run takes a frame as if it were its first (Pipeline.process_sequence)."""
    return [i for i, s in enumerate(slots) if i == 0 or s // REFIND != slots[i - 1] // REFIND]


def test_chunks_number_frames_as_the_whole_run_in_a_file_cut_mid_gop(tmp_path):
    """A recording cut in the middle of a group of pictures (its first keyframe lost): the
    first 19 packets cannot be decoded. Frames are placed by their own time, so a chunk
    takes the same frames as if they were first as the whole run does, and starts on one."""
    from backdrop.io.video import VideoFileReader

    whole, cut = tmp_path / "whole.mp4", tmp_path / "cut.mp4"
    with av.open(str(whole), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={
            "g": "20", "keyint_min": "20", "sc_threshold": "0", "bf": "0"})
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for i in range(160):
            rgb = np.full((48, 64, 3), i % 200, np.uint8)
            out.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(video.encode(None))
    with av.open(str(whole)) as src, av.open(str(cut), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        packets = [p for p in src.demux(src.streams.video[0]) if p.dts is not None]
        for packet in packets[1:]:                     # the first keyframe dropped
            packet.stream = stream
            dst.mux(packet)
    with VideoFileReader(str(cut)) as reader:
        times = [t for _, t, _ in reader.frames()]
    assert len(times) == 140                           # 19 + the dropped one are lost
    single = [slot_of(t, FPS) for t in times]
    chunked = plan_chunks(plan_video(str(cut), str(tmp_path / "o.mp4"), None, False),
                          chunk_seconds=1.5)
    assert len(chunked.chunks) >= 3
    single_resets = {times[i] for i in _resets(single)}
    for chunk in chunked.chunks[1:]:
        with VideoFileReader(str(cut)) as reader:
            got = [(t, name) for _, t, name in reader.frames(span=chunk.span)]
        slots = [slot_of(t, FPS) for t, _ in got]
        resets = {got[i][0] for i in _resets(slots)}
        written = [t for t, name in got if name is not None]
        assert resets <= single_resets                 # its first frame included
        assert {t for t in single_resets if written[0] <= t <= written[-1]} <= resets
        assert sum(name is None for _, name in got[:len(got) - 1]) >= chunks.WARMUP
