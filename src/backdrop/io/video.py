"""Reading video with PyAV (no ffmpeg executable): a video file or a folder of frames, in
order. The only place that opens a video file for reading; `backdrop video`, the live file
source and the looping video background all come through here (writing is in videowrite.py).

Frames come out as (H, W, 3) uint8 RGB; YUV and colour ranges exist only here, at the boundary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator, List, Optional, Tuple

import av
import numpy as np

from backdrop.errors import InputError
from backdrop.io.frames import Closing
from backdrop.io.images import IMAGE_KINDS, is_image_path, read_rgb

DEFAULT_FPS = Fraction(30)     # for frames that carry no rate (a folder, a broken header)
MAX_FPS = 1000                 # above this a container's rate is a time base, not a frame rate
# A decoded frame count this far short of what the container promises means the file ended
# early; the slack absorbs rounding of durations and streams a frame or two shorter.
_SHORT_FRAMES, _SHORT_RATIO = 3, 0.05

Frames = Iterator[Tuple[np.ndarray, Optional[float], str]]   # (rgb, seconds, name)


@dataclass(frozen=True)
class Span:
    """A stretch of a video file by its video stream's timestamps, for chunked runs.
    Decoding starts at the keyframe `seek` (frames before `warm` are decoded only); frames
    from `warm` on are yielded. Those from `first` up to `stop` (exclusive; None: the end)
    are named, numbered from `index`; the warm-up before them and `tail` frames after are
    yielded with the name None: they feed the pipeline's state but are not written."""

    seek: int
    warm: int
    first: int
    stop: Optional[int]
    index: int
    tail: int = 0


@dataclass(frozen=True)
class VideoIndex:
    """Every frame's timestamp of a file's video stream, from its packets (nothing decoded)."""

    time_base: Fraction
    pts: Tuple[int, ...]          # display order
    keyframes: Tuple[int, ...]    # positions in `pts` where decoding can start
    fps: Fraction


def _rate(fps: Optional[float]) -> Fraction:
    return Fraction(fps).limit_denominator(1001) if fps else DEFAULT_FPS


def _fps_of(stream, fallback: Optional[float]) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate and 0 < rate <= MAX_FPS else _rate(fallback)


def _duration_tag(stream) -> Optional[float]:
    """Matroska/WebM keep a stream's length in a 'DURATION' tag (HH:MM:SS.nnnnnnnnn)."""
    text = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    try:
        h, m, s = text.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except (AttributeError, ValueError):
        return None


def _expected_frames(container, stream, fps: Fraction) -> int:
    if stream.frames:
        return int(stream.frames)
    seconds = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    seconds = seconds or _duration_tag(stream)
    if seconds is None and container.duration:
        seconds = container.duration / av.time_base
    return round(seconds * fps) if seconds else 0


def _start_of(container) -> float:
    """Seconds before the first timestamp: outputs start at 0 (and audio moves with them)."""
    start = container.start_time
    return max(0.0, start / av.time_base) if start else 0.0


