"""Teixeira et al. 2021's 2D backbones, discrete-emotion network and VGG-16-LSTM: exact shapes,
layer counts against keras.applications, block freezing, local weights and .keras round trips."""

import keras
import numpy as np
import pytest

import emotrack.models.teixeira2021 as tx
from emotrack.models import build_model, load_model

IMAGE = (32, 32, 3)  # the smallest input that survives five poolings (the paper uses 100x80)
T = 3  # a short clip; Sec. 3.2 uses 16 or 64 frames


def _images(batch=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (batch, *IMAGE)).astype("float32")


def _clips(batch=2, frames=T, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (batch, frames, *IMAGE)).astype("float32")


def _of_type(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


@pytest.fixture(scope="module")
def models_2d():
    return {name: build_model("teixeira2021-2d", backbone=name, input_shape=IMAGE)
            for name in tx.BACKBONES}


def test_2d_forward_shapes(models_2d):
    x = _images()
    for name, model in models_2d.items():
        y = np.asarray(model(x, training=False))
        assert y.shape == (2, len(tx.EMOTIONS)) == (2, 7), name
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
        assert [model.get_layer(f"fc{i}").units for i in (1, 2)] == [512, 128]


@pytest.mark.parametrize("name, convs", [("vgg11", 8), ("vgg11_bn", 8), ("vgg16", 13), ("vgg16_bn", 13)])
def test_vgg_conv_and_batch_norm_layers(models_2d, name, convs):
    backbone = models_2d[name].get_layer(name)
    conv_layers = _of_type(backbone, keras.layers.Conv2D)
    bn_layers = _of_type(backbone, keras.layers.BatchNormalization)
    assert len(conv_layers) == convs
    assert len(_of_type(backbone, keras.layers.MaxPooling2D)) == 5
    if name.endswith("_bn"):
        assert len(bn_layers) == convs
        names = [layer.name for layer in backbone.layers]
        for conv in conv_layers:  # each convolution is linear and directly followed by its BN
            assert conv.activation is keras.activations.linear
            assert names[names.index(conv.name) + 1] == conv.name.replace("_conv", "_bn")
    else:
        assert bn_layers == []
        assert all(conv.activation is keras.activations.relu for conv in conv_layers)


def test_vgg16_matches_keras_applications(models_2d):
    ours = models_2d["vgg16"].get_layer("vgg16")
    reference = keras.applications.VGG16(include_top=False, weights=None, input_shape=IMAGE)
    assert ours.count_params() == reference.count_params() == 14714688
    assert [layer.name for layer in ours.layers[1:]] == [layer.name for layer in reference.layers[1:]]
    assert ours.output.shape == reference.output.shape


def test_resnet50_backbone_matches_keras_applications(models_2d):
    ours = models_2d["resnet50"].get_layer("resnet50")
    reference = keras.applications.ResNet50(include_top=False, weights=None, input_shape=IMAGE)
    assert ours.count_params() == reference.count_params() == 23587712


def _block(layer_name: str) -> int:
    # "block3_conv1" -> 3 (VGG); "conv4_block1_1_conv" -> 4, "conv1_pad" -> 1 (ResNet-50)
    head = layer_name.split("_")[0]
    return int(head[5:] if head.startswith("block") else head[4:])


@pytest.mark.parametrize("fine_tune_from", tx.FINE_TUNE_FROM)
def test_fine_tune_from_freezes_earlier_blocks(models_2d, fine_tune_from):
    first = 1 if fine_tune_from == "all" else int(fine_tune_from[4])
    vgg = build_model("teixeira2021-2d", backbone="vgg11_bn", input_shape=IMAGE,
                      fine_tune_from=fine_tune_from)
    resnet = tx.freeze_backbone(models_2d["resnet50"].get_layer("resnet50"), fine_tune_from)
    for backbone in (vgg.get_layer("vgg11_bn"), resnet):
        weighted = [layer for layer in backbone.layers if layer.weights]
        assert {_block(layer.name) for layer in weighted} == {1, 2, 3, 4, 5}
        for layer in weighted:
            assert layer.trainable == (_block(layer.name) >= first), (fine_tune_from, layer.name)
    for name in ("fc1", "fc2", "predictions"):
        assert vgg.get_layer(name).trainable
    # Non-trainable: every weight of the frozen blocks, plus the moving statistics (2 x channels)
    # of the BN layers that are still trained.
    backbone = vgg.get_layer("vgg11_bn")
    frozen = sum(int(np.prod(w.shape)) for w in vgg.non_trainable_weights)
    expected = sum(layer.count_params() for layer in backbone.layers
                   if layer.weights and _block(layer.name) < first)
    expected += sum(2 * layer.moving_mean.shape[0] for layer in backbone.layers
                    if isinstance(layer, keras.layers.BatchNormalization) and _block(layer.name) >= first)
    assert frozen == expected
    bn_statistics = sum(2 * layer.moving_mean.shape[0]
                        for layer in _of_type(backbone, keras.layers.BatchNormalization))
    assert (frozen > bn_statistics) == (fine_tune_from != "all")
    tx.freeze_backbone(resnet, "all")


def test_bad_options_raise():
    with pytest.raises(ValueError, match="fine_tune_from"):
        build_model("teixeira2021-2d", backbone="vgg11", input_shape=IMAGE, fine_tune_from="conv1_1")
    with pytest.raises(ValueError, match="unknown backbone"):
        tx.build_backbone("vgg19", IMAGE)
    with pytest.raises(ValueError, match="pooling"):
        build_model("teixeira2021-2d", backbone="vgg11", input_shape=IMAGE, pooling="mean")


def test_weights_file_round_trip_and_errors(tmp_path):
    source = tx.build_backbone("vgg11_bn", IMAGE)
    bn = source.get_layer("block1_bn1")  # non-default moving statistics must travel too
    bn.moving_mean.assign(np.full(bn.moving_mean.shape, 0.25, "float32"))
    path = tmp_path / "vgg11_bn.weights.h5"
    source.save_weights(path)

    loaded = tx.build_backbone("vgg11_bn", IMAGE, weights=path)
    fresh = tx.build_backbone("vgg11_bn", IMAGE)
    assert not np.allclose(fresh.get_layer("block1_conv1").kernel, source.get_layer("block1_conv1").kernel)
    for a, b in zip(loaded.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    model = build_model("teixeira2021-2d", backbone="vgg11_bn", input_shape=IMAGE, weights=str(path))
    x = _images()
    np.testing.assert_allclose(model.get_layer("vgg11_bn")(x, training=False), source(x, training=False),
                               rtol=1e-5, atol=1e-6)

    with pytest.raises(FileNotFoundError):
        tx.build_backbone("vgg11_bn", IMAGE, weights=tmp_path / "missing.weights.h5")
    with pytest.raises(ValueError, match=r"\.h5"):
        tx.build_backbone("vgg11_bn", IMAGE, weights=tmp_path / "vgg11_bn.npz")
    with pytest.raises(ValueError, match="no ImageNet weights"):
        tx.build_backbone("vgg11", IMAGE, weights="imagenet")  # raises before any download


def test_vgg16_lstm_default_head_and_per_clip_shape():
    model = build_model("teixeira2021-vgg16-lstm", input_shape=IMAGE)
    lstm = model.get_layer("lstm")
    assert (lstm.units, lstm.dropout, lstm.recurrent_dropout, lstm.return_sequences) == (1024, 0.2, 0.2, False)
    assert [model.get_layer(n).units for n in ("fc1", "fc2", "predictions")] == [512, 128, 2]
    assert len(_of_type(model.get_layer("vgg16"), keras.layers.Conv2D)) == 13
    assert model.get_layer("vgg16").count_params() == 14714688
    assert tuple(model(_clips(), training=False).shape) == (2, 2)
    assert tuple(model(_clips(frames=5), training=False).shape) == (2, 2)  # T is free


def test_vgg16_lstm_keras_round_trip(tmp_path):
    model = build_model("teixeira2021-vgg16-lstm", input_shape=IMAGE, lstm_units=16,
                        dense_units=(8, 4), fine_tune_from="conv4_1")
    x = _clips()
    expected = np.asarray(model(x, training=False))
    assert expected.shape == (2, 2)
    path = tmp_path / "vgg16_lstm.keras"
    model.save(path)
    restored = load_model(path)
    np.testing.assert_array_equal(np.asarray(restored(x, training=False)), expected)
    assert not restored.get_layer("vgg16").get_layer("block3_conv3").trainable
    assert restored.get_layer("vgg16").get_layer("block4_conv1").trainable
