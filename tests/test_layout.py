"""Layouts (--canvas, --fit, --margin, --align, --overlay, --shadow on a canvas): geometry and
pixels measured on real outputs of the real command (real model, sample photos)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from backdrop.cli.main import main
from backdrop.offline.layout import Layout, parse_layout, place

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"
COFFEE, ROCKET, CHELSEA = (str(SAMPLES / n) for n in ("coffee.png", "rocket.jpg", "chelsea.png"))
JPEG_CLEAR_PX = 12      # the promise in `backdrop image --help`


def _read(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"{path} was not written"
    return image


def _box(mask: np.ndarray):
    """(left, top, right, bottom), inclusive, of the true pixels."""
    ys, xs = np.nonzero(mask)
    assert xs.size, "nothing there"
    return xs.min(), ys.min(), xs.max(), ys.max()


def _not_white(image: np.ndarray) -> np.ndarray:
    return (image[..., :3] != 255).any(axis=2)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Each layout the tests look at, made once by the command."""
    out = tmp_path_factory.mktemp("layouts")
    runs = {
        "shadow.png": [COFFEE, "--canvas", "1000x1000", "--background", "white",
                       "--align", "bottom", "--shadow"],
        "shadow.jpg": [COFFEE, "--canvas", "1000x1000", "--background", "white",
                       "--align", "bottom", "--shadow"],
        "plain.png": [COFFEE, "--canvas", "1000x1000", "--background", "white",
                      "--align", "bottom"],
        "rocket.png": [ROCKET, "--canvas", "600x900"],
        "rocket-mask.png": [ROCKET, "--canvas", "600x900", "--mask"],
        "cat-fit.png": [CHELSEA, "--fit", "--margin", "10"],
    }
    for name, args in runs.items():
        assert main(["image", *args, "-o", str(out / name)]) == 0, name
    return out


def test_bottom_aligned_product_rests_on_the_lower_margin_and_white_is_exact(made):
    image = _read(made / "plain.png")
    assert image.shape == (1000, 1000, 3)
    left, top, right, bottom = _box(_not_white(image))
    # the cup (wider than tall) fills the width inside 5% margins, resting on the lower one
    assert abs(left - 50) <= 1 and abs(right - 949) <= 1 and abs(bottom - 949) <= 1
    assert top > 60, "a wide subject leaves room above it"
    # every pixel outside the subject's box is the background, exactly
    outside = np.ones(image.shape[:2], bool)
    outside[top:bottom + 1, left:right + 1] = False
    assert (image[outside] == 255).all()


def test_contact_shadow_lies_under_a_bottom_aligned_product(made):
    shadowed, plain = _read(made / "shadow.png"), _read(made / "plain.png")
    below = np.s_[952:985, 300:700]     # the bottom margin, under the saucer's base
    assert (plain[below] == 255).all(), "without --shadow the margin stays white"
    grey = shadowed[below].astype(int)
    assert grey.min() < 235, "a visible shadow under the base"
    assert (np.ptp(grey, axis=2) <= 2).all(), "the shadow is grey, not coloured"
    # soft: it fades out downwards and sideways, ending in exact white
    assert grey[:, :, 0].mean(axis=1)[0] < grey[:, :, 0].mean(axis=1)[-1]
    assert (shadowed[990:, :] == 255).all() and (shadowed[:, :10] == 255).all()
    # above the subject nothing changed
    np.testing.assert_array_equal(shadowed[:100], plain[:100])


def test_jpeg_keeps_white_exact_away_from_the_subject(made):
    png, jpg = _read(made / "shadow.png"), _read(made / "shadow.jpg")
    assert jpg.shape == png.shape
    drawn = _not_white(png).astype(np.uint8)
    far = cv2.distanceTransform(1 - drawn, cv2.DIST_L2, 5) > JPEG_CLEAR_PX
    assert far.sum() > 50_000, "the test must look at a real area of background"
    assert (jpg[far] == 255).all()


def test_centred_subject_on_a_transparent_canvas_and_its_mask_line_up(made):
    cut = _read(made / "rocket.png")
    assert cut.shape == (900, 600, 4), "transparent background: an RGBA canvas"
    alpha = cut[..., 3]
    left, top, right, bottom = _box(alpha > 0)
    # tall subject: height fills 900 less 5% of 600 (30 px) at each end; centred across
    assert abs(top - 30) <= 1 and abs(bottom - 869) <= 1
    assert abs(left - (599 - right)) <= 1
    assert (alpha[:, :29] == 0).all() and (alpha[:, 572:] == 0).all()
    mask = _read(made / "rocket-mask.png")
    assert mask.shape == (900, 600)
    np.testing.assert_array_equal(mask, alpha)


