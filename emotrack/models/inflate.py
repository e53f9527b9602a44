"""Inflation of a 2D CNN into a 3D CNN (i3D), after Teixeira et al. 2021, 2D-CNN-LSTM and inflated
3D-CNN models for continuous valence and arousal prediction on SEWA
(shared/papers/teixeira2021_cnnlstm_i3d_sewa.txt), who build on Carreira & Zisserman 2017 (I3D).

Sec. 3.3.2 and Fig. 7: every 2D convolution kernel (kh, kw) is extended by one time dimension into a
(kt, kh, kw) kernel, so a pre-trained image CNN (Fig. 8: VGG-16) becomes a video CNN. Sec. 3.3.2,
"Initialization" and Table 3: the 2D kernel is either copied into every time slice ("copied") or
placed once in the central slice with the other slices zero or random ("centered"). Sec. 3.3.2,
"Dilation" and Table 3: dilation only in time, per block (1, 1, 1, 1) or (1, 2, 4, 8). Sec. 3.3.2,
"Masking": the central (2D) slice of every inflated kernel is not modified during training
(:class:`MaskedConv3D`). I3D (Carreira & Zisserman 2017, "bootstrapping 3D filters from 2D
filters"): the copied kernel is divided by kt, so that on a "boring" video (one frame repeated) the
3D network reproduces the 2D network's activations exactly.

What the paper leaves open, and what is assumed here:
- "Copied" follows I3D: repeat along time and divide by kt (the paper only says "copied"; without
  the division the activations of a still video would be kt times larger than the 2D ones).
- "Centered" puts the 2D kernel at time index (kt - 1) // 2; the other slices are zero
  (``fill="zero"``) or uniform in [-a, a] with a = ``random_scale`` * max|kernel_2d|
  (``fill="random"``; the paper says "uniform distribution" without a range). ``fill`` only applies
  to "centered"; asking for ``fill="random"`` with "copied" is an error.
- Every Conv2D gets the same temporal size kt, 1x1 convolutions and strided ones included (Fig. 7
  shows 3x3 kernels made 3x3x3; for VGG, whose kernels are all 3x3, that is the same thing).
  Strides and dilation in time are 1 unless a temporal dilation is asked for.
- Pooling is not inflated in time: MaxPooling2D / AveragePooling2D become 3D poolings with pool size
  and stride 1 in time, and ZeroPadding2D becomes a ZeroPadding3D with no time padding, so the
  sequence length is kept (continuous, per-frame features).
- Time padding: every convolution keeps the sequence length. ``temporal_padding="zero"`` pads time
  with zeros (Keras "same" padding, as in I3D); the first and last d * (kt - 1) / 2 frames of each
  inflated layer then see zero frames, so a still video is reproduced exactly only away from the
  clip ends (with "centered" + ``fill="zero"`` it is exact everywhere, and any clip gives the 2D
  network applied frame by frame). ``temporal_padding="replicate"`` repeats the first and last frame
  instead, and a still video is reproduced exactly at every time step and through global pooling
  over time.
- Global pooling: GlobalAveragePooling2D / GlobalMaxPooling2D become their 3D versions (pooling over
  time as well, one vector per clip), or with ``keep_time=True`` a per-frame 2D pooling, giving
  (batch, T, C) for per-frame regression heads.
- Masking keeps the central slice of every kernel exactly as inflated: the 2D kernel for
  "centered", the 2D kernel divided by kt for "copied". Biases, BatchNormalization and the other
  time slices train. :class:`MaskedConv3D` holds the centre in a non-trainable variable (see there
  why this and not a constraint or a gradient mask).
- The target multiplier (x1 / x100) is not part of inflation: see ``build_teixeira2021_i3d``.
- With ``fill="random"`` and no ``rng``, the random slices are drawn from a generator seeded from
  NumPy's global state, so ``keras.utils.set_random_seed`` makes them reproducible.

Limits of :func:`inflate_model`:
- The 2D model must be a built functional or Sequential model with one (H, W, C) input; any graph
  of supported layers is accepted: branches, skip connections (ResNet-50) and several outputs.
  Nested models and layers called more than once (shared layers) are rejected.
- channels_last only; ``time_size`` must be odd (a centre exists and zero/replicate padding is
  symmetric); Conv2D with groups > 1 is rejected.
- Keras convolutions cannot be strided and dilated at once: a strided Conv2D that gets a temporal
  dilation > 1 becomes an unstrided Conv3D followed by a subsampling (``{name}_stride``, a
  MaxPooling3D of size 1), which is exact for "valid" padding (ResNet-50's strided 1x1
  convolutions); with "same" padding it is rejected.
- Supported layers (see ``SUPPORTED_LAYERS``): InputLayer, Conv2D, BatchNormalization (over the
  channel axis), ZeroPadding2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
  GlobalMaxPooling2D, the merge layers Add, Subtract, Multiply, Average, Maximum, Minimum and
  Concatenate (a positive axis is shifted past the new time axis), and the element-wise or
  last-axis layers Activation, ReLU, LeakyReLU, ELU, Softmax, Dropout, Rescaling and Dense. Any
  other layer (Flatten, Reshape, DepthwiseConv2D, Lambda, ...) raises :class:`UnsupportedLayerError`
  naming the layer and its class.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence

import keras
import numpy as np
from keras import layers, ops

logger = logging.getLogger(__name__)

MODES = ("copied", "centered")
FILLS = ("zero", "random")
TEMPORAL_PADDINGS = ("zero", "replicate")

# Element-wise or last-axis layers that work unchanged on 5D tensors: rebuilt from their config.
_SHAPE_AGNOSTIC = (layers.Activation, layers.ReLU, layers.LeakyReLU, layers.ELU, layers.Softmax,
                   layers.Dropout, layers.Rescaling, layers.Dense, layers.Add, layers.Subtract,
                   layers.Multiply, layers.Average, layers.Maximum, layers.Minimum)
_POOLING_3D = {layers.MaxPooling2D: layers.MaxPooling3D, layers.AveragePooling2D: layers.AveragePooling3D}
_GLOBAL_POOLING_3D = {layers.GlobalAveragePooling2D: layers.GlobalAveragePooling3D,
                      layers.GlobalMaxPooling2D: layers.GlobalMaxPooling3D}
_CHANNELS_LAST = (layers.ZeroPadding2D, *_POOLING_3D, *_GLOBAL_POOLING_3D)
SUPPORTED_LAYERS = ("InputLayer", "Conv2D", "BatchNormalization", "ZeroPadding2D", "MaxPooling2D",
                    "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
                    "Concatenate") + tuple(c.__name__ for c in _SHAPE_AGNOSTIC)


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


@keras.saving.register_keras_serializable(package="emotrack")
class MaskedConv3D(layers.Conv3D):
    """A Conv3D whose central time slice of the kernel is frozen (masking, Sec. 3.3.2).

    Same arguments, input (batch, T, H, W, Cin) and output as ``keras.layers.Conv3D``; the time size
    kt of ``kernel_size`` must be at least 2. The kernel (kt, kh, kw, Cin, Cout) is assembled with
    ``keras.ops`` at every call from two variables:

    - ``center_kernel`` (kh, kw, Cin, Cout), not trainable: time slice :func:`center_index` (kt);
    - ``temporal_kernel`` (kt - 1, kh, kw, Cin, Cout), trainable: the other slices, in time order.

    Why a non-trainable variable: the optimizer only ever sees trainable variables, so the centre
    stays bit-identical through any optimizer (momentum, Adam moments, decoupled weight decay,
    gradient clipping) and any number of steps. A gradient mask (zeroing the centre's gradient)
    still lets weight decay and momentum accumulated before move it; a constraint runs after the
    update and would have to carry a copy of every centre in its config to restore it. The bias
    trains. ``kernel_regularizer`` and ``kernel_constraint`` act on ``temporal_kernel`` only.

    ``.keras`` / weight files hold the assembled kernel and the bias, as a Conv3D's do.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        if self.kernel_size[0] < 2:
            raise ValueError(f"{self.name}: masking needs a kernel time size of at least 2, got "
                             f"{self.kernel_size[0]} (with size 1 the whole kernel would be frozen)")
        if self.groups != 1 or self.lora_rank:
            raise ValueError(f"{self.name}: groups > 1 and LoRA are not supported with masking")

    def build(self, input_shape):
        channel_axis = -1 if self.data_format == "channels_last" else 1
        channels = input_shape[channel_axis]
        self.input_spec = keras.layers.InputSpec(min_ndim=5, axes={channel_axis: channels})
        self.compute_output_shape(input_shape)  # validates the input shape
        kt, kh, kw = self.kernel_size
        spatial = (kh, kw, channels, self.filters)
        self.temporal_kernel = self.add_weight(
            name="temporal_kernel", shape=(kt - 1, *spatial), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint, trainable=True,
            dtype=self.dtype)
        self.center_kernel = self.add_weight(name="center_kernel", shape=spatial,
                                             initializer=self.kernel_initializer, trainable=False,
                                             dtype=self.dtype)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,),
                                        initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, trainable=True,
                                        dtype=self.dtype)
        else:
            self.bias = None
        self.built = True

    @property
    def kernel(self):
        """The assembled kernel (kt, kh, kw, Cin, Cout)."""
        if not self.built:
            raise AttributeError("You must build the layer before accessing `kernel`.")
        c = center_index(self.kernel_size[0])
        return ops.concatenate([self.temporal_kernel[:c], ops.expand_dims(self.center_kernel, 0),
                                self.temporal_kernel[c:]], axis=0)

    def assign_kernel(self, kernel) -> None:
        """Set the full kernel (kt, kh, kw, Cin, Cout): its centre slice goes to the frozen
        ``center_kernel``, the others to ``temporal_kernel``."""
        kernel = np.asarray(kernel)
        c = center_index(self.kernel_size[0])
        expected = (self.kernel_size[0], *self.center_kernel.shape)
        if kernel.shape != expected:
            raise ValueError(f"{self.name}: kernel must have shape {expected}, got {kernel.shape}")
        self.center_kernel.assign(kernel[c])
        self.temporal_kernel.assign(np.delete(kernel, c, axis=0))

    def load_own_variables(self, store):
        if not self.built:
            return
        expected = 2 if self.use_bias else 1
        if len(store.keys()) != expected:
            raise ValueError(f"layer {self.name!r}: expected {expected} variables (kernel"
                             f"{', bias' if self.use_bias else ''}), found {len(store.keys())}")
        self.assign_kernel(store["0"])
        if self.use_bias:
            self.bias.assign(store["1"])


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


