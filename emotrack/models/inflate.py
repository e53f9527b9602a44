"""Inflation of a 2D CNN into a 3D CNN (i3D), after Teixeira et al. 2021, 2D-CNN-LSTM and inflated
3D-CNN models for continuous valence and arousal prediction on SEWA
(shared/papers/teixeira2021_cnnlstm_i3d_sewa.txt), who build on Carreira & Zisserman 2017 (I3D).

Sec. 3.3.2 and Fig. 7: every 2D convolution kernel (kh, kw) is extended by one time dimension into a
(kt, kh, kw) kernel, so a pre-trained image CNN (Fig. 8: VGG-16) becomes a video CNN. Sec. 3.3.2,
"Initialization" and Table 3: the 2D kernel is either copied into every time slice ("copied") or
placed once in the central slice with the other slices zero or random ("centered"). Sec. 3.3.2,
"Dilation" and Table 3: dilation only in time, per block (1, 1, 1, 1) or (1, 2, 4, 8).
I3D (Carreira & Zisserman 2017, "bootstrapping 3D filters from 2D filters"): the copied kernel is
divided by kt, so that on a "boring" video (one frame repeated) the 3D network reproduces the 2D
network's activations exactly.

What the paper leaves open, and what is assumed here:
- "Copied" follows I3D: repeat along time and divide by kt (the paper only says "copied"; without
  the division the activations of a still video would be kt times larger than the 2D ones).
- "Centered" puts the 2D kernel at time index (kt - 1) // 2; the other slices are zero
  (``fill="zero"``) or uniform in [-a, a] with a = ``random_scale`` * max|kernel_2d|
  (``fill="random"``; the paper says "uniform distribution" without a range). ``fill`` only applies
  to "centered"; asking for ``fill="random"`` with "copied" is an error.
- Pooling is not inflated in time: MaxPooling2D / AveragePooling2D become 3D poolings with pool size
  and stride 1 in time, so the sequence length is kept (continuous, per-frame prediction).
- Time padding: every convolution keeps the sequence length. ``temporal_padding="zero"`` pads time
  with zeros (Keras "same" padding, as in I3D); the first and last d * (kt - 1) / 2 frames of each
  inflated layer then see zero frames, so a still video is reproduced exactly only away from the
  clip ends (with "centered" + ``fill="zero"`` it is exact everywhere). ``temporal_padding=
  "replicate"`` repeats the first and last frame instead, and a still video is reproduced exactly
  at every time step and through global pooling over time.
- Global pooling: GlobalAveragePooling2D / GlobalMaxPooling2D become their 3D versions (pooling over
  time as well, one vector per clip), or with ``keep_time=True`` a per-frame 2D pooling, giving
  (batch, T, C) for per-frame regression heads.
- Masking (Sec. 3.3.2, freezing the central 2D weights during fine-tuning) and the target
  multiplier (x1 / x100) are training options, not part of inflation, and are not implemented here;
  :func:`center_index` gives the slice a masking scheme would freeze.

Limits of :func:`inflate_model`:
- The 2D model must be a single-input, single-output chain (keras.Sequential, or a functional model
  whose every layer takes the previous layer's output); branches, skip connections (ResNet,
  Inception) and nested models are rejected.
- channels_last only; ``time_size`` must be odd (a centre exists and zero/replicate padding is
  symmetric); Conv2D with groups > 1 is rejected.
- Supported layers (see ``SUPPORTED_LAYERS``): InputLayer, Conv2D, BatchNormalization (over the
  channel axis), Activation, ReLU, LeakyReLU, ELU, Softmax, Dropout, Rescaling, MaxPooling2D,
  AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D and Dense (acts on the last axis).
  Any other layer (Flatten, Reshape, DepthwiseConv2D, ...) raises :class:`UnsupportedLayerError`
  naming the layer and its class.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

logger = logging.getLogger(__name__)

MODES = ("copied", "centered")
FILLS = ("zero", "random")
TEMPORAL_PADDINGS = ("zero", "replicate")

# Element-wise or last-axis layers that work unchanged on 5D tensors: rebuilt from their config.
_SHAPE_AGNOSTIC = (layers.Activation, layers.ReLU, layers.LeakyReLU, layers.ELU, layers.Softmax,
                   layers.Dropout, layers.Rescaling, layers.Dense)
SUPPORTED_LAYERS = ("InputLayer", "Conv2D", "BatchNormalization", "MaxPooling2D", "AveragePooling2D",
                    "GlobalAveragePooling2D", "GlobalMaxPooling2D") + tuple(
                        c.__name__ for c in _SHAPE_AGNOSTIC)


class UnsupportedLayerError(ValueError):
    """A layer of the 2D model that :func:`inflate_model` cannot turn into a 3D layer."""


@keras.saving.register_keras_serializable(package="emotrack")
class TemporalEdgePadding(layers.Layer):
    """Pad the time axis (axis 1) by repeating the first and last frame ``padding`` times.

    Input (batch, T, H, W, C), output (batch, T + 2 * padding, H, W, C).
    """

    def __init__(self, padding: int, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        if self.padding == 0:
            return x
        first = ops.repeat(x[:, :1], self.padding, axis=1)
        last = ops.repeat(x[:, -1:], self.padding, axis=1)
        return ops.concatenate([first, x, last], axis=1)

    def compute_output_shape(self, input_shape):
        t = input_shape[1]
        return (input_shape[0], None if t is None else t + 2 * self.padding, *input_shape[2:])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def center_index(time_size: int) -> int:
    """The time slice that holds the 2D kernel in a "centered" inflated kernel."""
    return (time_size - 1) // 2


def inflate_conv2d_kernel(kernel_2d, time_size: int, mode: str = "copied", fill: str = "zero",
                          rng: np.random.Generator | int | None = None,
                          random_scale: float = 1e-2) -> np.ndarray:
    """Inflate a 2D convolution kernel (kh, kw, cin, cout) into a 3D one (kt, kh, kw, cin, cout).

    Args:
        kernel_2d: the Conv2D kernel, Keras layout (kh, kw, cin, cout).
        time_size: kt, the temporal extent of the 3D kernel (>= 1).
        mode: ``copied`` (the kernel in every time slice, divided by kt, as in I3D) or ``centered``
            (the kernel once, in slice :func:`center_index`).
        fill: for ``centered``, the other slices: ``zero`` or ``random`` (uniform in [-a, a],
            a = ``random_scale`` * max|kernel_2d|).
        rng: a numpy Generator or seed for ``fill="random"``.
    Returns:
        the 3D kernel, same dtype as ``kernel_2d``. In both modes the sum over time equals
        ``kernel_2d`` (exactly with ``fill="zero"``), so a still video gives the 2D response.
    """
    kernel_2d = np.asarray(kernel_2d)
    if kernel_2d.ndim != 4:
        raise ValueError(f"kernel_2d must have shape (kh, kw, cin, cout), got {kernel_2d.shape}")
    if int(time_size) != time_size or time_size < 1:
        raise ValueError(f"time_size must be a positive integer, not {time_size!r}")
    time_size = int(time_size)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, not {fill!r}")
    if mode == "copied" and fill != "zero":
        raise ValueError("fill='random' only applies to mode='centered'")
    if mode == "copied":
        kernel_3d = np.repeat(kernel_2d[None], time_size, axis=0) / time_size
        detail = f"repeated {time_size} times and divided by {time_size}"
    else:
        if fill == "zero":
            kernel_3d = np.zeros((time_size, *kernel_2d.shape), dtype=kernel_2d.dtype)
            detail = "other slices zero"
        else:
            rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            bound = random_scale * float(np.max(np.abs(kernel_2d))) if kernel_2d.size else 0.0
            kernel_3d = rng.uniform(-bound, bound, size=(time_size, *kernel_2d.shape))
            detail = f"other slices uniform in [-{bound:.3g}, {bound:.3g}]"
        kernel_3d[center_index(time_size)] = kernel_2d
        detail = f"2D kernel at time index {center_index(time_size)}, {detail}"
    kernel_3d = kernel_3d.astype(kernel_2d.dtype, copy=False)
    assert kernel_3d.shape == (time_size, *kernel_2d.shape), (kernel_3d.shape, kernel_2d.shape)
    logger.debug("inflated kernel %s -> %s (%s: %s)", kernel_2d.shape, kernel_3d.shape, mode, detail)
    return kernel_3d


def _chain(model_2d: keras.Model) -> list:
    """The layers of a single-input, single-output chain model, in order, without the InputLayer."""
    if len(model_2d.inputs) != 1 or len(model_2d.outputs) != 1:
        raise UnsupportedLayerError(f"model {model_2d.name!r}: only single-input, single-output "
                                    "models can be inflated")
    chain = [layer for layer in model_2d.layers if not isinstance(layer, layers.InputLayer)]
    previous = model_2d.inputs[0]
    for layer in chain:
        if isinstance(layer, keras.Model):
            raise UnsupportedLayerError(f"layer {layer.name!r} ({type(layer).__name__}) is a nested "
                                        "model; flatten it into one chain before inflating")
        if len(layer._inbound_nodes) != 1:
            raise UnsupportedLayerError(f"layer {layer.name!r} ({type(layer).__name__}) is used "
                                        f"{len(layer._inbound_nodes)} times; only chains are supported")
        if layer.input is not previous:
            raise UnsupportedLayerError(f"layer {layer.name!r} ({type(layer).__name__}) does not take "
                                        "the previous layer's output; branches and skip connections "
                                        "are not supported")
        previous = layer.output
    if previous is not model_2d.outputs[0]:
        raise UnsupportedLayerError(f"model {model_2d.name!r} is not a single chain of layers")
    return chain


def _check_supported(layer) -> None:
    name, kind = layer.name, type(layer).__name__
    if isinstance(layer, layers.Conv2D) and type(layer) is layers.Conv2D:
        config = layer.get_config()
        if config.get("data_format", "channels_last") != "channels_last":
            raise UnsupportedLayerError(f"layer {name!r} (Conv2D): only channels_last is supported")
        if config.get("groups", 1) != 1:
            raise UnsupportedLayerError(f"layer {name!r} (Conv2D): groups > 1 is not supported")
        return
    if isinstance(layer, layers.BatchNormalization) and type(layer) is layers.BatchNormalization:
        if layer.axis not in (-1, 3):
            raise UnsupportedLayerError(f"layer {name!r} (BatchNormalization): only normalisation "
                                        f"over the channel (last) axis is supported, not axis={layer.axis}")
        return
    if type(layer) in (layers.MaxPooling2D, layers.AveragePooling2D, layers.GlobalAveragePooling2D,
                       layers.GlobalMaxPooling2D):
        if layer.data_format != "channels_last":
            raise UnsupportedLayerError(f"layer {name!r} ({kind}): only channels_last is supported")
        return
    if type(layer) in _SHAPE_AGNOSTIC:
        return
    raise UnsupportedLayerError(f"layer {name!r} ({kind}) cannot be inflated; supported layer types: "
                                f"{', '.join(SUPPORTED_LAYERS)}")


def _conv3d(layer, x, time_size, mode, fill, rng, random_scale, dilation, temporal_padding):
    """Apply the inflated version of Conv2D ``layer`` to ``x``; returns the output tensor."""
    config = layer.get_config()
    kh, kw = config["kernel_size"]
    sh, sw = config["strides"]
    dh, dw = config["dilation_rate"]
    pad = dilation * (time_size - 1) // 2  # time frames each side that keep the length
    conv = layers.Conv3D(config["filters"], (time_size, kh, kw), strides=(1, sh, sw),
                         padding=config["padding"], dilation_rate=(dilation, dh, dw),
                         activation=config["activation"], use_bias=config["use_bias"],
                         name=layer.name)
    if temporal_padding == "replicate" and pad:
        x = TemporalEdgePadding(pad, name=f"{layer.name}_tpad")(x)
    elif config["padding"] == "valid" and pad:
        x = layers.ZeroPadding3D(((pad, pad), (0, 0), (0, 0)), name=f"{layer.name}_tpad")(x)
    x = conv(x)
    if temporal_padding == "replicate" and pad and config["padding"] == "same":
        x = layers.Cropping3D(((pad, pad), (0, 0), (0, 0)), name=f"{layer.name}_tcrop")(x)
    weights = layer.get_weights()
    kernel_3d = inflate_conv2d_kernel(weights[0], time_size, mode=mode, fill=fill, rng=rng,
                                      random_scale=random_scale)
    conv.set_weights([kernel_3d, *weights[1:]])
    return x


def inflate_model(model_2d: keras.Model, time_size: int = 3, mode: str = "copied",
                  fill: str = "zero", temporal_dilation: int | Sequence[int] = 1,
                  temporal_padding: str = "zero", time_steps: int | None = None,
                  keep_time: bool = False, rng: np.random.Generator | int | None = None,
                  random_scale: float = 1e-2, name: str | None = None) -> keras.Model:
    """Inflate a 2D CNN chain into a 3D CNN with the 2D model's (pre-trained) weights.

    Args:
        model_2d: a built single-input chain of supported layers (see the module docstring), input
            (H, W, C).
        time_size: kt, the temporal size of every inflated kernel (odd).
        mode, fill, rng, random_scale: how kernels are inflated (:func:`inflate_conv2d_kernel`).
        temporal_dilation: the time dilation of every Conv2D (an int), or one value per Conv2D layer
            in order (e.g. the paper's blocks (1, 1, 2, 2, 4, 4, 8, 8)).
        temporal_padding: ``zero`` or ``replicate`` (module docstring).
        time_steps: the clip length T of the input, or None for any length.
        keep_time: map global 2D poolings to per-frame poolings, output (batch, T, C), instead of
            pooling over time too.
    Returns:
        a model mapping (batch, T, H, W, C) clips to the inflated network's output. Conv2D,
        BatchNormalization and Dense layers keep their names, so weights can be matched by name.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if fill not in FILLS or (mode == "copied" and fill != "zero"):
        raise ValueError(f"fill must be 'zero' or, with mode='centered', 'random'; not {fill!r}")
    if temporal_padding not in TEMPORAL_PADDINGS:
        raise ValueError(f"temporal_padding must be one of {TEMPORAL_PADDINGS}, not {temporal_padding!r}")
    if int(time_size) != time_size or time_size < 1 or time_size % 2 == 0:
        raise ValueError(f"time_size must be a positive odd integer, not {time_size!r}")
    chain = _chain(model_2d)
    for layer in chain:
        _check_supported(layer)
    convs = [layer for layer in chain if isinstance(layer, layers.Conv2D)]
    if isinstance(temporal_dilation, int):
        dilations = [temporal_dilation] * len(convs)
    else:
        dilations = [int(d) for d in temporal_dilation]
        if len(dilations) != len(convs):
            raise ValueError(f"temporal_dilation has {len(dilations)} values but the model has "
                             f"{len(convs)} Conv2D layers")
    if any(d < 1 for d in dilations):
        raise ValueError(f"temporal dilations must be >= 1, got {dilations}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    input_shape = tuple(model_2d.inputs[0].shape[1:])
    if len(input_shape) != 3:
        raise UnsupportedLayerError(f"model {model_2d.name!r}: input must be (H, W, C), got {input_shape}")
    clips = keras.Input(shape=(time_steps, *input_shape), name="clips")
    x = clips
    conv_index = 0
    for layer in chain:
        if isinstance(layer, layers.InputLayer):
            continue
        if isinstance(layer, layers.Conv2D):
            x = _conv3d(layer, x, int(time_size), mode, fill, rng, random_scale,
                        dilations[conv_index], temporal_padding)
            conv_index += 1
        elif isinstance(layer, layers.BatchNormalization):
            config = {**layer.get_config(), "axis": -1}
            new = layers.BatchNormalization.from_config(config)
            x = new(x)
            new.set_weights(layer.get_weights())
        elif type(layer) in (layers.MaxPooling2D, layers.AveragePooling2D):
            cls = layers.MaxPooling3D if type(layer) is layers.MaxPooling2D else layers.AveragePooling3D
            (ph, pw), (sh, sw) = layer.pool_size, layer.strides
            x = cls((1, ph, pw), strides=(1, sh, sw), padding=layer.padding, name=layer.name)(x)
        elif type(layer) in (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D):
            if keep_time:
                x = layers.TimeDistributed(type(layer).from_config(layer.get_config()),
                                           name=layer.name)(x)
            else:
                cls = (layers.GlobalAveragePooling3D if type(layer) is layers.GlobalAveragePooling2D
                       else layers.GlobalMaxPooling3D)
                x = cls(keepdims=layer.keepdims, name=layer.name)(x)
        else:  # shape-agnostic layers (checked above)
            new = type(layer).from_config(layer.get_config())
            x = new(x)
            if layer.get_weights():
                new.set_weights(layer.get_weights())
    logger.info("inflated %s: %d Conv2D layers -> Conv3D (kt=%d, %s%s, temporal dilation %s, "
                "%s time padding)", model_2d.name, len(convs), time_size, mode,
                f", fill {fill}" if mode == "centered" else "", dilations, temporal_padding)
    return keras.Model(clips, x, name=name or f"{model_2d.name}_inflated")
