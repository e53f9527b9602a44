"""Corpus -> face crops -> TFRecords + ``manifest.json``.

For every session of a corpus spec: decode the video, detect the face with MTCNN, crop it with a
margin, resize, align the ratings to the frames by their time stamps and write one
``SequenceExample`` (see :mod:`emotrack.tfrecord`) to ``<out>/sessions/<session>.tfrecord``.
A session that fails is reported by name and skipped; every file is written under a temporary name
and renamed when complete, so nothing is left half-written.
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
import pandas as pd

from . import __version__
from .faces import FaceDetector, crop_face
from .specs import CorpusSpec, load_spec
from .video import VideoError, read_video

MANIFEST = "manifest.json"


class RatingsError(ValueError):
    """A rating file that is missing, unreadable, holds NaN or does not match its video."""


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

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        return d


@dataclasses.dataclass
class SessionInfo:
    session: str
    subject: str
    partition: str


@dataclasses.dataclass
class PreprocessReport:
    out_dir: Path
    done: list[dict[str, Any]]
    failed: list[dict[str, str]]

    @property
    def ok(self) -> bool:
        return not self.failed


def read_partitions(spec: CorpusSpec, root: Path) -> list[SessionInfo]:
    """The sessions of a corpus with their subject and partition, in file order."""
    p = spec.partitions
    path = Path(root) / p["file"]
    if not path.is_file():
        raise FileNotFoundError(f"partition file {path} does not exist; is --root the corpus folder "
                                f"of spec {spec.name!r}?")
    table = pd.read_csv(path, dtype=str)
    cols = [p["session_column"], p["subject_column"], p["partition_column"]]
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)} that spec {spec.name!r} names")
    bad = sorted(set(table[p["partition_column"]]) - set(p["names"]))
    if bad:
        raise ValueError(f"{path} names unknown partition(s) {bad}; allowed: {p['names']}")
    return [SessionInfo(str(r[cols[0]]), str(r[cols[1]]), str(r[cols[2]])) for _, r in table.iterrows()]


def read_ratings(spec: CorpusSpec, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a rating file as the spec describes it.

    Returns:
        times float64 (N,) seconds, values float32 (N, D) mapped to [-1, 1].
    """
    r = spec.ratings
    if not path.is_file():
        raise RatingsError(f"rating file {path} does not exist")
    if r["format"] != "csv":
        raise RatingsError(f"spec {spec.name!r}: rating format {r['format']!r} is not supported")
    try:
        table = pd.read_csv(path, sep=r.get("separator", ","))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise RatingsError(f"rating file {path} cannot be parsed ({err})") from err
    table.columns = [str(c).strip() for c in table.columns]
    need = [r["time_column"], *spec.dimensions]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise RatingsError(f"rating file {path} lacks the column(s) {', '.join(missing)}")
    if len(table) < 2:
        raise RatingsError(f"rating file {path} holds fewer than two rows")
    values = table[spec.dimensions].to_numpy(dtype=np.float64)
    times = table[r["time_column"]].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all() or not np.isfinite(times).all():
        row = int(np.where(~np.isfinite(np.c_[times, values]).all(axis=1))[0][0])
        raise RatingsError(f"rating file {path} holds NaN or infinite values (first at data row {row + 1}); "
                           f"fill or remove them before preprocessing")
    if np.any(np.diff(times) <= 0):
        raise RatingsError(f"rating file {path}: time stamps must increase strictly")
    low, high = (float(v) for v in r["range"])
    if values.min() < low - 1e-6 or values.max() > high + 1e-6:
        raise RatingsError(f"rating file {path} holds values outside the spec's range [{low}, {high}]")
    return times, (2.0 * (values - low) / (high - low) - 1.0).astype(np.float32)


