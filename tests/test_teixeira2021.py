"""Teixeira et al. 2021's 2D backbones, discrete-emotion network, VGG-16-LSTM and i3D-CNN: exact
shapes, layer and parameter counts against keras.applications and hand-worked arithmetic, block
freezing, block dilations, the target multiplier, local weights and .keras round trips."""

import keras
import numpy as np
import pytest

import emotrack.models.teixeira2021 as tx
from emotrack.models import build_model, load_model
from emotrack.models.inflate import MaskedConv3D

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

    with pytest.raises(ValueError, match="missing.weights.h5.*does not exist"):
        tx.build_backbone("vgg11_bn", IMAGE, weights=tmp_path / "missing.weights.h5")
    with pytest.raises(ValueError, match=r"\.h5"):
        tx.build_backbone("vgg11_bn", IMAGE, weights=tmp_path / "vgg11_bn.npz")
    with pytest.raises(ValueError, match="no imagenet weights are known for 'vgg11'"):
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


# --- i3D-CNN (Sec. 3.3.2, Fig. 8, Table 3) -------------------------------------------------------

def _conv3d(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv3D)]


def test_block_dilations_map_four_numbers_to_blocks_2_to_5():
    assert tx.block_dilations("vgg16", (1, 2, 4, 8)) == {"block2_": 1, "block3_": 2, "block4_": 4,
                                                          "block5_": 8}
    assert tx.block_dilations("resnet50", (1, 2, 4, 8)) == {"conv2_": 1, "conv3_": 2, "conv4_": 4,
                                                             "conv5_": 8}
    with pytest.raises(ValueError, match="4 integers"):
        tx.block_dilations("vgg11", (1, 2, 4, 8, 8))


@pytest.mark.parametrize("backbone", ["vgg11_bn", "resnet50"])
def test_i3d_builds_with_table3_c2_options(backbone):
    # C2: copied, masking, dilation (1, 2, 4, 8), x100.
    model = build_model("teixeira2021-i3d", backbone=backbone, input_shape=IMAGE, inflation="copied",
                        masking=True, dilation=(1, 2, 4, 8), multiplier=100, dense_units=(8, 4))
    assert model.input_shape == (None, None, *IMAGE)
    assert [model.get_layer(n).units for n in ("fc1", "fc2", "predictions")] == [8, 4, 2]
    assert model.get_layer("multiplier").scale == pytest.approx(0.01)
    features = model.get_layer(f"{backbone}_i3d")
    convs = _conv3d(features)
    assert len(convs) == (8 if backbone == "vgg11_bn" else 53)
    assert all(isinstance(conv, MaskedConv3D) and conv.kernel_size[0] == 3 for conv in convs)
    for conv in convs:  # block 1 / the stem 1, then 1, 2, 4, 8 for blocks 2 .. 5
        assert conv.dilation_rate[0] == {1: 1, 2: 1, 3: 2, 4: 4, 5: 8}[_block(conv.name)], conv.name
    for t in (T, 5):  # per clip, any clip length
        assert tuple(model(_clips(frames=t), training=False).shape) == (2, 2)


def test_i3d_default_is_the_2d_backbone_frame_by_frame():
    # Defaults: centered, zero, no masking: the inflated backbone is the 2D one on every frame.
    model = build_model("teixeira2021-i3d", backbone="vgg11", input_shape=IMAGE, dense_units=(8,),
                        pooling="avg")
    features = model.get_layer("vgg11_i3d")
    backbone_2d = tx.build_backbone("vgg11", IMAGE)
    for conv in _conv3d(features):
        kernel = np.asarray(conv.kernel)
        backbone_2d.get_layer(conv.name).set_weights([kernel[1], np.asarray(conv.bias)])
        assert not kernel[[0, 2]].any()
    x = _clips()
    expected = np.asarray(backbone_2d(x.reshape(-1, *IMAGE))).reshape(2, T, 1, 1, 512)
    np.testing.assert_allclose(np.asarray(features(x)), expected, rtol=1e-5, atol=1e-6)
    assert model.get_layer("fc1").input.shape == (None, 512)


