"""The crop tracker: follows a person, copes with leaving, re-entering and empty frames."""

import numpy as np

from backdrop.tracking import CropTracker, fit_box


def blob(x0, y0, x1, y1, shape=(90, 160)):
    m = np.zeros(shape, np.float32)
    m[y0:y1, x0:x1] = 1.0
    return m


def test_fit_box_keeps_aspect_within_squeeze_and_stays_inside():
    box = fit_box(100, 100, 140, 300, aspect=16 / 9, width=640, height=480, min_height=50)
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
    ratio = (x1 - x0) / (y1 - y0)
    assert 16 / 9 / 1.5 - 0.02 <= ratio <= 16 / 9 * 1.5 + 0.02
    assert x0 <= 100 and x1 >= 140 and y0 <= 100 and y1 >= 300     # contains the person
    edge = fit_box(600, 10, 640, 100, aspect=1.0, width=640, height=480, min_height=50)
    assert edge[2] == 640 and edge[0] >= 0                           # shifted inside


def test_tracker_follows_leaves_and_reenters():
    t = CropTracker(aspect=16 / 9)
    assert t.box is None
    t.update(blob(60, 20, 100, 90), 1280, 720)       # person in the middle
    first = t.box
    x0, y0, x1, y1 = first
    assert x0 > 0 and x1 < 1280 and x0 <= 60 * 8 and x1 >= 100 * 8
    t.update(blob(61, 20, 101, 90), 1280, 720)       # a small move: the box stays put
    assert t.box == first
    t.update(blob(120, 20, 158, 90), 1280, 720)      # a big move: the box follows
    assert t.box != first and t.box[2] >= 158 * 8
    t.update(np.zeros((90, 160), np.float32), 1280, 720)   # left the frame / empty frame
    assert t.box is None
    t.update(blob(10, 30, 50, 90), 1280, 720)        # re-entered on the left
    assert t.box is not None and t.box[0] <= 10 * 8
    t.reset()
    assert t.box is None


def test_tracker_grows_when_the_person_nears_the_edge_and_shrinks_when_far_smaller():
    t = CropTracker(aspect=1.0)
    t.update(blob(60, 30, 100, 70), 1600, 900)
    small = t.box
    t.update(blob(30, 10, 130, 90), 1600, 900)        # came closer: must not be cut off
    x0, y0, x1, y1 = t.box
    assert x0 <= 300 and x1 >= 1300 and (x1 - x0) > small[2] - small[0]
    t.update(blob(75, 45, 85, 55), 1600, 900)         # went far away: a tighter box again
    assert (t.box[2] - t.box[0]) < (x1 - x0)
