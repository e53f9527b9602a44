"""Evaluation of a run folder: whole sessions through the model, metrics, a report and a plot.

Writes ``report.json`` (metrics per partition and per session, with the metric options that
produced them) and ``plot_<session>.png`` (prediction against the gold standard for the first test
session, as Huang et al. 2018 Fig. 5) into the run folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.config.run import load_checkpoint, load_run_config
from emotrack.data.align import delay_frames, undo_label_delay
from emotrack.data.augment import check_options
from emotrack.data.pipeline import session_arrays
from emotrack.evaluation.metrics import ccc, compute_metrics
from emotrack.files import atomic_path, check_writable
from emotrack.inference.session import predict_frames
from emotrack.records.manifest import manifest_hash
from emotrack.records.split import select_sessions, selection_partition
from emotrack.records.tfrecord import read_checked_manifest, verify_records

REPORT = "report.json"


class OtherDataError(ValueError):
    """The data to evaluate on is not the data the run was trained on."""


def data_differences(config: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """What differs between the data a run was trained on (as its config records it) and ``manifest``:
    preprocessing options and rating dimensions; empty where the config cannot tell."""
    before, after = config["data"].get("preprocessing") or {}, manifest.get("options") or {}
    out = [f"preprocessing option {key}: {before.get(key)!r} in training, {after.get(key)!r} here"
           for key in sorted(set(before) | set(after), key=str) if before.get(key) != after.get(key)]
    trained = list(config["data"].get("dimensions") or manifest["dimensions"])
    if trained != list(manifest["dimensions"]):
        out.append(f"dimensions: {trained} in training, {list(manifest['dimensions'])} here")
    return out


def check_data(run_dir: Path, config: dict[str, Any], data_dir: Path, allow_other_data: bool = False
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest of ``data_dir`` and what the report says of the data: refuses, unless
    ``allow_other_data``, data whose manifest is not the one the run recorded (`OtherDataError`, naming both
    SHA-256s and what differs)."""
    manifest = read_checked_manifest(data_dir)
    trained, here = config["data"].get("manifest_sha256"), manifest_hash(data_dir)
    differences = data_differences(config, manifest) if trained != here else []
    if trained != here and not allow_other_data:
        said = "; ".join(differences) if differences else "the preprocessing options are the same, so the sessions differ"
        raise OtherDataError(
            f"{data_dir / 'manifest.json'} (SHA-256 {here}) is not the data {run_dir} was trained on (SHA-256 "
            f"{trained}): {said}. Evaluate on the training data (preprocess the corpus again with the options in "
            f"{run_dir / 'config.yaml'} data.preprocessing), or pass --allow-other-data to score it anyway "
            f"(the report then says so)")
    return manifest, {"dir": str(data_dir), "manifest_sha256": here, "trained_on_sha256": trained,
                      "same_as_training": trained == here, "differences": differences}


def _plot(path: Path, session: dict[str, Any], gold: np.ndarray, pred: np.ndarray, targets: list[str],
          scores: dict[str, float]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 2.6 * len(targets)))
    axes = fig.subplots(len(targets), 1, sharex=True)
    for ax, name, k in zip(np.atleast_1d(axes), targets, range(len(targets))):
        ax.plot(session["time"], gold[:, k], label="gold standard", color="tab:blue")
        ax.plot(session["time"], pred[:, k], label="prediction", color="tab:red")
        ax.set_ylabel(name)
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(f"{session['session']} {name}: CCC {scores[name]:.3f} (raw predictions)", fontsize=9)
        ax.legend(loc="upper right", fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    fig.tight_layout()
    _save_figure(fig, path)


def _save_figure(fig, path: Path) -> Path:
    """Write a figure made with `matplotlib.figure.Figure` (no pyplot: the caller's backend and open
    figures are left alone) atomically as PNG."""
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


def _plot_scatter(path: Path, golds: list[np.ndarray], preds: list[np.ndarray], masks: list[np.ndarray],
                  targets: list[str], title: str) -> Path:
    """Predicted vs gold on the arousal-valence plane (valence on x, arousal on y), one point per
    scored frame, gold and prediction side by side."""
    from matplotlib.figure import Figure

    gold, pred = np.concatenate(golds), np.concatenate(preds)
    mask = np.concatenate(masks).astype(bool)
    a, v = targets.index("arousal"), targets.index("valence")
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.subplots()
    ax.scatter(gold[mask, v], gold[mask, a], s=3, alpha=0.4, color="tab:blue", label="gold standard")
    ax.scatter(pred[mask, v], pred[mask, a], s=3, alpha=0.4, color="tab:red", label="prediction")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.axvline(0, color="0.7", lw=0.8)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8, markerscale=3)
    fig.tight_layout()
    return _save_figure(fig, path)


