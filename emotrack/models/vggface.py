"""VGG-Face VGG-16 weights in the forms they are published, read onto emotrack's VGG-16.

VGG-Face (Parkhi, Vedaldi & Zisserman, BMVC 2015) is a VGG-16 trained to tell 2,622 identities
apart; Oxford VGG released it for MatConvNet and Caffe, and two Keras conversions are what
Keras users download:

- keras-vggface (github.com/rcmalli/keras-vggface, release v2.0): ``rcmalli_vggface_tf_vgg16.h5``
  (with fc6, fc7, fc8) and ``rcmalli_vggface_tf_notop_vgg16.h5`` (convolutions only); the v1
  releases named them ``rcmalli_vggface_tf_v2.h5`` / ``rcmalli_vggface_tf_notop_v2.h5``. Keras 2
  HDF5 weights files whose layer groups carry the Caffe names ``conv1_1`` ... ``conv5_3``, ``fc6``,
  ``fc7``, ``fc8``; fc6 reads the pool5 map flattened channels-last, as Keras' ``Flatten`` does.
- deepface (github.com/serengil/deepface_models, release v1.0): ``vgg_face_weights.h5``, the
  weights of a Keras ``Sequential`` of ``ZeroPadding2D`` + ``Convolution2D`` layers with generated
  names (``conv2d_1`` ...), whose fc6, fc7 and fc8 are 7x7, 1x1 and 1x1 convolutions. A
  convolution over the whole 7x7x512 map is the dense layer whose kernel is the convolution kernel
  reshaped to (7 * 7 * 512, 4096) in C order: row ``(h * 7 + w) * 512 + c`` is the weight of pixel
  (h, w), channel c, the index that ``Flatten`` gives that pixel in a channels-last map.

Both files are read with h5py from the Keras 2 layout (root attribute ``layer_names``, per layer a
``weight_names`` attribute naming the datasets, e.g. ``conv1_1/kernel:0`` or the Keras 1
``conv1_1_W``); a whole model saved as ``.h5`` keeps the same layout under ``model_weights``.

The networks expect Caffe's input convention: BGR pixels in 0..255 minus ``VGGFACE_MEAN_BGR``.

emotrack's VGG-16 (:func:`emotrack.models.teixeira2021.build_vgg`) names its convolutions as
``keras.applications`` does (``block{b}_conv{i}``); AST-Net's fc6 is a ``Dense`` layer named
``fc6``. ``EMOTRACK_NAMES`` maps the VGG-Face names onto them; fc8 (the identities) has none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import keras
import numpy as np

#: The layers of VGG-Face's VGG-16 that hold weights, in network order (Caffe names).
CONV_LAYERS = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
               "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3")
FC_LAYERS = ("fc6", "fc7", "fc8")
VGGFACE_LAYERS = CONV_LAYERS + FC_LAYERS

#: VGG-Face layer -> the emotrack layer that receives it (fc8, the 2,622 identities, has none).
EMOTRACK_NAMES = {**{name: f"block{name[4]}_conv{name[6]}" for name in CONV_LAYERS}, "fc6": "fc6", "fc7": "fc7"}

#: The names ``weights="vggface"`` looks for, in order of preference (with fc layers first).
VGGFACE_FILE_NAMES = ("rcmalli_vggface_tf_vgg16.h5", "vgg_face_weights.h5", "rcmalli_vggface_tf_v2.h5",
                      "rcmalli_vggface_tf_notop_vgg16.h5", "rcmalli_vggface_tf_notop_v2.h5")

#: The environment variable naming a folder of weight files, searched before the Keras caches.
WEIGHTS_DIR_ENV = "EMOTRACK_WEIGHTS"

#: Per-channel means subtracted from BGR 0..255 input (keras-vggface ``preprocess_input(version=1)``).
VGGFACE_MEAN_BGR = (93.5940, 104.7624, 129.1863)

#: Formats of the original release that are not read here (MatConvNet, Caffe).
ORIGINAL_SUFFIXES = (".mat", ".caffemodel", ".prototxt")


def vggface_dirs() -> list[Path]:
    """The folders ``weights="vggface"`` searches, in order: ``$EMOTRACK_WEIGHTS``, the Keras cache
    (``$KERAS_HOME`` or ``~/.keras``: ``models/vggface``, where keras-vggface downloads, and
    ``models``) and deepface's ``~/.deepface/weights``."""
    keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    dirs = [Path(os.environ[WEIGHTS_DIR_ENV])] if os.environ.get(WEIGHTS_DIR_ENV) else []
    return dirs + [keras_home / "models" / "vggface", keras_home / "models", Path.home() / ".deepface" / "weights"]


