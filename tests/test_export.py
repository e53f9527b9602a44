"""Export of a run's model: the .keras copy, the SavedModel (free time length) and the TFLite file
(fixed time length, built-in ops) give the Keras model's outputs; the input contract beside them
holds the run's pooling, delay and preprocessing; clear errors, and nothing lost on failure."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
import yaml
from click.testing import CliRunner

from emotrack.apps import export
from emotrack.apps.export import contract_path, export_run, tflite_compatible
from emotrack.cli import main
from emotrack.models import build_model, load_model
from emotrack.records.manifest import MANIFEST

PREPROCESSING = {"size": [16, 16], "gray": True, "margin": 0.2, "min_confidence": 0.9, "batch_size": 32,
                 "select": "largest", "image_format": "png"}


def _run(folder, name, options, data_dir, window=16, pooling_s=0.2):
    """A run folder as `emotrack train` writes it (config.yaml, best.keras, last.keras), without training."""
    model = build_model(name, **options)
    folder.mkdir(parents=True)
    model.save(folder / "best.keras")
    model.save(folder / "last.keras")
    data = {"window": window, "hop": window, "batch_size": 4, "label_delay_s": 0.5, "dir": str(data_dir),
            "dimensions": ["arousal", "valence"], "manifest_sha256": "0" * 64, "preprocessing": PREPROCESSING}
    if pooling_s:
        data["temporal_pooling_s"] = pooling_s
    config = {"experiment": "test", "model": {"name": name, "options": options}, "data": data,
              "train": {"optimizer": "rmsprop", "learning_rate": 0.001, "epochs": 1, "loss": "ccc", "seed": 0},
              "evaluate": {"partitions": ["devel", "test"], "chunk": 600}, "targets": ["arousal", "valence"]}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfr")
    (folder / MANIFEST).write_text(json.dumps({"sessions": [{"session": "a", "fps": 10.0}]}))
    return folder


@pytest.fixture(scope="module")
def convlstm_run(tmp_path_factory, data_dir):
    """Huang 2018 ConvLSTM, clips of 16 frames pooled 0.2 s at 10 fps (k = 2): 8 input steps."""
    options = {"filters": [2, 2, 2, 2], "dense_units": 4, "input_shape": [None, 16, 16, 1], "outputs": 2}
    return _run(tmp_path_factory.mktemp("runs") / "convlstm", "huang2018-convlstm", options, data_dir)


def _frames(t, shape=(16, 16, 1), batch=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, t, *shape)).astype("float32")


def _tflite(path, x):
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (detail,) = interpreter.get_input_details()
    assert tuple(detail["shape"]) == x.shape
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_keras_copy_and_contract(convlstm_run):
    out = export_run(convlstm_run, "keras")
    assert out == convlstm_run / "export" / "best.keras"
    assert out.read_bytes() == (convlstm_run / "best.keras").read_bytes()
    x = _frames(8)
    np.testing.assert_allclose(np.asarray(load_model(out)(x)), np.asarray(load_model(convlstm_run / "best.keras")(x)),
                               atol=1e-6)
    contract = json.loads(contract_path(out).read_text())
    assert contract["inputs"] == [{"name": "frames", "shape": [None, None, 16, 16, 1], "dtype": "float32",
                                   "modality": "video"}]
    assert contract["outputs"]["shape"] == [None, None, 2]
    assert contract["outputs"]["targets"] == ["arousal", "valence"]
    assert contract["time"] == {"fps": 10.0, "clip_frames": 16, "frame_step": 1, "temporal_pooling_s": 0.2,
                                "frames_per_step": 2, "network_time_factor": 1, "label_delay_s": 0.5,
                                "label_delay_frames": 5}
    assert contract["preprocessing"] == PREPROCESSING and contract["centre_crop_scale"] is None
    assert contract["keras"]["file"] == "best.keras"
    assert sorted(p.name for p in out.parent.iterdir()) == ["best.keras", "best.keras.json"]


def test_a_run_trained_with_resize_crop_tells_the_centre_crop_its_network_expects(convlstm_run, tmp_path):
    run = tmp_path / "augmented"
    shutil.copytree(convlstm_run, run, ignore=shutil.ignore_patterns("export"))
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"]["augment"] = {"resize_crop": 110 / 96}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    contract = json.loads(contract_path(export_run(run, "keras")).read_text())
    assert contract["centre_crop_scale"] == pytest.approx(110 / 96)
    assert any("centre_crop_scale (1.14583)" in step for step in contract["how_to_apply"])


def test_savedmodel_takes_any_time_length(convlstm_run, tmp_path):
    out = export_run(convlstm_run, "savedmodel", tmp_path / "sm", checkpoint="last.keras")
    model = load_model(convlstm_run / "last.keras")
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    for t in (5, 8):
        x = _frames(t, seed=t)
        y = serve(frames=tf.constant(x))["output_0"].numpy()
        assert y.shape == (2, t, 2)
        np.testing.assert_allclose(y, np.asarray(model(x)), atol=1e-4)
    contract = json.loads(contract_path(out).read_text())
    assert contract["savedmodel"]["free_time"] and contract["run"]["checkpoint"] == "last.keras"


@pytest.mark.parametrize("pooling", ["original", "max"])
def test_tflite_runs_on_builtin_ops_with_the_keras_outputs(pooling, tmp_path, data_dir):
    options = {"filters": [2, 2, 2, 2], "dense_units": 4, "input_shape": [None, 16, 16, 1], "outputs": 2,
               "pooling": pooling}
    run = _run(tmp_path / "run", "huang2018-3dconvnet" if pooling == "max" else "huang2018-convlstm", options,
               data_dir, pooling_s=0.2 if pooling == "original" else None)
    model = load_model(run / "best.keras")
    assert tflite_compatible(model) is not model  # the 3D poolings are rebuilt
    out = export_run(run, "tflite")
    contract = json.loads(contract_path(out).read_text())["tflite"]
    steps = 8 if pooling == "original" else 16  # 16 frames over k = 2, or 16 frames unpooled
    assert contract["input_shapes"] == {"frames": [1, steps, 16, 16, 1]}
    assert contract["time_steps"] == steps and not contract["select_tf_ops"]
    assert contract["max_abs_difference_to_keras"] < 1e-4
    x = _frames(steps, batch=1, seed=5)
    y = _tflite(out, x)
    assert y.shape == (1, steps, 2)
    np.testing.assert_allclose(y, np.asarray(model(x)), atol=1e-4)
    with pytest.raises(ValueError, match="multiple of 8" if pooling == "max" else "at least 1"):
        export_run(run, "tflite", tmp_path / "odd.tflite", time_steps=12 if pooling == "max" else 0)


def test_another_family_with_custom_layers(tmp_path, data_dir):
    """Tzirakis 2017 speech network (MergeTime, SplitTime, ChannelMaxPooling): SavedModel and TFLite."""
    run = _run(tmp_path / "run", "tzirakis2017-audio", {"lstm_units": 4, "conv2_kernel": 40, "outputs": 2},
               data_dir, window=6, pooling_s=None)
    model = load_model(run / "best.keras")
    x = np.random.default_rng(1).uniform(-1, 1, (2, 6, 640)).astype("float32")
    serve = tf.saved_model.load(str(export_run(run, "savedmodel"))).signatures["serving_default"]
    np.testing.assert_allclose(serve(audio=tf.constant(x))["output_0"].numpy(), np.asarray(model(x)), atol=1e-4)
    out = export_run(run, "tflite")
    np.testing.assert_allclose(_tflite(out, x[:1]), np.asarray(model(x[:1])), atol=1e-4)
    contract = json.loads(contract_path(out).read_text())
    assert contract["inputs"][0]["modality"] == "audio" and contract["time"]["frames_per_step"] == 1


def test_errors_and_nothing_lost(convlstm_run, tmp_path, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(tmp_path), "--format", "keras"])
    assert result.exit_code != 0 and "run folder" in result.output
    result = runner.invoke(main, ["export", str(convlstm_run), "--format", "keras", "--checkpoint", "epoch3.keras"])
    assert result.exit_code != 0 and "epoch3.keras does not exist" in result.output
    assert "`emotrack train` writes best.keras and last.keras" in result.output
    assert f"the run folder {convlstm_run} holds best.keras, last.keras" in result.output

    out = tmp_path / "model.tflite"
    out.write_bytes(b"old")
    result = runner.invoke(main, ["export", str(convlstm_run), "--format", "tflite", "--out", str(out)])
    assert result.exit_code != 0 and "--overwrite" in result.output
    assert out.read_bytes() == b"old"

    monkeypatch.setattr(export, "TFLITE_TOLERANCE", -1.0)  # fails after the conversion, just before the rename
    with pytest.raises(ValueError, match="differs from the Keras model"):
        export_run(convlstm_run, "tflite", out, overwrite=True)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]  # no staging folder left
    monkeypatch.undo()

    sm = tmp_path / "model.savedmodel"
    sm.mkdir()
    (sm / "old").write_text("old")
    result = runner.invoke(main, ["export", str(convlstm_run), "--format", "savedmodel", "--out", str(sm),
                                  "--overwrite"])
    assert result.exit_code == 0, result.output
    assert not (sm / "old").exists() and (sm / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.savedmodel", "model.savedmodel.json",
                                                          "model.tflite"]


def test_help():
    result = CliRunner().invoke(main, ["export", "--help"])
    assert result.exit_code == 0 and "--time-steps" in result.output and "input contract" in result.output
