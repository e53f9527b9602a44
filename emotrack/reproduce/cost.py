"""What a reproduction costs: seconds per training step measured on the machine at hand, and the
time of the whole protocol estimated from them (and, for one GPU, from step times measured on a
GPU and kept in ``gpu_steps.json`` beside this file, written by ``benchmarks/bench_steps.py``).

The step is measured on random clips of the experiment's batch shape at the data's input size, so
it needs only Keras: the same code measures on TensorFlow here and on JAX on a GPU machine.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

GPU_STEPS = Path(__file__).with_name("gpu_steps.json")


def _batch(model, config: dict[str, Any], fps: float, rng: np.random.Generator):
    """Random inputs and targets of the experiment's training batch shape."""
    from emotrack.data.temporal import pooling_frames

    data = config["data"]
    steps = int(data["window"]) // pooling_frames(data.get("temporal_pooling_s"), fps)
    inputs = []
    for tensor in model.inputs:
        shape = [int(data["batch_size"]) if i == 0 else (steps if s is None else s)
                 for i, s in enumerate(tensor.shape)]
        inputs.append(rng.uniform(0, 255, size=shape).astype("float32"))
    x = inputs if len(inputs) > 1 else inputs[0]
    y = rng.uniform(-1, 1, size=tuple(model(x, training=False).shape)).astype("float32")
    return x, y


def _loss(config: dict[str, Any]):
    from emotrack.models.losses import ASTNetLoss, CCCLoss, MSELoss

    name = config["train"]["loss"]
    if name == "astnet":
        return ASTNetLoss.ablation(config["train"].get("loss_terms") or "La+T+Lo+G+S")
    return MSELoss() if name == "mse" else CCCLoss()


def measure_step(config: dict[str, Any], facts: dict[str, Any], steps: int = 3, seed: int = 0) -> dict[str, Any]:
    """Median seconds per training step of ``config``'s model (random weights), after two warm-up
    steps.

    Args:
        config: a resolved experiment config.
        facts: the data facts a model adapts to (``height``, ``width``, ``channels``,
            ``audio_samples``, ``targets``, ``window``; see `emotrack.models.ModelInfo`), and ``fps``.
    """
    import keras

    from emotrack.models.registry import adapt_options, build_model

    options = adapt_options(config["model"]["name"], dict(config["model"]["options"]), facts)
    for key in [k for k in options if k.endswith("weights")]:  # random: the step time does not depend on them
        options[key] = None
    model = build_model(config["model"]["name"], **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=_loss(config))
    x, y = _batch(model, config, float(facts.get("fps", 10.0)), np.random.default_rng(seed))
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return {"seconds_per_step": statistics.median(times[2:]), "batch_size": int(config["data"]["batch_size"]),
            "window": int(config["data"]["window"]), "parameters": int(model.count_params())}


def gpu_steps() -> dict[str, Any]:
    """The GPU step times kept with emotrack (``{"device", "backend", "steps": {experiment: {...}}}``),
    or an empty table."""
    if not GPU_STEPS.is_file():
        return {"device": None, "steps": {}}
    return json.loads(GPU_STEPS.read_text())


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
