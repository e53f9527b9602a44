"""Every person in a video, each with a stable track id (``--faces all``).

MTCNN finds every face in every frame (`emotrack.faces.detect.FaceDetector.detect_all`, ``min_face`` as the
run's or the preprocessing's); `PeopleTracker` gives each face the id of the person it belongs to:

- Position: a face that overlaps the box a person had a moment ago (IoU, for ``gap_s`` seconds after
  their last frame) is most likely theirs.
- Appearance: each person carries a colour signature of their face (a 4x4x4 RGB histogram of the box's
  central part, averaged over the frames they were seen in). It decides when positions do not: two people
  crossing, a person coming back after leaving the frame or after a cut, however long they were away.
- One face per person per frame, one person per face: the assignment of faces to people is the cheapest
  one over both costs (Hungarian algorithm). A face that matches nobody well enough starts a new person.

Ids count from 1 in the order people first appear (from left to right among those who appear together).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from emotrack.faces.detect import Face, FaceDetector, box_iou

#: Histogram bins per RGB channel of the colour signature.
_BINS = 4


def face_signature(frame: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """A face's colour signature: the normalised (sum 1) 4x4x4 RGB histogram of the central 60 % of its
    box (skin, eyes, hair; little background). float64 (64,)."""
    h, w = frame.shape[:2]
    x, y, bw, bh = box
    x0, x1 = int(max(0, x + 0.2 * bw)), int(min(w, x + 0.8 * bw))
    y0, y1 = int(max(0, y + 0.2 * bh)), int(min(h, y + 0.8 * bh))
    patch = frame[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].reshape(-1, 3).astype(np.int64) * _BINS // 256
    hist = np.bincount((patch[:, 0] * _BINS + patch[:, 1]) * _BINS + patch[:, 2], minlength=_BINS ** 3)
    return hist / max(1, hist.sum())


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance between two signatures: 0 (the same colours) to 1 (none in common)."""
    return float(np.sqrt(max(0.0, 1.0 - np.sqrt(a * b).sum())))


@dataclasses.dataclass
class Person:
    """A person followed through a video: id, last box, the frame it was seen in, colour signature."""

    id: int
    box: tuple[float, float, float, float]
    last_seen: int
    signature: np.ndarray
    seen: int = 1


class PeopleTracker:
    """Stable ids for the faces of a video, frame by frame (see the module docstring).

    Args:
        fps: the video's frame rate (for ``gap_s``).
        gap_s: for how long after a person's last frame their position still counts.
        max_distance: the largest colour distance at which a face is taken for a person seen before,
            when position does not help.
        min_iou: the overlap with a person's last box at which position counts.

    Use: `update` with each frame and its faces, in order; it returns (person id, face) pairs.
    """

    def __init__(self, fps: float, gap_s: float = 0.5, max_distance: float = 0.35, min_iou: float = 0.3):
        self.gap = max(1, int(round(gap_s * fps)))
        self.max_distance, self.min_iou = max_distance, min_iou
        self.people: list[Person] = []
        self.frame = -1

    def _cost(self, person: Person, box, signature: np.ndarray) -> float:
        """The cost of taking a face for ``person``; inf where neither position nor colour allows it."""
        distance = signature_distance(person.signature, signature)
        if distance > self.max_distance:  # never someone who looks different, wherever they are
            return np.inf
        recent = self.frame - person.last_seen <= self.gap
        iou = box_iou(person.box, box) if recent else 0.0
        return distance + (1.0 - iou if iou >= self.min_iou else 1.0)

    def update(self, frame: np.ndarray, faces: Sequence[Face]) -> list[tuple[int, Face]]:
        """The id of each of ``faces`` (found in ``frame``, the next frame of the video)."""
        from scipy.optimize import linear_sum_assignment

        self.frame += 1
        signatures = [face_signature(frame, f.box) for f in faces]
        cost = np.full((len(faces), len(self.people)), np.inf)
        for i, (face, signature) in enumerate(zip(faces, signatures)):
            for j, person in enumerate(self.people):
                cost[i, j] = self._cost(person, face.box, signature)
        chosen: dict[int, int] = {}
        if len(faces) and len(self.people):
            rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e6))
            chosen = {int(i): int(j) for i, j in zip(rows, cols) if np.isfinite(cost[i, j])}
        out = []
        # New people who appear together are numbered from left to right.
        for i in sorted(range(len(faces)), key=lambda i: (i not in chosen, faces[i].box[0] + faces[i].box[2] / 2)):
            face, signature = faces[i], signatures[i]
            if i in chosen:
                person = self.people[chosen[i]]
                person.box, person.last_seen, person.seen = face.box, self.frame, person.seen + 1
                # The signature follows slow changes of light, never one frame's occlusion.
                person.signature = 0.9 * person.signature + 0.1 * signature
            else:
                person = Person(len(self.people) + 1, face.box, self.frame, signature)
                self.people.append(person)
            out.append((person.id, face))
        return sorted(out, key=lambda pair: pair[0])


def track_people(detector: FaceDetector, frames: Iterable[np.ndarray], fps: float, **options
                 ) -> Iterator[tuple[np.ndarray, list[tuple[int, Face]]]]:
    """(frame, [(person id, face), ...]) for every frame, every face MTCNN finds given its person's id;
    frames are detected in batches of ``detector.batch_size``. ``options`` go to `PeopleTracker`."""
    from emotrack.faces.finder import detected_faces

    tracker = PeopleTracker(fps, **options)
    for frame, faces in detected_faces(detector, frames):
        yield frame, tracker.update(frame, faces)


def side_track(centres: dict[int, float], side: str, frame_width: float) -> int | None:
    """The person on ``side`` (``left`` / ``right``) of a video shared by two people (Aff-Wild2's
    ``<video>_left`` / ``_right``), from each person's median box centre x over the frames they are seen in
    (``centres``, by id): the person with the smallest median (``left``) or the largest (``right``), kept
    through the whole video, when the two cross too; equal medians go to the lower id (who appeared
    first). A person alone is taken only when their median lies in that half of the frame, so that the
    other person is never taken for the one rated. None: nobody on that side."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be left or right, not {side!r}")
    if not centres:
        return None
    if len(centres) == 1:
        (pid, centre), = centres.items()
        return pid if (centre < frame_width / 2) == (side == "left") else None
    sign = 1.0 if side == "left" else -1.0
    return min(centres, key=lambda pid: (sign * centres[pid], pid))
