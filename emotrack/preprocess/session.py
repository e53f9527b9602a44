"""One session -> face crops, aligned ratings and audio in one TFRecord (`process_session`).

For a session found by the corpus spec (:mod:`emotrack.corpora.layout`): read its ratings, stream the
video (or its folder of frames) frame by frame, find the face, crop it with a margin at every crop set
asked for (see `emotrack.preprocess.options`), align the ratings to the frames by their time stamps and
write one ``SequenceExample`` (see :mod:`emotrack.records.tfrecord`) to ``<out>/sessions/<session>.tfrecord``,
under a temporary name renamed when complete (`emotrack.files.atomic_path`).

Faces (`emotrack.faces.finder.make_face_finder`):

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

Frames whose rating the corpus marks as missing (Aff-Wild2's ``-5``) must never be trained on. The
session format has one per-frame mask, ``face_present``, which training weights and evaluation masks
read; such frames are therefore written with ``face_present = 0``. The manifest keeps both facts apart:
``face_fraction`` (frames with a face) and ``rating_valid_fraction`` (frames with a rating).

Audio (:mod:`emotrack.media.audio`), where the corpus has it: the session's audio file when the spec gives
``audio.path``, else the video's own sound track; 16 kHz mono, normalised per session, stored with
each frame (``audio`` in the record, ``audio`` in the session's manifest entry; ``false`` without).
Audio is a need only with ``--audio``: then a missing or unreadable audio file fails the session before
its frames are decoded, and audio out of step with its video (`emotrack.media.audio.check_span`: more than
``max_length_mismatch_s`` apart at its start or its end) fails it once the video has been read to its
end. Otherwise such a session is written without audio, for visual models, and its manifest entry says
why under ``audio_unusable`` (an audio model then refuses the corpus, naming it). A silent recording is
stored, with ``silent: true`` in its entry's ``audio``, and warned about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.corpora.layout import Session
from emotrack.corpora.ratings import RatingsError, RatingTrack, read_ratings
from emotrack.corpora.schema import CorpusSpec, PathTemplate
from emotrack.faces.crop import crop_faces
from emotrack.faces.detect import Face
from emotrack.faces.finder import FaceFinder, find_faces
from emotrack.faces.track import FaceTracker, read_ahead
from emotrack.files import atomic_path
from emotrack.media.audio import (
    AUDIO_RATE,
    AudioError,
    has_audio_stream,
    read_audio,
    session_audio,
)
from emotrack.media.video import VideoError, iter_frames, read_frames_dir, video_fps, video_timing
from emotrack.preprocess.align import align_ratings, align_valid, at_rate, on_grid
from emotrack.preprocess.options import PreprocessError, PreprocessOptions
from emotrack.records.manifest import file_sha256
from emotrack.records.tfrecord import EncodedFrames, encode_image


class NoFaceError(ValueError):
    """A video in which MTCNN finds no face in any frame."""


def face_crops(frames: Iterable[np.ndarray], finder: FaceFinder, options: PreprocessOptions,
               source: str | Path, select: str | None = None
               ) -> tuple[dict[str, EncodedFrames], np.ndarray, np.ndarray]:
    """Find the face in every frame and cut it at every crop set of ``options``, encoded.

    The faces are found in a background thread while this one cuts and encodes the crops of the frames
    before; frames are dropped once cut.

    Args:
        frames: RGB uint8 (H, W, 3) frames, in order (an iterator is read once).
        finder: a `FaceTracker` or a `FaceDetector` (see the module docstring and
            `emotrack.faces.finder.make_face_finder`).
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


class _Timeline:
    """A session's frames streamed with their time stamps (seconds from the first frame, or ``k / fps`` where
    the spec fixes the rate, as `emotrack.media.video.read_video` and `read_frames_dir` give them).

    Iterating yields the frames before ``until`` (the end of the ratings), subsampled to ``rate`` frames/s
    (see `at_rate`), and records their times in ``kept``, and every frame's time, those after ``until``
    included (they are decoded, not kept), in ``times``. A variable frame-rate video (a phone's) is seen
    at its nominal rate (`emotrack.media.video.video_timing`), or ``rate``, as a player shows it
    (`on_grid`): ``kept`` then holds the grid's times, each frame shown at its true time.
    """

    def __init__(self, spec: CorpusSpec, session: Session, until: float, rate: float | None = None):
        v = spec.video
        self.path, self.until = session.video, until
        self.times: list[float] = []
        self.kept: list[float] = []
        self.variable = False
        if v.get("kind", "file") == "frames":
            self._frames, times, self.fps = read_frames_dir(session.video, float(v["fps"]), v.get("frames", "*.png"))
            self._times: np.ndarray | None = times
        else:
            self._frames, self._times = None, None
            self.fixed = v.get("fps", "from_file") != "from_file"
            timing = video_timing(session.video)
            self.variable = timing.variable
            if self.fixed and self.variable:
                raise VideoError(f"video {session.video} has a variable frame rate ({timing.slowest:.3g} to "
                                 f"{timing.fastest:.3g} fps) but the spec fixes video.fps to {v['fps']}: its "
                                 f"frames would be put at the wrong times; set video.fps: from_file in the "
                                 f"spec (and give no --video-fps) to use the frames' own time stamps")
            self.fps = float(v["fps"]) if self.fixed else timing.rate
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
        pairs = on_grid(self._all(), self.rate or self.fps) if self.variable else at_rate(self._all(), self.rate)
        for t, frame in pairs:
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