class VideoFileReader(Closing):
    """Decodes a video file's first video stream in order, handing audio packets to a
    callback so they can be copied to the output as they come. `fps` is the rate to assume
    when the file states none."""

    def __init__(self, path: str, fps: Optional[float] = None):
        self.path = path
        self.label = f"video {path}"
        self.container = self._open(path)
        if not self.container.streams.video:
            self.container.close()
            raise InputError(f"'{path}' has no video stream (is it an audio file?)")
        self.video = self.container.streams.video[0]
        # Slice threads only: frame threading hides decode errors and drops the frames in
        # flight when a damaged file ends, which is exactly when we must say where it stopped.
        self.video.thread_type = "SLICE"
        audio = self.container.streams.audio
        self.audio = audio[0] if audio else None
        self.fps = _fps_of(self.video, fps)
        self.expected = _expected_frames(self.container, self.video, self.fps)
        self.start = _start_of(self.container)
        self.problem: Optional[str] = None
        self.count = 0
        self._last_time: Optional[float] = None

    @staticmethod
    def _open(path: str):
        if not os.path.exists(path):
            raise InputError(f"'{path}': no such file")
        try:
            return av.open(path, metadata_errors="ignore")
        except av.error.FFmpegError as e:
            raise InputError(
                f"'{path}' is not a video FFmpeg can read ({e.strerror or e}); if it is a"
                " recording that stopped abruptly, its index may be missing") from e
        except OSError as e:
            raise InputError(f"cannot open '{path}': {e.strerror or e}") from e

    def _rgb(self, frame) -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")
        turns = round((frame.rotation or 0) / 90) % 4   # display matrix: counter-clockwise
        if turns:
            rgb = np.rot90(rgb, turns)
        return np.ascontiguousarray(rgb)

    def _stop(self, index: int, seconds: Optional[float], why: str) -> None:
        at = f"frame {index}" + (f" ({seconds:.2f} s)" if seconds is not None else "")
        self.problem = f"stopped at {at}: {why}"

    def _packets(self, on_audio: Optional[Callable]):
        streams = [self.video] + ([self.audio] if self.audio is not None and on_audio else [])
        demux = self.container.demux(*streams)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.error.FFmpegError as e:   # the container itself is damaged here
                self._stop(self.count, self._last_time, f"read error ({e.strerror or e})")
                return
            if packet.stream is self.video:
                yield packet
            elif packet.dts is not None and packet.size:   # skip the demuxer's flush packets
                on_audio(packet)

    def _decoded(self, packets):
        for packet in packets:
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as e:
                # The decoder conceals a damaged packet and carries on; say where it was.
                if self.problem is None:
                    self._stop(self.count, self._last_time, f"damaged data ({e.strerror or e})")
                continue
            for frame in decoded:
                self._last_time = frame.time
                yield frame

    def frames(self, on_audio: Optional[Callable] = None, span: Optional[Span] = None) -> Frames:
        """Every frame in order, or with `span` that stretch (audio is then not read)."""
        if span is not None:
            yield from self._span(span)
            return
        for frame in self._decoded(self._packets(on_audio)):
            yield self._rgb(frame), frame.time, f"{self.count:06d}"
            self.count += 1
        self._check_length()

    def _span(self, span: Span) -> Frames:
        try:
            self.container.seek(span.seek, stream=self.video, backward=True, any_frame=False)
        except av.error.FFmpegError as e:
            raise InputError(f"cannot seek in '{self.path}' ({e.strerror or e}); re-encode it,"
                             f" e.g. ffmpeg -i '{self.path}' fixed.mp4") from e
        tail = span.tail
        for frame in self._decoded(self._packets(None)):
            pts = frame.pts
            if pts is None or pts < span.warm:   # before the warm-up: decoded only
                continue
            name = None
            if span.stop is not None and pts >= span.stop:
                if tail <= 0:
                    return
                tail -= 1
            elif pts >= span.first:
                name = f"{span.index + self.count:06d}"
                self.count += 1
            yield self._rgb(frame), frame.time, name

    def _check_length(self) -> None:
        short = self.expected - self.count
        if short > max(_SHORT_FRAMES, _SHORT_RATIO * self.expected):
            where = f"frame {self.count}" + (f" ({self._last_time:.2f} s)" if self._last_time else "")
            self.problem = (f"stopped at {where} of about {self.expected}: the file ends early"
                            " (truncated or damaged)")

    def close(self) -> None:
        self.container.close()


def index_video(path: str, fps: Optional[float] = None) -> VideoIndex:
    """Timestamps and keyframes of a video file's frames, read from its packets: only the
    container is parsed, nothing is decoded. A folder of frames: their positions, every
    one a keyframe; `fps`: as for open_reader."""
    if os.path.isdir(path):
        rate = _rate(fps)
        count = len(list_frame_files(path))
        return VideoIndex(1 / rate, tuple(range(count)), tuple(range(count)), rate)
    with VideoFileReader(path, fps) as reader:
        stream = reader.video
        pts, keys = [], set()
        try:
            for packet in reader.container.demux(stream):
                if packet.pts is None or not packet.size:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.add(packet.pts)
        except av.error.FFmpegError:
            pass   # a damaged tail: index what was readable, the run says where it stopped
        order = sorted(set(pts))
        keyframes = tuple(i for i, p in enumerate(order) if p in keys)
        return VideoIndex(Fraction(stream.time_base), tuple(order), keyframes, reader.fps)


