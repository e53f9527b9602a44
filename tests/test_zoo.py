"""Every registered model: built tiny (fast) and at the paper's size (slow), a forward pass with the
documented output shape and time length, an exact .keras round trip, and parameter counts checked
against keras.applications or worked out by hand."""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.models import (
    build_model,
    count_parameters,
    describe_model,
    list_models,
    load_model,
)
from emotrack.models.weights import (
    WeightsError,
    build_with_named_weights,
    weights_source,
)

T = 4


def _rand(*shape, high=255.0, seed=0):
    return np.random.default_rng(seed).uniform(0, high, shape).astype("float32")


# name -> (tiny options, inputs(batch), expected output shape for batch 2).
ZOO = {
    "astnet2017": (dict(input_shape=(32, 32, 3), fc6_units=8, lstm_units=(4, 3)),
                   lambda b: _rand(b, T, 32, 32, 3), (2, T, 2)),
    "astnet2017-siamese": (dict(input_shape=(32, 32, 3), fc6_units=8, lstm_units=(4, 3), clip_length=5),
                           lambda b: _rand(b, 2, 5, 32, 32, 3), (2, 2, 5, 2)),
    "huang2018-convlstm": (dict(filters=(2, 2, 2, 2), dense_units=4, input_shape=(None, 16, 16, 1)),
                           lambda b: _rand(b, T, 16, 16, 1), (2, T, 2)),
    "huang2018-3dconvnet": (dict(filters=(2, 2, 2, 2), dense_units=4, input_shape=(None, 16, 16, 1)),
                            lambda b: _rand(b, T, 16, 16, 1), (2, T, 2)),
    "tzirakis2017-audio": (dict(lstm_units=4, conv2_kernel=40),
                           lambda b: _rand(b, T, 640, high=1.0), (2, T, 2)),
    "tzirakis2017-visual": (dict(image_size=32, lstm_units=4, visual_features=8),
                            lambda b: _rand(b, T, 32, 32, 3), (2, T, 2)),
    "tzirakis2017-audiovisual": (dict(audio_options=dict(conv2_kernel=40),
                                      visual_options=dict(image_size=32, visual_features=8), lstm_units=4),
                                 lambda b: [_rand(b, T, 640, high=1.0), _rand(b, T, 32, 32, 3)], (2, T, 2)),
    "teixeira2021-2d": (dict(backbone="vgg11", input_shape=(32, 32, 3), dense_units=(8, 8)),
                        lambda b: _rand(b, 32, 32, 3, high=1.0), (2, 7)),
    "teixeira2021-i3d": (dict(backbone="vgg11", input_shape=(32, 32, 3), dense_units=(8, 8), masking=True,
                              dilation=(1, 2, 4, 8), multiplier=100),
                         lambda b: _rand(b, T, 32, 32, 3, high=1.0), (2, 2)),
    "teixeira2021-vgg16-lstm": (dict(input_shape=(32, 32, 3), lstm_units=8, dense_units=(8, 8)),
                                lambda b: _rand(b, T, 32, 32, 3, high=1.0), (2, 2)),
}

# name -> (paper-size inputs(batch), expected output shape for batch 1); T kept short.
PAPER = {
    "astnet2017": (lambda b: _rand(b, 2, 224, 224, 3), (1, 2, 2)),
    "astnet2017-siamese": (lambda b: _rand(b, 2, 50, 224, 224, 3), (1, 2, 50, 2)),
    "huang2018-convlstm": (lambda b: _rand(b, 8, 112, 112, 1), (1, 8, 2)),
    "huang2018-3dconvnet": (lambda b: _rand(b, 8, 112, 112, 1), (1, 8, 2)),
    "tzirakis2017-audio": (lambda b: _rand(b, 2, 640, high=1.0), (1, 2, 2)),
    "tzirakis2017-visual": (lambda b: _rand(b, 2, 96, 96, 3), (1, 2, 2)),
    "tzirakis2017-audiovisual": (lambda b: [_rand(b, 2, 640, high=1.0), _rand(b, 2, 96, 96, 3)], (1, 2, 2)),
    "teixeira2021-2d": (lambda b: _rand(b, 100, 80, 3, high=1.0), (1, 7)),
    "teixeira2021-vgg16-lstm": (lambda b: _rand(b, 2, 100, 80, 3, high=1.0), (1, 2)),
    "teixeira2021-i3d": (lambda b: _rand(b, 3, 100, 80, 3, high=1.0), (1, 2)),
}


def _outputs(model, x):
    y = model(x, training=False)
    return [keras.ops.convert_to_numpy(v) for v in (y if isinstance(y, (list, tuple)) else [y])]


