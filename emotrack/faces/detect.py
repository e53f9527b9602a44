"""Face detection (MTCNN, the ``mtcnn`` package), and the face choice that tracking builds on.

Two ways to find faces (the second in `emotrack.faces.track`):

- `FaceDetector`: MTCNN on every frame given, in batches; one face per frame.
- `FaceTracker`: for videos, many times faster, and memory-bounded (it reads frames from an iterator).
  MTCNN runs in its three stages. The proposal stages (P-Net, R-Net) see frames shrunk so that the
  smallest face wanted (``min_face``, a fraction of the frame) is MTCNN's smallest, 20 pixels; they run
  on every ``every``-th frame (the key frames). The output stage (O-Net), which gives the box, the
  confidence and the five landmarks, always runs at full resolution: on the key frames' proposals, and
  on every frame between two key frames, on the proposal interpolated between theirs. Where the faces of
  the key frames around a frame do not overlap (a cut, a jump, a face that comes or goes), the face of
  one of them is followed frame by frame (the earlier one's; the later one's, back in time, where only it
  has a face). A frame is detected afresh, as a key frame is, when its O-Net confidence falls below
  ``min_confidence`` (the track is lost) or when neither key frame around it has a face.

The networks run in TensorFlow Lite (`_MTCNNStages`), each frame's proposals made from that frame alone,
so that a frame's faces do not depend on the frames it is batched with.

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
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from emotrack.files import atomic_path, stderr_to_file

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
    box corners divided by the frame size, 0 outside the frame), done on the uint8 frames, so the frames
    need not be stacked into one float tensor. Only the gathering of pixels goes frame by frame (all of a
    frame's boxes at once, the frame read only where its patches fall); the arithmetic runs once on every
    patch.

    Args:
        frames: RGB uint8 (H, W, 3) frames.
        rows: (n, >=5) image index into ``frames``, x1, y1, x2, y2 in pixels.
    Returns:
        float32 (n, side, side, 3).
    """
    rows = np.asarray(rows, np.float64)
    n = len(rows)
    if n == 0:
        return np.zeros((0, side, side, 3), np.float32)
    indices = rows[:, 0].astype(np.intp)
    sizes = np.array([frames[i].shape[:2] for i in indices], np.float64)
    h, w = sizes[:, :1], sizes[:, 1:]
    steps = np.arange(side, dtype=np.float64) / (side - 1)
    ys = (rows[:, 2:3] + steps * (rows[:, 4:5] - rows[:, 2:3])) * (h - 1) / h
    xs = (rows[:, 1:2] + steps * (rows[:, 3:4] - rows[:, 1:2])) * (w - 1) / w
    y0 = np.clip(np.floor(ys), 0, h - 1).astype(np.intp)
    x0 = np.clip(np.floor(xs), 0, w - 1).astype(np.intp)
    y1, x1 = np.minimum(y0 + 1, h.astype(np.intp) - 1), np.minimum(x0 + 1, w.astype(np.intp) - 1)
    # Each patch's rows y0 then y1 and columns x0 then x1: the four neighbours of every sample at once.
    flat = (np.concatenate([y0, y1], axis=1) * w.astype(np.intp))[:, :, None] + np.concatenate([x0, x1], axis=1)[:, None, :]
    taken = np.empty((n, 2 * side, 2 * side, 3), np.uint8)
    for index in np.unique(indices):
        ks = np.flatnonzero(indices == index)
        frame = frames[index]
        taken[ks] = np.take(frame.reshape(-1, frame.shape[2]), flat[ks], axis=0)
    # Rows of a patch as (side, side * 3), so that every step runs along a whole row.
    corner = taken.reshape(n, 2, side, 2, side * 3).astype(np.float32)
    inside = ((ys >= 0) & (ys <= h - 1))[:, :, None] & np.repeat((xs >= 0) & (xs <= w - 1), 3, 1)[:, None]
    dy = (ys - np.floor(ys)).astype(np.float32)[:, :, None]
    dx = np.repeat((xs - np.floor(xs)).astype(np.float32), 3, 1)[:, None]
    top = corner[:, 0, :, 0] * (1 - dx) + corner[:, 0, :, 1] * dx
    bottom = corner[:, 1, :, 0] * (1 - dx) + corner[:, 1, :, 1] * dx
    patch = (top * (1 - dy) + bottom * dy - 127.5) / 128.0
    return np.where(inside, patch, np.float32(0)).reshape(n, side, side, 3)


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


