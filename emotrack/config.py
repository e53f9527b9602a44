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

# Huang et al. 2018, Table 1 variants: (pooling option, clip length in frames at 10 fps, temporal
# pooling duration in s). Clips hold 8 network steps in every variant. Fig. 4: the best pooling
# duration is 0.8 s for arousal and 0.6 s for valence (0.4 / 0.2 s combined with max pooling); one
# network predicts both here, so the valence value is taken (override: data.temporal_pooling_s).
HUANG2018_VARIANTS = {
    "": ("original", 8, None),
    "-max": ("max", 8, None),
    "-tp": ("temporal", 48, 0.6),
    "-max-tp": ("max_tp", 16, 0.2),
}
# Tables 2 and 3 (SEWA devel, CCC arousal / valence), by model and variant.
HUANG2018_REPORTED = {
    ("3dconvnet", ""): (0.429, 0.524), ("3dconvnet", "-max"): (0.461, 0.559),
    ("3dconvnet", "-tp"): (0.558, 0.656), ("3dconvnet", "-max-tp"): (0.527, 0.505),
    ("convlstm", ""): (0.441, 0.504), ("convlstm", "-max"): (0.456, 0.532),
    ("convlstm", "-tp"): (0.583, 0.654), ("convlstm", "-max-tp"): (0.546, 0.624),
}


def _huang2018(kind: str, label: str, table: str, variant: str) -> dict[str, Any]:
    """Huang et al. 2018 with one pooling variant of Table 1, sized for a CPU: the paper's filter
    counts are unknown (see emotrack/models/huang2018.py), these are small; the paper trains up to
    100 epochs with RMSprop (Sec. 4.1), the CPU default is 9."""
    pooling, window, pooling_s = HUANG2018_VARIANTS[variant]
    arousal, valence = HUANG2018_REPORTED[(kind, variant)]
    data = {"window": window, "hop": window, "batch_size": 8, "label_delay_s": 2.0}
    if pooling_s:
        data["temporal_pooling_s"] = pooling_s
    return {
        "description": f"Huang 2018 {label}, Table 1 '{pooling}' pooling, CPU size",
        "paper": {"source": f"Huang et al. 2018, {table} (SEWA devel, CCC)",
                  "reported": {"arousal": arousal, "valence": valence}},
        "model": {"name": f"huang2018-{kind}",
                  "options": {"pooling": pooling, "filters": [8, 16, 16, 16], "dense_units": 64,
                              "dropout": 0.5}},
        "data": data,
        "train": {"optimizer": "rmsprop", "learning_rate": 0.001, "epochs": 9, "loss": "ccc", "seed": 0},
        "evaluate": {"partitions": ["devel", "test"], "chunk": 600, "postprocessing": "tzirakis2017"},
    }


EXPERIMENTS: dict[str, dict[str, Any]] = {}
for _variant in HUANG2018_VARIANTS:
    EXPERIMENTS[f"huang2018-convlstm{_variant}"] = _huang2018(
        "convlstm", "ConvLSTM (3 Conv3D + ConvLSTM2D)", "Table 3", _variant)
    EXPERIMENTS[f"huang2018-3dconvnet{_variant}"] = _huang2018(
        "3dconvnet", "3D ConvNet (4 Conv3D)", "Table 2", _variant)


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
