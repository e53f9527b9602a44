"""Inflation of 2D CNNs into 3D CNNs (emotrack.models.inflate): on a still video (one frame repeated)
the inflated network reproduces the 2D network, kernel by kernel, for a VGG-like chain, a small
residual network and ResNet-50; "centered" + "zero" reproduces the 2D network frame by frame on any
clip; masking keeps the central kernel slices bit-identical through training."""

import keras
import numpy as np
import pytest
from keras import layers, ops

from emotrack.models.inflate import (
    MaskedConv3D,
    UnsupportedLayerError,
    center_index,
    inflate_conv2d_kernel,
    inflate_model,
)

ATOL = 1e-5


def still_video(frames, t):
    """(B, H, W, C) frames -> (B, T, H, W, C) clips of each frame repeated t times."""
    return np.repeat(np.asarray(frames)[:, None], t, axis=1)


def vgg_like(seed=0, dense=True):
    """A small VGG-style chain (8 filters, 16x16x3 input) with non-trivial BatchNormalization stats."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.Activation("relu", name="act1")(x)
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.ReLU(name="relu2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(8, 3, padding="valid", activation="relu", name="conv3")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dense:
        x = layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, x, name="vgg_like")
    rng = np.random.default_rng(seed)
    for name in ("bn1", "bn2"):  # gamma, beta, moving mean, moving variance
        bn = model.get_layer(name)
        bn.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.3, 8), rng.normal(0, 0.3, 8),
                        rng.uniform(0.5, 2.0, 8)])
    return model


@pytest.fixture(scope="module")
def model_2d():
    return vgg_like()


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32")


def run(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


# --- kernels -------------------------------------------------------------------------------------

@pytest.mark.parametrize("time_size", [1, 3, 5])
def test_inflated_kernel_shapes_and_time_sums(time_size):
    kernel = np.random.default_rng(0).normal(size=(3, 3, 2, 4)).astype("float32")
    copied = inflate_conv2d_kernel(kernel, time_size, mode="copied")
    centered = inflate_conv2d_kernel(kernel, time_size, mode="centered")
    noisy = inflate_conv2d_kernel(kernel, time_size, mode="centered", fill="random", rng=3)
    for k3 in (copied, centered, noisy):
        assert k3.shape == (time_size, 3, 3, 2, 4) and k3.dtype == kernel.dtype
    np.testing.assert_allclose(copied.sum(axis=0), kernel, atol=ATOL)
    np.testing.assert_allclose(copied[0], kernel / time_size, atol=ATOL)
    c = center_index(time_size)
    np.testing.assert_array_equal(centered[c], kernel)
    np.testing.assert_array_equal(np.delete(centered, c, axis=0), 0.0)
    np.testing.assert_array_equal(noisy[c], kernel)
    others = np.delete(noisy, c, axis=0)
    assert np.all(np.abs(others) <= 1e-2 * np.abs(kernel).max() + 1e-7)
    if time_size > 1:
        assert np.any(others != 0)
    np.testing.assert_array_equal(
        noisy, inflate_conv2d_kernel(kernel, time_size, mode="centered", fill="random", rng=3))


def test_inflate_kernel_rejects_bad_arguments():
    kernel = np.zeros((3, 3, 1, 2))
    with pytest.raises(ValueError, match="kh, kw, cin, cout"):
        inflate_conv2d_kernel(np.zeros((3, 3, 2)), 3)
    with pytest.raises(ValueError, match="mode"):
        inflate_conv2d_kernel(kernel, 3, mode="stacked")
    with pytest.raises(ValueError, match="centered"):
        inflate_conv2d_kernel(kernel, 3, mode="copied", fill="random")
    with pytest.raises(ValueError, match="time_size"):
        inflate_conv2d_kernel(kernel, 0)


@pytest.mark.parametrize("mode", ["copied", "centered"])
@pytest.mark.parametrize("dilation", [1, 2])
def test_single_inflated_filter_reproduces_2d_filter_on_still_video(mode, dilation):
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(3, 3, 2, 4)).astype("float32")
    frame = rng.normal(size=(1, 16, 16, 2)).astype("float32")
    t, kt = 9, 3
    out_2d = ops.convert_to_numpy(ops.conv(frame, kernel, padding="same"))
    k3 = inflate_conv2d_kernel(kernel, kt, mode=mode)
    out_3d = ops.convert_to_numpy(ops.conv(still_video(frame, t), k3, padding="same",
                                           dilation_rate=(dilation, 1, 1)))
    assert out_3d.shape == (1, t, 16, 16, 4)
    reach = dilation * (kt - 1) // 2  # frames at each end that see the zero time padding
    for step in range(reach, t - reach):
        np.testing.assert_allclose(out_3d[:, step], out_2d, atol=ATOL)
    if mode == "centered":  # only the centre slice is non-zero: exact even at the clip ends
        for step in range(t):
            np.testing.assert_allclose(out_3d[:, step], out_2d, atol=ATOL)
    else:  # copied: the end frames see zero frames through the padding
        assert not np.allclose(out_3d[:, 0], out_2d, atol=ATOL)
    # Valid convolution over exactly kt frames: the (valid) 2D response.
    valid = ops.convert_to_numpy(ops.conv(still_video(frame, kt), k3, padding="valid"))
    assert valid.shape == (1, 1, 14, 14, 4)
    np.testing.assert_allclose(valid[:, 0], ops.convert_to_numpy(ops.conv(frame, kernel)), atol=ATOL)


# --- whole models --------------------------------------------------------------------------------

def test_inflated_model_structure(model_2d):
    model_3d = inflate_model(model_2d, time_size=3, time_steps=5)
    assert model_3d.input_shape == (None, 5, 16, 16, 3) and model_3d.output_shape == (None, 2)
    conv = model_3d.get_layer("conv1")
    assert isinstance(conv, layers.Conv3D) and conv.kernel.shape == (3, 3, 3, 3, 8)
    pool = model_3d.get_layer("pool2")
    assert isinstance(pool, layers.MaxPooling3D) and tuple(pool.pool_size) == (1, 2, 2)
    assert isinstance(model_3d.get_layer("gap"), layers.GlobalAveragePooling3D)
    for name in ("bn1", "bn2", "head"):
        for w3, w2 in zip(model_3d.get_layer(name).get_weights(), model_2d.get_layer(name).get_weights()):
            np.testing.assert_array_equal(w3, w2)
    np.testing.assert_array_equal(model_3d.get_layer("conv1").get_weights()[1],
                                  model_2d.get_layer("conv1").get_weights()[1])


@pytest.mark.parametrize("mode", ["copied", "centered"])
def test_inflated_model_reproduces_2d_model_on_still_video(model_2d, frames, mode):
    expected = run(model_2d, frames)
    # Replicate time padding: exact at every frame, so through the global pooling over time too.
    model_3d = inflate_model(model_2d, time_size=3, mode=mode, temporal_padding="replicate")
    np.testing.assert_allclose(run(model_3d, still_video(frames, 5)), expected, atol=ATOL)
    # Zero time padding: exact on the frames the padding does not reach (3 convs x 1 frame per end).
    model_3d = inflate_model(model_2d, time_size=3, mode=mode, temporal_padding="zero")
    features = keras.Model(model_3d.input, model_3d.get_layer("conv3").output)
    features_2d = run(keras.Model(model_2d.input, model_2d.get_layer("conv3").output), frames)
    out = run(features, still_video(frames, 9))
    steps = range(9) if mode == "centered" else range(3, 6)
    for step in steps:
        np.testing.assert_allclose(out[:, step], features_2d, atol=ATOL)
    if mode == "centered":
        np.testing.assert_allclose(run(model_3d, still_video(frames, 9)), expected, atol=ATOL)


def test_keep_time_gives_per_frame_outputs(model_2d, frames):
    model_3d = inflate_model(model_2d, time_size=3, temporal_padding="replicate", keep_time=True)
    out = run(model_3d, still_video(frames, 4))
    assert out.shape == (2, 4, 2)
    np.testing.assert_allclose(out, np.repeat(run(model_2d, frames)[:, None], 4, axis=1), atol=ATOL)


def test_temporal_dilation_builds_and_keeps_still_video_property(model_2d, frames):
    expected = run(model_2d, frames)
    model_3d = inflate_model(model_2d, time_size=3, temporal_dilation=(1, 2, 4),
                             temporal_padding="replicate")
    dilations = [model_3d.get_layer(f"conv{i}").dilation_rate[0] for i in (1, 2, 3)]
    assert dilations == [1, 2, 4]
    np.testing.assert_allclose(run(model_3d, still_video(frames, 6)), expected, atol=ATOL)
    model_3d = inflate_model(model_2d, time_size=3, mode="centered", temporal_dilation=2)
    np.testing.assert_allclose(run(model_3d, still_video(frames, 6)), expected, atol=ATOL)
    with pytest.raises(ValueError, match="3 Conv2D layers"):
        inflate_model(model_2d, temporal_dilation=(1, 2))


def test_random_centered_fill_is_close_but_not_exact(model_2d, frames):
    expected = run(model_2d, frames)
    model_3d = inflate_model(model_2d, mode="centered", fill="random", rng=0,
                             temporal_padding="replicate")
    out = run(model_3d, still_video(frames, 3))
    assert not np.allclose(out, expected, atol=ATOL)
    np.testing.assert_allclose(out, expected, atol=0.1 * np.abs(expected).max() + 1e-3)


def test_sequential_model_and_variable_length():
    keras.utils.set_random_seed(4)
    model_2d = keras.Sequential([keras.Input((16, 16, 1)), layers.Conv2D(8, 3, padding="same"),
                                 layers.BatchNormalization(), layers.Activation("relu"),
                                 layers.MaxPooling2D(), layers.GlobalAveragePooling2D()])
    model_3d = inflate_model(model_2d, time_size=5, temporal_padding="replicate")
    frame = np.random.default_rng(5).normal(size=(1, 16, 16, 1)).astype("float32")
    for t in (1, 7):
        np.testing.assert_allclose(run(model_3d, still_video(frame, t)), run(model_2d, frame), atol=ATOL)


def test_unsupported_layers_are_named():
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(4, 3, name="conv")(inputs)
    x = layers.Flatten(name="my_flatten")(x)
    with pytest.raises(UnsupportedLayerError, match="my_flatten.*Flatten"):
        inflate_model(keras.Model(inputs, layers.Dense(2)(x)))
    z = layers.DepthwiseConv2D(3, name="dw")(inputs)
    with pytest.raises(UnsupportedLayerError, match="'dw' \\(DepthwiseConv2D\\)"):
        inflate_model(keras.Model(inputs, z))
    shared = layers.Conv2D(3, 3, padding="same", name="shared")
    with pytest.raises(UnsupportedLayerError, match="'shared'.*used 2 times"):
        inflate_model(keras.Model(inputs, shared(shared(inputs))))
    inner = keras.Model(inputs, layers.Conv2D(3, 1, name="inner_conv")(inputs), name="inner")
    outer_input = keras.Input((16, 16, 3))
    with pytest.raises(UnsupportedLayerError, match="'inner'.*nested model"):
        inflate_model(keras.Model(outer_input, inner(outer_input)))
    strided = layers.Conv2D(3, 3, strides=2, padding="same", name="strided_same")(inputs)
    with pytest.raises(UnsupportedLayerError, match="strided_same"):
        inflate_model(keras.Model(inputs, strided), temporal_dilation=2)


def test_inflate_model_rejects_bad_options(model_2d):
    with pytest.raises(ValueError, match="odd"):
        inflate_model(model_2d, time_size=4)
    with pytest.raises(ValueError, match="temporal_padding"):
        inflate_model(model_2d, temporal_padding="reflect")
    with pytest.raises(ValueError, match="fill"):
        inflate_model(model_2d, mode="copied", fill="random")
    with pytest.raises(ValueError, match="masking"):
        inflate_model(model_2d, time_size=1, masking=True)
    with pytest.raises(ValueError, match="'block9_'"):
        inflate_model(model_2d, temporal_dilation={"conv1": 2, "block9_": 2})


def test_inflated_model_saves_loads_and_logs(model_2d, frames, tmp_path, caplog):
    with caplog.at_level("INFO", logger="emotrack.models.inflate"):
        model_3d = inflate_model(model_2d, time_size=3, temporal_padding="replicate")
    assert "3 Conv2D layers -> Conv3D" in caplog.text
    path = tmp_path / "inflated.keras"
    model_3d.save(path)
    loaded = keras.saving.load_model(path)
    clips = still_video(frames, 3)
    np.testing.assert_allclose(run(loaded, clips), run(model_3d, clips), atol=ATOL)


# --- graphs with branches and skip connections ---------------------------------------------------

def residual_like(seed=0):
    """A small ResNet-style graph (8 filters, 16x16x3 input): ZeroPadding2D + strided "valid" stem,
    a bottleneck block whose shortcut is a strided 1x1 convolution, an identity block (Add), a
    Concatenate branch and BatchNormalization with non-trivial statistics. Output (4, 4, 16)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3), name="image")
    x = layers.ZeroPadding2D(1, name="stem_pad")(inputs)
    x = layers.Conv2D(8, 3, strides=1, name="stem_conv")(x)
    x = layers.BatchNormalization(axis=3, name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    shortcut = layers.Conv2D(8, 1, strides=2, name="res_0_conv")(x)  # strided, "valid"
    y = layers.Conv2D(4, 1, strides=2, name="res_1_conv")(x)
    y = layers.BatchNormalization(name="res_1_bn")(y)
    y = layers.ReLU(name="res_1_relu")(y)
    y = layers.Conv2D(8, 3, padding="same", name="res_2_conv")(y)
    x = layers.Add(name="res_add")([shortcut, y])
    x = layers.Activation("relu", name="res_out")(x)
    z = layers.Conv2D(8, 3, padding="same", name="id_conv")(x)
    x = layers.ReLU(name="id_out")(layers.Add(name="id_add")([x, z]))
    branch = layers.Conv2D(8, 1, name="branch_conv")(x)
    x = layers.Concatenate(axis=3, name="concat")([x, branch])
    x = layers.MaxPooling2D(2, name="pool")(x)
    model = keras.Model(inputs, x, name="residual_like")
    rng = np.random.default_rng(seed)
    for name in ("stem_bn", "res_1_bn"):
        bn = model.get_layer(name)
        c = bn.gamma.shape[0]
        bn.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.3, c), rng.normal(0, 0.3, c),
                        rng.uniform(0.5, 2.0, c)])
    return model