def test_fit_crops_to_the_subject_plus_the_margin(made):
    cut = _read(made / "cat-fit.png")
    h, w = cut.shape[:2]
    left, top, right, bottom = _box(cut[..., 3] > 0)
    margin = 0.10 * min(w, h)
    for gap in (left, top, w - 1 - right, h - 1 - bottom):
        assert abs(gap - margin) <= 1.0, (gap, margin, cut.shape)


def test_template_canvas_keeps_its_size_and_shows_around_the_subject(tmp_path):
    template = np.zeros((480, 640, 3), np.uint8)
    template[:] = (40, 90, 160)           # BGR on disk
    template[:, :20] = (0, 0, 255)
    path = tmp_path / "brand.png"
    cv2.imwrite(str(path), template)
    out = tmp_path / "post.jpg"
    # the template is opaque, so the default transparent background still makes a JPEG
    assert main(["image", CHELSEA, "--canvas", str(path), "-o", str(out)]) == 0
    post = _read(out)
    assert post.shape == (480, 640, 3)
    corner = post[5:20, 600:635].astype(int)
    assert np.abs(corner - (40, 90, 160)).max() <= 3
    assert np.abs(post[200:280, 2:14].astype(int) - (0, 0, 255)).max() <= 3
    centre = post[200:280, 280:360].astype(int)
    assert np.abs(centre - (40, 90, 160)).max() > 60, "the cat covers the centre"


def test_overlay_is_composited_with_its_alpha(tmp_path, capsys):
    logo = np.zeros((40, 40, 4), np.uint8)          # BGRA on disk
    logo[..., :3] = (0, 0, 200)                     # red
    logo[..., 3] = np.linspace(0, 255, 40).astype(np.uint8)[None, :]
    logo[:10, :10, 3] = 0                           # a transparent hole
    path = tmp_path / "logo.png"
    cv2.imwrite(str(path), logo)
    out = tmp_path / "shop.png"
    assert main(["image", COFFEE, "--canvas", "400x400", "--background", "white",
                 "--margin", "10", "--overlay", str(path), "-o", str(out)]) == 0
    shop = _read(out)
    assert shop.shape == (400, 400, 3)
    corner = shop[360:, 360:].astype(np.float32)    # smaller overlay: bottom-right corner
    a = logo[..., 3:4].astype(np.float32) / 255
    expected = logo[..., :3] * a + 255 * (1 - a)    # over the white margin
    assert np.abs(corner - expected).max() <= 1
    assert (shop[360:370, 360:370] == 255).all()
    assert (shop[:40, :] == 255).all(), "nothing else changed in the margin"
    assert "enlarged" not in capsys.readouterr().err, "the cup was shrunk: no warning"


def test_a_batch_with_a_canvas_warns_about_enlarged_subjects(tmp_path, capsys):
    out = tmp_path / "square"
    assert main(["image", COFFEE, CHELSEA, "--canvas", "900x900", "--background", "white",
                 "--jobs", "2", "-o", f"{out}/"]) == 0
    for stem in ("coffee", "chelsea"):
        image = _read(out / f"{stem}.png")
        assert image.shape == (900, 900, 3)
        left, top, right, bottom = _box(_not_white(image))
        assert min(left, top, 899 - right, 899 - bottom) >= 44     # 5% of 900 = 45, +-1
        assert min(abs(left - 45), abs(top - 45)) <= 1, "the subject touches a margin"
    # both subjects (~410 px wide) had to be enlarged about 2x: edges will be soft
    err = capsys.readouterr().err
    for name in ("coffee.png", "chelsea.png"):
        assert f"{name}: the subject" in err and "to fill the 900x900 canvas" in err
    assert "enlarged 2.0x" in err