def align_ratings(rating_times: np.ndarray, ratings: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """Ratings at the frames' time stamps, by linear interpolation between rating steps
    (held constant before the first and after the last). Returns float32 (T, D)."""
    return np.stack([np.interp(frame_times, rating_times, ratings[:, d]) for d in range(ratings.shape[1])],
                    axis=1).astype(np.float32)


class NoFaceError(ValueError):
    """A video in which MTCNN finds no face in any frame."""


def face_crops(frames: np.ndarray, detector: FaceDetector, options: PreprocessOptions,
               source: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detect the face in every frame and crop it.

    Args:
        frames: RGB uint8 (T, H, W, 3).
        source: the video's name, for the error message.
    Returns:
        crops uint8 (T, h, w, C), face_present int64 (T,), boxes float32 (T, 4) (zeros without a face).
    """
    faces = detector.detect(frames)
    present = np.array([f is not None for f in faces], dtype=np.int64)
    if not present.any():
        raise NoFaceError(f"no face found in any frame of {source}; check the video or lower --min-confidence")
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


def process_session(spec: CorpusSpec, root: Path, info: SessionInfo, out_dir: Path,
                    options: PreprocessOptions, detector: FaceDetector) -> dict[str, Any]:
    """Preprocess one session and write its TFRecord; returns its manifest entry."""
    import tensorflow as tf

    from .tfrecord import session_to_example

    video_path = spec.video_path(root, info.session)
    ratings_path = spec.ratings_path(root, info.session)
    rating_times, ratings = read_ratings(spec, ratings_path)
    frames, frame_times, fps = read_video(video_path)
    if spec.video.get("fps", "from_file") != "from_file":
        fps = float(spec.video["fps"])
        frame_times = np.arange(len(frames)) / fps
    step = 1.0 / spec.rating_rate_hz
    video_end = frame_times[-1] + 1.0 / fps
    ratings_end = rating_times[-1] + step
    if abs(video_end - ratings_end) > options.max_length_mismatch_s:
        raise RatingsError(f"video {video_path} lasts {video_end:.2f} s but rating file {ratings_path} "
                           f"covers {ratings_end:.2f} s (tolerance {options.max_length_mismatch_s} s); "
                           f"check that they belong to the same session")
    keep = frame_times < ratings_end
    frames, frame_times = frames[keep], frame_times[keep]

    crops, present, boxes = face_crops(frames, detector, options, video_path)
    aligned = align_ratings(rating_times, ratings, frame_times)

    record = session_to_example(
        session=info.session, subject=info.subject, partition=info.partition, fps=fps,
        rating_rate=spec.rating_rate_hz, dimensions=spec.dimensions, frames=crops,
        face_present=present, boxes=boxes, ratings=aligned, times=frame_times,
        image_format=options.image_format)
    target = out_dir / "sessions" / f"{info.session}.tfrecord"
    tmp = target.with_name(target.name + ".tmp")
    with tf.io.TFRecordWriter(str(tmp)) as writer:
        writer.write(record)
    os.replace(tmp, target)
    return {
        "session": info.session, "subject": info.subject, "partition": info.partition,
        "file": f"sessions/{target.name}", "sha256": _sha256(target), "num_frames": int(len(frames)),
        "fps": float(fps), "duration_s": float(video_end), "face_fraction": float(present.mean()),
        "video": str(video_path), "ratings": str(ratings_path),
    }


def preprocess_corpus(spec: str | Path | CorpusSpec, root: str | Path, out_dir: str | Path,
                      options: PreprocessOptions | None = None, progress: bool = True,
                      log=print) -> PreprocessReport:
    """Preprocess every session of a corpus into ``out_dir``.

    Writes ``out_dir/sessions/<session>.tfrecord`` and ``out_dir/manifest.json`` (sessions,
    partitions, rates, counts, checksums, options, failures). Sessions that fail are listed under
    ``failed`` in the manifest and the report; the others are written.
    """
    from tqdm import tqdm

    spec = spec if isinstance(spec, CorpusSpec) else load_spec(spec)
    options = options or PreprocessOptions()
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus root {root} is not a folder")
    sessions = read_partitions(spec, root)
    (out_dir / "sessions").mkdir(parents=True, exist_ok=True)
    detector = FaceDetector(min_confidence=options.min_confidence, batch_size=options.batch_size,
                            select=options.select)
    done, failed = [], []
    started = time.time()
    bar = tqdm(sessions, desc="preprocess", unit="session", disable=not progress)
    for info in bar:
        bar.set_postfix_str(info.session)
        try:
            done.append(process_session(spec, root, info, out_dir, options, detector))
        except (VideoError, RatingsError, NoFaceError, OSError) as err:
            failed.append({"session": info.session, "error": str(err)})
            log(f"session {info.session} failed and was skipped: {err}")
    manifest = {
        "format": "emotrack-sessions/1",
        "emotrack_version": __version__,
        "spec": spec.to_dict(),
        "root": str(root.resolve()),
        "dimensions": spec.dimensions,
        "rating_rate": spec.rating_rate_hz,
        "frame": {"height": options.size[0], "width": options.size[1], "channels": 1 if options.gray else 3},
        "options": options.to_dict(),
        "partitions": {name: [s["session"] for s in done if s["partition"] == name]
                       for name in spec.partitions["names"]},
        "sessions": done,
        "failed": failed,
        "seconds": round(time.time() - started, 2),
    }
    _write_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=2).encode())
    return PreprocessReport(out_dir=out_dir, done=done, failed=failed)