@pytest.fixture(scope="module")
def residual_2d():
    return residual_like()


def frame_by_frame(model_2d, clips):
    """The 2D model applied to every frame of (B, T, H, W, C) clips -> (B, T, ...)."""
    b, t = clips.shape[:2]
    out = run(model_2d, clips.reshape(b * t, *clips.shape[2:]))
    return out.reshape(b, t, *out.shape[1:])


def test_residual_graph_structure(residual_2d):
    model_3d = inflate_model(residual_2d, time_size=3, time_steps=4)
    assert model_3d.output_shape == (None, 4, 4, 4, 16)
    assert isinstance(model_3d.get_layer("stem_pad"), layers.ZeroPadding3D)
    assert model_3d.get_layer("stem_pad").padding == ((0, 0), (1, 1), (1, 1))
    assert isinstance(model_3d.get_layer("res_add"), layers.Add)
    assert model_3d.get_layer("concat").axis == 4  # channel axis, past the new time axis
    assert model_3d.get_layer("res_0_conv").strides == (1, 2, 2)
    assert model_3d.get_layer("stem_bn").axis == -1  # axis=3 (channels) of the 2D layer


def test_centered_zero_is_the_2d_network_frame_by_frame_on_any_clip(residual_2d):
    clips = np.random.default_rng(6).normal(size=(2, 5, 16, 16, 3)).astype("float32")
    model_3d = inflate_model(residual_2d, time_size=3, mode="centered", fill="zero")
    np.testing.assert_allclose(run(model_3d, clips), frame_by_frame(residual_2d, clips), atol=ATOL)


