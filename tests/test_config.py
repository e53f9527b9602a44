"""Experiment configs, overrides and corpus specs."""

import pytest

from emotrack.config import ConfigError, list_experiments, parse_override, resolve_config
from emotrack.specs import SpecError, builtin_specs, load_spec


def test_overrides_are_typed_and_nested(tmp_path):
    assert parse_override("train.epochs=3") == {"train": {"epochs": 3}}
    assert parse_override("model.options.filters=[2, 4, 4, 4]") == {"model": {"options": {"filters": [2, 4, 4, 4]}}}
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rate: 0.01\n")
    config = resolve_config("huang2018-convlstm", path, ["train.epochs=1"])
    assert config["train"]["learning_rate"] == 0.01 and config["train"]["epochs"] == 1
    assert config["train"]["optimizer"] == "rmsprop"  # untouched defaults survive
    assert resolve_config("huang2018-convlstm")["train"]["epochs"] != 1  # defaults not mutated


def test_bad_configs_are_named():
    assert "huang2018-convlstm" in list_experiments()
    with pytest.raises(ConfigError, match="unknown experiment"):
        resolve_config("nope")
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("epochs")


def test_generic_spec_is_built_in():
    assert "generic" in builtin_specs()
    spec = load_spec("generic")
    assert spec.dimensions == ["arousal", "valence", "liking"] and spec.rating_rate_hz == 10.0
    assert str(spec.video_path("/c", "S01")) == "/c/videos/S01.mp4"


def test_bad_specs_are_named(tmp_path):
    with pytest.raises(SpecError, match="no built-in spec named 'nope'"):
        load_spec("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\npartitions: {file: p.csv}\nvideo: {path: v}\nratings: {path: r}\n")
    with pytest.raises(SpecError, match="bad.yaml: section 'partitions' lacks"):
        load_spec(bad)
