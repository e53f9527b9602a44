"""Training with tf.distribute strategies and mixed precision: two workers on this machine finish
with the same weights and only the chief writes the run folder; one mirrored replica trains as the
default strategy does; a missing TF_CONFIG is named; mixed precision keeps float32 outputs and
leaves the global policy as it was; the devel CCC of two workers is that of the whole devel set;
Keras is patched for multi-worker training only inside the fit; each training makes its strategy."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import yaml

from emotrack.data.pipeline import training_windows
from emotrack.models import load_model
from emotrack.training.train import train

TINY = ["train.epochs=2", "data.window=8", "data.hop=4", "data.label_delay_s=0.5", "data.batch_size=4",
        "model.options.filters=[2, 2, 2, 2]", "model.options.dense_units=4",
        # The tiny corpus has one training subject: no validation split; devel and test as before.
        "data.validation.subjects=0", "evaluate.partitions=[devel, test]", "evaluate.postprocessing=tzirakis2017"]
RUN_FILES = {"config.yaml", "best.keras", "last.keras", "history.csv", "checkpoints/epoch-0002.keras",
             "checkpoints/epoch-0002.json"}


def _weights(path):
    return [np.asarray(w) for w in load_model(path).weights]


def _files(folder):
    return {p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file()}


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def two_workers(tiny_tfr, tmp_path_factory):
    """A run trained by two workers on 127.0.0.1: (the chief's run folder, the other's kept folder)."""
    root = tmp_path_factory.mktemp("two_workers")
    run, kept = root / "run", root / "workers"
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    args = [str(Path(sys.executable).parent / "emotrack"), "train", "huang2018-convlstm", "--data", str(tiny_tfr),
            "--out", str(run), "--strategy", "multiworker"] + [a for o in TINY for a in ("--set", o)]
    workers = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={
        **os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "EMOTRACK_WORKER_DIR": str(kept),
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)]
    try:
        outputs = [w.communicate(timeout=300)[0] for w in workers]
    finally:
        for w in workers:
            w.kill()
    for i, (w, out) in enumerate(zip(workers, outputs)):
        assert w.returncode == 0, "\n".join(f"worker {k} (exit {v.returncode}):\n{o[-3000:]}"
                                             for k, (v, o) in enumerate(zip(workers, outputs)))
    return run, kept / "worker-1"  # kept for the tests; a temporary folder otherwise


@pytest.mark.slow
def test_two_workers_end_with_the_same_weights_and_one_run_folder(two_workers):
    run, worker = two_workers
    # The chief (worker 0) wrote the run folder, once: one TensorBoard file per phase.
    files = _files(run)
    assert RUN_FILES <= files and len(files) == len(RUN_FILES) + 2, sorted(files)
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["strategy"] == "multiworker"
    assert RUN_FILES <= _files(worker)
    for a, b in zip(_weights(run / "last.keras"), _weights(worker / "last.keras")):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(pd.read_csv(run / "history.csv"), pd.read_csv(worker / "history.csv"))


@pytest.mark.slow
def test_devel_ccc_of_two_workers_is_that_of_the_whole_devel_set(two_workers, tiny_tfr):
    run, _ = two_workers
    config = yaml.safe_load((run / "config.yaml").read_text())
    targets = [config["data"]["dimensions"].index(d) for d in config["targets"]]
    # 9 devel clips in batches of 4: the last clip would leave one of the two workers an empty share, so
    # the run leaves it out, and so does this reference.
    devel = training_windows(tiny_tfr, "devel", window=8, hop=4, batch_size=4, label_delay_s=0.5, shuffle=False,
                             drop_remainder=True)
    devel = devel.map(lambda x, y, w: (x, tf.gather(y, targets, axis=-1), w))
    ccc = load_model(run / "last.keras", compile=True).evaluate(devel, return_dict=True, verbose=0)["ccc"]
    assert pd.read_csv(run / "history.csv")["val_ccc"].iloc[-1] == pytest.approx(ccc, abs=1e-6)


def test_multiworker_fit_patches_keras_only_inside():
    import keras
    from keras.src.backend.tensorflow import trainer

    from emotrack.training.distribute import multiworker_fit

    original = trainer.reduce_per_replica
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with multiworker_fit(model):
        assert trainer.reduce_per_replica is not original and trainer.reduce_per_replica.__wrapped__ is original
        assert model._distribute_strategy is None
        # Other strategies pass through to Keras's own reduction.
        logs = trainer.reduce_per_replica({"loss": tf.constant(2.0)}, tf.distribute.get_strategy(), "auto")
        assert float(logs["loss"]) == 2.0
    assert trainer.reduce_per_replica is original
    with pytest.raises(RuntimeError, match="failed fit"):
        with multiworker_fit(model):
            raise RuntimeError("failed fit")
    assert trainer.reduce_per_replica is original


def test_each_training_makes_its_own_strategy():
    from emotrack.training.distribute import make_strategy

    first, second = make_strategy("mirrored"), make_strategy("mirrored")
    assert isinstance(first, tf.distribute.MirroredStrategy) and first is not second
    assert make_strategy("default") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="train.strategy must be one of default, mirrored, multiworker"):
        make_strategy("tpu")


def test_a_worker_other_than_the_chief_leaves_no_files(tiny_tfr, tmp_path, monkeypatch):
    import tempfile

    import emotrack.training.train

    monkeypatch.delenv(emotrack.training.train.WORKER_DIR_ENV, raising=False)
    monkeypatch.setattr(emotrack.training.train, "worker_index", lambda strategy: 1)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    train("huang2018-convlstm", tiny_tfr, tmp_path / "run", overrides=TINY[1:] + ["train.epochs=1"], verbose=0)
    assert not (tmp_path / "run").exists() and not list((tmp_path / "tmp").glob("emotrack-worker-*"))


@pytest.mark.skipif(len(tf.config.list_physical_devices("GPU")) > 1, reason="mirrored makes one replica per GPU")
def test_one_mirrored_replica_trains_as_the_default_strategy(tiny_tfr, tmp_path):
    default = train("huang2018-convlstm", tiny_tfr, tmp_path / "default", overrides=TINY, verbose=0)
    mirrored = train("huang2018-convlstm", tiny_tfr, tmp_path / "mirrored", verbose=0,
                     overrides=TINY + ["train.strategy=mirrored"])
    for a, b in zip(_weights(mirrored / "last.keras"), _weights(default / "last.keras")):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(pd.read_csv(mirrored / "history.csv"), pd.read_csv(default / "history.csv"))


@pytest.mark.parametrize("tf_config, message", [
    (None, "TF_CONFIG environment variable, which is not set"),
    ("{cluster", "TF_CONFIG is not JSON"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 1}}', "needs a 'task'"),
])
def test_multiworker_names_a_missing_or_malformed_tf_config(tiny_tfr, tmp_path, monkeypatch, tf_config, message):
    from click.testing import CliRunner

    from emotrack.cli import main

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    result = CliRunner().invoke(main, ["train", "demo", "--data", str(tiny_tfr), "--out",
                                       str(tmp_path / "run"), "--strategy", "multiworker"])
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_repeats_refuse_a_multiworker_run(tiny_tfr, tmp_path):
    from emotrack.reproduce.repeats import train_repeats

    with pytest.raises(ValueError, match="--repeats evaluates and summarises on every machine"):
        train_repeats("huang2018-convlstm", tiny_tfr, tmp_path / "rep", 2, overrides=["train.strategy=multiworker"])


# TensorFlow has no float16 CPU kernels for 3D pooling: mixed_float16 runs where a GPU is.
@pytest.mark.parametrize("setting, policy", [
    pytest.param("true", "mixed_float16", marks=pytest.mark.skipif(
        not tf.config.list_physical_devices("GPU"), reason="float16 3D pooling needs a GPU")),
    ("mixed_bfloat16", "mixed_bfloat16"),
])
def test_mixed_precision_keeps_float32_outputs_and_restores_the_policy(tiny_tfr, tmp_path, setting, policy):
    import keras

    before = keras.mixed_precision.global_policy().name
    run = train("huang2018-convlstm", tiny_tfr, tmp_path / "run", verbose=0,
                overrides=TINY[1:] + ["train.epochs=1", f"train.mixed_precision={setting}"])
    assert keras.mixed_precision.global_policy().name == before == "float32"
    model = load_model(run / "last.keras", compile=True)
    assert model.get_layer("fc2").dtype_policy.name == policy
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    outputs = model(np.zeros((1, 8, 112, 112, 1), np.float32))
    assert outputs.dtype == "float32" and tuple(outputs.shape) == (1, 8, 2)
    assert np.isfinite(pd.read_csv(run / "history.csv")["val_ccc"]).all()
