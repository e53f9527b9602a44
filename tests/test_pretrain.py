"""Staged training: a 2D backbone pre-trained on discrete emotions (RAF-DB layout) is loaded into the
continuous models, inflated for the i3D-CNN."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from emotrack.cli import main
from emotrack.models import build_model
from emotrack.training.pretrain import DatasetLayoutError, class_weights, read_rafdb


@pytest.fixture(scope="module")
def rafdb(tmp_path_factory):
    """A RAF-DB 'basic' tree of real face photographs (the public-domain portrait, tinted per class)."""
    import matplotlib.cbook

    root = tmp_path_factory.mktemp("rafdb")
    face = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").resize((100, 100)))
    (root / "Image" / "aligned").mkdir(parents=True)
    (root / "EmoLabel").mkdir()
    lines = []
    for split, count in (("train", 14), ("test", 7)):
        for i in range(1, count + 1):
            label = (i - 1) % 7 + 1
            tint = np.clip(face * (0.6 + 0.1 * label), 0, 255).astype(np.uint8)
            Image.fromarray(tint).save(root / "Image" / "aligned" / f"{split}_{i:05d}_aligned.jpg")
            lines.append(f"{split}_{i:05d}.jpg {label}")
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def test_reads_the_rafdb_layout(rafdb):
    items = read_rafdb(rafdb)
    assert len(items) == 21 and sum(p == "train" for _, _, p in items) == 14
    assert items[0][1] == 0 and items[6][1] == 6  # labels 1..7 -> 0..6


def test_layout_errors_name_the_file(rafdb, tmp_path):
    with pytest.raises(DatasetLayoutError, match="list_patition_label.txt does not exist"):
        read_rafdb(tmp_path)
    bad = tmp_path / "EmoLabel"
    bad.mkdir()
    (bad / "list_patition_label.txt").write_text("train_00001.jpg 9\n")
    with pytest.raises(DatasetLayoutError, match="label 9"):
        read_rafdb(tmp_path)
    (bad / "list_patition_label.txt").write_text("train_00099.jpg 1\n")
    with pytest.raises(DatasetLayoutError, match="no image for train_00099.jpg"):
        read_rafdb(tmp_path)


def test_class_weights_are_inverse_frequencies():
    weights = class_weights(np.array([0, 0, 0, 1]), 3)
    # n / (classes present * count): 4 / (2 * 3) and 4 / (2 * 1); the absent class gets 0.
    assert weights == pytest.approx({0: 4 / 6, 1: 2.0, 2: 0.0})


def test_pretrained_backbone_feeds_the_i3d(rafdb, tmp_path):
    run = tmp_path / "pre"
    result = CliRunner().invoke(main, ["pretrain", "--images", str(rafdb), "--out", str(run), "--backbone", "vgg11",
                                       "--size", "32", "32", "--epochs", "1", "--batch-size", "7", "--lr", "1e-3"])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output
    weights = run / "backbone.weights.h5"
    # Written through temporary names that keep the suffixes Keras checks, and nothing else left.
    assert sorted(p.name for p in run.iterdir()) == ["backbone.weights.h5", "config.yaml", "history.csv",
                                                     "model.keras", "report.json"]
    fresh = build_model("teixeira2021-2d", backbone="vgg11", input_shape=(32, 32, 3))
    kernel_2d = None
    import keras

    trained = keras.models.load_model(run / "model.keras", compile=False)
    kernel_2d = np.asarray(trained.get_layer("vgg11").get_layer("block3_conv1").kernel)
    assert not np.allclose(kernel_2d, np.asarray(fresh.get_layer("vgg11").get_layer("block3_conv1").kernel))
    i3d = build_model("teixeira2021-i3d", backbone="vgg11", input_shape=(32, 32, 3), weights=str(weights),
                      inflation="centered", fill="zero", time_size=3, dense_units=(4, 4))
    conv = next(layer for layer in i3d.get_layer("vgg11_i3d").layers if layer.name.startswith("block3_conv1"))
    kernel_3d = np.asarray(conv.kernel)
    np.testing.assert_array_equal(kernel_3d[1], kernel_2d)  # the centre slice is the pre-trained kernel
    np.testing.assert_array_equal(kernel_3d[0], 0.0)
    again = CliRunner().invoke(main, ["pretrain", "--images", str(rafdb), "--out", str(run)])
    assert again.exit_code != 0 and "--overwrite" in again.output


def test_pretrained_resnet50_feeds_the_tzirakis_visual_network(rafdb, tmp_path):
    import keras

    run = tmp_path / "pre"
    result = CliRunner().invoke(main, ["pretrain", "--images", str(rafdb), "--out", str(run), "--backbone", "resnet50",
                                       "--preprocessing", "caffe", "--pooling", "avg", "--bn-momentum", "0.9",
                                       "--size", "32", "32", "--epochs", "1", "--batch-size", "7", "--lr", "1e-3"])
    assert result.exit_code == 0, result.output
    classifier = keras.models.load_model(run / "model.keras", compile=False)
    assert [layer.name for layer in classifier.layers[1:]] == ["caffe_preprocessing", "teixeira2021_2d_resnet50"]
    backbone = classifier.get_layer("teixeira2021_2d_resnet50").get_layer("resnet50")
    assert {layer.momentum for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)} == {0.9}
    # The visual network loads the file by layer name and, on one face, gives the pre-trained backbone's
    # features: its input converted here as ImageNet's ResNet-50 expects (BGR, channel means subtracted)
    # and the feature map averaged over space.
    visual = build_model("tzirakis2017-visual", image_size=32, weights=str(run / "backbone.weights.h5"),
                         visual_features=None, lstm_units=4)
    face = np.asarray(Image.open(next((rafdb / "Image" / "aligned").iterdir())).resize((32, 32)), np.float32)
    caffe = face[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    expected = np.asarray(backbone(caffe[None], training=False)).mean(axis=(1, 2))
    features = np.asarray(visual.get_layer("visual_features")(face[None, None], training=False))[0]
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(expected).max() > 0.01
