"""Small labelled face-image sets in the release layouts of FER2013 and RAF-DB (read by
:mod:`emotrack.corpora.images`), so that 2D pre-training on discrete emotions runs without the licensed
sets (``emotrack reproduce PAPER --smoke``, the tests).

Every image is the synthetic face of :mod:`emotrack.synth.face` showing one class's expression through
the same valence and arousal warps the synthetic corpus uses (``EXPRESSIONS``), with a little jitter
of the expression and of the head pose. Each subject shows every class, so a classifier must learn the
expression, not who shows it; subjects are split between the sets' partitions (none is in two).

``fer2013``::

    fer2013.csv     emotion,pixels,Usage: 48x48 gray faces; Training rows first, then PublicTest, then
                    PrivateTest, as in the release (about 80 / 10 / 10 % of the subjects)

``rafdb``::

    basic/EmoLabel/list_patition_label.txt       "train_00001.jpg 4", labels 1..7
    basic/Image/aligned/train_00001_aligned.jpg  100x100 RGB JPEG (test: test_0001_aligned.jpg, four
                                                 digits, as in the release); about 80 / 20 % of subjects

The same seed writes the same bytes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from emotrack.corpora.images import FER2013_EMOTIONS, FER2013_SIZE, FER2013_USAGES, RAFDB_EMOTIONS, RAFDB_LABEL_FILE
from emotrack.files import atomic_path
from emotrack.synth import face as _face

#: Each class's expression as (valence, arousal) on the synthetic face: valence curves the mouth and
#: lowers the brows, arousal opens the eyes and raises the brows. Placed on Russell's circumplex, and
#: spread out so that no two classes are closer than about 0.6: with two degrees of freedom, seven
#: classes must be far apart in both to stay learnable.
EXPRESSIONS: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "happy": (0.9, 0.2),        # smiling, relaxed eyes
    "surprise": (0.3, 1.0),     # wide eyes, raised brows
    "fear": (-0.4, 0.9),        # wide eyes, mouth down
    "angry": (-0.9, 0.5),       # lowered, drawn brows, mouth down, eyes open
    "disgust": (-0.8, -0.1),    # mouth down, eyes a little narrowed
    "sad": (-0.6, -0.8),        # mouth down, eyes narrowed, lids lowered
}
#: RAF-DB's class names -> the names above.
_RAFDB_NAMES = {"happiness": "happy", "sadness": "sad", "anger": "angry"}
IMAGE_LAYOUTS = ("fer2013", "rafdb")
_EXPRESSION_JITTER = 0.08
_KEY_SUBJECT, _KEY_IMAGE, _KEY_ORDER = 10, 11, 12
_RENDER_SIZE = {"fer2013": 96, "rafdb": 100}  # FER2013's faces are rendered at 96 and reduced to 48


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def subject_renderer(seed: int, subject: int, size: int) -> _face.FaceRenderer:
    """Subject ``subject``'s face, placed as an aligned face crop places it: the same size and position
    for everyone (the releases align faces by their landmarks), with a head shape of its own kept
    within a few percent so that the alignment would still hold."""
    rng = _rng(seed, _KEY_SUBJECT, subject)
    look = _face.sample_subject_look(rng)
    sx, sy = (float(np.exp(np.log(v) / 3)) for v in look.stretch)
    look = dataclasses.replace(look, face_width=0.66, centre=(0.5, 0.52), stretch=(sx, sy), shear=look.shear / 3)
    return _face.FaceRenderer(look, size, size)


def expression_image(renderer: _face.FaceRenderer, seed: int, subject: int, emotion: str) -> np.ndarray:
    """One face: ``subject`` (drawn by ``renderer``) showing ``emotion`` (a key of ``EXPRESSIONS``), with
    the jitter of this (subject, emotion) pair. Returns uint8 (size, size, 3) RGB."""
    valence, arousal = EXPRESSIONS[emotion]
    rng = _rng(seed, _KEY_IMAGE, subject, list(EXPRESSIONS).index(emotion))
    valence, arousal = np.clip(np.array([valence, arousal]) + rng.normal(0, _EXPRESSION_JITTER, 2), -1, 1)
    size = renderer.height
    # Small, as in aligned face crops: a pixel or two of shift, two degrees of roll, 1.5 % of scale.
    pose = (rng.normal(0, 0.01 * size), rng.normal(0, 0.01 * size), np.deg2rad(rng.normal(0, 2.0)),
            1.0 + rng.normal(0, 0.015))
    return renderer.render(float(arousal), float(valence), pose)


def _faces(seed: int, count: int, emotions, size: int) -> dict[tuple[int, str], np.ndarray]:
    """Every subject's face for every class, by (subject, class name)."""
    out = {}
    for subject in range(count):
        renderer = subject_renderer(seed, subject, size)
        for emotion in emotions:
            out[subject, emotion] = expression_image(renderer, seed, subject, _RAFDB_NAMES.get(emotion, emotion))
    return out


