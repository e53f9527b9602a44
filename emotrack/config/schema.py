"""The typed schema of a run config: every section and key, declared once with its type, default and
meaning. `validate` holds a config (or a part of one: a YAML file, a ``--set`` override) against it, so
that a typo or a value of the wrong type stops with the key, where it came from and the fix, instead of
being ignored or failing later without a name.

Defaults here are those the readers apply when a key is absent; a named experiment sets most keys
itself (`emotrack.config.experiments`).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, get_args, get_origin, get_type_hints


class ConfigError(ValueError):
    """An unknown experiment, a malformed override or a config file that cannot be used."""


@dataclasses.dataclass
class ModelConfig:
    name: str = dataclasses.field(default="", metadata={"help": "the registered model (`emotrack models`)"})
    options: dict = dataclasses.field(default_factory=dict, metadata={
        "help": "the builder's keyword arguments (filters, pooling, backbone, weights, ...)"})
    pretrained: dict | None = dataclasses.field(default=None, metadata={
        "help": "option -> the pretrained weights the paper starts from; training refuses to start without "
                "them (the option set to a file, or to none: random weights, recorded as a deviation)"})
    init_from: dict | None = dataclasses.field(default=None, metadata={
        "help": "role -> run folder: build from those runs' best checkpoints (staged training)"})


@dataclasses.dataclass
class ValidationConfig:
    subjects: int = dataclasses.field(default=0, metadata={
        "help": "training subjects held out as the 'validation' partition, which then picks the checkpoint "
                "and fits post-processing in place of devel (0: none)"})
    order: str = dataclasses.field(default="last", metadata={
        "help": "which subjects: 'last' (the last ones in natural order) or 'random' (drawn with seed)"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of a 'random' draw"})
    held_out: list | None = dataclasses.field(default=None, metadata={
        "help": "the subjects held out (written by train)"})


@dataclasses.dataclass
class DataConfig:
    window: int = dataclasses.field(default=8, metadata={"help": "frames per training clip"})
    hop: int | None = dataclasses.field(default=None, metadata={"help": "session frames between clip starts"})
    overlap: float | None = dataclasses.field(default=None, metadata={
        "help": "share of a clip that the next repeats, in [0, 1) (instead of hop)"})
    frame_step: int = dataclasses.field(default=1, metadata={"help": "take every n-th frame of a session"})
    batch_size: int = dataclasses.field(default=8, metadata={"help": "clips per (global) batch"})
    label_delay_s: float = dataclasses.field(default=0.0, metadata={
        "help": "annotator delay: each frame is paired with the rating this much later"})
    temporal_pooling_s: float | None = dataclasses.field(default=None, metadata={
        "help": "average frames and labels over windows of this duration (Huang 2018)"})
    label_fusion: str = dataclasses.field(default="mean", metadata={
        "help": "one label per clip for clip-level models: mean or extremum"})
    augment: dict | None = dataclasses.field(default=None, metadata={
        "help": "clip augmentation: resize_crop (scale relative to the crop, e.g. 110/96; evaluation sees the "
                "centre crop at that scale), brightness, saturation, flip, rotation_deg"})
    crops: str | None = dataclasses.field(default=None, metadata={
        "help": "the crop set to train on (None: the data's default set)"})
    faceless: str = dataclasses.field(default="mask", metadata={
        "help": "frames without a face in training clips: mask (weight 0 in the loss) or drop (discarded "
                "before clips are cut, Teixeira 2021)"})
    gap_tolerance_s: float | None = dataclasses.field(default=None, metadata={
        "help": "with faceless=drop: the longest gap between two frames of a clip (None: any)"})
    validation: ValidationConfig = dataclasses.field(default_factory=ValidationConfig, metadata={
        "help": "a validation split taken from the training partition, by subject"})
    # Written by `emotrack train` into the run folder's config:
    dir: str | None = dataclasses.field(default=None, metadata={"help": "the preprocessed data (written by train)"})
    dimensions: list | None = dataclasses.field(default=None, metadata={
        "help": "the data's rating dimensions (written by train)"})
    manifest_sha256: str | None = dataclasses.field(default=None, metadata={
        "help": "the data manifest's hash (written by train)"})
    preprocessing: dict | None = dataclasses.field(default=None, metadata={
        "help": "the data's preprocessing options (written by train)"})


@dataclasses.dataclass
class TrainConfig:
    optimizer: str = dataclasses.field(default="adam", metadata={"help": "rmsprop, adam or sgd"})
    learning_rate: float = dataclasses.field(default=1e-4, metadata={"help": "the optimiser's learning rate"})
    epochs: int = dataclasses.field(default=10, metadata={"help": "passes over the training partition"})
    loss: str = dataclasses.field(default="ccc", metadata={"help": "ccc, mse or astnet"})
    loss_terms: str | None = dataclasses.field(default=None, metadata={
        "help": "AST-Net loss terms in Table 1's notation, e.g. La+T+Lo+G+S"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of weights, shuffling and augmentation"})
    strategy: str = dataclasses.field(default="default", metadata={"help": "default, mirrored or multiworker"})
    mixed_precision: bool | str = dataclasses.field(default=False, metadata={
        "help": "true, false, mixed_float16 or mixed_bfloat16"})
    deterministic: bool = dataclasses.field(default=True, metadata={"help": "deterministic TensorFlow ops"})
    early_stopping_patience: int | None = dataclasses.field(default=None, metadata={
        "help": "stop after this many epochs without a better devel CCC"})
    tensorboard: bool = dataclasses.field(default=True, metadata={"help": "write TensorBoard logs"})


@dataclasses.dataclass
class EvaluateConfig:
    partitions: list = dataclasses.field(default_factory=lambda: ["devel", "test"], metadata={
        "help": "partitions reported"})
    chunk: int = dataclasses.field(default=600, metadata={"help": "input steps per forward pass"})
    postprocessing: str = dataclasses.field(default="tzirakis2017", metadata={
        "help": "the post-processing chain: tzirakis2017, teixeira2021 or none"})
    hop: int | None = dataclasses.field(default=None, metadata={
        "help": "frames between clip starts in evaluation (clip-level models; None: the training hop)"})
    checkpoint: str = dataclasses.field(default="best.keras", metadata={
        "help": "the checkpoint evaluated: best.keras (best on the selection partition) or last.keras (after "
                "the last epoch)"})


@dataclasses.dataclass
class PaperConfig:
    source: str = dataclasses.field(default="", metadata={"help": "the paper, table and metric"})
    reported: dict = dataclasses.field(default_factory=dict, metadata={"help": "the paper's numbers by dimension"})


@dataclasses.dataclass
class RunConfig:
    experiment: str = dataclasses.field(default="", metadata={"help": "the named experiment"})
    description: str = dataclasses.field(default="", metadata={"help": "one line on the experiment"})
    paper: PaperConfig = dataclasses.field(default_factory=PaperConfig, metadata={"help": "what the paper reports"})
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig, metadata={"help": "the model"})
    data: DataConfig = dataclasses.field(default_factory=DataConfig, metadata={"help": "clips and batches"})
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig, metadata={"help": "the optimisation"})
    evaluate: EvaluateConfig = dataclasses.field(default_factory=EvaluateConfig, metadata={"help": "evaluation"})
    targets: list = dataclasses.field(default_factory=lambda: ["arousal", "valence"], metadata={
        "help": "the dimensions predicted"})
    versions: dict | None = dataclasses.field(default=None, metadata={"help": "package versions (written by train)"})
    deviations: list | None = dataclasses.field(default=None, metadata={
        "help": "where the run departs from its paper's protocol, e.g. declined pretrained weights (written by train)"})


#: The keys `emotrack train` writes into a run folder's config (facts of the data and the run, not
#: choices of the experiment).
WRITTEN_BY_TRAIN = ("data.dir", "data.dimensions", "data.manifest_sha256", "data.preprocessing",
                    "data.validation.held_out", "versions", "deviations")

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list",
               dict: "a mapping", type(None): "null"}


def _accepts(kind, value) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _describe(kinds) -> str:
    return " or ".join(_TYPE_NAMES.get(k, getattr(k, "__name__", str(k))) for k in kinds)


def keys(schema=RunConfig, prefix: str = "") -> list[str]:
    """Every dotted key the schema declares: ``train.epochs``, ``data.window``, ..."""
    out = []
    for field in dataclasses.fields(schema):
        hint = get_type_hints(schema)[field.name]
        out.append(prefix + field.name)
        if dataclasses.is_dataclass(hint):
            out.extend(keys(hint, f"{prefix}{field.name}."))
    return out


def validate(config: dict[str, Any], source: str, schema=RunConfig, prefix: str = "") -> None:
    """Check every key and value of ``config`` (a whole config or a part of one) against ``schema``.

    Raises:
        ConfigError: an unknown key (with the closest declared key), or a value of the wrong type
            (with the type expected), naming ``source`` (the file or option it came from).
    """
    if not isinstance(config, dict):
        where = prefix.rstrip(".") or "the config"
        raise ConfigError(f"{source}: {where} must be a mapping, not {config!r}")
    hints = get_type_hints(schema)
    names = {f.name for f in dataclasses.fields(schema)}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            full, rest = dotted, value  # the whole dotted path of a one-key override, e.g. trian.epochs
            while isinstance(rest, dict) and len(rest) == 1:
                inner, rest = next(iter(rest.items()))
                full += f".{inner}"
            close = difflib.get_close_matches(full, keys(), n=1, cutoff=0.6) or \
                difflib.get_close_matches(dotted, keys(), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else f"; {prefix.rstrip('.') or 'a config'} has " \
                                                              f"{', '.join(sorted(names))}"
            raise ConfigError(f"{source}: unknown config key {dotted!r}{hint}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            validate(value, source, hint, f"{dotted}.")
            continue
        kinds = get_args(hint) if get_origin(hint) is not None else (hint,)
        kinds = tuple(get_origin(k) or k for k in kinds)
        if not any(_accepts(k, value) for k in kinds):
            raise ConfigError(f"{source}: {dotted} must be {_describe(kinds)}, not {value!r}")


def describe(schema=RunConfig, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """``(key, type, default, meaning)`` for every leaf key of the schema, for documentation."""
    rows = []
    hints = get_type_hints(schema)
    for field in dataclasses.fields(schema):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            rows.extend(describe(hint, f"{prefix}{field.name}."))
            continue
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        rows.append((prefix + field.name, str(hint).replace("typing.", ""), default, field.metadata.get("help", "")))
    return rows


def with_defaults(config: dict[str, Any], schema=RunConfig) -> dict[str, Any]:
    """``config`` with every key the schema declares, its declared default where it is absent (a
    copy): the one place defaults come from, so readers index the config instead of repeating them.
    Keys the schema does not declare are kept as they are (a run folder written by another version)."""
    import copy

    out = copy.deepcopy(config) if config is not None else {}
    hints = get_type_hints(schema)
    for field in dataclasses.fields(schema):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            out[field.name] = with_defaults(out.get(field.name) or {}, hint)
        elif field.name not in out:
            out[field.name] = field.default_factory() if field.default_factory is not dataclasses.MISSING \
                else field.default
    return out