def test_i3d_paper_size_vgg16_parameter_count():
    # 2D VGG-16 convolutions: 14,710,464 kernel weights (sum of 3*3*cin*cout) + 4,224 biases
    # = 14,714,688. Inflated, each 3x3 kernel becomes 3x3x3: 3 * 14,710,464 + 4,224.
    # Head at 100x80: the time-averaged 3x2x512 map flattened (3,072) -> 512 -> 128 -> 2.
    kernels = sum(9 * cin * cout for cin, cout in [(3, 64), (64, 64), (64, 128), (128, 128),
                                                   (128, 256), (256, 256), (256, 256), (256, 512),
                                                   (512, 512), (512, 512), (512, 512), (512, 512),
                                                   (512, 512)])
    assert kernels == 14710464
    head = (3072 * 512 + 512) + (512 * 128 + 128) + (128 * 2 + 2)
    model = build_model("teixeira2021-i3d", backbone="vgg16", masking=True)
    assert model.input_shape == (None, None, 100, 80, 3) and model.output_shape == (None, 2)
    assert model.get_layer("vgg16_i3d").output.shape == (None, None, 3, 2, 512)
    assert model.count_params() == 14714688 + 2 * kernels + head == 45774914
    # Masking: the centre slices, one 2D kernel's worth per convolution, do not train.
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert frozen == kernels


def test_i3d_multiplier_divides_the_output_and_matches_training_on_multiplied_targets():
    options = dict(backbone="vgg11", input_shape=IMAGE, dense_units=(4,), pooling="avg",
                   time_steps=T)
    scaled = build_model("teixeira2021-i3d", multiplier=100, **options)
    plain = build_model("teixeira2021-i3d", multiplier=1, **options)
    assert "multiplier" not in [layer.name for layer in plain.layers]
    plain.set_weights(scaled.get_weights())
    x = _clips(batch=4)
    y = np.random.default_rng(2).uniform(-1, 1, (4, 2)).astype("float32")
    np.testing.assert_allclose(np.asarray(scaled(x)) * 100, np.asarray(plain(x)), rtol=1e-5)
    # On the rating scale with MSE x multiplier**2 == the paper's MSE on targets x multiplier:
    # same loss, same gradients, same weights after training.
    initial = [w.copy() for w in plain.get_weights()]
    scaled.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse", loss_weights=100.0**2)
    plain.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")
    scaled_loss = scaled.fit(x, y, batch_size=2, shuffle=False, verbose=0).history["loss"]
    plain_loss = plain.fit(x, 100 * y, batch_size=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(scaled_loss, plain_loss, rtol=1e-4)
    for a, b in zip(scaled.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    moved = [np.abs(a - b).max() for a, b in zip(plain.get_weights(), initial)]
    assert max(moved) > 1e-3  # the two steps did train


def test_i3d_random_fill_is_seeded():
    options = dict(backbone="vgg11", input_shape=IMAGE, dense_units=(4,), fill="random", seed=3)
    keras.utils.set_random_seed(0)
    a = build_model("teixeira2021-i3d", **options)
    keras.utils.set_random_seed(0)
    b = build_model("teixeira2021-i3d", **options)
    kernel, other = (np.asarray(m.get_layer("vgg11_i3d").get_layer("block3_conv2").kernel) for m in (a, b))
    np.testing.assert_array_equal(kernel, other)
    assert kernel[[0, 2]].any() and np.abs(kernel[[0, 2]]).max() <= 1e-2 * np.abs(kernel[1]).max()


def test_i3d_bad_options_raise():
    with pytest.raises(ValueError, match="inflation"):
        build_model("teixeira2021-i3d", backbone="vgg11", input_shape=IMAGE, inflation="stacked")
    with pytest.raises(ValueError, match="fill"):
        build_model("teixeira2021-i3d", backbone="vgg11", input_shape=IMAGE, inflation="copied",
                    fill="random")
    with pytest.raises(ValueError, match="multiplier"):
        build_model("teixeira2021-i3d", backbone="vgg11", input_shape=IMAGE, multiplier=0)
    with pytest.raises(ValueError, match="dilation"):
        build_model("teixeira2021-i3d", backbone="vgg11", input_shape=IMAGE, dilation=(1, 2))
    with pytest.raises(ValueError, match="pooling"):
        build_model("teixeira2021-i3d", backbone="vgg11", input_shape=IMAGE, pooling="mean")


def test_i3d_keras_round_trip_with_masking_and_replicate_padding(tmp_path):
    model = build_model("teixeira2021-i3d", backbone="vgg11_bn", input_shape=IMAGE, dense_units=(8, 4),
                        inflation="centered", fill="random", seed=0, masking=True,
                        dilation=(1, 2, 4, 8), multiplier=100, temporal_padding="replicate")
    x = _clips()
    expected = np.asarray(model(x, training=False))
    path = tmp_path / "i3d.keras"
    model.save(path)
    restored = load_model(path)
    np.testing.assert_array_equal(np.asarray(restored(x, training=False)), expected)
    conv = restored.get_layer("vgg11_bn_i3d").get_layer("block5_conv2")
    assert isinstance(conv, MaskedConv3D) and conv.dilation_rate == (8, 1, 1)
    assert restored.count_params() == model.count_params()
    assert len(restored.trainable_weights) == len(model.trainable_weights)
