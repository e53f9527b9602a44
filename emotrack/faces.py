"""Face detection (MTCNN, the ``mtcnn`` package), face tracking over video, and face cropping.

Two ways to find faces:

- `FaceDetector`: MTCNN on every frame given, in batches; one face per frame.
- `FaceTracker`: for videos, many times faster, and memory-bounded (it reads frames from an iterator).
  MTCNN runs in its three stages. The proposal stages (P-Net, R-Net) see frames shrunk so that the
  smallest face wanted (``min_face``, a fraction of the frame) is MTCNN's smallest, 20 pixels; they run
  on every ``every``-th frame (the key frames), many frames per call. The output stage (O-Net), which
  gives the box, the confidence and the five landmarks, always runs at full resolution: on the key
  frames' proposals, and on every frame between two key frames, on the proposal interpolated between
  theirs. A frame is detected afresh, as a key frame is, when its O-Net confidence falls below
  ``min_confidence`` (the track is lost) or when the faces of the key frames around it do not overlap
  (a cut, a jump, a face that comes or goes).

Shrinking the frames, rather than raising ``min_face_size`` of ``mtcnn.MTCNN.detect_faces``, is on
purpose: in mtcnn 1.0.0 the depth of the image pyramid depends only on the image size, so at 360p a
``min_face_size`` above about 23 makes the smallest level smaller than P-Net's 12x12 window; the error
that follows is swallowed by ``detect_faces``, which then returns no face for any frame.

Crops: `crop_faces` cuts the face out of a frame once and returns it at several sizes and colours
(`CropSpec`, one per model family in `CROP_SPECS`), optionally rotated so that the eyes are level.

TensorFlow and the detector are imported lazily: importing emotrack does not load MTCNN's graphs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

SELECT = ("largest", "confident", "left", "right", "tracked")

# MTCNN's names of its five landmarks, in the order of its output columns.
KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

# mtcnn 1.0.0 defaults that the staged detector below keeps: P-Net's window is 12 px and the smallest
# face it looks for is 20 px; O-Net keeps faces above 0.8 and merges boxes overlapping by 0.7 of the
# smaller one.
_MTCNN_MIN_FACE_PX = 20
_ONET_THRESHOLD = 0.8
_ONET_NMS = 0.7

# Two key frames continue one track when their faces overlap by at least this IoU; below it (a cut, a
# jump, another face chosen) the frames between them are detected one by one. A face that moves by up
# to 40 % of its width from one key frame to the next still passes.
_CONTINUITY_IOU = 0.4

# A face chosen with select="tracked" must overlap the previous one by this much to be the same face.
_SAME_FACE_IOU = 0.3


@dataclasses.dataclass(frozen=True)
class Face:
    """One detected face. ``box`` is (x, y, w, h) in pixels of the frame; ``keypoints`` maps
    left_eye, right_eye, nose, mouth_left, mouth_right to (x, y)."""

    box: tuple[float, float, float, float]
    confidence: float
    keypoints: dict[str, tuple[float, float]]


@dataclasses.dataclass(frozen=True)
class TrackedFace(Face):
    """A face in one frame of a video, from `FaceTracker`.

    ``source`` is ``"detected"`` where MTCNN's proposal stages found the face in this very frame, and
    ``"tracked"`` where the proposal was interpolated from the key frames around it (O-Net still checked
    the face and placed the box and landmarks in this frame).
    """

    source: str = "detected"


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def choose_face(faces: Sequence[Face], select: str = "largest", previous: Face | None = None,
                frame_width: float | None = None) -> Face | None:
    """The face a user would expect among several found in one frame.

    Args:
        faces: the candidates (may be empty).
        select: ``largest`` (box area), ``confident``, ``left`` / ``right`` (box centre furthest left /
            right in the image, for two-person recordings annotated per side), or ``tracked`` (the face that
            overlaps ``previous`` most; the largest where none does, or there is no ``previous``).
        previous: the face chosen in the frame before, for ``tracked``.
        frame_width: for ``left`` / ``right``: a face found alone is kept only when its centre lies in
            that half of the frame, so that the other person is not taken for the one wanted.
    Returns:
        One of ``faces``, or None.
    """
    if select not in SELECT:
        raise ValueError(f"select must be one of {', '.join(SELECT)}, not {select!r}")
    if not faces:
        return None
    if select in ("left", "right") and len(faces) == 1 and frame_width is not None:
        centre = faces[0].box[0] + faces[0].box[2] / 2
        if (centre >= frame_width / 2) == (select == "left"):
            return None
    if select == "tracked" and previous is not None:
        best = max(faces, key=lambda f: box_iou(f.box, previous.box))
        if box_iou(best.box, previous.box) >= _SAME_FACE_IOU:
            return best
    if select == "confident":
        return max(faces, key=lambda f: f.confidence)
    if select == "left":
        return min(faces, key=lambda f: f.box[0] + f.box[2] / 2)
    if select == "right":
        return max(faces, key=lambda f: f.box[0] + f.box[2] / 2)
    return max(faces, key=lambda f: f.box[2] * f.box[3])


def _face_from_row(row: np.ndarray, source: str | None = None) -> Face:
    """A face from one MTCNN output row: image index, x1, y1, x2, y2, confidence, 5 x, 5 y."""
    box = (float(row[1]), float(row[2]), float(row[3] - row[1]), float(row[4] - row[2]))
    keypoints = {name: (float(row[6 + i]), float(row[11 + i])) for i, name in enumerate(KEYPOINTS)}
    if source is None:
        return Face(box=box, confidence=float(row[5]), keypoints=keypoints)
    return TrackedFace(box=box, confidence=float(row[5]), keypoints=keypoints, source=source)


def _sample_patches(frames: Sequence[np.ndarray], rows: np.ndarray, side: int) -> np.ndarray:
    """Bilinear ``side`` x ``side`` patches of MTCNN-normalised pixels ((v - 127.5) / 128) at boxes.

    The same sampling as mtcnn's ``extract_patches`` (``tf.image.crop_and_resize`` on normalised frames,
    box corners divided by the frame size, 0 outside the frame), done on the uint8 frames one box at a time,
    so the frames need not be stacked into one float tensor.

    Args:
        frames: RGB uint8 (H, W, 3) frames.
        rows: (n, >=5) image index into ``frames``, x1, y1, x2, y2 in pixels.
    Returns:
        float32 (n, side, side, 3).
    """
    out = np.zeros((len(rows), side, side, 3), np.float32)
    steps = np.arange(side, dtype=np.float64) / (side - 1)
    for k, row in enumerate(rows):
        frame = frames[int(row[0])]
        h, w = frame.shape[:2]
        ys = (row[2] + steps * (row[4] - row[2])) * (h - 1) / h
        xs = (row[1] + steps * (row[3] - row[1])) * (w - 1) / w
        inside_y = (ys >= 0) & (ys <= h - 1)
        inside_x = (xs >= 0) & (xs <= w - 1)
        if not inside_y.any() or not inside_x.any():
            continue
        ys, xs = ys[inside_y], xs[inside_x]
        y0, x0 = np.floor(ys).astype(np.intp), np.floor(xs).astype(np.intp)
        y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
        dy = (ys - y0).astype(np.float32)[:, None, None]
        dx = (xs - x0).astype(np.float32)[None, :, None]
        top, bottom = frame[y0], frame[y1]
        top = top[:, x0] * (1 - dx) + top[:, x1] * dx
        bottom = bottom[:, x0] * (1 - dx) + bottom[:, x1] * dx
        patch = (top * (1 - dy) + bottom * dy - 127.5) / 128.0
        out[k][np.ix_(inside_y, inside_x)] = patch
    return out


def _square(rows: np.ndarray) -> np.ndarray:
    """Boxes (columns 1-4) made square about their centre on their longer side, as MTCNN does between
    stages."""
    rows = rows.copy()
    w, h = rows[:, 3] - rows[:, 1], rows[:, 4] - rows[:, 2]
    side = np.maximum(w, h)
    rows[:, 1] += (w - side) / 2
    rows[:, 2] += (h - side) / 2
    rows[:, 3], rows[:, 4] = rows[:, 1] + side, rows[:, 2] + side
    return rows


class _MTCNNStages:
    """MTCNN's three networks (weights from the mtcnn wheel), each compiled once with ``tf.function``.

    The stages run separately so that proposals (P-Net, R-Net) can come from shrunk frames and O-Net can
    run at full resolution on any box. P-Net and R-Net run through mtcnn's own stage classes; only their
    network is swapped for its compiled form (same weights, same numbers, two to three times faster on a
    CPU than the eager call).
    """

    def __init__(self):
        import tensorflow as tf
        from mtcnn.stages import StageONet, StagePNet, StageRNet

        def compiled(model, side):
            spec = tf.TensorSpec([None, side, side, 3], tf.float32)
            return tf.function(model, input_signature=[spec])

        self.pnet, self.rnet = StagePNet(), StageRNet()
        self.pnet._model = compiled(self.pnet.model, None)
        self.rnet._model = compiled(self.rnet.model, 24)
        self.onet = compiled(StageONet().model, 48)
        self._no_face = tf.errors.InvalidArgumentError

    def propose(self, small: np.ndarray) -> np.ndarray:
        """R-Net's square proposals for a stack of same-size frames.

        Args:
            small: RGB uint8 (N, h, w, 3).
        Returns:
            (n, 6): image index, x1, y1, x2, y2, R-Net score, in pixels of ``small``.
        """
        images = (small.astype(np.float32) - 127.5) / 128.0
        shapes = np.array([small.shape[1:]] * len(small))
        try:
            rows = self.pnet(images_normalized=images, images_oshapes=shapes)
            if len(rows) == 0:
                return np.empty((0, 6))
            return self.rnet(images_normalized=images, bboxes_batch=rows)
        except self._no_face:  # what mtcnn's detect_faces also reads as "no face"
            return np.empty((0, 6))

    def refine(self, frames: Sequence[np.ndarray], rows: np.ndarray) -> np.ndarray:
        """O-Net at full resolution on boxes (made square first).

        Args:
            frames: RGB uint8 (H, W, 3) frames.
            rows: (n, >=5) image index into ``frames``, x1, y1, x2, y2.
        Returns:
            (n, 20): image index, x1, y1, x2, y2, confidence, 5 landmark x, 5 landmark y (MTCNN's output
            row, in the order of `KEYPOINTS`), then the square box O-Net saw (x1, y1, x2, y2).
        """
        if len(rows) == 0:
            return np.empty((0, 20))
        squares = _square(np.asarray(rows, np.float64)[:, :5])
        offsets, landmarks, scores = (t.numpy() for t in self.onet(_sample_patches(frames, squares, 48)))
        # mtcnn.utils: adjust_landmarks and adjust_bboxes, with the +1 of its pixel-inclusive sizes.
        w = squares[:, 3:4] - squares[:, 1:2] + 1
        h = squares[:, 4:5] - squares[:, 2:3] + 1
        marks_x = w * landmarks[:, :5] + squares[:, 1:2] - 1
        marks_y = h * landmarks[:, 5:] + squares[:, 2:3] - 1
        boxes = squares[:, 1:5] + offsets * np.concatenate([w, h, w, h], axis=1)
        return np.concatenate([squares[:, :1], boxes, scores[:, 1:2], marks_x, marks_y, squares[:, 1:5]], axis=1)


@functools.lru_cache(maxsize=1)
def _shared_stages() -> _MTCNNStages:
    """One compiled MTCNN per process: the networks are only read, so every detector can share them."""
    return _MTCNNStages()


def _shrink(frame: np.ndarray, scale: float) -> np.ndarray:
    """The frame resized by ``scale`` with area averaging (MTCNN's own pyramid resampling)."""
    if scale >= 1.0:
        return frame
    h, w = frame.shape[:2]
    size = (max(int(round(w * scale)), 1), max(int(round(h * scale)), 1))
    return np.asarray(Image.fromarray(frame).resize(size, Image.BOX))


class FaceDetector:
    """MTCNN over batches of frames, keeping one face per frame.

    Args:
        min_confidence: detections below it are ignored.
        batch_size: frames per MTCNN call; batching is what makes MTCNN usable on a CPU.
        select: which face to keep when several are found: ``largest``, ``confident``, ``left``,
            ``right`` or ``tracked`` (see `choose_face`; ``tracked`` follows the face chosen in the frame
            before within one call).
        min_face: None runs ``mtcnn.MTCNN.detect_faces`` on the frames as they are (smallest face 20 px).
            A fraction of the frame's shorter side instead finds faces down to that size, many times faster:
            the proposal stages run on frames shrunk so that such a face is 20 px, and O-Net runs at full
            resolution (see the module docstring). 0.2 suits webcam recordings (a face of 72 px at 360p).
    """

    def __init__(self, min_confidence: float = 0.9, batch_size: int = 32, select: str = "largest",
                 min_face: float | None = None):
        if select not in SELECT:
            raise ValueError(f"select must be one of {', '.join(SELECT)}, not {select!r}")
        if min_face is not None and not 0 < min_face <= 1:
            raise ValueError(f"min_face is a fraction of the frame's shorter side in (0, 1], not {min_face!r}")
        self.min_confidence = min_confidence
        self.batch_size = batch_size
        self.select = select
        self.min_face = min_face
        self._mtcnn = None

    def _detector(self):
        if self._mtcnn is None:
            from mtcnn import MTCNN

            self._mtcnn = MTCNN()
        return self._mtcnn

    def _staged(self) -> _MTCNNStages:
        return _shared_stages()

    def detection_scale(self, shape: Sequence[int]) -> float:
        """The factor frames of ``shape`` (H, W, ...) are shrunk by for the proposal stages (1: not at all)."""
        if self.min_face is None:
            return 1.0
        return min(1.0, _MTCNN_MIN_FACE_PX / (self.min_face * min(shape[0], shape[1])))

    def _detect_rows(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Every face O-Net keeps in each frame, as MTCNN output rows (see `_MTCNNStages.refine`), with
        ``min_face`` set. Frames of one size go through the proposal stages together, ``batch_size`` at a
        time."""
        from mtcnn.utils.bboxes import smart_nms_from_bboxes

        stages = self._staged()
        out = [np.empty((0, 20)) for _ in frames]
        by_shape: dict[tuple, list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(i)
        for shape, indices in by_shape.items():
            scale = self.detection_scale(shape)
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                small = np.stack([_shrink(frames[i], scale) for i in chunk])
                proposals = stages.propose(small)
                if len(proposals) == 0:
                    continue
                # Back to full-resolution pixels, per axis (rounding makes the two factors differ a little).
                proposals = proposals.copy()
                proposals[:, [1, 3]] *= shape[1] / small.shape[2]
                proposals[:, [2, 4]] *= shape[0] / small.shape[1]
                proposals[:, 0] = np.asarray(chunk)[proposals[:, 0].astype(int)]
                rows = stages.refine(frames, proposals)
                rows = smart_nms_from_bboxes(rows[rows[:, 5] > _ONET_THRESHOLD], threshold=_ONET_NMS,
                                             method="min", initial_sort=True)
                for i in np.unique(rows[:, 0]).astype(int):
                    out[i] = rows[rows[:, 0] == i]
        for i, rows in enumerate(out):
            if len(rows):
                h, w = frames[i].shape[:2]
                rows[:, [1, 3]] = np.clip(rows[:, [1, 3]], 0, w - 1)  # mtcnn's fit_to_image
                rows[:, [2, 4]] = np.clip(rows[:, [2, 4]], 0, h - 1)
        return out

    def detect_all(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        """Every face above ``min_confidence`` in each RGB uint8 frame (H, W, 3)."""
        if self.min_face is not None:
            return [[_face_from_row(r) for r in rows if r[5] >= self.min_confidence]
                    for rows in self._detect_rows(frames)]
        detector = self._detector()
        out: list[list[Face]] = []
        for start in range(0, len(frames), self.batch_size):
            chunk = [np.ascontiguousarray(f) for f in frames[start:start + self.batch_size]]
            result = detector.detect_faces(chunk if len(chunk) > 1 else chunk[0])
            if len(chunk) == 1:
                result = [result]
            for faces in result:
                out.append([
                    Face(box=tuple(float(v) for v in d["box"]), confidence=float(d["confidence"]),
                         keypoints={k: (float(v[0]), float(v[1])) for k, v in d["keypoints"].items()})
                    for d in faces if float(d["confidence"]) >= self.min_confidence
                ])
        return out

    def detect(self, frames: Sequence[np.ndarray]) -> list[Face | None]:
        """One face per frame (or None where there is none), chosen by ``select``."""
        chosen: list[Face | None] = []
        for frame, faces in zip(frames, self.detect_all(frames)):
            previous = next((f for f in reversed(chosen) if f is not None), None)
            chosen.append(choose_face(faces, self.select, previous, frame_width=frame.shape[1]))
        return chosen


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
    None, never a dropped frame. Memory holds about ``batch_size + read_ahead`` frames.

    Args:
        every: a key frame every ``every`` frames (1: MTCNN's proposal stages on every frame).
        min_face: smallest face to find, as a fraction of the frame's shorter side (see `FaceDetector`).
        min_confidence: a face, found or tracked, needs O-Net's confidence above it.
        select: which face to follow when several are present (see `choose_face`). It is applied at
            every key frame and every frame detected afresh; between key frames the tracked face is kept.
        batch_size: frames per chunk (rounded up to a multiple of ``every``): MTCNN calls are batched over
            a chunk's key frames, and O-Net over all its frames.
        read_ahead: frames decoded ahead in a background thread (0: none).
    """

    def __init__(self, every: int = 5, min_face: float = 0.2, min_confidence: float = 0.9,
                 select: str = "largest", batch_size: int = 30, read_ahead: int = 32):
        if every < 1:
            raise ValueError(f"every must be at least 1, not {every}")
        self.every = int(every)
        self.batch_size = -(-max(int(batch_size), 1) // self.every) * self.every
        self.read_ahead = int(read_ahead)
        self.detector = FaceDetector(min_confidence=min_confidence, batch_size=self.batch_size, select=select,
                                     min_face=min_face)

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
                (time, frame) pairs of `emotrack.video.iter_frames` with ``frame=lambda item: item[1]``.
            frame: how to get the frame from an item; the item itself when None.
        Yields:
            (item, face) per item, in order; face is a `TrackedFace` (box in pixels of the frame) or None.
        """
        get = frame if frame is not None else (lambda item: item)
        ahead = read_ahead(items, self.read_ahead) if self.read_ahead > 0 else None
        source = ahead if ahead is not None else iter(items)
        previous: tuple[np.ndarray | None, TrackedFace | None] | None = None  # last key frame's row, face
        start, buffer = 0, []
        try:
            for item in source:
                buffer.append(item)
                # Chunks end on a key frame so that every frame between two key frames is in one chunk;
                # the first chunk also holds frame 0.
                if len(buffer) == self.batch_size + (1 if previous is None else 0):
                    faces, previous = self._chunk([get(i) for i in buffer], start, previous, final=False)
                    yield from zip(buffer, faces)
                    start, buffer = start + len(buffer), []
            if buffer:
                faces, _ = self._chunk([get(i) for i in buffer], start, previous, final=True)
                yield from zip(buffer, faces)
        finally:
            if ahead is not None:  # stops the read-ahead thread when the caller stops early
                ahead.close()

    def track_all(self, frames: Iterable[np.ndarray]) -> list[TrackedFace | None]:
        """`track` over frames, returning only the faces."""
        return [face for _, face in self.track(frames)]

    def _chunk(self, frames: list[np.ndarray], start: int, previous, final: bool):
        """Faces of frames start .. start + len(frames) - 1; ``previous`` is the last key frame's (row, face)
        from the chunk before. Returns the faces and this chunk's last key frame's (row, face)."""
        n = len(frames)
        key = [(start + i) % self.every == 0 for i in range(n)]
        if final:
            key[-1] = True
        rows: list[np.ndarray | None] = [None] * n
        faces: list[TrackedFace | None] = [None] * n

        keys = [i for i in range(n) if key[i]]
        before = previous[1] if previous is not None else None
        for i, candidates in zip(keys, self.detector._detect_rows([frames[i] for i in keys])):
            rows[i], faces[i] = self._choose(candidates, before, frames[i].shape[1])
            before = faces[i] if faces[i] is not None else before

        # Between two key frames whose faces continue one another: O-Net on interpolated proposals.
        redetect, proposals, tracked = [], [], []
        anchors = ([(-1, previous[0], previous[1])] if previous is not None else []) + \
                  [(i, rows[i], faces[i]) for i in keys]
        for (a, row_a, face_a), (b, row_b, face_b) in zip(anchors, anchors[1:]):
            between = range(a + 1, b)
            if face_a is None or face_b is None or box_iou(face_a.box, face_b.box) < _CONTINUITY_IOU:
                redetect.extend(between)
                continue
            for i in between:
                w = (i - a) / (b - a)
                proposals.append(np.r_[i, (1 - w) * row_a[16:20] + w * row_b[16:20]])
                tracked.append(i)
        if proposals:
            refined = self.detector._staged().refine(frames, np.array(proposals))
            for i, row in zip(tracked, refined):
                if row[5] >= self.min_confidence:
                    h, w = frames[i].shape[:2]
                    row[[1, 3]] = np.clip(row[[1, 3]], 0, w - 1)
                    row[[2, 4]] = np.clip(row[[2, 4]], 0, h - 1)
                    rows[i], faces[i] = row, _face_from_row(row, "tracked")
                else:  # the track is lost: find the face again
                    redetect.append(i)

        redetect.sort()
        for i, candidates in zip(redetect, self.detector._detect_rows([frames[i] for i in redetect])):
            earlier = next((faces[j] for j in range(i - 1, -1, -1) if faces[j] is not None), None)
            if earlier is None and previous is not None:
                earlier = previous[1]
            rows[i], faces[i] = self._choose(candidates, earlier, frames[i].shape[1])
        last = keys[-1] if keys else None
        carry = (rows[last], faces[last]) if last is not None else previous
        return faces, carry

    def _choose(self, candidates: np.ndarray, previous: Face | None, frame_width: int):
        """The row and face chosen among one frame's candidate rows, or (None, None)."""
        kept = [r for r in candidates if r[5] >= self.min_confidence]
        options = [_face_from_row(r, "detected") for r in kept]
        face = choose_face(options, self.select, previous, frame_width)
        if face is None:
            return None, None
        return next((row, option) for row, option in zip(kept, options) if option is face)


class CropSpec(NamedTuple):
    """One output of `crop_faces`: ``height`` x ``width`` pixels, gray (1 channel) or RGB (3)."""

    height: int
    width: int
    gray: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 1 if self.gray else 3)


# The face crops each model family was published with.
CROP_SPECS: dict[str, CropSpec] = {
    "huang2018": CropSpec(112, 112, gray=True),      # Huang et al. 2018, 3D ConvNet / ConvLSTM
    "tzirakis2017": CropSpec(96, 96, gray=False),    # Tzirakis et al. 2017, ResNet-50 + LSTM
    "teixeira2021": CropSpec(100, 80, gray=False),   # Teixeira et al. 2021, Sec. 3.2 and 4.3
    "astnet": CropSpec(224, 224, gray=False),        # AST-Net and other VGG / ImageNet backbones
}


def _as_spec(spec: CropSpec | str | Sequence) -> CropSpec:
    if isinstance(spec, str):
        if spec not in CROP_SPECS:
            raise ValueError(f"unknown crop spec {spec!r}; known: {', '.join(CROP_SPECS)}")
        return CROP_SPECS[spec]
    return CropSpec(*spec)


def square_box(box: Sequence[float], margin: float) -> tuple[float, float, float]:
    """The square (center x, center y, side) around an (x, y, w, h) box, widened by ``margin``
    (0.2 adds 20% of the longer side)."""
    x, y, w, h = box
    return x + w / 2.0, y + h / 2.0, max(w, h) * (1.0 + margin)


def _crop_rect(box: Sequence[float], spec: CropSpec, margin: float) -> tuple[int, int, int, int]:
    """(left, top, width, height) in whole pixels of the region cut for ``spec``: centred on the box,
    the output's aspect ratio, just covering the box, widened by ``margin``. For a square output it is
    `square_box`."""
    x, y, w, h = box
    aspect = spec.width / spec.height
    height = max(h, w / aspect) * (1.0 + margin)
    width = height * aspect
    cx, cy = x + w / 2.0, y + h / 2.0
    return (int(round(cx - width / 2)), int(round(cy - height / 2)),
            max(int(round(width)), 1), max(int(round(height)), 1))


def eye_angle(keypoints: Mapping[str, Sequence[float]]) -> float:
    """Angle of the line from the left to the right eye (MTCNN's names: image left and right), in degrees,
    positive when the right eye is lower in the image."""
    (lx, ly), (rx, ry) = keypoints["left_eye"], keypoints["right_eye"]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def crop_faces(frame: np.ndarray, face: Face | Sequence[float], specs: Sequence[CropSpec | str],
               margin: float = 0.2, align: bool = False) -> list[np.ndarray]:
    """Crop one face out of a frame at several sizes and colours in one pass.

    The region for each output is centred on the box, has the output's aspect ratio and covers the box
    widened by ``margin`` (for a square output: the square on the box's longer side, as `square_box`).
    Where it leaves the frame, edge pixels are repeated. The frame is cut (and converted to gray) once;
    each output is then a resize (bilinear, antialiased) of its part of that cut.

    Args:
        frame: RGB uint8 (H, W, 3).
        face: a `Face` or an (x, y, w, h) box.
        specs: `CropSpec` (height, width, gray) tuples, or names of `CROP_SPECS`.
        margin: fraction of the box's longer side added around it.
        align: rotate about the box centre so that the eyes are level (needs a `Face` with keypoints).
    Returns:
        One uint8 array per spec: (height, width, 1) if gray else (height, width, 3).
    """
    specs = [_as_spec(s) for s in specs]
    box = face.box if isinstance(face, Face) else tuple(float(v) for v in face)
    angle = 0.0
    if align:
        keypoints = face.keypoints if isinstance(face, Face) else None
        if not keypoints or "left_eye" not in keypoints or "right_eye" not in keypoints:
            raise ValueError("align=True needs a Face with its left_eye and right_eye keypoints")
        angle = eye_angle(keypoints)
    rects = [_crop_rect(box, s, margin) for s in specs]
    cx, cy = box[0] + box[2] / 2.0, box[1] + box[3] / 2.0
    if angle:
        # A square about the centre that holds every rectangle turned by any angle.
        reach = max(math.hypot(max(abs(l - cx), abs(l + w - cx)), max(abs(t - cy), abs(t + h - cy)))
                    for l, t, w, h in rects)
        half = int(math.ceil(reach)) + 2
        left, top = int(math.floor(cx)) - half, int(math.floor(cy)) - half
        right, bottom = left + 2 * half + 1, top + 2 * half + 1
    else:
        left, top = min(r[0] for r in rects), min(r[1] for r in rects)
        right, bottom = max(r[0] + r[2] for r in rects), max(r[1] + r[3] for r in rects)
    h, w = frame.shape[:2]
    pad = max(0, -left, -top, right - w, bottom - h)
    region = frame
    if pad:
        region = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    image = Image.fromarray(np.ascontiguousarray(region[top + pad:bottom + pad, left + pad:right + pad]))
    if angle:
        # PIL turns counter-clockwise as displayed; a positive eye angle is a clockwise tilt.
        image = image.rotate(angle, resample=Image.BILINEAR, center=(cx - left, cy - top))
    gray = image.convert("L") if any(s.gray for s in specs) else None
    out = []
    for spec, (l, t, rw, rh) in zip(specs, rects):
        source = gray if spec.gray else image
        patch = source.crop((l - left, t - top, l - left + rw, t - top + rh))
        arr = np.asarray(patch.resize((spec.width, spec.height), Image.BILINEAR), dtype=np.uint8)
        out.append(arr[..., None] if spec.gray else arr)
    return out


def crop_face(frame: np.ndarray, box: Sequence[float], size: tuple[int, int], margin: float = 0.2,
              gray: bool = True) -> np.ndarray:
    """Crop one face at one size: `crop_faces` with a single spec.

    Args:
        frame: RGB uint8 (H, W, 3).
        box: (x, y, w, h).
        size: output (height, width).
    Returns:
        uint8 (height, width, 1) if ``gray`` else (height, width, 3).
    """
    return crop_faces(frame, box, [CropSpec(size[0], size[1], gray)], margin)[0]