def _functional(model_2d) -> keras.Model:
    """``model_2d`` as a functional model with one (H, W, C) input."""
    if isinstance(model_2d, keras.Sequential):
        try:
            model_2d = keras.Model(model_2d.inputs, model_2d.outputs, name=model_2d.name)
        except (AttributeError, ValueError) as error:
            raise UnsupportedLayerError(f"Sequential model {model_2d.name!r} must be built with an "
                                        "input shape (start it with keras.Input)") from error
    if not isinstance(model_2d, keras.Model) or not isinstance(getattr(model_2d, "inputs", None), list):
        raise UnsupportedLayerError(f"model {model_2d.name!r} ({type(model_2d).__name__}) is not a "
                                    "functional or Sequential model")
    if len(model_2d.inputs) != 1:
        raise UnsupportedLayerError(f"model {model_2d.name!r}: only single-input models can be "
                                    f"inflated, it has {len(model_2d.inputs)} inputs")
    input_shape = tuple(model_2d.inputs[0].shape[1:])
    if len(input_shape) != 3:
        raise UnsupportedLayerError(f"model {model_2d.name!r}: input must be (H, W, C), got {input_shape}")
    return model_2d


def _check_supported(layer) -> None:
    name, kind = layer.name, type(layer).__name__
    if isinstance(layer, keras.Model):
        raise UnsupportedLayerError(f"layer {name!r} ({kind}) is a nested model; build the 2D model "
                                    "from its layers before inflating")
    if len(layer._inbound_nodes) != 1:  # a shared layer would need one 3D layer for several calls
        raise UnsupportedLayerError(f"layer {name!r} ({kind}) is used {len(layer._inbound_nodes)} "
                                    "times; shared layers are not supported")
    if type(layer) is layers.Conv2D:
        config = layer.get_config()
        if config.get("data_format", "channels_last") != "channels_last":
            raise UnsupportedLayerError(f"layer {name!r} (Conv2D): only channels_last is supported")
        if config.get("groups", 1) != 1:
            raise UnsupportedLayerError(f"layer {name!r} (Conv2D): groups > 1 is not supported")
        return
    if type(layer) is layers.BatchNormalization:
        if layer.axis not in (-1, 3):
            raise UnsupportedLayerError(f"layer {name!r} (BatchNormalization): only normalisation "
                                        f"over the channel (last) axis is supported, not axis={layer.axis}")
        return
    if type(layer) in _CHANNELS_LAST:
        if layer.data_format != "channels_last":
            raise UnsupportedLayerError(f"layer {name!r} ({kind}): only channels_last is supported")
        return
    if type(layer) in (layers.Concatenate, *_SHAPE_AGNOSTIC):
        return
    raise UnsupportedLayerError(f"layer {name!r} ({kind}) cannot be inflated; supported layer types: "
                                f"{', '.join(SUPPORTED_LAYERS)}")