def find_vggface_file(dirs=None) -> Path | None:
    """The first of ``VGGFACE_FILE_NAMES`` found in ``dirs`` (default :func:`vggface_dirs`), trying
    every folder for a file name before the next name; None when there is none."""
    dirs = vggface_dirs() if dirs is None else [Path(d) for d in dirs]
    for file_name in VGGFACE_FILE_NAMES:
        for folder in dirs:
            if (folder / file_name).is_file():
                return folder / file_name
    return None


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _attribute_list(group: h5py.Group, name: str) -> list[str] | None:
    """A Keras 2 list attribute; lists too long for one HDF5 header are split as ``name0``, ``name1`` ..."""
    if name in group.attrs:
        return [_text(v) for v in group.attrs[name]]
    if f"{name}0" not in group.attrs:
        return None
    values, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        values += [_text(v) for v in group.attrs[f"{name}{chunk}"]]
        chunk += 1
    return values


def keras2_layers(f: h5py.File) -> list[tuple[str, list[h5py.Dataset]]] | None:
    """The layers with weights of an open Keras 2 HDF5 weights (or whole-model) file, in the file's
    layer order, each as ``(layer name, [datasets in weight_names order])``; None for any other
    layout (a Keras 3 ``.weights.h5`` file has no ``layer_names``). Nothing is read into memory."""
    root = f["model_weights"] if "model_weights" in f else f
    names = _attribute_list(root, "layer_names")
    if names is None:
        return None
    layers = []
    for name in names:
        group = root[name]
        weight_names = _attribute_list(group, "weight_names") or []
        if weight_names:
            layers.append((name, [group[w] for w in weight_names]))
    return layers


