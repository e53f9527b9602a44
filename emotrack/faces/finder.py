"""The face finder of a video, one face per frame: `make_face_finder` builds it (a `FaceTracker`, or a
`FaceDetector` running MTCNN on every frame), `find_faces` runs either over a stream of frames.

Preprocessing and prediction both build their finder here, so that a video is searched for faces the
same way when a corpus is preprocessed and when a trained run predicts a new video."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from emotrack.faces.detect import Face, FaceDetector, choose_face
from emotrack.faces.track import DEFAULT_EVERY, FaceTracker, read_ahead

#: A face finder: either kind gives the faces of a video's frames through `find_faces`.
FaceFinder = FaceTracker | FaceDetector


def make_face_finder(tracker: bool = True, every: int = DEFAULT_EVERY, min_face: float | None = 0.1,
                     min_confidence: float = 0.9, select: str = "largest", batch_size: int = 32) -> FaceFinder:
    """The face finder asked for; MTCNN's networks load on first use.

    Args:
        tracker: True: `FaceTracker` (MTCNN's proposal stages on every ``every``-th frame, on frames shrunk
            so that a face of ``min_face`` of the shorter side is MTCNN's smallest; O-Net tracking in
            between); False: `FaceDetector`, ``mtcnn``'s own ``detect_faces`` at its defaults on every frame
            (many times slower; ``every`` and ``min_face`` do not apply).
        every: tracker only: a key frame every ``every`` frames.
        min_face: tracker only: the smallest face, a fraction of the frame's shorter side; None: MTCNN's
            20 pixels.
        min_confidence: faces below this confidence are ignored.
        select: the face kept when several are found (see `emotrack.faces.detect.choose_face`).
        batch_size: frames per MTCNN call.
    """
    if tracker:
        return FaceTracker(every=every, min_face=min_face, min_confidence=min_confidence, select=select,
                           batch_size=batch_size)
    return FaceDetector(min_confidence=min_confidence, batch_size=batch_size, select=select)


def detected_faces(detector: FaceDetector, frames: Iterable[np.ndarray]
                   ) -> Iterator[tuple[np.ndarray, list[Face]]]:
    """(frame, every face above the detector's confidence) for every frame: `FaceDetector.detect_all` on
    batches of ``batch_size`` frames; decoding reads one batch ahead."""
    batch: list[np.ndarray] = []
    source = read_ahead(frames, detector.batch_size)
    try:
        for frame in source:
            batch.append(frame)
            if len(batch) == detector.batch_size:
                yield from zip(batch, detector.detect_all(batch))
                batch = []
        if batch:
            yield from zip(batch, detector.detect_all(batch))
    finally:
        source.close()


def _detected(detector: FaceDetector, frames: Iterable[np.ndarray], select: str
              ) -> Iterator[tuple[np.ndarray, Face | None]]:
    """(frame, face) for every frame: `detected_faces`, the face chosen by ``select`` (``tracked`` follows
    the face across batches)."""
    previous = None
    for frame, faces in detected_faces(detector, frames):
        face = choose_face(faces, select, previous, frame_width=frame.shape[1])
        previous = face if face is not None else previous
        yield frame, face


def find_faces(finder: FaceFinder, frames: Iterable[np.ndarray], select: str
               ) -> Iterator[tuple[np.ndarray, Face | None]]:
    """(frame, face) for every RGB uint8 (H, W, 3) frame, in order, with ``select``'s face (which replaces
    the finder's own choice: a session's side where two people share a video); face None where none is
    found."""
    if isinstance(finder, FaceDetector):
        return _detected(finder, frames, select)
    if finder.select != select:
        finder = FaceTracker(every=finder.every, min_face=finder.detector.min_face,
                             min_confidence=finder.min_confidence, select=select, batch_size=finder.batch_size,
                             read_ahead=finder.read_ahead)
    return finder.track(frames)
