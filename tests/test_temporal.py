"""Temporal pooling (Huang 2018, Sec. 4.2): pooling and its undoing, in numpy, in tf.data and
through a trained run."""

import json

import keras
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.config.run import input_contract
from emotrack.data.pipeline import session_arrays, training_windows
from emotrack.data.temporal import (
    pooling_frames,
    temporal_pool,
    temporal_unpool,
    tf_temporal_pool,
)
from emotrack.inference.session import pooled_predictions
from emotrack.training.train import check_time_contract


def test_pooling_frames_from_duration():
    assert pooling_frames(0.6, 10.0) == 6
    assert pooling_frames(0.2, 25.0) == 5
    assert pooling_frames(0.01, 10.0) == 1
    assert pooling_frames(None, 10.0) == 1


def test_pool_worked_by_hand_with_a_short_last_window():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    np.testing.assert_allclose(temporal_pool(x, 3), [2.0, 5.0, 7.0])
    x2 = np.stack([x, 10 * x], axis=1)
    np.testing.assert_allclose(temporal_pool(x2, 2), [[1.5, 15], [3.5, 35], [5.5, 55], [7, 70]])


def test_unpool_recovers_a_piecewise_constant_signal_exactly():
    rng = np.random.default_rng(0)
    k, steps = 4, 9
    levels = rng.normal(size=(steps, 2)).astype(np.float32)
    signal = np.repeat(levels, k, axis=0)[:33]  # the last window is cut short
    pooled = temporal_pool(signal, k)
    np.testing.assert_array_equal(pooled, levels)
    np.testing.assert_array_equal(temporal_unpool(pooled, k, len(signal)), signal)
    with pytest.raises(ValueError, match="cannot cover"):
        temporal_unpool(pooled, k, 100)


def test_tf_pool_equals_numpy_pool():
    x = np.random.default_rng(1).uniform(0, 255, size=(12, 5, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(tf_temporal_pool(x, 3).numpy(), temporal_pool(x, 3), rtol=1e-6)


def test_training_windows_pool_frames_ratings_and_weights(tiny_tfr):
    session = session_arrays(tiny_tfr, "train")[0]
    k = pooling_frames(0.3, float(session["fps"]))
    assert k == 3
    clips = list(training_windows(tiny_tfr, "train", window=12, hop=12, batch_size=1, shuffle=False,
                                  temporal_pooling_s=0.3).as_numpy_iterator())
    assert len(clips) == len(session["frames"]) // 12
    for i, (x, y, w) in enumerate(clips):
        span = slice(12 * i, 12 * (i + 1))
        assert x.shape[1] == 4 and y.shape[1] == 4 and w.shape[1] == 4
        np.testing.assert_allclose(x[0], temporal_pool(session["frames"][span].astype(np.float32), 3),
                                   rtol=1e-5)
        np.testing.assert_allclose(y[0], temporal_pool(session["ratings"][span], 3), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(w[0], temporal_pool(session["face_present"][span].astype(np.float32), 3))
    with pytest.raises(ValueError, match="multiple of the temporal pooling window"):
        training_windows(tiny_tfr, "train", window=10, hop=10, batch_size=1, temporal_pooling_s=0.3)


def _mean_pixel_model(shape):
    """A per-step linear read-out of the mean pixel: (B, T, H, W, C) -> (B, T, 1)."""
    size = int(np.prod(shape))
    inputs = keras.Input((None, *shape))
    x = keras.layers.Reshape((-1, size))(inputs)
    x = keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(1.0 / size))(x)
    return keras.Model(inputs, x)


def test_pooled_predictions_undo_pooling_per_frame():
    frames = np.random.default_rng(2).integers(0, 255, size=(23, 4, 4, 1)).astype(np.uint8)
    model = _mean_pixel_model((4, 4, 1))
    pred = pooled_predictions(model, frames, k=3, chunk=7)
    per_frame_mean = frames.reshape(len(frames), -1).mean(axis=1)
    expected = np.repeat(temporal_pool(per_frame_mean, 3), 3)[:23]
    assert pred.shape == (23, 1)
    np.testing.assert_allclose(pred[:, 0], expected, rtol=1e-5)


def test_time_contract_of_the_huang_variants():
    manifest = {"sessions": [{"fps": 10.0}]}
    config = {"model": {"name": "huang2018-convlstm", "options": {"pooling": "max_tp"}},
              "data": {"window": 16, "temporal_pooling_s": 0.2}}
    assert input_contract(config, 10.0) == (2, 4)
    check_time_contract(config, manifest)
    config["data"]["window"] = 12
    with pytest.raises(ValueError, match="multiple of 8"):
        check_time_contract(config, manifest)
    config["data"] = {"window": 16}
    with pytest.raises(ValueError, match="temporal_pooling_s"):
        check_time_contract(config, manifest)


def test_temporal_pooling_variant_trains_and_evaluates_per_frame(tiny_tfr, tmp_path):
    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(main, ["train", "huang2018-3dconvnet-tp", "--data", str(tiny_tfr), "--out", str(run),
                                  "--set", "train.epochs=1", "--set", "data.window=12", "--set", "data.hop=12",
                                  "--set", "data.temporal_pooling_s=0.3", "--set", "data.label_delay_s=0",
                                  "--set", "model.options.filters=[2, 2, 2, 2]",
                                  "--set", "model.options.dense_units=4",
                                  "--set", "data.validation.subjects=0", "--set", "evaluate.partitions=[devel, test]"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["evaluate", str(run), "--postprocessing", "none"])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "report.json").read_text())
    table = pd.read_csv(report["predictions"])
    for partition in ("devel", "test"):
        for s in session_arrays(tiny_tfr, partition):
            rows = table[table.session == s["session"]]
            # one prediction per frame, constant within each pooling window of k = 3 frames
            assert len(rows) == len(s["frames"])
            pred = rows["pred_arousal"].to_numpy()
            np.testing.assert_allclose(pred, np.repeat(pred[::3], 3)[:len(pred)], rtol=1e-5)
            assert np.isfinite(pred).all()
