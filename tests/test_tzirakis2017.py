"""Tzirakis et al. 2017's speech, visual and multimodal networks: exact shapes, the 1280 speech
features, save/load round trips, local backbone weights, and the multimodal weight copy."""

import keras
import numpy as np
import pytest

import emotrack.models.tzirakis2017 as tz
from emotrack.models import build_model

T = 3  # a short sequence; Table II uses 75, 150 and 300 frames
IMAGE = 32  # ResNet-50's smallest input, for speed (the paper uses 96)


def _audio(batch=2, frames=T, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, frames, 640)).astype("float32")


def _video(batch=2, frames=T, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, (batch, frames, IMAGE, IMAGE, 3)).astype("float32")


@pytest.fixture(scope="module")
def audio_model():
    return build_model("tzirakis2017-audio")


@pytest.fixture(scope="module")
def visual_model():
    return build_model("tzirakis2017-visual", image_size=IMAGE)


def test_audio_model_shapes_and_1280_features(audio_model):
    x = _audio()
    assert tuple(audio_model(x).shape) == (2, T, 2)
    features = audio_model.get_layer("audio_features")(x)
    # Sec. III-D: (640 / 2 time pooling) * (40 filters / 10 channel pooling) = 320 * 4 = 1280.
    assert tuple(features.shape) == (2, T, 1280) == (2, T, tz.AUDIO_FEATURES)
    assert tz.audio_feature_size() == 1280
    extractor = build_model("tzirakis2017-audio", features_only=True)
    assert extractor.output_shape == (None, None, 1280)
    assert tuple(extractor(_audio(batch=1, frames=5)).shape) == (1, 5, 1280)


def test_audio_layers_follow_sec_3b(audio_model):
    cnn = audio_model.get_layer("audio_features")
    conv1, conv2 = cnn.get_layer("conv1"), cnn.get_layer("conv2")
    assert (conv1.filters, conv1.kernel_size) == (20, (80,))  # 5 ms at 16 kHz
    assert conv1.activation is keras.activations.relu
    assert cnn.get_layer("pool_time").pool_size == (2,)
    assert (conv2.filters, conv2.kernel_size) == (40, (4000,))  # 500 ms at 8 kHz
    assert cnn.get_layer("pool_channels").pool_size == 10
    assert cnn.get_layer("dropout").rate == 0.5
    assert [audio_model.get_layer(f"lstm{i}").units for i in (1, 2)] == [256, 256]
    assert audio_model.get_layer("predictions").units == 2


def test_long_filters_span_neighbouring_frames(audio_model):
    """The 500 ms filters run over the concatenated frames: a frame's features depend on the
    samples of frames two steps away, which a per-frame CNN could not see."""
    cnn = audio_model.get_layer("audio_features")
    x = _audio(batch=1, frames=T)
    changed = x.copy()
    changed[0, 0] += 1.0
    before, after = np.asarray(cnn(x)), np.asarray(cnn(changed))
    assert not np.allclose(before[0, 2], after[0, 2])


def test_channel_max_pooling_groups_adjacent_channels():
    x = np.random.default_rng(2).standard_normal((2, 7, 40)).astype("float32")
    out = np.asarray(tz.ChannelMaxPooling(10)(x))
    np.testing.assert_array_equal(out, x.reshape(2, 7, 4, 10).max(axis=-1))


def test_audio_keras_round_trip_is_exact(audio_model, tmp_path):
    path = tmp_path / "audio.keras"
    audio_model.save(path)
    loaded = keras.saving.load_model(path)
    x = _audio(seed=3)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(audio_model(x)))


def test_visual_model_shapes(visual_model):
    assert tuple(visual_model(_video()).shape) == (2, T, 2)
    extractor = visual_model.get_layer("visual_features")
    assert tuple(extractor(_video(batch=1, frames=2)).shape) == (1, 2, 640)
    assert extractor.get_layer("resnet50").output_shape == (None, 2048)
    bare = build_model("tzirakis2017-visual", image_size=IMAGE, visual_features=None,
                       features_only=True)
    assert bare.output_shape == (None, None, 2048)


def test_visual_frames_are_independent(visual_model):
    """The ResNet runs frame by frame: a frame's features do not depend on the other frames."""
    extractor = visual_model.get_layer("visual_features")
    video = _video(batch=1, frames=3)
    whole = np.asarray(extractor(video))
    alone = np.asarray(extractor(video[:, 1:2]))
    # float32 sums in another order (thread counts differ between runs): agreement to 1e-4.
    np.testing.assert_allclose(whole[:, 1:2], alone, rtol=1e-4, atol=1e-4)