# MTCNN's proposal stages (mtcnn 1.0.0 defaults): P-Net keeps windows above 0.6, merges them by IoU 0.5 within
# a pyramid level and 0.7 across levels; R-Net keeps boxes above 0.7 and merges them by IoU 0.7. The
# pyramid's levels shrink by 0.709, from the level where a 20 px face fills P-Net's 12 px window.
_PNET_THRESHOLD, _PNET_NMS_LEVEL, _PNET_NMS = 0.6, 0.5, 0.7
_RNET_THRESHOLD, _RNET_NMS = 0.7, 0.7
_PYRAMID_STEP = 0.709


def _area_matrix(size_in: int, size_out: int):
    """TensorFlow's area resampling (``tf.image.resize(method="area")``) along one axis, as a sparse
    (size_out, size_in) matrix: each output pixel averages the input pixels its span of ``size_in / size_out``
    covers, each weighted by the share of it covered."""
    from scipy import sparse

    scale = np.float32(size_in) / np.float32(size_out)
    starts = np.arange(size_out, dtype=np.float32) * scale
    ends = np.arange(1, size_out + 1, dtype=np.float32) * scale
    first = np.floor(starts).astype(np.int64)
    count = int((np.ceil(ends).astype(np.int64) - first).max())
    index = first[:, None] + np.arange(count)[None, :]
    cells = index.astype(np.float32)
    weight = np.clip(np.minimum(ends[:, None], cells + 1) - np.maximum(starts[:, None], cells), 0, None) / scale
    rows = np.repeat(np.arange(size_out), count)
    matrix = sparse.coo_matrix((weight.astype(np.float32).ravel(), (rows, np.minimum(index, size_in - 1).ravel())),
                               shape=(size_out, size_in))
    return matrix.tocsr()


@functools.lru_cache(maxsize=64)
def _area_plan(shape_in: tuple[int, int], shape_out: tuple[int, int], channels: int):
    """The two sparse matrices of `_area_resize`: rows, then columns (channels interleaved, transposed)."""
    from scipy import sparse

    down = _area_matrix(shape_in[0], shape_out[0])
    across = sparse.kron(_area_matrix(shape_in[1], shape_out[1]), sparse.identity(channels, np.float32), format="csr")
    return down, across.astype(np.float32)


