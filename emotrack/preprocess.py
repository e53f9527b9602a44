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

Audio (:mod:`emotrack.audio`), where the corpus has it: the session's audio file when the spec gives
``audio.path``, else the video's own sound track; 16 kHz mono, normalised per session, stored with
each frame (``audio`` in the record, ``audio`` in the session's manifest entry; ``false`` without).

Scale and resumption:

- ``workers``: sessions run in a pool of processes, each with its own MTCNN detector; the parent
  collects the entries and writes the manifest once, in the corpus' session order. Records are
  serialised deterministically, so a session gives the same bytes (and checksum) in any process.
- ``shard=(i, n)``: this run takes sessions ``i, i + n, i + 2n, ...`` of the corpus' stable session
  order (the partition file's order, or the sessions' names in natural order) and writes its part of
  the manifest, ``manifest.shard-i-of-n.json``. When all ``n`` parts are in the folder after a shard
  finishes, they are merged into ``manifest.json`` at once; :func:`merge_shards` (``emotrack
  preprocess --merge-shards``) does it by hand, e.g. after copying the parts of several machines
  into one folder. The merged manifest equals that of one unsharded run.
- Resumption: a session whose record exists and whose SHA-256 matches its entry in a manifest, a
  shard part or a journal of the same corpus, root and options in the folder is kept, not redone; a
  missing, truncated or otherwise changed record is redone. As sessions finish, their entries are
  appended to a journal (``manifest.partial.jsonl``, or ``manifest.shard-i-of-n.partial.jsonl``; one
  JSON line each, a torn last line is ignored), so that an interrupted run resumes where it stopped;
  the journal is removed once the manifest is written. Manifests, like records, are written under a temporary name and renamed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .audio import AUDIO_RATE, AudioError, has_audio_stream, session_audio
from .faces import FaceDetector, crop_face
from .specs import (CorpusSpec, PathTemplate, RatingsError, RatingTrack, Session, SpecError, discover, load_spec,
                    read_partitions, read_ratings, with_overrides)
from .video import VideoError, read_frames_dir, read_video, video_fps

MANIFEST = "manifest.json"
FORMAT = "emotrack-sessions/1"
_SHARD_PART = re.compile(r"manifest\.shard-(\d+)-of-(\d+)\.json")

__all__ = ["MANIFEST", "AudioError", "NoFaceError", "PreprocessOptions", "PreprocessReport", "RatingsError",
           "align_ratings", "align_valid", "face_crops", "merge_shards", "parse_shard", "preprocess_corpus",
           "process_session", "read_partitions", "read_ratings", "shard_manifest_name"]


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
    max_length_mismatch_s: float = 1.0      # video vs ratings (and audio) duration tolerance
    rater: str | None = None                # one rater of a multi-rater corpus instead of their mean
    video_path: str | None = None           # replaces the spec's video path template
    video_fps: float | None = None          # replaces the spec's video frame rate
    audio: bool | None = None               # store audio; None: where the corpus has it

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        return d


@dataclasses.dataclass
class PreprocessReport:
    """What a run did: ``done`` (manifest entries of the sessions in its manifest, ``skipped`` among them:
    those kept from an earlier run after their checksum was verified), ``failed``, ``unlabelled``;
    ``manifest`` the file written and ``merged`` whether the shard parts were merged into ``manifest.json``."""

    out_dir: Path
    done: list[dict[str, Any]]
    failed: list[dict[str, str]]
    unlabelled: list[dict[str, str]] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    manifest: Path | None = None
    merged: bool = False

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


def _temporary(path: Path) -> Path:
    """A name beside ``path`` to write into before renaming: unique, so that concurrent runs on one folder
    (shards) never write into each other's files."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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


def audio_source(spec: CorpusSpec, root: Path, info: Session, options: PreprocessOptions) -> tuple[Path | None, bool]:
    """Where a session's audio comes from: ``(path, own_track)``, ``(None, False)`` for none.

    The spec's ``audio.path`` (a separate file, which must then exist) when it has one; else the video's
    own sound track, where the video has one (with ``options.audio`` True, a video without one is an
    error, reported when it is read). ``options.audio`` False: none.
    """
    if options.audio is False:
        return None, False
    template = spec.audio.get("path")
    if template:
        rel = PathTemplate(template).format(**info.fields)
        if re.search(r"[*?]", rel):
            hits = sorted(Path(root).glob(rel))
            if len(hits) > 1:
                raise AudioError(f"several audio files match session {info.session}: {', '.join(map(str, hits))}")
            return (hits[0] if hits else Path(root) / rel), False
        return Path(root) / rel, False
    if spec.video.get("kind", "file") == "frames":
        return None, False
    if options.audio or has_audio_stream(info.video):
        return Path(info.video), True
    return None, False


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
    # The audio, too, before the faces: a bad audio file fails fast.
    audio, audio_info = None, False
    source, own_track = audio_source(spec, root, info, options)
    if source is not None:
        audio, audio_info = session_audio(source, frame_times, fps, video_end, own_track,
                                          options.max_length_mismatch_s)

    crops, present, boxes = face_crops(frames, detector, options, video_path, select=info.face_select)
    aligned = align_ratings(track.times, track.values, frame_times)
    valid = align_valid(track.times, track.valid, frame_times)
    subject = track.subject or info.subject

    record = session_to_example(
        session=info.session, subject=subject, partition=info.partition, fps=fps,
        rating_rate=track.rate_hz, dimensions=spec.dimensions, frames=crops,
        face_present=present, boxes=boxes, ratings=aligned, times=frame_times,
        image_format=options.image_format, rating_valid=valid, audio=audio,
        audio_rate=AUDIO_RATE if audio is not None else None)
    target = out_dir / "sessions" / f"{info.session}.tfrecord"
    tmp = _temporary(target)
    try:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            writer.write(record)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "session": info.session, "subject": subject, "partition": info.partition,
        "file": f"sessions/{target.name}", "sha256": _sha256(target), "num_frames": int(len(frames)),
        "fps": float(fps), "rating_rate": track.rate_hz, "duration_s": float(video_end),
        "face_fraction": float(present.mean()), "rating_valid_fraction": float(valid.mean()),
        "video": str(video_path), "ratings": sorted({str(p) for p in info.ratings.values()}),
        "audio": audio_info,
    }


#: Errors that fail one session (reported, skipped) rather than the run.
SESSION_ERRORS = (VideoError, AudioError, RatingsError, NoFaceError, OSError)


def _make_detector(options: PreprocessOptions) -> FaceDetector:
    return FaceDetector(min_confidence=options.min_confidence, batch_size=options.batch_size,
                        select=options.select)


_WORKER: dict[str, Any] = {}  # per worker process: its face detector


def _init_worker(options: PreprocessOptions, threads: int) -> None:
    import tensorflow as tf

    # Workers share the machine's cores instead of each taking all of them.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    _WORKER["detector"] = _make_detector(options)


def _run_session(spec: CorpusSpec, root: Path, info: Session, out_dir: Path, options: PreprocessOptions,
                 detector: FaceDetector | None = None) -> tuple[str, dict[str, Any]]:
    """``("done", entry)`` or ``("failed", {"session", "error"})``; in a worker process without ``detector``."""
    try:
        return "done", process_session(spec, root, info, out_dir, options,
                                       _WORKER["detector"] if detector is None else detector)
    except SESSION_ERRORS as err:
        return "failed", {"session": info.session, "error": str(err)}


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not int(m.group(1)) < int(m.group(2)):
        raise ValueError(f"a shard is i/n with 0 <= i < n (e.g. 0/4 for the first of four), not {text!r}")
    return int(m.group(1)), int(m.group(2))


def shard_manifest_name(index: int, count: int) -> str:
    """The manifest part that shard ``index`` of ``count`` writes: ``manifest.shard-i-of-n.json``."""
    return f"manifest.shard-{index}-of-{count}.json"


def _journal_name(manifest_name: str) -> str:
    return manifest_name[:-len(".json")] + ".partial.jsonl"


def _fingerprint(spec: CorpusSpec, root: Path, options: PreprocessOptions) -> dict[str, Any]:
    """What a record depends on beside its session: entries of runs with another fingerprint are not reused."""
    return json.loads(json.dumps({"format": FORMAT, "spec": spec.to_dict(), "root": str(root.resolve()),
                                  "options": options.to_dict()}))


def _same_run(manifest: dict[str, Any], fingerprint: dict[str, Any]) -> bool:
    return all(manifest.get(key) == value for key, value in fingerprint.items())


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_journal(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A journal's header and its entries; lines that do not parse (a torn last line) are left out."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None, []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    if not rows or "journal" not in rows[0]:
        return None, []
    return rows[0]["journal"], [r for r in rows[1:] if "session" in r and "sha256" in r]


class _Journal:
    """Entries appended one JSON line at a time as sessions finish, so that an interrupted run resumes.

    The first line holds the run's fingerprint; a journal of another fingerprint is started afresh.
    """

    def __init__(self, path: Path, fingerprint: dict[str, Any]):
        self.path = path
        header, _ = _read_journal(path)
        if header == fingerprint:
            self.fh = open(path, "a")
            if not path.read_bytes().endswith(b"\n"):
                self.fh.write("\n")  # end a line torn by an interruption, so that the next one parses
        else:
            self.fh = open(path, "w")
            self.add({"journal": fingerprint})

    def add(self, row: dict[str, Any]) -> None:
        self.fh.write(json.dumps(row) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _earlier_entries(out_dir: Path, fingerprint: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Entries of earlier runs with the same fingerprint, by session: from ``manifest.json``, the shard
    parts and the journals in ``out_dir``."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in [out_dir / MANIFEST, *sorted(out_dir.glob("manifest.shard-*-of-*.json"))]:
        manifest = _read_json(path)
        if manifest and _same_run(manifest, fingerprint):
            for entry in manifest.get("sessions", []):
                found.setdefault(entry["session"], []).append(entry)
    for path in sorted(out_dir.glob("manifest*.partial.jsonl")):
        header, entries = _read_journal(path)
        if header == fingerprint:
            for entry in entries:
                found.setdefault(entry["session"], []).append(entry)
    return found


def _verified(out_dir: Path, session: str, candidates: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The earlier entry whose record is on disk with the checksum it names, or None and why not."""
    expected = f"sessions/{session}.tfrecord"
    path = out_dir / expected
    if not path.is_file():
        return None, f"its record {path} is missing"
    digest = _sha256(path)
    for entry in candidates:
        if entry.get("file") == expected and entry.get("sha256") == digest:
            return entry, ""
    return None, f"its record {path} does not match the checksum in the manifest (truncated or changed)"


def _audio_summary(done: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest's ``audio``: ``sample_rate`` and ``samples_per_frame`` are set when every session holds
    audio (and, for ``samples_per_frame``, all at one frame rate); None otherwise."""
    with_audio = [e for e in done if e.get("audio")]
    without = [e["session"] for e in done if not e.get("audio")]
    complete = bool(done) and not without
    per_frame = sorted({e["audio"]["samples_per_frame"] for e in with_audio})
    return {
        "sample_rate": AUDIO_RATE if complete else None,
        "samples_per_frame": per_frame[0] if complete and len(per_frame) == 1 else None,
        "channels": 1,
        "sessions_with_audio": len(with_audio),
        "sessions_without_audio": without,
        "normalisation": "zero mean, unit variance over each session's stored span (Tzirakis et al. 2017); "
                         "the mean and std of each session are in its entry, in full-scale units",
        "window": "frame k at time t_k holds samples [round(t_k * sample_rate), + samples_per_frame), "
                  "samples_per_frame = round(sample_rate / fps); zeros outside the recording",
    }


def _manifest(base: dict[str, Any], done: list[dict[str, Any]], failed: list[dict[str, str]],
              unlabelled: list[dict[str, str]], seconds: float, shard: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = base["spec"]
    low, high = (float(v) for v in spec["ratings"]["range"])
    options = base["options"]
    rate = spec["ratings"]["rate_hz"]
    manifest = {
        "format": base["format"],
        "emotrack_version": __version__,
        "spec": spec,
        "root": base["root"],
        "dimensions": list(spec["ratings"]["dimensions"]),
        "rating_rate": None if rate == "video" else float(rate),
        "rating_scale": {"from": [low, high], "to": [-1.0, 1.0], "missing_value": spec["ratings"].get("missing_value")},
        "frame": {"height": options["size"][0], "width": options["size"][1], "channels": 1 if options["gray"] else 3},
        "audio": _audio_summary(done),
        "options": options,
        "partitions": {name: [s["session"] for s in done if s["partition"] == name]
                       for name in spec["partitions"]["names"]},
        "sessions": done,
        "failed": failed,
        "unlabelled": unlabelled,
        "seconds": round(seconds, 2),
    }
    if shard is not None:
        manifest["shard"] = shard
    return manifest


def _check_audio_option(spec: CorpusSpec, options: PreprocessOptions) -> None:
    if options.audio and not spec.audio.get("path") and spec.video.get("kind", "file") == "frames":
        raise SpecError(f"spec {spec.name!r} has no audio: no audio.path, and its videos are folders of frames; "
                        f"preprocess without --audio")


def preprocess_corpus(spec: str | Path | CorpusSpec, root: str | Path, out_dir: str | Path,
                      options: PreprocessOptions | None = None, progress: bool = True,
                      log=print, workers: int = 1, shard: tuple[int, int] | None = None,
                      resume: bool = True) -> PreprocessReport:
    """Preprocess every session of a corpus (or of one shard of it) into ``out_dir``.

    Writes ``out_dir/sessions/<session>.tfrecord`` and ``out_dir/manifest.json`` (sessions,
    partitions, rates, counts, checksums, options, audio, failures, sessions without ratings); with
    ``shard``, ``out_dir/manifest.shard-i-of-n.json`` instead, merged into ``manifest.json`` when all
    parts are there. Sessions that fail, and files the spec cannot pair (a rating file without its video
    or the reverse), are listed under ``failed`` in the manifest and the report; the others are
    written. Sessions of a partition the spec marks unlabelled (a challenge's test set) that come
    without ratings are listed under ``unlabelled`` and not written.

    Args:
        workers: processes that preprocess sessions in parallel, each with its own face detector.
        shard: ``(i, n)``: only sessions i, i + n, ... of the corpus' session order.
        resume: keep the sessions of an earlier run of the same corpus, root and options whose records
            pass their checksum (see the module docstring); False redoes every session.
    Raises:
        SpecError: a spec or an option that does not fit it.
        LayoutError: a root that is not the corpus the spec describes (nothing found where it says);
            nothing is written then.
    """
    from tqdm import tqdm

    spec = spec if isinstance(spec, CorpusSpec) else load_spec(spec)
    options = options or PreprocessOptions()
    spec = with_overrides(spec, video_path=options.video_path, video_fps=options.video_fps, rater=options.rater)
    _check_audio_option(spec, options)
    if shard is not None:
        shard = parse_shard(f"{shard[0]}/{shard[1]}")
    root, out_dir = Path(root), Path(out_dir)
    found = discover(spec, root)
    (out_dir / "sessions").mkdir(parents=True, exist_ok=True)
    started = time.time()
    failed = list(found.problems)
    for f in failed:
        log(f"session {f['session']} was skipped: {f['error']}")
    order = [s.session for s in found.sessions]
    mine = found.sessions[shard[0]::shard[1]] if shard else list(found.sessions)
    fingerprint = _fingerprint(spec, root, options)
    name = shard_manifest_name(*shard) if shard else MANIFEST

    results: dict[str, dict[str, Any]] = {}
    earlier = _earlier_entries(out_dir, fingerprint) if resume else {}
    for info in mine:
        if info.session in earlier:
            entry, why = _verified(out_dir, info.session, earlier[info.session])
            if entry is not None:
                results[info.session] = entry
            else:
                log(f"session {info.session} is redone: {why}")
    skipped = [s.session for s in mine if s.session in results]
    if skipped:
        log(f"{len(skipped)} session(s) already preprocessed with these options (checksums verified): kept")
    todo = [s for s in mine if s.session not in results]

    journal = _Journal(out_dir / _journal_name(name), fingerprint)
    errors: dict[str, dict[str, str]] = {}

    def collect(info: Session, outcome: tuple[str, dict[str, Any]]) -> None:
        status, item = outcome
        if status == "done":
            results[info.session] = item
            journal.add(item)
        else:
            errors[info.session] = item
            log(f"session {info.session} failed and was skipped: {item['error']}")

    bar = tqdm(total=len(todo), desc="preprocess", unit="session", disable=not progress)
    try:
        if min(workers, len(todo)) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            count = min(workers, len(todo))
            threads = max(1, (os.cpu_count() or 1) // count)
            # spawn, not fork: TensorFlow's runtime in the parent does not survive a fork.
            pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker, initargs=(options, threads))
            try:
                futures = {pool.submit(_run_session, spec, root, info, out_dir, options): info for info in todo}
                for future in as_completed(futures):
                    collect(futures[future], future.result())
                    bar.update()
            finally:
                # On an error or an interruption, sessions not yet started are dropped, not waited for.
                pool.shutdown(wait=True, cancel_futures=True)
        elif todo:
            detector = _make_detector(options)
            for info in todo:
                bar.set_postfix_str(info.session)
                collect(info, _run_session(spec, root, info, out_dir, options, detector))
                bar.update()
    finally:
        bar.close()
        journal.close()

    done = [results[s.session] for s in mine if s.session in results]
    failed += [errors[s.session] for s in mine if s.session in errors]
    unlabelled = [{"session": s.session, "partition": s.partition, "video": str(s.video)} for s in found.unlabelled]
    base = {**fingerprint, "format": FORMAT}
    shard_info = {"index": shard[0], "count": shard[1], "order": order} if shard else None
    manifest = _manifest(base, done, failed, unlabelled, time.time() - started, shard_info)
    _write_atomic(out_dir / name, json.dumps(manifest, indent=2).encode())
    journal.remove()
    report = PreprocessReport(out_dir=out_dir, done=done, failed=failed, unlabelled=unlabelled, skipped=skipped,
                              manifest=out_dir / name)
    if shard:
        parts = [out_dir / shard_manifest_name(i, shard[1]) for i in range(shard[1])]
        if all(p.is_file() for p in parts):
            try:
                merge_shards(out_dir, shard[1])
                report.merged = True
                log(f"all {shard[1]} shard parts are in {out_dir}: merged into {MANIFEST}")
            except ValueError as err:
                log(f"shard parts not merged: {err}")
    return report


def merge_shards(out_dir: str | Path, count: int | None = None) -> PreprocessReport:
    """Merge the shard parts ``manifest.shard-i-of-n.json`` in ``out_dir`` into ``manifest.json``.

    The result equals the manifest of one unsharded run over the same sessions (sessions in the corpus'
    order, discovery problems once, ``seconds`` the sum of the parts').

    Args:
        count: n, where parts of several shard counts lie in the folder.
    Raises:
        FileNotFoundError: naming the parts that are missing.
        ValueError: parts of different corpora, roots or options, or of several shard counts.
    """
    out_dir = Path(out_dir)
    counts: dict[int, dict[int, Path]] = {}
    for path in out_dir.glob("manifest.shard-*-of-*.json"):
        m = _SHARD_PART.fullmatch(path.name)
        if m:
            counts.setdefault(int(m.group(2)), {})[int(m.group(1))] = path
    if not counts:
        raise FileNotFoundError(f"{out_dir} holds no shard part (manifest.shard-i-of-n.json); run "
                                f"`emotrack preprocess ... --shard i/n --out {out_dir}` first")
    if count is None:
        if len(counts) > 1:
            raise ValueError(f"{out_dir} holds shard parts of {len(counts)} shard counts ({sorted(counts)}); "
                             f"remove the stale ones")
        count = next(iter(counts))
    present = counts.get(count, {})
    missing = [shard_manifest_name(i, count) for i in range(count) if i not in present]
    if missing:
        raise FileNotFoundError(f"shard part(s) missing in {out_dir}: {', '.join(missing)}; run those shards "
                                f"(`emotrack preprocess ... --shard i/{count}`) or copy their parts here")
    parts = []
    for i in range(count):
        part = _read_json(present[i])
        if part is None or part.get("shard", {}).get("index") != i:
            raise ValueError(f"{present[i]} is not a shard part written by emotrack preprocess")
        parts.append(part)
    first = parts[0]
    keys = ("format", "spec", "root", "options")
    for i, part in enumerate(parts[1:], 1):
        differ = [k for k in keys if part.get(k) != first.get(k)] + (
            ["session order"] if part["shard"]["order"] != first["shard"]["order"] else [])
        if differ:
            raise ValueError(f"{present[i]} and {present[0]} come from different runs (their {', '.join(differ)} "
                             f"differ); rerun the shards with the same spec, root and options")
    order = {name: k for k, name in enumerate(first["shard"]["order"])}
    done = sorted((e for p in parts for e in p["sessions"]), key=lambda e: order.get(e["session"], len(order)))
    failed, seen = [], set()
    problems = [f for p in parts for f in p["failed"] if f["session"] not in order]
    for f in problems + sorted((f for p in parts for f in p["failed"] if f["session"] in order),
                               key=lambda f: order[f["session"]]):
        if (f["session"], f["error"]) not in seen:
            seen.add((f["session"], f["error"]))
            failed.append(f)
    unlabelled = list({u["session"]: u for p in parts for u in p["unlabelled"]}.values())
    manifest = _manifest(first, done, failed, unlabelled, sum(p["seconds"] for p in parts))
    _write_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=2).encode())
    return PreprocessReport(out_dir=out_dir, done=done, failed=failed, unlabelled=unlabelled,
                            manifest=out_dir / MANIFEST, merged=True)
