"""Pretrained weights for backbones: by name where Keras knows them, or from a local file.

``weights`` options across the model zoo take one of:

- ``None``: random initialisation (what the tests use; nothing is read or downloaded);
- ``"imagenet"``: the ImageNet weights of ``keras.applications`` (VGG-16, ResNet-50), downloaded
  by Keras into ``~/.keras/models`` the first time a model is *built* with them (never at import);
- a path to a ``.weights.h5`` (Keras 3) or legacy ``.h5`` file saved from the same backbone
  (VGG-Face converted weights, RAF-DB pre-training, a user's own checkpoint).

Anything else, a missing file or a failed download is a :class:`WeightsError` that says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras


class WeightsError(ValueError):
    """Weights that cannot be used: an unknown name, a missing file or a failed download."""


def weights_source(weights, backbone: str, known: tuple[str, ...] = ()) -> tuple[str | None, str | None]:
    """Split a ``weights`` option into ``(name, path)``; one of them at most is not None.

    Args:
        weights: None, a name from ``known`` ("imagenet") or a path.
        backbone: the backbone's name, for messages.
        known: the weight names ``keras.applications`` offers for this backbone.
    """
    if weights is None:
        return None, None
    text = os.fspath(weights)
    if text in ("imagenet",):
        if text not in known:
            raise WeightsError(f"no {text} weights are known for {backbone!r}"
                               + (f" (only {', '.join(known)})" if known else "")
                               + "; pass the path of a local .weights.h5 file saved from this backbone")
        return text, None
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


def load_weights_file(model: keras.Model, path: str | None) -> keras.Model:
    """Load a local weights file into ``model``, naming the file when it does not fit."""
    if path is None:
        return model
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as err:
        raise WeightsError(f"weights file {path!r} does not fit backbone {model.name!r}: {err}. It must be "
                           f"saved from the same architecture (same layers and shapes)") from err
    return model
