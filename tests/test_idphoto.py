"""ID photos: sizes, head and eye positions measured on the outputs with the same face
models, the background colour, the refusals, the print sheet, a batch. Real models, the NASA
astronaut portrait (public domain) as the sitter."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import cv2
from PIL import Image
import numpy as np
import pytest

from backdrop.cli.main import main
from backdrop.config import BackgroundSpec
from backdrop.errors import BackdropError, ConfigError
from backdrop.offline import idphoto, printsheet
from backdrop.offline.idphoto import MM_PER_INCH, SPECS, parse_id_photo
from backdrop.offline.image import ImageSettings, ImageWorker

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "src" / "backdrop" / "assets" / "astronaut.png"
COFFEE = ROOT / "assets" / "samples" / "coffee.png"
EVALDATA = ROOT.parent / "shared" / "evaldata"


def read_rgb(path) -> np.ndarray:
    return np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


@pytest.fixture(scope="module")
def worker():
    settings = ImageSettings("best", BackgroundSpec("transparent"), "idphoto", "png",
                             subject="person", id_photo=parse_id_photo("eu"))
    w = ImageWorker(settings, threads=1)
    yield w
    w.close()


@pytest.fixture(scope="module")
def faces(worker, astronaut):
    worker.render(astronaut)          # loads the worker's face models too
    return worker._faces


@pytest.fixture(scope="module")
def cut(worker, astronaut, faces):
    """The astronaut's landmarks, matte and colour, as render computes them (once)."""
    marks = idphoto.find_face(astronaut, faces)
    worker.pipeline.reset()
    processed = worker.pipeline.process(astronaut)
    return marks, processed.alpha.copy(), processed.colour.copy()


def _render(worker, frame, **options):
    saved = worker.settings
    worker.settings = replace(saved, id_photo=parse_id_photo(**options))
    try:
        return worker.render(frame)
    finally:
        worker.settings = saved


def _on_output(photo, faces, background):
    """(crown, eye line, chin, face centre x) measured on an ID photo: eyes and chin by the
    same detector and landmarker, the crown as the first row above the eyes, in the middle
    of the face, that is not the background colour."""
    boxes = faces.detect(photo)
    assert len(boxes) == 1
    marks = faces.landmarks(photo, boxes[0])
    x0, _, x1, _ = marks.extent
    half = 0.25 * (x1 - x0)
    band = photo[:int(marks.eye_line), int(marks.centre_x - half):int(marks.centre_x + half) + 1]
    person = (np.abs(band.astype(int) - background).sum(axis=2) > 30).mean(axis=1) > 0.3
    crown = np.flatnonzero(~person)[-1] + 1
    return crown, marks.eye_line, marks.chin[1], marks.centre_x


def _check_layout(photo, faces, options):
    spec = SPECS[options.spec]
    mm = MM_PER_INCH / options.dpi
    w, h = (round(v / mm) for v in spec.size_mm)
    assert photo.shape == (h, w, 3) and photo.dtype == np.uint8
    crown, eyes, chin, centre = _on_output(photo, faces, spec.background)
    head, eye_line = (chin - crown) * mm, (h - eyes) * mm
    assert spec.head_mm[0] <= head <= spec.head_mm[1], f"head {head:.1f} mm, {spec.head_mm}"
    assert spec.eyes_mm[0] <= eye_line <= spec.eyes_mm[1], f"eyes {eye_line:.1f} mm"
    assert abs(centre - w / 2) <= 2, f"face centre {centre:.1f}, photo centre {w / 2}"
    if spec.top_mm:
        assert spec.top_mm[0] <= crown * mm <= spec.top_mm[1], f"top {crown * mm:.1f} mm"
    else:
        assert crown > 0, "the hair must not touch the top edge"
    background = np.all(photo == spec.background, axis=2)
    assert background[:8, :8].all() and background[:8, -8:].all()
    assert background.mean() > 0.2
    return head, eye_line


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_layout_has_its_size_head_eyes_and_colour(name, cut, astronaut, faces):
    options = parse_id_photo(name)
    photo = idphoto.make(astronaut, *cut, options)
    _check_layout(photo, faces, options)


@pytest.mark.parametrize("name,dpi", [("us", 200), ("eu", 150)])
def test_other_dpi(name, dpi, cut, astronaut, faces):
    options = parse_id_photo(name, dpi)
    _check_layout(idphoto.make(astronaut, *cut, options), faces, options)


