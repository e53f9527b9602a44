"""Runs side by side: the CCC each run reached (raw and post-processed, devel and test) next to
the number its paper reports for the experiment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from emotrack.config.experiments import EXPERIMENTS
from emotrack.config.run import load_run_config
from emotrack.evaluation.report import REPORT


def _run_row(run_dir: Path) -> dict[str, Any]:
    config = load_run_config(run_dir)
    report_file = run_dir / REPORT
    if not report_file.is_file():
        raise FileNotFoundError(f"{report_file} does not exist; run `emotrack evaluate {run_dir}` first")
    report = json.loads(report_file.read_text())
    row: dict[str, Any] = {"run": str(run_dir), "experiment": config["experiment"],
                           "model": config["model"]["name"], "seed": config["train"]["seed"],
                           "epochs": config["train"]["epochs"], "runs": 1}
    for partition, entry in report["partitions"].items():
        for kind, short in (("raw", "raw"), ("post_processed", "post")):
            for dim in report["targets"]:
                if kind in entry:
                    row[f"{partition}_{short}_{dim}"] = entry[kind][dim]["CCC"]
    return row


def _repeats_row(run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "repeats.json").read_text())
    first = run_dir / f"seed-{summary['seeds'][0]}"
    config = load_run_config(first)
    row: dict[str, Any] = {"run": str(run_dir), "experiment": summary["experiment"],
                           "model": config["model"]["name"], "seed": f"{summary['seeds'][0]}..{summary['seeds'][-1]}",
                           "epochs": config["train"]["epochs"], "runs": len(summary["seeds"])}
    for partition, kinds in summary["summary"].items():
        for kind, dims in kinds.items():
            short = "raw" if kind == "raw" else "post"
            for dim, stats in dims.items():
                row[f"{partition}_{short}_{dim}"] = stats["mean"]
                row[f"{partition}_{short}_{dim}_std"] = stats["std"]
    return row


def compare_runs(run_dirs: list[str | Path]) -> pd.DataFrame:
    """One row per run folder (or ``--repeats`` folder, averaged over its seeds): experiment, model,
    seed, epochs, CCC per partition, kind and dimension, and the paper's reported CCC
    (``paper_<dimension>``) with the table it comes from."""
    rows = []
    for run_dir in map(Path, run_dirs):
        row = _repeats_row(run_dir) if (run_dir / "repeats.json").is_file() else _run_row(run_dir)
        paper = EXPERIMENTS.get(row["experiment"], {}).get("paper", {})
        for dim, value in paper.get("reported", {}).items():
            row[f"paper_{dim}"] = value
        row["paper_source"] = paper.get("source", "")
        rows.append(row)
    return pd.DataFrame(rows)


def format_comparison(table: pd.DataFrame) -> str:
    """A fixed-width text table of the CCC columns (mean +- std for repeated runs)."""
    dims = sorted({c.split("_")[-1] for c in table.columns if c.startswith("paper_") and c != "paper_source"})
    columns = [c for c in table.columns if c.startswith(("devel_", "test_")) and not c.endswith("_std")]
    lines = []
    header = f"{'run':32s} {'experiment':28s} {'runs':>4s} " + " ".join(f"{c:>18s}" for c in columns) + " " + \
        " ".join(f"{'paper ' + d:>14s}" for d in dims)
    lines.append(header)
    for _, row in table.iterrows():
        cells = []
        for c in columns:
            value, std = row.get(c), row.get(c + "_std")
            if value is None or value != value:
                cells.append(f"{'n/a':>18s}")
            elif std is not None and std == std:
                cells.append(f"{value:>10.3f} +-{std:.3f}")
            else:
                cells.append(f"{value:>18.3f}")
        paper = [row.get(f"paper_{d}") for d in dims]
        lines.append(f"{str(row['run'])[-32:]:32s} {row['experiment']:28s} {int(row['runs']):>4d} " + " ".join(cells)
                     + " " + " ".join(f"{p:>14.3f}" if p == p and p is not None else f"{'':>14s}" for p in paper))
    return "\n".join(lines)
