"""`backdrop image` end to end: real files, the real model, through backdrop.cli.main.main."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from backdrop.cli.main import main

ASTRONAUT = Path(__file__).resolve().parents[1] / "src" / "backdrop" / "assets" / "astronaut.png"


def _astronaut(size: int) -> np.ndarray:
    bgr = cv2.imread(str(ASTRONAUT), cv2.IMREAD_COLOR)
    return cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), _astronaut(256))
    return path


def _read(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"{path} was not written or does not decode"
    return image


def _hidden(folder: Path):
    return [p for p in folder.rglob(".*")]


def test_transparent_png_has_soft_alpha_and_the_original_pixels(photo, tmp_path, capsys):
    out = tmp_path / "cut.png"
    assert main(["image", str(photo), "-o", str(out)]) == 0
    result = _read(out)
    assert result.shape == (256, 256, 4) and result.dtype == np.uint8
    alpha = result[..., 3]
    assert np.count_nonzero(alpha == 255) > 0.2 * alpha.size
    assert np.count_nonzero(alpha == 0) > 0.1 * alpha.size
    assert np.count_nonzero((alpha > 0) & (alpha < 255)) > 100, "edges must be soft"
    solid = alpha == 255
    np.testing.assert_array_equal(result[..., :3][solid], _read(photo)[solid])
    assert not _hidden(tmp_path)
    assert "wrote" in capsys.readouterr().err


def test_default_output_goes_next_to_the_input(photo):
    assert main(["image", str(photo)]) == 0
    assert _read(photo.with_name("photo.cutout.png")).shape[2] == 4


def test_transparent_jpeg_is_refused_with_both_fixes(photo, tmp_path, capsys):
    out = tmp_path / "cut.jpg"
    assert main(["image", str(photo), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "PNG" in err and "--background" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["image", str(photo), "--format", "jpg"]) == 2


def test_jpeg_is_fine_with_an_opaque_background(photo, tmp_path):
    out = tmp_path / "white.jpg"
    assert main(["image", str(photo), "-o", str(out), "--background", "white"]) == 0
    result = _read(out)
    assert result.shape == (256, 256, 3)
    assert result[:8, -8:].mean() > 240, "the background corner should be white"


def test_mask_is_8bit_grey_with_the_same_stem(photo, tmp_path):
    assert main(["image", str(photo), "--mask"]) == 0
    mask = _read(photo.with_name("photo.mask.png"))
    assert mask.ndim == 2 and mask.dtype == np.uint8
    assert mask.min() == 0 and mask.max() == 255
    out_dir = tmp_path / "masks"
    assert main(["image", str(photo), "--mask", "-o", f"{out_dir}/"]) == 0
    assert _read(out_dir / "photo.png").ndim == 2


def test_webp_output_is_lossless_with_alpha(photo, tmp_path):
    out = tmp_path / "cut.webp"
    assert main(["image", str(photo), "-o", str(out)]) == 0
    result = _read(out)
    solid = result[..., 3] == 255
    assert result.shape[2] == 4 and solid.any()
    np.testing.assert_array_equal(result[..., :3][solid], _read(photo)[solid])


def test_batch_skips_a_corrupt_file_and_says_which(tmp_path, capsys):
    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ("a.png", "b.jpg"):
        cv2.imwrite(str(shots / name), _astronaut(200))
    (shots / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    out = tmp_path / "out"
    assert main(["image", str(shots), "-o", str(out), "--jobs", "2"]) == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "Traceback" not in err
    assert "2 written, 1 failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert not _hidden(tmp_path)


def test_never_overwrites_an_input(photo, tmp_path, capsys):
    before = photo.read_bytes()
    assert main(["image", str(photo), "-o", str(photo)]) == 2
    assert main(["image", str(tmp_path), "-o", str(tmp_path)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert photo.read_bytes() == before


def test_patterns_folders_and_recursion(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    cv2.imwrite(str(src / "top.png"), _astronaut(200))
    cv2.imwrite(str(src / "sub" / "deep.png"), _astronaut(200))
    out = tmp_path / "out"
    assert main(["image", str(src / "*.png"), "-o", f"{out}/", "--jobs", "1"]) == 0
    assert [p.name for p in out.iterdir()] == ["top.png"]
    out2 = tmp_path / "out2"
    assert main(["image", str(src), "-r", "-o", str(out2), "--jobs", "1"]) == 0
    assert (out2 / "top.png").is_file() and (out2 / "sub" / "deep.png").is_file()


def test_one_output_file_for_many_inputs_is_refused(photo, tmp_path, capsys):
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), _astronaut(200))
    assert main(["image", str(photo), str(other), "-o", str(tmp_path / "x.png")]) == 2
    assert "folder" in capsys.readouterr().err


def test_check_writes_a_contact_sheet(photo, tmp_path):
    out = tmp_path / "cut.png"
    assert main(["image", str(photo), "-o", str(out), "--check"]) == 0
    sheet = _read(tmp_path / "cut.check.png")
    assert sheet.shape == (256, 5 * 256, 3)
    corners = [sheet[2, i * 256 + 250] for i in range(5)]    # top right: background
    assert corners[0].min() > 240 and corners[1].max() < 15   # white, black
    assert abs(int(corners[2][0]) - 128) < 10                 # mid-grey


def test_shadow_adds_partial_opacity_outside_the_subject(photo, tmp_path):
    plain, shadowed = tmp_path / "plain.png", tmp_path / "shadow.png"
    assert main(["image", str(photo), "-o", str(plain)]) == 0
    assert main(["image", str(photo), "-o", str(shadowed), "--shadow"]) == 0
    a0, a1 = _read(plain)[..., 3], _read(shadowed)[..., 3]
    only_shadow = (a0 == 0) & (a1 > 0)
    assert np.count_nonzero(only_shadow) > 50
    assert a1[only_shadow].max() <= 128, "the shadow is half-transparent at most"
    assert np.all(a1 >= a0)
    solid = a0 == 255
    np.testing.assert_array_equal(_read(shadowed)[..., :3][solid], _read(photo)[solid])
    on_grey = tmp_path / "grey.png"
    assert main(["image", str(photo), "-o", str(on_grey), "--shadow", "--background", "grey"]) == 0
    assert _read(on_grey).shape == (256, 256, 3)


def test_small_input_gets_a_warning(tmp_path, capsys):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), _astronaut(128))
    assert main(["image", str(small)]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "192 px" in err


def test_exif_orientation_is_applied(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    wide = cv2.cvtColor(cv2.resize(_astronaut(256), (256, 192)), cv2.COLOR_BGR2RGB)
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6    # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(wide).save(path, exif=exif.tobytes(), quality=95)
    assert main(["image", str(path), "--mask"]) == 0
    assert _read(tmp_path / "rotated.mask.png").shape == (256, 192)


def test_missing_input_is_an_input_error(tmp_path, capsys):
    assert main(["image", str(tmp_path / "nope.jpg")]) == 3
    err = capsys.readouterr().err
    assert "nope.jpg" in err and "Traceback" not in err


def test_a_single_unreadable_input_is_an_input_error(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    assert main(["image", str(bad)]) == 3
    assert "notes.png" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["notes.png"]
