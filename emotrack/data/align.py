"""Shifts along time: the annotator delay and the time shifts of post-processing, on one core.

Annotators rate what they saw a moment ago, so a rating at frame f describes the face shown around
frame f - d (``data.label_delay_s``, d = `delay_frames` frames). Training pairs frame f with the
rating at f + d (`ratings_for_frames`, or `shift_labels` inside tf.data); the model then predicts the
rating for the face it sees, and its predictions are moved d frames later (`undo_label_delay`) to be
compared with the ratings again. The post-processing time shifts (Tzirakis et al. 2017, Sec. V;
Teixeira et al. 2021, Eq. 3) move a prediction by a signed number of frames with `shift_frames`.

All of them follow one convention, ``out[f] = x[f - k]`` (k > 0 moves the signal later), computed by
`source_frames`; a frame whose source lies before the start or after the end repeats the first or
the last value (the edge fill).
"""

from __future__ import annotations

import numpy as np


def delay_frames(delay_s: float, fps: float) -> int:
    """The annotator delay ``data.label_delay_s`` in whole frames at ``fps`` (rounded to the nearest).

    Raises:
        ValueError: for a negative delay (annotators rate after the face was shown).
    """
    if delay_s < 0:
        raise ValueError(f"data.label_delay_s must be 0 or more seconds (the annotators' lag behind the face), "
                         f"got {delay_s}; set it to 0 for no delay compensation")
    return int(round(delay_s * fps))


def source_frames(positions, frames: int, xp=np):
    """The frame each output frame is read from when a signal is moved ``frames`` later in time.

    ``source[f] = f - frames`` clipped to the signal: before the start the first frame, after the end
    the last one. The one core of every shift in the project.

    Args:
        positions: the frame indices 0 .. T-1, ``np.arange(T)`` (or ``tf.range(T)`` with ``xp=tf``).
        frames: the shift k; positive moves the signal later, negative earlier.
        xp: the array module, ``numpy`` or ``tensorflow`` (inside a tf.data map, where T is a tensor).
    Returns:
        integer indices, shaped like ``positions``.
    """
    last = xp.maximum(xp.size(positions) - 1, 0)
    return xp.minimum(xp.maximum(positions - int(frames), 0), last)


def shift_frames(x, frames: int) -> np.ndarray:
    """``out[f] = x[f - frames]`` along axis 0 of a (T, ...) array, the dtype kept.

    Positive ``frames`` moves the signal later; the frames without a source repeat the first (or, for
    negative ``frames``, the last) value. A shift of 0 returns a copy."""
    x = np.asarray(x)
    return np.take(x, source_frames(np.arange(x.shape[0]), frames), axis=0)


def _check_delay(frames: int) -> int:
    if frames < 0:
        raise ValueError(f"a label delay is 0 or more frames (annotators lag the face), got {frames}")
    return int(frames)


def ratings_for_frames(ratings, delay: int) -> np.ndarray:
    """The rating each frame is trained on: ``out[f] = ratings[f + delay]``, the rating given ``delay``
    frames after the face was shown; the last ``delay`` frames repeat the last rating (and count for
    nothing in training: see `shift_labels`)."""
    return shift_frames(ratings, -_check_delay(delay))


def undo_label_delay(pred, delay: int) -> np.ndarray:
    """Predictions of a model trained on `ratings_for_frames` (..., ``delay``) moved back onto the ratings'
    time line: ``out[f] = pred[f - delay]``; the first ``delay`` frames repeat the first prediction.
    ``undo_label_delay(ratings_for_frames(x, d), d)`` is ``x`` on frames d .. T-d-1."""
    return shift_frames(pred, _check_delay(delay))


def shift_labels(ratings, weights, delay: int):
    """`ratings_for_frames` inside tf.data: each frame paired with the rating ``delay`` frames later.

    Args:
        ratings: (T, D) tensor; weights: (T,) tensor of what each frame counts for in the loss.
        delay: frames (a Python int, 0 or more).
    Returns:
        (ratings (T, D), weights (T,)): the ratings shifted; the weights stay with their frames (was a
        face seen?), except the last ``delay`` frames, which have no rating any more and get weight 0.
    """
    import tensorflow as tf

    delay = _check_delay(delay)
    if delay == 0:
        return ratings, weights
    positions = tf.range(tf.shape(ratings)[0])
    source = source_frames(positions, -delay, xp=tf)
    has_rating = tf.equal(source, positions + delay)
    return tf.gather(ratings, source), tf.where(has_rating, weights, tf.zeros_like(weights))
