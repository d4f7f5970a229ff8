"""Matting-grade edges: closed-form alpha in the outline band and the subject's own colour."""

import cv2
import numpy as np
import pytest

from backdrop.engine import matting
from backdrop.engine.matting import estimate_foreground, refine_alpha

H, W = 120, 160


def soft_disc(cx=80, cy=60, r=35, sigma=1.5):
    yy, xx = np.mgrid[:H, :W]
    hard = ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r).astype(np.float32)
    return cv2.GaussianBlur(hard, (0, 0), sigma)


def scene(alpha, fg=(200, 40, 30), bg=(235, 235, 235)):
    """A textured subject on a plain backdrop, composited exactly with `alpha`."""
    rng = np.random.default_rng(0)
    front = np.clip(np.array(fg, np.float32) + rng.normal(0, 12, (H, W, 3)), 0, 255)
    back = np.broadcast_to(np.array(bg, np.float32), (H, W, 3))
    image = alpha[..., None] * front + (1 - alpha[..., None]) * back
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), front


def ring(alpha, r=8):
    inside = (alpha >= 0.5).astype(np.uint8)
    edge = cv2.morphologyEx(inside, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    return cv2.dilate(edge, np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0


def test_a_mask_off_by_a_few_pixels_is_pulled_onto_the_true_edge():
    truth = soft_disc()
    image, _ = scene(truth)
    model = soft_disc(r=38, sigma=3.0)        # too fat by 3 px, and too soft
    refined = refine_alpha(image, model)
    band = ring(truth)
    before = np.abs(model - truth)[band].mean()
    after = np.abs(refined - truth)[band].mean()
    assert after < 0.4 * before, (before, after)


def filled_gap(body, gap, haze):
    """A body (rows, columns) with a gap of backdrop in it, open below, and a model that
    filled the gap with `haze` (as models do between legs, or arm and body)."""
    hard = np.zeros((H, W), np.float32)
    hard[body] = 1
    filled = hard.copy()
    hard[gap] = 0
    model = np.maximum(cv2.GaussianBlur(hard, (0, 0), 3),
                       haze * cv2.GaussianBlur(filled, (0, 0), 3))
    return cv2.GaussianBlur(hard, (0, 0), 1.5), model


def legs(gap_haze=0.45):
    """Legs with a 14 px gap between them."""
    return filled_gap(np.s_[15:100, 40:118], np.s_[60:100, 72:86], gap_haze)


@pytest.mark.parametrize("fg, bg", [((200, 40, 30), (235, 235, 235)),
                                    ((60, 60, 70), (20, 20, 20))])
def test_a_gap_showing_the_backdrop_is_cleared(fg, bg):
    """Without the backdrop-coloured patches as anchors the haze stays (0.25-0.29 here)."""
    truth, model = legs()
    image, _ = scene(truth, fg=fg, bg=bg)
    refined = refine_alpha(image, model)
    assert refined[64:96, 76:82].mean() < 0.15


def test_a_thin_line_of_the_backdrops_colour_is_not_taken_for_backdrop():
    """A pale seam 2 px wide inside the subject has the backdrop's colour, but it is no
    patch: the matting decides there, not the colour test. A patch of it is taken."""
    truth = soft_disc()
    image, _ = scene(truth)
    image[40:80, 100:102] = 235                   # the seam
    image[50:70, 50:64] = 235                     # a 14 px hole showing the backdrop
    sure_in = np.zeros((H, W), bool)              # all of the disc unsure, for the test
    _, sure_out = matting._band(truth, matting.BAND)
    plain = matting._backdrop_patches(image, np.full((H, W), 0.5, np.float32),
                                      sure_in, sure_out)
    assert not plain[40:80, 96:106].any()
    assert plain[56:64, 52:56].all()


def test_outside_the_band_nothing_moves_and_the_input_is_kept():
    truth = soft_disc()
    image, _ = scene(truth)
    model = soft_disc(r=38, sigma=3.0)
    model.flags.writeable = False
    kept = model.copy()
    refined = refine_alpha(image, model)
    np.testing.assert_array_equal(model, kept)
    far = ~ring(model, r=12)
    np.testing.assert_array_equal(refined[far], model[far])
    assert refined.dtype == np.float32 and refined.shape == model.shape


def test_no_outline_means_nothing_to_do():
    image, _ = scene(np.ones((H, W), np.float32))
    for alpha in (np.zeros((H, W), np.float32), np.ones((H, W), np.float32)):
        np.testing.assert_array_equal(refine_alpha(image, alpha), alpha)


def test_the_foreground_colour_replaces_the_backdrop_in_the_edge():
    """Against the exact answer: a pale rim (the old light wall) would show on black."""
    truth = soft_disc()
    image, front = scene(truth)
    colour = estimate_foreground(image, truth)
    edge = (truth > 0.05) & (truth < 0.95)
    naive = np.abs(truth[..., None] * image - truth[..., None] * front)[edge].mean()
    ours = np.abs(truth[..., None] * colour - truth[..., None] * front)[edge].mean()
    assert ours < 0.35 * naive, (naive, ours)
    sure = truth >= 0.98
    np.testing.assert_array_equal(colour[sure], image[sure])   # the subject's own pixels


def test_the_foreground_matches_pymattings_estimate_where_both_are_defined():
    """pymatting's multilevel estimate as the reference implementation: both recover the
    subject's colour on the edge of a plain-coloured subject to within a few levels."""
    from pymatting import estimate_foreground_ml

    truth = soft_disc()
    image, _ = scene(truth, fg=(30, 90, 200), bg=(20, 20, 20))
    ours = estimate_foreground(image, truth).astype(np.float32)
    ref = estimate_foreground_ml(image / 255.0, truth.astype(np.float64)) * 255
    edge = (truth > 0.3) & (truth < 0.95)
    assert np.abs(ours - ref)[edge].mean() < 12
    assert np.abs(ours[edge] - (30, 90, 200)).mean() < 20


@pytest.mark.parametrize("alpha", [np.zeros((H, W), np.float32), np.ones((H, W), np.float32)])
def test_no_edge_gives_the_frame_itself(alpha):
    image, _ = scene(soft_disc())
    out = estimate_foreground(image, alpha)
    np.testing.assert_array_equal(out, image)
    assert out is not image


def test_cut_outs_of_real_people_glow_less(eval_photos, tmp_path):
    """The edge-colour check on shared photos: a person pasted (with a 1.5 px soft edge) on
    a light wall, cut out by `backdrop image`, put on black, against the exact composite."""
    from backdrop.cli import main

    errors = {"before": [], "after": []}
    for stem, person, mask in eval_photos[:4]:
        truth = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 1.5)[..., None]
        photo = np.clip(truth * person + (1 - truth) * 235.0 + 0.5, 0, 255).astype(np.uint8)
        src = tmp_path / f"{stem}.png"
        cv2.imwrite(str(src), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
        assert main(["image", str(src), "-o", str(tmp_path / f"{stem}.cut.png"), "-q"]) == 0
        cut = cv2.imread(str(tmp_path / f"{stem}.cut.png"), cv2.IMREAD_UNCHANGED)
        alpha = cut[..., 3:].astype(np.float32) / 255
        after = cut[..., 2::-1].astype(np.float32) * alpha        # on black
        before = photo.astype(np.float32) * alpha                 # the same alpha, old colour
        exact = truth * person.astype(np.float32)
        band = ring(mask.astype(np.float32) / 255)
        errors["after"].append(np.abs(after - exact)[band].mean())
        errors["before"].append(np.abs(before - exact)[band].mean())
    assert np.mean(errors["after"]) < np.mean(errors["before"]), errors


def test_real_people_on_a_dark_backdrop_lose_less_edge(eval_photos, monkeypatch):
    """The edge-colour check (dark backdrop, on white) with the real model's matte of two
    shared photos: refine_alpha with and without the backdrop-coloured patches as anchors."""
    from backdrop.config import PipelineConfig
    from backdrop.engine.pipeline import Pipeline

    cases = []
    with Pipeline(PipelineConfig.preset("best", subject="auto")) as pipeline:
        for _, person, mask in eval_photos[2:4]:
            truth = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 1.5)[..., None]
            photo = np.clip(truth * person + (1 - truth) * 20.0 + 0.5, 0, 255).astype(np.uint8)
            cases.append((photo, pipeline.matte(photo), truth * person + (1 - truth) * 255.0,
                          ring(mask.astype(np.float32) / 255)))

    def error(refine):
        total = 0.0
        for photo, model, exact, band in cases:
            alpha = refine(photo, model)
            colour = estimate_foreground(photo, alpha).astype(np.float32)
            got = colour * alpha[..., None] + 255.0 * (1 - alpha[..., None])
            total += np.abs(got - exact)[band].mean()
        return total / len(cases)

    after = error(refine_alpha)
    monkeypatch.setattr(matting, "_backdrop_patches",
                        lambda image, alpha, *_: np.zeros(alpha.shape, bool))
    before = error(refine_alpha)
    assert after < before - 0.3, (before, after)


def deep_gap(haze):
    """A 22 px gap: its middle is farther than the band from the model's outline, so the
    band cannot reach it."""
    return filled_gap(np.s_[10:110, 30:130], np.s_[35:110, 69:91], haze)


@pytest.mark.parametrize("fg, bg", [((200, 40, 30), (235, 235, 235)),
                                    ((60, 60, 70), (20, 20, 20))])
def test_a_gap_deeper_than_the_band_showing_a_plain_backdrop_is_cleared(fg, bg):
    """Without `_backdrop_inside` the gap keeps the model's 0.9 (it is sure subject)."""
    truth, model = deep_gap(0.9)
    image, _ = scene(truth, fg=fg, bg=bg)
    refined = refine_alpha(image, model)
    assert refined[42:95, 74:86].mean() < 0.15
    assert refined[20:30, 40:120].min() > 0.95            # the body stays


def test_a_subject_part_the_model_is_sure_of_stays_even_in_the_backdrops_colour():
    """A black helmet on a black table: the model says 1 there, and a colour test alone
    would cut a hole in it (it is far from the striped subject's mean colour)."""
    truth, model = deep_gap(1.0)
    truth = np.maximum(truth, model)
    image, _ = scene(truth, fg=(200, 40, 30), bg=(20, 20, 20))
    image[35:110, 69:91] = 20
    refined = refine_alpha(image, model)
    assert refined[42:95, 74:86].min() > 0.95


def bound_case(bg, fg, backdrop_noise=0.0):
    truth = soft_disc(sigma=3.0)
    rng = np.random.default_rng(1)
    image, _ = scene(truth, fg=fg, bg=bg)
    noise = rng.normal(0, backdrop_noise, (H, W, 3)) * (1 - truth[..., None])
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    sure_in, sure_out = matting._band(truth, matting.BAND)
    return truth, image, sure_in, sure_out


@pytest.mark.parametrize("fg, bg", [((60, 40, 30), (235, 235, 235)),
                                    ((200, 170, 120), (20, 20, 20))])
def test_on_a_plain_backdrop_alpha_is_at_least_what_the_compositing_equation_allows(fg, bg):
    """A solve that ran low (here: a third of the truth) is raised to the least alpha a real
    colour allows; it is a lower bound, so it never overshoots the truth."""
    truth, image, sure_in, sure_out = bound_case(bg, fg)
    low = (truth / 3).astype(np.float32)
    low[sure_in | sure_out] = 0
    out = matting._at_least_the_backdrop_allows(image, low, sure_in, sure_out)
    unsure = ~(sure_in | sure_out) & (truth > 0.2)
    assert out[unsure].mean() > 0.7 * truth[unsure].mean()
    assert (out - truth)[unsure].max() < 0.03
    np.testing.assert_array_equal(out[sure_in | sure_out], 0)


def test_a_shadow_on_a_plain_wall_that_the_solve_left_out_stays_out():
    """A soft shadow is darker than the wall, as a dark subject would be; where the solve
    found no subject, the bound adds none (it had made a 0.24 grey haze)."""
    h, w = 40, 60
    image = np.full((h, w, 3), 200, np.uint8)
    image[:, 28:32] = 150                                  # the shadow
    image[:, 50:] = (30, 40, 50)                           # the subject
    sure_out = np.zeros((h, w), bool)
    sure_out[:, :24] = sure_out[:, 36:50] = True
    sure_in = np.zeros((h, w), bool)
    sure_in[:, 50:] = True
    solved = np.zeros((h, w), np.float32)
    out = matting._at_least_the_backdrop_allows(image, solved, sure_in, sure_out)
    assert out[:, 28:32].max() == 0
    solved[:, 28:32] = 0.1                                 # some subject found: raised
    assert matting._at_least_the_backdrop_allows(image, solved, sure_in, sure_out)[20, 29] > 0.2


def test_on_a_textured_backdrop_the_bound_stays_off():
    """A backdrop that varies (a room, foliage) gives no known B: the solve is kept."""
    truth, image, sure_in, sure_out = bound_case((235, 235, 235), (60, 40, 30), 20.0)
    solved = np.full((H, W), 0.25, np.float32)
    out = matting._at_least_the_backdrop_allows(image, solved, sure_in, sure_out)
    np.testing.assert_array_equal(out, solved)


def hazy_subject(backdrop_noise):
    """A dark subject the model is unsure of all over (0.75 at most, as models are on a dark
    jacket before a light wall): no sure subject anywhere for the reach guard."""
    truth = soft_disc()
    image, _ = scene(truth, fg=(60, 40, 30))
    rng = np.random.default_rng(2)
    noise = rng.normal(0, backdrop_noise, (H, W, 3)) * (1 - truth[..., None])
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    return truth, image, 0.75 * soft_disc(r=38, sigma=3.0)


def test_on_a_plain_backdrop_a_subject_the_model_was_unsure_of_is_solved():
    """Without `_subject_by_colour` the reach guard keeps the model's haze (0.75 inside the
    outline)."""
    truth, image, model = hazy_subject(0.0)
    refined = refine_alpha(image, model)
    band = ring(truth)
    assert refined[band & (truth > 0.99)].min() > 0.95
    assert np.abs(refined - truth)[band].mean() < 0.5 * np.abs(model - truth)[band].mean()


def test_before_a_textured_backdrop_the_models_haze_is_kept():
    """A blurred body in front of a room: no known backdrop, so no sure subject by colour."""
    truth, image, model = hazy_subject(20.0)
    refined = refine_alpha(image, model)
    np.testing.assert_allclose(refined[50:70, 70:90], model[50:70, 70:90], atol=1e-6)


def test_the_dark_backdrop_beside_a_white_rim_stays_backdrop(astronaut):
    """The astronaut's studio backdrop is near black, a few levels darker in places. Raising
    alpha to the compositing equation's bound must not take those shades for subject: a
    channel of B at 5 levels left no room, and a dotted dark line along the held helmet's
    white rim became opaque (0.7-0.8) and showed on white."""
    from backdrop.config import BackgroundSpec
    from backdrop.offline.image import ImageSettings, ImageWorker

    worker = ImageWorker(ImageSettings("best", BackgroundSpec("transparent"), "cutout", "png"))
    try:
        layer = worker.render(astronaut).image
    finally:
        worker.close()
    above_rim = (slice(330, 360), slice(380, 512))
    backdrop = astronaut[above_rim].max(-1) < 30
    assert backdrop.sum() > 2000
    assert layer[above_rim][..., 3][backdrop].max() <= 40
