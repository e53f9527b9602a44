"""Tzirakis et al. 2017, "End-to-end multimodal emotion recognition using deep neural networks"
(IEEE JSTSP 2017; shared/papers/tzirakis2017_end2end_multimodal_recola.txt).

Three networks predict arousal and valence every 40 ms on RECOLA:

- ``tzirakis2017-audio`` (Sec. III-B, III-D): a CNN on the raw 16 kHz waveform, then a 2-layer
  LSTM with 256 cells each.
- ``tzirakis2017-visual`` (Sec. III-A, III-D, Table I): a ResNet-50 on 96x96 face crops, then a
  2-layer LSTM with 256 cells each.
- ``tzirakis2017-audiovisual`` (Sec. III-D, Fig. 1): the two feature extractors, their features
  concatenated per frame (1280 + 640 = 1920), then a new 2-layer LSTM with 256 cells each.
  ``audiovisual_from_unimodal`` builds it from trained unimodal networks, discarding their LSTMs
  and copying the extractors' weights, which are then fine-tuned with the new LSTMs.

Every network ends with a linear layer of ``outputs`` units (arousal, valence) per frame, so a
(batch, T, ...) input gives a (batch, T, 2) prediction. T is free: Table II uses 75, 150 and 300
frames (3, 6 and 12 s); Sec. III-D uses 150.

Speech network (Sec. III-B), input (batch, T, 640): T frames of 40 ms = 640 samples at 16 kHz.

1. The frames are concatenated into one waveform of T*640 samples (Sec. III-B segments the raw
   signal into 6 s = 96000-sample sequences; the frames are only the 40 ms annotation steps).
2. Conv1D, 20 filters of 5 ms = 80 samples, stride 1, "same" padding, ReLU (the half-wave
   rectifier): (T*640, 20).
3. Max pooling in time, size 2 (16 kHz -> 8 kHz): (T*320, 20).
4. Conv1D, 40 filters of 500 ms. A 500 ms window is longer than a 40 ms frame, so this layer runs
   over the whole concatenated sequence, not frame by frame; after step 3 the signal is at 8 kHz,
   so 500 ms is 4000 samples (8000 samples at the original 16 kHz). "Same" padding keeps
   (T*320, 40). No activation is named in the paper; none is used.
5. Max pooling across the channel axis, size 10 (non-overlapping groups of 10 filters):
   (T*320, 4).
6. Dropout 0.5 (Sec. III-B, Sec. V).
7. The sequence is cut back into the T frames: each frame has 320 time steps x 4 channels =
   (640 / 2) * (40 / 10) = 1280 features, the number Sec. III-D gives for the speech network.

Visual network (Sec. III-A, Table I): a ResNet-50 (``keras.applications.ResNet50``,
``include_top=False``, global average pooling after the last bottleneck block, 2048 features) is
applied to every frame on its own.

What the paper leaves open, and what is assumed here:
- Audio normalisation: Sec. III-B standardises each 6 s sequence to zero mean and unit variance
  before the network; that is the data pipeline's job, the model takes the waveform as given.
- The speech CNN's second convolution has no named activation and is linear; convolution
  biases are used.
- Parameter count: with these sizes the speech CNN has about 3.2M parameters (40 x 20 x 4000 in
  the second convolution alone) and the whole speech network about 5.3M, not the "1.1 mil." of
  Sec. III-B or the "1.5M" of Sec. V; the paper's layer sizes are kept and the stated counts are
  not reproduced. ``conv2_kernel`` can be lowered.
- Visual features: Sec. III-D says the visual network gives 640 features, while a ResNet-50's
  pooled output has 2048. Here a dense projection of ``visual_features`` (640) units with ReLU,
  followed by dropout 0.5 (Sec. V: dropout on all non-recurrent layers), maps the 2048 pooled
  features to 640; ``visual_features=None`` drops the projection and passes the 2048 features on.
- Pretrained weights (Sec. III-D fine-tunes an ImageNet ResNet-50): ``weights`` is None (random
  initialisation), ``"imagenet"`` (downloaded by Keras when the model is built, never at import)
  or the path of a local ``.weights.h5`` / ``.h5`` file for the ResNet-50 backbone built with
  ``include_top=False`` (for instance the Keras
  ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`` file); see :mod:`emotrack.models.weights`.
- Visual input: float RGB pixel values 0..255, shape (T, 96, 96, 3). With
  ``input_preprocessing="caffe"`` (default) the frames are converted as
  ``keras.applications.resnet50.preprocess_input`` does (RGB -> BGR, ImageNet channel means
  subtracted), which matches ImageNet weights; ``"none"`` passes the pixels on unchanged.
- No dropout between or after the LSTM layers (Sec. V: "except the recurrent ones").
- Trained from random weights (``weights=None``) for a few hundred steps, ResNet-50's moving
  statistics (momentum 0.99) stay far from the features' own, and evaluation, which uses them, sees
  another network than training did; ``batch_norm_momentum`` (e.g. 0.9) lets them follow.
- ``image_size`` may be lowered (down to ResNet-50's minimum of 32) and the speech layer sizes
  changed, for quick tests; the defaults are the paper's.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from emotrack.models.registry import register
from emotrack.models.weights import (
    FINE_TUNE_FROM,
    build_with_named_weights,
    freeze_backbone,
    load_weights_file,
    weights_source,
)

SAMPLE_RATE = 16000
FRAME_SAMPLES = 640  # 40 ms at 16 kHz
AUDIO_FEATURES = 1280  # Sec. III-D
VISUAL_FEATURES = 640  # Sec. III-D
CAFFE_MEANS_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="emotrack")
class ChannelMaxPooling(layers.Layer):
    """Max pooling across the channel axis in non-overlapping groups of ``pool_size``.

    Input (..., channels) with channels a multiple of ``pool_size``; output
    (..., channels // pool_size). Channel ``j`` of the output is the maximum of input channels
    ``j * pool_size`` to ``(j + 1) * pool_size - 1``.
    """

    def __init__(self, pool_size: int = 10, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pool_size

    def call(self, x):
        channels = x.shape[-1]
        shape = ops.shape(x)
        grouped = ops.reshape(x, (*shape[:-1], channels // self.pool_size, self.pool_size))
        return ops.max(grouped, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // self.pool_size)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package="emotrack")
class MergeTime(layers.Layer):
    """(batch, time, ...) -> (batch * time, ...), so a per-image network sees every frame."""

    def call(self, x):
        # Sizes unknown when the graph is traced (a free clip length) are read at run time.
        shape = ops.shape(x)
        tail = [size if size is not None else shape[i + 2] for i, size in enumerate(x.shape[2:])]
        return ops.reshape(x, (-1, *tail))

    def compute_output_shape(self, input_shape):
        return (None, *input_shape[2:])


@keras.saving.register_keras_serializable(package="emotrack")
class SplitTime(layers.Layer):
    """Inverse of :class:`MergeTime`: ``[x, reference]`` -> x reshaped to (batch, time, ...),
    batch and time taken from ``reference`` at run time (the time length may be free)."""

    def call(self, inputs):
        x, reference = inputs
        shape, own = ops.shape(reference), ops.shape(x)
        tail = [size if size is not None else own[i + 1] for i, size in enumerate(x.shape[1:])]
        return ops.reshape(x, (shape[0], shape[1], *tail))

    def compute_output_shape(self, input_shapes):
        x_shape, reference_shape = input_shapes
        return (reference_shape[0], reference_shape[1], *x_shape[1:])


@keras.saving.register_keras_serializable(package="emotrack")
class CaffePreprocessing(layers.Layer):
    """RGB 0..255 -> BGR with the ImageNet channel means subtracted (ResNet-50's own input
    convention, as ``keras.applications.resnet50.preprocess_input``)."""

    def call(self, x):
        bgr = ops.flip(x, axis=-1)
        return bgr - ops.convert_to_tensor(CAFFE_MEANS_BGR, dtype=x.dtype)


def audio_feature_size(frame_samples: int = FRAME_SAMPLES, time_pool: int = 2,
                       conv2_filters: int = 40, channel_pool: int = 10) -> int:
    """Features per frame of the speech CNN: (frame_samples / time_pool) * (filters / channel_pool)."""
    return (frame_samples // time_pool) * (conv2_filters // channel_pool)


def build_audio_features(frame_samples: int = FRAME_SAMPLES, conv1_filters: int = 20,
                         conv1_kernel: int = 80, time_pool: int = 2, conv2_filters: int = 40,
                         conv2_kernel: int = 4000, channel_pool: int = 10, dropout: float = 0.5,
                         name: str = "audio_features") -> keras.Model:
    """The speech CNN of Sec. III-B: (batch, T, frame_samples) -> (batch, T, features).

    Args:
        frame_samples: samples per 40 ms frame (640 at 16 kHz).
        conv1_filters, conv1_kernel: the fine-scale filters (20 of 5 ms = 80 samples at 16 kHz).
        time_pool: pooling in time after the first convolution (2: 16 kHz -> 8 kHz).
        conv2_filters, conv2_kernel: the long-term filters (40 of 500 ms = 4000 samples at
            8 kHz), run over the concatenated sequence of frames.
        channel_pool: max pooling across channels (10).
    Returns:
        a model whose output has ``audio_feature_size(...)`` (1280 by default) features per frame.
    """
    if frame_samples % time_pool:
        raise ValueError(f"frame_samples ({frame_samples}) must be a multiple of time_pool ({time_pool})")
    if conv2_filters % channel_pool:
        raise ValueError(f"conv2_filters ({conv2_filters}) must be a multiple of channel_pool ({channel_pool})")
    features = audio_feature_size(frame_samples, time_pool, conv2_filters, channel_pool)
    frames = keras.Input(shape=(None, frame_samples), name="audio")
    # Concatenate the frames into one waveform: (batch, T * frame_samples, 1).
    x = layers.Reshape((-1, 1), name="concat_frames")(frames)
    x = layers.Conv1D(conv1_filters, conv1_kernel, padding="same", activation="relu", name="conv1")(x)
    x = layers.MaxPooling1D(time_pool, name="pool_time")(x)
    x = layers.Conv1D(conv2_filters, conv2_kernel, padding="same", name="conv2")(x)
    x = ChannelMaxPooling(channel_pool, name="pool_channels")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    # Cut back into frames: (frame_samples / time_pool) steps x (filters / channel_pool) channels.
    x = layers.Reshape((-1, features), name="split_frames")(x)
    return keras.Model(frames, x, name=name)


#: How the pooled ResNet-50 features meet the projection (``feature_normalisation``).
FEATURE_NORMALISATION = ("none", "batch")


def build_resnet50_backbone(image_size: int = 96, weights: str | None = None,
                            batch_norm_momentum: float | None = None) -> keras.Model:
    """ResNet-50 without its classifier, global average pooling: (H, W, 3) -> 2048.

    ``weights``: None (random), ``"imagenet"`` (``keras.applications``, downloaded by Keras when
    the model is built) or a local weights file (``.weights.h5`` or legacy ``.h5``) saved from a
    ResNet-50 built with ``include_top=False`` (see :mod:`emotrack.models.weights`).
    ``batch_norm_momentum``: the moving-average momentum of its BatchNormalization layers (None:
    ``keras.applications``' 0.99, right when fine-tuning ImageNet's converged statistics).
    """
    name, path = weights_source(weights, "resnet50", known=("imagenet",))
    backbone = build_with_named_weights(keras.applications.ResNet50, name, "resnet50", include_top=False,
                                        pooling="avg", input_shape=(image_size, image_size, 3), name="resnet50")
    if batch_norm_momentum is not None:
        for layer in backbone.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = float(batch_norm_momentum)
    return load_weights_file(backbone, path)


def build_visual_features(image_size: int = 96, weights: str | None = None,
                          visual_features: int | None = VISUAL_FEATURES, dropout: float = 0.5,
                          input_preprocessing: str = "caffe", batch_norm_momentum: float | None = None,
                          feature_normalisation: str = "none", fine_tune_from: str = "all",
                          name: str = "visual_features") -> keras.Model:
    """The visual extractor: (batch, T, H, W, 3) -> (batch, T, visual_features or 2048).

    ``feature_normalisation="batch"`` standardises each of the 2048 pooled features (a
    BatchNormalization layer, momentum ``batch_norm_momentum`` or Keras' 0.99) before the projection;
    ``"none"`` (default) feeds them on as ResNet-50 pools them. ``fine_tune_from`` ("all", or
    "conv2_1" ... "conv5_1": the first ResNet-50 stage that trains) freezes the layers before it,
    whose BatchNormalization layers then normalise with their loaded moving statistics.
    """
    if input_preprocessing not in ("caffe", "none"):
        raise ValueError(f"input_preprocessing must be 'caffe' or 'none', not {input_preprocessing!r}")
    if feature_normalisation not in FEATURE_NORMALISATION:
        raise ValueError(f"feature_normalisation must be one of {', '.join(FEATURE_NORMALISATION)}, "
                         f"not {feature_normalisation!r}")
    frames = keras.Input(shape=(None, image_size, image_size, 3), name="video")
    x = frames
    if input_preprocessing == "caffe":
        x = CaffePreprocessing(name="caffe_preprocessing")(x)
    images = MergeTime(name="merge_time")(x)
    backbone = freeze_backbone(build_resnet50_backbone(image_size, weights, batch_norm_momentum), fine_tune_from)
    pooled = backbone(images)
    x = SplitTime(name="split_time")([pooled, frames])
    if feature_normalisation == "batch":
        momentum = {} if batch_norm_momentum is None else {"momentum": float(batch_norm_momentum)}
        x = layers.BatchNormalization(name="feature_normalisation", **momentum)(x)
    if visual_features:
        x = layers.Dense(visual_features, activation="relu", name="projection")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(frames, x, name=name)


def _recurrent_head(x, lstm_units: int, lstm_layers: int, outputs: int):
    for i in range(1, lstm_layers + 1):
        x = layers.LSTM(lstm_units, return_sequences=True, name=f"lstm{i}")(x)
    return layers.Dense(outputs, name="predictions")(x)


def build_tzirakis2017_audio(features_only: bool = False, lstm_units: int = 256,
                             lstm_layers: int = 2, outputs: int = 2, name: str | None = None,
                             **feature_options) -> keras.Model:
    """The speech network: (batch, T, 640) waveform frames -> (batch, T, outputs).

    ``features_only=True`` returns the speech CNN alone, (batch, T, 1280); ``feature_options`` go
    to :func:`build_audio_features`.
    """
    extractor = build_audio_features(**feature_options)
    return extractor if features_only else _unimodal(extractor, "audio", lstm_units, lstm_layers, outputs, name)


def build_tzirakis2017_visual(features_only: bool = False, lstm_units: int = 256,
                              lstm_layers: int = 2, outputs: int = 2, name: str | None = None,
                              **feature_options) -> keras.Model:
    """The visual network: (batch, T, 96, 96, 3) faces -> (batch, T, outputs).

    ``features_only=True`` returns the extractor alone, (batch, T, 640); ``feature_options``
    (``image_size``, ``weights``, ``visual_features``, ...) go to :func:`build_visual_features`.
    """
    extractor = build_visual_features(**feature_options)
    return extractor if features_only else _unimodal(extractor, "video", lstm_units, lstm_layers, outputs, name)


def _unimodal(extractor: keras.Model, input_name: str, lstm_units: int, lstm_layers: int, outputs: int,
              name: str | None) -> keras.Model:
    """A feature extractor followed by the recurrent head; the input is named ``input_name``."""
    frames = keras.Input(shape=extractor.input_shape[1:], name=input_name)
    x = _recurrent_head(extractor(frames), lstm_units, lstm_layers, outputs)
    return keras.Model(frames, x, name=name or f"tzirakis2017_{'audio' if input_name == 'audio' else 'visual'}")


def _audiovisual(audio_extractor: keras.Model, visual_extractor: keras.Model, lstm_units: int,
                 lstm_layers: int, outputs: int, name: str | None) -> keras.Model:
    audio = keras.Input(shape=audio_extractor.input_shape[1:], name="audio")
    video = keras.Input(shape=visual_extractor.input_shape[1:], name="video")
    x = layers.Concatenate(name="concat_features")([audio_extractor(audio), visual_extractor(video)])
    x = _recurrent_head(x, lstm_units, lstm_layers, outputs)
    return keras.Model([audio, video], x, name=name or "tzirakis2017_audiovisual")


def build_tzirakis2017_audiovisual(audio_options: dict | None = None,
                                   visual_options: dict | None = None, lstm_units: int = 256,
                                   lstm_layers: int = 2, outputs: int = 2,
                                   name: str | None = None) -> keras.Model:
    """The multimodal network: inputs [audio (batch, T, 640), video (batch, T, 96, 96, 3)],
    output (batch, T, outputs); per frame 1280 + 640 = 1920 features feed the LSTMs.

    ``audio_options`` go to :func:`build_audio_features`, ``visual_options`` to
    :func:`build_visual_features`. To start from trained unimodal networks, use
    :func:`audiovisual_from_unimodal`.
    """
    return _audiovisual(build_audio_features(**(audio_options or {})),
                        build_visual_features(**(visual_options or {})),
                        lstm_units, lstm_layers, outputs, name)


def _extractor(model: keras.Model, layer_name: str) -> keras.Model:
    if model.name == layer_name:  # built with features_only=True
        return model
    try:
        return model.get_layer(layer_name)
    except ValueError as error:
        raise ValueError(f"model {model.name!r} has no {layer_name!r} extractor") from error


def _copy(extractor: keras.Model) -> keras.Model:
    clone = keras.models.clone_model(extractor)
    clone.set_weights(extractor.get_weights())
    return clone


def audiovisual_from_unimodal(audio_model: keras.Model, visual_model: keras.Model,
                              lstm_units: int = 256, lstm_layers: int = 2, outputs: int = 2,
                              name: str | None = None) -> keras.Model:
    """The multimodal network of Sec. III-D built from trained unimodal networks.

    The unimodal LSTM and output layers are discarded; the speech CNN and the visual extractor
    are copied (same architecture, same weights, new variables, so fine-tuning the multimodal
    network leaves the unimodal ones unchanged) and feed a new, freshly initialised 2-layer LSTM
    and output layer. Either argument may also be a bare extractor (``features_only=True``).
    """
    audio = _copy(_extractor(audio_model, "audio_features"))
    visual = _copy(_extractor(visual_model, "visual_features"))
    return _audiovisual(audio, visual, lstm_units, lstm_layers, outputs, name)


def _visual_data(options: dict, data: dict) -> dict:
    if data["channels"] != 3 or data["height"] != data["width"]:
        raise ValueError(f"the visual network takes square RGB faces (96x96 in the paper) but the data holds "
                         f"{data['height']}x{data['width']}x{data['channels']} crops; preprocess with "
                         f"`--size 96 --color`")
    return {**options, "image_size": data["height"]}


def _audio_data(options: dict, data: dict) -> dict:
    if not data.get("audio_samples"):
        raise ValueError("the speech network needs audio in the TFRecords, the same number of samples in every "
                         "frame (one frame rate); preprocess the corpus with --audio (see `emotrack inspect`)")
    return {**options, "frame_samples": data["audio_samples"]}


def _adapt_audio(options: dict, data: dict) -> dict:
    return {**_audio_data(options, data), "outputs": len(data["targets"])}


def _adapt_visual(options: dict, data: dict) -> dict:
    return {**_visual_data(options, data), "outputs": len(data["targets"])}


def _adapt_audiovisual(options: dict, data: dict) -> dict:
    return {**options, "outputs": len(data["targets"]),
            "audio_options": _audio_data(dict(options.get("audio_options") or {}), data),
            "visual_options": _visual_data(dict(options.get("visual_options") or {}), data)}


@register("tzirakis2017-audio", inputs=("audio",), adapt=_adapt_audio)
def tzirakis2017_audio(**options) -> keras.Model:
    return build_tzirakis2017_audio(**options)


@register("tzirakis2017-visual", adapt=_adapt_visual, crops="tzirakis2017")
def tzirakis2017_visual(**options) -> keras.Model:
    return build_tzirakis2017_visual(**options)


def _from_unimodal(models: dict, options: dict) -> keras.Model:
    missing = {"audio", "visual"} - set(models)
    if missing:
        raise ValueError(f"the multimodal network is built from trained 'audio' and 'visual' runs; "
                         f"model.init_from lacks {sorted(missing)}")
    keep = {k: options[k] for k in ("lstm_units", "lstm_layers", "outputs") if k in options}
    return audiovisual_from_unimodal(models["audio"], models["visual"], **keep)


@register("tzirakis2017-audiovisual", inputs=("audio", "video"), adapt=_adapt_audiovisual, crops="tzirakis2017",
          from_models=_from_unimodal)
def tzirakis2017_audiovisual(**options) -> keras.Model:
    return build_tzirakis2017_audiovisual(**options)
