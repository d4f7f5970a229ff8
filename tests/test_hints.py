"""Touch-up strokes: hard constraints, the touched region re-solved up to its own edge,
everything else left alone; on a synthetic scene and on a real photo's real matte."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from backdrop.engine.hints import refine_with_strokes, refresh_foreground

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"
H, W = 200, 240
YY, XX = np.mgrid[:H, :W]
DISC = (XX - 100) ** 2 + (YY - 110) ** 2 <= 50 ** 2          # the subject
OBJECT = (XX >= 140) & (XX < 205) & (YY >= 50) & (YY < 125)   # blue, behind it: background
HANDLE = (XX >= 25) & (XX < 60) & (YY >= 95) & (YY < 120)     # the subject's, same red


def soft(hard, sigma):
    return cv2.GaussianBlur(hard.astype(np.float32), (0, 0), sigma)


def scene():
    """The picture (a textured red disc with a handle in front of a blue box on a light
    wall) and a model's matte that kept the box and dropped the handle."""
    rng = np.random.default_rng(0)
    back = np.full((H, W, 3), 230, np.float32)
    back[OBJECT] = (40, 70, 200)
    subject = soft(DISC | HANDLE, 0.7)[..., None]
    front = np.array((200, 40, 30), np.float32) + rng.normal(0, 10, (H, W, 3))
    image = np.clip(subject * front + (1 - subject) * back + 0.5, 0, 255).astype(np.uint8)
    return image, soft(DISC | OBJECT, 2.0)


def strokes(remove_box=None, keep_box=None):
    masks = []
    for box in (keep_box, remove_box):
        m = np.zeros((H, W), bool)
        if box is not None:
            m[box] = True
        masks.append(m)
    return masks


REMOVE = np.s_[93:98, 160:200]      # across two thirds of the box
KEEP = np.s_[105:109, 30:50]        # across half the handle


def away_from(mask):
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)


def right_edge(alpha, y):
    """Where the row's alpha falls through 0.5 right of the disc's centre (sub-pixel)."""
    row = alpha[y, 100:]
    i = int(np.argmax(row < 0.5))
    return 100 + i - 1 + (row[i - 1] - 0.5) / (row[i - 1] - row[i])


def test_a_remove_stroke_across_part_of_an_object_removes_all_of_it():
    image, matte = scene()
    keep, remove = strokes(remove_box=REMOVE)
    box_only = OBJECT & (away_from(DISC) > 2)
    assert matte[box_only & (away_from(~OBJECT) > 4)].min() > 0.9   # the model kept the box
    out = refine_with_strokes(image, matte, keep, remove)
    assert out[box_only].max() < 0.02, out[box_only].max()
    # the disc's own edge where it met the box: within a pixel of the truth, and soft
    for y in range(60, 121, 5):
        truth = 100 + np.sqrt(50 ** 2 - (y - 110) ** 2)
        assert abs(right_edge(out, y) - truth) < 1.5, (y, right_edge(out, y), truth)
    edge = DISC & ~OBJECT | OBJECT & (away_from(DISC) <= 1.5)
    assert np.any((out > 0.1) & (out < 0.9) & edge & (XX > 140))
    # the disc itself stays subject, its matte as it was beyond the old outline next to
    # the box (that is re-solved too: 2 * EDGE px)
    inner = DISC & (away_from(~DISC) > 3) & (away_from(OBJECT) > 8)
    np.testing.assert_array_equal(out[inner], matte[inner])
    solid = DISC & (away_from(~DISC) > 2) & (matte > 0.98)
    assert out[solid].min() > 0.9 and out[solid].mean() > 0.999   # a speck on the texture


def test_a_keep_stroke_brings_back_a_dropped_piece_up_to_its_edge():
    image, matte = scene()
    keep, remove = strokes(keep_box=KEEP)
    inside = HANDLE & (away_from(~HANDLE) > 2) & ~DISC
    assert matte[inside & (away_from(DISC) > 5)].max() < 0.1   # the model dropped the handle
    out = refine_with_strokes(image, matte, keep, remove)
    # a textured piece: the solve may leave a speck or two a little under 1 near its edge
    assert out[inside].min() > 0.9 and out[inside].mean() > 0.99, out[inside].min()
    assert np.all(out[HANDLE & (away_from(~HANDLE) > 5)] == 1.0)
    dist = away_from(HANDLE)
    outside = (dist > 2) & (dist < 12) & (away_from(DISC) > 6)     # the wall round it
    assert out[outside].max() < 0.02
    for y in (100, 107, 115):                         # its left end, at x = 24.5
        row = out[y, :40]
        i = int(np.argmax(row >= 0.5))
        x = i - 1 + (0.5 - row[i - 1]) / (row[i] - row[i - 1])
        assert abs(x - 24.5) < 1.5, (y, x)


def test_strokes_are_hard_and_far_pixels_are_bit_identical():
    image, matte = scene()
    keep, remove = strokes(REMOVE, KEEP)
    keep[150:152, 60:140] = True          # across the subject too: already kept
    remove[5:8, 5:100] = True             # across the wall: already background
    out = refine_with_strokes(image, matte, keep, remove)
    assert np.all(out[keep] == 1.0) and np.all(out[remove] == 0.0)
    far = away_from(keep | remove | OBJECT | HANDLE) > 10
    assert far.sum() > 0.3 * H * W
    np.testing.assert_array_equal(out[far], matte[far])
    assert out.dtype == np.float32 and out.shape == (H, W)


def test_where_both_are_painted_remove_wins():
    image, matte = scene()
    keep, remove = strokes(REMOVE, REMOVE)
    out = refine_with_strokes(image, matte, keep, remove)
    assert np.all(out[remove] == 0.0)


