"""``emotrack predict --faces all``: every person in the video, one row per frame and person.

Each person is followed with a stable id (`emotrack.faces.people.PeopleTracker`: position and colour
signature, through crossings, exits and cuts) and predicted as `emotrack.apps.predict.predict_video`
predicts one face: their own crops (cut at their last box while they are away, blank before they first
appear), the model, the delay correction, the post-processing chain, every frame at its true time. A
frame where a person is not seen has ``face_present = 0`` in their row and holds their last prediction
(empty before they first appear).

How: MTCNN finds every face in every frame once, as the first person's prediction runs (`_People`, a
`FaceDetector` that records each frame's people and hands on person 1's face; ids are given in order of
appearance, so person 1 is known as soon as they appear); each further person is predicted from the
recorded faces (`_Replay`), so the video is decoded once per person and searched for faces once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from emotrack.faces.detect import Face, FaceDetector
from emotrack.faces.people import PeopleTracker


class _People(FaceDetector):
    """MTCNN on every frame, each face given its person's id; `detect_all` returns person 1's face only
    and keeps every frame's [(id, face), ...] in ``frames``."""

    def __init__(self, fps: float, min_confidence: float, batch_size: int, min_face: float | None):
        super().__init__(min_confidence=min_confidence, batch_size=batch_size, select="largest",
                         min_face=min_face)
        self.tracker = PeopleTracker(fps)
        self.frames: list[list[tuple[int, Face]]] = []

    def detect_all(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        out = []
        for frame, faces in zip(frames, super().detect_all(frames)):
            people = self.tracker.update(frame, faces)
            self.frames.append(people)
            out.append([f for pid, f in people if pid == 1])
        return out


class _Replay(FaceDetector):
    """Person ``pid``'s recorded face in each frame, in order (no detection)."""

    def __init__(self, recorded: list[list[tuple[int, Face]]], pid: int, batch_size: int):
        super().__init__(batch_size=batch_size, select="largest")
        self.recorded, self.pid, self.next = recorded, pid, 0

    def detect_all(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        out = [[f for p, f in people if p == self.pid] for people in self.recorded[self.next:self.next + len(frames)]]
        self.next += len(frames)
        return out


def predict_people(run_dir: str | Path, video: str | Path, out_csv: str | Path | None = None,
                   checkpoint: str = "best.keras", postprocess: bool = True, overlay: str | Path | None = None,
                   min_face: float | None = None, progress: bool = False) -> pd.DataFrame:
    """Predict every person of ``video`` (see the module docstring).

    Returns:
        The table written to ``out_csv`` (atomically): time, track (the person's id, from 1), the run's
        targets, face_present; one row per frame and person, by time, then track. ``overlay``: a video
        to write with each person's box and marker in their own colour, labelled with their id
        (`emotrack.apps.overlay.write_people_overlay`).
    Raises:
        As `emotrack.apps.predict.predict_video`; `AudioError` for a model that takes the sound track
        (one sound track cannot be told apart by person).
    """
    from emotrack.apps.overlay import write_people_overlay
    from emotrack.apps.predict import predict_video, run_preprocessing
    from emotrack.config.run import load_run_config
    from emotrack.files import atomic_path, check_writable
    from emotrack.media.audio import AudioError
    from emotrack.media.video import video_timing
    from emotrack.models import model_info

    run_dir, video = Path(run_dir), Path(video)
    for path, option in ((out_csv, "--out"), (overlay, "--overlay")):
        if path is not None:
            check_writable(path, option)
    config = load_run_config(run_dir)
    if "audio" in model_info(config["model"]["name"]).inputs:
        raise AudioError(f"the model of {run_dir} ({config['model']['name']}) takes the sound track, which "
                         f"cannot be told apart by person; predict --faces all needs a visual model")
    options = run_preprocessing(config)
    rate = video_timing(video).rate
    fps = min(rate, options.fps) if options.fps else rate  # the rate the model sees the video at
    people = _People(fps, options.min_confidence, options.batch_size,
                     options.min_face if min_face is None else min_face)
    tracks = {1: predict_video(run_dir, video, checkpoint=checkpoint, postprocess=postprocess, detector=people,
                               progress=progress)}
    for pid in range(2, len(people.tracker.people) + 1):
        replay = _Replay(people.frames, pid, options.batch_size)
        tracks[pid] = predict_video(run_dir, video, checkpoint=checkpoint, postprocess=postprocess,
                                    detector=replay, progress=progress)
    table = pd.concat([r.table.assign(track=pid) for pid, r in tracks.items()], ignore_index=True)
    table = table[["time", "track", *config["targets"], "face_present"]].sort_values(
        ["time", "track"], kind="stable", ignore_index=True)
    if out_csv is not None:
        with atomic_path(Path(out_csv), keep_suffix=True) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6f")
    if overlay is not None:
        write_people_overlay(video, overlay, {pid: (r.table, r.boxes) for pid, r in tracks.items()},
                             config["targets"])
    return table
