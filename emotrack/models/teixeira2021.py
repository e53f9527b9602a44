"""Teixeira et al. 2021, "Continuous emotion recognition with spatiotemporal convolutional neural
networks" (Applied Sciences 2021; shared/papers/teixeira2021_cnnlstm_i3d_sewa.txt).

Two kinds of networks on 100x80 RGB face crops (Sec. 3.2, Sec. 4.3: faces resized to 100x80, the
mean face size of SEWA-DB):

- ``teixeira2021-2d`` (Sec. 3.1, Fig. 2, Table 1): a 2D CNN (VGG-11, VGG-11-BN, VGG-16, VGG-16-BN or
  ResNet-50) whose classifier is replaced by two fully connected layers of 512 and 128 units and a
  7-unit softmax for the seven RAF-DB emotions (surprise, fear, disgust, happiness, sadness, anger,
  neutral). Fine-tuning starts at a convolution block (Table 1: "Conv 2_1" to "Conv 5_1", or "Full");
  the blocks before it are frozen.
- ``teixeira2021-vgg16-lstm`` (Sec. 3.3.1, Sec. 4.4, Fig. 6): the convolutional part of VGG-16 applied
  to every frame of a clip, the per-frame features fed in order to one LSTM layer of 1,024 units with
  20% dropout and 20% recurrent dropout, then three fully connected layers that regress arousal and
  valence. Input (batch, T, 100, 80, 3), output (batch, 2) = (arousal, valence) for the whole clip.
- ``teixeira2021-i3d`` (Sec. 3.3.2, Sec. 4.5, Fig. 7, Fig. 8, Table 3): any of the backbones inflated
  into a 3D CNN (:func:`emotrack.models.inflate.inflate_model`) with the inflation options of
  Table 3 (inflation copied / centered, centred weights zero / random, masking, dilation, multiplier),
  then two fully connected layers and a linear regression of arousal and valence. Input
  (batch, T, 100, 80, 3), output (batch, 2) = (arousal, valence) for the whole clip.

Backbones (:func:`build_backbone`), all without classifier and without final pooling (the
``include_top=False`` convention of ``keras.applications``):

- VGG-11 (configuration "A": 1, 1, 2, 2, 2 convolutions per block) and VGG-16 (configuration "D":
  2, 2, 3, 3, 3), 64-128-256-512-512 filters of 3x3, "same" padding, ReLU, 2x2 max pooling with
  stride 2 after every block. Layers are named as in ``keras.applications.VGG16``
  (``block{b}_conv{i}``, ``block{b}_pool``), so VGG-16 holds exactly the same layers and weights as
  ``keras.applications.VGG16(include_top=False)`` and blocks can be frozen by name.
- "-BN" variants (Sec. 4.3, Table 1: "batch normalization layers added to the original architectures
  after each convolutional layer"): every convolution is linear and followed by
  ``block{b}_bn{i}`` (BatchNormalization) and ``block{b}_relu{i}`` (ReLU). The VGG-BN networks are
  torchvision's (Table 1's ImageNet VGG-11-BN exists only there), so the normalisation has PyTorch's
  settings, momentum 0.1 (Keras' ``momentum=0.9``) and epsilon 1e-5: with Keras' default 0.99 the
  moving statistics that evaluation uses stay near their initial values for hundreds of steps, and a
  short run is scored in a regime it never trained in (a tiny pre-training stage at chance on its
  test images, 0.143, while its training accuracy reached 0.40).
- ResNet-50: ``keras.applications.ResNet50(include_top=False)``.
Each backbone is one flat functional model (no nested models), so
:func:`emotrack.models.inflate.inflate_model` can turn any of them, ResNet-50's skip connections
included, into an i3D-CNN (Sec. 3.3.2).

What the paper leaves open, and what is assumed here:
- Between the last convolution block and the 512-unit layer of the 2D head the paper says only that
  the fully connected layers of the original architectures were replaced. ``pooling="flatten"``
  (default) flattens the feature map as VGG's own classifier does (3x2x512 = 3,072 features for VGG
  at 100x80, 4x3x2048 = 24,576 for ResNet-50); ``"avg"`` or ``"max"`` use global pooling instead
  (512 or 2048 features). The hidden fully connected layers use ReLU; no dropout is named and none
  is used.
- Fine-tuning "from Conv k_1" freezes (``trainable=False``) every backbone layer before the first
  layer of block k: for VGG ``block{k}_conv1``, for ResNet-50 the first layer of ``conv{k}_block1``
  (``conv1_*`` is ResNet-50's stem and block 1). ``"all"`` ("Full" in Table 1) freezes nothing. The
  head is always trainable. A frozen BatchNormalization layer runs in inference mode (Keras 3), so
  its moving statistics stay as loaded.
- Fig. 6's unit counts are not in the text of the paper. The three fully connected layers after the
  LSTM are taken as 512 and 128 ReLU units (the sizes of the Sec. 3.1 head that the VGG-16 was
  fine-tuned with) and a linear 2-unit output (regression with the MSE loss, Sec. 4.4);
  ``dense_units`` changes the hidden sizes.
- Per clip, not per frame: Fig. 6 accumulates the frame features "to form a feature vector
  representing one clip", and Sec. 3.2 fuses the labels of a clip into one valence and one arousal
  value (mean or extremum), so the LSTM returns only its last state and the network predicts one
  (arousal, valence) pair per clip.
- Frame features for the LSTM: the VGG-16 feature map of each frame is flattened
  (``frame_pooling="flatten"``, 3,072 features at 100x80); ``"avg"`` / ``"max"`` pool it to 512.
- "Random and uniform distribution initialization" of the LSTM (Sec. 3.3.1): both the input and the
  recurrent kernels use ``lstm_initializer`` (Glorot uniform by default); the paper names no range.
- Input scaling (Sec. 3.2: pixel values scaled to 0..1): the networks take pixels in 0..255, as
  every emotrack model does, and rescale them by ``input_scale`` (1/255) in a first layer named
  ``input_scale``; ``input_scale=1`` takes the input as given. ImageNet weights from ``keras.applications`` expect that family's own
  preprocessing (caffe-style, 0..255 BGR minus means) and are offered for convenience only: the
  paper's pre-training sets are VGG-Face, ImageNet and RAF-DB.
- Pretrained weights: ``weights`` is None (random initialisation), ``"imagenet"`` (VGG-16 and
  ResNet-50 only; ``keras.applications`` downloads the file on first use), ``"vggface"`` (VGG-16
  only: a VGG-Face file found by name in the weights cache) or the path of a local ``.weights.h5``
  / ``.h5`` file saved from the same backbone (same name, same layers; a RAF-DB backbone) or of a
  VGG-Face ``.h5`` file as downloaded (keras-vggface or deepface; its convolutions are mapped by
  name, its fc layers ignored, :func:`emotrack.models.weights.load_vggface_weights`).
- i3D-CNN (``teixeira2021-i3d``):
  - Table 3's two configurations: C1 = ``inflation="centered", fill="random", masking=False,
    dilation=(1, 1, 1, 1), multiplier=1``; C2 = ``inflation="copied", masking=True,
    dilation=(1, 2, 4, 8), multiplier=100``. Table 3 lists C2's centred weights as "zero", and
    Tables 4 and 5 fill that column for copied rows too, where it changes nothing (every slice
    holds the 2D kernel): with "copied" pass ``fill="zero"`` (the default). The defaults
    (centered, zero, no masking, (1, 1, 1, 1), x1) are a configuration of Table 4.
  - Kernels: ``time_size`` (n) for every convolution, 3 in Fig. 8 (3x3x3). "Copied" is divided by
    n as in I3D, and time is padded so every layer keeps the clip length (see
    :mod:`emotrack.models.inflate` for both).
  - Dilation: "four blocks with increasing levels of dilation starting from level 1 ... then 2, 4
    and 8 for top convolutional layers". VGG has five convolution blocks, ResNet-50 a stem
    (``conv1``) and four residual stages (``conv2`` ... ``conv5``). The four numbers of
    ``dilation`` apply to blocks 2, 3, 4 and 5 (``block{b}_`` for VGG, ``conv{b}_`` for ResNet-50,
    ``DILATION_BLOCKS``); block 1 / the stem always has dilation 1. This maps the four numbers to
    the same four stages in both families, the stages whose fine-tuning Table 1 controls
    (Conv 2_1 ... Conv 5_1); Table 3's first number is 1 in both configurations anyway.
  - Masking: the central time slice of every inflated kernel (the 2D kernel for "centered", the
    2D kernel / n for "copied") does not train; biases, BatchNormalization, the other slices and
    the head do (:class:`emotrack.models.inflate.MaskedConv3D`).
  - Multiplier ("rising targeted values by a factor", x1 or x100): the paper trains the network to
    output the ratings times the multiplier. Here the last linear layer (``predictions``) does the
    same, and a ``Rescaling`` layer named ``multiplier`` divides its output by the multiplier, so
    the model takes and gives ratings on their own scale and the data pipeline, the evaluation and
    prediction need not know about it. Trained on the unscaled ratings, the CCC loss is exactly the
    paper's (CCC does not change when both series are scaled by one factor); the MSE is the paper's
    divided by multiplier**2: compile with ``loss_weights=multiplier**2`` for the paper's loss and
    gradients (with Adam the updates are the same either way, up to its epsilon).
  - Head: Fig. 8's unit counts are not in the text. Sec. 4.5 says the i3D-CNNs reuse "the 2D-CNN
    architectures shown in Table 1", whose head is "two fully connected layers with 512 and 128
    units" (Sec. 3.1); Fig. 8 names "two fully connected (FC) layers" for the regression. So: ReLU
    layers of 512 and 128 units (``dense_units``) and a linear output of 2 units (arousal,
    valence), the 7-unit softmax of Sec. 3.1 replaced by the regression output.
  - From the 3D feature map (batch, T, h, w, C) to the head: ``pooling="flatten"`` (default) averages
    over time and flattens the rest, so the head sees what the 2D head sees (3x2x512 = 3,072
    features for VGG at 100x80) and the network has about three times the parameters of the 2D one,
    as Sec. 4.5 says (each 3x3 kernel becomes 3x3x3, the head is unchanged); flattening time too
    would tie the network to one clip length and multiply the first layer by T. ``"avg"`` /
    ``"max"`` pool over time and space (512 or 2048 features).
  - Per clip, like the VGG-16-LSTM: Sec. 3.2 fuses the labels of a clip into one arousal and one
    valence value, so the network predicts one (arousal, valence) pair per clip.
- ``input_shape`` may be lowered for quick tests (down to 32x32, the smallest input that survives
  the five poolings); the defaults are the paper's.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from emotrack.models.registry import register, video_options
from emotrack.models.inflate import inflate_model
from emotrack.models.tzirakis2017 import MergeTime, SplitTime
from emotrack.models.weights import (
    FINE_TUNE_FROM,
    build_with_named_weights,
    freeze_backbone,
    load_weights_file,
    weights_source,
)

INPUT_SHAPE = (100, 80, 3)  # Sec. 3.2, Sec. 4.3
EMOTIONS = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")  # Sec. 3.1
VGG_FILTERS = (64, 128, 256, 512, 512)
VGG_CONVS_PER_BLOCK = {"vgg11": (1, 1, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3)}
BACKBONES = ("vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet50")
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5  # torchvision's VGG-BN (PyTorch momentum 0.1), see the module docstring
#: The weights each backbone knows by name (``emotrack.models.weights.NAMED_WEIGHTS``).
NAMED_BACKBONE_WEIGHTS = {"vgg16": ("imagenet", "vggface"), "resnet50": ("imagenet",)}
HEAD_UNITS = (512, 128)  # Sec. 3.1
LSTM_UNITS = 1024  # Sec. 3.3.1
DILATIONS = ((1, 1, 1, 1), (1, 2, 4, 8))  # Table 3, C1 and C2
DILATION_BLOCKS = (2, 3, 4, 5)  # the blocks the four numbers of a dilation apply to (assumed)
INFLATIONS = ("copied", "centered")  # Table 3
POOLINGS = ("flatten", "avg", "max")


def build_vgg(depth: int = 16, batch_norm: bool = False, input_shape=INPUT_SHAPE,
              name: str | None = None) -> keras.Model:
    """The convolutional part of VGG-11 or VGG-16, optionally with BatchNormalization after every
    convolution: (batch, H, W, 3) -> (batch, H // 32, W // 32, 512)."""
    key = f"vgg{depth}"
    if key not in VGG_CONVS_PER_BLOCK:
        raise ValueError(f"depth must be 11 or 16, not {depth!r}")
    images = keras.Input(shape=tuple(input_shape), name="image")
    x = images
    for block, (convs, filters) in enumerate(zip(VGG_CONVS_PER_BLOCK[key], VGG_FILTERS), start=1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", activation=None if batch_norm else "relu",
                              name=f"block{block}_conv{i}")(x)
            if batch_norm:
                x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"block{block}_bn{i}")(x)
                x = layers.ReLU(name=f"block{block}_relu{i}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    return keras.Model(images, x, name=name or (key + ("_bn" if batch_norm else "")))


def build_backbone(name: str, input_shape=INPUT_SHAPE, weights=None) -> keras.Model:
    """A 2D backbone without classifier or final pooling: (batch, H, W, 3) -> feature map.

    Args:
        name: one of ``BACKBONES`` ("vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet50").
        input_shape: (H, W, 3); (100, 80, 3) in the paper.
        weights: None (random initialisation), "imagenet" (only "vgg16" and "resnet50", from
            ``keras.applications``, downloaded on first use), "vggface" (only "vgg16", a VGG-Face
            file found by name, see :mod:`emotrack.models.weights`) or the path of a local
            ``.weights.h5`` / ``.h5`` file saved from the same backbone or of a VGG-Face ``.h5`` file.
    Returns:
        a functional model named ``name``; VGG outputs (H // 32, W // 32, 512), ResNet-50
        (ceil(H / 32), ceil(W / 32), 2048).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(BACKBONES)}")
    weights_name, path = weights_source(weights, name, NAMED_BACKBONE_WEIGHTS.get(name, ()))
    input_shape = tuple(input_shape)
    if name == "resnet50":
        backbone = build_with_named_weights(keras.applications.ResNet50, weights_name, name, include_top=False,
                                            input_shape=input_shape, name=name)
    else:
        backbone = build_vgg(int(name[3:5]), name.endswith("_bn"), input_shape, name=name)
        if weights_name is not None:
            reference = build_with_named_weights(keras.applications.VGG16, weights_name, name,
                                                 include_top=False, input_shape=input_shape)
            for layer in reference.layers:
                if layer.weights:
                    backbone.get_layer(layer.name).set_weights(layer.get_weights())
    return load_weights_file(backbone, path)


def _scaled(x, input_scale: float):
    return x if input_scale == 1 else layers.Rescaling(input_scale, name="input_scale")(x)


def _pool(x, pooling: str, name: str):
    if pooling == "flatten":
        return layers.Flatten(name=name)(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=name)(x)
    raise ValueError(f"pooling must be 'flatten', 'avg' or 'max', not {pooling!r}")


def build_teixeira2021_2d(backbone: str = "vgg16", input_shape=INPUT_SHAPE, weights=None,
                          fine_tune_from: str = "all", pooling: str = "flatten",
                          dense_units=HEAD_UNITS, classes: int = len(EMOTIONS),
                          input_scale: float = 1 / 255, name: str | None = None) -> keras.Model:
    """The discrete-emotion network of Sec. 3.1: (batch, H, W, 3) -> (batch, classes) softmax.

    The backbone (:func:`build_backbone`, nested as a layer named after it) is frozen before
    ``fine_tune_from``; then ``pooling`` ("flatten", "avg" or "max"), ReLU layers of
    ``dense_units`` (512, 128) and a softmax over ``classes`` (7 RAF-DB emotions, ``EMOTIONS``).
    """
    features = freeze_backbone(build_backbone(backbone, input_shape, weights), fine_tune_from)
    images = keras.Input(shape=tuple(input_shape), name="image")
    x = _pool(features(_scaled(images, input_scale)), pooling, "pool")
    for i, units in enumerate(dense_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    x = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(images, x, name=name or f"teixeira2021_2d_{backbone}")


def build_teixeira2021_vgg16_lstm(input_shape=INPUT_SHAPE, weights=None, backbone: str = "vgg16",
                                  fine_tune_from: str = "all", frame_pooling: str = "flatten",
                                  lstm_units: int = LSTM_UNITS, dropout: float = 0.2,
                                  recurrent_dropout: float = 0.2,
                                  lstm_initializer: str = "glorot_uniform",
                                  dense_units=HEAD_UNITS, outputs: int = 2,
                                  input_scale: float = 1 / 255, name: str | None = None) -> keras.Model:
    """The VGG-16-LSTM of Fig. 6: (batch, T, H, W, 3) clips -> (batch, outputs) = (arousal, valence)
    per clip.

    Every frame goes through the backbone (VGG-16 by default; any VGG of ``BACKBONES`` may be
    chosen, frozen before ``fine_tune_from``), its feature map is reduced by ``frame_pooling``, the
    sequence of frame features feeds one LSTM of ``lstm_units`` (1,024) with ``dropout`` and
    ``recurrent_dropout`` (0.2 each), whose last state goes through ReLU layers of ``dense_units``
    and a linear layer of ``outputs`` units. T is free (Sec. 3.2: clips of 16 or 64 frames).
    """
    if not backbone.startswith("vgg"):
        raise ValueError(f"the VGG-16-LSTM takes a VGG backbone, not {backbone!r}")
    features = freeze_backbone(build_backbone(backbone, input_shape, weights), fine_tune_from)
    clips = keras.Input(shape=(None, *tuple(input_shape)), name="video")
    x = features(MergeTime(name="merge_time")(_scaled(clips, input_scale)))
    x = _pool(x, frame_pooling, "frame_pool")
    x = SplitTime(name="split_time")([x, clips])
    x = layers.LSTM(lstm_units, dropout=dropout, recurrent_dropout=recurrent_dropout,
                    kernel_initializer=lstm_initializer, recurrent_initializer=lstm_initializer,
                    name="lstm")(x)
    for i, units in enumerate(dense_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    x = layers.Dense(outputs, name="predictions")(x)
    return keras.Model(clips, x, name=name or f"teixeira2021_{backbone}_lstm")


def block_dilations(backbone: str, dilation=DILATIONS[0]) -> dict[str, int]:
    """The temporal dilation of each convolution block, as a layer-name prefix -> dilation mapping
    for :func:`emotrack.models.inflate.inflate_model`: the four numbers of ``dilation`` (Table 3)
    go to blocks ``DILATION_BLOCKS`` (2 to 5), named ``block{b}_`` in VGG and ``conv{b}_`` in
    ResNet-50; block 1 / the stem is not listed and keeps dilation 1."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; known backbones: {', '.join(BACKBONES)}")
    dilation = tuple(int(d) for d in dilation)
    if len(dilation) != len(DILATION_BLOCKS) or any(d < 1 for d in dilation):
        raise ValueError(f"dilation must be {len(DILATION_BLOCKS)} integers >= 1, one per block "
                         f"{DILATION_BLOCKS} (Table 3: {DILATIONS[0]} or {DILATIONS[1]}), not {dilation}")
    prefix = "conv{}_" if backbone == "resnet50" else "block{}_"
    return {prefix.format(block): d for block, d in zip(DILATION_BLOCKS, dilation)}


