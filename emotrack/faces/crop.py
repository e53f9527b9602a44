"""Face crops: `crop_faces` cuts the face out of a frame once and returns it at several sizes and
colours (`CropSpec`, one per model family in `CROP_SPECS`), optionally rotated so that the eyes are
level; crop sets are named here (`crop_set`, `crop_sets`, `parse_crops`)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image

from emotrack.faces.detect import Face

_CUSTOM_CROP = re.compile(r"(\d+)x(\d+)(gray|rgb)?")


def crop_set(name: str) -> tuple[str, CropSpec]:
    """A crop set by name: one of `emotrack.faces.crop.CROP_SPECS`, or ``HxW`` followed by ``gray`` or ``rgb``
    (``rgb`` when neither is said), e.g. ``64x48gray``.

    Returns:
        (the set's name, spelled ``HxWgray`` / ``HxWrgb`` for a custom size; its `CropSpec`).
    Raises:
        ValueError: naming the known sets.
    """
    name = str(name).strip()
    if name in CROP_SPECS:
        return name, CROP_SPECS[name]
    m = _CUSTOM_CROP.fullmatch(name.lower())
    if not m or min(int(m.group(1)), int(m.group(2))) < 1:
        raise ValueError(f"unknown crop set {name!r}: use one of {', '.join(CROP_SPECS)}, or HxW[gray|rgb] "
                         f"(e.g. 64x64gray)")
    height, width, colour = int(m.group(1)), int(m.group(2)), m.group(3) or "rgb"
    return f"{height}x{width}{colour}", CropSpec(height, width, colour == "gray")


def parse_crops(text: str) -> tuple[str, ...]:
    """``"huang2018,tzirakis2017"`` -> the sets' names (see `crop_set`), in order, each once."""
    names = tuple(crop_set(part)[0] for part in str(text).split(",") if part.strip())
    if not names:
        raise ValueError("name at least one crop set, e.g. huang2018 or 112x112gray")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"crop set(s) named more than once: {', '.join(repeated)}")
    return names


def crop_sets(crops: Iterable[str] | None, size: Iterable[int] = (112, 112), gray: bool = True) -> dict[str, CropSpec]:
    """The crop sets of a run by name, the default (stored as ``frames``) first: those of ``crops``, or
    one set of ``size`` (height, width) and ``gray`` when ``crops`` is None."""
    if crops is None:
        height, width = (int(v) for v in size)
        return dict([crop_set(f"{height}x{width}{'gray' if gray else 'rgb'}")])
    return dict(crop_set(name) for name in crops)


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
    # Only the cut is read; where it leaves the frame, the nearest edge pixels are repeated (the whole
    # frame is never padded).
    if left >= 0 and top >= 0 and right <= w and bottom <= h:
        inside = frame[top:bottom, left:right]
    else:
        inside = frame[np.ix_(np.clip(np.arange(top, bottom), 0, h - 1), np.clip(np.arange(left, right), 0, w - 1))]
    image = Image.fromarray(np.ascontiguousarray(inside))
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