def _area_resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A float32 (H, W, C) image resized to ``shape`` (h, w) as ``tf.image.resize(method="area")`` resizes it
    (mtcnn's image pyramid), one axis after the other with sparse weights: the same numbers to float32
    rounding, without a TensorFlow op per level."""
    h, w, c = image.shape
    down, across = _area_plan((h, w), tuple(shape), c)
    tall = down @ image.reshape(h, w * c)
    return np.ascontiguousarray((across @ tall.T).T, dtype=np.float32).reshape(shape[0], shape[1], c)


def _pyramid_shapes(h: int, w: int) -> list[tuple[float, tuple[int, int]]]:
    """(scale, (height, width)) of each level of mtcnn's image pyramid for an (h, w) image: the scales of
    ``mtcnn.utils.images.build_scale_pyramid`` (20 px faces, step 0.709), the sizes truncated as
    ``tf.image.resize`` takes them; levels smaller than P-Net's 12 px window are left out."""
    from mtcnn.utils.images import build_scale_pyramid

    out = []
    for scale in build_scale_pyramid(w, h, min_face_size=_MTCNN_MIN_FACE_PX, scale_factor=_PYRAMID_STEP):
        size = (np.asarray([h, w]) * scale).astype(np.int32)
        if size.min() >= 12:
            out.append((float(scale), (int(size[0]), int(size[1]))))
    return out


def _pyramid(small: np.ndarray) -> list[np.ndarray]:
    """The levels of mtcnn's image pyramid (`_pyramid_shapes`) of one RGB (h, w, 3) image, MTCNN-normalised
    ((v - 127.5) / 128, float32)."""
    image = (small.astype(np.float32) - 127.5) / 128.0
    return [_area_resize(image, shape) for _, shape in _pyramid_shapes(*small.shape[:2])]


def _pnet_boxes(offsets: np.ndarray, scores: np.ndarray, scale: float, index: int) -> np.ndarray:
    """P-Net's windows above its threshold in one level of one image, as rows (index, x1, y1, x2, y2, score)
    in pixels of the image, best first: ``mtcnn.utils.bboxes.generate_bounding_box`` (12 px windows,
    stride 2) and ``upscale_bboxes``."""
    ys, xs = np.nonzero(scores[..., 1] > _PNET_THRESHOLD)
    if not len(ys):
        return np.empty((0, 6))
    reg = offsets[ys, xs].T
    x1, y1 = xs * 2 + 1, ys * 2 + 1
    x2, y2 = xs * 2 + 12, ys * 2 + 12
    boxes = np.stack([np.full(len(ys), index), x1 + reg[0] * 11, y1 + reg[1] * 11, x2 + reg[2] * 11,
                      y2 + reg[3] * 11, scores[ys, xs, 1]], axis=0).T
    boxes = boxes[np.argsort(boxes[:, 5])[::-1]]
    boxes[:, 1:5] /= scale
    return boxes


def _network_threads() -> int:
    """Threads a network of a `FaceDetector` runs on by default: two where the process may use two cores or
    more, and has them to itself (a preprocessing worker sets TensorFlow's inter-op thread count to its share
    of the cores; that share, where set, is the most). `FaceTracker` asks for one (`TRACKER_THREADS`).
    XNNPACK gives the same numbers on any number of threads."""
    import tensorflow as tf

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    share = tf.config.threading.get_inter_op_parallelism_threads()
    return max(1, min(2, cores, share or cores))


class _LiteNetwork:
    """One of MTCNN's networks run by TensorFlow Lite's interpreter (XNNPACK): the same weights and,
    to float32 rounding, the same numbers as the Keras model, without TensorFlow's cost per call (about 0.8 ms,
    more than O-Net needs for a face).

    An interpreter is kept per input shape (P-Net: one per pyramid level; R-Net and O-Net: batches of 1, 2, 4,
    ... 32 patches, into which any number is split), so each output depends on its own input alone, not on
    what else went through with it. Calls from several threads take turns.
    """

    _LARGEST_BATCH = 32
    _KEPT = 64  # interpreters kept per network

    def __init__(self, stage, side: int | None, outputs: Sequence[int], threads: int):
        self._content = _lite_model(stage, side)
        self._threads = int(threads)
        self._outputs = tuple(outputs)  # the last dimension of each output, in the Keras model's order
        self._interpreters: dict[tuple, tuple] = {}
        self._lock = threading.Lock()

    def _interpreter(self, shape: tuple) -> tuple:
        found = self._interpreters.get(shape)
        if found is None:
            import tensorflow as tf

            with warnings.catch_warnings(), stderr_to_file():
                warnings.simplefilter("ignore")  # tf.lite.Interpreter's notice of LiteRT, its successor
                interpreter = tf.lite.Interpreter(model_content=self._content, num_threads=self._threads)
                source = interpreter.get_input_details()[0]["index"]
                interpreter.resize_tensor_input(source, shape, strict=False)
                interpreter.allocate_tensors()
            by_size = {d["shape"][-1]: d["index"] for d in interpreter.get_output_details()}
            if len(self._interpreters) >= self._KEPT:  # frames of many sizes: the oldest shape goes
                del self._interpreters[next(iter(self._interpreters))]
            found = self._interpreters[shape] = (interpreter, source, [by_size[n] for n in self._outputs])
        return found

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        interpreter, source, outputs = self._interpreter(x.shape)
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in outputs]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, np.float32)
        if len(x) == 0:
            return [np.zeros((0, n), np.float32) for n in self._outputs]
        with self._lock:
            if len(x) & (len(x) - 1) == 0 and len(x) <= self._LARGEST_BATCH:
                return self._run(x)
            parts, start = [], 0
            while start < len(x):
                size = min(self._LARGEST_BATCH, 1 << ((len(x) - start).bit_length() - 1))
                parts.append(self._run(x[start:start + size]))
                start += size
        return [np.concatenate(p) for p in zip(*parts)]