def build_teixeira2021_i3d(backbone: str = "vgg16", input_shape=INPUT_SHAPE, weights=None,
                           time_steps: int | None = None, time_size: int = 3,
                           inflation: str = "centered", fill: str = "zero", masking: bool = False,
                           dilation=DILATIONS[0], multiplier: float = 1.0,
                           temporal_padding: str = "zero", pooling: str = "flatten",
                           dense_units=HEAD_UNITS, outputs: int = 2, seed: int | None = None,
                           input_scale: float = 1 / 255, name: str | None = None) -> keras.Model:
    """The i3D-CNN of Sec. 3.3.2 and Fig. 8: (batch, T, H, W, 3) clips -> (batch, outputs) =
    (arousal, valence) per clip.

    Args:
        backbone: the 2D network to inflate, one of ``BACKBONES``.
        input_shape, weights: of the 2D backbone (:func:`build_backbone`): (100, 80, 3); None,
            "imagenet" or a local weights file. The weights are inflated.
        time_steps: the clip length T, or None for any (Sec. 3.2: 16 or 64 frames).
        time_size: n, the temporal size of every inflated kernel (odd; 3 in Fig. 8).
        inflation: "copied" or "centered" (Table 3, "Inflation").
        fill: the slices around a "centered" 2D kernel, "zero" or "random" (Table 3, "Weight
            initialization"); ``seed`` seeds "random".
        masking: freeze the central slice of every inflated kernel (Table 3, "Masking").
        dilation: four temporal dilations for blocks 2 to 5 (Table 3; :func:`block_dilations`).
        multiplier: the target multiplier (Table 3: 1 or 100); the output is divided by it, so it
            stays on the rating scale (module docstring).
        temporal_padding: "zero" or "replicate" (:mod:`emotrack.models.inflate`).
        pooling: "flatten" (mean over time, then flatten), "avg" or "max" (over time and space).
        dense_units: the hidden ReLU layers, (512, 128); outputs: the linear output units.
    The inflated backbone is nested as a layer named ``{backbone}_i3d``; the head's layers are
    ``fc1``, ``fc2``, ``predictions`` and, when ``multiplier != 1``, ``multiplier``.
    """
    if inflation not in INFLATIONS:
        raise ValueError(f"inflation must be one of {INFLATIONS}, not {inflation!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
    if not multiplier > 0:
        raise ValueError(f"multiplier must be positive (Table 3: 1 or 100), not {multiplier!r}")
    dilations = block_dilations(backbone, dilation)
    features = inflate_model(build_backbone(backbone, input_shape, weights), time_size=time_size,
                             mode=inflation, fill=fill, temporal_dilation=dilations,
                             temporal_padding=temporal_padding, masking=masking,
                             time_steps=time_steps, rng=seed, name=f"{backbone}_i3d")
    clips = keras.Input(shape=(time_steps, *tuple(input_shape)), name="video")
    x = features(_scaled(clips, input_scale))  # (batch, T, h, w, C)
    if pooling == "flatten":
        x = layers.Reshape((-1, math.prod(x.shape[2:])), name="frame_flatten")(x)
        x = layers.GlobalAveragePooling1D(name="time_pool")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling3D(name="pool")(x)
    else:
        x = layers.GlobalMaxPooling3D(name="pool")(x)
    for i, units in enumerate(dense_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    x = layers.Dense(outputs, name="predictions")(x)
    if multiplier != 1:
        x = layers.Rescaling(1.0 / multiplier, name="multiplier")(x)
    return keras.Model(clips, x, name=name or f"teixeira2021_{backbone}_i3d")


@register("teixeira2021-2d", target="class", crops="teixeira2021")
def teixeira2021_2d(**options) -> keras.Model:
    """Teixeira et al. 2021 2D CNN (VGG-11/16, -BN, ResNet-50) for the seven RAF-DB emotions
    (Sec. 3.1): (batch, 100, 80, 3) -> (batch, 7) softmax."""
    return build_teixeira2021_2d(**options)


def _adapt_clip_model(options: dict, data: dict) -> dict:
    return video_options(options, data, rgb=True, free_time=False)


@register("teixeira2021-vgg16-lstm", target="clip", adapt=_adapt_clip_model, crops="teixeira2021")
def teixeira2021_vgg16_lstm(**options) -> keras.Model:
    """Teixeira et al. 2021 VGG-16-LSTM (Sec. 3.3.1, Fig. 6): (batch, T, 100, 80, 3) clips ->
    (batch, 2) = (arousal, valence) per clip."""
    return build_teixeira2021_vgg16_lstm(**options)


@register("teixeira2021-i3d", target="clip", adapt=_adapt_clip_model, crops="teixeira2021")
def teixeira2021_i3d(**options) -> keras.Model:
    """Teixeira et al. 2021 i3D-CNN, a 2D backbone inflated into 3D (Sec. 3.3.2, Fig. 8, Table 3):
    (batch, T, 100, 80, 3) clips -> (batch, 2) = (arousal, valence) per clip."""
    return build_teixeira2021_i3d(**options)
