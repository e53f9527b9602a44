"""Experiment configs: a named, resolved, written-down description of one training run.

A config is a nested dict with four sections: ``model`` (registry name and builder options),
``data`` (clip length, hop, batch size, annotator delay), ``train`` (optimiser, learning rate,
epochs, loss, seed) and ``evaluate``. Named experiments give the defaults; a YAML file and
``section.key=value`` overrides change them; the resolved config is written to the run folder.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from emotrack.config.schema import ConfigError, validate, with_defaults

EXPERIMENTS: dict[str, dict[str, Any]] = {}


def list_experiments() -> list[str]:
    return sorted(EXPERIMENTS)


def _merge(base: dict, update: dict, where: str) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, f"{where}{key}.")
        else:
            base[key] = value
    return base


def parse_override(text: str) -> dict[str, Any]:
    """``train.epochs=3`` -> ``{"train": {"epochs": 3}}`` (the value is read as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. train.epochs=3")
    path, raw = text.split("=", 1)
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override {text!r} names no key")
    value: Any = yaml.safe_load(raw) if raw.strip() else None
    for key in reversed(keys):
        value = {key: value}
    return value


def resolve_config(experiment: str, config_file: str | Path | None = None,
                   overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The named experiment's defaults, updated by a YAML file and then by overrides."""
    if experiment not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {experiment!r}; known: {', '.join(list_experiments())}")
    config = copy.deepcopy(EXPERIMENTS[experiment])
    config["experiment"] = experiment
    validate(config, f"experiment {experiment}")
    if config_file is not None:
        path = Path(config_file)
        try:
            update = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"config file {path} cannot be read: {err}") from err
        if not isinstance(update, dict):
            raise ConfigError(f"config file {path} must hold a YAML mapping")
        validate(update, f"config file {path}")
        _merge(config, update, "")
    for text in overrides:
        update = parse_override(text)
        validate(update, f"--set {text}")
        _merge(config, update, "")
    return with_defaults(config)


def experiment(description: str, source: str, reported: dict[str, float], model: str, options: dict,
                data: dict, train: dict, postprocessing: str = "tzirakis2017") -> dict[str, Any]:
    return {"description": description, "paper": {"source": source, "reported": reported},
            "model": {"name": model, "options": options},
            "data": {"label_delay_s": 0.0, **data},
            "train": {"epochs": 60, "loss": "ccc", "seed": 0, **train},
            "evaluate": {"partitions": ["devel", "test"], "chunk": 600, "postprocessing": postprocessing}}


#: The ``weights`` value that declines a paper's pretrained weights: the backbone starts from random
#: weights and the run's config records it as a deviation.
NO_WEIGHTS = "none"


def pretrained_weights(config: dict[str, Any]) -> list[str]:
    """Check that every pretrained weight file the paper starts from (``model.pretrained``: option ->
    what it is) is given, turn every ``none`` into random weights, and return the deviations.

    Raises:
        ConfigError: an option of ``model.pretrained`` that is not set, naming the option, what the
            paper starts from, and the two ways on.
    """
    options = config["model"].get("options", {})
    for key, what in (config["model"].get("pretrained") or {}).items():
        if options.get(key) is None:
            raise ConfigError(f"{config.get('experiment', 'this experiment')} starts from {what}, but "
                              f"model.options.{key} is not set: pass --set model.options.{key}=PATH, or "
                              f"--set model.options.{key}=none to start from random weights (recorded in the "
                              f"run's config as a deviation)")
    return declined_weights(config["model"])


def declined_weights(model: dict[str, Any], where: str = "model.options") -> list[str]:
    """Replace every ``weights: none`` in ``model``'s options (nested ones too, e.g. a multimodal
    network's ``visual_options``) by None, in place, and return one deviation line for each."""
    found = []
    options = model.get("options", {}) if where == "model.options" else model
    for key, value in list(options.items()):
        if key.endswith("weights") and isinstance(value, str) and value.lower() == NO_WEIGHTS:
            options[key] = None
            found.append(f"{where}.{key}=none: the backbone starts from random weights, not the pretrained "
                         f"ones the paper starts from")
        elif isinstance(value, dict):
            found += declined_weights(value, f"{where}.{key}")
    return found

