"""Repeats of one experiment that differ only in their seed, trained, evaluated and summarised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.config.experiments import resolve_config
from emotrack.config.run import CONFIG_FILE
from emotrack.files import atomic_path
from emotrack.training.train import train


def train_repeats(experiment: str, data_dir: str | Path, out_dir: str | Path, repeats: int,
                  config_file: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                  seed: int | None = None, overwrite: bool = False, resume: bool = False,
                  verbose: int = 2) -> dict[str, Any]:
    """Train and evaluate ``repeats`` runs that differ only in their seed (Huang et al. 2018
    average five), in ``out_dir/seed-<s>``, and write ``out_dir/repeats.json``: every run's CCC
    and, per partition, kind (raw, post-processed) and dimension, their mean and standard
    deviation (population, over runs)."""
    from emotrack.evaluation.report import evaluate

    if repeats < 1:
        raise ValueError(f"--repeats must be at least 1, not {repeats}")
    out_dir = Path(out_dir)
    config = resolve_config(experiment, config_file, overrides)
    if config["train"].get("strategy") == "multiworker":
        raise ValueError("--repeats evaluates and summarises on every machine of a multi-worker run; train each "
                         "seed with `emotrack train --seed S` on all machines and evaluate the chief's runs")
    first = seed if seed is not None else config["train"]["seed"]
    runs = {}
    for s in range(first, first + repeats):
        run = out_dir / f"seed-{s}"
        if resume and not (run / CONFIG_FILE).is_file():
            train(experiment, data_dir, run, config_file, overrides, seed=s, overwrite=overwrite, verbose=verbose)
        else:
            train(experiment, data_dir, run, *((None, (), None) if resume else (config_file, overrides, s)),
                  overwrite=overwrite, resume=resume, verbose=verbose)
        runs[s] = evaluate(run)
    summary: dict[str, Any] = {"experiment": experiment, "seeds": list(runs), "runs": {}, "summary": {}}
    for s, report in runs.items():
        summary["runs"][s] = {p: {k: {d: v[d]["CCC"] for d in report["targets"]} for k, v in entry.items()
                                  if k in ("raw", "post_processed")}
                              for p, entry in report["partitions"].items()}
    for p, entry in next(iter(summary["runs"].values())).items():
        for kind, dims in entry.items():
            for d in dims:
                values = [summary["runs"][s][p][kind][d] for s in runs]
                finite = [v for v in values if v is not None]
                summary["summary"].setdefault(p, {}).setdefault(kind, {})[d] = {
                    "mean": float(np.mean(finite)) if finite else None,
                    "std": float(np.std(finite)) if finite else None, "n": len(finite)}
    with atomic_path(out_dir / "repeats.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary
