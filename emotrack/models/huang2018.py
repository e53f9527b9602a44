"""Huang et al. 2018, "End-to-end continuous emotion recognition from video using 3D ConvLSTM
networks" (ICASSP 2018; shared/papers/huang2018_3d_convlstm_avec2017.md).

Sec. 2 and Fig. 1: three 3D convolution layers and one ConvLSTM layer (``convlstm``), or four 3D
convolution layers (``3dconvnet``), each followed by a 3D max-pooling layer, then two inner-product
(dense) layers; Sec. 4.1: 3x3x3 kernels, stride 1, padding in space and time, RMSprop, dropout 0.5,
112x112x1 face input; Table 1: the max-pooling kernel sizes of the pooling variants.

What the paper leaves open, and what is assumed here:
- Filter counts (Fig. 1 is lost in the text): a C3D-like doubling progression, configurable;
  ``filters`` defaults to (16, 32, 64, 64) and the CPU demo uses a smaller one.
- Dense sizes: the first dense layer has ``dense_units`` units (ReLU), then dropout 0.5, then a
  linear layer with one output per dimension (arousal, valence); both applied per time step.
- Where Table 1 pools time (``max`` and ``max_tp``), the prediction sequence is shorter by the
  product of the temporal pool sizes (8 for ``max``: 1*2*2*2; 4 for ``max_tp``: 1*1*2*2; the paper's
  "factor of 6" does not follow from its own table) and each prediction is repeated that many times
  to return to the input length; the input length must then be a multiple of that factor.
- Table 1's "Temporal pooling" network is the "Original" one; what differs is its input contract:
  frames and labels are averaged over windows of ``data.temporal_pooling_s`` seconds (Sec. 4.2,
  0.2 to 0.8 s) before the network sees them, and predictions are repeated back to the frame rate
  (:mod:`emotrack.data.temporal`; training, evaluation and prediction read the duration from the run's
  config). "Max pooling and Temporal pooling" does both: the input is pooled in time by k frames and
  the network shortens it by 4 more, so each prediction covers 4k frames.
- Input: float pixel values in 0..255, shape (time, 112, 112, 1); time may be left free so whole
  sessions can be predicted. The paper does not say how pixels are normalised. By default
  (``input_normalization="frame"``) every frame is standardised to zero mean and unit variance over
  its pixels, which removes a subject's overall brightness and contrast and lets the network train
  in far fewer steps than plain rescaling to 0..1 (``"rescale"``) on the synthetic corpus.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from emotrack.models.registry import register, video_options


@keras.saving.register_keras_serializable(package="emotrack")
class FrameStandardization(layers.Layer):
    """Standardise every frame over its pixels and channels: (x - mean) / (std + epsilon).

    Input and output (batch, time, height, width, channels). ``epsilon`` is in the input's units
    (pixel values), so a blank frame maps to zeros instead of amplified noise.
    """

    def __init__(self, epsilon: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x):
        mean = ops.mean(x, axis=(-3, -2, -1), keepdims=True)
        std = ops.std(x, axis=(-3, -2, -1), keepdims=True)
        return (x - mean) / (std + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}

# Table 1: (time, height, width) max-pooling kernels of layers 1-4.
POOLING_VARIANTS = {
    "original": ((1, 2, 2), (1, 2, 2), (1, 2, 2), (1, 2, 2)),
    "max": ((1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2)),
    "temporal": ((1, 2, 2), (1, 2, 2), (1, 2, 2), (1, 2, 2)),
    "max_tp": ((1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
}


def temporal_factor(pooling: str) -> int:
    """By how much the network shortens the sequence under a pooling variant."""
    if pooling not in POOLING_VARIANTS:
        raise ValueError(f"pooling must be one of {sorted(POOLING_VARIANTS)}, not {pooling!r}")
    factor = 1
    for kernel in POOLING_VARIANTS[pooling]:
        factor *= kernel[0]
    return factor


def _time_reduction(options: dict) -> int:
    return temporal_factor(options.get("pooling", "original"))


def build_huang2018(kind: str = "convlstm", pooling: str = "original",
                    filters: Sequence[int] = (16, 32, 64, 64), dense_units: int = 128,
                    dropout: float = 0.5, outputs: int = 2, input_shape=(None, 112, 112, 1),
                    input_normalization: str = "frame", name: str | None = None) -> keras.Model:
    """Build the 3D ConvNet or the ConvLSTM network.

    Args:
        kind: ``convlstm`` (3 Conv3D + 1 ConvLSTM2D) or ``3dconvnet`` (4 Conv3D).
        pooling: a Table 1 variant: original, max, temporal, max_tp.
        filters: filters of the four convolution layers.
        input_shape: (time, height, width, channels).
        input_normalization: ``frame`` (standardise each frame) or ``rescale`` (divide by 255).
    Returns:
        a model mapping (batch, T, H, W, C) frames to (batch, T, outputs) per-frame predictions.
    """
    if kind not in ("convlstm", "3dconvnet"):
        raise ValueError(f"kind must be 'convlstm' or '3dconvnet', not {kind!r}")
    if pooling not in POOLING_VARIANTS:
        raise ValueError(f"pooling must be one of {sorted(POOLING_VARIANTS)}, not {pooling!r}")
    if len(filters) != 4:
        raise ValueError("filters needs four values, one per convolution layer")
    if input_normalization not in ("frame", "rescale"):
        raise ValueError(f"input_normalization must be 'frame' or 'rescale', not {input_normalization!r}")
    frames = keras.Input(shape=tuple(input_shape), name="frames")
    if input_normalization == "frame":
        x = FrameStandardization(name="standardize")(frames)
    else:
        x = layers.Rescaling(1.0 / 255.0, name="rescale")(frames)
    for i, (n, pool) in enumerate(zip(filters, POOLING_VARIANTS[pooling]), start=1):
        if kind == "convlstm" and i == 4:
            x = layers.ConvLSTM2D(n, 3, padding="same", return_sequences=True, name="convlstm4")(x)
        else:
            x = layers.Conv3D(n, 3, padding="same", activation="relu", name=f"conv3d{i}")(x)
        x = layers.MaxPooling3D(pool, padding="same", name=f"pool{i}")(x)
    # Flatten each time step. A Reshape with a free time axis, not TimeDistributed(Flatten), which
    # mixes up the batch and time sizes when the time length is only known at run time.
    _, _, height, width, channels = x.shape
    x = layers.Reshape((-1, height * width * channels), name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="fc1")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(outputs, name="fc2")(x)
    factor = temporal_factor(pooling)
    if factor > 1:
        x = layers.UpSampling1D(factor, name="repeat")(x)
    return keras.Model(frames, x, name=name or f"huang2018_{kind}_{pooling}")


@register("huang2018-convlstm", adapt=video_options, crops="huang2018", time_reduction=_time_reduction)
def huang2018_convlstm(**options) -> keras.Model:
    return build_huang2018(kind="convlstm", **options)


@register("huang2018-3dconvnet", adapt=video_options, crops="huang2018", time_reduction=_time_reduction)
def huang2018_3dconvnet(**options) -> keras.Model:
    return build_huang2018(kind="3dconvnet", **options)