def test_a_large_photo_is_shrunk_into_place(cut, astronaut, faces):
    """Phone photos are larger than the layout: the other direction of scaling."""
    size = (1536, 1536)
    big = cv2.resize(astronaut, size, interpolation=cv2.INTER_CUBIC)
    _, alpha, colour = cut
    marks = idphoto.find_face(big, faces)
    options = parse_id_photo("eu")
    photo = idphoto.make(big, marks, cv2.resize(alpha, size), cv2.resize(colour, size), options)
    _check_layout(photo, faces, options)
    assert idphoto.place(idphoto.measure(marks, cv2.resize(alpha, size)), options).scale < 1


@pytest.mark.parametrize("stem", ["0035", "0125"])
def test_real_people_at_a_low_dpi(stem, worker, faces):
    """Street photos (small faces: 110 dpi keeps the enlargement under the limit). These
    two have their eyes far below the crown (hair up, a hood): the first targets cannot
    hold them and the narrower margin must."""
    path = EVALDATA / "photos" / "images" / f"{stem}.jpg"
    if not path.is_file():
        pytest.skip("../shared/evaldata is not present")
    options = parse_id_photo("eu", 110)
    photo = _render(worker, read_rgb(path), spec="eu", dpi=110).image
    _check_layout(photo, faces, options)


def test_render_makes_the_photo_and_the_sheet_and_a_colour_override(worker, astronaut, faces):
    rendered = _render(worker, astronaut, spec="uk", sheet="4x6in", colour=(250, 250, 250))
    photo = rendered.image
    assert photo.shape == (531, 413, 3)
    assert (photo[:8, :8] == 250).all()
    count, (cols, rows), size = printsheet.grid((413, 531), (101.6, 152.4), 300)
    assert (count, size) == (8, (1800, 1200))
    sheet = rendered.sheet
    assert sheet.shape == (1200, 1800, 3)
    corners = printsheet.positions((413, 531), cols, rows, size, 300)
    for x, y in corners:
        np.testing.assert_array_equal(sheet[y:y + 531, x:x + 413], photo)
    assert (sheet[:30, :30] == 255).all(), "the paper margin is white"
    x, y = corners[0]
    assert (sheet[y - 8:y - 2, x] < 200).all(), "a cut mark above the first copy's corner"


def test_a_tilted_head_is_laid_out_with_a_warning(worker, astronaut, faces):
    """The astronaut's own eye line leans 3 degrees (no warning: see the other tests);
    turned 10 degrees more, clockwise in the picture, the eye on the right drops further."""
    assert worker.render(astronaut).warnings == []
    turn = cv2.getRotationMatrix2D((225, 104), -10, 1.0)
    tilted = cv2.warpAffine(astronaut, turn, (512, 512), borderMode=cv2.BORDER_REFLECT)
    rendered = worker.render(tilted)
    (warning,) = rendered.warnings
    assert warning.startswith("the head is tilted 13 degrees (the eye on the right is lower)")
    assert rendered.image.shape == (531, 413, 3)


def test_settings_cross_the_process_boundary():
    settings = ImageSettings("best", BackgroundSpec("transparent"), "idphoto", "png",
                             id_photo=parse_id_photo("ca", "600", "10x15cm"))
    assert pickle.loads(pickle.dumps(settings)) == settings


def _refusal(worker, frame, **options) -> str:
    with pytest.raises(BackdropError) as e:
        _render(worker, frame, **options) if options else worker.render(frame)
    return str(e.value)


def test_no_face(worker):
    assert _refusal(worker, read_rgb(COFFEE)).startswith("no face found")


def test_several_faces(worker, astronaut):
    two = np.ascontiguousarray(np.hstack([astronaut, astronaut[:, ::-1]]))
    assert _refusal(worker, two).startswith("found 2 faces: an ID photo shows one person")


@pytest.mark.parametrize("crop,edge", [((slice(None), slice(0, 240)), "right"),
                                       ((slice(100, None), slice(None)), "top"),
                                       ((slice(0, 150), slice(None)), "bottom")])
def test_face_cut_off_names_the_edge(worker, astronaut, crop, edge):
    message = _refusal(worker, np.ascontiguousarray(astronaut[crop]))
    assert message.startswith(f"the face is cut off by the photo's {edge} edge")


def test_hair_cut_off_at_the_top(worker, astronaut):
    message = _refusal(worker, np.ascontiguousarray(astronaut[50:]))
    assert message.startswith("the top of the head is cut off by the photo's top edge")


