"""Writing video with PyAV: one codec table and one writer, used by the live `--sink out.mp4`
and by `backdrop video -o` (which adds alpha and the input's audio), plus the folder of PNGs.

Frames come in as RGB, RGBA or grey uint8; YUV exists only here. A file is written to a hidden
temp file beside the target and renamed over it when complete; on an error or Ctrl-C
(`__exit__` with an exception, or abort()) the temp file is deleted and the target untouched.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from typing import List, Optional, Tuple

import av
import cv2
import numpy as np

from backdrop.errors import SinkError
from backdrop.io.frames import Closing, check_frame, even, fit_frame
from backdrop.io.images import AtomicFile, write_image

# Containers by extension -> (FFmpeg muxer, can carry alpha). Video in all of them is H.264,
# except WebM (VP9) and transparent MOV (ProRes 4444).
CONTAINERS = {".mp4": ("mp4", False), ".m4v": ("mp4", False), ".mov": ("mov", True),
              ".mkv": ("matroska", False), ".webm": ("webm", True), ".avi": ("avi", False)}
ALPHA_EXTENSIONS = tuple(ext for ext, (_, alpha) in CONTAINERS.items() if alpha)

# Encoder settings. CPU ms per frame at 1280x720 over 150 frames, all in one run here (2 shared
# cores), frames converted by cv2 RGB->I420 as below; real footage (DAVIS parkour enlarged to
# 720p, fast motion) / the demo scene, and KB per frame of the real footage:
#   cv2 mp4v (the old live sink)            5.6 / 3.9  63 KB
#   x264 ultrafast zerolatency crf 23       5.1 / 3.0  37 KB   live
#   x264 superfast zerolatency crf 23       8.8 / 5.1  25 KB
#   x264 veryfast crf 23                   19.5 / 6.2  20 KB
#   x264 veryfast crf 18                   23.3 / 8.1  46 KB   backdrop video
#   VP9 realtime cpu-used 8 crf 30         21.2 / 5.8  35 KB   live .webm
#   VP9 realtime cpu-used 6 crf 30         28.1 / 9.2  33 KB   backdrop video .webm
# The live loop encodes on its main thread at 30 fps next to the pipeline, so live takes the
# fastest settings: as cheap as the old mp4v writer, with smaller files that play everywhere.
# zerolatency holds no frames back (no lookahead, no B-frames). An encoder thread would not
# lower the CPU cost, which is what a 2-core machine runs out of. Offline, quality comes first.
# VP9 with alpha at "good" cpu-used 4 measured 116 ms; ProRes 4444 is cheap.
_X264 = {"crf": "18", "preset": "veryfast"}
_X264_LIVE = {"crf": "23", "preset": "ultrafast", "tune": "zerolatency"}
_VP9 = {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "6", "row-mt": "1"}
_VP9_LIVE = dict(_VP9, **{"cpu-used": "8"})
_PRORES_4444 = {"profile": "4", "vendor": "apl0"}
# FFmpeg's mp4 muxer also takes PCM and more, which few players play from an MP4.
_MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
# Colour: frames are sRGB (BT.709 primaries and curve); the YUV matrix is BT.601, limited
# range, which is what cv2's fast RGB->I420 computes and what decoders that ignore the tags
# (OpenCV's, for one) assume. Values are FFmpeg's AVCOL_* numbers.
_MATRIX_BT601, _BT709, _LIMITED = 6, 1, 1


def _have_encoder(name: str) -> bool:
    try:
        av.Codec(name, "w")
        return True
    except Exception:   # av raises UnknownCodecError (or ValueError in older releases)
        return False


def video_codec(ext: str, *, alpha: bool, live: bool) -> Tuple[str, str, dict]:
    """(encoder, pixel format, options) for a container extension."""
    if ext == ".webm":
        return "libvpx-vp9", "yuva420p" if alpha else "yuv420p", dict(_VP9_LIVE if live else _VP9)
    if alpha:   # .mov: ProRes 4444 keeps a full-resolution alpha plane, as editors expect
        return "prores_ks", "yuva444p10le", dict(_PRORES_4444)
    if _have_encoder("libx264"):
        return "libx264", "yuv420p", dict(_X264_LIVE if live else _X264)
    return "mpeg4", "yuv420p", {}


def unsupported(path: str) -> SinkError:
    ext = os.path.splitext(path)[1].lower()
    return SinkError(f"cannot write video '{path}': unsupported extension '{ext or 'none'}';"
                     f" use one of {', '.join(CONTAINERS)}")


class VideoFileSink(Closing):
    """Encodes frames into a video file, atomically.

    Live: opened with a fixed width x height (made even); send(frame) takes RGB frames and
    fits them to that size. `backdrop video`: opened without a size, which the first frame
    sets; write(image, seconds, name) takes RGB, RGBA (with alpha=True) or grey images with
    their timestamps, and audio(packet) copies the input's audio (as is when the container
    accepts its codec, else re-encoded: AAC; Opus for WebM). Audio packets that arrive
    before the first frame wait for it."""

    def __init__(self, path: str, *, fps: float, width: int = 0, height: int = 0,
                 alpha: bool = False, live: bool = False, audio=None, start: float = 0.0,
                 copy_from=None):
        self.path = str(path)
        self.ext = os.path.splitext(self.path)[1].lower()
        if self.ext not in CONTAINERS:
            raise unsupported(self.path)
        if alpha and not CONTAINERS[self.ext][1]:
            raise SinkError(f"cannot write video '{self.path}': {self.ext} has no alpha channel;"
                            f" use {' or '.join(ALPHA_EXTENSIONS)}")
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise SinkError(f"cannot write video '{self.path}': folder {folder} does not"
                            f" exist; create it first")
        self.fps = Fraction(fps).limit_denominator(1001)
        self.alpha, self.live, self.audio_in, self.start = alpha, live, audio, start
        self.frames = 0
        self.video = self.audio_out = None
        self._copy_audio = False
        self._pending: List = []
        self._next_pts = 0
        self._last_dts: Optional[int] = None
        self.pix_fmt: Optional[str] = None     # None while copying packets
        self.size: Optional[Tuple[int, int]] = None
        self._target = AtomicFile(self.path, suffix=".part" + self.ext)
        self.container = None
        try:
            muxer = CONTAINERS[self.ext][0]
            options = {"movflags": "+faststart"} if muxer in ("mp4", "mov") else {}
            self.container = av.open(self._target.tmp, "w", format=muxer, options=options)
            if copy_from is not None:   # joining: packets of this stream are copied
                self._open_copy(copy_from)
            elif width and height:   # a live sink: fail now, not at the first frame
                self._open_streams(even(width), even(height))
        except (OSError, av.error.FFmpegError) as e:
            self.abort()
            raise SinkError(f"cannot write video '{self.path}': {e}") from e
        except BaseException:
            self.abort()
            raise
        size = f" {self.size[0]}x{self.size[1]}" if self.size else ""
        codec = f" {self.video.codec_context.name}" if self.video is not None else ""
        self.name = f"video file {self.path}{size} {float(self.fps):g}fps{codec}"

    # -- setup at the first frame ------------------------------------------------------
    def _open_streams(self, width: int, height: int) -> None:
        codec, pix_fmt, options = video_codec(self.ext, alpha=self.alpha, live=self.live)
        stream = self.container.add_stream(codec, rate=self.fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        ctx = stream.codec_context
        ctx.time_base = 1 / self.fps
        if codec == "mpeg4":
            stream.bit_rate = int(width * height * float(self.fps) * 0.2)
        ctx.colorspace, ctx.color_primaries, ctx.color_trc = _MATRIX_BT601, _BT709, _BT709
        ctx.color_range = _LIMITED
        self.video, self.size, self.pix_fmt = stream, (width, height), pix_fmt
        if self.audio_in is not None:
            self._open_audio(self.audio_in)

    def _open_copy(self, template) -> None:
        self.video = self.container.add_stream_from_template(template)
        if template.codec_tag:   # not copied; MOV would mark ProRes 4444 as HQ without it
            self.video.codec_context.codec_tag = template.codec_tag
        self.size, self.pix_fmt = (template.width, template.height), None
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
        w, h = self.size
        image = fit_frame(image, w, h)   # a folder's frames may differ in size
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        if self.pix_fmt == "yuv420p":
            # cv2 converts in ~0.4 ms at 720p, swscale in ~2: a third of the live encode.
            if image.shape[2] == 4:
                image = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
            yuv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YUV_I420)
            return av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        fmt = "rgba" if image.shape[2] == 4 else "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
        return frame.reformat(format=self.pix_fmt, dst_colorspace="itu601", dst_color_range=1)

    def send(self, frame: np.ndarray) -> None:
        """The live Sink protocol: one (H, W, 3) uint8 RGB frame, fitted to the sink's size."""
        check_frame(frame)
        self.write(frame, None, "")

    def write(self, image: np.ndarray, seconds: Optional[float], name: str) -> None:
        if self.container is None:
            raise SinkError(f"{self.name} was closed; open the sink again")
        try:
            if self.video is None:
                self._open_streams(even(image.shape[1]), even(image.shape[0]))
                pending, self._pending = self._pending, []
                for packet in pending:
                    self.audio(packet)
            frame = self._frame(image)
            frame.pts = self._pts(seconds)
            self.container.mux(self.video.encode(frame))
        except (OSError, av.error.FFmpegError) as e:
            self.abort()
            raise SinkError(f"writing video '{self.path}' failed ({e}); check free disk"
                            f" space") from e
        self.frames += 1

    def copy(self, packet) -> None:
        """Mux an encoded packet of the `copy_from` stream's codec and settings (chunks of
        one video, encoded alike), keeping its timestamps. They are fixed only where a
        muxer needs it: Matroska reads back no dts for some frames, and AVI keeps no
        timestamps, only the frames' order."""
        if self.container is None:
            raise SinkError(f"{self.name} was closed; open the sink again")
        packet.stream = self.video
        if CONTAINERS[self.ext][0] == "avi":
            packet.dts = packet.pts = self.frames
        elif packet.dts is None or (self._last_dts is not None and packet.dts < self._last_dts):
            packet.dts = packet.pts if self._last_dts is None else self._last_dts
        self._last_dts = packet.dts
        try:
            self.container.mux(packet)
        except (OSError, av.error.FFmpegError) as e:
            self.abort()
            raise SinkError(f"writing video '{self.path}' failed ({e}); check free disk"
                            f" space") from e
        self.frames += 1

    # -- finishing -----------------------------------------------------------------------
    def close(self) -> None:
        """Flush the encoders and move the finished file onto the target; with no frames
        written, leave the target as it was."""
        container, self.container = self.container, None
        if container is None:
            return
        try:
            try:
                if self.frames and self.pix_fmt is not None:   # not when copying
                    container.mux(self.video.encode(None))
                    if self.audio_out is not None and not self._copy_audio:
                        container.mux(self.audio_out.encode(None))
            finally:
                container.close()
            if self.frames:
                self._target.commit()
        except (OSError, av.error.FFmpegError) as e:
            raise SinkError(f"could not finish video '{self.path}': {e}; check free disk space"
                            f" and that the target is writable") from e
        finally:
            self._target.discard()   # after commit() this does nothing

    def abort(self) -> None:
        """Stop without touching the target (errors, Ctrl-C)."""
        container, self.container = self.container, None
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()
        self._target.discard()

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:   # a half-written file must not replace a good one
            self.abort()
        else:
            self.close()


class FrameFolderSink(Closing):
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
