"""`backdrop video` end to end: videos made here with PyAV, the real model, cli.main."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from backdrop.cli.main import main

ASTRONAUT = Path(__file__).resolve().parents[1] / "src" / "backdrop" / "assets" / "astronaut.png"
W, H, FPS, RATE = 256, 192, 30, 44100


def _frames(count: int):
    rgb = cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (W + 64, H + 64), interpolation=cv2.INTER_AREA)
    for i in range(count):   # the subject drifts sideways so frames differ
        x = 32 + round(24 * np.sin(i / 6))
        yield np.ascontiguousarray(rgb[32:32 + H, x:x + W])


def make_video(path: Path, frames: int = 30, faststart: bool = True, audio: bool = True) -> Path:
    """H.264 + a 440 Hz AAC sine wave, the same length."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        sound = out.add_stream("aac", rate=RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for frame in _frames(frames):
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(video.encode(None))
        if sound is not None:
            mux_sine(out, sound, frames * RATE // FPS)
    return path


def mux_sine(out, sound, samples: int) -> None:
    """A 440 Hz sine wave of `samples` samples, encoded by the mono `sound` and muxed."""
    t = np.arange(samples) / sound.rate
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    chunk = av.AudioFrame.from_ndarray(wave, format="flt", layout="mono")
    chunk.sample_rate, chunk.pts = sound.rate, 0
    out.mux(sound.encode(chunk))
    out.mux(sound.encode(None))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("clips") / "clip.mp4")


def _streams(path: Path):
    with av.open(str(path)) as c:
        video = c.streams.video[0]
        frames = sum(1 for _ in c.decode(video))
        audio = c.streams.audio[0] if c.streams.audio else None
        audio_s = float(audio.duration * audio.time_base) if audio is not None and audio.duration else None
        return {"frames": frames, "size": (video.width, video.height),
                "rate": video.average_rate, "audio": audio is not None, "audio_s": audio_s}


def _decode_alpha(path: Path) -> list:
    """WebM alpha lives in Matroska BlockAdditional data that only libvpx's decoder reads;
    FFmpeg's native vp9 decoder returns yuv420p without it."""
    with av.open(str(path)) as c:
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        frames = [f for p in c.demux(c.streams.video[0]) for f in decoder.decode(p)]
    return frames


