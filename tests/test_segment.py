"""The model backends: LiteRT must give MediaPipe's masks, and a broken model file must
give a clear error."""

import cv2
import numpy as np
import pytest

from backdrop.errors import ModelError
from backdrop.engine.segment import (MODELS, LiteRTSegmenter, MediaPipeSegmenter, create_segmenter)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_litert_gives_mediapipes_masks(model, eval_photos, astronaut):
    with LiteRTSegmenter(model=model) as ours, MediaPipeSegmenter(model=model) as theirs:
        for image in [astronaut] + [img for _, img, _ in eval_photos[:3]]:
            small = cv2.resize(image, ours.input_size, interpolation=cv2.INTER_LINEAR)
            got = np.array(ours.segment(small))
            want = np.array(theirs.segment(small))
            assert got.shape == want.shape == ours.input_size[::-1]
            assert got.dtype == np.float32
            assert 0.05 < want.mean() < 0.95            # a person and a background
            np.testing.assert_allclose(got, want, atol=1e-4)


def test_litert_checks_its_input():
    with LiteRTSegmenter() as seg:
        w, h = seg.input_size
        with pytest.raises(ValueError, match="uint8"):
            seg.segment(np.zeros((h, w, 3), np.float32))
        with pytest.raises(ValueError, match=f"\\({h}, {w}, 3\\)"):
            seg.segment(np.zeros((h + 1, w, 3), np.uint8))


def test_auto_backend_is_litert_here():
    seg = create_segmenter(model="general")
    assert isinstance(seg, LiteRTSegmenter) and seg.input_size == (256, 256)
    seg.close()


@pytest.mark.parametrize("backend", ["litert", "mediapipe"])
def test_a_broken_model_file_is_a_model_error(backend, tmp_path, monkeypatch):
    broken = tmp_path / "mediapipe" / MODELS["landscape"].relpath
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a model")
    import mediapipe

    monkeypatch.setattr(mediapipe, "__file__", str(tmp_path / "mediapipe" / "__init__.py"))
    with pytest.raises(ModelError, match="cannot load model"):
        create_segmenter(backend=backend)


def test_unknown_backend_or_model():
    with pytest.raises(ModelError, match="unknown segmenter"):
        create_segmenter(backend="onnx")
    with pytest.raises(ModelError, match="unknown model"):
        create_segmenter(model="portrait")
