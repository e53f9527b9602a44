"""The model registry: every architecture is looked up by name and built from keyword options.

>>> from emotrack.models import build_model, list_models
>>> model = build_model("huang2018-convlstm", filters=(4, 4, 4, 4), dense_units=8)
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import keras
import numpy as np

_REGISTRY: dict[str, Callable[..., keras.Model]] = {}


def register(name: str):
    """Decorator: register a builder ``fn(**options) -> keras.Model`` under ``name``."""

    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def build_model(name: str, **options) -> keras.Model:
    """Build the registered model ``name`` with ``options`` (the builder's keyword arguments)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**options)


def describe_model(name: str) -> str:
    """One line on a registered model: its builder's docstring, else its module's (the paper)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    fn = _REGISTRY[name]
    doc = fn.__doc__ or sys.modules[fn.__module__].__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def count_parameters(model: keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameters (weights) of a built model."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = sum(int(np.prod(w.shape)) for w in model.weights)
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def load_model(path, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` file written by emotrack, with emotrack's custom layers and losses known."""
    _load_builtin()
    from .. import losses  # noqa: F401  (registers CCCLoss and friends for compiled files)

    return keras.models.load_model(path, compile=compile)


def _load_builtin() -> None:
    from . import astnet2017, huang2018, teixeira2021, tzirakis2017  # noqa: F401  (register on import)
