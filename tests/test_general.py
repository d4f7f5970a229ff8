"""The general-subject model (U²-Netp), run for real on shared photos of objects."""

import shutil

import cv2
import numpy as np
import pytest

from backdrop.engine.general import MODEL_FILE, GeneralSegmenter
from backdrop.errors import ModelError


def iou(pred, truth):
    p, t = pred >= 128, truth >= 128
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else np.logical_and(p, t).sum() / union


@pytest.fixture(scope="module")
def general():
    with GeneralSegmenter() as seg:
        yield seg


def run(seg, rgb):
    small = cv2.resize(rgb, seg.input_size, interpolation=cv2.INTER_LINEAR)
    prob = seg.segment(small)
    return cv2.resize(prob, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)


def test_the_model_ships_inside_the_package():
    assert MODEL_FILE.is_file() and MODEL_FILE.stat().st_size == 2_351_828
    assert (MODEL_FILE.parent / "LICENSE-u2netp.txt").is_file()


def test_finds_objects_the_person_model_cannot(general, eval_objects):
    scores = [iou((run(general, rgb) * 255).astype(np.uint8), truth)
              for _, rgb, truth in eval_objects]
    # Raw U²-Netp scores 0.885 on all 200; a few images vary, the mean of 8 stays high.
    assert np.mean(scores) > 0.75, scores


def test_output_is_a_normalised_float_map_and_a_new_array(general, astronaut):
    small = cv2.resize(astronaut, general.input_size)
    first = general.segment(small)
    assert first.dtype == np.float32 and first.shape == (320, 320)
    assert first.min() == pytest.approx(0.0) and first.max() == pytest.approx(1.0)
    kept = first.copy()
    general.segment(np.ascontiguousarray(small[::-1]))
    np.testing.assert_array_equal(first, kept)   # the caller's array is its own
    assert 0 < general.peak <= 1


def test_read_only_input_is_fine(general, astronaut):
    small = cv2.resize(astronaut, general.input_size)
    small.flags.writeable = False
    assert general.segment(small).shape == (320, 320)


def test_wrong_input_shape_is_a_clear_error(general):
    with pytest.raises(ValueError, match=r"expected \(320, 320, 3\) uint8"):
        general.segment(np.zeros((256, 256, 3), np.uint8))


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="not found.*reinstall backdrop"):
        GeneralSegmenter(path=tmp_path / "gone.tflite")


def test_corrupt_model_file(tmp_path):
    broken = tmp_path / "u2netp_float16.tflite"
    broken.write_bytes(MODEL_FILE.read_bytes()[:100_000])
    with pytest.raises(ModelError, match="cannot load the general model"):
        GeneralSegmenter(path=broken)


def test_a_different_model_is_refused(tmp_path):
    from backdrop.engine.segment import MODELS, model_path

    other = tmp_path / "other.tflite"
    shutil.copy(model_path(MODELS["landscape"]), other)
    with pytest.raises(ModelError, match="not the U²-Netp model"):
        GeneralSegmenter(path=other)
