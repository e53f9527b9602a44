"""Pretrained weights for backbones: by name where Keras knows them, or from a local file.

``weights`` options across the model zoo take one of:

- ``None``: random initialisation (what the tests use; nothing is read or downloaded);
- ``"imagenet"``: the ImageNet weights of ``keras.applications`` (VGG-16, ResNet-50), downloaded
  by Keras into ``~/.keras/models`` the first time a model is *built* with them (never at import);
- ``"vggface"`` (VGG-16 only): VGG-Face's VGG-16 in one of its Keras conversions, found by file
  name (``emotrack.models.vggface.VGGFACE_FILE_NAMES``) in ``$EMOTRACK_WEIGHTS``, the Keras cache
  (``~/.keras/models/vggface``, ``~/.keras/models``) or ``~/.deepface/weights``; nothing is
  downloaded;
- a path to a ``.weights.h5`` (Keras 3) or legacy ``.h5`` file saved from the same backbone
  (RAF-DB pre-training, a user's own checkpoint), or to a VGG-Face ``.h5`` file as downloaded
  (keras-vggface's ``rcmalli_vggface_tf_vgg16.h5`` / ``..._notop_vgg16.h5`` or deepface's
  ``vgg_face_weights.h5``): the file is opened to tell which, and VGG-Face tensors are mapped by
  name onto emotrack's layers (:func:`load_vggface_weights`).

Anything else, a missing file or a failed download is a :class:`WeightsError` that says what to do.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import keras

from emotrack.models.vggface import (
    EMOTRACK_NAMES,
    ORIGINAL_SUFFIXES,
    VGGFACE_FILE_NAMES,
    WEIGHTS_DIR_ENV,
    assign_plan,
    find_vggface_file,
    is_vggface_file,
    plan_vggface,
    read_vggface,
    vggface_dirs,
)

logger = logging.getLogger(__name__)

#: Weight names resolved by name rather than path; a backbone lists those it accepts in ``known``.
NAMED_WEIGHTS = ("imagenet", "vggface")

#: Where the VGG-Face conversions are published.
VGGFACE_URLS = {
    "rcmalli_vggface_tf_vgg16.h5":
        "https://github.com/rcmalli/keras-vggface/releases/download/v2.0/rcmalli_vggface_tf_vgg16.h5",
    "vgg_face_weights.h5": "https://github.com/serengil/deepface_models/releases/download/v1.0/vgg_face_weights.h5",
}
_GET_VGGFACE = ("download one of VGG-Face's Keras conversions, " + " or ".join(f"{name} ({url})" for name, url in
                                                                    VGGFACE_URLS.items()))


class WeightsError(ValueError):
    """Weights that cannot be used: an unknown name, a missing file or a failed download."""


def weights_source(weights, backbone: str, known: tuple[str, ...] = ()) -> tuple[str | None, str | None]:
    """Split a ``weights`` option into ``(name, path)``; one of them at most is not None.

    ``"imagenet"`` stays a name (``keras.applications`` downloads it); ``"vggface"`` becomes the path
    of the file :func:`emotrack.models.vggface.find_vggface_file` finds.

    Args:
        weights: None, a name from ``known`` ("imagenet", "vggface") or a path.
        backbone: the backbone's name, for messages.
        known: the weight names this backbone accepts (of ``NAMED_WEIGHTS``).
    """
    if weights is None:
        return None, None
    text = os.fspath(weights)
    if text in NAMED_WEIGHTS:
        if text not in known:
            raise WeightsError(f"no {text} weights are known for {backbone!r}"
                               + (f" (only {', '.join(known)})" if known else "")
                               + "; pass the path of a local .weights.h5 file saved from this backbone")
        if text == "vggface":
            return None, os.fspath(vggface_path(backbone))
        return text, None
    if text.lower().endswith(ORIGINAL_SUFFIXES):
        raise WeightsError(f"{text!r} is the original VGG-Face release (MatConvNet / Caffe), which emotrack "
                           f"does not read; {_GET_VGGFACE}, which hold the same weights, or convert it to a "
                           f"Keras 2 HDF5 weights file whose layers are named conv1_1 ... conv5_3, fc6, fc7, "
                           f"fc8 (kernels channels-last, fc6 rows in the order of Flatten over a 7x7x512 "
                           f"channels-last map) and pass that path")
    if not text.endswith(".h5"):
        raise WeightsError(f"weights for {backbone!r} must be None, "
                           + "".join(f"'{k}', " for k in known)
                           + f"or a .weights.h5 / .h5 file, not {text!r}")
    if not os.path.isfile(text):
        raise WeightsError(f"weights file {text!r} for {backbone!r} does not exist; check the path, or pass "
                           f"weights=None to start from random weights")
    return None, text


def build_with_named_weights(build: Callable[..., keras.Model], weights_name: str | None, backbone: str,
                             **kwargs) -> keras.Model:
    """``build(weights=weights_name, **kwargs)`` for a ``keras.applications`` constructor, turning
    a failed download into a :class:`WeightsError` that says how to get the file."""
    try:
        return build(weights=weights_name, **kwargs)
    except Exception as err:  # urllib, SSL, HTTP and checksum errors all end here
        if weights_name is None:
            raise
        raise WeightsError(
            f"the {weights_name} weights of {backbone!r} could not be downloaded ({type(err).__name__}: {err}). "
            f"Build the model once on a machine with internet access (Keras keeps the file in "
            f"~/.keras/models, which can be copied), or save the backbone's weights with "
            f"model.save_weights('backbone.weights.h5') and pass that path") from err


def vggface_path(backbone: str = "vgg16") -> Path:
    """The VGG-Face file that ``weights="vggface"`` names (see :func:`emotrack.models.vggface.vggface_dirs`)."""
    path = find_vggface_file()
    if path is None:
        dirs = ", ".join(str(d) for d in vggface_dirs())
        raise WeightsError(f"weights='vggface' for {backbone!r}: none of {', '.join(VGGFACE_FILE_NAMES)} is in "
                           f"{dirs}. {_GET_VGGFACE[0].upper()}{_GET_VGGFACE[1:]} into one of these folders (or "
                           f"set ${WEIGHTS_DIR_ENV} to the folder that holds it), or pass the file's path")
    return path


def _both_names(name: str) -> str:
    """``"conv4_2 (block4_conv2)"``: a VGG-Face layer and the emotrack layer it fills, where they differ."""
    return name if EMOTRACK_NAMES[name] == name else f"{name} ({EMOTRACK_NAMES[name]})"


def load_vggface_weights(model: keras.Model, path) -> keras.Model:
    """Set VGG-Face weights from ``path`` (a keras-vggface or deepface ``.h5`` file) on ``model``:
    conv1_1 ... conv5_3 on ``block1_conv1`` ... ``block5_conv3`` (in nested models too), fc6 and fc7
    on the layers named ``fc6`` / ``fc7`` where the model has them (fc8 and any fc layer the model
    lacks are ignored and logged). Nothing is set unless every one of them fits.

    Raises:
        WeightsError: naming the file, the layers missing or of other shapes, and what to do.
    """
    path = os.fspath(path)
    try:
        tensors = read_vggface(path)
    except (OSError, ValueError) as err:
        raise WeightsError(f"VGG-Face weights file {path!r} cannot be read: {err}") from err
    plan = plan_vggface(model, tensors)
    if not plan.ok:
        problems = []
        if plan.batch_norm:
            problems.append(f"the model has batch normalisation ({', '.join(plan.batch_norm[:3])}, ...), which "
                            f"VGG-Face's VGG-16 lacks: use backbone='vgg16'")
        if plan.missing_in_model:
            problems.append(f"the model has no {', '.join(EMOTRACK_NAMES[n] for n in plan.missing_in_model)} "
                            f"(VGG-Face {', '.join(plan.missing_in_model)}): VGG-Face fits VGG-16 only, "
                            f"backbone='vgg16'")
        if plan.missing_in_file:
            full, url = next(iter(VGGFACE_URLS.items()))
            fix = (f"a file without the top (..._notop_...) has no fc layers: use the full file, {full} ({url})"
                   if set(plan.missing_in_file) <= {"fc6", "fc7"} else f"the file is incomplete; {_GET_VGGFACE}")
            problems.append(f"the file has no {', '.join(_both_names(n) for n in plan.missing_in_file)}: {fix}")
        for name, file_shape, model_shape in plan.mismatched:
            fix = ("fc6 reads the 7x7x512 pool5 map of a 224x224 input with 4,096 units: build the model with "
                   "input_shape=(224, 224, 3) and fc6_units=4096" if name in ("fc6", "fc7") else
                   "kernels must be (3, 3, in, out), channels last: a file converted for Theano / "
                   "channels-first is not read")
            problems.append(f"{_both_names(name)} is {file_shape} in the file but {model_shape} in the model: {fix}")
        raise WeightsError(f"VGG-Face weights file {path!r} does not fit {model.name!r}: " + "; ".join(problems))
    assign_plan(model, plan)
    logger.info("VGG-Face weights from %s set on %d layers of %s%s", path, len(plan.assign), model.name,
                f"; ignored: {', '.join(plan.ignored)}" if plan.ignored else "")
    return model


def load_weights_file(model: keras.Model, path: str | None) -> keras.Model:
    """Load a local weights file into ``model``, naming the file when it does not fit. A VGG-Face
    ``.h5`` file as downloaded goes to :func:`load_vggface_weights`; any other file must be saved
    from the same architecture (Keras 3 ``.weights.h5`` or legacy ``.h5``)."""
    if path is None:
        return model
    if is_vggface_file(path):
        return load_vggface_weights(model, path)
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as err:
        raise WeightsError(f"weights file {path!r} does not fit backbone {model.name!r}: {err}. It must be "
                           f"saved from the same architecture (same layers and shapes)") from err
    return model


#: The first convolution block that trains (``fine_tune_from``); "all": every layer.
FINE_TUNE_FROM = ("conv2_1", "conv3_1", "conv4_1", "conv5_1", "all")


def _block_start(backbone: keras.Model, block: int) -> int:
    """Index of the first layer of convolution block ``block`` in ``backbone.layers``."""
    prefixes = (f"block{block}_conv1", f"conv{block}_block1_")
    for index, layer in enumerate(backbone.layers):
        if layer.name.startswith(prefixes):
            return index
    raise ValueError(f"backbone {backbone.name!r} has no convolution block {block}")


def freeze_backbone(backbone: keras.Model, fine_tune_from: str = "all") -> keras.Model:
    """Freeze every layer before the block ``fine_tune_from`` ("conv2_1" ... "conv5_1") and leave
    the rest trainable; ``"all"`` makes every layer trainable. Returns ``backbone``."""
    if fine_tune_from not in FINE_TUNE_FROM:
        raise ValueError(f"fine_tune_from must be one of {', '.join(FINE_TUNE_FROM)}, not {fine_tune_from!r}")
    backbone.trainable = True
    start = 0 if fine_tune_from == "all" else _block_start(backbone, int(fine_tune_from[4]))
    for index, layer in enumerate(backbone.layers):
        layer.trainable = index >= start
    return backbone
