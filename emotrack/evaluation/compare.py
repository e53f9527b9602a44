"""Runs side by side: the CCC each run reached (raw and post-processed, devel and test) next to
the number its paper reports for the experiment.

Like stands beside like: the paper's numbers sit next to the run's columns of the partition the paper
reports (``paper_partition``, read from the experiment's source: test beside test, devel beside
devel), and a post-processed figure on the partition its chain was fitted on (devel, unless the run
held out a validation split from training) is in-sample and labelled so, in the table
(``<partition>_post_in_sample``) and in print, since it is no like for a paper's number."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from emotrack.config.experiments import EXPERIMENTS
from emotrack.config.run import load_run_config
from emotrack.evaluation.report import REPORT, fitted_on
from emotrack.records.split import selection_partition

IN_SAMPLE = "(in-sample)"
PARTITIONS = ("devel", "test", "validation")


def paper_partition(source: str) -> str:
    """The partition a paper's number is reported on, from the experiment's source ("Table 2 (SEWA
    devel, CCC)"): the first partition named in it; empty when it names none."""
    found = re.search(r"\b(" + "|".join(PARTITIONS) + r")\b", source or "")
    return found.group(1) if found else ""


def _run_row(run_dir: Path) -> dict[str, Any]:
    config = load_run_config(run_dir)
    report_file = run_dir / REPORT
    if not report_file.is_file():
        raise FileNotFoundError(f"{report_file} does not exist; run `emotrack evaluate {run_dir}` first")
    report = json.loads(report_file.read_text())
    row: dict[str, Any] = {"run": str(run_dir), "experiment": config["experiment"],
                           "model": config["model"]["name"], "seed": config["train"]["seed"],
                           "epochs": config["train"]["epochs"], "runs": 1}
    _mark_in_sample(row, fitted_on(run_dir, report), report["partitions"])
    for partition, entry in report["partitions"].items():
        for kind, short in (("raw", "raw"), ("post_processed", "post")):
            for dim in report["targets"]:
                if kind in entry:
                    row[f"{partition}_{short}_{dim}"] = entry[kind][dim]["CCC"]
    return row


def _mark_in_sample(row: dict[str, Any], fit: str | None, partitions) -> None:
    """``post_fitted_on`` and, per partition, whether its post-processed figures are in-sample."""
    row["post_fitted_on"] = fit or ""
    for partition in partitions:
        row[f"{partition}_post_in_sample"] = partition == fit


def _repeats_row(run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "repeats.json").read_text())
    first = run_dir / f"seed-{summary['seeds'][0]}"
    config = load_run_config(first)
    row: dict[str, Any] = {"run": str(run_dir), "experiment": summary["experiment"],
                           "model": config["model"]["name"], "seed": f"{summary['seeds'][0]}..{summary['seeds'][-1]}",
                           "epochs": config["train"]["epochs"], "runs": len(summary["seeds"])}
    fit = fitted_on(first) if (first / REPORT).is_file() else selection_partition(config["data"].get("validation"))
    _mark_in_sample(row, fit, summary["summary"])
    for partition, kinds in summary["summary"].items():
        for kind, dims in kinds.items():
            short = "raw" if kind == "raw" else "post"
            for dim, stats in dims.items():
                row[f"{partition}_{short}_{dim}"] = stats["mean"]
                row[f"{partition}_{short}_{dim}_std"] = stats["std"]
    return row


def compare_runs(run_dirs: list[str | Path]) -> pd.DataFrame:
    """One row per run folder (or ``--repeats`` folder, averaged over its seeds): experiment, model,
    seed, epochs, CCC per partition, kind and dimension, whether each partition's post-processed
    CCC is in-sample (``<partition>_post_in_sample``, with ``post_fitted_on``), and the paper's
    reported CCC (``paper_<dimension>``) with the table it comes from and its partition
    (``paper_partition``)."""
    rows = []
    for run_dir in map(Path, run_dirs):
        row = _repeats_row(run_dir) if (run_dir / "repeats.json").is_file() else _run_row(run_dir)
        paper = EXPERIMENTS.get(row["experiment"], {}).get("paper", {})
        for dim, value in paper.get("reported", {}).items():
            row[f"paper_{dim}"] = value
        row["paper_source"] = paper.get("source", "")
        row["paper_partition"] = paper_partition(row["paper_source"])
        rows.append(row)
    return pd.DataFrame(rows)


def format_comparison(table: pd.DataFrame) -> str:
    """A fixed-width text table of the CCC columns (mean +- std for repeated runs), the columns of the
    paper's partition last, beside the paper's numbers, in-sample figures labelled, and a note that
    says what stands beside what."""
    dims = sorted({c.split("_")[-1] for c in table.columns if c.startswith("paper_")
                   and c not in ("paper_source", "paper_partition")})
    columns = [c for c in table.columns if c.startswith(tuple(f"{p}_" for p in PARTITIONS))
               and not c.endswith(("_std", "_in_sample"))]
    papers_on = {p for p in table.get("paper_partition", pd.Series(dtype=str)) if p}
    beside = papers_on.pop() if len(papers_on) == 1 else None
    if beside:  # like beside like: the paper's partition next to the paper's numbers
        columns = [c for c in columns if not c.startswith(beside + "_")] + \
                  [c for c in columns if c.startswith(beside + "_")]
    lines = []
    header = f"{'run':32s} {'experiment':28s} {'runs':>4s} " + " ".join(f"{c:>18s}" for c in columns) + " " + \
        " ".join(f"{'paper ' + d:>14s}" for d in dims) + f" {'paper on':>8s}"
    lines.append(header)
    labelled = False
    for _, row in table.iterrows():
        cells = []
        for c in columns:
            value, std = row.get(c), row.get(c + "_std")
            partition = c.split("_")[0]
            flag = row.get(f"{partition}_post_in_sample")
            mark = "_post_" in c and pd.notna(flag) and bool(flag)
            labelled |= mark
            if value is None or value != value:
                cells.append(f"{'n/a':>18s}")
            elif std is not None and std == std:
                cells.append(f"{value:>10.3f} +-{std:.3f}" + (f" {IN_SAMPLE}" if mark else ""))
            elif mark:
                cells.append(f"{value:>6.3f} {IN_SAMPLE:>11s}")
            else:
                cells.append(f"{value:>18.3f}")
        paper = [row.get(f"paper_{d}") for d in dims]
        lines.append(f"{str(row['run'])[-32:]:32s} {row['experiment']:28s} {int(row['runs']):>4d} " + " ".join(cells)
                     + " " + " ".join(f"{p:>14.3f}" if p == p and p is not None else f"{'':>14s}" for p in paper)
                     + f" {str(row.get('paper_partition') or '?'):>8s}")
    lines.append("Each paper's number is on the partition in 'paper on'; compare it with this run's columns of "
                 "that partition (test beside test, devel beside devel).")
    if labelled:
        lines.append(f"{IN_SAMPLE}: post-processed on the partition its chain was fitted on, so not "
                     f"out of sample and no like for a paper's number; train with data.validation to fit the "
                     f"chain on training subjects held out, and devel is then scored out of sample.")
    return "\n".join(lines)
