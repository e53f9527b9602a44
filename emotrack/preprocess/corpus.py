"""Corpus -> face crops -> TFRecords + ``manifest.json``.

The corpus spec (:mod:`emotrack.corpora.layout`) finds the sessions and their files. For every session: read
its ratings, stream the video (or its folder of frames) frame by frame, find the face, crop it with a
margin at every crop set asked for, align the ratings to the frames by their time stamps and write one
``SequenceExample`` (see :mod:`emotrack.records.tfrecord`) to ``<out>/sessions/<session>.tfrecord``.
A session that fails is reported by name and skipped; every file is written under a temporary name
and renamed when complete, so nothing is left half-written.

Faces (:mod:`emotrack.faces.detect`):

- ``tracker=True`` (the default): `emotrack.faces.track.FaceTracker` on the decoded frames as they come (the
  decoding read ahead in a thread): MTCNN's proposal stages every ``detect_every`` frames on frames shrunk
  so that a face of ``min_face`` of the shorter side is MTCNN's smallest, O-Net at full resolution on every
  frame, detection afresh when the track is lost or the picture cuts. On the benchmark video
  (``make bench-preprocess``) it agrees with MTCNN run on every frame at its defaults on 99.7 % of the
  frames (IoU >= 0.7), at about 40 times its speed.
- ``tracker=False``: ``mtcnn``'s own ``detect_faces`` at its defaults on every frame (batches of
  ``batch_size``); ``min_face`` and ``detect_every`` do not apply.

Either way the face kept is the one ``select`` names (`emotrack.faces.detect.choose_face`), or the session's
own side (``left`` / ``right``) where the spec gives one per session (two people in one video): a face
found alone in the other half of the frame is then not taken for the one rated. Frames without a face
are kept with ``face_present = 0``; their crops are cut at the last face box seen (zeros before the
first face), as `emotrack.apps.predict` cuts them; their ``box`` is zeros. Crops are cut while the faces of
later frames are still being found, so a session holds only its encoded crops in memory, never its
frames.

Crop sets: ``crops`` names one or more sets (`emotrack.faces.crop.CROP_SPECS`: ``huang2018`` 112x112 gray,
``tzirakis2017`` 96x96 RGB, ``teixeira2021`` 100x80 RGB, ``astnet`` 224x224 RGB; or ``HxW[gray|rgb]``),
all cut from one face box in one pass (`emotrack.faces.crop.crop_faces`). The first set is the record's
``frames``, so everything that reads ``frames`` works unchanged; every other set ``<name>`` is stored as
``frames_<name>``, and `emotrack.data.pipeline.load_sessions` returns it as ``frames`` on request. Without
``crops``, one set of ``size`` and ``gray``. The manifest lists the sets under ``crops`` and names the
default one in ``frame``.

Image format: ``jpeg`` (quality 95, no chroma subsampling) by default, ``png`` on request. JPEG is lossy:
a stored crop differs from the crop cut by about one grey level on average (at most some 20 at sharp
edges; PSNR above 40 dB), while `emotrack.apps.predict` feeds its crops to the model unencoded. In return,
on the benchmark video (``make bench-preprocess``) JPEG writes a 112x112 gray crop in 0.09 ms against
PNG's 0.6 ms, and the four model families' crops of a frame in 1.2 ms against 7.6 ms, which makes PNG the
slowest stage of the pipeline with several crop sets (about 150 against 85 frames/s end to end on two
cores); the records are 1.6 to 3 times smaller, and tf.data decodes JPEG crops three times faster, at
every epoch. Use ``png`` for crops that must read back exactly.

Frames whose rating the corpus marks as missing (Aff-Wild2's ``-5``) must never be trained on. The
session format has one per-frame mask, ``face_present``, which training weights and evaluation masks
read; such frames are therefore written with ``face_present = 0``. The manifest keeps both facts apart:
``face_fraction`` (frames with a face) and ``rating_valid_fraction`` (frames with a rating).

Audio (:mod:`emotrack.media.audio`), where the corpus has it: the session's audio file when the spec gives
``audio.path``, else the video's own sound track; 16 kHz mono, normalised per session, stored with
each frame (``audio`` in the record, ``audio`` in the session's manifest entry; ``false`` without).
A missing or unreadable audio file fails the session before its frames are decoded; the length checks
of video, ratings and audio come once the video has been read to its end.

Scale and resumption:

- ``workers``: sessions run in a pool of processes, each with its own MTCNN detector; the parent
  collects the entries and writes the manifest once, in the corpus' session order. Records are
  serialised deterministically, so a session gives the same bytes (and checksum) in any process of one
  machine. (The tracker's boxes are O-Net's numbers, which change in their last bits with the number of
  threads TensorFlow splits an op over, i.e. with the machine's core count: records of one session made
  on machines with different core counts may differ there.)
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
import math
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from emotrack import __version__
from emotrack.corpora.layout import Session, discover, read_partitions
from emotrack.corpora.ratings import RatingsError, RatingTrack, read_ratings
from emotrack.corpora.schema import CorpusSpec, PathTemplate
from emotrack.corpora.spec import SpecError, load_spec, with_overrides
from emotrack.faces.crop import (
    CropSpec,
    crop_faces,
    crop_set,
    crop_sets,
    parse_crops,
)
from emotrack.faces.detect import SELECT, Face, FaceDetector, choose_face
from emotrack.faces.track import FaceTracker, read_ahead
from emotrack.files import atomic_path
from emotrack.media.audio import (
    AUDIO_RATE,
    AudioError,
    has_audio_stream,
    read_audio,
    session_audio,
)
from emotrack.media.video import VideoError, iter_frames, read_frames_dir, video_fps
from emotrack.records.manifest import FORMAT, MANIFEST
from emotrack.records.tfrecord import IMAGE_FORMATS, EncodedFrames, encode_image

_SHARD_PART = re.compile(r"manifest\.shard-(\d+)-of-(\d+)\.json")

__all__ = ["MANIFEST", "AudioError", "NoFaceError", "PreprocessOptions", "PreprocessReport", "RatingsError",
           "align_ratings", "align_valid", "at_rate", "crop_set", "crop_sets", "face_crops", "find_faces", "held_index",
           "merge_shards", "parse_crops", "parse_shard", "preprocess_corpus", "process_session", "read_partitions",
           "read_ratings", "shard_manifest_name"]


@dataclasses.dataclass
class PreprocessOptions:
    """What preprocessing does to every frame; written to the manifest as ``options``.

    ``crops``: crop sets (see `crop_set`), the first stored as ``frames``; with them, ``size`` and ``gray``
    are set to the first set's. ``min_face``: the smallest face the tracker finds, as a fraction of the
    frame's shorter side; smaller faces are missed. 0.1 (36 px at 360p, 72 px at 720p) finds the faces of
    lab recordings (RECOLA, SEWA, SEMAINE: 0.3 of the frame and more), of the synthetic corpus (0.3-0.55)
    and of most in-the-wild footage (Aff-Wild2, AFEW-VA: two people side by side, a face in a wide shot).
    0.2 halves the time of the proposal stages but saves only about a tenth end to end (O-Net, which runs
    on every frame at any ``min_face``, dominates); None looks down to MTCNN's 20 pixels.
    """

    size: tuple[int, int] = (112, 112)      # (height, width) of the face crop, without crops
    gray: bool = True
    crops: tuple[str, ...] | None = None    # crop sets by name; the first is the default one
    margin: float = 0.2                     # fraction of the face box added around it
    align: bool = False                     # rotate each crop so that the eyes are level
    min_confidence: float = 0.9
    batch_size: int = 32                    # frames per MTCNN call
    select: str = "largest"
    tracker: bool = True                    # FaceTracker; False: MTCNN on every frame
    detect_every: int = 5                   # tracker: MTCNN's proposal stages every N frames
    min_face: float | None = 0.1            # tracker: smallest face, fraction of the shorter frame side
    image_format: str = "jpeg"
    max_length_mismatch_s: float = 1.0      # video vs ratings (and audio) duration tolerance
    rater: str | None = None                # one rater of a multi-rater corpus instead of their mean
    video_path: str | None = None           # replaces the spec's video path template
    video_fps: float | None = None          # replaces the spec's video frame rate
    audio: bool | None = None               # store audio; None: where the corpus has it
    fps: float | None = None                # keep this many frames per second (see `at_rate`); None: all
    resample: str = "linear"                # ratings at the frames' times: "linear" or "hold" (last step)

    def __post_init__(self):
        if self.crops is not None:
            self.crops = parse_crops(self.crops) if isinstance(self.crops, str) else \
                parse_crops(",".join(self.crops))
            first = crop_set(self.crops[0])[1]
            self.size, self.gray = (first.height, first.width), first.gray
        self.size = tuple(int(v) for v in self.size)
        if self.select not in SELECT:
            raise ValueError(f"select must be one of {', '.join(SELECT)}, not {self.select!r}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, not {self.image_format!r}")
        if int(self.detect_every) < 1:
            raise ValueError(f"detect_every must be at least 1, not {self.detect_every}")
        if self.min_face is not None and not 0 < self.min_face <= 1:
            raise ValueError(f"min_face is a fraction of the frame's shorter side in (0, 1], not {self.min_face!r}")
        if self.fps is not None and not float(self.fps) > 0:
            raise ValueError(f"fps must be a positive frame rate, not {self.fps!r}")
        if self.resample not in RESAMPLE:
            raise ValueError(f"resample must be one of {', '.join(RESAMPLE)}, not {self.resample!r}")

    def crop_sets(self) -> dict[str, CropSpec]:
        """This run's crop sets by name, the default first (see `crop_sets`)."""
        return crop_sets(self.crops, self.size, self.gray)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        d["crops"] = list(self.crops) if self.crops is not None else None
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


#: How ratings are carried to the frames' times: ``linear`` interpolation between rating steps, or
#: ``hold`` (the last step at or before the frame, as a rating holds until the next one).
RESAMPLE = ("linear", "hold")


def held_index(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the last of ``times`` (sorted) at or before each time of ``at`` (the first one before
    them): the step a held signal shows at those times."""
    return np.clip(np.searchsorted(times, np.asarray(at) + 1e-9, side="right") - 1, 0, len(times) - 1)


def align_ratings(rating_times: np.ndarray, ratings: np.ndarray, frame_times: np.ndarray,
                  method: str = "linear") -> np.ndarray:
    """Ratings at the frames' time stamps (see `RESAMPLE`), held constant before the first step and
    after the last. Returns float32 (T, D)."""
    if method == "hold":
        return np.asarray(ratings, np.float32)[held_index(rating_times, frame_times)]
    if method != "linear":
        raise ValueError(f"resample must be one of {', '.join(RESAMPLE)}, not {method!r}")
    return np.stack([np.interp(frame_times, rating_times, ratings[:, d]) for d in range(ratings.shape[1])],
                    axis=1).astype(np.float32)


def align_valid(rating_times: np.ndarray, valid: np.ndarray, frame_times: np.ndarray,
                method: str = "linear") -> np.ndarray:
    """Whether each frame's aligned rating comes from valid rating steps only: with ``linear``, a frame
    between two steps is valid when both are (interpolation of the 0/1 mask reaches 1); with ``hold``,
    when the step it holds is. Returns bool (T,)."""
    if method == "hold":
        return np.asarray(valid, bool)[held_index(rating_times, frame_times)]
    return np.interp(frame_times, rating_times, np.asarray(valid, np.float64)) > 1.0 - 1e-9


def at_rate(items: Iterable[tuple[float, Any]], rate: float | None) -> Iterator[tuple[float, Any]]:
    """The (time, frame) pairs a video keeps when subsampled to ``rate`` frames/s: the first frame of
    every 1/rate-second slot from time 0, so every n-th frame when the video runs at n times ``rate``
    (otherwise the kept frames are as close to the rate as the video's own frames allow; their true
    times are kept). ``rate`` None, or at or above the video's rate: every frame."""
    last = -1
    for t, frame in items:
        if rate is not None:
            slot = math.floor(t * rate + 1e-6)
            if slot <= last:
                continue
            last = slot
        yield t, frame


class NoFaceError(ValueError):
    """A video in which MTCNN finds no face in any frame."""


def _detected(detector: FaceDetector, frames: Iterable[np.ndarray], select: str
              ) -> Iterator[tuple[np.ndarray, Face | None]]:
    """(frame, face) for every frame: `FaceDetector` on batches of ``batch_size`` frames, the face chosen by
    ``select`` (``tracked`` follows the face across batches); decoding reads one batch ahead."""
    previous, batch = None, []
    source = read_ahead(frames, detector.batch_size)

    def chosen(chunk):
        nonlocal previous
        for frame, faces in zip(chunk, detector.detect_all(chunk)):
            face = choose_face(faces, select, previous, frame_width=frame.shape[1])
            previous = face if face is not None else previous
            yield frame, face

    try:
        for frame in source:
            batch.append(frame)
            if len(batch) == detector.batch_size:
                yield from chosen(batch)
                batch = []
        if batch:
            yield from chosen(batch)
    finally:
        source.close()


def find_faces(finder: FaceTracker | FaceDetector, frames: Iterable[np.ndarray], select: str
               ) -> Iterator[tuple[np.ndarray, Face | None]]:
    """(frame, face) for every frame, in order, with ``select``'s face."""
    if isinstance(finder, FaceDetector):
        return _detected(finder, frames, select)
    if finder.select != select:
        finder = FaceTracker(every=finder.every, min_face=finder.detector.min_face,
                             min_confidence=finder.min_confidence, select=select, batch_size=finder.batch_size,
                             read_ahead=finder.read_ahead)
    return finder.track(frames)


def face_crops(frames: Iterable[np.ndarray], finder: FaceTracker | FaceDetector, options: PreprocessOptions,
               source: str | Path, select: str | None = None
               ) -> tuple[dict[str, EncodedFrames], np.ndarray, np.ndarray]:
    """Find the face in every frame and cut it at every crop set of ``options``, encoded.

    The faces are found in a background thread while this one cuts and encodes the crops of the frames
    before; frames are dropped once cut.

    Args:
        frames: RGB uint8 (H, W, 3) frames, in order (an iterator is read once).
        finder: a `FaceTracker` or a `FaceDetector` (see the module docstring).
        source: the video's name, for the error message.
        select: the face to keep (``left`` / ``right`` for two people); ``options.select`` when None.
    Returns:
        ``{set name: EncodedFrames}`` (T images each, in ``options.image_format``, the default set first),
        face_present int64 (T,), boxes float32 (T, 4) (x, y, w, h; zeros without a face).
    Raises:
        NoFaceError: no face in any frame.
    """
    sets = options.crop_sets()
    specs = list(sets.values())
    select = select or options.select
    images: dict[str, list[bytes]] = {name: [] for name in sets}
    present, boxes = [], []
    blanks = None
    last: Face | None = None
    found = find_faces(finder, frames, select)
    # Up to two chunks of the tracker's frames wait here while the next chunk's faces are found.
    ahead = read_ahead(found, 2 * finder.batch_size)
    try:
        for frame, face in ahead:
            if face is not None:
                last = face
            present.append(face is not None)
            boxes.append(face.box if face is not None else (0.0, 0.0, 0.0, 0.0))
            if last is not None:
                encoded = [encode_image(crop, options.image_format)
                           for crop in crop_faces(frame, last, specs, options.margin, options.align)]
            else:  # before the first face: black crops, encoded once
                if blanks is None:
                    blanks = [encode_image(np.zeros(spec.shape, np.uint8), options.image_format) for spec in specs]
                encoded = blanks
            for name, image in zip(sets, encoded):
                images[name].append(image)
    finally:
        ahead.close()
    present_arr = np.array(present, dtype=np.int64)
    if not present_arr.any():
        where = f" on its {select} side" if select in ("left", "right") else ""
        raise NoFaceError(f"no face found{where} in any frame of {source}; check the video or lower "
                          f"--min-confidence" + (" or --min-face" if isinstance(finder, FaceTracker) else ""))
    crops = {name: EncodedFrames(images[name], spec.shape) for name, spec in sets.items()}
    return crops, present_arr, np.array(boxes, np.float32).reshape(-1, 4)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class _Timeline:
    """A session's frames streamed with their time stamps (seconds from the first frame, or ``k / fps`` where
    the spec fixes the rate, as `emotrack.media.video.read_video` and `read_frames_dir` give them).

    Iterating yields the frames before ``until`` (the end of the ratings), subsampled to ``rate`` frames/s
    (see `at_rate`), and records their times in ``kept``, and every frame's time, those after ``until``
    included (they are decoded, not kept), in ``times``.
    """

    def __init__(self, spec: CorpusSpec, session: Session, until: float, rate: float | None = None):
        v = spec.video
        self.path, self.until = session.video, until
        self.times: list[float] = []
        self.kept: list[float] = []
        if v.get("kind", "file") == "frames":
            self._frames, times, self.fps = read_frames_dir(session.video, float(v["fps"]), v.get("frames", "*.png"))
            self._times: np.ndarray | None = times
        else:
            self._frames, self._times = None, None
            self.fixed = v.get("fps", "from_file") != "from_file"
            self.fps = float(v["fps"]) if self.fixed else video_fps(session.video)
        # Subsampled only to a rate below the video's own.
        self.rate = float(rate) if rate is not None and float(rate) < self.fps - 1e-6 else None

    def _items(self) -> Iterator[tuple[float, np.ndarray]]:
        if self._frames is not None:
            yield from zip(self._times.tolist(), self._frames)
            return
        start = None
        for k, (t, frame) in enumerate(iter_frames(self.path)):
            if start is None:
                start = t
            yield (k / self.fps if self.fixed else t - start), frame
        if start is None:
            raise VideoError(f"video {self.path} holds no decodable frames")

    def _all(self) -> Iterator[tuple[float, np.ndarray]]:
        for t, frame in self._items():
            self.times.append(t)
            if t < self.until:
                yield t, frame

    def __iter__(self) -> Iterator[np.ndarray]:
        for t, frame in at_rate(self._all(), self.rate):
            self.kept.append(t)
            yield frame


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
                    options: PreprocessOptions, detector: FaceTracker | FaceDetector | None = None) -> dict[str, Any]:
    """Preprocess one session and write its TFRecord; returns its manifest entry.

    Args:
        detector: the face finder (`FaceTracker` or `FaceDetector`; its ``select`` is replaced by the
            session's side where the spec gives one); None: made from ``options``.
    """
    import tensorflow as tf

    from emotrack.records.tfrecord import session_to_example

    detector = detector if detector is not None else _make_detector(options)
    video_path = info.video
    ratings_files = ", ".join(sorted({str(p) for p in info.ratings.values()}))
    # The ratings are read first: a bad rating file fails before the (slow) decoding.
    track: RatingTrack = read_ratings(spec, info.ratings, video_fps=None if spec.rating_rate_hz
                                      else _declared_fps(spec, info))
    ratings_end = track.times[-1] + 1.0 / track.rate_hz
    # The audio file, too: one that is missing or unreadable fails here, before the faces.
    source, own_track = audio_source(spec, root, info, options)
    if source is not None and not has_audio_stream(source):
        read_audio(source)  # raises the AudioError that says what is wrong with the file

    timeline = _Timeline(spec, info, until=ratings_end, rate=options.fps)
    select = info.face_select or options.select
    crops, present, boxes = face_crops(timeline, detector, options, video_path, select=select)
    times, video_rate = np.asarray(timeline.times, np.float64), timeline.fps
    fps = timeline.rate or video_rate  # the stored frames' rate
    video_end = times[-1] + 1.0 / video_rate
    if abs(video_end - ratings_end) > options.max_length_mismatch_s:
        raise RatingsError(f"video {video_path} lasts {video_end:.2f} s but rating file {ratings_files} "
                           f"covers {ratings_end:.2f} s (tolerance {options.max_length_mismatch_s} s); "
                           f"check that they belong to the same session")
    frame_times = np.asarray(timeline.kept, np.float64)
    audio, audio_info = None, False
    if source is not None:
        audio, audio_info = session_audio(source, frame_times, fps, video_end, own_track,
                                          options.max_length_mismatch_s)

    aligned = align_ratings(track.times, track.values, frame_times, options.resample)
    valid = align_valid(track.times, track.valid, frame_times, options.resample)
    subject = track.subject or info.subject
    (default, frames), *others = crops.items()

    record = session_to_example(
        session=info.session, subject=subject, partition=info.partition, fps=fps,
        rating_rate=track.rate_hz, dimensions=spec.dimensions, frames=frames,
        face_present=present, boxes=boxes, ratings=aligned, times=frame_times,
        image_format=options.image_format, rating_valid=valid, audio=audio,
        audio_rate=AUDIO_RATE if audio is not None else None, crops=dict(others))
    target = out_dir / "sessions" / f"{info.session}.tfrecord"
    with atomic_path(target) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
        writer.write(record)
    return {
        "session": info.session, "subject": subject, "partition": info.partition,
        "file": f"sessions/{target.name}", "sha256": _sha256(target), "num_frames": int(len(frame_times)),
        "fps": float(fps), "video_fps": float(video_rate), "rating_rate": track.rate_hz,
        "duration_s": float(video_end),
        # Within the tolerance, the longer of video and ratings is cut to the shorter: how much, in s.
        "trimmed_s": {"video": round(max(0.0, video_end - ratings_end), 6),
                      "ratings": round(max(0.0, ratings_end - video_end), 6)},
        "face_fraction": float(present.mean()), "rating_valid_fraction": float(valid.mean()),
        "video": str(video_path), "ratings": sorted({str(p) for p in info.ratings.values()}),
        "audio": audio_info,
    }


#: Errors that fail one session (reported, skipped) rather than the run.
SESSION_ERRORS = (VideoError, AudioError, RatingsError, NoFaceError, OSError)


def _make_detector(options: PreprocessOptions) -> FaceTracker | FaceDetector:
    """The face finder ``options`` ask for (see the module docstring); MTCNN's networks load on first use."""
    if options.tracker:
        return FaceTracker(every=options.detect_every, min_face=options.min_face,
                           min_confidence=options.min_confidence, select=options.select,
                           batch_size=options.batch_size)
    return FaceDetector(min_confidence=options.min_confidence, batch_size=options.batch_size, select=options.select)


_WORKER: dict[str, Any] = {}  # per worker process: its face detector


def _init_worker(options: PreprocessOptions, threads: int) -> None:
    import tensorflow as tf

    # Workers share the machine's cores instead of each taking all of them, except within one op: the faces'
    # boxes change in their last bits with the number of threads an op is split over, so each worker keeps
    # TensorFlow's default count of those (intra-op) threads, a serial run's, and writes the same bytes.
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    _WORKER["detector"] = _make_detector(options)


def _run_session(spec: CorpusSpec, root: Path, info: Session, out_dir: Path, options: PreprocessOptions,
                 detector: FaceTracker | FaceDetector | None = None) -> tuple[str, dict[str, Any]]:
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


