"""VGG-Face weights as researchers download them: keras-vggface's and deepface's Keras 2 HDF5 files,
written here with h5py in their exact layouts (random tensors at VGG-16's real widths; only fc6
depends on the input size, so 32x32 and 64x64 inputs keep them small), loaded through the models'
``weights`` option, and checked tensor for tensor and against forward passes computed independently
(scipy's correlation, a NumPy VGG-16, an einsum over the convolution-form fc6)."""

import logging

import h5py
import keras
import numpy as np
import pytest
from scipy.signal import correlate

from emotrack.models.astnet2017 import build_attribute_cnn
from emotrack.models.teixeira2021 import build_backbone
from emotrack.models.vggface import (
    CONV_LAYERS,
    VGGFACE_FILE_NAMES,
    dense_from_conv,
    find_vggface_file,
    is_vggface_file,
    read_vggface,
)
from emotrack.models.weights import WeightsError, weights_source

# VGG-16 configuration "D": (input channels, output channels) of conv1_1 ... conv5_3.
CONV_SHAPES = dict(zip(CONV_LAYERS, [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256),
                                     (256, 256), (256, 512), (512, 512), (512, 512), (512, 512), (512, 512),
                                     (512, 512)]))
# The same layers in emotrack's VGG-16 (keras.applications' names), written out rather than derived.
BLOCK_NAMES = dict(zip(CONV_LAYERS, ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1",
                                     "block3_conv2", "block3_conv3", "block4_conv1", "block4_conv2", "block4_conv3",
                                     "block5_conv1", "block5_conv2", "block5_conv3"]))
FC6 = 8  # fc6 and fc7 units (4,096 in VGG-Face)
IDENTITIES = 5  # fc8 outputs (2,622 in VGG-Face)


def _vggface_tensors(pool5_side: int, seed: int = 0, fc_units: int = FC6,
                     identities: int = IDENTITIES) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Random VGG-Face tensors in keras-vggface's layouts: He-scaled, so that activations stay of
    order one through 13 layers; fc6 reads a pool5_side x pool5_side x 512 map."""
    rng = np.random.default_rng(seed)

    def layer(kernel_shape):
        fan_in = int(np.prod(kernel_shape[:-1]))
        kernel = rng.standard_normal(kernel_shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        return kernel, np.float32(0.1) * rng.standard_normal(kernel_shape[-1], dtype=np.float32)

    tensors = {name: layer((3, 3, c_in, c_out)) for name, (c_in, c_out) in CONV_SHAPES.items()}
    tensors["fc6"] = layer((pool5_side * pool5_side * 512, fc_units))
    tensors["fc7"] = layer((fc_units, fc_units))
    tensors["fc8"] = layer((fc_units, identities))
    return tensors


def _write_keras2(path, layer_names, weights):
    """A Keras 2 HDF5 weights file as ``Model.save_weights`` wrote it: root attribute
    ``layer_names`` (every layer, in model order), one group per layer (created in sorted order,
    so "fc6/relu" nests inside "fc6"), each with a ``weight_names`` attribute naming its datasets."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode("utf8") for name in layer_names]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.5"
        for name in sorted(layer_names):
            group = f.require_group(name)
            named = weights.get(name, [])
            group.attrs["weight_names"] = np.array([w.encode("utf8") for w, _ in named], dtype="S")
            for weight_name, value in named:
                group.create_dataset(weight_name, data=value)


def write_keras_vggface(path, tensors, top=True, legacy_names=False, drop=()):
    """keras-vggface's ``rcmalli_vggface_tf_vgg16.h5`` (``top=False``: ``..._notop_vgg16.h5``),
    with Keras 2 weight names (``conv1_1/kernel:0``) or Keras 1 ones (``conv1_1_W``)."""
    names = ["input_1"]
    for block in range(1, 6):
        names += [n for n in CONV_LAYERS if n[4] == str(block)] + [f"pool{block}"]
    if top:
        names += ["flatten", "fc6", "fc6/relu", "fc7", "fc7/relu", "fc8", "fc8/softmax"]
    weights = {}
    for name in names:
        if name in tensors and name not in drop:
            kernel, bias = tensors[name]
            suffixes = ("_W", "_b") if legacy_names else ("/kernel:0", "/bias:0")
            weights[name] = [(name + suffixes[0], kernel), (name + suffixes[1], bias)]
    _write_keras2(path, names, weights)
    return path


