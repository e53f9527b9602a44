"""Training: a resolved experiment config + preprocessed data -> a run folder.

The run folder holds ``config.yaml`` (the resolved config, the data folder and its manifest hash,
the seed, package versions), ``best.keras`` (the checkpoint with the lowest devel loss),
``last.keras`` and ``history.csv``.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .config import resolve_config
from .data import manifest_hash, read_manifest, training_windows
from .temporal import input_contract

CONFIG_FILE = "config.yaml"


class RunExistsError(FileExistsError):
    """The run folder already holds a run."""


def _versions() -> dict[str, str]:
    import keras
    import numpy
    import tensorflow as tf

    return {"emotrack": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def check_time_contract(config: dict[str, Any], manifest: dict[str, Any]) -> None:
    """Refuse, before anything is written, a clip length the model cannot take: the clip must be
    a multiple of the temporal pooling window k, and the pooled clip a multiple of the network's
    own temporal reduction (Huang 2018 Table 1); the Table 1 "temporal" variants need
    ``data.temporal_pooling_s``."""
    rates = sorted({s["fps"] for s in manifest["sessions"]})
    k, factor = input_contract(config, rates[0])
    window = config["data"]["window"]
    pooling = config["model"]["options"].get("pooling")
    if pooling in ("temporal", "max_tp") and not config["data"].get("temporal_pooling_s"):
        raise ValueError(f"the {pooling!r} pooling variant averages frames and labels over time: set "
                         f"data.temporal_pooling_s (Huang 2018 uses 0.2 to 0.8 s)")
    if window % (k * factor):
        raise ValueError(f"data.window={window} frames must be a multiple of {k * factor} (temporal pooling "
                         f"window {k} frames x network time reduction {factor})")


def make_optimizer(name: str, learning_rate: float):
    import keras

    optimizers = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
                  "sgd": keras.optimizers.SGD}
    if name not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}, not {name!r}")
    return optimizers[name](learning_rate=learning_rate)


def make_loss(name: str):
    import keras

    from .losses import CCCLoss

    if name == "ccc":
        return CCCLoss()
    if name == "mse":
        return keras.losses.MeanSquaredError()
    raise ValueError(f"loss must be 'ccc' or 'mse', not {name!r}")


def load_run_config(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; is {run_dir} a run folder written by `emotrack train`?")
    return yaml.safe_load(path.read_text())


def train(experiment: str, data_dir: str | Path, out_dir: str | Path, config_file: str | Path | None = None,
          overrides: list[str] | tuple[str, ...] = (), seed: int | None = None, overwrite: bool = False,
          verbose: int = 2) -> Path:
    """Train a named experiment on preprocessed data and write the run folder.

    Args:
        experiment: a name from :data:`emotrack.config.EXPERIMENTS`.
        data_dir: the ``--out`` folder of ``emotrack preprocess``.
        out_dir: the run folder to create.
        overrides: ``section.key=value`` strings applied after ``config_file``.
        seed: overrides ``train.seed``.
    Returns:
        the run folder.
    """
    import keras
    import tensorflow as tf

    from .losses import StreamingCCC
    from .models import build_model

    data_dir, out_dir = Path(data_dir).resolve(), Path(out_dir)
    config = resolve_config(experiment, config_file, overrides)
    if seed is not None:
        config["train"]["seed"] = int(seed)
    manifest = read_manifest(data_dir)
    if (out_dir / CONFIG_FILE).exists() and not overwrite:
        raise RunExistsError(f"{out_dir} already holds a run; choose another --out or pass --overwrite")
    check_time_contract(config, manifest)
    frame = manifest["frame"]
    model_cfg, data_cfg, train_cfg = config["model"], config["data"], config["train"]
    model_cfg["options"]["input_shape"] = [None, frame["height"], frame["width"], frame["channels"]]
    model_cfg["options"]["outputs"] = 2
    config["targets"] = ["arousal", "valence"]
    missing = [d for d in config["targets"] if d not in manifest["dimensions"]]
    if missing:
        raise ValueError(f"{data_dir} has no {', '.join(missing)} ratings (it has {manifest['dimensions']})")
    config["data"]["dir"] = str(data_dir)
    config["data"]["dimensions"] = list(manifest["dimensions"])
    config["data"]["manifest_sha256"] = manifest_hash(data_dir)
    # What `emotrack predict` must do to a new video's frames to match the training data.
    config["data"]["preprocessing"] = manifest["options"]
    config["versions"] = _versions()

    keras.utils.set_random_seed(train_cfg["seed"])
    if train_cfg.get("deterministic", True):
        tf.config.experimental.enable_op_determinism()
    # Built before anything is written, so a wrong model option leaves no half-made run folder.
    model = build_model(model_cfg["name"], **model_cfg["options"])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False))
    target_idx = [manifest["dimensions"].index(d) for d in config["targets"]]

    def select(x, y, w):
        return x, tf.gather(y, target_idx, axis=-1), w

    common = dict(window=data_cfg["window"], hop=data_cfg["hop"], batch_size=data_cfg["batch_size"],
                  label_delay_s=data_cfg.get("label_delay_s", 0.0), seed=train_cfg["seed"],
                  temporal_pooling_s=data_cfg.get("temporal_pooling_s"))
    train_ds = training_windows(data_dir, "train", shuffle=True, **common).map(select)
    devel_ds = training_windows(data_dir, "devel", shuffle=False, **common).map(select)

    model.compile(optimizer=make_optimizer(train_cfg["optimizer"], train_cfg["learning_rate"]),
                  loss=make_loss(train_cfg["loss"]),
                  weighted_metrics=[StreamingCCC(num_dimensions=2, name="ccc")])
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(out_dir / "best.keras"), monitor="val_loss", save_best_only=True),
        keras.callbacks.CSVLogger(str(out_dir / "history.csv")),
        keras.callbacks.TerminateOnNaN(),
    ]
    # The windows are already shuffled (seeded) in the pipeline.
    model.fit(train_ds, validation_data=devel_ds, epochs=train_cfg["epochs"], callbacks=callbacks, shuffle=False,
              verbose=verbose)
    model.save(out_dir / "last.keras")
    return out_dir
