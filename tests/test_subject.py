"""--subject: what a photo or a shot is of, on synthetic maps and on real photos."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from backdrop.config import ConfigError, PipelineConfig, load, parse_background
from backdrop.engine.subject import AGREE, SubjectChooser, agreement, combine, decide

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"


def disc(cx, cy, r, size=(120, 160)):
    yy, xx = np.mgrid[:size[0], :size[1]]
    return ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r).astype(np.float32)


def test_agreement_is_the_iou_of_the_confident_regions():
    a, b = disc(60, 60, 30), disc(70, 60, 30)
    inter = np.count_nonzero((a >= .5) & (b >= .5))
    union = np.count_nonzero((a >= .5) | (b >= .5))
    assert agreement(a, b) == pytest.approx(inter / union)
    assert agreement(np.zeros((4, 4)), np.zeros((4, 4))) == 0.0


def test_a_person_needs_a_face_and_outlines_that_agree():
    person, general = disc(80, 60, 40), disc(82, 60, 40)
    assert agreement(person, general) >= AGREE
    assert decide(person, general, faces=1) == "both"
    assert decide(person, general, faces=0) == "general"          # a cup the person model took
    assert decide(person, disc(20, 20, 15), faces=1) == "general"  # the photo is of something else
    assert decide(np.zeros_like(person), general, faces=1) == "general"   # nobody found


def test_combine_gives_new_arrays():
    person, general = disc(80, 60, 40) * 0.8, disc(60, 60, 40)
    both = combine(person, general, "both")
    np.testing.assert_allclose(both, (person + general) / 2)
    for choice, expected in (("person", person), ("general", general)):
        out = combine(person, general, choice)
        np.testing.assert_array_equal(out, expected)
        out[:] = 7
        assert expected.max() <= 1   # the caller's map did not move


def test_a_shot_keeps_its_decision_until_a_cut():
    chooser = SubjectChooser("auto")
    person, general = disc(80, 60, 40), disc(82, 60, 40)
    scene = np.full((120, 160, 3), 100, np.uint8)
    counted = []

    def faces(n):
        return lambda: counted.append(n) or n

    assert chooser.choose(scene, lambda: person, general, faces(1)) == "both"
    moved = scene.copy()
    moved[40:80, 60:100] = 130          # someone moves inside the shot
    never = lambda: pytest.fail("no person map needed inside a shot")   # noqa: E731
    assert chooser.choose(moved, never, disc(10, 10, 5), faces(0)) == "both"
    cut = np.full_like(scene, 220)      # a new shot: decided again
    assert chooser.choose(cut, lambda: person, general, faces(0)) == "general"
    assert counted == [1, 0]


def test_person_and_any_do_not_decide():
    never = lambda: pytest.fail("no face count needed")   # noqa: E731
    frame = np.zeros((8, 8, 3), np.uint8)
    assert SubjectChooser("person").choose(frame, None, None, never) == "person"
    assert SubjectChooser("any").choose(frame, None, None, never) == "general"
    with pytest.raises(ValueError, match="subject must be one of"):
        SubjectChooser("cats")


def test_config_validates_the_subject(tmp_path):
    assert PipelineConfig.preset("best", subject="any").subject == "any"
    (tmp_path / "bad.toml").write_text('[pipeline]\nsubject = "cat"\n')
    with pytest.raises(ConfigError, match=r"\[pipeline\] subject must be one of auto, person, any"):
        load(tmp_path / "bad.toml")


def test_live_stays_with_people(tmp_path, caplog):
    from backdrop.cli.main import load_live

    (tmp_path / "any.toml").write_text('[pipeline]\nsubject = "any"\n')
    config = load_live(str(tmp_path / "any.toml"), {})
    assert config.pipeline.subject == "person"
    assert "live always looks for people" in caplog.text


def rgb(name):
    return np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(SAMPLES / name)), cv2.COLOR_BGR2RGB))


def best(subject):
    from backdrop.engine.pipeline import Pipeline

    return Pipeline(PipelineConfig.preset("best", background=parse_background("transparent"),
                                          subject=subject))


@pytest.fixture(scope="module")
def pipelines():
    """`best`, the default of `backdrop image`, with subject auto and with people only."""
    with best("auto") as auto, best("person") as person:
        yield auto, person


def mattes(pipelines, image):
    for p in pipelines:
        p.reset()
    return [p.matte(image) for p in pipelines]


def test_a_cup_on_a_saucer_is_opaque(pipelines):
    """The issue's three photos (CC0 / public domain, from scikit-image): a cup on a saucer
    came out half transparent, a cat kept its room, a rocket came out empty."""
    auto, person = mattes(pipelines, rgb("coffee.png"))
    assert pipelines[0].models.choice == "general"
    cup = auto > 0.9
    assert 0.3 < np.mean(cup) < 0.7 and np.mean(auto < 0.1) > 0.3
    assert np.mean(person[cup] < 0.9) > 0.5       # people only: the cup half transparent
    assert np.mean((auto > 0.1) & (auto < 0.9)) < 0.1


def test_a_cat_loses_its_room(pipelines):
    auto, person = mattes(pipelines, rgb("chelsea.png"))
    assert pipelines[0].models.choice == "general"
    assert np.mean(person < 0.1) < 0.1 and np.mean(auto < 0.1) > 0.2


def test_a_rocket_is_found(pipelines):
    auto, person = mattes(pipelines, rgb("rocket.jpg"))
    assert pipelines[0].models.choice == "general"
    assert np.mean(person > 0.5) == 0 and np.mean(auto > 0.9) > 0.01


def test_a_portrait_averages_both_models(pipelines, astronaut):
    auto, _ = mattes(pipelines, astronaut)
    assert pipelines[0].models.choice == "both"
    assert 0.2 < np.mean(auto > 0.5) < 0.8


def test_without_litert_auto_finds_people_and_any_says_why(monkeypatch, caplog):
    """Intel macs have no ai-edge-litert wheel: the general model cannot run there."""
    import sys

    from backdrop.engine.models import Models
    from backdrop.engine.pipeline import PRESETS
    from backdrop.engine.segment import create_segmenter
    from backdrop.errors import ModelError

    person = create_segmenter(backend="mediapipe", model="landscape")

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    models = Models(PRESETS["fast"], model="landscape", subject="auto", auto_model=False,
                    segmenter=person)
    assert models.subject.subject == "person" and models.general is None
    assert "finds people only here" in caplog.text
    with pytest.raises(ModelError, match="needs the ai-edge-litert package"):
        Models(PRESETS["fast"], model="landscape", subject="any", auto_model=False,
               segmenter=person)
