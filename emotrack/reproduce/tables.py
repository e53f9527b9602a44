"""A paper's results tables filled with a reproduction's numbers: ``tableN.csv`` (one row per cell)
and ``tableN.md`` (laid out like the paper's table, every cell "ours mean +- sd (paper)").

Every cell is computed from the runs' ``predictions.csv`` (written by `emotrack evaluate`) with the
cell's own metric and aggregation, so a cell that the paper reports as the mean Pearson CC over
videos is that, not the CCC of the concatenated sessions.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotrack.config.papers import Cell, Paper, Table
from emotrack.evaluation.metrics import compute_metrics
from emotrack.evaluation.report import fitted_on
from emotrack.files import atomic_path

PREDICTIONS = "predictions.csv"
#: A cell whose dimension is ``average:arousal,valence`` holds the mean of those dimensions' values.
AVERAGE = "average:"


def cell_value(predictions: pd.DataFrame, cell: Cell) -> float | None:
    """One run's number for ``cell`` from its ``predictions.csv`` table.

    Raises:
        ValueError: the run holds no prediction for the cell's partition, kind or dimension.
    """
    if cell.dimension.startswith(AVERAGE):  # e.g. AST-Net's "Average" column: the mean over dimensions
        values = [cell_value(predictions, dataclasses.replace(cell, dimension=d))
                  for d in cell.dimension[len(AVERAGE):].split(",")]
        return None if any(v is None for v in values) else float(np.mean(values))
    rows = predictions[predictions["partition"] == cell.partition]
    column = f"{'pred' if cell.kind == 'raw' else 'post'}_{cell.dimension}"
    if rows.empty or column not in rows or f"gold_{cell.dimension}" not in rows:
        raise ValueError(f"no {cell.kind} {cell.dimension} predictions of partition {cell.partition!r}")
    golds, preds, masks = [], [], []
    for _, session in rows.groupby("session", sort=False):
        golds.append(session[f"gold_{cell.dimension}"].to_numpy(float))
        preds.append(session[column].to_numpy(float))
        masks.append(session["face_present"].to_numpy(bool))
    if cell.aggregate == "concatenated":
        return compute_metrics(golds, preds, masks, dimensions=[cell.dimension])[cell.dimension][cell.metric]
    values = [v for v in (compute_metrics([g], [p], [m], dimensions=[cell.dimension])[cell.dimension][cell.metric]
                          for g, p, m in zip(golds, preds, masks)) if v is not None]
    if not values:
        return None
    return float({"mean": np.mean, "max": np.max, "min": np.min}[cell.aggregate](values))


def summarise(values: list[float | None]) -> dict[str, Any]:
    """Mean and (population) standard deviation over repeats; None where no repeat gave a number."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(np.mean(finite)), "sd": float(np.std(finite)), "n": len(finite)}


def stage_accuracy(stage_dir: Path) -> float | None:
    """A pre-training stage's test accuracy in percent, from its ``report.json``."""
    accuracy = json.loads((Path(stage_dir) / "report.json").read_text()).get("test_accuracy")
    return None if accuracy is None else 100.0 * float(accuracy)


QUOTED = "(quoted from the paper)"
#: The label of a post-processed cell on the partition its chain was fitted on.
IN_SAMPLE = "in-sample: post-processing fitted on this partition"
NOT_RUN = "not run"


def fill_table(table: Table, runs: dict[str, list[Path]], stages: dict[str, Path] | None = None,
               unavailable: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per cell: where it sits, what it measures, ours over the repeats and the paper's.

    Args:
        runs: training name -> its run folders (one per repeat), each evaluated.
        stages: pre-training stage name -> its folder (for ``accuracy`` cells).
        unavailable: training or stage name -> why it was not run (the cell's ``note``).
    """
    cache: dict[Path, pd.DataFrame] = {}
    unavailable = unavailable or {}
    rows = []
    for cell in table.cells:
        values: list[float | None] = []
        in_sample = False  # post-processed on the partition the chain was fitted on
        source = cell.stage or cell.training
        if cell.stage is not None and cell.stage in (stages or {}):
            values.append(stage_accuracy(stages[cell.stage]))
        for run in runs.get(cell.training, []) if cell.training else []:
            if run not in cache:
                cache[run] = pd.read_csv(run / PREDICTIONS)
            values.append(cell_value(cache[run], cell))
            in_sample |= cell.kind == "post_processed" and cell.partition == fitted_on(run)
        stats = summarise(values) if source else {"mean": None, "sd": None, "n": 0}
        rows.append({"table": table.name, "row": cell.row, "column": cell.column, "dimension": cell.dimension,
                     "metric": cell.metric, "aggregate": cell.aggregate, "partition": cell.partition,
                     "kind": cell.kind, "training": source or QUOTED,
                     "ours_mean": stats["mean"], "ours_sd": stats["sd"], "repeats": stats["n"],
                     "paper": cell.paper, "in_sample": in_sample,
                     "note": f"{NOT_RUN}: {unavailable[source]}" if source in unavailable else ""})
    return pd.DataFrame(rows)


def _number(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"


def table_markdown(table: Table, filled: pd.DataFrame) -> str:
    """The table as in the paper, each cell ``ours mean +- sd (paper: x)``, and the metric named."""
    metrics = sorted(set(filled["metric"]))
    lines = [f"### {table.caption}", "",
             f"Each cell: ours, mean +- sd over the repeats (paper). Metric: {', '.join(metrics)}; "
             f"partition: {', '.join(sorted(set(filled['partition'])))}.", "",
             "| | " + " | ".join(table.columns) + " |", "|---" * (len(table.columns) + 1) + "|"]
    for row in table.rows:
        cells = []
        for column in table.columns:
            hit = filled[(filled["row"] == row) & (filled["column"] == column)]
            if hit.empty:
                cells.append("")
                continue
            c = hit.iloc[0]
            paper = _number(c["paper"] if pd.notna(c["paper"]) else None)
            if c["training"] == QUOTED:
                cells.append(f"(paper: {paper}, quoted)")
                continue
            if isinstance(c["note"], str) and c["note"]:
                cells.append(f"{NOT_RUN} (paper: {paper})")
                continue
            mean = c["ours_mean"] if pd.notna(c["ours_mean"]) else None
            sd = c["ours_sd"] if pd.notna(c["ours_sd"]) else None
            label = "" if (c["metric"] == "CCC" and c["aggregate"] == "concatenated") or c["metric"] == "accuracy" \
                else f" [{c['metric']}, {c['aggregate']} over sessions]"
            if pd.notna(c.get("in_sample")) and bool(c.get("in_sample")):
                label += f" [{IN_SAMPLE}]"
            cells.append(f"{_number(mean)} +- {_number(sd)} (paper: {paper}){label}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(paper: Paper, runs: dict[str, list[Path]], out_dir: Path,
                 stages: dict[str, Path] | None = None) -> dict[str, pd.DataFrame]:
    """``tableN.csv`` and ``tableN.md`` for every results table of ``paper`` in ``out_dir``."""
    filled = {}
    for table in paper.tables:
        frame = fill_table(table, runs, stages, paper.unavailable())
        with atomic_path(out_dir / f"{table.name}.csv") as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6f")
        with atomic_path(out_dir / f"{table.name}.md") as tmp:
            tmp.write_text(table_markdown(table, frame))
        filled[table.name] = frame
    return filled
