"""The command line: every command's --help, and one tiny run through all the stages."""

import json
import math

import pytest
import yaml
from click.testing import CliRunner

from emotrack.cli import main

COMMANDS = ["synth", "preprocess", "train", "evaluate", "predict", "specs", "models", "experiments", "inspect", "export", "pretrain", "compare"]


def test_top_level_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name,option", [("synth", "--seed"), ("preprocess", "--spec"),
                                         ("train", "--set"), ("evaluate", "--aggregation"),
                                         ("predict", "--no-postprocess")])
def test_command_help(name, option):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0 and option in result.output and "Usage: main" not in result.output[:5]


def test_preprocess_options_default_as_the_library_does():
    """`emotrack preprocess` and `PreprocessOptions` give one default for each face-finding option."""
    from emotrack.preprocess.options import PreprocessOptions

    command = main.get_command(None, "preprocess")
    defaults = {p.name: p.default for p in command.params}
    library = PreprocessOptions()
    for name in ("detect_every", "min_face", "min_confidence", "margin", "batch_size"):
        assert defaults[name] == getattr(library, name), name


def test_train_rejects_missing_data_and_unknown_experiment(tmp_path):
    result = CliRunner().invoke(main, ["train", "demo", "--data", str(tmp_path), "--out",
                                       str(tmp_path / "run")])
    assert result.exit_code != 0 and "manifest.json does not exist" in result.output
    result = CliRunner().invoke(main, ["train", "nope", "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code != 0 and "unknown experiment 'nope'" in result.output


def test_tiny_end_to_end_run_through_the_cli(tmp_path):
    runner = CliRunner()
    corpus, tfr, run = tmp_path / "corpus", tmp_path / "tfr", tmp_path / "run"
    result = runner.invoke(main, ["synth", "--out", str(corpus), "--sessions", "3", "--seconds", "3",
                                  "--seed", "11"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["preprocess", "--spec", "generic", "--root", str(corpus), "--out", str(tfr),
                                  "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["train", "demo", "--data", str(tfr), "--out", str(run),
                                  "--seed", "5", "--set", "train.epochs=1", "--set", "data.window=10",
                                  "--set", "data.hop=10", "--set", "data.label_delay_s=0.5",
                                  "--set", "model.options.filters=[2, 2, 2, 2]",
                                  "--set", "model.options.dense_units=4"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["train"]["seed"] == 5 and config["train"]["epochs"] == 1
    assert len(config["data"]["manifest_sha256"]) == 64
    assert (run / "best.keras").is_file() and (run / "history.csv").is_file()
    result = runner.invoke(main, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "report.json").read_text())
    for partition in ("devel", "test"):
        for dim in ("arousal", "valence"):
            for kind in ("raw", "post_processed"):
                assert math.isfinite(report["partitions"][partition][kind][dim]["CCC"])
    assert (run / "postprocessing.json").is_file()
    assert report["plot"] and (run / report["plot"].split("/")[-1]).is_file()
    # A new video: one row per decoded frame, finite values, the face flag.
    video = corpus / "videos" / "S01.mp4"
    result = runner.invoke(main, ["predict", str(run), str(video), "--out", str(tmp_path / "va.csv")])
    assert result.exit_code == 0, result.output
    import numpy as np
    import pandas as pd

    from emotrack.media.video import read_video

    table = pd.read_csv(tmp_path / "va.csv")
    frames, times, _ = read_video(video)
    assert list(table.columns) == ["time", "arousal", "valence", "face_present"]
    assert len(table) == len(frames) and np.allclose(table["time"], times, atol=1e-5)
    assert np.isfinite(table[["arousal", "valence"]].to_numpy()).all() and table["face_present"].mean() > 0.9
    # A second train into the same folder must not clobber the run.
    again = runner.invoke(main, ["train", "demo", "--data", str(tfr), "--out", str(run)])
    assert again.exit_code != 0 and "already holds a run" in again.output


def test_bad_model_option_leaves_no_run_folder(tiny_tfr, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "demo", "--data", str(tiny_tfr), "--out", str(run),
                                       "--set", "model.options.pooling=bogus"])
    assert result.exit_code != 0 and "pooling must be one of" in result.output
    assert not run.exists()
