"""Training runs: a run killed in the middle and resumed ends exactly where an uninterrupted run
ends; the per-epoch shuffle depends only on the seed and the epoch; early stopping; run folder; op
determinism only while training; the one checkpoint lookup of a run folder."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotrack.config.run import CheckpointNotFoundError, checkpoint_path, latest_checkpoint
from emotrack.data.pipeline import count_windows, training_windows
from emotrack.models import load_model
from emotrack.training.train import train

TINY = ["train.epochs=5", "data.window=8", "data.hop=4", "data.label_delay_s=0.5", "data.batch_size=4",
        "model.options.filters=[2, 2, 2, 2]", "model.options.dense_units=4",
        # The tiny corpus has one training subject: no validation split; devel and test as before.
        "data.validation.subjects=0", "evaluate.partitions=[devel, test]", "evaluate.postprocessing=tzirakis2017"]


def _weights(path):
    return [np.asarray(w) for w in load_model(path).weights]


def test_epoch_order_depends_only_on_seed_and_epoch(tiny_tfr):
    def first_values(epochs):
        ds = training_windows(tiny_tfr, "train", window=8, hop=4, batch_size=2, seed=3, epochs=epochs)
        return [float(y[0, 0, 0]) + float(x[0, 0, 40, 40, 0]) for x, y, _ in ds.as_numpy_iterator()]

    n = -(-count_windows(tiny_tfr, "train", 8, 4) // 2)  # batches per epoch
    whole = first_values((0, 3))
    assert len(whole) == 3 * n
    assert first_values((1, 3)) == whole[n:]  # resuming at epoch 1 sees epochs 1 and 2 unchanged
    assert whole[:n] != whole[n:2 * n]  # and the epochs differ from each other


def test_killed_run_resumes_to_the_uninterrupted_result(tiny_tfr, tmp_path):
    straight = train("huang2018-convlstm", tiny_tfr, tmp_path / "straight", overrides=TINY, verbose=0)

    run = tmp_path / "killed"
    args = [str(Path(sys.executable).parent / "emotrack"), "train", "huang2018-convlstm", "--data", str(tiny_tfr),
            "--out", str(run)] + [a for o in TINY for a in ("--set", o)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.time() + 300
    while latest_checkpoint(run) is None and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = latest_checkpoint(run)
    assert done is not None and done[1]["epochs_done"] < 5, "the run was not killed in the middle"
    assert not (run / "last.keras").exists()

    train("huang2018-convlstm", tiny_tfr, run, resume=True, verbose=0)
    for a, b in zip(_weights(run / "last.keras"), _weights(straight / "last.keras")):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_weights(run / "best.keras"), _weights(straight / "best.keras")):
        np.testing.assert_array_equal(a, b)
    history, reference = pd.read_csv(run / "history.csv"), pd.read_csv(straight / "history.csv")
    assert list(history["epoch"]) == list(range(5))
    # The epochs kept and those appended on resuming end their lines alike (Keras' CSV logger: CRLF).
    raw = (run / "history.csv").read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") == 6
    np.testing.assert_allclose(history["val_ccc"], reference["val_ccc"], rtol=1e-6)


def test_resume_refuses_changed_data_or_settings(tiny_tfr, tmp_path, monkeypatch):
    from tensorflow.python.framework import config as framework_config

    import emotrack.training.train

    fit, inside = emotrack.training.train._fit, []

    def recording_fit(*args, **kwargs):
        inside.append(framework_config.is_op_determinism_enabled())
        return fit(*args, **kwargs)

    monkeypatch.setattr(emotrack.training.train, "_fit", recording_fit)
    assert not framework_config.is_op_determinism_enabled()
    run = tmp_path / "run"
    train("huang2018-convlstm", tiny_tfr, run, overrides=TINY[1:] + ["train.epochs=1"], verbose=0)
    # Deterministic ops while training (train.deterministic defaults to true), the state before after it.
    assert inside == [True] and not framework_config.is_op_determinism_enabled()
    with pytest.raises(ValueError, match="cannot change it"):
        train("huang2018-convlstm", tiny_tfr, run, overrides=["train.epochs=3"], resume=True, verbose=0)
    with pytest.raises(ValueError, match="is a run of 'huang2018-convlstm'"):
        train("huang2018-3dconvnet", tiny_tfr, run, resume=True, verbose=0)
    state = json.loads(sorted((run / "checkpoints").glob("*.json"))[-1].read_text())
    assert state["epochs_done"] == 1 and len(state["values"]) == 1
    assert (run / "logs").is_dir()  # TensorBoard


def test_checkpoint_lookup_names_the_folder_the_writer_and_what_is_there(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.keras").write_bytes(b"")
    assert checkpoint_path(run, "last.keras") == run / "last.keras"
    with pytest.raises(CheckpointNotFoundError) as err:
        checkpoint_path(run)
    message = str(err.value)
    assert f"{run / 'best.keras'} does not exist" in message and "`emotrack train` writes it" in message
    assert message.endswith(f"the run folder {run} holds last.keras")
    with pytest.raises(FileNotFoundError, match="`emotrack pretrain` writes it.*holds last.keras"):
        checkpoint_path(run, "model.keras")
    with pytest.raises(FileNotFoundError, match=f"the run folder {tmp_path / 'nope'} does not exist"):
        checkpoint_path(tmp_path / "nope", "last.keras")
    assert latest_checkpoint(run) is None


def test_staged_training_names_a_missing_earlier_run(tmp_path):
    from emotrack.training.train import build_stage_model

    (tmp_path / "audio").mkdir()
    cfg = {"name": "tzirakis2017-audiovisual", "options": {},
           "init_from": {"audio": str(tmp_path / "audio"), "visual": str(tmp_path / "visual")}}
    with pytest.raises(CheckpointNotFoundError, match="model.init_from.audio must be a trained run folder: "
                                                      ".*best.keras does not exist.*holds no checkpoint"):
        build_stage_model(cfg)


def test_early_stopping_on_devel_ccc(tiny_tfr, tmp_path):
    # A learning rate of 0 never improves the devel CCC after the first epoch.
    run = train("huang2018-convlstm", tiny_tfr, tmp_path / "run", verbose=0,
                overrides=TINY + ["train.epochs=6", "train.learning_rate=0.0", "train.early_stopping_patience=2"])
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 3
    state = latest_checkpoint(run)[1]
    assert state["stopped"] and np.argmax(state["values"]) == 0


@pytest.mark.slow  # three trainings
def test_repeats_report_mean_and_std_over_seeds(tiny_tfr, tmp_path):
    from emotrack.reproduce.repeats import train_repeats

    summary = train_repeats("huang2018-convlstm", tiny_tfr, tmp_path / "rep", 2, seed=4, verbose=0,
                            overrides=TINY[1:] + ["train.epochs=1", "evaluate.postprocessing=none"])
    assert summary["seeds"] == [4, 5]
    assert json.loads((tmp_path / "rep" / "repeats.json").read_text()) == json.loads(json.dumps(summary))
    for partition in ("devel", "test"):
        for d in ("arousal", "valence"):
            values = [json.loads((tmp_path / "rep" / f"seed-{s}" / "report.json").read_text())
                      ["partitions"][partition]["raw"][d]["CCC"] for s in (4, 5)]
            entry = summary["summary"][partition]["raw"][d]
            assert entry["mean"] == pytest.approx(np.mean(values)) and entry["std"] == pytest.approx(np.std(values))
    assert values[0] != values[1]  # the seeds made different runs


def test_experiments_command_lists_the_papers_numbers():
    from click.testing import CliRunner

    from emotrack.cli import main

    result = CliRunner().invoke(main, ["experiments", "--name", "huang2018-convlstm-tp"])
    assert result.exit_code == 0, result.output
    assert "Table 3" in result.output and "arousal 0.583" in result.output and "valence 0.654" in result.output