def _read_track(spec: CorpusSpec, info: Session) -> RatingTrack:
    return read_ratings(spec, info.ratings, video_fps=None if spec.rating_rate_hz else _declared_fps(spec, info))


def _audio_input(spec: CorpusSpec, root: Path, info: Session, options: PreprocessOptions
                 ) -> tuple[Path | None, bool, str | None]:
    """The session's audio source as `audio_source` finds it, checked before the video is decoded:
    ``(path, own_track, None)``, or ``(None, False, why)`` when it is missing or unreadable.

    Raises:
        AudioError: with ``--audio`` (``options.audio`` True), which makes audio a need, not a bonus.
    """
    try:
        source, own_track = audio_source(spec, root, info, options)
        if source is not None and not has_audio_stream(source):
            read_audio(source)  # raises the AudioError that says what is wrong with the file
    except AudioError as err:
        if options.audio:
            raise
        return None, False, str(err)
    return source, own_track, None


def check_session(spec: CorpusSpec, root: Path, info: Session, options: PreprocessOptions) -> None:
    """What can be checked of a session without decoding its video, done for every session before the
    first is preprocessed: its rating files read, its video opened (empty, not a video, cut before its
    index) and, with ``--audio``, its audio found.

    Raises:
        One of `SESSION_ERRORS`, naming the file.
    """
    if spec.video.get("kind", "file") == "file":
        video_fps(info.video)
    elif not Path(info.video).is_dir():
        raise VideoError(f"frame folder {info.video} does not exist; check the spec's video.path and --root")
    _read_track(spec, info)
    _audio_input(spec, root, info, options)


def _write_record(target: Path, record: bytes) -> None:
    import tensorflow as tf

    try:
        with atomic_path(target) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
            writer.write(record)
    except (OSError, tf.errors.OpError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else getattr(err, "message", str(err))
        raise PreprocessError(f"cannot write {target}: {reason}; free space on its disk (or choose another "
                              f"--out) and run the same command again: the sessions written so far are "
                              f"kept") from err


def process_session(spec: CorpusSpec, root: Path, info: Session, out_dir: Path,
                    options: PreprocessOptions, detector: FaceFinder | None = None) -> dict[str, Any]:
    """Preprocess one session and write its TFRecord; returns its manifest entry.

    Audio that cannot be used (missing, unreadable, out of step with its video; see
    `emotrack.media.audio.check_span`) fails the session only with ``--audio``; otherwise the session is
    written without audio and its entry says why under ``audio_unusable``.

    Args:
        detector: the face finder (`FaceTracker` or `FaceDetector`; its ``select`` is replaced by the
            session's side where the spec gives one); None: made from ``options``.
    Raises:
        One of `SESSION_ERRORS` for a fault of the session's files; `PreprocessError` when the record
        cannot be written (a full disk), which stops the run.
    """
    from emotrack.records.tfrecord import session_to_example

    detector = detector if detector is not None else options.face_finder()
    video_path = info.video
    ratings_files = ", ".join(sorted({str(p) for p in info.ratings.values()}))
    # The ratings are read first: a bad rating file fails before the (slow) decoding.
    track: RatingTrack = _read_track(spec, info)
    ratings_end = track.times[-1] + 1.0 / track.rate_hz
    # The audio file, too: one that is missing or unreadable is known before the faces.
    source, own_track, audio_unusable = _audio_input(spec, root, info, options)

    timeline = _Timeline(spec, info, until=ratings_end, rate=options.fps)
    if timeline.variable and not spec.rating_rate_hz:
        raise RatingsError(f"video {video_path} has a variable frame rate, but the spec rates every video frame "
                           f"(no rating rate): the ratings' times cannot be taken from a frame rate; "
                           f"re-encode the video at a constant rate first, e.g. `ffmpeg -i IN -r 30 OUT.mp4`")
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
        try:
            audio, audio_info = session_audio(source, frame_times, fps, video_end, own_track,
                                              options.max_length_mismatch_s)
        except AudioError as err:
            if options.audio:
                raise
            audio_unusable = str(err)

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
    _write_record(target, record)
    entry = {
        "session": info.session, "subject": subject, "partition": info.partition,
        "file": f"sessions/{target.name}", "sha256": file_sha256(target), "num_frames": int(len(frame_times)),
        "fps": float(fps), "video_fps": float(video_rate), "rating_rate": track.rate_hz,
        "duration_s": float(video_end),
        # Within the tolerance, the longer of video and ratings is cut to the shorter: how much, in s.
        "trimmed_s": {"video": round(max(0.0, video_end - ratings_end), 6),
                      "ratings": round(max(0.0, ratings_end - video_end), 6)},
        "face_fraction": float(present.mean()), "rating_valid_fraction": float(valid.mean()),
        "video": str(video_path), "ratings": sorted({str(p) for p in info.ratings.values()}),
        "audio": audio_info,
    }
    if audio_unusable:
        entry["audio_unusable"] = audio_unusable
    return entry


#: Errors that fail one session (reported, skipped) rather than the run.
SESSION_ERRORS = (VideoError, AudioError, RatingsError, NoFaceError, OSError)
