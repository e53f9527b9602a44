"""Face detection (MTCNN, the ``mtcnn`` package), and the face choice that tracking builds on.

Two ways to find faces (the second in `emotrack.faces.track`):

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

Crops (`emotrack.faces.crop`): `crop_faces` cuts the face out of a frame once and returns it at several sizes and colours
(`CropSpec`, one per model family in `CROP_SPECS`), optionally rotated so that the eyes are level.

TensorFlow and the detector are imported lazily: importing emotrack does not load MTCNN's graphs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

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
        # Rows are taken from the part of the frame the samples span, not across the whole frame.
        block = frame[:, x0[0]:x1[-1] + 1]
        x0, x1 = x0 - x0[0], x1 - x0[0]
        top, bottom = block[y0], block[y1]
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

    def warm_up(self) -> None:
        """Trace the three networks once, on blank input, so that the first frames of a live source do not
        wait for it."""
        for network, side in ((self.pnet._model, 12), (self.rnet._model, 24), (self.onet, 48)):
            network(np.zeros((1, side, side, 3), np.float32))

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


def warm_up_mtcnn() -> None:
    """Load and trace the process's MTCNN networks now rather than on the first frame."""
    _shared_stages().warm_up()


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