@pytest.mark.parametrize("args, words", [
    (["--canvas", "0x10"], "--canvas 0x10: width and height must be whole numbers"),
    (["--canvas", "missing.png"], "--canvas missing.png: no such image file"),
    (["--canvas", "100x100", "--margin", "60"], "--margin 60: must be a number from 0 to 45"),
    (["--canvas", "100x100", "--margin", "wide"], "--margin wide: must be a number"),
    (["--canvas", "100x100", "--fit"], "use one of them"),
    (["--margin", "5"], "--margin places the subject on a canvas: add --canvas"),
    (["--fit", "--align", "bottom"], "drop --align"),
    (["--canvas", "100x100", "--background", "blur"], "--background blur keeps the photo's"),
    (["--overlay", "nope.png"], "--overlay nope.png: no such file"),
    (["--overlay", "OPAQUE", "--background", "white"], "has no alpha channel"),
    (["--canvas", "100x100", "--overlay", "LOGO", "--mask"], "drop one of them"),
])
def test_bad_values_give_one_line_and_exit_2(args, words, tmp_path, capsys):
    opaque, logo = tmp_path / "opaque.png", tmp_path / "logo.png"
    cv2.imwrite(str(opaque), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(logo), np.zeros((8, 8, 4), np.uint8))
    args = [str(opaque) if a == "OPAQUE" else str(logo) if a == "LOGO" else a for a in args]
    assert main(["image", COFFEE, *args, "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err and not (tmp_path / "x.png").exists()


def test_parse_layout_defaults_and_fit_geometry():
    assert parse_layout() == Layout() and not Layout().active
    layout = parse_layout("1200x800", "2.5", "bottom")
    assert layout.canvas == (1200, 800) and layout.margin == 2.5 and layout.align == "bottom"
    # the margin is a percentage of the result's smaller side with --fit too
    fit = place(parse_layout(fit=True, margin=10), (0, 0, 300, 200))
    assert fit.canvas == (300 + 2 * 25, 200 + 2 * 25) and fit.at == (25, 25)


def test_a_heavily_compressed_jpeg_gets_a_warning_and_a_good_one_none(tmp_path, capsys):
    from backdrop.io.images import jpeg_quality

    photo = cv2.imread(COFFEE)
    for q in (20, 50, 90):
        cv2.imwrite(str(tmp_path / f"q{q}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, q])
        assert abs(jpeg_quality(str(tmp_path / f"q{q}.jpg")) - q) <= 2
    assert jpeg_quality(COFFEE) is None and jpeg_quality(ROCKET) == 95
    assert main(["image", str(tmp_path / "q20.jpg"), str(tmp_path / "q90.jpg"), "--jobs", "1",
                 "--canvas", "500x500", "-o", f"{tmp_path}/out/"]) == 0
    err = capsys.readouterr().err
    assert "q20.jpg: saved as JPEG at quality ~20" in err and "q90.jpg: saved" not in err


def test_subject_box_ignores_faint_haze_and_specks():
    from backdrop.offline.canvas import subject_box

    alpha = np.zeros((200, 300), np.uint8)
    alpha[50:150, 100:180] = 255
    alpha[10:12, 5:7] = 255          # a 4 px speck far away: 0.05% of the subject
    alpha[160:190, 90:200] = 20      # haze under the subject, fainter than 1/8
    assert subject_box(alpha) == (100, 50, 180, 150)
    alpha[10:30, 5:25] = 255         # a second real part counts
    assert subject_box(alpha) == (5, 10, 180, 150)
    assert subject_box(np.zeros((20, 20), np.uint8)) is None


def test_overlay_sizes_cover_corner_and_shrink():
    from backdrop.offline.canvas import overlay_onto

    base = np.full((100, 200, 3), 255, np.uint8)
    red = np.zeros((100, 200, 4), np.uint8)
    red[..., 0], red[..., 3] = 255, 255
    np.testing.assert_array_equal(overlay_onto(base, red)[..., 1], 0)   # same size: covers
    logo = red[:10, :20]
    out = overlay_onto(base, logo)                                      # smaller: corner
    assert (out[90:, 180:, 1] == 0).all() and (out[:90] == 255).all() and (out[:, :180] == 255).all()
    big = np.zeros((400, 400, 4), np.uint8)
    big[..., 2], big[..., 3] = 255, 255
    out = overlay_onto(base, big)                                       # larger: fit, centred
    assert (out[:, 50:150, 2] == 255).all() and (out[:, 50:150, 0] == 0).all()
    assert (out[:, :50] == 255).all() and (out[:, 150:] == 255).all()
    # over a transparent cut-out: the overlay's own alpha where nothing was below
    clear = np.zeros((100, 200, 4), np.uint8)
    half = red.copy()
    half[..., 3] = 128
    out = overlay_onto(clear, half)
    assert (out[..., 3] == 128).all() and (out[..., 0] == 255).all()


def test_a_subject_cut_by_the_photo_edge_is_named_on_a_canvas(tmp_path, capsys):
    """The cat's head runs off the top of its photo: on a square that is a straight cut
    through the fur, which the user should hear about; the cup has room all round."""
    assert main(["image", CHELSEA, COFFEE, "--canvas", "600x600", "--background", "white",
                 "--jobs", "1", "-o", f"{tmp_path}/out/"]) == 0
    lines = capsys.readouterr().err.splitlines()
    cat = [line for line in lines if "chelsea.png: the photo's" in line]
    assert len(cat) == 1 and "top" in cat[0] and "cut" in cat[0]
    assert "straight edge on the canvas" in cat[0]
    assert not [line for line in lines if "coffee.png: the photo's" in line]