def test_no_strokes_gives_an_unchanged_copy_and_the_inputs_are_not_touched():
    image, matte = scene()
    for a in (image, matte):
        a.flags.writeable = False
    keep, remove = strokes()
    out = refine_with_strokes(image, matte, keep, remove)
    np.testing.assert_array_equal(out, matte)
    assert out is not matte and out.flags.writeable
    keep, remove = strokes(REMOVE, KEEP)
    kept = matte.copy()
    refine_with_strokes(image, matte, keep, remove)
    np.testing.assert_array_equal(matte, kept)


@pytest.mark.parametrize("change, word", [
    (lambda f, a, k, r: (f.astype(np.float32), a, k, r), "frame"),
    (lambda f, a, k, r: (f[..., :2], a, k, r), "frame"),
    (lambda f, a, k, r: (f, a[:-1], k, r), "alpha"),
    (lambda f, a, k, r: (f, (a * 255).astype(np.uint8), k, r), "alpha"),
    (lambda f, a, k, r: (f, a, k.astype(np.uint8), r), "keep"),
    (lambda f, a, k, r: (f, a, k, r[:, :-1]), "remove"),
])
def test_bad_inputs_are_named(change, word):
    image, matte = scene()
    keep, remove = strokes(REMOVE)
    with pytest.raises(ValueError, match=word):
        refine_with_strokes(*change(image, matte, keep, remove))


def test_the_new_edge_gets_the_subjects_colour_and_the_rest_keeps_its_own():
    image, matte = scene()
    keep, remove = strokes(remove_box=REMOVE)
    out = refine_with_strokes(image, matte, keep, remove)
    colour = image.copy()
    colour[:, :, 1] = 7                   # stands for the colour made with the old matte
    fresh = refresh_foreground(image, out, matte, colour)
    unchanged = away_from(out != matte) > 25
    np.testing.assert_array_equal(fresh[unchanged], colour[unchanged])
    # the disc's new edge against the removed box: the frame there is half blue
    edge = (out > 0.2) & (out < 0.8) & (XX > 140) & (YY > 60) & (YY < 120)
    assert edge.sum() > 10
    blue_before = image[edge][:, 2].astype(float).mean()
    blue_after = fresh[edge][:, 2].astype(float).mean()
    assert blue_after < blue_before - 30, (blue_before, blue_after)
    assert np.array_equal(refresh_foreground(image, matte, matte, colour), colour)


@pytest.fixture(scope="module")
def coffee():
    """coffee.png and the matte the real image pipeline makes of it."""
    from backdrop.config import parse_background
    from backdrop.offline.image import ImageSettings, ImageWorker

    frame = np.ascontiguousarray(cv2.imread(str(SAMPLES / "coffee.png"))[..., ::-1])
    settings = ImageSettings(quality="balanced", background=parse_background("transparent"),
                             kind="mask", fmt="png")
    worker = ImageWorker(settings)
    try:
        alpha = worker.render(frame).image.astype(np.float32) / 255
    finally:
        worker.close()
    return frame, alpha


def test_a_remove_stroke_on_a_real_photo_cuts_there_and_nowhere_far(coffee):
    frame, alpha = coffee
    remove = np.zeros(alpha.shape, bool)
    # across the cup's red body and on to the saucer (the same red: a region that runs on)
    cv2.line(remove.view(np.uint8), (141, 204), (277, 250), 1, 5)
    assert alpha[remove].min() > 0.9
    out = refine_with_strokes(frame, alpha, np.zeros_like(remove), remove)
    assert np.all(out[remove] == 0.0)
    dist = away_from(remove)
    near = (dist > 0) & (dist <= 4)
    assert out[near].mean() < alpha[near].mean() - 0.3, (alpha[near].mean(), out[near].mean())
    changed = out != alpha
    assert dist[changed].max() < 40, dist[changed].max()
    np.testing.assert_array_equal(out[dist >= 40], alpha[dist >= 40])


def test_a_stroke_that_takes_a_whole_blob_needs_no_solve():
    """A remove stroke across a lone blob the model kept: the blob is the stroke's region,
    and no subject is left in the window to solve against (pymatting would refuse)."""
    image = np.full((H, W, 3), 230, np.uint8)
    blob = (XX - 60) ** 2 + (YY - 60) ** 2 <= 12 ** 2
    image[blob] = (30, 160, 40)
    matte = soft(blob, 1.0)
    keep, remove = strokes(remove_box=np.s_[58:62, 52:68])
    out = refine_with_strokes(image, matte, keep, remove)
    assert out[away_from(~blob) > 0].max() == 0.0


def test_warm_up_runs():
    from backdrop.engine.hints import warm_up

    warm_up()


def test_a_restored_piece_gets_the_frames_colour_back():
    """A cut-out's RGB is zeroed where alpha was 0 (cutout.rgba): the handle a keep stroke
    brings back must not come back black."""
    image, matte = scene()
    keep, remove = strokes(keep_box=KEEP)
    out = refine_with_strokes(image, matte, keep, remove)
    shown = np.clip(matte * 255 + 0.5, 0, 255).astype(np.uint8) > 0
    layer_rgb = np.where(shown[..., None], image, 0).astype(np.uint8)
    fresh = refresh_foreground(image, out, matte, layer_rgb)
    solid = HANDLE & (away_from(~HANDLE) > 3) & ~shown
    assert solid.sum() > 200 and layer_rgb[solid].max() == 0
    # the frame's own pixels (a few specks the solve left just under 1 get an estimate)
    diff = np.abs(fresh[solid].astype(int) - image[solid])
    assert np.mean(diff == 0) > 0.95 and diff.max() <= 8, diff.max()
