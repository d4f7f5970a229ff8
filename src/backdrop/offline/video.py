"""`backdrop video`, the library side: deciding what the output is (video file with or
without alpha, or a folder of PNGs), refusing impossible combinations before any work, and
running every frame in order through one Pipeline (temporal smoothing is right here).

Nothing here prints; progress and the outcome go back to the command through callbacks and
the returned VideoOutcome.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from backdrop.config import BackgroundSpec, PipelineConfig, parse_background
from backdrop.errors import ConfigError, InputError, SinkError
from backdrop.io.videowrite import ALPHA_EXTENSIONS, CONTAINERS


@dataclass(frozen=True)
class VideoPlan:
    source: str
    output: str
    to_folder: bool
    ext: str                 # output container extension; "" for a folder
    background: BackgroundSpec
    kind: str                # mask | alpha | composite
    fps: Optional[float]     # frame rate for a folder of frames (None: 30)


@dataclass
class VideoOutcome:
    frames: int
    seconds: float
    problem: Optional[str]   # where reading stopped early or what was skipped, if anything
    audio: str               # "copied", "re-encoded", "none" or "dropped"


def output_is_folder(output: str) -> bool:
    return (output.endswith(("/", os.sep)) or os.path.isdir(output)
            or os.path.splitext(output)[1] == "")


def default_background(to_folder: bool, ext: str) -> str:
    """Transparent where the output can hold alpha (PNG frames, WebM, MOV), blur elsewhere."""
    return "transparent" if to_folder or ext in ALPHA_EXTENSIONS else "blur"


def plan_video(source: str, output: str, background: Optional[str], mask: bool,
               fps: Optional[float] = None) -> VideoPlan:
    if not os.path.exists(source):
        raise InputError(f"'{source}': no such file or folder")
    to_folder = output_is_folder(output)
    ext = "" if to_folder else os.path.splitext(output)[1].lower()
    if not to_folder and ext not in CONTAINERS:
        raise ConfigError(f"cannot write '{ext}' video: use {', '.join(CONTAINERS)},"
                          " or a folder (ending in /) for one PNG per frame")
    spec = parse_background(background or default_background(to_folder, ext))
    if mask:
        kind = "mask"
    elif spec.kind == "transparent":
        kind = "alpha"
        if not to_folder and ext not in ALPHA_EXTENSIONS:
            raise ConfigError(
                f"{ext} video has no alpha channel, so it cannot be transparent: write"
                f" {' or '.join(ALPHA_EXTENSIONS)} for a transparent video, or a folder"
                " (-o frames/) for PNG cut-outs, or pass --background blur, a colour or an image")
    else:
        kind = "composite"
    if fps is not None and not 1 <= fps <= 240:
        raise ConfigError(f"--fps must be between 1 and 240; got {fps:g}")
    _refuse_overwrite(source, output, to_folder)
    return VideoPlan(source, output, to_folder, ext, spec, kind, fps)


def _refuse_overwrite(source: str, output: str, to_folder: bool) -> None:
    if not to_folder:
        if os.path.exists(output) and os.path.samefile(source, output):
            raise ConfigError(f"refusing to overwrite the input '{source}'; choose another -o")
        return
    if not (os.path.isdir(source) and os.path.isdir(output)
            and os.path.samefile(source, output)):
        return
    from backdrop.io.video import FrameFolderReader

    for path in FrameFolderReader(source).files:
        if path.lower().endswith(".png"):
            raise ConfigError(f"refusing to overwrite the input frame '{path}': write the"
                              " output frames into another folder")


def _render(frame, kind: str) -> np.ndarray:
    """The pipeline's buffers are reused next frame; everything returned here is a copy."""
    if kind == "mask":
        return frame.alpha.copy()
    if kind == "alpha":   # the subject's own colour on its outline, not the old background's
        colour = frame.image if frame.colour is None else frame.colour
        return np.dstack((colour, frame.alpha))
    return frame.image.copy()


