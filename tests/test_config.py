"""Experiment configs, overrides and corpus specs."""

import pytest

from emotrack.config.experiments import list_experiments, parse_override, resolve_config
from emotrack.config.schema import ConfigError
from emotrack.corpora.spec import SpecError, builtin_specs, load_spec


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


@pytest.mark.parametrize("override, message", [
    ("train.epochz=2", "unknown config key 'train.epochz'; did you mean train.epochs?"),
    ("trian.epochs=2", "unknown config key 'trian'; did you mean train.epochs?"),
    ("train.epochs=two", "train.epochs must be an integer, not 'two'"),
    ("data.label_delay_s=soon", "data.label_delay_s must be a number, not 'soon'"),
    ("train.deterministic=3", "train.deterministic must be true or false, not 3"),
    ("data=3", "data must be a mapping"),
])
def test_a_typo_or_a_wrong_type_is_named_with_its_option(override, message):
    with pytest.raises(ConfigError) as err:
        resolve_config("huang2018-convlstm", overrides=[override])
    assert str(err.value) == f"--set {override}: {message}" or (
        override == "data=3" and message in str(err.value) and override in str(err.value))


def test_a_config_file_typo_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rat: 0.01\n")
    with pytest.raises(ConfigError, match=rf"config file {path}: unknown config key 'train.learning_rat'; "
                                          r"did you mean train.learning_rate\?"):
        resolve_config("huang2018-convlstm", path)


def test_every_experiment_and_every_schema_key_agree():
    """Each named experiment passes the schema, and each key an experiment sets is declared (with a
    meaning) exactly once."""
    from emotrack.config.experiments import EXPERIMENTS
    from emotrack.config.schema import describe, keys

    declared = keys()
    assert len(declared) == len(set(declared))
    assert all(meaning for _, _, _, meaning in describe())
    for name in EXPERIMENTS:
        config = resolve_config(name)
        for section in ("model", "data", "train", "evaluate"):
            assert {f"{section}.{k}" for k in config[section]} <= set(declared), name


def test_train_with_a_typo_exits_with_the_key_and_writes_nothing(tiny_tfr, tmp_path):
    from click.testing import CliRunner

    from emotrack.cli import main

    result = CliRunner().invoke(main, ["train", "demo", "--data", str(tiny_tfr), "--out",
                                       str(tmp_path / "run"), "--set", "train.epochz=2"])
    assert result.exit_code == 1, result.output
    assert "did you mean train.epochs?" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_experiments_name_prints_the_resolved_config_as_yaml():
    import yaml
    from click.testing import CliRunner

    from emotrack.cli import main

    result = CliRunner().invoke(main, ["experiments", "huang2018-convlstm-tp"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output) == resolve_config("huang2018-convlstm-tp")
    result = CliRunner().invoke(main, ["experiments", "huang2018-convlstm-tpp"])
    assert result.exit_code == 1 and "unknown experiment 'huang2018-convlstm-tpp'" in result.output


def test_a_spec_key_typo_is_refused_with_the_closest_key(tmp_path):
    import yaml

    from emotrack.corpora.spec import SPEC_KEYS, spec_text

    for name in builtin_specs():  # every key of the built-in specs is declared
        raw = yaml.safe_load(spec_text(name))
        assert set(raw) <= set(SPEC_KEYS[None]), name
        for section, block in raw.items():
            if isinstance(block, dict):
                assert set(block) <= set(SPEC_KEYS[section]), (name, section)
    raw = yaml.safe_load(spec_text("generic"))
    raw["video"]["fsp"] = 5
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match=r"typo.yaml: unknown key video.'fsp'; did you mean video.fps\?"):
        load_spec(bad)
    raw["video"].pop("fsp")
    raw["ratigns"] = raw.pop("ratings")
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match=r"unknown key 'ratigns'; did you mean ratings\?"):
        load_spec(bad)


def test_a_resolved_config_holds_every_declared_key_with_its_one_default(tmp_path):
    from emotrack.config.run import load_run_config
    from emotrack.config.schema import describe, with_defaults

    config = resolve_config("demo")
    for key, _, default, _ in describe():
        section, _, name = key.rpartition(".")
        node = config
        for part in filter(None, section.split(".")):
            node = node[part]
        assert name in node, key
    assert config["data"]["frame_step"] == 1 and config["evaluate"]["chunk"] == 600  # the schema's defaults
    # A run folder written before a key existed loads with that key's declared default.
    (tmp_path / "config.yaml").write_text("experiment: demo\ndata: {window: 8}\nevaluate: {chunk: 40}\n")
    old = load_run_config(tmp_path)
    assert old["data"]["window"] == 8 and old["evaluate"]["chunk"] == 40
    assert old["data"]["label_delay_s"] == 0.0 and old["data"]["validation"]["subjects"] == 0
    assert with_defaults({"extra": 1})["extra"] == 1  # keys of another version are kept
