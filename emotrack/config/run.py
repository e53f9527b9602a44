"""A run folder as training wrote it: its config (``config.yaml``), its checkpoints, and what the
config says about the model's input in time (the input contract: temporal pooling and the network's
own time reduction)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import yaml

from emotrack.config.schema import with_defaults
from emotrack.data.temporal import pooling_frames

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"  # the resume checkpoints: epoch-NNNN.keras with epoch-NNNN.json beside it
# The command that writes each checkpoint a run folder can hold, and when.
CHECKPOINT_WRITERS = {
    "best.keras": "`emotrack train` writes it after the first epoch whose devel CCC is a number",
    "last.keras": "`emotrack train` writes it when training ends (`emotrack train --resume` finishes a "
                  "killed run)",
    "model.keras": "`emotrack pretrain` writes it when pre-training ends",
}


class CheckpointNotFoundError(FileNotFoundError):
    """A run folder lacks the checkpoint asked for."""


class RunFolderError(ValueError):
    """A run folder whose config or checkpoint is there but cannot be read."""


def checkpoint_path(run_dir: str | Path, name: str = "best.keras") -> Path:
    """The checkpoint file ``name`` of the run folder ``run_dir``.

    Raises:
        CheckpointNotFoundError: naming the run folder, the file, the command that writes it and the
            checkpoints the folder does hold.
    """
    run_dir = Path(run_dir)
    path = run_dir / name
    if path.is_file():
        return path
    if not run_dir.is_dir():
        raise CheckpointNotFoundError(f"{path} does not exist: the run folder {run_dir} does not exist; "
                                      f"`emotrack train --out {run_dir}` writes it")
    found = sorted(p.name for p in run_dir.glob("*.keras") if not p.name.startswith("."))
    writer = CHECKPOINT_WRITERS.get(name, "`emotrack train` writes best.keras and last.keras")
    raise CheckpointNotFoundError(f"{path} does not exist ({writer}); the run folder {run_dir} holds "
                                  f"{', '.join(found) if found else 'no checkpoint'}")


def latest_checkpoint(run_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete resume checkpoint of a run: ``(model file, state)``, or None when training
    has not finished an epoch yet (a state file is written after its model file)."""
    folder = Path(run_dir) / CHECKPOINTS
    for state_file in sorted(folder.glob("epoch-*.json"), reverse=True):
        model_file = state_file.with_suffix(".keras")
        if model_file.is_file():
            return model_file, json.loads(state_file.read_text())
    return None


def load_checkpoint(run_dir: str | Path, name: str = "best.keras", compile: bool = False):
    """The Keras model of checkpoint ``name`` of a run folder (`checkpoint_path`).

    Raises:
        CheckpointNotFoundError: the file is missing.
        RunFolderError: the file is there but is not a model Keras can read (damaged or cut short).
    """
    from emotrack.models import load_model

    path = checkpoint_path(run_dir, name)
    try:
        return load_model(path, compile=compile)
    except Exception as err:  # Keras raises ValueError, OSError, zipfile.BadZipFile, KeyError, ... here
        others = sorted(p.name for p in Path(run_dir).glob("*.keras") if p.name != name and p.name[0] != ".")
        # Keras calls a cut-short file "not found"; say what it is.
        why = "not a complete .keras (zip) file" if not zipfile.is_zipfile(path) else \
            f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
        raise RunFolderError(f"checkpoint {path} cannot be read, it is damaged ({why}); "
                             + (f"use another one (--checkpoint {others[0]}) or " if others else "")
                             + f"train the run again (`emotrack train ... --out {run_dir} --overwrite`)") from None


def load_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The resolved config ``emotrack train`` wrote to ``run_dir``, every key the schema declares in
    place (a run folder of an earlier version gets the defaults of the keys it lacks); a clear error
    when there is none or it cannot be read."""
    from emotrack.config.schema import ConfigError

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; is {run_dir} a run folder written by `emotrack train`?")
    fix = f"restore it, or train the run again (`emotrack train ... --out {run_dir} --overwrite`)"
    try:
        config = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        raise RunFolderError(f"{path} is damaged: not valid YAML" + (f" (line {where.line + 1})" if where else "")
                             + f"; {fix}") from None
    if not isinstance(config, dict) or "experiment" not in config:
        raise RunFolderError(f"{path} is not a run config written by `emotrack train` (it names no experiment); "
                             f"{fix}")
    try:
        return with_defaults(config)
    except (ConfigError, AttributeError, TypeError) as err:  # a section that is not a mapping
        raise RunFolderError(f"{path} is damaged ({err}); {fix}") from None


def input_contract(config: dict, fps: float) -> tuple[int, int]:
    """What a run's model expects in time: ``(k, factor)``, the frames averaged per input step
    (``data.temporal_pooling_s`` at ``fps``) and by how much the network itself shortens the
    sequence it is given (the registry's `ModelInfo.time_reduction`: Huang et al. 2018, Table 1
    max-pooling variants; 1 for other models)."""
    from emotrack.models.registry import model_info

    k = pooling_frames(config.get("data", {}).get("temporal_pooling_s"), fps)
    model = config.get("model", {})
    if "name" not in model:  # an export contract's config names no model: no reduction of its own
        return k, 1
    return k, model_info(model["name"]).reduction(model.get("options", {}))
