"""Temporal pooling of frames and labels (Huang et al. 2018, Sec. 4.2) and how to undo it.

Huang et al. average "both the features and labels" over windows of a fixed duration (0.2 to
0.8 s; Fig. 4: best 0.8 s for arousal, 0.6 s for valence; 0.4 / 0.2 s when combined with max
pooling), so that a network sees sequences at a lower rate and the label noise of adjacent frames
is averaged out. The pooled sequence is shorter by the pooling factor ``k``; predictions are
returned to the frame rate by repeating each one ``k`` times (:func:`temporal_unpool`).

This is part of a model's input contract: a run's config holds ``data.temporal_pooling_s``; the
training pipeline (:func:`emotrack.data.pipeline.training_windows`), evaluation and prediction
(:func:`pooled_predictions`) all read it from there, so that what was pooled is undone.

Assumptions (the paper gives none of these details):
- Windows do not overlap and start at the first frame; ``k = round(duration * fps)``, at least 1.
- A session whose length is not a multiple of ``k`` has a last, shorter window, averaged over the
  frames it holds.
- Frames and ratings are plain means over the window; a window's weight is the mean of its frame
  weights (the fraction of frames with a face), so a window without any face does not count.
"""

from __future__ import annotations

import numpy as np


def pooling_frames(duration_s: float | None, fps: float) -> int:
    """Frames per pooling window for a duration in seconds (None or 0: no pooling, 1)."""
    if not duration_s:
        return 1
    if duration_s < 0:
        raise ValueError(f"temporal pooling duration must be positive, not {duration_s}")
    return max(1, int(round(float(duration_s) * float(fps))))


def temporal_pool(x: np.ndarray, k: int) -> np.ndarray:
    """Average non-overlapping windows of ``k`` steps along axis 0: (T, ...) -> (ceil(T / k), ...).

    The last window averages the steps it has when T is not a multiple of k. The result is
    float32 (float64 input stays float64).
    """
    x = np.asarray(x)
    if k < 1:
        raise ValueError(f"the pooling factor must be at least 1, not {k}")
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    if k == 1:
        return x.astype(dtype)
    t = x.shape[0]
    starts = np.arange(0, t, k)
    sums = np.add.reduceat(x.astype(np.float64), starts, axis=0)
    counts = np.minimum(starts + k, t) - starts
    return (sums / counts.reshape((-1,) + (1,) * (x.ndim - 1))).astype(dtype)


def temporal_unpool(y: np.ndarray, k: int, length: int) -> np.ndarray:
    """Repeat each step of ``y`` (T', ...) ``k`` times along axis 0 and cut to ``length`` steps:
    the inverse of :func:`temporal_pool` for a signal that is constant within each window."""
    y = np.asarray(y)
    if len(y) * k < length:
        raise ValueError(f"{len(y)} pooled steps x {k} cannot cover {length} frames")
    return np.repeat(y, k, axis=0)[:length]


def tf_temporal_pool(x, k: int):
    """:func:`temporal_pool` in TensorFlow for a tensor whose length is a multiple of ``k``
    (training windows): (L, ...) -> (L // k, ...)."""
    import tensorflow as tf

    if k == 1:
        return tf.cast(x, tf.float32)
    x = tf.cast(x, tf.float32)
    shape = tf.shape(x)
    pooled = tf.reshape(x, tf.concat([[shape[0] // k, k], shape[1:]], axis=0))
    return tf.reduce_mean(pooled, axis=1)


