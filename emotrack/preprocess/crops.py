"""A video's frames -> face crops: of the one face of a session (`face_crops`), of every person
(`people_crops`), of the person on one side of a video two people share (`side_crops`).

Each person's crops are cut as they come (`PersonCrops`): at their face's box where it is found, at their
last box where it is not (``face_present = 0``), black before their first face. People are found as
``emotrack predict --faces all`` finds them: MTCNN on every frame (`PreprocessOptions.people_detector`),
each face given its person's id by `emotrack.faces.people.PeopleTracker` (ids count from 1 in order of
appearance and stay with a person through crossings, exits and cuts).

``left`` / ``right`` (`side_crops`): the person whose median box centre over the video lies furthest on
that side (`emotrack.faces.people.side_track`; equal medians: the lower id; a person alone only in their
own half), among those seen for ``min_track_s`` or more (all when none is), kept on every frame, also
while the two cross. The rule before it, the leftmost face of each frame, swapped people as they crossed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from emotrack.faces.crop import crop_faces
from emotrack.faces.detect import Face
from emotrack.faces.finder import FaceFinder, find_faces
from emotrack.faces.people import side_track, track_people
from emotrack.faces.track import FaceTracker, read_ahead
from emotrack.preprocess.options import PreprocessOptions
from emotrack.records.tfrecord import EncodedFrames, encode_image


class NoFaceError(ValueError):
    """A video in which MTCNN finds no face in any frame."""


class PersonCrops:
    """One person's crops, cut frame by frame at every crop set of ``options``, encoded: at their face's
    box where it is found, at their last box where it is not, black before their first face."""

    def __init__(self, options: PreprocessOptions):
        self.options, self.sets = options, options.crop_sets()
        self.images: dict[str, list[bytes]] = {name: [] for name in self.sets}
        self.present: list[bool] = []
        self.boxes: list[tuple[float, float, float, float]] = []
        self.last: Face | None = None
        self._blanks: list[bytes] | None = None

    def add(self, frame: np.ndarray | None, face: Face | None) -> None:
        """The next frame (None only before the first face) and the person's face in it (None: not seen)."""
        options, specs = self.options, list(self.sets.values())
        if face is not None:
            self.last = face
        self.present.append(face is not None)
        self.boxes.append(face.box if face is not None else (0.0, 0.0, 0.0, 0.0))
        if self.last is not None:
            encoded = [encode_image(crop, options.image_format)
                       for crop in crop_faces(frame, self.last, specs, options.margin, options.align)]
        else:  # before the first face: black crops, encoded once
            if self._blanks is None:
                self._blanks = [encode_image(np.zeros(spec.shape, np.uint8), options.image_format) for spec in specs]
            encoded = self._blanks
        for name, image in zip(self.sets, encoded):
            self.images[name].append(image)

    def result(self) -> tuple[dict[str, EncodedFrames], np.ndarray, np.ndarray]:
        """``{set name: EncodedFrames}`` (the default set first), face_present int64 (T,), boxes float32 (T, 4)."""
        crops = {name: EncodedFrames(self.images[name], spec.shape) for name, spec in self.sets.items()}
        return crops, np.array(self.present, dtype=np.int64), np.array(self.boxes, np.float32).reshape(-1, 4)


def no_face_error(source: str | Path, select: str | None, finder_hint: bool) -> NoFaceError:
    """The error of a video without the face asked for."""
    where = f" on its {select} side" if select in ("left", "right") else ""
    return NoFaceError(f"no face found{where} in any frame of {source}; check the video or lower "
                       f"--min-confidence" + (" or --min-face" if finder_hint else ""))


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
        select: the face to keep; ``options.select`` when None (``left`` / ``right`` are chosen by
            `side_crops`, not here).
    Returns:
        ``{set name: EncodedFrames}`` (T images each, in ``options.image_format``, the default set first),
        face_present int64 (T,), boxes float32 (T, 4) (x, y, w, h; zeros without a face).
    Raises:
        NoFaceError: no face in any frame.
    """
    select = select or options.select
    person = PersonCrops(options)
    found = find_faces(finder, frames, select)
    # Up to two chunks of the tracker's frames wait here while the next chunk's faces are found.
    ahead = read_ahead(found, 2 * finder.batch_size)
    try:
        for frame, face in ahead:
            person.add(frame, face)
    finally:
        ahead.close()
    if not any(person.present):
        raise no_face_error(source, select, isinstance(finder, FaceTracker))
    return person.result()


def people_crops(frames: Iterable[np.ndarray], options: PreprocessOptions, fps: float
                 ) -> tuple[dict[int, PersonCrops], int]:
    """Every person's crops (`PersonCrops`) by track id, and the frames' width.

    Args:
        frames: RGB uint8 (H, W, 3) frames, in order, at ``fps`` frames per second (read once).
    """
    people: dict[int, PersonCrops] = {}
    count, width = 0, 0
    for frame, found in track_people(options.people_detector(), frames, fps):
        faces = dict(found)
        for pid in faces:
            if pid not in people:
                people[pid] = PersonCrops(options)
                for _ in range(count):  # black crops for the frames before they appear
                    people[pid].add(None, None)
        for pid, person in people.items():
            person.add(frame, faces.get(pid))
        count, width = count + 1, frame.shape[1]
    return people, width


def seen_frames(person: PersonCrops) -> int:
    """In how many frames the person's face was found."""
    return int(sum(person.present))


def side_crops(frames: Iterable[np.ndarray], fps: float, options: PreprocessOptions, source: str | Path, side: str
               ) -> tuple[dict[str, EncodedFrames], np.ndarray, np.ndarray]:
    """The crops of the person on ``side`` (``left`` / ``right``) of the video (see the module docstring),
    as `face_crops` returns them; ``frames`` as `people_crops` takes them.

    Raises:
        NoFaceError: nobody on that side.
    """
    people, width = people_crops(frames, options, fps)
    long = {pid: p for pid, p in people.items() if seen_frames(p) >= options.min_track_s * fps}
    centres = {pid: float(np.median([x + w / 2 for (x, _, w, _), seen in zip(p.boxes, p.present) if seen]))
               for pid, p in (long or people).items() if seen_frames(p)}
    pid = side_track(centres, side, width)
    if pid is None:
        raise no_face_error(source, side, options.tracker)
    return people[pid].result()