def _no_leftovers(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_mp4_keeps_size_rate_and_audio(clip, tmp_path, capsys):
    out = tmp_path / "blur.mp4"
    assert main(["video", str(clip), "-o", str(out)]) == 0
    got, src = _streams(out), _streams(clip)
    assert got["frames"] == 30 and got["size"] == (W, H) and got["rate"] == FPS
    assert got["audio"] and abs(got["audio_s"] - src["audio_s"]) < 0.1
    assert "audio copied" in capsys.readouterr().err
    _no_leftovers(tmp_path)


def test_webm_is_transparent_by_default_with_soft_alpha(clip, tmp_path):
    out = tmp_path / "cut.webm"
    assert main(["video", str(clip), "-o", str(out)]) == 0
    frames = _decode_alpha(out)
    assert len(frames) == 30 and frames[0].format.name == "yuva420p"
    alpha = frames[15].to_ndarray(format="rgba")[..., 3]
    assert alpha.min() < 10 and alpha.max() > 245
    assert np.count_nonzero((alpha > 20) & (alpha < 235)) > 50, "edges must be soft"
    assert _streams(out)["audio"], "AAC does not fit WebM: it is re-encoded as Opus"


def test_mov_is_prores_4444_with_alpha(clip, tmp_path):
    out = tmp_path / "cut.mov"
    assert main(["video", str(clip), "-o", str(out)]) == 0
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "prores"
        frame = next(c.decode(video=0))
        assert frame.format.name.startswith("yuva444p")


def test_transparent_mp4_is_refused(clip, tmp_path, capsys):
    out = tmp_path / "cut.mp4"
    assert main(["video", str(clip), "-o", str(out), "--background", "transparent"]) == 2
    err = capsys.readouterr().err
    assert ".webm" in err and "alpha" in err and "Traceback" not in err
    assert not out.exists()


def test_truncated_video_keeps_what_could_be_read(tmp_path, capsys):
    whole = make_video(tmp_path / "whole.mp4", frames=60)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    assert main(["video", str(cut), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "stopped at frame" in err and "Traceback" not in err
    frames = _streams(out)["frames"]
    assert 0 < frames < 60
    assert f"stopped at frame {frames}" in err


def test_truncated_video_without_its_index_is_an_input_error(tmp_path, capsys):
    whole = make_video(tmp_path / "whole.mp4", frames=30, faststart=False)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:20000])
    assert main(["video", str(cut), "-o", str(tmp_path / "out.mp4")]) == 3
    assert "not a video" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()
    _no_leftovers(tmp_path)


def test_not_a_video(tmp_path, capsys):
    notes = tmp_path / "notes.mp4"
    notes.write_text("just some text\n" * 100)
    assert main(["video", str(notes), "-o", str(tmp_path / "out.mp4")]) == 3
    err = capsys.readouterr().err
    assert "notes.mp4" in err and "not a video" in err and "Traceback" not in err


def test_folder_of_frames_keeps_the_stems(tmp_path):
    src = tmp_path / "frames"
    src.mkdir()
    names = ["shot_b", "shot_a", "shot_c"]
    for name, frame in zip(names, _frames(3)):
        cv2.imwrite(str(src / f"{name}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out = tmp_path / "cut"
    assert main(["video", str(src), "-o", f"{out}/"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.png" for n in names)
    assert cv2.imread(str(out / "shot_a.png"), cv2.IMREAD_UNCHANGED).shape == (H, W, 4)
    masks = tmp_path / "masks"
    assert main(["video", str(src), "-o", str(masks), "--mask"]) == 0
    mask = cv2.imread(str(masks / "shot_b.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (H, W) and mask.dtype == np.uint8


def test_folder_hidden_files_skipped_and_nothing_decodable(tmp_path, capsys):
    src = tmp_path / "frames"
    src.mkdir()
    for name, frame in zip(["b", ".a"], _frames(2)):      # .a.jpg is hidden: not a frame
        cv2.imwrite(str(src / f"{name}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (src / "c.png").write_bytes(b"\x89PNG garbage")
    out = tmp_path / "out"
    assert main(["video", str(src), "-o", f"{out}/", "--background", "blur"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["b.png"]
    assert "1 of 2 frames could not be read" in capsys.readouterr().err

    (src / "b.jpg").write_bytes(b"not a jpeg")
    assert main(["video", str(src), "-o", str(tmp_path / "none.mp4")]) == 3   # InputError
    err = capsys.readouterr().err
    assert "no frame of" in err and "2 of 2 frames could not be read" in err
    assert "check its images" in err and "Traceback" not in err
    _no_leftovers(tmp_path)


def test_video_to_numbered_frames_composited(clip, tmp_path):
    out = tmp_path / "green"
    assert main(["video", str(clip), "-o", f"{out}/", "--background", "#00ff00"]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files[:2] == ["000000.png", "000001.png"] and len(files) == 30
    frame = cv2.imread(str(out / "000010.png"), cv2.IMREAD_UNCHANGED)
    assert frame.shape == (H, W, 3)


def test_ctrl_c_leaves_no_output(clip, tmp_path, monkeypatch, capsys):
    from backdrop.engine.pipeline import Pipeline

    real = Pipeline._render          # where each frame of a file is finished
    calls = {"n": 0}

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_render", interrupted)
    out = tmp_path / "out.mp4"
    assert main(["video", str(clip), "-o", str(out)]) == 130
    assert "interrupted after 4 frames" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_unknown_output_extension(clip, tmp_path, capsys):
    assert main(["video", str(clip), "-o", str(tmp_path / "out.gif")]) == 2
    assert ".webm" in capsys.readouterr().err


def test_display_rotation_is_applied(tmp_path):
    from backdrop.io.video import VideoFileReader

    pattern = np.zeros((H, W, 3), np.uint8)
    pattern[: H // 2, : W // 2] = 255                      # white top-left quarter
    path = tmp_path / "rotated.mp4"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        video.set_display_rotation(90)                     # shown turned 90 degrees anticlockwise
        for _ in range(2):
            out.mux(video.encode(av.VideoFrame.from_ndarray(pattern, format="rgb24")))
        out.mux(video.encode(None))
    with VideoFileReader(str(path)) as reader:
        rgb = next(reader.frames())[0]
    assert rgb.shape == (W, H, 3) and rgb.flags.c_contiguous
    assert rgb[-H // 4:, : H // 4].mean() > 200 and rgb[: H // 4, : H // 4].mean() < 50


def test_mask_video_and_missing_output_folder(clip, tmp_path):
    out = tmp_path / "new" / "mask.mp4"
    assert main(["video", str(clip), "-o", str(out), "--mask"]) == 0
    assert _streams(out)["frames"] == 30


def test_stages_pass_events_in_order_and_raise_errors_in_the_caller():
    from backdrop.offline.stages import Prefetch, WriterThread

    def produce(put):
        for i in range(3):
            put(("audio", -i))
            yield i
        raise ValueError("damaged")

    seen = []
    with pytest.raises(ValueError, match="damaged"):
        with Prefetch(produce, depth=1) as events:
            seen.extend(events)
    assert seen == [("audio", 0), ("item", 0), ("audio", -1), ("item", 1), ("audio", -2), ("item", 2)]

    with Prefetch(lambda put: iter(range(10**9)), depth=2) as endless:
        assert next(iter(endless)) == ("item", 0)    # leaving the block stops the producer

    handled = []
    writer = WriterThread(lambda kind, value: handled.append(1 / value))
    writer.submit("video", 1)
    writer.submit("video", 0)
    with pytest.raises(ZeroDivisionError):
        writer.finish()
    assert handled == [1.0]