class PacketReader(Closing):
    """The encoded packets of a file's first video (or audio) stream, to copy them into
    another file without decoding."""

    def __init__(self, path: str, kind: str = "video"):
        self.path = path
        self.container = VideoFileReader._open(path)
        streams = self.container.streams.video if kind == "video" else self.container.streams.audio
        self.stream = streams[0] if streams else None
        self.start = _start_of(self.container)

    def packets(self):
        if self.stream is None:
            return
        for packet in self.container.demux(self.stream):
            if packet.dts is not None or packet.pts is not None:
                if packet.size:              # not the demuxer's flush packet
                    yield packet

    def close(self) -> None:
        self.container.close()


def list_frame_files(folder: str) -> List[str]:
    """The frames of a folder: image files, hidden ones left out, sorted by name."""
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it if e.is_file() and is_image_path(e.name)
                     and not e.name.startswith(".")]
    except OSError as e:
        raise InputError(f"cannot list folder '{folder}': {e.strerror or e}") from e
    return [os.path.join(folder, n) for n in sorted(names)]


class FrameFolderReader(Closing):
    """A folder of images read as frames, sorted by file name; one that cannot be read is
    skipped (and counted in `problem`). No audio; `fps` is the rate to play them at."""

    audio = None
    start = 0.0

    def __init__(self, folder: str, fps: Optional[float] = None):
        self.path = folder
        self.files = list_frame_files(folder)
        if not self.files:
            raise InputError(f"folder '{folder}' holds no frames; put images ({IMAGE_KINDS})"
                             " in it")
        self.label = f"frames {folder} ({len(self.files)} files)"
        self.fps = _rate(fps)
        self.expected = len(self.files)
        self.problem: Optional[str] = None
        self.skipped: List[str] = []
        self.count = 0

    def frames(self, on_audio: Optional[Callable] = None, span: Optional[Span] = None) -> Frames:
        """Every frame, or with `span` those it covers (a frame's position is its timestamp,
        and its time position / fps, so chunks of a folder join like a video's)."""
        end = len(self.files)
        if span is not None and span.stop is not None:
            end = min(end, span.stop + span.tail)
        for i in range(span.warm if span is not None else 0, end):
            path = self.files[i]
            try:
                rgb = read_rgb(path)
            except InputError as e:     # one bad frame is skipped, not the whole sequence
                self.skipped.append(str(e))
                continue
            name = os.path.splitext(os.path.basename(path))[0]
            if span is None:     # its time from its place, as in a chunk: a gap where
                yield rgb, i / float(self.fps), name    # a file could not be read
            else:
                inside = span.first <= i and (span.stop is None or i < span.stop)
                yield rgb, i / float(self.fps), name if inside else None
                if not inside:
                    continue
            self.count += 1
        if self.skipped:
            self.problem = (f"{len(self.skipped)} of {len(self.files)} frames could not be read,"
                            f" first: {self.skipped[0]}")

    def close(self) -> None:
        pass


def open_reader(path: str, fps: Optional[float] = None):
    """A reader for a folder of frames or a video file; `fps`: the rate of frames that
    carry none (a folder's, or a video whose header lacks one; default 30)."""
    if os.path.isdir(path):
        return FrameFolderReader(path, fps)
    if is_image_path(path):
        raise InputError(f"'{path}' is a single image: use `backdrop image` for it, or give"
                         " `backdrop video` a folder of frames")
    return VideoFileReader(path, fps)


def nothing_decoded(reader) -> InputError:
    """The error for a source of which not one frame could be decoded."""
    why = f" ({reader.problem})" if reader.problem else ""
    fix = ("check its images" if isinstance(reader, FrameFolderReader)
           else f"re-encode it, e.g. ffmpeg -i '{reader.path}' fixed.mp4")
    return InputError(f"no frame of '{reader.path}' could be decoded{why}; {fix}")
