"""The pose model's mask and how the pipeline mixes it in."""

import dataclasses

import numpy as np
import pytest

from backdrop.config import PipelineConfig
from backdrop.engine.pipeline import PRESETS, Pipeline
from backdrop.engine.segment import PoseMasker


def test_pose_mask_matches_hand_made_masks(eval_photos):
    masker = PoseMasker()
    try:
        ious = []
        for _, img, truth in eval_photos:
            mask = masker.mask(img)
            assert mask is not None and mask.shape == truth.shape and mask.dtype == np.float32
            pred, gt = mask >= 0.5, truth >= 128
            ious.append((pred & gt).sum() / (pred | gt).sum())
        # frames of other sizes in any order: nothing is kept between them
        assert masker.mask(np.ascontiguousarray(img[:400, :300])).shape == (400, 300)
    finally:
        masker.close()
    assert np.mean(ious) > 0.85, ious


def test_pose_mask_is_none_with_nobody_there():
    masker = PoseMasker()
    try:
        assert masker.mask(np.full((240, 320, 3), 128, np.uint8)) is None
    finally:
        masker.close()
    masker.close()                                           # idempotent


class Constant:
    """A fake selfie model that sees a person everywhere with probability 0.8."""

    input_size = (256, 256)

    def segment(self, small):
        return np.full(small.shape[:2], 0.8, np.float32)

    def close(self):
        pass


class LeftPose:
    """A fake pose model that finds one person, in the left part of the frame."""

    def mask(self, frame):
        mask = np.zeros(frame.shape[:2], np.float32)
        mask[100:300, 50:150] = 1.0
        return mask

    def close(self):
        pass


def test_pose_mask_is_mixed_in_only_around_the_person_it_found():
    preset = dataclasses.replace(PRESETS["best"], pose=0.5, tiles=0, guide_width=600,
                                 second_model="")
    with Pipeline(PipelineConfig.preset("best"), segmenter=Constant(), preset=preset) as p:
        p.models._pose = LeftPose()
        guide = np.zeros((400, 600, 3), np.uint8)
        _, person = p._person(guide, {}, smooth=False)
    assert person.shape == (400, 600)
    np.testing.assert_allclose(person[200, 100], 0.9, atol=1e-5)   # (0.8 + 1) / 2
    np.testing.assert_allclose(person[200, 45], 0.4, atol=0.05)    # beside it: (0.8 + 0) / 2
    assert 0.4 < person[200, 31] < 0.8                             # fading out at the box edge
    np.testing.assert_allclose(person[200, 500], 0.8, atol=1e-5)   # far away: selfie only
    np.testing.assert_allclose(person[390, 100], 0.8, atol=1e-5)


@pytest.mark.parametrize("weight, found, calls", [(0.0, True, 0), (0.5, False, 1)])
def test_selfie_mask_alone_when_off_or_nobody_found(weight, found, calls):
    class Counting(LeftPose):
        calls = 0

        def mask(self, frame):
            Counting.calls += 1
            return super().mask(frame) if found else None

    preset = dataclasses.replace(PRESETS["best"], pose=weight, tiles=0, second_model="")
    with Pipeline(PipelineConfig.preset("best"), segmenter=Constant(), preset=preset) as p:
        p.models._pose = Counting()
        _, person = p._person(np.zeros((200, 300, 3), np.uint8), {}, smooth=False)
    assert Counting.calls == calls
    np.testing.assert_allclose(person, 0.8, atol=1e-5)