def test_residual_copied_reproduces_2d_on_interior_frames_of_still_video(residual_2d, frames):
    expected = run(residual_2d, frames)
    model_3d = inflate_model(residual_2d, time_size=3, mode="copied", temporal_padding="zero")
    # The longest path (stem, res_1, res_2, id, branch) has 5 convolutions, each reaching one frame
    # further: frames 5 .. 7 of 13 never see the zero padding.
    t = 13
    out = run(model_3d, still_video(frames, t))
    for step in range(5, t - 5):
        np.testing.assert_allclose(out[:, step], expected, atol=ATOL)
    assert not np.allclose(out[:, 0], expected, atol=1e-3)  # the clip ends do see it
    model_3d = inflate_model(residual_2d, time_size=3, mode="copied", temporal_padding="replicate")
    np.testing.assert_allclose(run(model_3d, still_video(frames, 3)),
                               np.repeat(expected[:, None], 3, axis=1), atol=ATOL)


def test_dilation_by_name_prefix_and_strided_dilated_convolution(residual_2d, frames):
    model_3d = inflate_model(residual_2d, time_size=3, mode="copied", temporal_padding="replicate",
                             temporal_dilation={"res_": 2, "id_": 4})
    dilation = {layer.name: layer.dilation_rate[0] for layer in model_3d.layers
                if isinstance(layer, layers.Conv3D)}
    assert dilation == {"stem_conv": 1, "res_0_conv": 2, "res_1_conv": 2, "res_2_conv": 2,
                        "id_conv": 4, "branch_conv": 1}
    # Keras cannot stride and dilate at once: stride 1, then a size-1 pooling that subsamples.
    assert model_3d.get_layer("res_1_conv").strides == (1, 1, 1)
    assert model_3d.get_layer("res_1_conv_stride").strides == (1, 2, 2)
    clips = still_video(frames, 4)
    np.testing.assert_allclose(run(model_3d, clips), frame_by_frame(residual_2d, clips), atol=ATOL)
    centered = inflate_model(residual_2d, time_size=3, mode="centered", temporal_dilation={"res_": 2})
    moving = np.random.default_rng(7).normal(size=(1, 6, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(run(centered, moving), frame_by_frame(residual_2d, moving), atol=ATOL)


@pytest.fixture(scope="module")
def resnet50_2d():
    keras.utils.set_random_seed(8)
    return keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))


