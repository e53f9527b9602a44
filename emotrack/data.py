"""The input pipeline: tf.data from the TFRecords that ``emotrack preprocess`` wrote.

Elements of :func:`load_sessions` are whole sessions (dicts of tensors, see
:func:`emotrack.tfrecord.parse_session`). :func:`training_windows` cuts them into fixed-length clips
for ``model.fit``: ``(frames float32 (B, L, H, W, C) in 0..255, ratings float32 (B, L, D),
weights float32 (B, L))`` where a weight is 0 for frames without a face or without a rating.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from .preprocess import MANIFEST

SHUFFLE_BUFFER = 4096  # clips; a whole corpus' worth of clips for the demo and the tests


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    """The manifest of a preprocessed corpus; a clear error when the folder is not one."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `emotrack preprocess ... --out {data_dir}` first")
    return json.loads(path.read_text())


def manifest_hash(data_dir: str | Path) -> str:
    """SHA-256 of ``manifest.json``, recorded in run folders to trace a result to its data."""
    return hashlib.sha256((Path(data_dir) / MANIFEST).read_bytes()).hexdigest()


def session_files(data_dir: str | Path, partitions: str | list[str] | None = None) -> list[str]:
    manifest = read_manifest(data_dir)
    if isinstance(partitions, str):
        partitions = [partitions]
    files = [str(Path(data_dir) / s["file"]) for s in manifest["sessions"]
             if partitions is None or s["partition"] in partitions]
    if not files:
        raise ValueError(f"{data_dir} holds no session of partition(s) {partitions}")
    return files


def load_sessions(data_dir: str | Path, partitions: str | list[str] | None = None):
    """A ``tf.data.Dataset`` of whole sessions of the given partition(s), in manifest order."""
    import tensorflow as tf

    from .tfrecord import parse_session

    manifest = read_manifest(data_dir)
    dims, channels = len(manifest["dimensions"]), manifest["frame"]["channels"]
    files = session_files(data_dir, partitions)
    return tf.data.TFRecordDataset(files).map(lambda s: parse_session(s, dims, channels))


def shift_labels(ratings, weights, delay_frames: int):
    """Pair each frame with the rating ``delay_frames`` later (annotators lag the face).

    ``ratings`` (T, D) and ``weights`` (T,) tensors; the last ``delay_frames`` frames have no
    rating any more and get weight 0.
    """
    import tensorflow as tf

    if delay_frames <= 0:
        return ratings, weights
    t = tf.shape(ratings)[0]
    d = tf.minimum(delay_frames, t)
    shifted = tf.concat([ratings[d:], tf.repeat(ratings[-1:], d, axis=0)], axis=0)
    # The weight stays with the frame (was a face seen?); only the tail loses its rating.
    w = tf.concat([weights[: t - d], tf.zeros([d], weights.dtype)], axis=0)
    return shifted, w


def delay_frames(delay_s: float, fps: float) -> int:
    """The annotator delay in whole frames."""
    return int(round(delay_s * fps))


