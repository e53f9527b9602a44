"""Corpus -> face crops -> TFRecords + ``manifest.json``.

The corpus spec (:mod:`emotrack.specs`) finds the sessions and their files. For every session: read
its ratings, decode the video (or its folder of frames), detect the face with MTCNN, crop it with a
margin, resize, align the ratings to the frames by their time stamps and write one
``SequenceExample`` (see :mod:`emotrack.tfrecord`) to ``<out>/sessions/<session>.tfrecord``.
A session that fails is reported by name and skipped; every file is written under a temporary name
and renamed when complete, so nothing is left half-written.

Frames whose rating the corpus marks as missing (Aff-Wild2's ``-5``) must never be trained on. The
session format has one per-frame mask, ``face_present``, which training weights and evaluation masks
read; such frames are therefore written with ``face_present = 0``. The manifest keeps both facts apart:
``face_fraction`` (frames with a face) and ``rating_valid_fraction`` (frames with a rating).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .faces import FaceDetector, crop_face
from .specs import (CorpusSpec, RatingsError, RatingTrack, Session, discover, load_spec, read_partitions,
                    read_ratings, with_overrides)
from .video import VideoError, read_frames_dir, read_video, video_fps

MANIFEST = "manifest.json"

__all__ = ["MANIFEST", "NoFaceError", "PreprocessOptions", "PreprocessReport", "RatingsError", "align_ratings",
           "align_valid", "face_crops", "preprocess_corpus", "process_session", "read_partitions", "read_ratings"]


@dataclasses.dataclass
class PreprocessOptions:
    """What preprocessing does to every frame; written to the manifest as ``options``."""

    size: tuple[int, int] = (112, 112)      # (height, width) of the face crop
    gray: bool = True
    margin: float = 0.2                     # fraction of the face box added around it
    min_confidence: float = 0.9
    batch_size: int = 32                    # frames per MTCNN call
    select: str = "largest"
    image_format: str = "png"
    max_length_mismatch_s: float = 1.0      # video vs ratings duration tolerance
    rater: str | None = None                # one rater of a multi-rater corpus instead of their mean
    video_path: str | None = None           # replaces the spec's video path template
    video_fps: float | None = None          # replaces the spec's video frame rate

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        return d


@dataclasses.dataclass
class PreprocessReport:
    out_dir: Path
    done: list[dict[str, Any]]
    failed: list[dict[str, str]]
    unlabelled: list[dict[str, str]] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def align_ratings(rating_times: np.ndarray, ratings: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """Ratings at the frames' time stamps, by linear interpolation between rating steps
    (held constant before the first and after the last). Returns float32 (T, D)."""
    return np.stack([np.interp(frame_times, rating_times, ratings[:, d]) for d in range(ratings.shape[1])],
                    axis=1).astype(np.float32)


def align_valid(rating_times: np.ndarray, valid: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """Whether each frame's aligned rating comes from valid rating steps only: a frame between two
    steps is valid when both are (linear interpolation of the 0/1 mask reaches 1). Returns bool (T,)."""
    return np.interp(frame_times, rating_times, np.asarray(valid, np.float64)) > 1.0 - 1e-9


class NoFaceError(ValueError):
    """A video in which MTCNN finds no face in any frame."""


def _side_faces(frames: np.ndarray, detector: FaceDetector, side: str) -> list:
    """The face furthest left or right (``side``) in every frame: two people in one video, one rated each.

    A frame where only one face is found keeps it only when it lies in that side's half of the frame,
    so that the other person is not taken for the one rated.
    """
    out = []
    for frame, found in zip(frames, detector.detect_all(frames)):
        if not found:
            out.append(None)
            continue
        centre = [f.box[0] + f.box[2] / 2.0 for f in found]
        pick = int(np.argmin(centre) if side == "left" else np.argmax(centre))
        half = frame.shape[1] / 2.0
        alone_elsewhere = len(found) == 1 and ((centre[0] >= half) if side == "left" else (centre[0] < half))
        out.append(None if alone_elsewhere else found[pick])
    return out


def face_crops(frames: np.ndarray, detector: FaceDetector, options: PreprocessOptions,
               source: str | Path, select: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detect the face in every frame and crop it.

    Args:
        frames: RGB uint8 (T, H, W, 3).
        source: the video's name, for the error message.
        select: ``left`` or ``right`` to keep that face of two people; otherwise the detector's
            own choice (``options.select``).
    Returns:
        crops uint8 (T, h, w, C), face_present int64 (T,), boxes float32 (T, 4) (zeros without a face).
    """
    sided = select in ("left", "right")
    faces = _side_faces(frames, detector, select) if sided else detector.detect(frames)
    present = np.array([f is not None for f in faces], dtype=np.int64)
    if not present.any():
        where = f" on its {select} side" if sided else ""
        raise NoFaceError(f"no face found{where} in any frame of {source}; check the video or lower "
                          f"--min-confidence")
    boxes = np.zeros((len(frames), 4), np.float32)
    crops = []
    # Frames without a face keep the nearest detected box, so the crop stays on the head; their
    # face_present flag is 0 and the pipeline masks them out.
    idx = np.where(present)[0]
    for t, frame in enumerate(frames):
        face = faces[t] if faces[t] is not None else faces[idx[np.argmin(np.abs(idx - t))]]
        if faces[t] is not None:
            boxes[t] = face.box
        crops.append(crop_face(frame, face.box, options.size, options.margin, options.gray))
    return np.stack(crops), present, boxes


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_frames(spec: CorpusSpec, session: Session) -> tuple[np.ndarray, np.ndarray, float]:
    v = spec.video
    if v.get("kind", "file") == "frames":
        return read_frames_dir(session.video, float(v["fps"]), v.get("frames", "*.png"))
    frames, frame_times, fps = read_video(session.video)
    if v.get("fps", "from_file") != "from_file":
        fps = float(v["fps"])
        frame_times = np.arange(len(frames)) / fps
    return frames, frame_times, fps


