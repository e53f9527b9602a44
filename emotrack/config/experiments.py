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

from emotrack.config.schema import ConfigError, validate

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
    return config


def _experiment(description: str, source: str, reported: dict[str, float], model: str, options: dict,
                data: dict, train: dict, postprocessing: str = "tzirakis2017") -> dict[str, Any]:
    return {"description": description, "paper": {"source": source, "reported": reported},
            "model": {"name": model, "options": options},
            "data": {"label_delay_s": 0.0, **data},
            "train": {"epochs": 60, "loss": "ccc", "seed": 0, **train},
            "evaluate": {"partitions": ["devel", "test"], "chunk": 600, "postprocessing": postprocessing}}


# Tzirakis et al. 2017, Table II (RECOLA devel CCC after 60 epochs, by sequence length) and
# Table VI (multimodal, devel in parentheses). Adam, learning rate 1e-4, batches of 25 sequences
# (speech) or 2 (visual), CCC loss, the post-processing chain of Sec. V; 25 fps, 96x96 RGB faces
# and 640 audio samples per frame.
# Sec. V: resize to 110x110 and crop back to 96x96, random brightness and saturation (ranges not
# given: +-10% of the range and 0.8-1.2 assumed).
TZIRAKIS2017_AUGMENT = {"resize_crop": 110, "brightness": 0.1, "saturation": [0.8, 1.2]}
TZIRAKIS2017_TABLE_II = {
    ("visual", 75): (0.293, 0.276), ("visual", 150): (0.363, 0.488), ("visual", 300): (0.193, 0.496),
    ("audio", 75): (0.727, 0.345), ("audio", 150): (0.744, 0.369), ("audio", 300): (0.685, 0.130),
}
for (_modality, _length), (_arousal, _valence) in TZIRAKIS2017_TABLE_II.items():
    EXPERIMENTS[f"tzirakis2017-{_modality}-seq{_length}"] = _experiment(
        f"Tzirakis 2017 {'speech' if _modality == 'audio' else 'visual'} network, sequences of {_length} frames",
        "Tzirakis et al. 2017, Table II (RECOLA devel, CCC)", {"arousal": _arousal, "valence": _valence},
        f"tzirakis2017-{_modality}", {},
        {"window": _length, "hop": _length, "batch_size": 25 if _modality == "audio" else 2,
         **({} if _modality == "audio" else {"augment": TZIRAKIS2017_AUGMENT})},
        {"optimizer": "adam", "learning_rate": 1e-4})
EXPERIMENTS["tzirakis2017-audiovisual-seq150"] = _experiment(
    "Tzirakis 2017 multimodal network (speech + visual extractors, 2 LSTMs), sequences of 150 frames",
    "Tzirakis et al. 2017, Table VI (RECOLA devel, CCC)", {"arousal": 0.731, "valence": 0.502},
    "tzirakis2017-audiovisual", {}, {"window": 150, "hop": 150, "batch_size": 2, "augment": TZIRAKIS2017_AUGMENT},
    {"optimizer": "adam", "learning_rate": 1e-4})

# Wang & Hsu 2017 (AST-Net), Table 1: loss ablations (AVEC 2012 valence devel, mean Pearson CC
# over videos). Clips of N = 50 frames every 10 frames, Siamese pairs shifted by one frame. The
# optimiser, learning rate, batch size and epochs are not given: Adam 1e-4, 8 pairs, 20 epochs.
ASTNET2017_TABLE_1 = {"La": 0.4241, "T": 0.3965, "La+T": 0.4757, "La+S": 0.4282, "La+T+S": 0.4593,
                      "La+T+G": 0.4886, "La+T+Lo": 0.4968, "La+Lo+G": 0.3843, "La+T+Lo+G": 0.5047,
                      "La+T+Lo+G+S": 0.5874}