def training_windows(data_dir: str | Path, partitions: str | list[str], window: int, hop: int,
                     batch_size: int, label_delay_s: float = 0.0, shuffle: bool = True, seed: int = 0,
                     cache: bool = True, temporal_pooling_s: float | None = None,
                     epochs: tuple[int, int] | None = None):
    """Fixed-length clips for training or validation.

    Args:
        window: frames per clip (L); hop: frames between clip starts.
        label_delay_s: annotator delay compensated by pairing frame t with the rating at t + delay.
        temporal_pooling_s: average frames, ratings and weights over windows of this duration
            (Huang et al. 2018, Sec. 4.2; see :mod:`emotrack.temporal`); ``window`` must then be a
            multiple of the pooling factor k and clips hold L / k steps.
        epochs: ``(first, end)``: the clips of epochs first .. end - 1 one after the other, each
            epoch shuffled with a seed made of ``seed`` and the epoch's index, so that epoch e has
            the same order whether training started at epoch 0 or was resumed at e. Without it,
            one pass, reshuffled at each iteration.
    Returns:
        ``tf.data.Dataset`` of (frames (B, L', H, W, C) float32, ratings (B, L', D), weights (B, L'))
        with L' = L / k (L without pooling).
    """
    import tensorflow as tf

    from .temporal import pooling_frames, tf_temporal_pool

    manifest = read_manifest(data_dir)
    fps = {s["session"]: s["fps"] for s in manifest["sessions"]}
    fps_values = set(fps.values())
    if label_delay_s and len(fps_values) > 1:
        raise ValueError(f"{data_dir}: sessions have different frame rates {sorted(fps_values)}; "
                         f"resample them to one rate before compensating a delay")
    shift = delay_frames(label_delay_s, next(iter(fps_values))) if label_delay_s else 0
    k = 1
    if temporal_pooling_s:
        if len(fps_values) > 1:
            raise ValueError(f"{data_dir}: sessions have different frame rates {sorted(fps_values)}; "
                             f"resample them to one rate before temporal pooling")
        k = pooling_frames(temporal_pooling_s, next(iter(fps_values)))
        if window % k:
            raise ValueError(f"the clip length ({window} frames) must be a multiple of the temporal pooling "
                             f"window ({temporal_pooling_s} s = {k} frames); change data.window")

    def prepare(s):
        # A frame counts when a face was seen in it and its (delay-shifted) rating is a real one.
        weights = tf.cast(s["face_present"], tf.float32)
        ratings, weights = shift_labels(s["ratings"], weights, shift)
        valid, _ = shift_labels(tf.cast(s["rating_valid"], tf.float32)[:, None], weights, shift)
        return {"frames": s["frames"], "ratings": ratings, "weights": weights * valid[:, 0]}

    def to_windows(s):
        t = tf.shape(s["frames"])[0]
        starts = tf.range(0, tf.maximum(t - window + 1, 0), hop)
        return tf.data.Dataset.from_tensor_slices(starts).map(
            lambda i: (tf_temporal_pool(s["frames"][i:i + window], k),
                       tf_temporal_pool(s["ratings"][i:i + window], k),
                       tf_temporal_pool(s["weights"][i:i + window], k)))

    ds = load_sessions(data_dir, partitions).map(prepare)
    if cache:
        ds = ds.cache()
    ds = ds.flat_map(to_windows)
    if epochs is not None:
        # One dataset per epoch with a Python seed (a tensor seed breaks tf.random's global-seed logic).
        parts = [(ds.shuffle(SHUFFLE_BUFFER, seed=seed * 1_000_003 + e, reshuffle_each_iteration=False)
                  if shuffle else ds).batch(batch_size) for e in range(*epochs)]
        if not parts:
            return ds.batch(batch_size).take(0)
        out = parts[0]
        for part in parts[1:]:
            out = out.concatenate(part)
        return out.prefetch(tf.data.AUTOTUNE)
    if shuffle:
        ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def count_windows(data_dir: str | Path, partitions: str | list[str], window: int, hop: int) -> int:
    """How many clips :func:`training_windows` cuts from the partition(s), from the manifest."""
    manifest = read_manifest(data_dir)
    if isinstance(partitions, str):
        partitions = [partitions]
    return sum((s["num_frames"] - window) // hop + 1 for s in manifest["sessions"]
               if s["partition"] in partitions and s["num_frames"] >= window)


def session_arrays(data_dir: str | Path, partitions: str | list[str] | None = None) -> list[dict[str, Any]]:
    """Whole sessions as numpy arrays (for evaluation and tests)."""
    out = []
    for s in load_sessions(data_dir, partitions).as_numpy_iterator():
        s = dict(s)
        for key in ("session", "subject", "partition"):
            s[key] = s[key].decode()
        out.append(s)
    return out
