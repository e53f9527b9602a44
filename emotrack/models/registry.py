"""The model registry: every architecture is looked up by name and built from keyword options, and
carries what the rest of the pipeline must know about it (`ModelInfo`), so that nothing outside a
model's own file tests its name. A model file registers its builders on import; every module of this
package is imported when the registry is first used, so adding a model is adding its file.

>>> from emotrack.models import build_model, list_models
>>> model = build_model("huang2018-convlstm", filters=(4, 4, 4, 4), dense_units=8)
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np


@dataclass(frozen=True)
class ModelInfo:
    """What the training pipeline must know about a registered model.

    Attributes:
        inputs: the model's inputs by name: ``video`` (face crops, (B, T, H, W, C)) and/or
            ``audio`` (the samples of each frame, (B, T, S)).
        target: ``frame`` (a prediction per input step), ``clip`` (one per clip), ``siamese``
            (pairs of clips, (B, 2, T, D)) or ``class`` (discrete emotions of single images, not a
            continuous model).
        adapt: ``adapt(options, data) -> options`` fills the options that follow from the data
            (input size, number of outputs); ``data`` has ``height``, ``width``, ``channels``,
            ``audio_samples`` (per frame, or None) and ``targets`` (dimension names).
        from_models: ``from_models(models, options) -> keras.Model`` builds the model from
            trained models of an earlier stage (``models`` by role, e.g. ``audio``, ``visual``),
            for staged training (``model.init_from`` in a config).
        crops: the crop set of `emotrack.faces.crop.CROP_SPECS` that the paper feeds the model (the
            set to preprocess with, ``emotrack preprocess --crops``); None for audio-only models.
        time_reduction: ``time_reduction(options) -> int``, by how much the network itself shortens
            the sequence it is given (Huang 2018's max-pooling variants); None: it keeps its length.
    """

    inputs: tuple[str, ...] = ("video",)
    target: str = "frame"
    adapt: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    from_models: Callable[..., keras.Model] | None = None
    crops: str | None = None
    time_reduction: Callable[[dict[str, Any]], int] | None = None

    @property
    def needs_audio(self) -> bool:
        """Whether the model takes the sound track (its corpus must hold usable audio)."""
        return "audio" in self.inputs

    def reduction(self, options: dict[str, Any]) -> int:
        """The network's own time reduction for these builder options (1: none)."""
        return int(self.time_reduction(options)) if self.time_reduction else 1


_REGISTRY: dict[str, Callable[..., keras.Model]] = {}
_INFO: dict[str, ModelInfo] = {}


def register(name: str, *, inputs: tuple[str, ...] = ("video",), target: str = "frame",
             adapt: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
             from_models: Callable[..., keras.Model] | None = None, crops: str | None = None,
             time_reduction: Callable[[dict[str, Any]], int] | None = None):
    """Decorator: register a builder ``fn(**options) -> keras.Model`` under ``name``, with what
    the pipeline must know about it (see :class:`ModelInfo`)."""

    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = fn
        _INFO[name] = ModelInfo(tuple(inputs), target, adapt, from_models, crops, time_reduction)
        return fn

    return wrap


def model_info(name: str) -> ModelInfo:
    _load_builtin()
    if name not in _INFO:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _INFO[name]


def adapt_options(name: str, options: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``options`` completed with what follows from the data (see :class:`ModelInfo`)."""
    info = model_info(name)
    options = dict(options)
    return info.adapt(options, data) if info.adapt else options


def video_options(options: dict[str, Any], data: dict[str, Any], rgb: bool = False,
                  free_time: bool = True) -> dict[str, Any]:
    """The common adapter: ``input_shape`` from the crops (with a free time axis for
    sequence models) and ``outputs`` from the targets; ``rgb`` models refuse gray crops."""
    if rgb and data["channels"] != 3:
        raise ValueError(f"this model takes RGB faces but the data holds {data['channels']}-channel crops; "
                         f"preprocess with RGB crops (`emotrack preprocess --color`)")
    shape = [data["height"], data["width"], data["channels"]]
    options["input_shape"] = ([None] if free_time else []) + shape
    options["outputs"] = len(data["targets"])
    return options


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
    from emotrack.models import losses  # noqa: F401  (registers CCCLoss and friends for compiled files)

    return keras.models.load_model(path, compile=compile)


def _load_builtin() -> None:
    """Import every model file of this package once (each registers its builders on import)."""
    package = __name__.rsplit(".", 1)[0]
    for module in pkgutil.iter_modules(sys.modules[package].__path__):
        importlib.import_module(f"{package}.{module.name}")
