"""Training: a resolved experiment config + preprocessed data -> a run folder.

The run folder holds ``config.yaml`` (the resolved config, the data folder and its manifest hash,
the seed, package versions), ``best.keras`` (the checkpoint with the highest devel CCC),
``last.keras``, ``history.csv``, TensorBoard logs in ``logs/`` and, for ``--resume``, the newest
epoch's checkpoint in ``checkpoints/`` (model with optimiser state, and the random-number
generator states, epoch and devel CCC history).

``train.strategy`` spreads training over devices with ``tf.distribute`` and
``train.mixed_precision`` computes in 16 bits (see :mod:`emotrack.training.distribute`). A
training changes no state of TensorFlow or Keras that outlives it: the strategy is made for it, and
op determinism, the mixed-precision policy and the multi-worker changes to Keras are undone after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from emotrack import __version__
from emotrack.config.experiments import pretrained_weights, resolve_config
from emotrack.config.run import (
    CHECKPOINTS,
    CONFIG_FILE,
    checkpoint_path,
    input_contract,
    latest_checkpoint,
    load_run_config,
)
from emotrack.data.clips import run_clip_hop
from emotrack.data.pipeline import count_windows, training_windows
from emotrack.files import atomic_path, check_writable
from emotrack.models import adapt_options, model_info
from emotrack.records.manifest import manifest_hash
from emotrack.records.split import held_out_subjects, select_sessions, selection_partition
from emotrack.records.tfrecord import read_checked_manifest, verify_records
from emotrack.training.distribute import (
    WORKER_DIR_ENV,
    float32_outputs,
    is_multiworker,
    make_strategy,
    mixed_precision_policy,
    multiworker_fit,
    op_determinism,
    worker_index,
)


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


def make_loss(name: str, terms: str | None = None):
    """``ccc`` (1 - CCC), ``mse`` or ``astnet`` (Wang & Hsu 2017's composite loss; ``terms`` in
    Table 1's notation, e.g. ``La+T+Lo+G+S``, the default, or ``La`` alone)."""
    import keras

    from emotrack.models.losses import ASTNetLoss, CCCLoss

    if name == "ccc":
        return CCCLoss()
    if name == "mse":
        return keras.losses.MeanSquaredError()
    if name == "astnet":
        return ASTNetLoss.ablation(terms or "La+T+Lo+G+S")
    raise ValueError(f"loss must be 'ccc', 'mse' or 'astnet', not {name!r}")


def data_facts(manifest: dict[str, Any], targets: list[str], window: int,
               crops: str | None = None) -> dict[str, Any]:
    """What a model's options may depend on (see :class:`emotrack.models.ModelInfo`): the size of
    the crop set ``crops`` (``data.crops``; None: the data's default set) and the audio."""
    from emotrack.data.pipeline import crop_feature

    frame = crop_feature(manifest, crops)[1]
    audio = manifest.get("audio") or {}
    return {"height": frame["height"], "width": frame["width"], "channels": frame["channels"],
            "audio_samples": audio.get("samples_per_frame"), "targets": list(targets), "window": window}


def _seed_generators(model) -> list:
    """Every random-number generator state of ``model`` (dropout and friends), in layer order."""
    return [g for layer in model._flatten_layers(include_self=True, recursive=True)
            for g in getattr(layer, "_seed_generators", [])]


def _atomic_save_model(model, path: Path) -> None:
    with atomic_path(path, keep_suffix=True) as tmp:  # Keras picks the format from the suffix
        model.save(tmp)


def _atomic_write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _run_checkpoint_callback(out_dir: Path, monitor: str, patience: int | None, state: dict[str, Any] | None):
    import keras

    class RunCheckpoint(keras.callbacks.Callback):
        """After every epoch: ``best.keras`` when the devel CCC improved, a resume checkpoint
        (model with optimiser state, then the RNG states, epoch and monitor history) written
        atomically, and early stopping after ``patience`` epochs without improvement."""

        def __init__(self):
            super().__init__()
            self.values = list(state["values"]) if state else []

        def best_epoch(self) -> int | None:
            """The first epoch with the highest devel CCC (NaN never counts)."""
            best = None
            for e, v in enumerate(self.values):
                if v == v and (best is None or v > self.values[best]):
                    best = e
            return best

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(monitor)
            self.values.append(float(value) if value is not None else float("nan"))
            if self.best_epoch() == epoch:
                _atomic_save_model(self.model, out_dir / "best.keras")
            if patience is not None and self.best_epoch() is not None and epoch - self.best_epoch() >= patience:
                self.model.stop_training = True
            folder = out_dir / CHECKPOINTS
            folder.mkdir(exist_ok=True)
            stem = f"epoch-{epoch + 1:04d}"
            _atomic_save_model(self.model, folder / f"{stem}.keras")
            states = [np.asarray(g.state.value).tolist() for g in _seed_generators(self.model)]
            _atomic_write(folder / f"{stem}.json", json.dumps({
                "epochs_done": epoch + 1, "monitor": monitor, "values": self.values,
                "stopped": bool(self.model.stop_training), "seed_generator_states": states}))
            for old in folder.glob("epoch-*"):
                if not old.name.startswith(stem):
                    old.unlink()

    return RunCheckpoint()


def _truncate_history(path: Path, rows: int) -> None:
    """Keep the header and the first ``rows`` epochs of ``history.csv`` (the epochs a resume keeps), their
    line endings as Keras' CSV logger wrote them (CRLF), so that the epochs appended after match."""
    if path.is_file():
        lines = path.read_bytes().splitlines(keepends=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"".join(lines[: rows + 1]))


def holds_run(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a run that trained at least one epoch (a checkpoint). A folder with only
    the config of a run that failed before its first epoch ended holds none: a new run replaces it."""
    return (out_dir / CONFIG_FILE).exists() and (latest_checkpoint(out_dir) is not None or any(
        (out_dir / name).exists() for name in ("best.keras", "last.keras")))


def _config_identity(out_dir: Path) -> int | None:
    """The inode of the run's config.yaml (a new one each time it is written, atomically), or None."""
    try:
        return (out_dir / CONFIG_FILE).stat().st_ino
    except OSError:
        return None


@contextlib.contextmanager
def _removed_on_failure(out_dir: Path, resume: bool):
    """Undo what a new run wrote when it fails before its first epoch ended: the folder it made, or in a
    folder that was there, the config, history and logs it wrote. Nothing is touched when it failed before
    writing its config (a run being overwritten is then kept) or after a checkpoint (left for --resume)."""
    made, before = not out_dir.exists(), _config_identity(out_dir)
    try:
        yield
    except BaseException:
        wrote = _config_identity(out_dir) not in (None, before)
        if made and not wrote:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # made, but the config never reached it
        if not resume and wrote and latest_checkpoint(out_dir) is None:
            if made:
                shutil.rmtree(out_dir, ignore_errors=True)
            else:
                shutil.rmtree(out_dir / "logs", ignore_errors=True)
                for name in (CONFIG_FILE, "history.csv"):
                    (out_dir / name).unlink(missing_ok=True)
        raise


def train(experiment: str, data_dir: str | Path, out_dir: str | Path, config_file: str | Path | None = None,
          overrides: list[str] | tuple[str, ...] = (), seed: int | None = None, overwrite: bool = False,
          resume: bool = False, verbose: int = 2) -> Path:
    """Train a named experiment on preprocessed data and write the run folder.

    Args:
        experiment: a name from :data:`emotrack.config.experiments.EXPERIMENTS`.
        data_dir: the ``--out`` folder of ``emotrack preprocess``.
        out_dir: the run folder to create.
        overrides: ``section.key=value`` strings applied after ``config_file``.
        seed: overrides ``train.seed``.
        resume: continue the run in ``out_dir`` from its newest checkpoint (the model with its
            optimiser state, the random-number generator states and the epoch), with the config
            written there; the result equals that of an uninterrupted run on the same machine.
    With ``train.strategy=multiworker`` every machine of the cluster runs this with the same
    arguments and its own ``TF_CONFIG`` (see :mod:`emotrack.training.distribute`).
    Returns:
        the run folder.
    """
    import keras

    data_dir, out_dir = Path(data_dir).resolve(), Path(out_dir)
    if not resume:
        resolve_config(experiment)  # an unknown experiment is named before anything else
        check_writable(out_dir, "--out", folder=True)
    manifest = read_checked_manifest(data_dir)
    if resume:
        config = _resumed_config(experiment, data_dir, out_dir, config_file, overrides, seed)
    else:
        config = _new_config(experiment, data_dir, out_dir, manifest, config_file, overrides, seed, overwrite)
    train_cfg = config["train"]
    validation = config["data"].get("validation")
    verify_records(data_dir, select_sessions(manifest, ["train", selection_partition(validation)], validation))

    # Before TensorFlow runs anything: a multi-worker strategy joins its cluster at startup.
    strategy = make_strategy(train_cfg["strategy"])
    worker = worker_index(strategy)
    with contextlib.ExitStack() as stack:
        run_dir = out_dir  # where this process writes
        if worker is not None:
            if os.environ.get(WORKER_DIR_ENV):
                run_dir = Path(os.environ[WORKER_DIR_ENV]) / f"worker-{worker}"
            else:
                run_dir = Path(stack.enter_context(
                    tempfile.TemporaryDirectory(prefix=f"emotrack-worker-{worker}-")))
        keras.utils.set_random_seed(train_cfg["seed"])
        stack.enter_context(op_determinism(train_cfg["deterministic"]))
        checkpoint = latest_checkpoint(out_dir) if resume else None
        with _removed_on_failure(run_dir, resume):
            _fit(config, manifest, data_dir, run_dir, strategy, checkpoint, resume, verbose)
    return out_dir


def _resumed_config(experiment: str, data_dir: Path, out_dir: Path, config_file, overrides, seed) -> dict[str, Any]:
    """The config of the run in ``out_dir``, after checking that it is a run of ``experiment`` on the
    data in ``data_dir`` and that nothing asks to change it."""
    config = load_run_config(out_dir)
    if config["experiment"] != experiment:
        raise ValueError(f"{out_dir} is a run of {config['experiment']!r}, not {experiment!r}")
    if config["data"]["manifest_sha256"] != manifest_hash(data_dir):
        raise ValueError(f"the data in {data_dir} is not the data {out_dir} was trained on (manifest "
                         f"hash differs); resume with --data {config['data']['dir']}")
    if config_file is not None or overrides or seed is not None:
        raise ValueError("--resume continues a run with the config in its folder; --config, --set, --seed, "
                         "--strategy and --mixed-precision cannot change it")
    return config


def _new_config(experiment: str, data_dir: Path, out_dir: Path, manifest: dict[str, Any], config_file, overrides,
                seed, overwrite: bool) -> dict[str, Any]:
    """The resolved config of a new run of ``experiment`` on ``data_dir``, with what the run folder
    records beside it (data folder and manifest hash, held-out subjects, preprocessing, versions)."""
    config = resolve_config(experiment, config_file, overrides)
    if seed is not None:
        config["train"]["seed"] = int(seed)
    if holds_run(out_dir) and not overwrite:
        raise RunExistsError(f"{out_dir} already holds a run; choose another --out, pass --overwrite, or "
                             f"--resume to continue it")
    check_time_contract(config, manifest)
    deviations = pretrained_weights(config)  # refuses to start from random weights without a word
    info = model_info(config["model"]["name"])
    if info.target == "class":
        raise ValueError(f"{config['model']['name']} classifies discrete emotions in single images (the "
                         f"2D pre-training stage); it is not trained on continuous ratings")
    config.setdefault("targets", ["arousal", "valence"])
    missing = [d for d in config["targets"] if d not in manifest["dimensions"]]
    if missing:
        raise ValueError(f"{data_dir} has no {', '.join(missing)} ratings (it has {manifest['dimensions']})")
    config["model"]["options"] = adapt_options(
        config["model"]["name"], config["model"]["options"],
        data_facts(manifest, config["targets"], config["data"]["window"], config["data"].get("crops")))
    config["data"]["dir"] = str(data_dir)
    if held_out_subjects(manifest, config["data"].get("validation")):  # the split, written down
        config["data"]["validation"]["held_out"] = held_out_subjects(manifest, config["data"]["validation"])
    config["deviations"] = deviations
    config["data"]["dimensions"] = list(manifest["dimensions"])
    config["data"]["manifest_sha256"] = manifest_hash(data_dir)
    # What `emotrack predict` must do to a new video's frames to match the training data.
    config["data"]["preprocessing"] = manifest["options"]
    config["versions"] = _versions()
    return config


def _fit(config: dict[str, Any], manifest: dict[str, Any], data_dir: Path, run_dir: Path, strategy,
         checkpoint: tuple[Path, dict[str, Any]] | None, resume: bool, verbose: int) -> None:
    """Build or restore the model under ``strategy``, write the config to ``run_dir`` and train it
    there (see :func:`train`)."""
    import keras
    import tensorflow as tf

    from emotrack.models import load_model
    from emotrack.models.losses import StreamingCCC

    model_cfg, data_cfg, train_cfg = config["model"], config["data"], config["train"]
    initial_epoch, state = 0, None
    mixed = train_cfg["mixed_precision"]
    with strategy.scope(), mixed_precision_policy(mixed):
        if checkpoint is not None:
            model_file, state = checkpoint
            model = load_model(model_file, compile=True)
            generators = _seed_generators(model)
            if len(generators) != len(state["seed_generator_states"]):
                raise ValueError(f"{model_file} does not match its state file (random-number generators differ)")
            for g, value in zip(generators, state["seed_generator_states"]):
                g.state.assign(np.asarray(value, dtype=g.state.dtype))
            initial_epoch = state["epochs_done"]
        else:
            # Built before anything is written, so a wrong model option leaves no half-made run folder.
            model = build_stage_model(model_cfg)
            if mixed:
                model = float32_outputs(model)
            model.compile(optimizer=make_optimizer(train_cfg["optimizer"], train_cfg["learning_rate"]),
                          loss=make_loss(train_cfg["loss"], train_cfg.get("loss_terms")),
                          weighted_metrics=[StreamingCCC(num_dimensions=len(config["targets"]), name="ccc")])
            if resume:  # killed before the first epoch ended: start again from the same seed
                shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)
    if not resume:  # a run replaced (--overwrite) or one that failed before its first epoch ended
        for stale in (CHECKPOINTS, "logs"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(run_dir / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))
    target_idx = [manifest["dimensions"].index(d) for d in config["targets"]]

    def select(x, y, w):
        return x, tf.gather(y, target_idx, axis=-1), w

    epochs = int(train_cfg["epochs"])
    info = model_info(model_cfg["name"])
    hop, step = run_clip_hop(data_cfg), int(data_cfg["frame_step"])
    common = dict(window=data_cfg["window"], hop=hop, batch_size=data_cfg["batch_size"],
                  label_delay_s=data_cfg["label_delay_s"], seed=train_cfg["seed"],
                  temporal_pooling_s=data_cfg["temporal_pooling_s"], frame_step=step,
                  target=info.target, label_fusion=data_cfg["label_fusion"], inputs=info.inputs,
                  crops=data_cfg["crops"], validation=data_cfg["validation"], faceless=data_cfg["faceless"],
                  gap_tolerance_s=data_cfg["gap_tolerance_s"])
    # The partition that picks the checkpoint: devel, or the training subjects a validation split holds out.
    choose = selection_partition(data_cfg.get("validation"))

    def batches(partition):
        """Batches per pass over ``partition`` and whether its last, smaller batch is left out: with
        R replicas a batch of fewer than R clips would leave a replica an empty share, on which
        TensorFlow's convolutions fail, so such a batch is dropped."""
        windows = count_windows(data_dir, partition, data_cfg["window"], hop, step, info.target,
                                validation=data_cfg.get("validation"), faceless=data_cfg["faceless"],
                                gap_tolerance_s=data_cfg["gap_tolerance_s"])
        n, rest = divmod(windows, data_cfg["batch_size"])
        drop = 0 < rest < strategy.num_replicas_in_sync
        if drop and verbose:
            print(f"{partition}: the last {rest} clip(s) of each pass are left out, fewer than the "
                  f"{strategy.num_replicas_in_sync} replicas")
        n += bool(rest) and not drop
        if n == 0:
            raise ValueError(f"{data_dir}: no {partition} session is as long as one clip (data.window="
                             f"{data_cfg['window']} frames x data.frame_step={step}); set a shorter data.window")
        return n, drop

    # Known lengths, so that Keras neither guesses nor warns at the end of the data.
    (steps, drop_train), (devel_steps, drop_devel) = batches("train"), batches(choose)
    train_ds = training_windows(data_dir, "train", shuffle=True, epochs=(initial_epoch, epochs),
                                augment=data_cfg.get("augment"), drop_remainder=drop_train, **common).map(
        select).apply(tf.data.experimental.assert_cardinality(steps * max(epochs - initial_epoch, 0)))
    devel_ds = training_windows(data_dir, choose, shuffle=False, drop_remainder=drop_devel, **common).map(
        select).apply(tf.data.experimental.assert_cardinality(devel_steps))
    # Every worker reads all clips and takes its share of each batch, so that the batches and the
    # epochs' order are those of one worker.
    sharding = tf.data.Options()
    sharding.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_ds, devel_ds = train_ds.with_options(sharding), devel_ds.with_options(sharding)

    patience = train_cfg.get("early_stopping_patience")
    _truncate_history(run_dir / "history.csv", initial_epoch)
    # The epoch's history row is written (and flushed) before its resume checkpoint, so that a run killed
    # between the two never resumes from a checkpoint whose epoch history.csv lacks.
    callbacks = [
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=initial_epoch > 0),
        _run_checkpoint_callback(run_dir, "val_ccc", patience, state),
        keras.callbacks.TerminateOnNaN(),
    ]
    if train_cfg["tensorboard"]:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False,
                                                     profile_batch=0))
    if initial_epoch < epochs and not (state and state.get("stopped")):
        # Clips are shuffled per epoch in the pipeline (seeded by the epoch's index).
        with strategy.scope(), (multiworker_fit(model) if is_multiworker(strategy) else contextlib.nullcontext()):
            model.fit(train_ds, validation_data=devel_ds, epochs=epochs, initial_epoch=initial_epoch,
                      steps_per_epoch=steps, callbacks=callbacks, shuffle=False, verbose=verbose)
    _atomic_save_model(model, run_dir / "last.keras")


def build_stage_model(model_cfg: dict[str, Any]):
    """The run's model: built from its options, or, with ``model.init_from`` (role -> run folder,
    e.g. ``{audio: runs/a, visual: runs/v}``), from the best checkpoints of those earlier runs
    (staged training: Tzirakis et al. 2017, Sec. III-D)."""
    from emotrack.models import build_model, load_model

    init_from = model_cfg.get("init_from")
    if not init_from:
        return build_model(model_cfg["name"], **model_cfg["options"])
    info = model_info(model_cfg["name"])
    if info.from_models is None:
        raise ValueError(f"{model_cfg['name']} is not built from earlier runs; remove model.init_from")
    models = {}
    for role, run in init_from.items():
        try:
            path = checkpoint_path(run, "best.keras")
        except FileNotFoundError as err:
            raise type(err)(f"model.init_from.{role} must be a trained run folder: {err}") from None
        models[role] = load_model(path)
    return info.from_models(models, model_cfg["options"])


