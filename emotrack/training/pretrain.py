"""Pre-training of a 2D backbone on discrete emotions (Teixeira et al. 2021, Sec. 3.1 and 4.3), the
first stage before the VGG-16-LSTM or an i3D-CNN is fine-tuned on continuous ratings.

The labelled face images are read in the RAF-DB release layout (basic emotions)::

    ROOT/EmoLabel/list_patition_label.txt      "train_00001.jpg 5" per line (labels 1..7)
    ROOT/Image/aligned/train_00001_aligned.jpg (100x100 aligned faces), or
    ROOT/Image/original/train_00001.jpg

Labels 1..7 are surprise, fear, disgust, happiness, sadness, anger, neutral, the order of
:data:`emotrack.models.teixeira2021.EMOTIONS`. Images whose name starts with ``train`` train the
network, those starting with ``test`` measure it.

As in Sec. 4.3: Adam with a learning rate of 1e-5, batches of 16, the loss weighted per class by
inverse frequency (RAF-DB is unbalanced), and rotation, flip and brightness augmentation. The run
folder receives ``model.keras`` (the whole classifier), ``backbone.weights.h5`` (the backbone
alone: pass it as ``model.options.weights`` to ``teixeira2021-vgg16-lstm`` or ``teixeira2021-i3d``,
which load it, inflating it for the i3D), ``history.csv``, ``config.yaml`` and ``report.json``
(test accuracy).

A ResNet-50 (``backbone="resnet50"``) pre-trained with ``input_preprocessing="caffe"`` and
``pooling="avg"`` sees its images as ``tzirakis2017-visual`` feeds them; its
``backbone.weights.h5`` is that network's ``model.options.weights`` (in place of the ImageNet
ResNet-50 of Tzirakis 2017, Sec. III-D).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from emotrack.corpora.images import ImageSetError, read_rafdb
from emotrack.files import atomic_path

#: The error of an image set that is not in its release's layout (RAF-DB, FER2013).
DatasetLayoutError = ImageSetError

DEFAULT_AUGMENT = {"rotation_deg": 10, "flip": True, "brightness": 0.1}
#: How the images meet the backbone: "scale" (pixels / 255) or "caffe" (ResNet-50's ImageNet convention).
INPUT_PREPROCESSING = ("scale", "caffe")


def class_weights(labels: np.ndarray, classes: int) -> dict[int, float]:
    """Inverse-frequency weights, normalised so that the weighted sample count is unchanged:
    ``n / (classes_present * count_c)``; classes without samples get weight 0."""
    counts = np.bincount(labels, minlength=classes)
    present = int((counts > 0).sum())
    return {c: (float(len(labels) / (present * counts[c])) if counts[c] else 0.0) for c in range(classes)}


def _images(items, size, batch_size, augment, seed, shuffle):
    import tensorflow as tf

    from emotrack.data.augment import augment_frames

    paths = [str(p) for p, _, _ in items]
    labels = np.array([label for _, label, _ in items], np.int64)

    def load(index, path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), size)
        if augment:
            image = augment_frames(image, tf.stack([tf.constant(seed, tf.int64), index]), augment)
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.enumerate().map(lambda i, pair: load(i, pair[0], pair[1]), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def pretrain_2d(images_root: str | Path, out_dir: str | Path, backbone: str = "vgg16", weights=None,
                fine_tune_from: str = "all", input_shape=(100, 80, 3), epochs: int = 20,
                batch_size: int = 16, learning_rate: float = 1e-5, augment: dict | None = None,
                input_preprocessing: str = "scale", pooling: str = "flatten",
                batch_norm_momentum: float | None = None, seed: int = 0, overwrite: bool = False,
                verbose: int = 2) -> dict[str, Any]:
    """Train ``teixeira2021-2d`` on the seven RAF-DB emotions and write the run folder (see the
    module docstring). Returns the report (test accuracy, counts, files).

    ``input_preprocessing``, ``pooling`` and ``batch_norm_momentum`` make the backbone see its input
    as the network it is pre-trained for will: ``"scale"`` (pixels / 255, Teixeira 2021) or
    ``"caffe"`` (RGB -> BGR, ImageNet channel means subtracted: ResNet-50's ImageNet convention,
    which ``tzirakis2017-visual`` feeds its backbone); ``pooling`` of the backbone's feature map
    ("flatten", or "avg" as ResNet-50's ImageNet classifier and the Tzirakis network); the momentum
    of the backbone's BatchNormalization layers (None: the backbone's own).
    """
    import keras

    from emotrack.models import build_model
    from emotrack.models.teixeira2021 import EMOTIONS

    if input_preprocessing not in INPUT_PREPROCESSING:
        raise ValueError(f"input_preprocessing must be one of {', '.join(INPUT_PREPROCESSING)}, "
                         f"not {input_preprocessing!r}")
    items = read_rafdb(images_root)
    out_dir = Path(out_dir)
    if (out_dir / "config.yaml").exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a pre-training run; choose another --out or pass --overwrite")
    keras.utils.set_random_seed(seed)
    model = build_model("teixeira2021-2d", backbone=backbone, weights=weights, fine_tune_from=fine_tune_from,
                        input_shape=tuple(input_shape), pooling=pooling,
                        input_scale=1 / 255 if input_preprocessing == "scale" else 1.0)
    features = model.get_layer(backbone)
    if input_preprocessing == "caffe":
        from emotrack.models.tzirakis2017 import CaffePreprocessing

        images = keras.Input(shape=tuple(input_shape), name="image")
        model = keras.Model(images, model(CaffePreprocessing(name="caffe_preprocessing")(images)), name=model.name)
    if batch_norm_momentum is not None:
        for layer in features.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(batch_norm_momentum)
    train_items = [i for i in items if i[2] == "train"]
    test_items = [i for i in items if i[2] == "test"]
    labels = np.array([label for _, label, _ in train_items])
    config = {"stage": "teixeira2021-2d pre-training", "images": str(Path(images_root).resolve()),
              "backbone": backbone, "weights": weights, "fine_tune_from": fine_tune_from,
              "input_shape": list(input_shape), "input_preprocessing": input_preprocessing, "pooling": pooling,
              "batch_norm_momentum": batch_norm_momentum, "epochs": epochs, "batch_size": batch_size,
              "learning_rate": learning_rate, "augment": augment if augment is not None else DEFAULT_AUGMENT,
              "seed": seed, "class_weights": class_weights(labels, len(EMOTIONS))}
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    size = tuple(input_shape[:2])
    train_ds = _images(train_items, size, batch_size, config["augment"], seed, shuffle=True)
    test_ds = _images(test_items, size, batch_size, None, seed, shuffle=False) if test_items else None
    model.fit(train_ds, validation_data=test_ds, epochs=epochs, class_weight=config["class_weights"],
              callbacks=[keras.callbacks.CSVLogger(str(out_dir / "history.csv"))], verbose=verbose)
    for target, save in ((out_dir / "model.keras", model.save),
                         (out_dir / "backbone.weights.h5", features.save_weights)):
        with atomic_path(target, keep_suffix=True) as tmp:  # Keras picks the format from the suffixes
            save(tmp)
    report = {"train_images": len(train_items), "test_images": len(test_items),
              "test_accuracy": float(model.evaluate(test_ds, verbose=0)[1]) if test_ds is not None else None,
              "backbone_weights": str(out_dir / "backbone.weights.h5"), "model": str(out_dir / "model.keras")}
    with atomic_path(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return report


def pretrain_attribute_cnn(fer2013_csv: str | Path, out_dir: str | Path, weights=None, input_size: int = 224,
                           fc6_units: int = 4096, epochs: int = 20, batch_size: int = 32,
                           learning_rate: float = 1e-4, seed: int = 0, overwrite: bool = False,
                           verbose: int = 2) -> dict[str, Any]:
    """AST-Net's attribute CNN (Wang & Hsu 2017, Sec. 3.2: "We use VGG-16 as our CNN model, and
    pre-train the model on VGG-Deepface. We then fine-tune the CNN model on the discrete emotion
    dataset, Fer2013"): VGG-16 with its fc6 (``weights``: the VGG-Face file, or None) and a 7-way
    softmax on fc6, fine-tuned on FER2013's ``Training`` rows and measured on ``PrivateTest``.

    Sec. 4.3: "resize all the face images in FER2013 ... into 224 x 224": the 48x48 gray faces are
    resized to ``input_size`` and repeated over three channels (assumed: the paper does not say how
    gray images meet VGG's RGB input). Not given, assumed: Adam, ``learning_rate`` 1e-4, batches of
    32, 20 epochs, plain cross-entropy.

    Writes ``attribute.weights.h5`` (the attribute CNN alone: the ``attribute_weights`` of every
    AST-Net experiment built with the same ``input_shape`` and ``fc6_units``), ``history.csv``,
    ``config.yaml`` and ``report.json`` (test accuracy) in ``out_dir``. Returns the report.
    """
    import keras

    from emotrack.corpora.images import FER2013_EMOTIONS, read_fer2013
    from emotrack.models.astnet2017 import build_attribute_cnn

    images, labels, usage = read_fer2013(fer2013_csv)
    out_dir = Path(out_dir)
    if (out_dir / "config.yaml").exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a pre-training run; choose another --out or pass --overwrite")
    train, test = usage == "Training", usage == "PrivateTest"
    if not train.any():
        raise ValueError(f"{fer2013_csv} has no 'Training' rows to fine-tune on")
    keras.utils.set_random_seed(seed)
    cnn = build_attribute_cnn("vgg16", input_shape=(input_size, input_size, 3), weights=weights,
                              fc6_units=fc6_units, trainable_backbone=True)
    frames = keras.Input(shape=(input_size, input_size, 3), name="image")
    model = keras.Model(frames, keras.layers.Dense(len(FER2013_EMOTIONS), activation="softmax",
                                                   name="emotions")(cnn(frames)), name="fer2013_classifier")
    config = {"stage": "AST-Net attribute CNN on FER2013", "images": str(Path(fer2013_csv).resolve()),
              "weights": None if weights is None else str(weights), "input_size": input_size,
              "fc6_units": fc6_units, "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
              "seed": seed}
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))

    def rgb(x: np.ndarray) -> np.ndarray:  # (N, 48, 48) uint8 -> (N, S, S, 3) float32 in 0..255
        resized = keras.ops.image.resize(x[..., None].astype("float32"), (input_size, input_size))
        return np.repeat(keras.ops.convert_to_numpy(resized), 3, axis=-1)

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(rgb(images[train]), labels[train], batch_size=batch_size, epochs=epochs, shuffle=True,
              callbacks=[keras.callbacks.CSVLogger(str(out_dir / "history.csv"))], verbose=verbose)
    target = out_dir / "attribute.weights.h5"
    with atomic_path(target, keep_suffix=True) as tmp:
        cnn.save_weights(tmp)
    accuracy = float(model.evaluate(rgb(images[test]), labels[test], verbose=0)[1]) if test.any() else None
    report = {"train_images": int(train.sum()), "test_images": int(test.sum()), "test_accuracy": accuracy,
              "backbone_weights": str(target)}
    with atomic_path(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return report
