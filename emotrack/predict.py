"""Prediction on a new video with a trained run: a per-frame arousal/valence CSV.

The video goes through the run's own face pipeline (the preprocessing options recorded in its
``config.yaml``), the model, the annotator-delay correction and, when the run has one, the
post-processing chain fitted on devel (``postprocessing.json``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .data import delay_frames
from .evaluate import predict_frames, undo_label_delay
from .faces import FaceDetector
from .preprocess import PreprocessOptions, face_crops
from .train import load_run_config
from .video import read_video


def predict_video(run_dir: str | Path, video: str | Path, out_csv: str | Path | None = None,
                  checkpoint: str = "best.keras", postprocess: bool = True) -> pd.DataFrame:
    """Predict every frame of ``video``.

    Returns:
        a table with columns time, <targets...>, face_present (one row per frame), also written to
        ``out_csv`` (atomically) when given.
    """
    from .models import load_model
    from .postprocess import PostProcessingChain

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    options_dict = dict(config["data"]["preprocessing"])
    options_dict["size"] = tuple(options_dict["size"])
    options = PreprocessOptions(**options_dict)
    frames, times, fps = read_video(video)
    detector = FaceDetector(min_confidence=options.min_confidence, batch_size=options.batch_size,
                            select=options.select)
    crops, present, _ = face_crops(frames, detector, options, video)
    model = load_model(run_dir / checkpoint)
    pred = predict_frames(model, {"frames": crops, "fps": fps}, config)
    pred = undo_label_delay(pred, delay_frames(config["data"].get("label_delay_s", 0.0), fps))
    chain_file = run_dir / "postprocessing.json"
    if postprocess and chain_file.is_file():
        pred = PostProcessingChain.load(chain_file).apply(pred, fps)
    table = pd.DataFrame({"time": np.round(times, 6)})
    for k, name in enumerate(config["targets"]):
        table[name] = pred[:, k]
    table["face_present"] = present
    if out_csv is not None:
        out_csv = Path(out_csv)
        tmp = out_csv.with_name(out_csv.name + ".tmp")
        table.to_csv(tmp, index=False, float_format="%.6f")
        os.replace(tmp, out_csv)
    return table