def test_backbone_weights_load_from_a_local_file(tmp_path):
    source = tz.build_resnet50_backbone(IMAGE)
    path = tmp_path / "resnet50_notop.weights.h5"
    source.save_weights(path)
    model = build_model("tzirakis2017-visual", image_size=IMAGE, weights=str(path))
    images = _video(batch=1, frames=2)[0]
    backbone = model.get_layer("visual_features").get_layer("resnet50")
    np.testing.assert_array_equal(np.asarray(backbone(images)), np.asarray(source(images)))
    fresh = tz.build_resnet50_backbone(IMAGE)
    assert not np.allclose(np.asarray(fresh(images)), np.asarray(source(images)))
    with pytest.raises(ValueError, match="h5"):
        tz.build_resnet50_backbone(IMAGE, weights=str(tmp_path / "resnet50.bin"))


def test_audiovisual_from_unimodal_copies_the_extractors(audio_model, visual_model):
    multimodal = tz.audiovisual_from_unimodal(audio_model, visual_model)
    audio, video = _audio(seed=4), _video(seed=5)
    assert tuple(multimodal([audio, video]).shape) == (2, T, 2)
    for unimodal, name, x in ((audio_model, "audio_features", audio),
                              (visual_model, "visual_features", video)):
        original, copy = unimodal.get_layer(name), multimodal.get_layer(name)
        assert copy is not original
        np.testing.assert_array_equal(np.asarray(copy(x)), np.asarray(original(x)))
        assert copy.weights[0] is not original.weights[0]
    # 1280 + 640 = 1920 features per frame feed new LSTMs (4 gates x 256 units).
    assert multimodal.get_layer("concat_features").output.shape[-1] == 1920
    assert tuple(multimodal.get_layer("lstm1").weights[0].shape) == (1920, 1024)
    assert multimodal.get_layer("lstm1") is not audio_model.get_layer("lstm1")
    # Fine-tuning the copy leaves the unimodal network untouched.
    conv = multimodal.get_layer("audio_features").get_layer("conv1")
    conv.kernel.assign(conv.kernel + 1.0)
    assert not np.allclose(np.asarray(conv.kernel),
                           np.asarray(audio_model.get_layer("audio_features").get_layer("conv1").kernel))


def test_audiovisual_builder_from_the_registry():
    model = build_model("tzirakis2017-audiovisual", audio_options=dict(conv2_kernel=64),
                        visual_options=dict(image_size=IMAGE), lstm_units=8)
    assert tuple(model([_audio(batch=1, frames=2), _video(batch=1, frames=2)]).shape) == (1, 2, 2)
    assert model.get_layer("concat_features").output.shape[-1] == 1920


def test_fine_tune_from_conv5_trains_only_the_last_stage():
    """``fine_tune_from="conv5_1"``: after a real training step the stages before conv5 (weights and
    BatchNormalization statistics) are as loaded, conv5's weights and the head have moved."""
    keras.utils.set_random_seed(0)
    model = build_model("tzirakis2017-visual", image_size=IMAGE, fine_tune_from="conv5_1", lstm_units=4,
                        visual_features=8)
    backbone = model.get_layer("visual_features").get_layer("resnet50")
    before = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(_video(batch=2, frames=2), np.ones((2, 2, 2), "float32"), epochs=1, verbose=0)
    moved = {w.path for w in model.weights if not np.array_equal(before[w.path], keras.ops.convert_to_numpy(w))}
    for layer in backbone.layers:
        for w in layer.weights:
            assert (w.path in moved) == layer.name.startswith("conv5_"), (w.path, layer.name)
    assert any("predictions" in p for p in moved) and any("projection" in p for p in moved)
    with pytest.raises(ValueError, match="fine_tune_from"):
        build_model("tzirakis2017-visual", image_size=IMAGE, fine_tune_from="conv6_1")


def test_feature_normalisation_standardises_the_pooled_features():
    """``feature_normalisation="batch"``: in training the 2048 pooled features leave standardised over
    the batch's frames (numpy's mean and variance of the backbone's own output, Keras' epsilon)."""
    model = build_model("tzirakis2017-visual", image_size=IMAGE, feature_normalisation="batch",
                        visual_features=None, features_only=True)
    video = _video(batch=2, frames=3)
    images = model.get_layer("caffe_preprocessing")(video.reshape(-1, IMAGE, IMAGE, 3))
    pooled = np.asarray(model.get_layer("resnet50")(images, training=True)).reshape(2, 3, 2048)
    normalisation = model.get_layer("feature_normalisation")
    mean, var = pooled.mean(axis=(0, 1)), pooled.var(axis=(0, 1))
    expected = (pooled - mean) / np.sqrt(var + normalisation.epsilon)
    np.testing.assert_allclose(np.asarray(model(video, training=True)), expected, rtol=1e-3, atol=1e-3)
    assert not np.allclose(np.asarray(build_model("tzirakis2017-visual", image_size=IMAGE, visual_features=None,
                                                  features_only=True)(video, training=True)), expected, atol=1e-3)
    with pytest.raises(ValueError, match="feature_normalisation"):
        build_model("tzirakis2017-visual", image_size=IMAGE, feature_normalisation="layer")