def _manifest_crops(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest's ``crops``: each set's ``height``, ``width``, ``channels`` and the record's ``feature`` that
    holds it (``frames`` for the first, the default)."""
    sets = crop_sets(options.get("crops"), options["size"], options["gray"])
    return {name: {"height": spec.height, "width": spec.width, "channels": spec.shape[2],
                   "feature": "frames" if k == 0 else f"frames_{name}"}
            for k, (name, spec) in enumerate(sets.items())}


def _manifest(base: dict[str, Any], done: list[dict[str, Any]], failed: list[dict[str, str]],
              unlabelled: list[dict[str, str]], shard: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest: what the data is, and nothing of how long it took, so that the same corpus
    preprocessed again with the same options hashes the same (a run records that hash)."""
    spec = base["spec"]
    low, high = (float(v) for v in spec["ratings"]["range"])
    options = base["options"]
    rate = spec["ratings"]["rate_hz"]
    sets = _manifest_crops(options)
    default = next(iter(sets))
    manifest = {
        "format": base["format"],
        "emotrack_version": __version__,
        "spec": spec,
        "root": base["root"],
        "dimensions": list(spec["ratings"]["dimensions"]),
        "rating_rate": None if rate == "video" else float(rate),
        "rating_scale": {"from": [low, high], "to": [-1.0, 1.0], "missing_value": spec["ratings"].get("missing_value")},
        "frame": {**{k: sets[default][k] for k in ("height", "width", "channels")}, "crops": default},
        "crops": sets,
        "audio": _audio_summary(done),
        "options": options,
        "partitions": {name: [s["session"] for s in done if s["partition"] == name]
                       for name in spec["partitions"]["names"]},
        "sessions": done,
        "failed": failed,
        "unlabelled": unlabelled,
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
            for part, seconds in item.get("trimmed_s", {}).items():
                if seconds * item["fps"] >= 1.0:
                    log(f"session {info.session}: the last {seconds:.2f} s of its {part} were cut to the "
                        f"{'ratings' if part == 'video' else 'video'}' length (within the tolerance)")
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
    manifest = _manifest(base, done, failed, unlabelled, shard_info)
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
    manifest = _manifest(first, done, failed, unlabelled)
    _write_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=2).encode())
    return PreprocessReport(out_dir=out_dir, done=done, failed=failed, unlabelled=unlabelled,
                            manifest=out_dir / MANIFEST, merged=True)
