import pytest

from backdrop.config import Config, load, parse_background, parse_colour
from backdrop.errors import ConfigError


def test_defaults_are_valid():
    c = load()
    assert c == Config()
    assert c.pipeline.background.kind == "blur" and c.output.sinks == ("auto",)


@pytest.mark.parametrize("text,rgb", [("#00ff00", (0, 255, 0)), ("green", (0, 255, 0)),
                                      ("#0F0", (0, 255, 0)), ("00ff80", (0, 255, 128))])
def test_colours(text, rgb):
    assert parse_colour(text) == rgb
    assert parse_background(text).colour == rgb


def test_background_kinds(tmp_path):
    assert parse_background("blur").kind == "blur"
    assert parse_background("blur:30").strength == 30
    assert parse_background("none").kind == "none"
    img = tmp_path / "bg.png"
    img.write_bytes(b"x")
    assert parse_background(str(img)).path == str(img)


@pytest.mark.parametrize("spec,words", [("#12345g", "not a colour"), ("blur:0", "blur strength"),
                                        ("blur:x", "blur strength"), ("nope.png", "no such file")])
def test_bad_backgrounds_name_the_problem(spec, words):
    with pytest.raises(ConfigError, match=words):
        parse_background(spec)


def test_toml_and_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[source]\nwidth = 640\nheight = 480\n[pipeline]\nbackground = "#ff0000"\n'
                 '[output]\nsinks = ["null"]\n')
    c = load(f, {"source": {"fps": 15}, "runner": {"frames": 3}})
    assert (c.source.width, c.source.height, c.source.fps) == (640, 480, 15.0)
    assert c.pipeline.background.colour == (255, 0, 0)
    assert c.output.sinks == ("null",) and c.runner.frames == 3


@pytest.mark.parametrize("toml,words", [
    ("[source]\nwidht = 3\n", r"unknown setting \[source\] widht; allowed: .*width"),
    ("[sauce]\nx = 1\n", r"unknown section \[sauce\]"),
    ("[source]\nwidth = 'big'\n", r"\[source\] width must be a whole number"),
    ("[pipeline]\nquality = 'ultra'\n", r"quality must be one of fast, balanced, best"),
    ("[source]\nfps = 0\n", "fps must be between"),
    ("[output]\nsinks = []\n", "at least one sink"),
    ("[source\n", "not valid TOML"),
])
def test_bad_config_names_key_and_allowed_values(tmp_path, toml, words):
    f = tmp_path / "c.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError, match=words):
        load(f)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "missing.toml")


def test_default_toml_documents_every_setting():
    """The shipped default.toml must load, equal the defaults, and mention every field."""
    import dataclasses

    from backdrop.config import DEFAULT_FILE

    path = DEFAULT_FILE
    assert load(path) == Config()
    text = path.read_text()
    for section in dataclasses.fields(Config):
        assert f"[{section.name}]" in text
        for f in dataclasses.fields(section.type if not isinstance(section.type, str)
                                    else type(getattr(Config(), section.name))):
            assert f"\n{f.name} =" in text, f"{section.name}.{f.name} not documented"


def test_backdrop_config_prints_the_shipped_defaults(tmp_path, capsys):
    from backdrop.cli import main
    from backdrop.config import DEFAULT_FILE

    assert main(["config"]) == 0
    printed = capsys.readouterr().out
    assert printed == DEFAULT_FILE.read_text(encoding="utf-8")
    saved = tmp_path / "my.toml"
    saved.write_text(printed, encoding="utf-8")
    assert load(saved) == Config()


def test_the_repository_copy_is_the_shipped_file():
    from pathlib import Path

    from backdrop.config import DEFAULT_FILE

    repo_copy = Path(__file__).resolve().parents[1] / "config" / "default.toml"
    assert repo_copy.read_text() == DEFAULT_FILE.read_text()


def test_relative_paths_in_a_config_file_are_beside_that_file(tmp_path, monkeypatch):
    """A config in ~/cfg/ naming "bg.png" means ~/cfg/bg.png, whatever the working folder."""
    import cv2
    import numpy as np

    folder = tmp_path / "cfg"
    (folder / "clips").mkdir(parents=True)
    cv2.imwrite(str(folder / "bg.png"), np.zeros((8, 8, 3), np.uint8))
    (folder / "clips" / "talk.mp4").write_bytes(b"")
    (folder / "live.toml").write_text(
        '[source]\nsource = "clips/talk.mp4"\n'
        '[pipeline]\nbackground = "bg.png"\n'
        '[output]\nsinks = ["vcam", "out/rec.mp4"]\nbackgrounds = ["blur", "bg.png", "green"]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load(folder / "live.toml")
    assert config.source.source == str(folder / "clips" / "talk.mp4")
    assert config.pipeline.background.path == str(folder / "bg.png")
    assert config.output.sinks == ("vcam", str(folder / "out" / "rec.mp4"))
    assert config.output.backgrounds == ("blur", str(folder / "bg.png"), "green")


def test_command_line_paths_stay_relative_to_the_working_folder(tmp_path, monkeypatch):
    import cv2
    import numpy as np

    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "live.toml").write_text('[source]\nsource = "demo"\n')
    cv2.imwrite(str(tmp_path / "here.png"), np.zeros((8, 8, 3), np.uint8))
    monkeypatch.chdir(tmp_path)
    config = load(tmp_path / "cfg" / "live.toml", {"pipeline": {"background": "here.png"}})
    assert config.source.source == "demo"
    assert config.pipeline.background.path == "here.png"
