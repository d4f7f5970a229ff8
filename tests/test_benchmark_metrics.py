"""Benchmark metrics on tiny hand-made masks, and synthetic-sequence determinism."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import metrics  # noqa: E402

PHOTOS = BENCHMARKS.parent.parent / "shared" / "evaldata" / "photos"
needs_photos = pytest.mark.skipif(not (PHOTOS / "images").is_dir(),
                                  reason=f"evaluation photos not found at {PHOTOS}")


def square(shape, top, left, size, value=255):
    m = np.zeros(shape, np.uint8)
    m[top:top + size, left:left + size] = value
    return m


def step(shape, edges):
    """Person left of column ``edges[row]`` in each row."""
    m = np.zeros(shape, np.uint8)
    for row, edge in enumerate(edges):
        m[row, :edge] = 255
    return m


# ---- IoU

def test_iou_of_square_and_square_shifted_by_one():
    truth = square((4, 4), 1, 1, 2)
    pred = square((4, 4), 1, 2, 2)
    assert metrics.iou(pred, truth) == pytest.approx(2 / 6)  # 2 shared of 6 pixels


def test_iou_edge_cases():
    empty = np.zeros((4, 4), np.uint8)
    assert metrics.iou(empty, empty) == 1.0
    assert metrics.iou(empty, square((4, 4), 1, 1, 2)) == 0.0
    assert metrics.iou(square((4, 4), 0, 0, 4), square((4, 4), 0, 0, 4)) == 1.0


def test_iou_threshold_is_128():
    truth = square((4, 4), 1, 1, 2)
    assert metrics.iou(square((4, 4), 1, 1, 2, value=128), truth) == 1.0
    assert metrics.iou(square((4, 4), 1, 1, 2, value=127), truth) == 0.0


def test_mismatched_masks_are_rejected():
    with pytest.raises(ValueError):
        metrics.iou(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(TypeError):
        metrics.mae(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8))


# ---- boundary F

def test_boundary_map_of_a_square_is_its_ring():
    b = metrics.boundary_map(metrics.binarize(square((4, 4), 1, 1, 2)))
    expected = np.array([[1, 1, 1, 0],
                         [1, 0, 1, 0],
                         [1, 1, 1, 0],
                         [0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(b, expected)


def test_boundary_radius_and_disk():
    assert metrics.boundary_radius((10, 12)) == 1  # 0.0075 * 15.6 -> 1
    assert metrics.boundary_radius((480, 854)) == 8  # 0.0075 * 979.6 = 7.35 -> 8
    np.testing.assert_array_equal(metrics.disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])


def test_boundary_f_identical_masks_is_one():
    m = square((60, 80), 10, 20, 25)
    assert metrics.boundary_f(m, m) == 1.0


def test_boundary_f_lower_for_shifted_square():
    truth = square((60, 80), 10, 20, 25)
    assert 0.0 < metrics.boundary_f(square((60, 80), 10, 26, 25), truth) < 1.0


def test_boundary_prf_hand_computed_jog():
    # 10x12, radius 1. Truth edge: column 4 in every row (10 boundary pixels).
    # Prediction: edge at column 4 in rows 0-4, column 7 in rows 5-9; its boundary
    # is (0..4, 4) + (4, 5..7) + (5..9, 7) = 13 pixels, of which 6 lie within 1 px
    # (plus-shaped disk) of the truth edge; 6 truth pixels (rows 0-5) are matched.
    truth = step((10, 12), [5] * 10)
    pred = step((10, 12), [5] * 5 + [8] * 5)
    p, r, f = metrics.boundary_prf(pred, truth)
    assert p == pytest.approx(6 / 13)
    assert r == pytest.approx(6 / 10)
    assert f == pytest.approx(12 / 23)


def test_boundary_f_edge_cases():
    empty, full = np.zeros((8, 8), np.uint8), np.full((8, 8), 255, np.uint8)
    ring = square((8, 8), 2, 2, 3)
    assert metrics.boundary_prf(empty, empty) == (1.0, 1.0, 1.0)
    assert metrics.boundary_f(full, full) == 1.0  # the frame border is no boundary
    assert metrics.boundary_prf(empty, ring) == (1.0, 0.0, 0.0)
    assert metrics.boundary_prf(ring, empty) == (0.0, 1.0, 0.0)


# ---- MAE

def test_mae_uses_the_soft_prediction():
    pred = np.array([[0, 255], [128, 64]], np.uint8)
    truth = np.array([[0, 255], [255, 0]], np.uint8)
    assert metrics.mae(pred, truth) == pytest.approx((127 + 64) / 4 / 255)


# ---- temporal

def test_flicker_and_flips_zero_for_constant_sequence():
    seq = [square((6, 6), 1, 1, 3)] * 5
    assert metrics.flicker(seq, seq) == 0.0
    assert metrics.flip_rate(seq) == 0.0


def test_flicker_of_alternating_sequence():
    a, b = np.full((4, 4), 100, np.uint8), np.full((4, 4), 151, np.uint8)
    preds = [a, b, a, b, a]
    truths = [square((4, 4), 0, 0, 2)] * 5
    assert metrics.flicker(preds, truths) == pytest.approx(51 / 255)  # 0.2 per step
    assert metrics.flip_rate(preds) == 1.0  # 100 < 128 <= 151: every pixel flips


def test_flicker_subtracts_truth_motion():
    t0, t1 = square((4, 4), 0, 0, 2), square((4, 4), 0, 2, 2)  # 8 of 16 px change
    preds = [np.zeros((4, 4), np.uint8), np.full((4, 4), 255, np.uint8)] * 2
    truths = [t0, t1, t0, t1]
    assert metrics.flicker(preds, truths) == pytest.approx(1.0 - 0.5)
    assert metrics.flip_rate(truths) == pytest.approx(0.5)


def test_temporal_metrics_need_two_frames():
    one = [np.zeros((4, 4), np.uint8)]
    assert math.isnan(metrics.flicker(one, one))
    assert math.isnan(metrics.flip_rate(one))


def test_to_uint8_rounds_and_clips():
    m = np.array([[0.0, 0.5], [1.2, -0.1]], np.float32)
    np.testing.assert_array_equal(metrics.to_uint8(m, (2, 2)), [[0, 128], [255, 0]])


# ---- synthetic sequences

@needs_photos
@pytest.mark.parametrize("kind", ["static", "moving"])
def test_synthetic_sequences_are_deterministic(kind):
    import synthetic

    frames1, masks1 = synthetic.GENERATORS[kind](PHOTOS, 3, seed=1)
    frames2, masks2 = synthetic.GENERATORS[kind](PHOTOS, 3, seed=1)
    assert frames1[0].shape == (480, 640, 3) and frames1[0].dtype == np.uint8
    assert masks1[0].shape == (480, 640) and masks1[0].dtype == np.uint8
    for f1, f2, m1, m2 in zip(frames1, frames2, masks1, masks2):
        np.testing.assert_array_equal(f1, f2)
        np.testing.assert_array_equal(m1, m2)
    assert not np.array_equal(frames1[0], frames1[1])  # noise differs per frame


@needs_photos
def test_static_truth_is_constant_and_person_sized():
    import synthetic

    _, masks = synthetic.render_static(PHOTOS, 4, seed=0)
    for m in masks[1:]:
        np.testing.assert_array_equal(m, masks[0])
    rows = np.nonzero((masks[0] >= 128).any(axis=1))[0]
    assert rows[-1] == 479  # the person reaches the bottom edge, like a webcam subject
    assert 0.4 * 480 <= rows[-1] - rows[0] + 1 <= 0.62 * 480


@needs_photos
def test_moving_truth_moves():
    import synthetic

    _, masks = synthetic.render_moving(PHOTOS, 3, seed=0)
    assert not np.array_equal(masks[0], masks[2])


def test_quality_skips_cleanly_without_evaldata(tmp_path, capsys):
    pytest.importorskip("mediapipe")
    import quality

    assert quality.main(["--evaldata", str(tmp_path), "--methods", "raw-landscape"]) == 0
    out = capsys.readouterr()
    assert "skipping set photos" in out.err and "nothing evaluated" in out.out


# ---- edge colour

def _edge_scene(h=40, w=40, person=(200, 120, 60)):
    """A person filling the left half (truth) in one flat colour, softened alpha."""
    import edge

    truth = np.zeros((h, w), np.uint8)
    truth[:, : w // 2] = 255
    colour = np.empty((h, w, 3), np.uint8)
    colour[:] = person
    return edge, truth, colour, edge.true_alpha(truth)


def test_outline_band_is_the_pixels_within_the_radius_of_the_outline():
    import edge

    truth = np.zeros((10, 40), np.uint8)
    truth[:, :20] = 255
    # the outline is column 19 (its right neighbour differs): columns 11..27 are within 8
    band = edge.outline_band(truth, radius=8)
    np.testing.assert_array_equal(np.nonzero(band[5])[0], np.arange(11, 28))
    assert not edge.outline_band(np.zeros((10, 40), np.uint8)).any()


def test_true_alpha_is_the_mask_softened_by_sigma_1_5():
    edge, truth, _, true_a = _edge_scene()
    assert true_a.dtype == np.float32 and true_a.max() <= 1.0
    assert true_a[0, 0] == pytest.approx(1.0) and true_a[0, -1] == pytest.approx(0.0)
    assert 0.3 < true_a[0, 19] < 0.7 and 0.3 < true_a[0, 20] < 0.7  # the step straddles
    assert 0.01 < true_a[0, 22] < 0.2                             # 2.5 sigma out: a tail


def test_edge_error_is_zero_with_the_true_alpha_and_the_true_colour():
    edge, truth, person, true_a = _edge_scene()
    band = edge.outline_band(truth)
    for backdrop, opposite in edge.CASES.values():
        edge.paste(person, true_a, backdrop)  # what the method would see; unused here
        assert edge.edge_error(person, true_a, person, true_a, opposite, band) == 0.0
        assert edge.alpha_error(true_a, true_a, band) == 0.0


def test_edge_error_of_colour_spill_with_the_true_alpha():
    # alpha 0.5 everywhere: the input pixel is half person, half backdrop; cutting it out
    # with the input as colour and pasting on `opposite` gives .25 P + .25 B + .5 O where
    # .5 P + .5 O was due: an error of .25 |P - B| per channel.
    import edge

    truth = np.zeros((20, 20), np.uint8)
    truth[:, :10] = 255
    band = edge.outline_band(truth)
    person = np.full((20, 20, 3), (200, 120, 60), np.uint8)
    half = np.full((20, 20), 0.5, np.float32)
    image = edge.paste(person, half, edge.DARK)           # (110, 70, 40)
    err = edge.edge_error(image, half, person, half, edge.WHITE, band)
    assert err == pytest.approx(0.25 * np.mean([200 - 20, 120 - 20, 60 - 20]))  # 26.67


def test_edge_error_of_a_realistic_spill_and_of_a_shifted_alpha():
    edge, truth, person, true_a = _edge_scene()
    band = edge.outline_band(truth)
    image = edge.paste(person, true_a, edge.DARK)
    # oracle alpha over the input pixels: only the rim carries backdrop colour, so the
    # error is the mean of A (1 - A) |P - B| over the band, a few levels here
    spill = edge.edge_error(image, true_a, person, true_a, edge.WHITE, band)
    rim = (true_a * (1 - true_a))[band].mean()
    assert spill == pytest.approx(rim * np.mean([180, 100, 40]), abs=0.3)
    assert 1.0 < spill < 10.0
    # the alpha one pixel too wide: much worse than the spill, and its alpha error shows it
    wide = np.roll(true_a, 1, axis=1)
    wide[:, 0] = 1.0
    assert edge.edge_error(image, wide, person, true_a, edge.WHITE, band) > 2 * spill
    assert edge.alpha_error(wide, true_a, band) > 5.0


def test_edge_error_ignores_pixels_outside_the_band():
    edge, truth, person, true_a = _edge_scene(w=60)
    band = edge.outline_band(truth)
    wrong = true_a.copy()
    wrong[:, :10] = 0.0                     # far inside the person (outline at 29..30)
    assert edge.edge_error(person, wrong, person, true_a, edge.WHITE, band) == 0.0
    wrong[:, 25] = 0.0
    assert edge.edge_error(person, wrong, person, true_a, edge.WHITE, band) > 0.0


# ---- methods and seeded sets

def test_backdrop_method_names_change_one_preset_field():
    pytest.importorskip("mediapipe")
    import methods
    from backdrop.engine.pipeline import PRESETS

    method = methods.make_method("backdrop-best,pose=0.5,look=2")
    try:
        assert method.pipeline.preset.pose == 0.5 and method.changed
        assert method.pipeline.preset.tiles == PRESETS["best"].tiles
        assert hasattr(method, "matte_sequence")      # look=N: the path of `backdrop video`
    finally:
        method.close()
    with pytest.raises(methods.Unavailable, match="no field 'posse'"):
        methods.make_method("backdrop-best,posse=0")
    with pytest.raises(methods.Unavailable, match="unknown method"):
        methods.make_method("nonsense")


def test_subject_methods_need_a_subject_setting():
    pytest.importorskip("mediapipe")
    import dataclasses

    import methods
    from backdrop.config import PipelineConfig

    if "subject" in {f.name for f in dataclasses.fields(PipelineConfig)}:
        method = methods.make_method("backdrop-best-auto")
        assert method.pipeline.config.subject == "auto"
        method.close()
    else:
        with pytest.raises(methods.Unavailable, match="no subject setting"):
            methods.make_method("backdrop-best-auto")


OBJECTS = PHOTOS.parent / "objects"


@pytest.mark.skipif(not (OBJECTS / "images").is_dir(), reason="evaluation objects not found")
def test_raw_u2netp_finds_a_salient_object():
    import methods
    import synthetic

    try:
        method = methods.RawU2Netp()
    except methods.Unavailable as e:
        pytest.skip(str(e))
    rgb, truth = synthetic.load_pair(OBJECTS / "images", OBJECTS / "masks", "0001")
    matte = method.matte(rgb)
    method.close()
    assert matte.shape == truth.shape and matte.dtype == np.float32
    assert matte.min() >= 0.0 and matte.max() <= 1.0
    assert metrics.iou(metrics.to_uint8(matte, truth.shape), truth) > 0.8


def test_seeded_rows_are_averaged_per_method():
    import quality

    def row(seed, method, flicker):
        return {"set": f"s:s{seed}", "method": method, "n": 10, "iou": 0.5 + seed / 10,
                "bf": 0.5, "mae": 0.1, "flicker": flicker, "flip_rate": 0.0,
                "ms_per_frame": 1.0}

    rows = [row(0, "a", 0.001), row(1, "a", 0.003), row(2, "a", 0.011), row(0, "b", 0.0)]
    means = quality.group_means(rows, "s", ["s:s0", "s:s1", "s:s2"])
    a, b = means
    assert (a["set"], a["method"], a["n"], a["seeds"]) == ("s", "a", 30, 3)
    assert a["iou"] == pytest.approx(0.6) and a["flicker"] == pytest.approx(0.005)
    assert a["flicker_median"] == pytest.approx(0.003) and a["flicker_max"] == 0.011
    assert (b["method"], b["n"], b["flicker"]) == ("b", 10, 0.0)


@needs_photos
def test_edge_colour_set_runs_the_image_job_and_the_oracles(tmp_path):
    pytest.importorskip("mediapipe")
    import quality

    out = tmp_path / "edge.json"
    assert quality.main(["--sets", "edge-colour", "--methods", "backdrop-fast",
                         "--edge-photos", "1", "--json", str(out)]) == 0
    import json

    rows = {(r["method"], r["case"]): r for r in json.loads(out.read_text())["edge_results"]}
    assert len(rows) == 6 and all(r["n"] == 1 for r in rows.values())
    for case in ("light->black", "dark->white"):
        assert rows["oracle-alpha+fg", case]["edge_err"] == 0.0
        spill = rows["oracle-alpha", case]["edge_err"]
        assert 0.5 < spill < 15 and rows["oracle-alpha", case]["alpha_err"] == 0.0
        assert rows["backdrop-fast", case]["edge_err"] > spill
        assert rows["backdrop-fast", case]["alpha_err"] > 1.0
