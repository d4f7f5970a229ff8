"""Long videos in chunks: split on the input's keyframes, processed anywhere (local
processes, a Ray cluster), each encoded once into its own file, then joined by copying
packets, with the input's audio carried over. The single-run path is offline/video.py; a
chunk runs the same code on a stretch of the file.

Seams: chunk k starts decoding at a keyframe before its first frame and runs at least
WARMUP frames through the pipeline before it (processed, not written), from a frame the
whole run takes as if it were its first (engine/models.py REFIND: the crop box found afresh,
`auto`'s subject decided again; both runs place a frame by its timestamp, offline/video.py
slot_of), so that the crop box and the subject are the whole run's,
and the look-ahead smoothing and the matte's temporal hold have history; it also runs TAIL
frames past its end for the look-ahead. Same frame count and timestamps as the single run;
not byte for byte (each chunk's encoder starts afresh). Masks against the single run's
(benchmarks/chunk_seams.py, DAVIS parkour at 480x270, `best`, 3 seams, warm-up 8): IoU 1.0
on every frame with `--subject person` and with `auto`. Before REFIND a chunk found its own
box and decision: person 0.77-0.99 per frame; auto 1.0 with exactly 8 frames of warm-up,
but down to 0.01 on a frame with a longer one, where the chunk decided otherwise.

The API for schedulers (every argument and result is picklable):

    plan = plan_video(source, output, background, mask)      # offline/video.py
    chunked = plan_chunks(plan, chunk_seconds=30)             # reads packets, decodes nothing
    for chunk in chunked.chunks:                              # in any order, anywhere that
        run_chunk(chunked, chunk, quality, subject)           #  sees chunked.workdir
    join_chunks(chunked)                                      # after all: the output, atomically
    discard_chunks(chunked)                                   # on failure: the chunks' files

run_chunk writes `chunked.chunk_path(chunk)` atomically (a file there is complete) and
keeps one Pipeline per process between calls, so a worker loads the models once. For a
folder of PNGs the chunks write their frames in place and join_chunks has nothing to do.
A folder of frames splits anywhere (every frame is a "keyframe"). Inputs that cannot be
split (a video background, whose position in its loop depends on every earlier frame) get
a plan of one chunk.
run_local(...) is the `backdrop video --jobs N` driver: chunks on N spawned processes.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from backdrop.engine.models import REFIND
from backdrop.errors import SinkError
from backdrop.io.video import Span
from backdrop.offline.video import VideoOutcome, VideoPlan, slot_of

WARMUP = 8            # at least this many frames processed before a chunk's first one
TAIL = 1              # Pipeline.process_sequence's look-ahead
CHUNK_SECONDS = 30.0


@dataclass(frozen=True)
class Chunk:
    number: int
    span: Optional[Span]   # None: the whole input
    frames: int            # frames it writes (as the input's packets promise)


@dataclass(frozen=True)
class ChunkPlan:
    video: VideoPlan
    chunks: Tuple[Chunk, ...]
    workdir: str           # the chunks' files; "" for a folder of PNGs (written in place)

    def chunk_path(self, chunk: Chunk) -> str:
        return os.path.join(self.workdir, f"chunk-{chunk.number:05d}{self.video.ext}")

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.chunks)


@dataclass(frozen=True)
class ChunkOutcome:
    number: int
    frames: int
    problem: Optional[str]


def workdir_for(output: str) -> str:
    """Beside the output (same storage, so a cluster's nodes see it), hidden."""
    parent, name = os.path.split(os.path.abspath(output))
    return os.path.join(parent, f".{name}.chunks")


def splittable(plan: VideoPlan) -> bool:
    """Whether the input can be split: not with a video background (where it is in its
    loop depends on every frame before)."""
    from backdrop.io.images import is_image_path

    spec = plan.background
    return not (spec.kind == "file" and not is_image_path(spec.path))


def _starts(keyframes, count: int, target: int):
    """Chunk starts: the first keyframe at least `target` frames after the last start,
    unless fewer than half a chunk would be left after it."""
    starts = [0]
    for k in keyframes:
        if k - starts[-1] >= target and count - k >= target // 2:
            starts.append(k)
    return starts


def plan_chunks(plan: VideoPlan, *, chunk_seconds: float = CHUNK_SECONDS,
                warmup: int = WARMUP, index=None) -> ChunkPlan:
    """Chunks of about `chunk_seconds`, each starting on a keyframe of the input.
    `index`: the input's io.video.index_video(), where the caller has it already."""
    from backdrop.io.video import index_video

    if chunk_seconds <= 0 or warmup < 0:
        raise ValueError(f"chunk_seconds must be > 0 and warmup >= 0, got {chunk_seconds},"
                         f" {warmup}")
    workdir = "" if plan.to_folder else workdir_for(plan.output)
    if not splittable(plan):
        return ChunkPlan(plan, (Chunk(0, None, 0),), workdir)
    index = index or index_video(plan.source, plan.fps)
    pts, count = index.pts, len(index.pts)
    if not count:
        return ChunkPlan(plan, (Chunk(0, None, 0),), workdir)
    target = max(1, round(chunk_seconds * index.fps))
    starts = _starts(index.keyframes, count, target)
    chunks = []
    # Each frame's slot, as the run computes it from the frame's time (offline/video.py).
    slots = [slot_of(float(p * index.time_base), float(index.fps)) for p in pts]
    for number, (first, end) in enumerate(zip(starts, starts[1:] + [count])):
        # from the first frame of the stretch of REFIND slots the whole file's run takes as
        # if it were its first frame (engine/models.py), at least `warmup` frames before
        stretch = slots[max(0, first - warmup)] // REFIND * REFIND
        warm = bisect.bisect_left(slots, stretch)
        # the last keyframe at or before the warm-up (decoding starts there)
        before = bisect.bisect_right(index.keyframes, warm) - 1
        seek = index.keyframes[before] if before >= 0 else 0
        span = Span(seek=pts[seek], warm=pts[warm], first=pts[first],
                    stop=pts[end] if end < count else None, index=first, tail=TAIL)
        chunks.append(Chunk(number, span, end - first))
    return ChunkPlan(plan, tuple(chunks), workdir)


# -- one chunk ----------------------------------------------------------------------------
_pipeline: Dict[str, object] = {}   # this process's pipeline, kept between chunks


def _cached_pipeline(plan: VideoPlan, quality: str, subject: str, fps, threads: int):
    from backdrop.offline.video import open_pipeline

    key = repr((plan.kind, plan.background, quality, subject, float(fps), threads))
    if _pipeline.get("key") != key:
        close_pipeline()
        _pipeline["value"] = open_pipeline(plan, quality, subject, fps, threads)
        _pipeline["key"] = key
    return _pipeline["value"]


def close_pipeline() -> None:
    """Release the pipeline run_chunk keeps between calls (its models)."""
    old = _pipeline.pop("value", None)
    _pipeline.pop("key", None)
    if old is not None:
        old.close()


def run_chunk(chunked: ChunkPlan, chunk: Chunk, quality: str, subject: str = "auto", *,
              threads: int = 2, on_frame: Callable[[], None] = lambda: None) -> ChunkOutcome:
    """Process one chunk into chunked.chunk_path(chunk) (or the output folder), atomically.
    `on_frame` is called per written frame; an exception from it stops the chunk (its file
    is not written). `threads`: the general model's (1 where a process runs per core).
    Raises InputError when not one frame could be read."""
    from backdrop.io.video import nothing_decoded, open_reader
    from backdrop.offline.video import open_output, stream_frames

    plan = chunked.video
    path = "" if plan.to_folder else chunked.chunk_path(chunk)
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(open_reader(plan.source, plan.fps))
        pipeline = _cached_pipeline(plan, quality, subject, reader.fps, threads)
        sink = open_output(plan, reader, stack, path, audio=False)
        stream_frames(pipeline, lambda on_audio: reader.frames(span=chunk.span), sink,
                      plan.kind, on_frame, audio=False)
        if reader.count == 0:
            raise nothing_decoded(reader)
    problem = reader.problem
    if problem is None and chunk.span is not None and reader.count < chunk.frames:
        problem = (f"stopped at frame {chunk.span.index + reader.count} of"
                   f" {chunk.span.index + chunk.frames}: the file ends early (damaged)")
    return ChunkOutcome(chunk.number, reader.count, problem)


# -- joining ------------------------------------------------------------------------------
@dataclass(frozen=True)
class JoinOutcome:
    frames: int
    audio: str     # "copied", "re-encoded", "none" or "dropped"


def _packets_in_time_order(videos, audio):
    """The chunks' video packets in order, with the audio's merged in by time."""
    import heapq

    def timed(packets, offset=0.0):
        for p in packets:
            t = p.dts if p.dts is not None else p.pts
            yield float(t * p.time_base) - offset, p

    def chunks():
        for reader in videos:
            yield from timed(reader.packets())

    streams = [chunks()]
    if audio is not None:
        streams.append(timed(audio.packets(), audio.start))
    for _, packet in heapq.merge(*streams, key=lambda item: item[0]):
        yield packet


def join_chunks(chunked: ChunkPlan) -> JoinOutcome:
    """The chunks' files into the output by packet copy, with the input's audio (copied,
    or re-encoded once where the container needs it), atomically; then the chunks'
    files are removed. Raises SinkError when a chunk's file is missing."""
    from backdrop.io.video import PacketReader
    from backdrop.io.videowrite import VideoFileSink

    plan = chunked.video
    if plan.to_folder:
        return JoinOutcome(chunked.frames, "none")
    with contextlib.ExitStack() as stack:
        videos = []
        for chunk in chunked.chunks:
            path = chunked.chunk_path(chunk)
            if not os.path.exists(path):
                raise SinkError(f"chunk {chunk.number} of '{plan.output}' is missing ({path});"
                                " run it again")
            videos.append(stack.enter_context(PacketReader(path)))
        first = videos[0].stream
        for reader in videos[1:]:
            if bytes(reader.stream.codec_context.extradata or b"") != bytes(
                    first.codec_context.extradata or b""):
                raise SinkError(f"the chunks of '{plan.output}' were encoded with different"
                                f" settings ({reader.path}); run them again")
        audio = None if os.path.isdir(plan.source) else stack.enter_context(
            PacketReader(plan.source, "audio"))
        template = audio.stream if audio is not None else None
        sink = stack.enter_context(VideoFileSink(
            plan.output, fps=first.average_rate or 30, alpha=plan.kind == "alpha",
            audio=template, start=audio.start if audio is not None else 0.0,
            copy_from=first))
        for packet in _packets_in_time_order(videos, audio if template is not None else None):
            if packet.stream.type == "video":
                sink.copy(packet)
            else:
                sink.audio(packet)
        mode = sink.audio_mode
    discard_chunks(chunked)
    return JoinOutcome(sink.frames, mode)


def discard_chunks(chunked: ChunkPlan) -> None:
    """Remove the chunks' files (and any half-written one); a no-op when there are none."""
    if chunked.workdir:
        shutil.rmtree(chunked.workdir, ignore_errors=True)


def run_one_process(chunked: ChunkPlan, quality: str, subject: str = "auto", *,
                    on_frame: Callable[[], None] = lambda: None) -> VideoOutcome:
    """Every chunk in this process, then the join (tests, and schedulers' reference)."""
    started = time.monotonic()
    problems = []
    try:
        for chunk in chunked.chunks:
            outcome = run_chunk(chunked, chunk, quality, subject, on_frame=on_frame)
            problems += [outcome.problem] if outcome.problem else []
        joined = join_chunks(chunked)
    finally:
        discard_chunks(chunked)
    return VideoOutcome(joined.frames, time.monotonic() - started,
                        problems[0] if problems else None, joined.audio)