def test_no_room_below_the_chin_or_beside_the_shoulders(worker, astronaut):
    below = _refusal(worker, np.ascontiguousarray(astronaut[:200]), spec="us")
    assert below.startswith("the photo ends too close below the chin for the us layout")
    side = _refusal(worker, np.ascontiguousarray(astronaut[:, 120:340]), spec="us")
    assert side.startswith("the person is cut off by the photo's left edge inside the us frame")


def test_head_too_small_for_the_dpi(cut, astronaut):
    with pytest.raises(BackdropError) as e:
        idphoto.make(astronaut, *cut, parse_id_photo("us", 600))
    assert "600 dpi us photo needs it" in str(e.value) and "dpi 3" in str(e.value)


def test_head_too_small_in_a_full_body_photo(worker):
    photo = EVALDATA / "photos" / "images" / "0007.jpg"
    if not photo.is_file():
        pytest.skip("../shared/evaldata is not present")
    message = _refusal(worker, read_rgb(photo))
    assert message.startswith("the head is ") and "use a larger photo of the face" in message


@pytest.mark.parametrize("args,words", [
    (("xx",), "unknown ID photo layout 'xx': choose one of eu, uk, us, cn, in, ca"),
    (("eu", "abc"), "dpi 'abc' must be a whole number from 72 to 1200"),
    (("eu", 5000), "dpi '5000'"),
    (("eu", 300, "4by6"), "sheet '4by6' is not a paper size"),
    (("ca", 300, "2x2cm"), "does not fit on a 2x2cm sheet"),
])
def test_option_mistakes(args, words):
    with pytest.raises(ConfigError, match=words):
        parse_id_photo(*args)


def test_sheet_sizes_and_orientation():
    assert printsheet.grid((413, 531), idphoto.parse_sheet("10x15cm"), 300)[0] == 8
    count, _, size = printsheet.grid((600, 600), idphoto.parse_sheet("4x6in"), 300)
    assert (count, size) == (2, (1200, 1800))


def test_command_refuses_in_one_line(tmp_path, capsys):
    assert main(["image", str(COFFEE), "--id-photo", "eu", "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "coffee.png: no face found" in err and not (tmp_path / "x.png").exists()
    assert main(["image", str(COFFEE), "--sheet", "4x6in"]) == 2
    assert "--sheet only apply to ID photos: add --id-photo" in capsys.readouterr().err
    for layout in (["--canvas", "800x800"], ["--fit"]):
        assert main(["image", str(COFFEE), "--id-photo", "eu", *layout]) == 2
        assert "do not go with --id-photo" in capsys.readouterr().err


def test_batch_writes_the_good_one_and_names_the_bad_one(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for source in (ASTRONAUT, COFFEE):
        (folder / source.name).write_bytes(source.read_bytes())
    out = tmp_path / "out"
    code = main(["image", str(folder), "--id-photo", "us", "--sheet", "4x6in", "-o",
                 f"{out}/", "--format", "jpg", "--jobs", "1"])
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.jpg", "astronaut.sheet.jpg"]
    assert cv2.imread(str(out / "astronaut.jpg")).shape == (600, 600, 3)
    assert cv2.imread(str(out / "astronaut.sheet.jpg")).shape == (1800, 1200, 3)
    for name in ("astronaut.jpg", "astronaut.sheet.jpg"):   # prints at 2x2 in and 4x6 in
        with Image.open(out / name) as printed:
            assert printed.info["dpi"] == (300, 300)
    err = capsys.readouterr().err
    assert "skipped:" in err and "coffee.png: no face found" in err
    assert "1 written, 1 failed" in err


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_the_files_say_their_dpi_so_they_print_at_their_size(fmt):
    """OpenCV writes no resolution; an ID photo printed at 72 or 96 dpi comes out 3-4x too
    large. The pixels are untouched and the file still decodes."""
    from io import BytesIO

    from backdrop.io.images import encode

    image = np.random.default_rng(0).integers(0, 256, (40, 30, 3), np.uint8)
    plain, marked = encode(image, fmt), encode(image, fmt, dpi=600)
    with Image.open(BytesIO(plain)) as before, Image.open(BytesIO(marked)) as after:
        assert before.info.get("dpi", (1, 1))[0] < 2          # none, or JFIF's 1:1 aspect
        assert np.round(after.info["dpi"]).tolist() == [600, 600]
        assert np.array_equal(np.asarray(before), np.asarray(after))
    assert encode(image, "webp", dpi=600) == encode(image, "webp")   # no field for it
