"""Evaluation of a run folder: whole sessions through the model, metrics, a report and a plot.

Writes ``report.json`` (metrics per partition and per session, with the metric options that
produced them) and ``plot_<session>.png`` (prediction against the gold standard for the first test
session, as Huang et al. 2018 Fig. 5) into the run folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .data import delay_frames, session_arrays
from .metrics import ccc, compute_metrics
from .train import load_run_config

REPORT = "report.json"


def predict_session(model, frames: np.ndarray, chunk: int, factor: int = 1) -> np.ndarray:
    """Per-frame predictions for a whole session.

    Args:
        frames: uint8 (T, H, W, C).
        chunk: frames per forward pass (bounds memory); rounded down to a multiple of ``factor``.
        factor: the model's temporal reduction; the tail is padded by repeating the last frame.
    Returns:
        float32 (T, outputs).
    """
    t = len(frames)
    chunk = max(factor, chunk - chunk % factor)
    outs = []
    for start in range(0, t, chunk):
        part = frames[start:start + chunk].astype(np.float32)
        n = len(part)
        pad = (-n) % factor
        if pad:
            part = np.concatenate([part, np.repeat(part[-1:], pad, axis=0)])
        outs.append(np.asarray(model(part[None], training=False))[0, :n])
    return np.concatenate(outs).astype(np.float32)


def undo_label_delay(pred: np.ndarray, frames: int) -> np.ndarray:
    """Move predictions ``frames`` later in time, to compare them with ratings that lag the face
    (the first value is held at the start)."""
    if frames <= 0:
        return pred
    frames = min(frames, len(pred))
    return np.concatenate([np.repeat(pred[:1], frames, axis=0), pred[: len(pred) - frames]])


def _plot(path: Path, session: dict[str, Any], gold: np.ndarray, pred: np.ndarray, targets: list[str],
          scores: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(targets), 1, figsize=(10, 2.6 * len(targets)), sharex=True)
    for ax, name, k in zip(np.atleast_1d(axes), targets, range(len(targets))):
        ax.plot(session["time"], gold[:, k], label="gold standard", color="tab:blue")
        ax.plot(session["time"], pred[:, k], label="prediction", color="tab:red")
        ax.set_ylabel(name)
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(f"{session['session']} {name}: CCC {scores[name]:.3f} (raw predictions)", fontsize=9)
        ax.legend(loc="upper right", fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


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
    tmp = run_dir / "predictions.csv.tmp"
    pd.concat(tables, ignore_index=True).to_csv(tmp, index=False, float_format="%.6f")
    os.replace(tmp, path)
    return path


def evaluate(run_dir: str | Path, partitions: list[str] | None = None, checkpoint: str = "best.keras",
             aggregation: str = "concat", postprocessing: str | None = None) -> dict[str, Any]:
    """Evaluate a run on whole sessions of its data and write the report.

    The post-processing chain (``evaluate.postprocessing`` in the run's config, or the argument:
    ``tzirakis2017``, ``teixeira2021`` or ``none``) is fitted on the devel partition only, saved as
    ``postprocessing.json`` and applied unchanged to every partition; the report holds raw and
    post-processed metrics side by side.

    Returns:
        the report dict (also written to ``run_dir/report.json``).
    """
    from .models import load_model
    from .postprocess import PostProcessingChain, raw_and_post_processed_metrics
    from .temporal import input_contract, pooled_predictions

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    model_path = run_dir / checkpoint
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path} does not exist; has `emotrack train` finished for {run_dir}?")
    model = load_model(model_path)
    targets = config["targets"]
    partitions = partitions or config["evaluate"]["partitions"]
    postprocessing = postprocessing or config["evaluate"].get("postprocessing", "tzirakis2017")
    target_idx = [config["data"]["dimensions"].index(d) for d in targets]

    def predict_partition(partition):
        sessions = session_arrays(config["data"]["dir"], partition)
        out = {"sessions": sessions, "golds": [], "preds": [], "masks": []}
        for s in sessions:
            # Temporal pooling and the network's own time reduction undone: one prediction per frame.
            k, factor = input_contract(config, float(s["fps"]))
            pred = pooled_predictions(model, s["frames"], k, config["evaluate"].get("chunk", 600), factor)
            shift = delay_frames(config["data"].get("label_delay_s", 0.0), float(s["fps"]))
            out["preds"].append(undo_label_delay(pred, shift))
            out["golds"].append(s["ratings"][:, target_idx])
            out["masks"].append(s["face_present"].astype(bool) & s["rating_valid"].astype(bool))
        return out

    needed = list(dict.fromkeys((["devel"] if postprocessing != "none" else [])
                                + (["train"] if postprocessing == "teixeira2021" else []) + list(partitions)))
    predicted = {p: predict_partition(p) for p in needed}
    rates = {float(s["fps"]) for p in predicted.values() for s in p["sessions"]}
    if len(rates) != 1:
        raise ValueError(f"sessions have different frame rates {sorted(rates)}; evaluation needs one rate")
    rate_hz = rates.pop()
    chain = None
    if postprocessing != "none":
        dev, train = predicted["devel"], predicted.get("train")
        chain = PostProcessingChain(variant=postprocessing).fit(
            dev["golds"], dev["preds"], rate_hz, masks=dev["masks"], dimensions=targets,
            **({"train_golds": train["golds"], "train_preds": train["preds"], "train_masks": train["masks"]}
               if train else {}))
        chain.save(run_dir)

    report: dict[str, Any] = {"run": str(run_dir), "experiment": config["experiment"], "checkpoint": checkpoint,
                              "targets": targets, "rate_hz": rate_hz, "postprocessing": postprocessing,
                              "partitions": {}}
    plotted = None
    for partition in partitions:
        p = predicted[partition]
        if chain is not None:
            both = raw_and_post_processed_metrics(p["golds"], p["preds"], chain, masks=p["masks"],
                                                  rate_hz=rate_hz, aggregation=aggregation)
            entry = {"raw": both["raw"], "post_processed": both["post_processed"]}
        else:
            entry = {"raw": compute_metrics(p["golds"], p["preds"], p["masks"], dimensions=targets,
                                            aggregation=aggregation)}
        entry["num_sessions"] = len(p["sessions"])
        entry["sessions"] = {s["session"]: {name: ccc(g[:, k], pr[:, k], mask=m) for k, name in enumerate(targets)}
                             for s, g, pr, m in zip(p["sessions"], p["golds"], p["preds"], p["masks"])}
        report["partitions"][partition] = entry
        if partition == "test" and p["sessions"]:
            s = p["sessions"][0]
            plotted = run_dir / f"plot_{s['session']}.png"
            _plot(plotted, s, p["golds"][0], p["preds"][0], targets, entry["sessions"][s["session"]])
    report["post_processing"] = chain.to_dict() if chain is not None else None
    report["plot"] = str(plotted) if plotted else None
    report["predictions"] = str(_write_predictions(run_dir, {p: predicted[p] for p in partitions}, targets,
                                                   chain, rate_hz))
    tmp = run_dir / (REPORT + ".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, run_dir / REPORT)
    return report