def _kernel_and_bias(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    # The kernel is the one array of rank >= 2, whatever it is called (kernel:0, _W, W).
    kernels = [a for a in arrays if a.ndim >= 2]
    biases = [a for a in arrays if a.ndim == 1]
    if len(kernels) != 1 or len(biases) > 1:
        raise ValueError(f"expected one kernel and one bias, found shapes {[a.shape for a in arrays]}")
    return kernels[0], (biases[0] if biases else None)


def dense_from_conv(kernel: np.ndarray) -> np.ndarray:
    """A convolution kernel (kh, kw, in, out) applied once over a whole (kh, kw, in) map ->
    the kernel (kh * kw * in, out) of the dense layer after ``Flatten`` of that map (channels last)."""
    return np.reshape(kernel, (-1, kernel.shape[-1]))


def vggface_layout(layers) -> str | None:
    """``"keras-vggface"`` (Caffe layer names), ``"deepface"`` (16 convolutions, the first 13 of
    them 3x3, in VGG-16 order) or None (not a VGG-Face file) for :func:`keras2_layers`' output."""
    if not layers:
        return None
    names = {name for name, _ in layers}
    if names & set(CONV_LAYERS):
        return "keras-vggface"
    kernels = [max(arrays, key=lambda a: a.ndim) for _, arrays in layers]
    if (len(kernels) in (13, 16) and all(k.ndim == 4 for k in kernels)
            and all(k.shape[:2] == (3, 3) for k in kernels[:13])):
        return "deepface"
    return None


def is_vggface_file(path) -> bool:
    """Whether ``path`` is an HDF5 file in one of the VGG-Face layouts (not a Keras 3 file)."""
    try:
        with h5py.File(path, "r") as f:
            return vggface_layout(keras2_layers(f)) is not None
    except (OSError, KeyError):
        return False


def read_vggface(path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """The tensors of a VGG-Face file by layer name, ``(kernel, bias)``, in Keras layouts:
    convolutions (3, 3, in, out), fc layers (in, out) whatever form the file stores them in. Only
    the layers of ``VGGFACE_LAYERS`` are read (deepface's generated names are replaced by them).

    Raises:
        ValueError: the file is not in a VGG-Face layout.
    """
    with h5py.File(path, "r") as f:
        layers = keras2_layers(f)
        layout = vggface_layout(layers)
        if layout is None:
            raise ValueError(f"{os.fspath(path)!r} is not a VGG-Face weights file (no layers conv1_1 ... "
                             f"conv5_3, nor 13 3x3 convolutions)")
        if layout == "keras-vggface":
            named = [(name, datasets) for name, datasets in layers if name in VGGFACE_LAYERS]
        else:  # generated names: the order of the Sequential is the order of VGG-16
            named = [(VGGFACE_LAYERS[i], datasets) for i, (_, datasets) in enumerate(layers)]
        named = [(name, [np.asarray(d) for d in datasets]) for name, datasets in named]
    tensors = {}
    for name, arrays in named:
        kernel, bias = _kernel_and_bias(arrays)
        if name in FC_LAYERS and kernel.ndim == 4:
            kernel = dense_from_conv(kernel)
        tensors[name] = (kernel, bias)
    return tensors


def _layers_by_name(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """Every layer of ``model`` by name, nested models (a backbone used as a layer) included."""
    found = {}
    for layer in model.layers:
        found.setdefault(layer.name, layer)
        if isinstance(layer, keras.Model):
            for name, inner in _layers_by_name(layer).items():
                found.setdefault(name, inner)
    return found


@dataclass
class VGGFacePlan:
    """What :func:`plan_vggface` found: ``assign`` (emotrack layer -> [kernel, bias]) and the problems,
    each by VGG-Face name: ``missing_in_file``, ``missing_in_model`` (a VGG-16 convolution the model
    lacks), ``mismatched`` ((name, file shape, model shape)), ``batch_norm`` (layers that VGG-Face
    cannot fill) and ``ignored`` (file layers the model has no place for, e.g. fc8)."""

    assign: dict[str, list[np.ndarray]] = field(default_factory=dict)
    missing_in_file: list[str] = field(default_factory=list)
    missing_in_model: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    batch_norm: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing_in_file or self.missing_in_model or self.mismatched or self.batch_norm)


def plan_vggface(model: keras.Model, tensors: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> VGGFacePlan:
    """Match VGG-Face ``tensors`` (from :func:`read_vggface`) to the layers of ``model``.

    Every VGG-16 convolution must be in the model and the file, with equal shapes; fc6 and fc7 are
    required where the model has a layer of that name (AST-Net's attribute CNN has fc6).
    """
    by_name = _layers_by_name(model)
    plan = VGGFacePlan(batch_norm=[n for n, layer in by_name.items()
                                   if isinstance(layer, keras.layers.BatchNormalization)])
    for name in VGGFACE_LAYERS:
        target = EMOTRACK_NAMES.get(name)
        layer = by_name.get(target) if target else None
        if layer is None:
            if name in CONV_LAYERS:
                plan.missing_in_model.append(name)
            continue
        if name not in tensors:
            plan.missing_in_file.append(name)
            continue
        kernel, bias = tensors[name]
        values = [kernel] if bias is None else [kernel, bias]
        expected = [tuple(w.shape) for w in layer.weights]
        if [tuple(v.shape) for v in values] != expected:
            plan.mismatched.append((name, tuple(kernel.shape), expected[0] if expected else ()))
            continue
        plan.assign[target] = values
    used = {name for name, target in EMOTRACK_NAMES.items() if target in plan.assign}
    plan.ignored = [name for name in tensors if name not in used and name not in plan.missing_in_model
                    and name not in {m[0] for m in plan.mismatched}]
    return plan


def assign_plan(model: keras.Model, plan: VGGFacePlan) -> keras.Model:
    """Set the weights of ``plan.assign`` on the layers of ``model`` (nested models included)."""
    by_name = _layers_by_name(model)
    for target, values in plan.assign.items():
        by_name[target].set_weights(values)
    return model