def _plot_history(path: Path, history: Path) -> Path | None:
    """Training curves from ``history.csv``: loss and CCC on train and devel per epoch."""
    import pandas as pd
    from matplotlib.figure import Figure

    if not history.is_file():
        return None
    table = pd.read_csv(history)
    if table.empty:
        return None
    fig = Figure(figsize=(10, 3.5))
    axes = fig.subplots(1, 2)
    for ax, key in zip(axes, ("loss", "ccc")):
        for prefix, label in (("", "train"), ("val_", "devel")):
            if prefix + key in table:
                ax.plot(table["epoch"] + 1, table[prefix + key], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.upper() if key == "ccc" else key)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_figure(fig, path)


def fitted_on(run_dir: str | Path, report: dict[str, Any] | None = None) -> str | None:
    """The partition the post-processing chain of an evaluated run was fitted on, from its
    ``report.json`` (or ``report``), or for reports written before they said so, the partition that
    chose its checkpoint (its config's ``data.validation``); None without a chain."""
    if report is None:
        report = json.loads((Path(run_dir) / REPORT).read_text())
    if not report.get("post_processing"):
        return None
    return report.get("postprocessing_fitted_on") or selection_partition(
        load_run_config(run_dir)["data"].get("validation"))


def in_sample_label(entry: dict[str, Any]) -> str:
    """What a report's partition ``entry`` says of its post-processed figures: ``in-sample`` when the
    chain was fitted on that partition, else empty."""
    if entry.get("post_processed_in_sample"):
        return f"in-sample: post-processing fitted on {entry['post_processed_fitted_on']}"
    return ""


def _write_metrics_csv(run_dir: Path, report: dict[str, Any]) -> Path:
    """The report as a flat table: one row per partition, kind (raw / post_processed), scope
    (all sessions or one session) and dimension; ``fitted_on`` names the partition a post-processed
    row's chain was fitted on, and ``in_sample`` is true where that is the row's own partition."""
    import pandas as pd

    rows = []
    for partition, entry in report["partitions"].items():
        for kind in ("raw", "post_processed"):
            if kind not in entry:
                continue
            fitted = entry.get("post_processed_fitted_on") if kind == "post_processed" else None
            for dim in report["targets"]:
                rows.append({"partition": partition, "kind": kind, "session": "all", "dimension": dim,
                             **entry[kind][dim], "fitted_on": fitted,
                             "in_sample": bool(entry.get("post_processed_in_sample")) and kind == "post_processed"})
        for session, scores in entry["sessions"].items():
            for dim in report["targets"]:
                rows.append({"partition": partition, "kind": "raw", "session": session, "dimension": dim,
                             "CCC": scores[dim], "fitted_on": None, "in_sample": False})
    path = run_dir / "metrics.csv"
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6f")
    return path


def _write_predictions(run_dir: Path, predicted: dict[str, dict], targets: list[str], chain, rate_hz: float) -> Path:
    """One row per frame of every evaluated session: gold, raw prediction (delay undone, at the
    frame rate), post-processed prediction and the face mask, as ``predictions.csv``."""
    import pandas as pd

    tables = []
    for partition, p in predicted.items():
        for s, gold, pred, mask in zip(p["sessions"], p["golds"], p["preds"], p["masks"]):
            table = pd.DataFrame({"partition": partition, "session": s["session"],
                                  "time": np.round(s["time"], 6)})
            post = chain.apply(pred, rate_hz) if chain is not None else None
            for k, name in enumerate(targets):
                table[f"gold_{name}"] = gold[:, k]
                table[f"pred_{name}"] = pred[:, k]
                if post is not None:
                    table[f"post_{name}"] = post[:, k]
            table["face_present"] = mask.astype(int)
            tables.append(table)
    path = run_dir / "predictions.csv"
    with atomic_path(path) as tmp:
        pd.concat(tables, ignore_index=True).to_csv(tmp, index=False, float_format="%.6f")
    return path


