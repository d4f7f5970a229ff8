"""io/video.py and io/videowrite.py: the one PyAV reader and writer behind the live file
source and sink, the video background and `backdrop video`. Written files are decoded back
with PyAV and checked for codec, frame count, size and colours."""

import os

import av
import cv2
import numpy as np
import pytest

from backdrop.config import BackgroundSpec, SourceConfig
from backdrop.engine.background import VideoBackground, create_background
from backdrop.errors import InputError, SinkError
from backdrop.io.sinks import open_sink
from backdrop.io.sources import open_source
from backdrop.io.video import VideoFileReader, open_reader
from backdrop.io.videowrite import CONTAINERS, VideoFileSink

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (40, 40, 40), (250, 250, 250)]
CODEC = {".mp4": "h264", ".m4v": "h264", ".mov": "h264", ".mkv": "h264", ".avi": "h264",
         ".webm": "vp9"}


def flat(colour, w=160, h=120):
    frame = np.empty((h, w, 3), np.uint8)
    frame[:] = colour
    return frame


def decode(path):
    """(codec name, [RGB frames]) of the first video stream, decoded by PyAV."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return stream.codec_context.name, [f.to_ndarray(format="rgb24") for f in c.decode(stream)]


def close_to(pixel, colour, tol=12):
    return np.abs(pixel.astype(int) - colour).max() <= tol


def others(folder, *keep):
    """Everything in the folder but the named files: temp files must not survive."""
    return sorted(n for n in os.listdir(folder) if n not in keep)


def live_sink(path, w=160, h=120, fps=25):
    return open_sink(str(path), width=w, height=h, fps=fps)


# ---------------------------------------------------------------------------- writing

@pytest.mark.parametrize("ext", list(CONTAINERS))
def test_live_sink_writes_every_container(tmp_path, ext):
    target = tmp_path / f"out{ext}"
    with live_sink(target) as sink:
        assert isinstance(sink, VideoFileSink) and "160x120" in sink.name
        for c in COLOURS:
            sink.send(flat(c))
        assert not target.exists()   # only appears once complete
    codec, frames = decode(target)
    assert codec == CODEC[ext]
    assert len(frames) == len(COLOURS)
    for frame, c in zip(frames, COLOURS):
        assert frame.shape == (120, 160, 3)
        assert close_to(frame[60, 80], c), (ext, frame[60, 80], c)   # channel order holds
    assert others(tmp_path, target.name) == []


def test_colours_survive_a_decoder_that_ignores_the_tags(tmp_path):
    # OpenCV's FFmpeg reader converts with BT.601 whatever the file says; so do many others.
    target = tmp_path / "out.mp4"
    with live_sink(target) as sink:
        for c in COLOURS:
            sink.send(flat(c))
    cap = cv2.VideoCapture(str(target))
    for c in COLOURS:
        ok, bgr = cap.read()
        assert ok and close_to(bgr[60, 80][::-1], c), (bgr[60, 80][::-1], c)
    cap.release()


def test_live_sink_is_even_sized_and_fits_frames(tmp_path):
    target = tmp_path / "odd.mp4"
    with live_sink(target, 161, 121, 10) as sink:
        assert sink.size == (160, 120) and "160x120" in sink.name
        sink.send(flat(COLOURS[0], 161, 121))   # odd pixel cropped
        sink.send(flat(COLOURS[1], 320, 240))   # another size: resized
    _, frames = decode(target)
    assert [f.shape for f in frames] == [(120, 160, 3)] * 2
    assert close_to(frames[1][60, 80], COLOURS[1])


def test_written_file_reads_back_through_the_reader(tmp_path):
    target = tmp_path / "round.mkv"
    with live_sink(target, fps=25) as sink:
        for c in COLOURS:
            sink.send(flat(c))
    with VideoFileReader(str(target)) as reader:
        got = list(reader.frames())
        assert reader.fps == 25 and reader.problem is None
    assert [name for _, _, name in got] == [f"{i:06d}" for i in range(len(COLOURS))]
    assert [round(t * 25) for _, t, _ in got] == list(range(len(COLOURS)))
    assert all(close_to(rgb[5, 5], c) for (rgb, _, _), c in zip(got, COLOURS))


def test_no_frames_leaves_the_target_untouched(tmp_path):
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"precious")
    sink = live_sink(target)
    sink.close()
    sink.close()   # idempotent
    assert target.read_bytes() == b"precious"
    assert others(tmp_path, "keep.mp4") == []


@pytest.mark.parametrize("existing", [True, False])
def test_error_mid_write_leaves_no_file(tmp_path, existing):
    target = tmp_path / "clip.webm"
    if existing:
        target.write_bytes(b"precious")
    with pytest.raises(RuntimeError):
        with live_sink(target) as sink:
            for c in COLOURS[:3]:
                sink.send(flat(c))
            assert others(tmp_path, "clip.webm"), "the temp file is being written"
            raise RuntimeError("pipeline blew up")
    assert target.exists() == existing
    if existing:
        assert target.read_bytes() == b"precious"
    assert others(tmp_path, "clip.webm") == []


def test_ctrl_c_mid_write_in_backdrop_video_mode_leaves_nothing(tmp_path):
    target = tmp_path / "cut.mov"
    with pytest.raises(KeyboardInterrupt):
        with VideoFileSink(str(target), fps=30, alpha=True) as sink:
            rgba = np.dstack((flat(COLOURS[0]), np.full((120, 160), 128, np.uint8)))
            sink.write(rgba, 0.0, "000000")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_complete_file_replaces_the_target(tmp_path):
    target = tmp_path / "old.avi"
    target.write_bytes(b"old")
    with live_sink(target, 64, 64, 10) as sink:
        sink.send(flat(COLOURS[2], 64, 64))
    assert len(decode(target)[1]) == 1
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask   # not the temp file's 0600


def test_unknown_extension_is_one_line_naming_the_supported_ones(tmp_path):
    with pytest.raises(SinkError) as info:
        live_sink(tmp_path / "out.gif")
    message = str(info.value)
    assert "out.gif" in message and "\n" not in message
    assert all(ext in message for ext in (".mp4", ".webm", ".mov", ".mkv", ".avi"))
    assert os.listdir(tmp_path) == []


def test_missing_folder(tmp_path):
    with pytest.raises(SinkError, match="does not exist"):
        live_sink(tmp_path / "no" / "out.mp4")


def test_send_after_close_and_bad_frames(tmp_path):
    sink = live_sink(tmp_path / "x.mp4", 64, 64)
    with pytest.raises(TypeError, match="uint8"):
        sink.send(np.zeros((64, 64, 3), np.float32))
    sink.close()
    with pytest.raises(SinkError, match="closed"):
        sink.send(flat(COLOURS[0], 64, 64))
    assert os.listdir(tmp_path) == []


def test_alpha_into_a_container_without_alpha_is_refused(tmp_path):
    with pytest.raises(SinkError, match=r"\.mov or \.webm"):
        VideoFileSink(str(tmp_path / "cut.mp4"), fps=30, alpha=True)
    assert os.listdir(tmp_path) == []


def test_backdrop_video_mode_takes_its_size_from_the_first_frame(tmp_path):
    target = tmp_path / "mask.mp4"
    with VideoFileSink(str(target), fps=30) as sink:
        for i in range(3):   # grey masks, timestamps a frame apart
            sink.write(np.full((49, 63), 60 * i, np.uint8), i / 30, f"{i:06d}")
    codec, frames = decode(target)
    assert codec == "h264" and [f.shape for f in frames] == [(48, 62, 3)] * 3
    assert [int(f[20, 20, 0]) for f in frames] == pytest.approx([0, 60, 120], abs=4)


# ---------------------------------------------------------------------------- reading

def make_clip(path, colours, fps=25, size=(96, 64)):
    with VideoFileSink(str(path), fps=fps) as sink:
        for i, c in enumerate(colours):
            sink.write(flat(c, *size), i / fps, "")
    return str(path)


def test_looping_file_source_wraps_around(tmp_path):
    clip = make_clip(tmp_path / "three.mp4", COLOURS[:3])
    with open_source(SourceConfig(source=clip, loop=True, fps=60)) as src:
        assert (src.width, src.height, src.fps) == (96, 64, 25.0) and "looping" in src.name
        got = [src.read() for _ in range(7)]
    assert [next(i for i, c in enumerate(COLOURS) if close_to(f[5, 5], c)) for f in got] \
        == [0, 1, 2, 0, 1, 2, 0]


def test_looping_truncated_file_wraps_to_its_start(tmp_path):
    # Frame i has red 6 * i: the red channel tells which frame came out.
    colours = [(6 * i, 255 - 6 * i, 128) for i in range(40)]
    whole = make_clip(tmp_path / "whole.mkv", colours, size=(320, 240))
    data = open(whole, "rb").read()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    with open_source(SourceConfig(source=str(cut), loop=True)) as src:
        seen = [round(int(src.read()[5, 5, 0]) / 6) for _ in range(60)]
    length = seen.index(0, 1)          # where it started over
    assert 0 < length < 40, "the cut file is shorter than the whole one"
    assert seen[:length] == list(range(length))
    assert seen[length:2 * length] == list(range(length))


def test_file_without_a_single_decodable_frame(tmp_path):
    whole = make_clip(tmp_path / "whole.mp4", COLOURS)
    data = bytearray(open(whole, "rb").read())
    start = data.index(b"mdat") + 4
    assert data.index(b"moov") < start, "faststart: the index comes first and stays whole"
    data[start:] = bytes(len(data) - start)   # every frame zeroed
    zeroed = tmp_path / "zeroed.mp4"
    zeroed.write_bytes(data)
    with pytest.raises(InputError, match="no frame of .*zeroed.mp4.* could be decoded") as info:
        open_source(SourceConfig(source=str(zeroed)))
    assert "\n" not in str(info.value) and "ffmpeg -i" in str(info.value)


def make_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for name, colour in (("0003.png", COLOURS[3]), ("0001.png", COLOURS[1]),
                         ("0004.jpg", COLOURS[4]), (".0000.png", COLOURS[0])):
        cv2.imwrite(str(folder / name), cv2.cvtColor(flat(colour), cv2.COLOR_RGB2BGR))
    (folder / "0002.png").write_bytes(b"\x89PNG garbage")
    (folder / "notes.txt").write_text("not a frame")
    (folder / "sub.png").mkdir()   # a folder with an image's name is not a frame
    return str(folder)


def test_frame_folder_in_backdrop_video(tmp_path):
    with open_reader(make_folder(tmp_path), fps=12) as reader:
        got = [(name, rgb[5, 5]) for rgb, _, name in reader.frames()]
        assert reader.fps == 12 and reader.expected == 4
        assert reader.problem.startswith("1 of 4 frames could not be read") and "0002" in reader.problem
    assert [n for n, _ in got] == ["0001", "0003", "0004"]
    assert all(close_to(px, COLOURS[int(n)], tol=3) for n, px in got)


def test_frame_folder_live(tmp_path):
    with open_source(SourceConfig(source=make_folder(tmp_path), loop=True, fps=12)) as src:
        assert (src.width, src.height, src.fps) == (160, 120, 12.0)
        names = []
        for _ in range(5):
            assert close_to(src.read()[5, 5], COLOURS[int(src.last_name)], tol=3)
            names.append(src.last_name)
    assert names == ["0001", "0003", "0004", "0001", "0003"]


def test_frame_folder_errors_are_the_same_in_both_modes(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden.png").write_bytes(b"")
    with pytest.raises(InputError, match="holds no frames; put images") as live:
        open_source(SourceConfig(source=str(empty)))
    with pytest.raises(InputError) as offline:
        open_reader(str(empty))
    assert str(live.value) == str(offline.value)

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("1.png", "2.png"):
        (broken / name).write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="could be decoded .2 of 2 frames could not be read"):
        open_source(SourceConfig(source=str(broken)))   # backdrop video: test_offline_video


def make_gif(path, colours, fps=30, size=(96, 64)):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("gif", rate=fps)
        stream.width, stream.height, stream.pix_fmt = *size, "rgb8"
        for c in colours:
            frame = av.VideoFrame.from_ndarray(flat(c, *size), format="rgb24")
            out.mux(stream.encode(frame.reformat(format="rgb8")))
        out.mux(stream.encode(None))
    return str(path)


@pytest.mark.parametrize("make", [make_clip, make_gif], ids=["webm", "gif"])
def test_video_background_loops(tmp_path, make):
    clip = make(tmp_path / ("bg.webm" if make is make_clip else "bg.gif"), COLOURS[:2], fps=30)
    background = create_background(BackgroundSpec("file", path=clip), fps=30)
    assert isinstance(background, VideoBackground)
    frame = np.zeros((32, 48, 3), np.uint8)
    seen = [background.render(frame, None, None)[3, 3].copy() for _ in range(5)]
    background.close()
    expected = [COLOURS[1], COLOURS[0], COLOURS[1], COLOURS[0], COLOURS[1]]
    assert all(close_to(px, c) for px, c in zip(seen, expected)), seen