for _terms, _cc in ASTNET2017_TABLE_1.items():
    _name = "astnet2017-full-loss" if _terms == "La+T+Lo+G+S" else f"astnet2017-{_terms.lower().replace('+', '-')}"
    _siamese = "S" in _terms.split("+")
    EXPERIMENTS[_name] = _experiment(
        f"AST-Net (VGG-16 fc6 + stacked LSTM 50/40) trained with the {_terms} loss",
        "Wang & Hsu 2017, Table 1 (AVEC 2012 valence devel, mean Pearson CC, not CCC)", {"valence": _cc},
        "astnet2017-siamese" if _siamese else "astnet2017", {},
        {"window": 50, "frame_step": 10, "hop": 50, "batch_size": 8},
        {"optimizer": "adam", "learning_rate": 1e-4, "epochs": 20, "loss": "astnet", "loss_terms": _terms},
        postprocessing="none")

# Teixeira et al. 2021, Table 2 (SEWA devel CCC): VGG-16-LSTM by frame rate (SEWA video is 50 fps;
# 10 fps takes every 5th frame), sequence length, overlap ratio and label fusion, for the dimension
# each row reports. MSE loss (Sec. 4.4); Adam with 1e-5 and batches of 16 as in Sec. 4.3 (the LSTM
# stage's own values are not given), 20 epochs assumed. Rows initialised from VGG-Face carry a
# -vggface suffix; the others start from the RAF-DB fine-tuned backbone (a weights file: set
# model.options.weights).
TEIXEIRA2021_TABLE_2 = [
    ("vggface", 10, 16, 0.2, "extremum", "valence", 0.560), ("vggface", 10, 16, 0.2, "mean", "arousal", 0.542),
    ("vggface", 50, 64, 0.2, "mean", "valence", 0.511), ("vggface", 50, 64, 0.2, "extremum", "arousal", 0.492),
    ("rafdb", 10, 64, 0.8, "mean", "valence", 0.625), ("rafdb", 10, 64, 0.8, "extremum", "arousal", 0.557),
    ("rafdb", 50, 64, 0.2, "mean", "valence", 0.568), ("rafdb", 50, 64, 0.2, "extremum", "arousal", 0.517),
]
for _init, _fps, _length, _overlap, _fusion, _dim, _ccc in TEIXEIRA2021_TABLE_2:
    _name = f"teixeira2021-vgg16-lstm-{_length}-{_overlap}-{_fusion}-{_fps}fps" + ("-vggface" if _init == "vggface" else "")
    EXPERIMENTS[_name] = _experiment(
        f"Teixeira 2021 VGG-16-LSTM, {_length} frames at {_fps} fps, overlap {_overlap}, {_fusion} label fusion, "
        f"{'VGG-Face' if _init == 'vggface' else 'RAF-DB'} initialisation",
        "Teixeira et al. 2021, Table 2 (SEWA devel, CCC)", {_dim: _ccc}, "teixeira2021-vgg16-lstm", {},
        {"window": _length, "overlap": _overlap, "frame_step": 50 // _fps, "label_fusion": _fusion,
         "batch_size": 16},
        {"optimizer": "adam", "learning_rate": 1e-5, "epochs": 20, "loss": "mse"}, postprocessing="teixeira2021")

# Teixeira et al. 2021, Table 3's two i3D configurations for every backbone (SEWA devel; Tables 4-6
# report the best configuration per backbone, CCC 0.31 to 0.41 at best, not per row here).
TEIXEIRA2021_I3D = {"c1": {"inflation": "centered", "fill": "random", "masking": False,
                           "dilation": [1, 1, 1, 1], "multiplier": 1},
                    "c2": {"inflation": "copied", "fill": "zero", "masking": True,
                           "dilation": [1, 2, 4, 8], "multiplier": 100}}
for _backbone in ("vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet50"):
    for _cname, _options in TEIXEIRA2021_I3D.items():
        EXPERIMENTS[f"teixeira2021-i3d-{_backbone.replace('_', '')}-{_cname}"] = _experiment(
            f"Teixeira 2021 i3D-CNN inflated from {_backbone}, Table 3 configuration {_cname.upper()}",
            "Teixeira et al. 2021, Tables 3-6 (SEWA devel)", {}, "teixeira2021-i3d",
            {"backbone": _backbone, **_options},
            {"window": 16, "overlap": 0.5, "frame_step": 5, "label_fusion": "mean", "batch_size": 16},
            {"optimizer": "adam", "learning_rate": 1e-5, "epochs": 20, "loss": "mse"}, postprocessing="teixeira2021")