def _declared_fps(spec: CorpusSpec, session: Session) -> float:
    fps = spec.video.get("fps", "from_file")
    return float(fps) if fps != "from_file" else video_fps(session.video)


def process_session(spec: CorpusSpec, root: Path, info: Session, out_dir: Path,
                    options: PreprocessOptions, detector: FaceDetector) -> dict[str, Any]:
    """Preprocess one session and write its TFRecord; returns its manifest entry."""
    import tensorflow as tf

    from .tfrecord import session_to_example

    video_path = info.video
    ratings_files = ", ".join(sorted({str(p) for p in info.ratings.values()}))
    # The ratings are read first: a bad rating file fails before the (slow) decoding.
    track: RatingTrack = read_ratings(spec, info.ratings, video_fps=None if spec.rating_rate_hz
                                      else _declared_fps(spec, info))
    frames, frame_times, fps = _read_frames(spec, info)
    video_end = frame_times[-1] + 1.0 / fps
    ratings_end = track.times[-1] + 1.0 / track.rate_hz
    if abs(video_end - ratings_end) > options.max_length_mismatch_s:
        raise RatingsError(f"video {video_path} lasts {video_end:.2f} s but rating file {ratings_files} "
                           f"covers {ratings_end:.2f} s (tolerance {options.max_length_mismatch_s} s); "
                           f"check that they belong to the same session")
    keep = frame_times < ratings_end
    frames, frame_times = frames[keep], frame_times[keep]

    crops, present, boxes = face_crops(frames, detector, options, video_path, select=info.face_select)
    aligned = align_ratings(track.times, track.values, frame_times)
    valid = align_valid(track.times, track.valid, frame_times)
    subject = track.subject or info.subject

    record = session_to_example(
        session=info.session, subject=subject, partition=info.partition, fps=fps,
        rating_rate=track.rate_hz, dimensions=spec.dimensions, frames=crops,
        face_present=present, boxes=boxes, ratings=aligned, times=frame_times,
        image_format=options.image_format, rating_valid=valid)
    target = out_dir / "sessions" / f"{info.session}.tfrecord"
    tmp = target.with_name(target.name + ".tmp")
    with tf.io.TFRecordWriter(str(tmp)) as writer:
        writer.write(record)
    os.replace(tmp, target)
    return {
        "session": info.session, "subject": subject, "partition": info.partition,
        "file": f"sessions/{target.name}", "sha256": _sha256(target), "num_frames": int(len(frames)),
        "fps": float(fps), "rating_rate": track.rate_hz, "duration_s": float(video_end),
        "face_fraction": float(present.mean()), "rating_valid_fraction": float(valid.mean()),
        "video": str(video_path), "ratings": sorted({str(p) for p in info.ratings.values()}),
    }