def test_resnet50_centered_zero_is_the_2d_network_frame_by_frame(resnet50_2d):
    model_3d = inflate_model(resnet50_2d, time_size=3, mode="centered", fill="zero")
    convs = [layer for layer in model_3d.layers if isinstance(layer, layers.Conv3D)]
    assert len(convs) == 53
    # Every kernel has 3 time slices; biases and BatchNormalization are unchanged.
    kernels = sum(int(np.prod(layer.kernel.shape[1:])) for layer in convs)
    assert model_3d.count_params() == resnet50_2d.count_params() + 2 * kernels == 70497536
    clips = np.random.default_rng(9).uniform(0, 1, (1, 3, 32, 32, 3)).astype("float32")
    expected = frame_by_frame(resnet50_2d, clips)
    assert expected.shape == (1, 3, 1, 1, 2048)
    out = run(model_3d, clips)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_resnet50_copied_dilated_reproduces_2d_on_still_video(resnet50_2d):
    model_3d = inflate_model(resnet50_2d, time_size=3, mode="copied", temporal_padding="replicate",
                             temporal_dilation={"conv3_": 2, "conv4_": 4, "conv5_": 8})
    frame = np.random.default_rng(10).uniform(0, 1, (1, 32, 32, 3)).astype("float32")
    expected = run(resnet50_2d, frame)
    out = run(model_3d, still_video(frame, 2))
    for step in range(2):
        np.testing.assert_allclose(out[:, step], expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


# --- masking -------------------------------------------------------------------------------------

def test_masked_conv3d_assembles_its_kernel():
    kernel = np.random.default_rng(11).normal(size=(3, 3, 3, 2, 4)).astype("float32")
    conv = MaskedConv3D(4, 3, padding="same")
    conv.build((None, 5, 8, 8, 2))
    conv.assign_kernel(kernel)
    np.testing.assert_array_equal(ops.convert_to_numpy(conv.kernel), kernel)
    np.testing.assert_array_equal(ops.convert_to_numpy(conv.center_kernel), kernel[1])
    assert [w.name for w in conv.trainable_weights] == ["temporal_kernel", "bias"]
    assert [w.name for w in conv.non_trainable_weights] == ["center_kernel"]
    reference = layers.Conv3D(4, 3, padding="same")
    reference.build((None, 5, 8, 8, 2))
    reference.set_weights([kernel, ops.convert_to_numpy(conv.bias)])
    x = np.random.default_rng(12).normal(size=(1, 5, 8, 8, 2)).astype("float32")
    np.testing.assert_array_equal(run(conv, x), run(reference, x))
    with pytest.raises(ValueError, match="at least 2"):
        MaskedConv3D(4, (1, 3, 3))


@pytest.mark.parametrize("mode", ["copied", "centered"])
def test_masking_keeps_center_slices_through_adam_training(residual_2d, mode):
    features = inflate_model(residual_2d, time_size=3, mode=mode, masking=True, time_steps=3)
    clips = keras.Input((3, 16, 16, 3))
    head = layers.Dense(2, name="head")(layers.GlobalAveragePooling3D()(features(clips)))
    model = keras.Model(clips, head)
    convs = [layer for layer in features.layers if isinstance(layer, layers.Conv3D)]
    assert len(convs) == 6 and all(isinstance(conv, MaskedConv3D) for conv in convs)
    for conv in convs:  # the centre slice is the 2D kernel, divided by 3 when copied
        kernel_2d = residual_2d.get_layer(conv.name).kernel
        scale = 3.0 if mode == "copied" else 1.0
        np.testing.assert_allclose(ops.convert_to_numpy(conv.center_kernel) * scale, kernel_2d, rtol=1e-6)
    before = {conv.name: (ops.convert_to_numpy(conv.center_kernel), ops.convert_to_numpy(conv.kernel),
                          ops.convert_to_numpy(conv.bias)) for conv in convs}
    rng = np.random.default_rng(13)
    x = rng.normal(size=(4, 3, 16, 16, 3)).astype("float32")
    y = rng.normal(size=(4, 2)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(x, y, batch_size=2, epochs=2, verbose=0)  # 4 steps with momentum
    for conv in convs:
        center, kernel, bias = before[conv.name]
        after = ops.convert_to_numpy(conv.kernel)
        np.testing.assert_array_equal(ops.convert_to_numpy(conv.center_kernel), center)
        np.testing.assert_array_equal(after[1], center)
        changed = after[[0, 2]] != kernel[[0, 2]]
        assert changed.mean() > 0.9, (conv.name, changed.mean())  # the other slices trained
        assert not np.array_equal(ops.convert_to_numpy(conv.bias), bias)


def test_masked_replicate_model_keras_round_trip(residual_2d, tmp_path):
    model_3d = inflate_model(residual_2d, time_size=3, mode="centered", fill="random", rng=1,
                             masking=True, temporal_padding="replicate", temporal_dilation={"id_": 2})
    clips = np.random.default_rng(14).normal(size=(2, 4, 16, 16, 3)).astype("float32")
    path = tmp_path / "masked.keras"
    model_3d.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(run(loaded, clips), run(model_3d, clips))
    conv = loaded.get_layer("id_conv")
    assert isinstance(conv, MaskedConv3D) and conv.dilation_rate == (2, 1, 1)
    assert [w.name for w in conv.non_trainable_weights] == ["center_kernel"]
    np.testing.assert_array_equal(ops.convert_to_numpy(conv.kernel),
                                  ops.convert_to_numpy(model_3d.get_layer("id_conv").kernel))
