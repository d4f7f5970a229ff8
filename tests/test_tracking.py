"""The crop tracker: follows a person, copes with leaving, re-entering and empty frames."""

import numpy as np

from backdrop.engine.tracking import ChangeGate, CropTracker, fit_box


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


def scene(shift=0.0, noise=0.0, seed=0):
    """A 180x320 guide with a soft-edged dark figure on a light wall, moved by `shift` px;
    noise 1 in a guide pixel is camera noise of ~4 levels at 720p (4x4 pixels averaged)."""
    x = np.arange(320, dtype=np.float32)[None, :, None]
    img = 200 - 150 / (1 + np.exp(np.clip(-(x - 150 - shift) / 1.5, -50, 50)))
    img = np.broadcast_to(img, (180, 320, 3)).copy()
    img += np.random.default_rng(seed).normal(0, noise, img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def test_change_gate_ignores_noise_and_catches_motion_and_drift():
    gate = ChangeGate()
    assert gate.moved(scene())                          # nothing seen yet
    gate.model_ran(scene(noise=1, seed=1))
    assert not any(gate.moved(scene(noise=1, seed=s)) for s in range(2, 12))
    assert gate.moved(scene(shift=1.0, noise=1))       # an edge moved one guide pixel
    assert not gate.moved(scene(shift=0.05, noise=1))  # a twentieth of one: nothing to redo
    assert gate.moved(scene(shift=0.5, noise=1))       # ...but drift adds up against
    gate.model_ran(scene(shift=0.5))                   # what the model last saw
    assert not gate.moved(scene(shift=0.5, noise=1))
    brighter = np.clip(scene(shift=0.5, noise=1).astype(np.float32) * 1.04, 0, 255)
    assert not gate.moved(brighter.astype(np.uint8))   # exposure breathing is not motion
    assert gate.moved(scene()[:90])                    # another size: always run
    gate.reset()
    assert gate.moved(scene(shift=0.5))


def test_change_gate_keeps_its_own_copy():
    gate = ChangeGate()
    img = scene()
    gate.model_ran(img)
    img[:] = 0                                         # the caller reuses its buffer
    assert not gate.moved(scene())