def write_deepface(path, tensors, pool5_side):
    """deepface's ``vgg_face_weights.h5``: a Sequential of ZeroPadding2D + Convolution2D layers with
    generated names, fc6 a pool5_side x pool5_side convolution, fc7 and fc8 1x1 convolutions."""
    names, weights, conv, pad = [], {}, 0, 0

    def add_conv(kernel, bias):
        nonlocal conv
        conv += 1
        name = f"conv2d_{conv}"
        names.append(name)
        weights[name] = [(f"{name}/kernel:0", kernel), (f"{name}/bias:0", bias)]

    for block in range(1, 6):
        for name in (n for n in CONV_LAYERS if n[4] == str(block)):
            pad += 1
            names.append(f"zero_padding2d_{pad}")
            add_conv(*tensors[name])
        names.append(f"max_pooling2d_{block}")
    kernel6, bias6 = tensors["fc6"]
    add_conv(kernel6.reshape(pool5_side, pool5_side, 512, FC6), bias6)
    names.append("dropout_1")
    add_conv(tensors["fc7"][0].reshape(1, 1, FC6, FC6), tensors["fc7"][1])
    names.append("dropout_2")
    add_conv(tensors["fc8"][0].reshape(1, 1, FC6, IDENTITIES), tensors["fc8"][1])
    names += ["flatten_1", "activation_1"]
    _write_keras2(path, names, weights)
    return path


@pytest.fixture(scope="module")
def tensors32():
    return _vggface_tensors(pool5_side=1)  # a 32x32 input leaves a 1x1x512 pool5 map


@pytest.fixture(scope="module")
def vggface_file(tensors32, tmp_path_factory):
    return write_keras_vggface(tmp_path_factory.mktemp("vggface") / "rcmalli_vggface_tf_vgg16.h5", tensors32)


def _conv_kernels(model):
    backbone = model.get_layer("vgg16") if "vgg16" in [layer.name for layer in model.layers] else model
    return {name: backbone.get_layer(BLOCK_NAMES[name]).get_weights() for name in CONV_LAYERS}


