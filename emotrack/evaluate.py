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


def predict_session(model, frames, chunk: int, factor: int = 1) -> np.ndarray:
    """Per-frame predictions for a whole session.

    Args:
        frames: (T, H, W, C) face crops, or a dict of (T, ...) arrays by input name (e.g. ``audio``
            and ``video``).
        chunk: frames per forward pass (bounds memory); rounded down to a multiple of ``factor``.
        factor: the model's temporal reduction; the tail is padded by repeating the last frame.
    Returns:
        float32 (T, outputs).
    """
    arrays = frames if isinstance(frames, dict) else {"x": frames}
    t = len(next(iter(arrays.values())))
    chunk = max(factor, chunk - chunk % factor)
    outs = []
    for start in range(0, t, chunk):
        parts = {}
        for name, x in arrays.items():
            part = np.asarray(x[start:start + chunk], np.float32)
            pad = (-len(part)) % factor
            if pad:
                part = np.concatenate([part, np.repeat(part[-1:], pad, axis=0)])
            parts[name] = part[None]
        n = min(chunk, t - start)
        batch = parts["x"] if "x" in parts else parts
        outs.append(np.asarray(model(batch, training=False))[0, :n])
    return np.concatenate(outs).astype(np.float32)


def _stream(model):
    """The single-stream network inside a Siamese model (AST-Net predicts with one stream)."""
    nested = [layer for layer in model.layers if isinstance(layer, type(model)) or hasattr(layer, "layers")]
    if not nested:
        raise ValueError(f"{model.name} holds no single-stream network to predict with")
    return nested[0]


def predict_frames(model, session: dict[str, Any], config: dict[str, Any]) -> np.ndarray:
    """One prediction per frame of a whole session, whatever the model's kind (frame-level,
    clip-level or Siamese), undoing what the training pipeline did to its input: temporal pooling
    (Huang 2018), frame subsampling (``data.frame_step``: the session is cut into the interleaved
    subsequences ``frames[j::step]``, each predicted and put back in place), and clips (each
    frame gets the mean prediction of the clips that cover it). Returns (T, outputs)."""
    from .models import model_info
    from .temporal import clip_starts, input_contract, pooled_predictions, stitch_clips
    from .train import clip_hop

    info = model_info(config["model"]["name"])
    data_cfg = config["data"]
    chunk = config["evaluate"].get("chunk", 600)
    step = int(data_cfg.get("frame_step", 1))
    names = {"video": "frames", "audio": "audio"}
    arrays = {name: session[names[name]] for name in info.inputs}
    inputs = arrays[info.inputs[0]] if len(arrays) == 1 else arrays
    length = len(session["frames"])
    if info.target == "clip":
        span = (data_cfg["window"] - 1) * step + 1
        starts = clip_starts(length, span, config["evaluate"].get("hop") or clip_hop(data_cfg))
        values = []
        for first in range(0, len(starts), 16):
            batch = {}
            for name, x in arrays.items():
                clips = []
                for start in starts[first:first + 16]:
                    clip = x[start:start + span:step]
                    if len(clip) < data_cfg["window"]:  # a session shorter than one clip
                        clip = np.concatenate([clip, np.repeat(clip[-1:], data_cfg["window"] - len(clip), 0)])
                    clips.append(clip)
                batch[name] = np.stack(clips).astype(np.float32)
            values.append(np.asarray(model(batch[info.inputs[0]] if len(batch) == 1 else batch, training=False)))
        return stitch_clips(np.concatenate(values), starts, span, length)
    if info.target == "siamese":
        model = _stream(model)
    k, factor = input_contract(config, float(session["fps"]))
    if step == 1:
        return pooled_predictions(model, inputs, k, chunk, factor)
    pred = None
    for j in range(step):
        part = {n: x[j::step] for n, x in arrays.items()}
        out = pooled_predictions(model, part[info.inputs[0]] if len(part) == 1 else part, k, chunk, factor)
        if pred is None:
            pred = np.zeros((length, out.shape[1]), np.float32)
        pred[j::step] = out
    return pred


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
    _save_figure(fig, path)


def _save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _plot_scatter(path: Path, golds: list[np.ndarray], preds: list[np.ndarray], masks: list[np.ndarray],
                  targets: list[str], title: str) -> Path:
    """Predicted vs gold on the arousal-valence plane (valence on x, arousal on y), one point per
    scored frame, gold and prediction side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gold, pred = np.concatenate(golds), np.concatenate(preds)
    mask = np.concatenate(masks).astype(bool)
    a, v = targets.index("arousal"), targets.index("valence")
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    if not history.is_file():
        return None
    table = pd.read_csv(history)
    if table.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, key in zip(axes, ("loss", "ccc")):
        for prefix, label in (("", "train"), ("val_", "devel")):
            if prefix + key in table:
                ax.plot(table["epoch"] + 1, table[prefix + key], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.upper() if key == "ccc" else key)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_figure(fig, path)


def _write_metrics_csv(run_dir: Path, report: dict[str, Any]) -> Path:
    """The report as a flat table: one row per partition, kind (raw / post_processed), scope
    (all sessions or one session) and dimension."""
    import pandas as pd

    rows = []
    for partition, entry in report["partitions"].items():
        for kind in ("raw", "post_processed"):
            if kind not in entry:
                continue
            for dim in report["targets"]:
                rows.append({"partition": partition, "kind": kind, "session": "all", "dimension": dim,
                             **entry[kind][dim]})
        for session, scores in entry["sessions"].items():
            for dim in report["targets"]:
                rows.append({"partition": partition, "kind": "raw", "session": session, "dimension": dim,
                             "CCC": scores[dim]})
    path = run_dir / "metrics.csv"
    tmp = run_dir / "metrics.csv.tmp"
    pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6f")
    os.replace(tmp, path)
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
    from .predict import CompiledModel

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    model_path = run_dir / checkpoint
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path} does not exist; has `emotrack train` finished for {run_dir}?")
    model = CompiledModel.wrap(load_model(model_path))  # one traced graph: the numbers of the model, faster
    targets = config["targets"]
    partitions = partitions or config["evaluate"]["partitions"]
    postprocessing = postprocessing or config["evaluate"].get("postprocessing", "tzirakis2017")
    target_idx = [config["data"]["dimensions"].index(d) for d in targets]

    def predict_partition(partition):
        sessions = session_arrays(config["data"]["dir"], partition, config["data"].get("crops"))
        out = {"sessions": sessions, "golds": [], "preds": [], "masks": []}
        for s in sessions:
            pred = predict_frames(model, s, config)
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
    _write_metrics_csv(run_dir, report)
    tmp = run_dir / (REPORT + ".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, run_dir / REPORT)
    return report
