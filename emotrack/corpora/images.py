"""Labelled face-image sets in their release layouts, read for 2D pre-training on discrete emotions.

FER2013 (the ICML 2013 "Challenges in Representation Learning" facial expression set) is one file::

    fer2013.csv     emotion,pixels,Usage
                    emotion: 0..6 (FER2013_EMOTIONS); pixels: 2304 space-separated gray values of a
                    48x48 face, row by row; Usage: Training, PublicTest or PrivateTest

RAF-DB's basic-emotion set is a folder (``basic/`` in the release)::

    EmoLabel/list_patition_label.txt      "train_00001.jpg 5" per line, labels 1..7 (RAFDB_EMOTIONS);
                                          the file name's misspelling is the release's
    Image/aligned/train_00001_aligned.jpg 100x100 aligned faces (test images: test_0001_aligned.jpg)
    Image/original/train_00001.jpg        the uncropped photographs (used when no aligned image is there)

The two sets number their classes differently; each reader returns the set's own numbering (0-based)
and the names are in the constants below.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: FER2013's classes, in the order of its ``emotion`` values 0..6.
FER2013_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013_USAGES = ("Training", "PublicTest", "PrivateTest")
FER2013_COLUMNS = ("emotion", "pixels", "Usage")
FER2013_SIZE = 48
#: RAF-DB's basic classes, in the order of its labels 1..7.
RAFDB_EMOTIONS = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
RAFDB_LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"


class ImageSetError(ValueError):
    """A file or folder that is not in the image set's release layout, or an image that is missing."""


def read_fer2013(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read FER2013 as released (see the module docstring).

    Returns:
        images uint8 (N, 48, 48); labels int64 (N,) in 0..6 (``FER2013_EMOTIONS``); usage (N,) str,
        one of ``FER2013_USAGES``, in file order.
    Raises:
        ImageSetError: naming the file and what it must hold: missing, other columns, a row whose
            pixels are not 2304 integers in 0..255, an emotion outside 0..6 or an unknown Usage.
    """
    import pandas as pd

    path = Path(path)
    what = (f"FER2013's columns {','.join(FER2013_COLUMNS)} (emotion 0..6, pixels {FER2013_SIZE ** 2} "
            f"space-separated gray values 0..255, Usage {'/'.join(FER2013_USAGES)})")
    if not path.is_file():
        raise ImageSetError(f"{path} does not exist; it must be fer2013.csv with {what}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ImageSetError(f"{path} cannot be read as CSV ({err}); it must hold {what}") from err
    missing = [c for c in FER2013_COLUMNS if c not in table.columns]
    if missing or table.empty:
        raise ImageSetError(f"{path} {'lacks the column(s) ' + ', '.join(missing) if missing else 'holds no row'}; "
                            f"it must hold {what}")
    n = FER2013_SIZE ** 2
    images = np.empty((len(table), n), np.uint8)
    for row, text in enumerate(table["pixels"]):
        try:
            values = np.array(text.split(), dtype=np.int64)
        except ValueError:
            values = np.zeros(0)
        if values.shape != (n,) or values.min() < 0 or values.max() > 255:
            raise ImageSetError(f"{path}, data row {row + 1}: pixels must be {n} integers in 0..255 "
                                f"(a {FER2013_SIZE}x{FER2013_SIZE} gray face), got {len(text.split())} values")
        images[row] = values
    labels = pd.to_numeric(table["emotion"].str.strip(), errors="coerce").to_numpy()
    bad = np.flatnonzero(~np.isin(labels, np.arange(len(FER2013_EMOTIONS))))
    if bad.size:
        raise ImageSetError(f"{path}, data row {bad[0] + 1}: emotion {table['emotion'].iloc[bad[0]]!r} is not "
                            f"one of 0..6 ({', '.join(FER2013_EMOTIONS)})")
    usage = table["Usage"].str.strip().to_numpy(dtype=str)
    bad = np.flatnonzero(~np.isin(usage, FER2013_USAGES))
    if bad.size:
        raise ImageSetError(f"{path}, data row {bad[0] + 1}: Usage {str(usage[bad[0]])!r} is not one of "
                            f"{', '.join(FER2013_USAGES)}")
    return images.reshape(-1, FER2013_SIZE, FER2013_SIZE), labels.astype(np.int64), usage


def read_rafdb(root: str | Path) -> list[tuple[Path, int, str]]:
    """Read RAF-DB's basic set as released (see the module docstring); ``root`` is the ``basic`` folder.

    Returns:
        ``(image path, label 0..6 (RAFDB_EMOTIONS), "train" | "test")`` per listed image, in file order;
        the image is the aligned one, or the original where no aligned one is there.
    Raises:
        ImageSetError: naming the label file (and line): missing, a line that is not ``name.jpg label``,
            a label outside 1..7, a name starting with neither train nor test, an image not found, no
            training image.
    """
    root = Path(root)
    label_file = root / RAFDB_LABEL_FILE
    if not label_file.is_file():
        raise ImageSetError(f"{label_file} does not exist; the folder must be RAF-DB's 'basic' folder "
                            f"(holding EmoLabel/list_patition_label.txt and Image/aligned/)")
    items = []
    for number, line in enumerate(label_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            name, label = line.split()
            label = int(label)
        except ValueError:
            raise ImageSetError(f"{label_file}:{number}: expected 'name.jpg label', got {line!r}") from None
        if not 1 <= label <= len(RAFDB_EMOTIONS):
            raise ImageSetError(f"{label_file}:{number}: label {label} is not one of 1..7 "
                                f"({', '.join(RAFDB_EMOTIONS)})")
        stem, suffix = os.path.splitext(name)
        partition = "train" if stem.startswith("train") else "test" if stem.startswith("test") else None
        if partition is None:
            raise ImageSetError(f"{label_file}:{number}: {name} starts with neither 'train' nor 'test'")
        candidates = [root / "Image" / "aligned" / f"{stem}_aligned{suffix}", root / "Image" / "original" / name]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise ImageSetError(f"{label_file}:{number}: no image for {name} (looked for {candidates[0]} and "
                                f"{candidates[1]})")
        items.append((path, label - 1, partition))
    if not any(p == "train" for _, _, p in items):
        raise ImageSetError(f"{label_file} lists no training image")
    return items
