"""The tf.data pipeline: clips are exact slices of the sessions, labels shifted by the delay."""

import numpy as np

from emotrack.data.pipeline import delay_frames, session_arrays, training_windows
from emotrack.inference.session import undo_label_delay


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