def test_every_registered_model_is_checked_here():
    assert set(list_models()) == set(ZOO) == set(PAPER)
    for name in list_models():
        assert describe_model(name)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_tiny_build_shape_and_keras_round_trip(name, tmp_path):
    options, inputs, shape = ZOO[name]
    model = build_model(name, **options)
    x = inputs(2)
    y = _outputs(model, x)
    assert tuple(y[0].shape) == shape and np.isfinite(y[0]).all()
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    for a, b in zip(_outputs(again, x), y):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend, package", [("jax", "jax"), ("torch", "torch")])
def test_every_model_builds_and_round_trips_on_another_keras_backend(backend, package):
    """The models use keras.ops and Keras layers only: the tiny builds above pass on JAX and PyTorch too
    (run where those are installed; TensorFlow is the backend emotrack trains with)."""
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"the {backend} backend needs {package}, which is not installed")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
                             f"{__file__}::test_tiny_build_shape_and_keras_round_trip"],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0 and f"{len(ZOO)} passed" in result.stdout, result.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_size_build_and_forward(name):
    inputs, shape = PAPER[name]
    model = build_model(name)
    y = _outputs(model, inputs(1))
    assert tuple(y[0].shape) == shape and np.isfinite(y[0]).all()


def _conv3d(cin, cout, k=3):
    return k ** 3 * cin * cout + cout


def _lstm(cin, units):
    return 4 * ((cin + units) * units + units)


def _dense(cin, cout):
    return cin * cout + cout


@pytest.mark.slow
def test_paper_size_parameter_counts_worked_by_hand():
    # Huang 2018 at (16, 32, 64, 64) filters, 112x112x1: four 2x2 spatial poolings leave 7x7x64.
    convs = _conv3d(1, 16) + _conv3d(16, 32) + _conv3d(32, 64)
    convlstm = 4 * (3 * 3 * (64 + 64) * 64 + 64)
    head = _dense(7 * 7 * 64, 128) + _dense(128, 2)
    assert count_parameters(build_model("huang2018-convlstm"))["total"] == convs + convlstm + head
    assert count_parameters(build_model("huang2018-3dconvnet"))["total"] == convs + _conv3d(64, 64) + head
    # Tzirakis 2017 speech network: 20 filters of 80 samples, 40 of 4000 samples over 20 channels,
    # two LSTMs of 256 on 1280 features, a linear layer of 2.
    audio = (80 * 20 + 20) + (4000 * 20 * 40 + 40) + _lstm(1280, 256) + _lstm(256, 256) + _dense(256, 2)
    assert count_parameters(build_model("tzirakis2017-audio"))["total"] == audio


@pytest.mark.slow
def test_shared_parts_match_keras_applications():
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(96, 96, 3))
    visual = build_model("tzirakis2017-visual")
    backbone = visual.get_layer("visual_features").get_layer("resnet50")
    assert count_parameters(backbone) == count_parameters(resnet)
    # The rest: the 640-unit projection (see tzirakis2017.py) and the recurrent head.
    rest = _dense(2048, 640) + _lstm(640, 256) + _lstm(256, 256) + _dense(256, 2)
    assert count_parameters(visual)["total"] == count_parameters(resnet)["total"] + rest
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(100, 80, 3))
    lstm = build_model("teixeira2021-vgg16-lstm")
    assert count_parameters(lstm.get_layer("vgg16")) == count_parameters(vgg)
    # VGG-16 at 100x80 leaves 3x2x512 = 3072 features per frame (flattened).
    rest = _lstm(3072, 1024) + _dense(1024, 512) + _dense(512, 128) + _dense(128, 2)
    assert count_parameters(lstm)["total"] == count_parameters(vgg)["total"] + rest


@pytest.mark.slow
def test_speech_network_turns_six_seconds_into_150_steps_of_1280_features():
    wave = np.random.default_rng(0).standard_normal(6 * 16000).astype("float32")
    frames = wave.reshape(150, 640)  # 40 ms frames of 640 samples at 16 kHz
    extractor = build_model("tzirakis2017-audio", features_only=True)
    assert tuple(extractor(frames[None]).shape) == (1, 150, 1280)


def test_weights_options_fail_clearly(tmp_path):
    assert weights_source(None, "vgg16", ("imagenet",)) == (None, None)
    assert weights_source("imagenet", "vgg16", ("imagenet",)) == ("imagenet", None)
    with pytest.raises(WeightsError, match="no imagenet weights are known for 'vgg11'"):
        weights_source("imagenet", "vgg11")
    with pytest.raises(WeightsError, match="does not exist"):
        weights_source(str(tmp_path / "missing.weights.h5"), "resnet50", ("imagenet",))
    with pytest.raises(WeightsError, match="not 'vggface2'"):
        weights_source("vggface2", "vgg16", ("imagenet", "vggface"))
    with pytest.raises(WeightsError, match="no vggface weights are known for 'vgg16' \\(only imagenet\\)"):
        weights_source("vggface", "vgg16", ("imagenet",))

    def offline(weights=None, **kwargs):
        raise OSError("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    with pytest.raises(WeightsError, match="could not be downloaded.*~/.keras/models"):
        build_with_named_weights(offline, "imagenet", "resnet50")


def test_a_weights_file_of_another_architecture_is_named(tmp_path):
    from emotrack.models.tzirakis2017 import build_resnet50_backbone

    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    with pytest.raises(WeightsError, match="other.weights.h5.*does not fit"):
        build_resnet50_backbone(32, weights=str(path))


def test_models_command_lists_every_model():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0, result.output
    for name in list_models():
        assert name in result.output
    result = CliRunner().invoke(main, ["models", "--params", "--name", "huang2018-3dconvnet"])
    assert result.exit_code == 0, result.output
    total = count_parameters(build_model("huang2018-3dconvnet"))["total"]
    assert f"{total:,d}" in result.output

