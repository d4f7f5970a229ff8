"""Tiles over a tall person: boxes, weights, gating, and the pipeline's merge with a fake model."""

import dataclasses

import numpy as np
import pytest

from backdrop.config import PipelineConfig
from backdrop.engine.pipeline import PRESETS, Pipeline
from backdrop.engine.tiling import boundary_gate, feather, grow, tile_boxes
from backdrop.engine.tracking import person_extent
from backdrop.engine.tracking import MAX_SQUEEZE


def test_person_extent_scales_map_cells_to_frame_pixels():
    person = np.zeros((10, 20), np.float32)
    assert person_extent(person, 200, 100) is None
    person[2:6, 4:9] = 0.8
    assert person_extent(person, 200, 100) == (40.0, 20.0, 90.0, 60.0)


def test_grow_pads_by_the_long_side_and_stays_in_the_frame():
    assert grow((100, 100, 120, 300), 0.1, 1000, 1000) == (80, 80, 140, 320)
    assert grow((5, 10, 25, 210), 0.1, 30, 215) == (0, 0, 30, 215)


def test_two_tiles_split_a_standing_person_top_and_bottom_with_overlap():
    extent = (200.0, 50.0, 350.0, 800.0)          # 150 wide, 750 tall, in a 550x850 frame
    boxes = tile_boxes(extent, tiles=2, overlap=0.3, margin=0.0, aspect=1.0, width=550,
                       height=850)
    assert len(boxes) == 2
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes
    size = 750 / (2 - 0.3)
    assert ay0 == 50 and abs(ay1 - (50 + size)) <= 1       # top tile from the top
    assert abs(by1 - 800) <= 1                              # bottom tile to the feet
    assert abs((ay1 - by0) - 0.3 * size) <= 2               # they overlap by 30 %
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 and x1 <= 550 and 0 <= y0 and y1 <= 850
        assert x0 <= 200 and x1 >= 350                      # the person's full width
        assert 1 / MAX_SQUEEZE - 0.01 <= (x1 - x0) / (y1 - y0) <= MAX_SQUEEZE + 0.01


def test_a_lying_person_is_split_left_and_right():
    boxes = tile_boxes((100.0, 300.0, 900.0, 400.0), tiles=2, overlap=0.2, margin=0.0,
                       aspect=1.0, width=1000, height=700)
    (ax0, _, ax1, _), (bx0, _, bx1, _) = boxes
    assert ax0 <= 100 and bx1 >= 900 and ax0 < bx0 < ax1 < bx1


def test_one_tile_covers_the_grown_extent():
    (x0, y0, x1, y1), = tile_boxes((100.0, 100.0, 200.0, 300.0), tiles=1, overlap=0.0,
                                   margin=0.1, aspect=1.0, width=1000, height=1000)
    assert y0 == 80 and y1 == 320 and x0 <= 80 and x1 >= 220


@pytest.mark.parametrize("tiles, overlap", [(0, 0.3), (2, 1.0), (2, -0.1)])
def test_bad_tiling_is_refused(tiles, overlap):
    with pytest.raises(ValueError):
        tile_boxes((0.0, 0.0, 10.0, 10.0), tiles=tiles, overlap=overlap, margin=0.0,
                   aspect=1.0, width=100, height=100)


def test_feather_fades_only_at_edges_inside_the_frame():
    # a tile touching the frame's top and left, inner edges at the bottom and right
    w = feather((0, 0, 60, 80), (0, 0, 6, 8), (100, 100), 0.5)
    assert w.shape == (8, 6) and w.dtype == np.float32
    assert w[0, 0] == 1.0                                   # frame corner: full weight
    assert 0 < w[-1, -1] < 0.2                              # inner corner: nearly nothing
    assert np.all(np.diff(w[:, 0]) <= 0) and np.all(np.diff(w[0, :]) <= 0)
    assert np.all(w > 0)
    # the same tile in the middle of a frame fades on all four sides, symmetrically
    mid = feather((20, 10, 80, 90), (2, 1, 10, 9), (100, 100), 0.25)
    np.testing.assert_allclose(mid, mid[::-1, ::-1])
    assert mid.max() == 1.0 and mid[0, 0] < 0.1 and mid[4, 4] == 1.0


def test_feather_without_ramp_is_flat():
    np.testing.assert_array_equal(feather((10, 10, 50, 50), (1, 1, 5, 5), (100, 100), 0.0),
                                  np.ones((4, 4), np.float32))


def test_boundary_gate_is_one_on_the_outline_and_zero_far_from_it():
    person = np.zeros((60, 60), np.float32)
    person[10:50, 20:40] = 1.0
    gate = boundary_gate(person, 5)
    assert gate.shape == person.shape and gate.dtype == np.float32
    assert gate[30, 19] == 1.0 and gate[30, 20] == 1.0     # either side of the left edge
    assert gate[30, 30] == 0.0                              # 10 px inside
    assert gate[30, 5] == 0.0 and gate[5, 5] == 0.0         # far outside
    assert 0 < gate[30, 16] < 1 and 0 < gate[30, 23] < 1    # fading on both sides
    np.testing.assert_array_equal(boundary_gate(person, 0), np.ones_like(person))


class RedIsPerson:
    """A fake model: person where the (shrunk) picture is red. Any crop of the frame gives
    the same answer for the same pixel, as a perfect model would."""

    input_size = (256, 256)

    def __init__(self):
        self.calls = 0

    def segment(self, small):
        assert small.shape == (256, 256, 3)
        self.calls += 1
        return ((small[..., 0] > 128) & (small[..., 1] < 100)).astype(np.float32)

    def close(self):
        pass


def standing_person_frame():
    frame = np.full((800, 500, 3), 90, np.uint8)
    red = (220, 30, 30)
    frame[60:160, 225:275] = red                # a red "person": head,
    frame[160:760, 190:310] = red               # body,
    frame[330:600, 150:170] = red               # and a thin arm, 20 px wide
    return frame


@pytest.mark.parametrize("band", [0.0, 0.03])
def test_pipeline_with_tiles_keeps_a_perfect_models_answer(band):
    frame = standing_person_frame()
    truth = (frame[..., 0] > 128)
    seg = RedIsPerson()
    preset = dataclasses.replace(PRESETS["best"], tiles=2, tile_band=band, pose=0.0,
                                 second_model="")
    with Pipeline(PipelineConfig.preset("best"), segmenter=seg, preset=preset) as p:
        matte = p.matte(frame)
    # two passes (whole frame, then the crop) and two tiles, each with its mirror
    assert seg.calls == 8
    pred = matte >= 0.5
    assert (pred & truth).sum() / (pred | truth).sum() > 0.97
    assert pred[500, 160] and not pred[500, 120] and not pred[650, 160]   # the arm
    assert pred[100, 250] and not pred[100, 205]                          # the head


def test_tiles_off_runs_no_tile_passes():
    seg = RedIsPerson()
    preset = dataclasses.replace(PRESETS["best"], tiles=0, pose=0.0, second_model="")
    with Pipeline(PipelineConfig.preset("best"), segmenter=seg, preset=preset) as p:
        p.matte(standing_person_frame())
    assert seg.calls == 4