def _dilations(temporal_dilation, convs: list) -> dict[str, int]:
    """The temporal dilation of every Conv2D, by layer name."""
    names = [conv.name for conv in convs]
    if isinstance(temporal_dilation, Mapping):
        dilations = {}
        for prefix in temporal_dilation:
            if not any(n.startswith(prefix) for n in names):
                raise ValueError(f"temporal_dilation: no Conv2D layer name starts with {prefix!r}")
        for n in names:
            matches = [int(d) for prefix, d in temporal_dilation.items() if n.startswith(prefix)]
            dilations[n] = matches[0] if matches else 1
    elif isinstance(temporal_dilation, (int, np.integer)):
        dilations = dict.fromkeys(names, int(temporal_dilation))
    else:
        values = [int(d) for d in temporal_dilation]
        if len(values) != len(names):
            raise ValueError(f"temporal_dilation has {len(values)} values but the model has "
                             f"{len(names)} Conv2D layers")
        dilations = dict(zip(names, values))
    if any(d < 1 for d in dilations.values()):
        raise ValueError(f"temporal dilations must be >= 1, got {sorted(set(dilations.values()))}")
    return dilations


def _layer_3d(layer, time_size: int, dilation: int, masking: bool, keep_time: bool):
    """The (unbuilt) 3D counterpart of a supported 2D layer, with the same name."""
    kind = type(layer)
    if kind is layers.Conv2D:
        config = layer.get_config()
        (kh, kw), (sh, sw), (dh, dw) = config["kernel_size"], config["strides"], config["dilation_rate"]
        if dilation > 1 and (sh, sw) != (1, 1):
            # Keras convolutions take strides or dilation, not both: convolve with stride 1 and
            # subsample afterwards (_call_conv3d), which is the same only with "valid" padding.
            if config["padding"] != "valid":
                raise UnsupportedLayerError(
                    f"layer {layer.name!r} (Conv2D): a strided convolution with 'same' padding "
                    "cannot take a temporal dilation > 1; give it dilation 1")
            sh = sw = 1
        conv = MaskedConv3D if masking else layers.Conv3D
        return conv(config["filters"], (time_size, kh, kw), strides=(1, sh, sw),
                    padding=config["padding"], dilation_rate=(dilation, dh, dw),
                    activation=config["activation"], use_bias=config["use_bias"],
                    data_format="channels_last", trainable=layer.trainable,
                    dtype=layer.dtype_policy, name=layer.name)
    if kind is layers.BatchNormalization:
        return kind.from_config({**layer.get_config(), "axis": -1})
    if kind is layers.ZeroPadding2D:
        return layers.ZeroPadding3D(((0, 0), *layer.padding), data_format="channels_last",
                                    dtype=layer.dtype_policy, name=layer.name)
    if kind in _POOLING_3D:
        (ph, pw), (sh, sw) = layer.pool_size, layer.strides
        return _POOLING_3D[kind]((1, ph, pw), strides=(1, sh, sw), padding=layer.padding,
                                 data_format="channels_last", dtype=layer.dtype_policy,
                                 name=layer.name)
    if kind in _GLOBAL_POOLING_3D:
        if keep_time:
            return layers.TimeDistributed(kind.from_config(layer.get_config()), name=layer.name)
        return _GLOBAL_POOLING_3D[kind](keepdims=layer.keepdims, data_format="channels_last",
                                        dtype=layer.dtype_policy, name=layer.name)
    if kind is layers.Concatenate:
        axis = layer.axis + 1 if layer.axis > 0 else layer.axis  # past the new time axis
        return kind.from_config({**layer.get_config(), "axis": axis})
    return kind.from_config(layer.get_config())  # shape-agnostic (checked before)