def evaluate(run_dir: str | Path, partitions: list[str] | None = None, checkpoint: str | None = None,
             aggregation: str = "concat", postprocessing: str | None = None, data_dir: str | Path | None = None,
             allow_other_data: bool = False) -> dict[str, Any]:
    """Evaluate a run on whole sessions of its data and write the report.

    The post-processing chain (``evaluate.postprocessing`` in the run's config, or the argument: a
    name of `emotrack.evaluation.postprocess.CHAINS`, e.g. ``tzirakis2017``, ``teixeira2021`` or ``none``)
    is fitted on the devel partition only (or, with ``data.validation``, on the training subjects it
    holds out), saved as ``postprocessing.json`` and applied unchanged to every partition; the report
    holds raw and post-processed metrics side by side. The post-processed figures of the partition the
    chain was fitted on are in-sample, and every output says so: ``postprocessing_fitted_on``, and per
    partition ``post_processed_fitted_on`` and ``post_processed_in_sample`` in ``report.json``,
    ``fitted_on`` and ``in_sample`` in ``metrics.csv`` (`in_sample_label` for printing).

    The data is the run's (``data.dir``), or ``data_dir``; its manifest must be the one the run was trained
    on (the SHA-256 in its config) unless ``allow_other_data``, and then the report's ``data`` says it is
    not (``same_as_training``, ``differences``). Every record read is checked against its checksum first.

    Returns:
        the report dict (also written to ``run_dir/report.json``).
    """
    from emotrack.evaluation.postprocess import (
        PostProcessingChain,
        raw_and_post_processed_metrics,
    )
    from emotrack.inference.session import CompiledModel

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    check_writable(run_dir / REPORT, "the run folder")
    try:  # evaluation crops as training's augmentation resized (emotrack.data.augment.centre_crop)
        check_options(config["data"].get("augment"))
    except ValueError as err:
        raise ValueError(f"{run_dir / 'config.yaml'}: {err}") from err
    # The chain's name first: a typo stops the evaluation before the model is loaded.
    postprocessing = postprocessing or config["evaluate"]["postprocessing"]
    try:
        chain = PostProcessingChain(variant=postprocessing)
    except ValueError as err:
        raise ValueError(f"evaluate.postprocessing: {err}") from err
    data_dir = Path(data_dir or config["data"]["dir"])
    manifest, data = check_data(run_dir, config, data_dir, allow_other_data)
    targets = config["targets"]
    partitions = partitions or config["evaluate"]["partitions"]
    # A partition whose sessions all come without ratings (a challenge's test set) is not scored: its
    # predictions are written in the corpus' rating format instead (emotrack.apps.submission).
    labelled = {s["partition"] for s in manifest["sessions"]} | {"validation"}
    unlabelled = {u["partition"] for u in manifest.get("unlabelled") or []}
    to_submit = [p for p in partitions if p not in labelled and p in unlabelled]
    partitions = [p for p in partitions if p not in to_submit]
    if not partitions:
        raise ValueError(f"evaluate.partitions {to_submit} hold no labelled session; add a labelled partition "
                         f"(devel) to score the run: its predictions fit the post-processing written with the "
                         f"submission")
    target_idx = [config["data"]["dimensions"].index(d) for d in targets]
    # The chain is fitted on the partition that chose the checkpoint: devel, or the training subjects a
    # validation split held out (then devel is reported out of sample).
    validation = config["data"].get("validation")
    fit_on = selection_partition(validation)
    needed = list(dict.fromkeys(([fit_on] if chain.needs_fitting else [])
                                + (["train"] if chain.needs_training_partition else []) + list(partitions)))
    verify_records(data_dir, select_sessions(manifest, needed, validation))
    checkpoint = checkpoint or config["evaluate"]["checkpoint"]
    model = CompiledModel.wrap(load_checkpoint(run_dir, checkpoint))  # one traced graph: the model's numbers, faster

    def predict_partition(partition):
        sessions = session_arrays(data_dir, partition, config["data"].get("crops"), validation)
        out = {"sessions": sessions, "golds": [], "preds": [], "masks": []}
        for s in sessions:
            pred = predict_frames(model, s, config)
            shift = delay_frames(config["data"]["label_delay_s"], float(s["fps"]))
            out["preds"].append(undo_label_delay(pred, shift))
            out["golds"].append(s["ratings"][:, target_idx])
            out["masks"].append(s["face_present"].astype(bool) & s["rating_valid"].astype(bool))
        return out

    predicted = {p: predict_partition(p) for p in needed}
    rates = {float(s["fps"]) for p in predicted.values() for s in p["sessions"]}
    if len(rates) != 1:
        raise ValueError(f"sessions have different frame rates {sorted(rates)}; evaluation needs one rate")
    rate_hz = rates.pop()
    if chain.needs_fitting:
        dev, train = predicted[fit_on], predicted.get("train")
        chain.fit(
            dev["golds"], dev["preds"], rate_hz, masks=dev["masks"], dimensions=targets,
            **({"train_golds": train["golds"], "train_preds": train["preds"], "train_masks": train["masks"]}
               if train else {}))
        chain.save(run_dir)
    else:
        chain = None  # nothing to fit or apply: raw predictions only

    report: dict[str, Any] = {"run": str(run_dir), "experiment": config["experiment"], "checkpoint": checkpoint,
                              "targets": targets, "rate_hz": rate_hz, "postprocessing": postprocessing,
                              "postprocessing_fitted_on": fit_on if chain is not None else None,
                              "data": data, "partitions": {}}
    plotted, session_plots = None, []
    for partition in partitions:
        p = predicted[partition]
        if chain is not None:
            both = raw_and_post_processed_metrics(p["golds"], p["preds"], chain, masks=p["masks"],
                                                  rate_hz=rate_hz, aggregation=aggregation)
            entry = {"raw": both["raw"], "post_processed": both["post_processed"]}
        else:
            entry = {"raw": compute_metrics(p["golds"], p["preds"], p["masks"], dimensions=targets,
                                            aggregation=aggregation)}
        if chain is not None:  # the chain's own fit partition scores it in-sample
            entry["post_processed_fitted_on"] = fit_on
            entry["post_processed_in_sample"] = partition == fit_on
        entry["num_sessions"] = len(p["sessions"])
        entry["sessions"] = {s["session"]: {name: ccc(g[:, k], pr[:, k], mask=m) for k, name in enumerate(targets)}
                             for s, g, pr, m in zip(p["sessions"], p["golds"], p["preds"], p["masks"])}
        report["partitions"][partition] = entry
        if partition == "test":  # Huang et al. 2018, Fig. 5: prediction and gold of every test session
            for s, gold, pred in zip(p["sessions"], p["golds"], p["preds"]):
                path = run_dir / f"plot_{s['session']}.png"
                _plot(path, s, gold, pred, targets, entry["sessions"][s["session"]])
                session_plots.append(str(path))
                plotted = plotted or path
    report["post_processing"] = chain.to_dict() if chain is not None else None
    report["plot"] = str(plotted) if plotted else None
    plots: dict[str, Any] = {"sessions": session_plots}
    if {"arousal", "valence"} <= set(targets):
        for partition in partitions:
            p = predicted[partition]
            if p["sessions"]:
                plots[f"scatter_{partition}"] = str(_plot_scatter(
                    run_dir / f"scatter_{partition}.png", p["golds"], p["preds"], p["masks"], targets,
                    f"{partition}: {len(p['sessions'])} sessions, raw predictions"))
    curves = _plot_history(run_dir / "training_curves.png", run_dir / "history.csv")
    if curves:
        plots["training_curves"] = str(curves)
    report["plots"] = plots
    report["metrics_csv"] = str(run_dir / "metrics.csv")
    report["predictions"] = str(_write_predictions(run_dir, {p: predicted[p] for p in partitions}, targets,
                                                   chain, rate_hz))
    # Not scored: without labels (`emotrack evaluate` writes their predictions as a challenge submission).
    report["unlabelled_partitions"] = to_submit
    _write_metrics_csv(run_dir, report)
    with atomic_path(run_dir / REPORT) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return report