def _numpy_conv3x3(x, kernel, bias):
    """'same' 3x3 convolution (correlation, as Keras and Caffe compute it) + bias + ReLU, by shifted
    views: (H, W, C) -> (H, W, O)."""
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    patches = np.concatenate([padded[i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=-1)
    out = patches.reshape(h * w, -1) @ kernel.reshape(-1, kernel.shape[-1]) + bias
    return np.maximum(out, 0).reshape(h, w, -1)


def _numpy_vgg16_fc6(image, tensors):
    """VGG-16 up to fc6 (after its ReLU) in NumPy, float64, for one (H, W, 3) image."""
    x = image.astype("float64")
    for block in range(1, 6):
        for name in (n for n in CONV_LAYERS if n[4] == str(block)):
            x = _numpy_conv3x3(x, *(t.astype("float64") for t in tensors[name]))
        h, w, c = x.shape
        x = x.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
    kernel, bias = tensors["fc6"]
    return np.maximum(x.reshape(-1) @ kernel + bias, 0)


def test_keras_vggface_file_sets_every_kernel_of_the_backbone(vggface_file, tensors32):
    backbone = build_backbone("vgg16", input_shape=(32, 32, 3), weights=str(vggface_file))
    for name, (kernel, bias) in _conv_kernels(backbone).items():
        np.testing.assert_array_equal(kernel, tensors32[name][0], err_msg=name)
        np.testing.assert_array_equal(bias, tensors32[name][1], err_msg=name)


def test_conv1_1_feature_map_equals_scipy_correlation(vggface_file, tensors32):
    backbone = build_backbone("vgg16", input_shape=(32, 32, 3), weights=str(vggface_file))
    image = np.random.default_rng(1).uniform(-1, 1, (32, 32, 3)).astype("float32")
    conv1_1 = keras.Model(backbone.inputs, backbone.get_layer("block1_conv1").output)
    got = np.asarray(conv1_1([image[None]]))[0]
    kernel, bias = tensors32["conv1_1"]
    want = np.stack([sum(correlate(image[..., c], kernel[..., c, o], mode="same") for c in range(3)) + bias[o]
                     for o in range(64)], axis=-1)
    np.testing.assert_allclose(got, np.maximum(want, 0), rtol=1e-5, atol=1e-5)


def test_attribute_cnn_takes_convolutions_and_fc6_and_matches_a_numpy_vgg16(vggface_file, tensors32, caplog):
    with caplog.at_level(logging.INFO, logger="emotrack.models.weights"):
        cnn = build_attribute_cnn(input_shape=(32, 32, 3), weights=str(vggface_file), fc6_units=FC6,
                                  input_preprocessing="none")
    assert "ignored: fc7, fc8" in caplog.text  # AST-Net reads fc6; fc7 and the identities are not used
    kernel, bias = cnn.get_layer("fc6").get_weights()
    np.testing.assert_array_equal(kernel, tensors32["fc6"][0])
    np.testing.assert_array_equal(bias, tensors32["fc6"][1])
    image = np.random.default_rng(2).uniform(0, 1, (32, 32, 3)).astype("float32")
    want = _numpy_vgg16_fc6(image, tensors32)
    got = np.asarray(cnn(image[None]))[0]
    assert want.std() > 0.1  # the reference is not trivially zero
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_keras1_weight_names_load_the_same(tensors32, tmp_path):
    path = write_keras_vggface(tmp_path / "vgg16_legacy.h5", tensors32, legacy_names=True)
    with h5py.File(path) as f:
        assert [w.decode() for w in f["conv1_1"].attrs["weight_names"]] == ["conv1_1_W", "conv1_1_b"]
    backbone = build_backbone("vgg16", input_shape=(32, 32, 3), weights=str(path))
    np.testing.assert_array_equal(backbone.get_layer("block5_conv3").get_weights()[0], tensors32["conv5_3"][0])


def test_deepface_file_fc6_convolution_becomes_the_dense_fc6(tmp_path):
    side = 2  # a 64x64 input leaves a 2x2x512 pool5 map, so the flatten order matters
    tensors = _vggface_tensors(pool5_side=side, seed=3)
    path = write_deepface(tmp_path / "vgg_face_weights.h5", tensors, side)
    assert is_vggface_file(path)
    conv_form = read_vggface(path)
    np.testing.assert_array_equal(conv_form["conv4_2"][0], tensors["conv4_2"][0])
    cnn = build_attribute_cnn(input_shape=(64, 64, 3), weights=str(path), fc6_units=FC6,
                              input_preprocessing="none")
    for name, (kernel, bias) in _conv_kernels(cnn).items():
        np.testing.assert_array_equal(kernel, tensors[name][0], err_msg=name)
    image = np.random.default_rng(4).uniform(0, 1, (1, 64, 64, 3)).astype("float32")
    pool5 = np.asarray(cnn.get_layer("vgg16")(image))[0].astype("float64")
    # fc6 as deepface computes it: a 2x2 'valid' convolution over the 2x2x512 map.
    kernel = tensors["fc6"][0].reshape(side, side, 512, FC6).astype("float64")
    want = np.maximum(np.einsum("hwc,hwco->o", pool5, kernel) + tensors["fc6"][1], 0)
    np.testing.assert_allclose(np.asarray(cnn(image))[0], want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_conv_kernel_reshaped_to_dense_follows_keras_flatten_order():
    rng = np.random.default_rng(5)
    feature_map = rng.standard_normal((2, 3, 3, 4)).astype("float32")
    kernel = rng.standard_normal((3, 3, 4, 5)).astype("float32")
    conv = keras.layers.Conv2D(5, 3, padding="valid", use_bias=False)
    conv.build((None, 3, 3, 4))
    conv.set_weights([kernel])
    dense = keras.layers.Dense(5, use_bias=False)
    dense.build((None, 36))
    dense.set_weights([dense_from_conv(kernel)])
    want = np.asarray(conv(feature_map)).reshape(2, 5)
    got = np.asarray(dense(keras.layers.Flatten()(feature_map)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_file_without_conv4_2_is_refused_by_name(tensors32, tmp_path):
    path = write_keras_vggface(tmp_path / "broken_vgg16.h5", tensors32, drop=("conv4_2",))
    with pytest.raises(WeightsError, match=r"broken_vgg16\.h5.*no conv4_2 \(block4_conv2\)"):
        build_backbone("vgg16", input_shape=(32, 32, 3), weights=str(path))


def test_notop_file_loads_convolutions_but_not_an_fc6(tensors32, tmp_path):
    path = write_keras_vggface(tmp_path / "rcmalli_vggface_tf_notop_vgg16.h5", tensors32, top=False)
    backbone = build_backbone("vgg16", input_shape=(32, 32, 3), weights=str(path))
    np.testing.assert_array_equal(backbone.get_layer("block3_conv2").get_weights()[1], tensors32["conv3_2"][1])
    with pytest.raises(WeightsError, match=r"no fc6: .*rcmalli_vggface_tf_vgg16\.h5"):
        build_attribute_cnn(input_shape=(32, 32, 3), weights=str(path), fc6_units=FC6)


def test_fc6_of_another_size_and_other_backbones_are_refused(vggface_file):
    with pytest.raises(WeightsError, match=r"fc6 is \(512, 8\) in the file but \(512, 4\) in the model.*224, 224, 3"):
        build_attribute_cnn(input_shape=(32, 32, 3), weights=str(vggface_file), fc6_units=4)
    with pytest.raises(WeightsError, match="batch normalisation"):
        build_backbone("vgg16_bn", input_shape=(32, 32, 3), weights=str(vggface_file))
    with pytest.raises(WeightsError, match=r"no block1_conv2.*conv1_2"):
        build_backbone("vgg11", input_shape=(32, 32, 3), weights=str(vggface_file))
    with pytest.raises(WeightsError, match="no vggface weights are known for 'resnet50'"):
        build_backbone("resnet50", input_shape=(32, 32, 3), weights="vggface")


def test_vggface_name_resolves_from_the_weights_folder(vggface_file, tensors32, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("EMOTRACK_WEIGHTS", str(tmp_path / "weights"))
    with pytest.raises(WeightsError, match="none of rcmalli_vggface_tf_vgg16.h5.*EMOTRACK_WEIGHTS"):
        weights_source("vggface", "vgg16", ("imagenet", "vggface"))
    cache = tmp_path / "keras" / "models" / "vggface"  # where keras-vggface downloads it
    cache.mkdir(parents=True)
    (cache / VGGFACE_FILE_NAMES[0]).write_bytes(vggface_file.read_bytes())
    assert find_vggface_file() == cache / VGGFACE_FILE_NAMES[0]
    assert weights_source("vggface", "vgg16", ("imagenet", "vggface")) == (None, str(cache / VGGFACE_FILE_NAMES[0]))
    backbone = build_backbone("vgg16", input_shape=(32, 32, 3), weights="vggface")
    np.testing.assert_array_equal(backbone.get_layer("block1_conv1").get_weights()[0], tensors32["conv1_1"][0])


def test_original_release_and_keras3_files_are_told_apart(tmp_path):
    with pytest.raises(WeightsError, match=r"original VGG-Face release.*rcmalli_vggface_tf_vgg16\.h5.*conv1_1"):
        weights_source(str(tmp_path / "vgg_face.mat"), "vgg16", ("imagenet", "vggface"))
    with pytest.raises(WeightsError, match="original VGG-Face release"):
        weights_source(str(tmp_path / "VGG_FACE.caffemodel"), "vgg16")
    # A file saved from emotrack's own VGG-16 keeps loading as before (Keras 3 layout, block names).
    source = build_backbone("vgg16", input_shape=(32, 32, 3))
    path = tmp_path / "backbone.weights.h5"
    source.save_weights(path)
    assert not is_vggface_file(path)
    loaded = build_backbone("vgg16", input_shape=(32, 32, 3), weights=str(path))
    np.testing.assert_array_equal(loaded.get_layer("block4_conv2").get_weights()[0],
                                  source.get_layer("block4_conv2").get_weights()[0])


@pytest.mark.slow
def test_full_size_vggface_file_fills_astnet_attribute_cnn(tmp_path):
    """The real sizes: 224x224 input, fc6 of 4,096 units over the 7x7x512 pool5 map, 2,622 identities."""
    tensors = _vggface_tensors(pool5_side=7, seed=6, fc_units=4096, identities=2622)
    path = write_keras_vggface(tmp_path / "rcmalli_vggface_tf_vgg16.h5", tensors)
    cnn = build_attribute_cnn(weights=str(path), input_preprocessing="none")
    assert cnn.get_layer("fc6").get_weights()[0].shape == (7 * 7 * 512, 4096)
    np.testing.assert_array_equal(cnn.get_layer("fc6").get_weights()[0], tensors["fc6"][0])
    for name, (kernel, bias) in _conv_kernels(cnn).items():
        np.testing.assert_array_equal(kernel, tensors[name][0], err_msg=name)
    image = np.random.default_rng(7).uniform(0, 1, (1, 224, 224, 3)).astype("float32")
    pool5 = np.asarray(cnn.get_layer("vgg16")(image))[0].astype("float64")
    want = np.maximum(pool5.reshape(-1) @ tensors["fc6"][0] + tensors["fc6"][1], 0)
    np.testing.assert_allclose(np.asarray(cnn(image))[0], want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