def _lite_model(stage, side: int | None) -> bytes:
    """The TensorFlow Lite model of one of mtcnn's stages (its class; ``side``: the input's, None for any),
    converted from its Keras model with the weights frozen in: once per mtcnn and TensorFlow version, then
    read from ``$XDG_CACHE_HOME/emotrack/mtcnn`` (``~/.cache``), as converting takes seconds. Where that
    folder cannot be written, it is converted in every process."""
    from importlib.metadata import version

    import tensorflow as tf

    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emotrack" / "mtcnn"
    path = folder / f"{stage.__name__}-mtcnn{version('mtcnn')}-tf{tf.__version__}.tflite"
    try:
        content = path.read_bytes()
        if content[4:8] == b"TFL3":  # a flatbuffer of TensorFlow Lite's schema, not a torn or foreign file
            return content
    except OSError:
        pass
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([None, side, side, 3], tf.float32)
    network = tf.function(stage().model, input_signature=[spec]).get_concrete_function()
    content = tf.lite.TFLiteConverter.from_concrete_functions([convert_variables_to_constants_v2(network)]).convert()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(content)
    except OSError:
        pass
    return content


class _MTCNNStages:
    """MTCNN's three networks (weights from the mtcnn wheel) and the steps between them.

    The stages run separately so that proposals (P-Net, R-Net) can come from shrunk frames and O-Net can
    run at full resolution on any box. The networks run in TensorFlow Lite (`_LiteNetwork`, in the pinned
    TensorFlow); the steps between them are mtcnn's (its pyramid, windows, NMS and box
    regression, with the pyramid resampled in NumPy), applied to each frame on its own, so that a frame's
    faces never depend on the frames it is batched with.
    """

    def __init__(self, threads: int):
        from mtcnn.stages import StageONet, StagePNet, StageRNet

        self.pnet = _LiteNetwork(StagePNet, None, (4, 2), threads)
        self.rnet = _LiteNetwork(StageRNet, 24, (4, 2), threads)
        self.onet = _LiteNetwork(StageONet, 48, (4, 10, 2), threads)

    def warm_up(self) -> None:
        """Run the three networks once, on blank input, so that the first frames of a live source do not
        wait for them."""
        for network, side in ((self.pnet, 12), (self.rnet, 24), (self.onet, 48)):
            network(np.zeros((1, side, side, 3), np.float32))

    def propose(self, small: np.ndarray, pyramids: Sequence[list[np.ndarray] | None] | None = None) -> np.ndarray:
        """R-Net's square proposals for a stack of same-size frames, each frame on its own.

        Args:
            small: RGB (N, h, w, 3), uint8 or float pixel values.
            pyramids: each frame's `_pyramid`, where already made (None: made here).
        Returns:
            (n, 6): image index, x1, y1, x2, y2, R-Net score, in pixels of ``small``.
        """
        from mtcnn.utils.bboxes import resize_to_square, smart_nms_from_bboxes

        levels = _pyramid_shapes(*small.shape[1:3])
        found = []
        for index, frame in enumerate(small):
            pyramid = pyramids[index] if pyramids is not None and pyramids[index] is not None else _pyramid(frame)
            windows = []
            for (scale, _), level in zip(levels, pyramid):
                offsets, scores = self.pnet(level[None])
                boxes = _pnet_boxes(offsets[0], scores[0], scale, index)
                if len(boxes):
                    windows.append(smart_nms_from_bboxes(boxes, threshold=_PNET_NMS_LEVEL, method="union",
                                                         initial_sort=False))
            if not windows:
                continue
            rows = smart_nms_from_bboxes(np.concatenate(windows), threshold=_PNET_NMS, method="union",
                                         initial_sort=True)
            rows = resize_to_square(rows)
            # R-Net on 24 px patches of the proposals, as mtcnn's StageRNet.
            offsets, scores = self.rnet(_sample_patches(small, rows, 24))
            rows[:, 5] = scores[:, 1]
            w, h = rows[:, 3] - rows[:, 1] + 1, rows[:, 4] - rows[:, 2] + 1
            rows[:, 1:5] += offsets * np.stack([w, h, w, h], axis=-1)
            rows = rows[rows[:, 5] > _RNET_THRESHOLD]
            if len(rows):
                rows = smart_nms_from_bboxes(rows, threshold=_RNET_NMS, method="union", initial_sort=True)
                found.append(resize_to_square(rows))
        return np.concatenate(found) if found else np.empty((0, 6))

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
        offsets, landmarks, scores = self.onet(_sample_patches(frames, squares, 48))
        # mtcnn.utils: adjust_landmarks and adjust_bboxes, with the +1 of its pixel-inclusive sizes.
        w = squares[:, 3:4] - squares[:, 1:2] + 1
        h = squares[:, 4:5] - squares[:, 2:3] + 1
        marks_x = w * landmarks[:, :5] + squares[:, 1:2] - 1
        marks_y = h * landmarks[:, 5:] + squares[:, 2:3] - 1
        boxes = squares[:, 1:5] + offsets * np.concatenate([w, h, w, h], axis=1)
        return np.concatenate([squares[:, :1], boxes, scores[:, 1:2], marks_x, marks_y, squares[:, 1:5]], axis=1)


