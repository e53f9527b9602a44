"""Face detection (MTCNN, the ``mtcnn`` package) and face cropping.

The detector is imported lazily: importing emotrack does not load TensorFlow's MTCNN graphs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from PIL import Image


@dataclasses.dataclass(frozen=True)
class Face:
    """One detected face. ``box`` is (x, y, w, h) in pixels of the frame; ``keypoints`` maps
    left_eye, right_eye, nose, mouth_left, mouth_right to (x, y)."""

    box: tuple[float, float, float, float]
    confidence: float
    keypoints: dict[str, tuple[float, float]]


class FaceDetector:
    """MTCNN over batches of frames, keeping one face per frame.

    Args:
        min_confidence: detections below it are ignored.
        batch_size: frames per MTCNN call; batching is what makes MTCNN usable on a CPU.
        select: which face to keep when several are found: ``largest`` or ``confident``.
    """

    def __init__(self, min_confidence: float = 0.9, batch_size: int = 32, select: str = "largest"):
        if select not in ("largest", "confident"):
            raise ValueError(f"select must be 'largest' or 'confident', not {select!r}")
        self.min_confidence = min_confidence
        self.batch_size = batch_size
        self.select = select
        self._mtcnn = None

    def _detector(self):
        if self._mtcnn is None:
            from mtcnn import MTCNN

            self._mtcnn = MTCNN()
        return self._mtcnn

    def detect_all(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        """Every face above ``min_confidence`` in each RGB uint8 frame (H, W, 3)."""
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
        key = (lambda f: f.box[2] * f.box[3]) if self.select == "largest" else (lambda f: f.confidence)
        return [max(faces, key=key) if faces else None for faces in self.detect_all(frames)]


def square_box(box: Sequence[float], margin: float) -> tuple[float, float, float]:
    """The square (center x, center y, side) around an (x, y, w, h) box, widened by ``margin``
    (0.2 adds 20% of the longer side)."""
    x, y, w, h = box
    return x + w / 2.0, y + h / 2.0, max(w, h) * (1.0 + margin)


def crop_face(frame: np.ndarray, box: Sequence[float], size: tuple[int, int], margin: float = 0.2,
              gray: bool = True) -> np.ndarray:
    """Crop a square around ``box`` (padding with edge pixels where it leaves the frame) and resize.

    Args:
        frame: RGB uint8 (H, W, 3).
        box: (x, y, w, h).
        size: output (height, width).
    Returns:
        uint8 (height, width, 1) if ``gray`` else (height, width, 3).
    """
    cx, cy, side = square_box(box, margin)
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    side_px = max(int(round(side)), 1)
    h, w = frame.shape[:2]
    pad = max(0, -left, -top, left + side_px - w, top + side_px - h)
    if pad:
        frame = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        left, top = left + pad, top + pad
    patch = Image.fromarray(frame[top:top + side_px, left:left + side_px])
    if gray:
        patch = patch.convert("L")
    patch = patch.resize((size[1], size[0]), Image.BILINEAR)
    arr = np.asarray(patch, dtype=np.uint8)
    return arr[..., None] if gray else arr
