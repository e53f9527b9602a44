"""A run folder's config as training wrote it (``config.yaml``), and what it says about the model's
input in time (the input contract: temporal pooling and the network's own time reduction)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from emotrack.data.temporal import pooling_frames

CONFIG_FILE = "config.yaml"


def load_run_config(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; is {run_dir} a run folder written by `emotrack train`?")
    return yaml.safe_load(path.read_text())


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