def open_output(plan: VideoPlan, reader, stack: contextlib.ExitStack, path: str = "",
               audio: bool = True):
    """The output's sink; `path`: write the video there instead (a chunk's own file), and
    `audio`: carry the input's audio (chunks leave it to the join)."""
    from backdrop.io.videowrite import FrameFolderSink, VideoFileSink

    if plan.to_folder:
        return stack.enter_context(FrameFolderSink(plan.output))
    path = path or plan.output
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise SinkError(f"cannot create the folder '{parent}': {e.strerror}") from e
    # The sink writes a temp file beside the output and renames it into place when the
    # stack closes cleanly; on any error (Ctrl-C included) it deletes it instead.
    return stack.enter_context(VideoFileSink(
        path, fps=reader.fps, alpha=plan.kind == "alpha",
        audio=reader.audio if audio else None, start=reader.start))


def open_pipeline(plan: VideoPlan, quality: str, subject: str, fps: float, threads: int = 2):
    from backdrop.engine.pipeline import Pipeline

    engine_spec = BackgroundSpec("transparent") if plan.kind == "mask" else plan.background
    return Pipeline(PipelineConfig.preset(quality, background=engine_spec, subject=subject),
                    fps=float(fps), foreground=plan.kind != "mask", threads=threads)


def stream_frames(pipeline, produce: Callable, sink, kind: str,
                  on_frame: Callable[[], None], *, audio: bool = True) -> None:
    """Runs the frames of `produce(on_audio)` ((rgb, seconds, name) in order) through the
    pipeline into the sink. A frame named None goes through the pipeline (its state and
    look-ahead) but is not written: a chunk's warm-up and tail."""
    from backdrop.offline.stages import Prefetch, WriterThread

    with contextlib.ExitStack() as stack:
        # Reading, the pipeline and writing overlap on three threads (see stages.py); the
        # reader's audio packets travel with the frames, so the writer muxes them in order.
        frames = stack.enter_context(Prefetch(
            lambda put: produce((lambda packet: put(("audio", packet))) if audio else None)))
        writer = stack.enter_context(WriterThread(
            lambda what, value: sink.audio(value) if what == "audio" else sink.write(*value)))
        meta: collections.deque = collections.deque()
        slots: collections.deque = collections.deque()   # taken in step with the frames

        def video_frames():
            slot = -1
            for what, value in frames:
                if what == "audio":        # may go a frame early: the muxer orders by time
                    writer.submit("audio", value)
                    continue
                rgb, seconds, name = value
                slot = slot_of(seconds, pipeline.fps, slot)
                meta.append((seconds, name))
                slots.append(slot)
                yield rgb

        # the whole file is there: smoothing may also look at the next frame
        for result in pipeline.process_sequence(video_frames(), slots=iter(slots.popleft, None)):
            seconds, name = meta.popleft()
            if name is not None:
                writer.submit("video", (_render(result, kind), seconds, name))
                on_frame()
        writer.finish()


def slot_of(seconds: Optional[float], fps: float, last: int = -1) -> int:
    """A frame's place in its file in frame durations, from its own timestamp: the same in
    a chunk as in the whole run, whatever frames could not be decoded before it (a
    recording cut in the middle of a group of pictures, a damaged packet, an unreadable
    file in a folder). A frame without a time follows the one before it."""
    return last + 1 if seconds is None else round(seconds * fps)


def _audio_outcome(sink, reader) -> str:
    if reader.audio is None:
        return "none"
    return getattr(sink, "audio_mode", "dropped")


def run_video(plan: VideoPlan, quality: str, *, subject: str = "auto",
              on_start: Callable[[int], None] = lambda total: None,
              on_frame: Callable[[], None] = lambda: None) -> VideoOutcome:
    """Process every readable frame. Raises InputError when not one frame could be read."""
    from backdrop.io.video import nothing_decoded, open_reader

    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(open_reader(plan.source, plan.fps))
        pipeline = stack.enter_context(open_pipeline(plan, quality, subject, reader.fps))
        sink = open_output(plan, reader, stack)
        on_start(reader.expected)
        stream_frames(pipeline, reader.frames, sink, plan.kind, on_frame)
        if reader.count == 0:
            raise nothing_decoded(reader)
        audio = _audio_outcome(sink, reader)
    return VideoOutcome(reader.count, time.monotonic() - started, reader.problem, audio)
