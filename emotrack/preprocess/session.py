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

Either way the face kept is the one ``select`` names (`emotrack.faces.detect.choose_face`). A session's own
side (``left`` / ``right``, where the spec gives one per session: two people in one video) is a person, not
a position: every face of every frame is found and followed by person, and the session keeps the person
on that side over the whole video, also while the two cross (`emotrack.preprocess.crops.side_crops`).
With ``--faces all`` every person is a session of their own (`emotrack.preprocess.people`). Frames
without a face are kept with ``face_present = 0``; their crops are cut at the last face box seen (zeros
before the first face), as `emotrack.apps.predict` cuts them; their ``box`` is zeros. Crops are cut while
the faces of later frames are still being found, so a session holds only its encoded crops in memory,
never its frames.

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

import dataclasses
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.corpora.layout import Session
from emotrack.corpora.ratings import RatingsError, RatingTrack, read_ratings
from emotrack.corpora.schema import CorpusSpec, PathTemplate
from emotrack.faces.finder import FaceFinder
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
from emotrack.preprocess.crops import NoFaceError, face_crops, side_crops
from emotrack.preprocess.options import PreprocessError, PreprocessOptions
from emotrack.records.manifest import file_sha256
from emotrack.records.tfrecord import EncodedFrames


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


def read_session_ratings(spec: CorpusSpec, info: Session) -> RatingTrack:
    return read_ratings(spec, info.ratings, video_fps=None if spec.rating_rate_hz else _declared_fps(spec, info))


def audio_input_checked(spec: CorpusSpec, root: Path, info: Session, options: PreprocessOptions
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
    for files in [info.ratings, *info.track_ratings.values()]:  # its own; its people's with --faces all
        if files:
            read_session_ratings(spec, dataclasses.replace(info, ratings=files))
    audio_input_checked(spec, root, info, options)


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


def session_timeline(spec: CorpusSpec, info: Session, options: PreprocessOptions, until: float,
                     rated: bool = True) -> _Timeline:
    """The session's frames up to ``until`` (the end of its ratings), refused where a variable frame rate
    makes the ratings' times unknowable (``rated``: the session has ratings)."""
    timeline = _Timeline(spec, info, until=until, rate=options.fps)
    if rated and timeline.variable and not spec.rating_rate_hz:
        raise RatingsError(f"video {info.video} has a variable frame rate, but the spec rates every video frame "
                           f"(no rating rate): the ratings' times cannot be taken from a frame rate; "
                           f"re-encode the video at a constant rate first, e.g. `ffmpeg -i IN -r 30 OUT.mp4`")
    return timeline


def check_lengths(info: Session, track: RatingTrack, timeline: _Timeline, options: PreprocessOptions
                  ) -> tuple[float, float]:
    """Where the decoded video and the ratings ``track`` of ``info`` end (s), checked to agree within
    ``options.max_length_mismatch_s``.

    Raises:
        RatingsError: naming the video, the rating file and both durations.
    """
    ratings_end = track.times[-1] + 1.0 / track.rate_hz
    video_end = timeline.times[-1] + 1.0 / timeline.fps
    if abs(video_end - ratings_end) > options.max_length_mismatch_s:
        ratings_files = ", ".join(sorted({str(p) for p in info.ratings.values()}))
        raise RatingsError(f"video {info.video} lasts {video_end:.2f} s but rating file {ratings_files} "
                           f"covers {ratings_end:.2f} s (tolerance {options.max_length_mismatch_s} s); "
                           f"check that they belong to the same session")
    return float(video_end), float(ratings_end)


def write_session(spec: CorpusSpec, info: Session, out_dir: Path, options: PreprocessOptions, timeline: _Timeline,
                  track: RatingTrack, faces: tuple[dict[str, EncodedFrames], np.ndarray, np.ndarray],
                  audio_input: tuple[Path | None, bool, str | None]) -> dict[str, Any]:
    """Write the record of ``info.session`` from its decoded ``timeline``, its ratings ``track``, its
    ``faces`` (`face_crops`) and its ``audio_input`` (`audio_input_checked`); returns its manifest entry.

    Frames after the end of ``track`` are left out: with ``--faces all`` the video is decoded to the end of
    the longest of its people's ratings (`emotrack.preprocess.people`)."""
    from emotrack.records.tfrecord import session_to_example

    crops, present, boxes = faces
    source, own_track, audio_unusable = audio_input
    video_path = info.video
    video_end, ratings_end = check_lengths(info, track, timeline, options)
    video_rate = timeline.fps
    fps = timeline.rate or video_rate  # the stored frames' rate
    frame_times = np.asarray(timeline.kept, np.float64)
    n = int(np.searchsorted(frame_times, ratings_end, side="left"))
    if n < len(frame_times):
        frame_times, present, boxes = frame_times[:n], present[:n], boxes[:n]
        crops = {name: EncodedFrames(list(c.images[:n]), c.shape) for name, c in crops.items()}
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


def process_session(spec: CorpusSpec, root: Path, info: Session, out_dir: Path,
                    options: PreprocessOptions, detector: FaceFinder | None = None) -> dict[str, Any]:
    """Preprocess one session and write its TFRecord; returns its manifest entry.

    Audio that cannot be used (missing, unreadable, out of step with its video; see
    `emotrack.media.audio.check_span`) fails the session only with ``--audio``; otherwise the session is
    written without audio and its entry says why under ``audio_unusable``.

    Args:
        detector: the face finder (`FaceTracker` or `FaceDetector`); None: made from ``options``. A
            session's side (``left`` / ``right``, from the spec or ``options.select``) is chosen among the
            people of `emotrack.preprocess.crops.side_crops` instead.
    Raises:
        One of `SESSION_ERRORS` for a fault of the session's files; `PreprocessError` when the record
        cannot be written (a full disk), which stops the run.
    """
    # The ratings are read first: a bad rating file fails before the (slow) decoding.
    track: RatingTrack = read_session_ratings(spec, info)
    # The audio file, too: one that is missing or unreadable is known before the faces.
    audio_input = audio_input_checked(spec, root, info, options)
    timeline = session_timeline(spec, info, options, until=track.times[-1] + 1.0 / track.rate_hz)
    select = info.face_select or options.select
    if select in ("left", "right"):
        faces = side_crops(timeline, timeline.rate or timeline.fps, options, info.video, select)
    else:
        detector = detector if detector is not None else options.face_finder()
        faces = face_crops(timeline, detector, options, info.video, select=select)
    return write_session(spec, info, out_dir, options, timeline, track, faces, audio_input)


#: Errors that fail one session (reported, skipped) rather than the run.
SESSION_ERRORS = (VideoError, AudioError, RatingsError, NoFaceError, OSError)