def inflate_model(model_2d: keras.Model, time_size: int = 3, mode: str = "copied",
                  fill: str = "zero", temporal_dilation: int | Sequence[int] | Mapping[str, int] = 1,
                  temporal_padding: str = "zero", masking: bool = False,
                  time_steps: int | None = None, keep_time: bool = False,
                  rng: np.random.Generator | int | None = None, random_scale: float = 1e-2,
                  name: str | None = None) -> keras.Model:
    """Inflate a 2D CNN into a 3D CNN with the 2D model's (pre-trained) weights.

    The functional graph of ``model_2d`` is walked in topological order
    (``keras.models.clone_model``), every layer is replaced by its 3D counterpart (module
    docstring), called on the mapped inputs, and given the 2D layer's weights (Conv2D kernels
    inflated by :func:`inflate_conv2d_kernel`). Skip connections and branches are kept as they are.

    Args:
        model_2d: a built functional or Sequential model of supported layers (module docstring),
            input (H, W, C).
        time_size: kt, the temporal size of every inflated kernel (odd).
        mode, fill, rng, random_scale: how kernels are inflated (:func:`inflate_conv2d_kernel`).
        temporal_dilation: the time dilation of the Conv2D layers: one int for all; a sequence
            with one value per Conv2D in the order of ``model_2d.layers``; or a mapping from
            layer-name prefix to dilation (e.g. ``{"block3_": 2, "block4_": 4}``), the first
            matching prefix counts, Conv2D layers that match none get 1, and every prefix must
            match at least one Conv2D.
        temporal_padding: ``zero`` or ``replicate`` (module docstring).
        masking: build :class:`MaskedConv3D` layers, whose central kernel slice does not train.
        time_steps: the clip length T of the input, or None for any length.
        keep_time: map global 2D poolings to per-frame poolings, output (batch, T, C), instead of
            pooling over time too.
    Returns:
        a model mapping (batch, T, H, W, C) clips to the inflated network's output: a 2D output
        (batch, ...) becomes (batch, T, ...) until a global pooling over time. Every layer keeps
        its name (and its ``trainable`` flag), so weights can be matched by name.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if fill not in FILLS or (mode == "copied" and fill != "zero"):
        raise ValueError(f"fill must be 'zero' or, with mode='centered', 'random'; not {fill!r}")
    if temporal_padding not in TEMPORAL_PADDINGS:
        raise ValueError(f"temporal_padding must be one of {TEMPORAL_PADDINGS}, not {temporal_padding!r}")
    if int(time_size) != time_size or time_size < 1 or time_size % 2 == 0:
        raise ValueError(f"time_size must be a positive odd integer, not {time_size!r}")
    if masking and time_size == 1:
        raise ValueError("masking needs time_size >= 3: with time_size=1 every kernel would be frozen")
    time_size = int(time_size)
    graph = _functional(model_2d)
    layers_2d = [layer for layer in graph.layers if not isinstance(layer, layers.InputLayer)]
    for layer in layers_2d:
        _check_supported(layer)
    convs = [layer for layer in layers_2d if type(layer) is layers.Conv2D]
    dilations = _dilations(temporal_dilation, convs)
    if rng is None and fill == "random":  # from NumPy's global state, which set_random_seed seeds
        rng = np.random.randint(2**31)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    clips = keras.Input(shape=(time_steps, *graph.inputs[0].shape[1:]), name="clips")
    originals = {}  # id(3D layer) -> 2D layer

    def clone(layer):
        new = _layer_3d(layer, time_size, dilations.get(layer.name, 1), masking, keep_time)
        originals[id(new)] = layer
        return new

    def call(new, *args, **kwargs):
        layer = originals[id(new)]
        if type(layer) is layers.Conv2D:
            x = _call_conv3d(new, layer, args[0], time_size, dilations[layer.name], temporal_padding,
                             mode, fill, rng, random_scale)
        else:
            x = new(*args, **kwargs)
            if layer.get_weights():
                new.set_weights(layer.get_weights())
        # The trailing axes are the 2D layer's; a tensor that still has time has the clip's at axis 1.
        expected = tuple(layer.output.shape[1:])
        trailing = tuple(x.shape[len(x.shape) - len(expected):])
        assert trailing == expected, (layer.name, x.shape, expected)
        has_time = len(x.shape) == len(expected) + 2
        assert not has_time or x.shape[1] == clips.shape[1], (layer.name, x.shape, clips.shape)
        logger.debug("inflated %s (%s) -> %s, output %s", layer.name, type(layer).__name__,
                     type(new).__name__, tuple(x.shape))
        return x

    inputs = keras.tree.pack_sequence_as(graph.input, [clips])
    inflated = keras.models.clone_model(graph, input_tensors=inputs, clone_function=clone,
                                        call_function=call)
    per_dilation = Counter(dilations.values())  # dilation -> number of Conv2D layers
    logger.info("inflated %s: %d Conv2D layers -> %s (kt=%d, %s%s, temporal dilation %s, %s time "
                "padding), %d layers in all", graph.name, len(convs),
                "MaskedConv3D (centre slice frozen)" if masking else "Conv3D", time_size, mode,
                f", fill {fill}" if mode == "centered" else "",
                next(iter(per_dilation)) if len(per_dilation) == 1 else dict(sorted(per_dilation.items())),
                temporal_padding, len(layers_2d))
    return keras.Model(clips, inflated.output, name=name or f"{graph.name}_inflated")


def _call_conv3d(conv, layer, x, time_size, dilation, temporal_padding, mode, fill, rng, random_scale):
    """Call the 3D ``conv`` that replaces Conv2D ``layer`` on ``x`` with the time padding that keeps
    the length, then give it the inflated kernel; returns the output tensor."""
    padding = layer.get_config()["padding"]
    pad = dilation * (time_size - 1) // 2  # time frames each side that keep the length
    if temporal_padding == "replicate" and pad:
        x = TemporalEdgePadding(pad, name=f"{layer.name}_tpad")(x)
    elif padding == "valid" and pad:
        x = layers.ZeroPadding3D(((pad, pad), (0, 0), (0, 0)), data_format="channels_last",
                                 name=f"{layer.name}_tpad")(x)
    x = conv(x)
    if temporal_padding == "replicate" and pad and padding == "same":
        x = layers.Cropping3D(((pad, pad), (0, 0), (0, 0)), data_format="channels_last",
                              name=f"{layer.name}_tcrop")(x)
    strides = (1, *layer.strides)
    if tuple(conv.strides) != strides:  # strided and dilated (_layer_3d): subsample after
        x = layers.MaxPooling3D(1, strides=strides, data_format="channels_last",
                                name=f"{layer.name}_stride")(x)
    weights = layer.get_weights()
    kernel_3d = inflate_conv2d_kernel(weights[0], time_size, mode=mode, fill=fill, rng=rng,
                                      random_scale=random_scale)
    if isinstance(conv, MaskedConv3D):
        conv.assign_kernel(kernel_3d)
        if conv.use_bias:
            conv.bias.assign(weights[1])
    else:
        conv.set_weights([kernel_3d, *weights[1:]])
    return x
