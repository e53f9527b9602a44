"""Face tracking over video (`FaceTracker`), many times faster than MTCNN on every frame and
memory-bounded: see `emotrack.faces.detect` for how the stages are split between key frames and the
frames between them; `read_ahead` decodes frames ahead in a thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

from emotrack.faces.detect import (
    Face,
    FaceDetector,
    TrackedFace,
    _face_from_row,
    box_iou,
    choose_face,
)

# Two key frames continue one track when their faces overlap by at least this IoU; below it (a cut, a
# jump, another face chosen) the face is followed from one frame to the next instead. A face that moves by
# up to 40 % of its width from one key frame to the next still passes.
_CONTINUITY_IOU = 0.4

#: Key frames every this many frames by default. On the 640x360 benchmark video (``make bench-preprocess``,
#: ``--every N``) 10, 15, 20 and 30 agree with MTCNN on every frame equally often (99.7 % of frames at
#: IoU >= 0.7; mean IoU 0.929, 0.921, 0.918, 0.919), and preprocessing costs 3.8, 3.4, 3.4 and 3.0 ms of CPU
#: per frame: a key frame's proposal stages cost some twenty times O-Net's tracking of a frame, and following
#: a face frame by frame, where the motion over a second breaks the interpolation, costs about as much as
#: interpolating. A face coming into view is followed back from the key frame that first shows it, so the
#: longer wait for that key frame loses no frame of it. Live sources use shorter intervals
#: (`emotrack.apps.live.LIVE_EVERY`): there a frame's face is not known before its interval's key frame.
DEFAULT_EVERY = 30

#: Threads each of MTCNN's networks runs on in the tracker. One: its thread runs beside decoding and
#: cropping, which keep the other core busy. On the benchmark video preprocessing went from about 470 to
#: 500 frames/s (3.0 to 2.9 ms of CPU per frame) with one thread instead of two, while MTCNN on every frame
#: (``--no-tracker``, ``--faces all``), with nothing beside it, keeps two (`FaceDetector`'s default).
TRACKER_THREADS = 1


_END = object()


class _Failure(NamedTuple):
    error: BaseException


def read_ahead(items: Iterable[Any], size: int) -> Iterator[Any]:
    """Iterate over ``items`` in a background thread, up to ``size`` items ahead of the consumer.

    Decoding (PyAV) and MTCNN (TensorFlow) both release Python's lock while they work, so a video can be
    decoded while the faces of the frames before are found. An error in the producer is raised here;
    closing this iterator stops the producer.
    """
    buffer: queue.Queue = queue.Queue(max(int(size), 1))
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                buffer.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        source = iter(items)
        try:
            for item in source:
                if not put(item):
                    break
            else:
                put(_END)
        except BaseException as err:  # handed to the consumer, which raises it
            put(_Failure(err))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="emotrack-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


class FaceTracker:
    """Faces in every frame of a video: MTCNN on key frames, O-Net tracking in between.

    See the module docstring for how it works. Results keep the frame order; a frame without a face gives
    None, never a dropped frame. Frames go through one key-frame interval at a time: the faces of ``every``
    frames come as soon as the key frame that ends them is decoded, so that cropping starts early and waits
    little after the last frame. Memory holds about ``every + read_ahead`` frames.

    Args:
        every: a key frame every ``every`` frames (1: MTCNN's proposal stages on every frame).
        min_face: smallest face to find, as a fraction of the frame's shorter side (see `FaceDetector`).
        min_confidence: a face, found or tracked, needs O-Net's confidence above it.
        select: which face to follow when several are present (see `choose_face`). It is applied at
            every key frame and every frame detected afresh; between key frames the tracked face is kept.
        batch_size: the most frames of one MTCNN call of the detector (rounded up to a multiple of
            ``every``), and how far ahead callers read the faces (`emotrack.preprocess.crops.face_crops`); a
            frame's faces do not depend on it.
        read_ahead: frames decoded ahead in a background thread (0: none).
    """

    def __init__(self, every: int = DEFAULT_EVERY, min_face: float = 0.2, min_confidence: float = 0.9,
                 select: str = "largest", batch_size: int = 30, read_ahead: int = 32):
        if every < 1:
            raise ValueError(f"every must be at least 1, not {every}")
        self.every = int(every)
        self.batch_size = -(-max(int(batch_size), 1) // self.every) * self.every
        self.read_ahead = int(read_ahead)
        self.detector = FaceDetector(min_confidence=min_confidence, batch_size=self.batch_size, select=select,
                                     min_face=min_face, threads=TRACKER_THREADS)

    def warm_up(self) -> None:
        """Load MTCNN's networks now rather than on the first frame."""
        self.detector.warm_up()

    @property
    def select(self) -> str:
        return self.detector.select

    @property
    def min_confidence(self) -> float:
        return self.detector.min_confidence

    def track(self, items: Iterable[Any], frame: Callable[[Any], np.ndarray] | None = None
              ) -> Iterator[tuple[Any, TrackedFace | None]]:
        """Follow the face through a video.

        Args:
            items: RGB uint8 frames (H, W, 3), in order, or anything ``frame`` gets one from, e.g. the
                (time, frame) pairs of `emotrack.media.video.iter_frames` with ``frame=lambda item: item[1]``.
            frame: how to get the frame from an item; the item itself when None.
        Yields:
            (item, face) per item, in order; face is a `TrackedFace` (box in pixels of the frame) or None.
        """
        get = frame if frame is not None else (lambda item: item)

        def prepared(items):
            # The key frames' shrunk images and pyramids are made as they are read: in the read-ahead thread,
            # beside the tracking of the frames before.
            for k, item in enumerate(items):
                yield item, (self.detector.prepare(get(item)) if k % self.every == 0 else None)

        ahead = read_ahead(prepared(items), self.read_ahead) if self.read_ahead > 0 else None
        source = ahead if ahead is not None else prepared(items)
        previous: tuple[np.ndarray | None, TrackedFace | None] | None = None  # last key frame's row, face
        start, buffer = 0, []
        try:
            for pair in source:
                buffer.append(pair)
                # Chunks end on a key frame so that every frame between two key frames is in one chunk;
                # the first chunk also holds frame 0.
                if len(buffer) == self.every + (1 if previous is None else 0):
                    faces, previous = self._chunk([get(i) for i, _ in buffer], start, previous, final=False,
                                                  prepared=[p for _, p in buffer])
                    yield from zip((i for i, _ in buffer), faces)
                    start, buffer = start + len(buffer), []
            if buffer:
                faces, _ = self._chunk([get(i) for i, _ in buffer], start, previous, final=True,
                                       prepared=[p for _, p in buffer])
                yield from zip((i for i, _ in buffer), faces)
        finally:
            if ahead is not None:  # stops the read-ahead thread when the caller stops early
                ahead.close()

    def track_all(self, frames: Iterable[np.ndarray]) -> list[TrackedFace | None]:
        """`track` over frames, returning only the faces."""
        return [face for _, face in self.track(frames)]

    def _chunk(self, frames: list[np.ndarray], start: int, previous, final: bool, prepared: list | None = None):
        """Faces of frames start .. start + len(frames) - 1; ``previous`` is the last key frame's (row, face)
        from the chunk before; ``prepared``: each frame's `FaceDetector.prepare` where made ahead. Returns the
        faces and this chunk's last key frame's (row, face)."""
        n = len(frames)
        key = [(start + i) % self.every == 0 for i in range(n)]
        if final:
            key[-1] = True
        rows: list[np.ndarray | None] = [None] * n
        faces: list[TrackedFace | None] = [None] * n

        keys = [i for i in range(n) if key[i]]
        before = previous[1] if previous is not None else None
        ready = [prepared[i] for i in keys] if prepared is not None else None
        for i, candidates in zip(keys, self.detector._detect_rows([frames[i] for i in keys], ready)):
            rows[i], faces[i] = self._choose(candidates, before, frames[i].shape[1])
            before = faces[i] if faces[i] is not None else before

        # Between two key frames whose faces continue one another: O-Net on interpolated proposals.
        # Where they do not (a cut, a jump, the face leaving), the earlier key frame's face is followed
        # frame by frame until O-Net loses it; where only the later key frame has a face (the face coming
        # into view), it is followed back in time the same way. Frames without a face to follow are
        # detected afresh.
        redetect, proposals, tracked, follow = [], [], [], []
        anchors = ([(-1, previous[0], previous[1])] if previous is not None else []) + \
                  [(i, rows[i], faces[i]) for i in keys]
        for (a, row_a, face_a), (b, row_b, face_b) in zip(anchors, anchors[1:]):
            between = range(a + 1, b)
            if face_a is None or face_b is None or box_iou(face_a.box, face_b.box) < _CONTINUITY_IOU:
                if face_a is not None and len(between):
                    follow.append((row_a, between))
                elif face_b is not None and len(between):
                    follow.append((row_b, between[::-1]))
                else:
                    redetect.extend(between)
                continue
            for i in between:
                w = (i - a) / (b - a)
                proposals.append(np.r_[i, (1 - w) * row_a[16:20] + w * row_b[16:20]])
                tracked.append(i)
        if proposals:
            refined = self.detector._staged().refine(frames, np.array(proposals))
            for i, row in zip(tracked, refined):
                if not self._keep(frames, i, row, rows, faces):  # the track is lost: find the face again
                    redetect.append(i)
        for row, between in follow:
            # O-Net sees each frame framed as it saw the key frame: its square there, relative to the box
            # it gave, moved with the box of the frame before (after, when followed back).
            framing = row[16:20] - row[1:5]
            for k, i in enumerate(between):
                row = self.detector._staged().refine(frames, np.r_[i, row[1:5] + framing][None])[0]
                if not self._keep(frames, i, row, rows, faces):
                    redetect.extend(between[k:])
                    break

        redetect.sort()
        for i, candidates in zip(redetect, self.detector._detect_rows([frames[i] for i in redetect])):
            earlier = next((faces[j] for j in range(i - 1, -1, -1) if faces[j] is not None), None)
            if earlier is None and previous is not None:
                earlier = previous[1]
            rows[i], faces[i] = self._choose(candidates, earlier, frames[i].shape[1])
        last = keys[-1] if keys else None
        carry = (rows[last], faces[last]) if last is not None else previous
        return faces, carry

    def _keep(self, frames: list[np.ndarray], i: int, row: np.ndarray, rows: list, faces: list) -> bool:
        """Keep O-Net's ``row`` as frame ``i``'s tracked face when its confidence passes (box clipped to the
        frame, as mtcnn's fit_to_image); False when the track is lost."""
        if row[5] < self.min_confidence:
            return False
        h, w = frames[i].shape[:2]
        row[[1, 3]] = np.clip(row[[1, 3]], 0, w - 1)
        row[[2, 4]] = np.clip(row[[2, 4]], 0, h - 1)
        rows[i], faces[i] = row, _face_from_row(row, "tracked")
        return True

    def _choose(self, candidates: np.ndarray, previous: Face | None, frame_width: int):
        """The row and face chosen among one frame's candidate rows, or (None, None)."""
        kept = [r for r in candidates if r[5] >= self.min_confidence]
        options = [_face_from_row(r, "detected") for r in kept]
        face = choose_face(options, self.select, previous, frame_width)
        if face is None:
            return None, None
        return next((row, option) for row, option in zip(kept, options) if option is face)
