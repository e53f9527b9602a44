"""The tf.data pipeline: clips are exact slices of the sessions, labels shifted by the delay."""

import numpy as np

import pytest

from emotrack.data.align import delay_frames, ratings_for_frames, shift_frames, undo_label_delay
from emotrack.data.pipeline import session_arrays, training_windows


def test_windows_are_exact_slices_with_shifted_labels(tiny_tfr):
    session = session_arrays(tiny_tfr, "train")[0]
    t = len(session["frames"])
    window, hop, shift = 8, 5, delay_frames(0.5, float(session["fps"]))
    assert shift == 5
    clips = list(training_windows(tiny_tfr, "train", window=window, hop=hop, batch_size=1,
                                  label_delay_s=0.5, shuffle=False).as_numpy_iterator())
    starts = range(0, t - window + 1, hop)
    assert len(clips) == len(starts)
    for (x, y, w), start in zip(clips, starts):
        frames = session["frames"][start:start + window]
        np.testing.assert_array_equal(x[0], frames.astype(np.float32))
        for k in range(window):
            src = start + k + shift  # the rating given `shift` frames after the face was shown
            if src < t:
                np.testing.assert_allclose(y[0, k], session["ratings"][src])
                assert w[0, k] == session["face_present"][start + k]
            else:
                assert w[0, k] == 0.0


def test_shuffle_is_seeded(tiny_tfr):
    def order(seed):
        ds = training_windows(tiny_tfr, "train", window=4, hop=4, batch_size=1, seed=seed)
        return [float(y[0, 0, 0]) + 10 * float(x[0, 0, 50, 50, 0]) for x, y, _ in ds.as_numpy_iterator()]

    assert order(3) == order(3)
    assert order(3) != order(4)


def test_undo_label_delay_inverts_the_shift():
    pred = np.arange(10, dtype=np.float32)[:, None]
    moved = undo_label_delay(pred, 3)
    np.testing.assert_array_equal(moved[3:, 0], pred[:7, 0])
    np.testing.assert_array_equal(moved[:3, 0], [0, 0, 0])


def test_shifting_forward_then_undoing_gives_the_signal_back_with_the_edge_fill():
    x = np.arange(1.0, 9.0, dtype=np.float32).reshape(4, 2)  # frames (1, 2), (3, 4), (5, 6), (7, 8)
    forward = ratings_for_frames(x, 1)  # frame f paired with the rating at f + 1
    np.testing.assert_array_equal(forward, [[3, 4], [5, 6], [7, 8], [7, 8]])  # the tail repeats the last rating
    back = undo_label_delay(forward, 1)
    np.testing.assert_array_equal(back, [[3, 4], [3, 4], [5, 6], [7, 8]])  # the head repeats the first value
    assert back.dtype == np.float32
    for d in range(0, 5):  # frames d .. T-d-1 are the original ones, whatever the delay
        signal = np.random.default_rng(d).normal(size=(9, 3))
        round_trip = undo_label_delay(ratings_for_frames(signal, d), d)
        np.testing.assert_array_equal(round_trip[d:9 - d], signal[d:9 - d])
        np.testing.assert_array_equal(round_trip[:d], np.repeat(signal[d:d + 1], d, axis=0))
    np.testing.assert_array_equal(shift_frames(x[:, 0], 9), [1, 1, 1, 1])  # a shift past the end: all first
    np.testing.assert_array_equal(shift_frames(x[:, 0], -9), [7, 7, 7, 7])
    with pytest.raises(ValueError, match="0 or more"):
        undo_label_delay(x, -1)
    with pytest.raises(ValueError, match="data.label_delay_s must be 0 or more"):
        delay_frames(-0.2, 25.0)