@functools.lru_cache(maxsize=None)
def _shared_stages(threads: int) -> _MTCNNStages:
    """One MTCNN per process and thread count: the networks are only read, so every detector that runs them
    on as many threads can share them."""
    return _MTCNNStages(threads)


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
        threads: threads each network runs on, with ``min_face`` set (None: `_network_threads`).
    """

    def __init__(self, min_confidence: float = 0.9, batch_size: int = 32, select: str = "largest",
                 min_face: float | None = None, threads: int | None = None):
        if select not in SELECT:
            raise ValueError(f"select must be one of {', '.join(SELECT)}, not {select!r}")
        if min_face is not None and not 0 < min_face <= 1:
            raise ValueError(f"min_face is a fraction of the frame's shorter side in (0, 1], not {min_face!r}")
        self.min_confidence = min_confidence
        self.batch_size = batch_size
        self.select = select
        self.min_face = min_face
        self.threads = threads
        self._mtcnn = None
        self._stages: _MTCNNStages | None = None

    def _detector(self):
        if self._mtcnn is None:
            from mtcnn import MTCNN

            self._mtcnn = MTCNN()
        return self._mtcnn

    def _staged(self) -> _MTCNNStages:
        if self._stages is None:  # the thread count is settled on first use, then kept
            self._stages = _shared_stages(self.threads if self.threads is not None else _network_threads())
        return self._stages

    def warm_up(self) -> None:
        """Load this detector's MTCNN networks now rather than on the first frame."""
        self._staged().warm_up()

    def detection_scale(self, shape: Sequence[int]) -> float:
        """The factor frames of ``shape`` (H, W, ...) are shrunk by for the proposal stages (1: not at all)."""
        if self.min_face is None:
            return 1.0
        return min(1.0, _MTCNN_MIN_FACE_PX / (self.min_face * min(shape[0], shape[1])))

    def prepare(self, frame: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """What the proposal stages read of a frame (``min_face`` set): the frame shrunk (`detection_scale`)
        and its image pyramid. Made ahead, e.g. in the thread that decodes, it spares `_detect_rows` the work;
        the faces found are the same."""
        small = _shrink(frame, self.detection_scale(frame.shape))
        return small, _pyramid(small)

    def _detect_rows(self, frames: Sequence[np.ndarray],
                     prepared: Sequence[tuple[np.ndarray, list[np.ndarray]] | None] | None = None) -> list[np.ndarray]:
        """Every face O-Net keeps in each frame, as MTCNN output rows (see `_MTCNNStages.refine`), with
        ``min_face`` set. Frames of one size go through the proposal stages together, ``batch_size`` at a
        time; ``prepared``: each frame's `prepare`, where made ahead (None: made here)."""
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
                ready = [prepared[i] if prepared is not None else None for i in chunk]
                small = np.stack([p[0] if p is not None else _shrink(frames[i], scale) for i, p in zip(chunk, ready)])
                proposals = stages.propose(small, [p[1] if p is not None else None for p in ready])
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