def _split(count: int, held_out: tuple[float, ...]) -> list[int]:
    """Partition index per subject: the last subjects go to the held-out partitions (at least one each)."""
    sizes = [max(1, int(round(count * f))) for f in held_out]
    if count - sum(sizes) < 1:
        raise ValueError(f"count={count} subjects per class leave none for training; use at least "
                         f"{sum(sizes) + 1}")
    parts = [0] * (count - sum(sizes))
    for k, n in enumerate(sizes, start=1):
        parts += [k] * n
    return parts


def _fer2013(out: Path, count: int, seed: int) -> dict:
    from PIL import Image

    parts = _split(count, (0.1, 0.1))
    rows = {usage: [] for usage in FER2013_USAGES}
    faces = _faces(seed, count, FER2013_EMOTIONS, _RENDER_SIZE["fer2013"])
    for subject in range(count):
        for label, emotion in enumerate(FER2013_EMOTIONS):
            rgb = faces[subject, emotion]
            gray = Image.fromarray(rgb).convert("L").resize((FER2013_SIZE, FER2013_SIZE), Image.Resampling.BOX)
            gray = np.asarray(gray)
            rows[FER2013_USAGES[parts[subject]]].append(f'{label},"{" ".join(map(str, gray.ravel()))}"')
    order = _rng(seed, _KEY_ORDER)
    lines = ["emotion,pixels,Usage"]
    for usage in FER2013_USAGES:  # shuffled within each usage, so that classes and subjects interleave
        lines += [f"{rows[usage][i]},{usage}" for i in order.permutation(len(rows[usage]))]
    path = out / "fer2013.csv"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    return {"path": str(path), "partitions": {u: len(rows[u]) for u in FER2013_USAGES}}


def _rafdb(out: Path, count: int, seed: int) -> dict:
    from PIL import Image

    parts = _split(count, (0.2,))
    items = {"train": [], "test": []}
    for subject in range(count):
        for label, emotion in enumerate(RAFDB_EMOTIONS, start=1):
            items["train" if parts[subject] == 0 else "test"].append((subject, emotion, label))
    faces = _faces(seed, count, RAFDB_EMOTIONS, _RENDER_SIZE["rafdb"])
    basic = out / "basic"
    order = _rng(seed, _KEY_ORDER)
    # The whole set appears at once (a folder written aside and renamed), never a half-written one.
    with atomic_path(basic) as tmp:
        (tmp / "Image" / "aligned").mkdir(parents=True)
        (tmp / RAFDB_LABEL_FILE).parent.mkdir(parents=True)
        lines = []
        for split, digits in (("train", 5), ("test", 4)):
            for number, i in enumerate(order.permutation(len(items[split])), start=1):
                subject, emotion, label = items[split][i]
                image = faces[subject, emotion]
                name = f"{split}_{number:0{digits}d}"
                Image.fromarray(image).save(tmp / "Image" / "aligned" / f"{name}_aligned.jpg", quality=95)
                lines.append(f"{name}.jpg {label}")
        (tmp / RAFDB_LABEL_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    return {"path": str(basic), "partitions": {s: len(items[s]) for s in items}}


def synthesize_images(layout: str, out_dir: str | Path, count: int = 20, seed: int = 0) -> dict:
    """Write a labelled face-image set in ``layout``'s release layout under ``out_dir`` (see the module
    docstring).

    Args:
        layout: ``fer2013`` or ``rafdb``.
        count: images per class (one per subject: ``count`` subjects each show every class); at least 3
            for FER2013 (a subject for each usage) and 2 for RAF-DB.
        seed: the seed everything is drawn from.

    Returns:
        ``{"root", "layout", "path" (fer2013.csv or the basic folder), "classes", "images",
        "partitions": {name: images}}``.
    Raises:
        ValueError: an unknown layout, or a count too small for every partition to get a subject.
    """
    if layout not in IMAGE_LAYOUTS:
        raise ValueError(f"no synthetic image layout {layout!r}; there are: {', '.join(IMAGE_LAYOUTS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    made = (_fer2013 if layout == "fer2013" else _rafdb)(out, int(count), seed)
    classes = FER2013_EMOTIONS if layout == "fer2013" else RAFDB_EMOTIONS
    return {"root": str(out), "layout": layout, "classes": list(classes), "images": sum(made["partitions"].values()),
            **made}
