"""Video in and out with PyAV (no ffmpeg executable): reading a video file or a folder of
frames in order, and writing a composited video with the original audio, a video with an
alpha channel, or one PNG per frame.

Frames inside are RGB/RGBA uint8; YUV and colour ranges exist only here, at the boundary.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Callable, Iterator, List, Optional, Tuple

import av
import cv2
import numpy as np

from backdrop.errors import InputError, SinkError
from backdrop.io.images import is_image_path, read_rgb, write_image

# Output containers by extension -> (FFmpeg muxer, can carry alpha).
CONTAINERS = {".mp4": ("mp4", False), ".m4v": ("mp4", False), ".mkv": ("matroska", False),
              ".avi": ("avi", False), ".webm": ("webm", True), ".mov": ("mov", True)}
DEFAULT_FOLDER_FPS = Fraction(30)
# A decoded frame count this far short of what the container promises means the file ended
# early; the slack absorbs rounding of durations and streams a frame or two shorter.
_SHORT_FRAMES, _SHORT_RATIO = 3, 0.05

Frames = Iterator[Tuple[np.ndarray, Optional[float], str]]   # (rgb, seconds, name)


def _fps_of(stream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate and rate > 0 else DEFAULT_FOLDER_FPS


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


class VideoFileReader:
    """Decodes a video file's first video stream in order (threaded decoding), handing
    audio packets to a callback so they can be copied to the output as they come."""

    def __init__(self, path: str):
        self.path = path
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
        self.fps = _fps_of(self.video)
        self.expected = _expected_frames(self.container, self.video, self.fps)
        start = self.container.start_time
        self.start = max(0.0, start / av.time_base) if start else 0.0
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

    def frames(self, on_audio: Optional[Callable] = None) -> Frames:
        for packet in self._packets(on_audio):
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as e:
                # The decoder conceals a damaged packet and carries on; say where it was.
                if self.problem is None:
                    self._stop(self.count, self._last_time, f"damaged data ({e.strerror or e})")
                continue
            for frame in decoded:
                self._last_time = frame.time
                yield self._rgb(frame), frame.time, f"{self.count:06d}"
                self.count += 1
        self._check_length()

    def _check_length(self) -> None:
        short = self.expected - self.count
        if short > max(_SHORT_FRAMES, _SHORT_RATIO * self.expected):
            where = f"frame {self.count}" + (f" ({self._last_time:.2f} s)" if self._last_time else "")
            self.problem = (f"stopped at {where} of about {self.expected}: the file ends early"
                            " (truncated or damaged)")

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "VideoFileReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FrameFolderReader:
    """A folder of images read as frames, sorted by file name; no audio."""

    audio = None
    start = 0.0

    def __init__(self, folder: str, fps: Optional[float] = None):
        self.path = folder
        self.files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                            if is_image_path(f) and not f.startswith("."))
        if not self.files:
            raise InputError(f"folder '{folder}' holds no frames (JPEG, PNG, WebP, BMP or TIFF)")
        self.fps = Fraction(fps).limit_denominator(1001) if fps else DEFAULT_FOLDER_FPS
        self.expected = len(self.files)
        self.problem: Optional[str] = None
        self.skipped: List[str] = []
        self.count = 0

    def frames(self, on_audio: Optional[Callable] = None) -> Frames:
        for path in self.files:
            try:
                rgb = read_rgb(path)
            except InputError as e:     # one bad frame is skipped, not the whole sequence
                self.skipped.append(str(e))
                continue
            yield rgb, None, os.path.splitext(os.path.basename(path))[0]
            self.count += 1
        if self.skipped:
            self.problem = (f"{len(self.skipped)} of {len(self.files)} frames could not be read,"
                            f" first: {self.skipped[0]}")

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameFolderReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_reader(path: str, fps: Optional[float] = None):
    if os.path.isdir(path):
        return FrameFolderReader(path, fps)
    if is_image_path(path):
        raise InputError(f"'{path}' is a single image: use `backdrop image` for it, or give"
                         " `backdrop video` a folder of frames")
    return VideoFileReader(path)


class FrameFolderSink:
    """One PNG per frame, each written atomically; RGBA, RGB or 8-bit grey as given."""

    def __init__(self, folder: str):
        self.folder = folder
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create folder '{folder}': {e.strerror}") from e

    def audio(self, packet) -> None:
        pass   # PNG frames have nowhere to put sound

    def write(self, image: np.ndarray, seconds: Optional[float], name: str) -> None:
        write_image(os.path.join(self.folder, name + ".png"), image, "png")

    def close(self, failed: bool = False) -> None:
        pass

    def __enter__(self) -> "FrameFolderSink":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(failed=exc_type is not None)


# Encoder settings, measured at 720p here (CPU ms per frame / KB per frame): x264 crf 18
# "fast" 61/44, "veryfast" 26/41, "superfast" 16/56; VP9 with alpha "good" cpu-used 4
# 116/22, "realtime" cpu-used 6 28/26. The encoder otherwise costs more than the pipeline.
_X264 = {"crf": "18", "preset": "veryfast"}
_VP9 = {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "6", "row-mt": "1"}
_PRORES_4444 = {"profile": "4", "vendor": "apl0"}
# FFmpeg's mp4 muxer also takes PCM and more, which few players play from an MP4.
_MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}


def _have_encoder(name: str) -> bool:
    try:
        av.Codec(name, "w")
        return True
    except Exception:   # av raises UnknownCodecError (or ValueError in older releases)
        return False


def video_codec(ext: str, alpha: bool) -> Tuple[str, str, dict]:
    """(encoder, pixel format, options) for a container extension."""
    if ext == ".webm":
        return "libvpx-vp9", "yuva420p" if alpha else "yuv420p", dict(_VP9)
    if alpha:   # .mov: ProRes 4444 keeps a full-resolution alpha plane, as editors expect
        return "prores_ks", "yuva444p10le", dict(_PRORES_4444)
    if _have_encoder("libx264"):
        return "libx264", "yuv420p", dict(_X264)
    return "mpeg4", "yuv420p", {}


class VideoFileSink:
    """Encodes frames into a video file with PyAV, copying the input's audio.

    Streams are created at the first frame (its size is the video's size). Audio packets that
    arrive before it wait. Audio is copied as is when the container accepts its codec, and
    re-encoded (AAC; Opus for WebM) when it does not."""

    def __init__(self, path: str, ext: str, *, fps: Fraction, alpha: bool,
                 audio=None, start: float = 0.0):
        self.path, self.ext, self.fps, self.alpha = path, ext, Fraction(fps), alpha
        self.audio_in, self.start = audio, start
        muxer = CONTAINERS[ext][0]
        options = {"movflags": "+faststart"} if muxer in ("mp4", "mov") else {}
        try:
            self.container = av.open(path, "w", format=muxer, options=options)
        except (OSError, av.error.FFmpegError) as e:
            raise SinkError(f"cannot create '{path}': {e}") from e
        self.video = None
        self.audio_out = None
        self._copy_audio = False
        self._pending: List = []
        self._next_pts = 0
        self.size: Tuple[int, int] = (0, 0)

    # -- setup at the first frame ------------------------------------------------------
    def _open_streams(self, width: int, height: int) -> None:
        codec, pix_fmt, options = video_codec(self.ext, self.alpha)
        stream = self.container.add_stream(codec, rate=self.fps, options=options)
        # 4:2:0 needs even sizes; odd frames are padded by one repeated row/column.
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = pix_fmt
        stream.codec_context.time_base = 1 / self.fps
        if codec == "mpeg4":
            stream.bit_rate = int(width * height * float(self.fps) * 0.2)
        ctx = stream.codec_context
        ctx.colorspace = ctx.color_primaries = ctx.color_trc = 1   # BT.709, tagged as written
        ctx.color_range = 1                                         # limited ("TV") range
        self.video, self.size, self.pix_fmt = stream, (width, height), pix_fmt
        if self.audio_in is not None:
            self._open_audio(self.audio_in)

    def _open_audio(self, template) -> None:
        name = template.codec_context.name
        playable = CONTAINERS[self.ext][0] != "mp4" or name in _MP4_AUDIO
        if playable and name in self.container.supported_codecs:
            self.audio_out = self.container.add_stream_from_template(template)
            self._copy_audio = True
            return
        webm = self.ext == ".webm"
        rate = 48000 if webm else (template.codec_context.sample_rate or 48000)
        stream = self.container.add_stream("libopus" if webm else "aac", rate=rate)
        channels = template.codec_context.channels or 2
        stream.layout = "mono" if channels == 1 else "stereo"
        self.audio_out = stream

    @property
    def audio_mode(self) -> str:
        if self.audio_out is None:
            return "none"
        return "copied" if self._copy_audio else "re-encoded"

    # -- writing -------------------------------------------------------------------------
    def audio(self, packet) -> None:
        if self.audio_in is None:
            return
        if self.video is None:
            self._pending.append(packet)
            return
        if self._copy_audio:
            if self.start:
                shift = round(self.start / packet.time_base)
                packet.pts = None if packet.pts is None else packet.pts - shift
                packet.dts = None if packet.dts is None else packet.dts - shift
            packet.stream = self.audio_out
            self.container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None if frame.pts is None else frame.pts - round(self.start / frame.time_base)
            self.container.mux(self.audio_out.encode(frame))

    def _pts(self, seconds: Optional[float]) -> int:
        pts = self._next_pts if seconds is None else round((seconds - self.start) * self.fps)
        pts = max(pts, self._next_pts)    # strictly increasing, whatever the input claims
        self._next_pts = pts + 1
        return pts

    def _frame(self, image: np.ndarray):
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        w, h = self.size
        if image.shape[1] != w or image.shape[0] != h:   # frames of a folder may differ
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        if w % 2 or h % 2:
            image = cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
        fmt = "rgba" if image.shape[2] == 4 else "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
        return frame.reformat(format=self.pix_fmt, dst_colorspace="itu709",
                              dst_color_range=1)

    def write(self, image: np.ndarray, seconds: Optional[float], name: str) -> None:
        if self.video is None:
            self._open_streams(image.shape[1], image.shape[0])
            pending, self._pending = self._pending, []
            for packet in pending:
                self.audio(packet)
        frame = self._frame(image)
        frame.pts = self._pts(seconds)
        self.container.mux(self.video.encode(frame))

    def close(self, failed: bool = False) -> None:
        """Flush the encoders and finish the file; after a failure only release it."""
        container, self.container = self.container, None
        if container is None:
            return
        try:
            if not failed and self.video is not None:
                container.mux(self.video.encode(None))
                if self.audio_out is not None and not self._copy_audio:
                    container.mux(self.audio_out.encode(None))
        except av.error.FFmpegError as e:
            raise SinkError(f"could not finish '{self.path}': {e}") from e
        finally:
            container.close()

    def __enter__(self) -> "VideoFileSink":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(failed=exc_type is not None)
