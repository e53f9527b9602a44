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

def _huang2018(kind: str, label: str, table: str, reported: dict[str, float]) -> dict[str, Any]:
    """Huang et al. 2018 with the "Original" pooling of Table 1, sized for a CPU: the paper's filter
    counts are unknown (see emotrack/models/huang2018.py), these are small."""
    return {
        "description": f"Huang 2018 {label}, Table 1 'Original' pooling, CPU size",
        "paper": {"source": f"Huang et al. 2018, {table} (SEWA devel, CCC)", "reported": reported},
        "model": {"name": f"huang2018-{kind}",
                  "options": {"pooling": "original", "filters": [8, 16, 16, 16], "dense_units": 64,
                              "dropout": 0.5}},
        "data": {"window": 8, "hop": 8, "batch_size": 8, "label_delay_s": 2.0},
        "train": {"optimizer": "rmsprop", "learning_rate": 0.001, "epochs": 9, "loss": "ccc", "seed": 0},
        "evaluate": {"partitions": ["devel", "test"], "chunk": 600, "postprocessing": "tzirakis2017"},
    }


EXPERIMENTS: dict[str, dict[str, Any]] = {
    "huang2018-convlstm": _huang2018("convlstm", "ConvLSTM (3 Conv3D + ConvLSTM2D)", "Table 3",
                                     {"arousal": 0.441, "valence": 0.504}),
    "huang2018-3dconvnet": _huang2018("3dconvnet", "3D ConvNet (4 Conv3D)", "Table 2",
                                      {"arousal": 0.429, "valence": 0.524}),
}


class ConfigError(ValueError):
    """An unknown experiment, a malformed override or a config file that cannot be used."""


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
    if config_file is not None:
        path = Path(config_file)
        try:
            update = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"config file {path} cannot be read: {err}") from err
        if not isinstance(update, dict):
            raise ConfigError(f"config file {path} must hold a YAML mapping")
        _merge(config, update, "")
    for text in overrides:
        _merge(config, parse_override(text), "")
    return config