def preprocess_corpus(spec: str | Path | CorpusSpec, root: str | Path, out_dir: str | Path,
                      options: PreprocessOptions | None = None, progress: bool = True,
                      log=print) -> PreprocessReport:
    """Preprocess every session of a corpus into ``out_dir``.

    Writes ``out_dir/sessions/<session>.tfrecord`` and ``out_dir/manifest.json`` (sessions,
    partitions, rates, counts, checksums, options, failures, sessions without ratings). Sessions that
    fail, and files the spec cannot pair (a rating file without its video or the reverse), are listed
    under ``failed`` in the manifest and the report; the others are written. Sessions of a partition
    the spec marks unlabelled (a challenge's test set) that come without ratings are listed under
    ``unlabelled`` and not written.

    Raises:
        SpecError: a spec or an option that does not fit it.
        LayoutError: a root that is not the corpus the spec describes (nothing found where it says);
            nothing is written then.
    """
    from tqdm import tqdm

    spec = spec if isinstance(spec, CorpusSpec) else load_spec(spec)
    options = options or PreprocessOptions()
    spec = with_overrides(spec, video_path=options.video_path, video_fps=options.video_fps, rater=options.rater)
    root, out_dir = Path(root), Path(out_dir)
    found = discover(spec, root)
    (out_dir / "sessions").mkdir(parents=True, exist_ok=True)
    failed = list(found.problems)
    for f in failed:
        log(f"session {f['session']} was skipped: {f['error']}")
    done = []
    started = time.time()
    if found.sessions:
        detector = FaceDetector(min_confidence=options.min_confidence, batch_size=options.batch_size,
                                select=options.select)
    bar = tqdm(found.sessions, desc="preprocess", unit="session", disable=not progress)
    for info in bar:
        bar.set_postfix_str(info.session)
        try:
            done.append(process_session(spec, root, info, out_dir, options, detector))
        except (VideoError, RatingsError, NoFaceError, OSError) as err:
            failed.append({"session": info.session, "error": str(err)})
            log(f"session {info.session} failed and was skipped: {err}")
    unlabelled = [{"session": s.session, "partition": s.partition, "video": str(s.video)} for s in found.unlabelled]
    low, high = (float(v) for v in spec.ratings["range"])
    manifest = {
        "format": "emotrack-sessions/1",
        "emotrack_version": __version__,
        "spec": spec.to_dict(),
        "root": str(root.resolve()),
        "dimensions": spec.dimensions,
        "rating_rate": spec.rating_rate_hz,
        "rating_scale": {"from": [low, high], "to": [-1.0, 1.0], "missing_value": spec.ratings.get("missing_value")},
        "frame": {"height": options.size[0], "width": options.size[1], "channels": 1 if options.gray else 3},
        "options": options.to_dict(),
        "partitions": {name: [s["session"] for s in done if s["partition"] == name]
                       for name in spec.partitions["names"]},
        "sessions": done,
        "failed": failed,
        "unlabelled": unlabelled,
        "seconds": round(time.time() - started, 2),
    }
    _write_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=2).encode())
    return PreprocessReport(out_dir=out_dir, done=done, failed=failed, unlabelled=unlabelled)
