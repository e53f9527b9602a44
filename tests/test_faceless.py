"""Frames without a face dropped before clips are cut (Teixeira et al. 2021, Sec. 3.2), with a gap
tolerance: worked by hand, and the training pipeline against the frame-masking one."""

import numpy as np
import pytest

from emotrack.data.clips import face_clip_rows


def test_face_clip_rows_by_hand():
    #            0  1  2  3  4  5  6  7  8  9 10 11
    face = np.array([1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1])
    # every frame: kept = 0 1 3 4 5 9 10 11; clips of 3 every 2 kept frames: (0 1 3) (3 4 5) (5 9 10)
    assert face_clip_rows(face, 3, 2).tolist() == [[0, 1, 3], [3, 4, 5], [5, 9, 10]]
    # a gap of at most 2 frames: (5 9 10) spans a gap of 4 and goes
    assert face_clip_rows(face, 3, 2, tolerance_frames=2).tolist() == [[0, 1, 3], [3, 4, 5]]
    # every 2nd frame (0 2 4 6 8 10), of which 0 4 10 have a face; hop 2 session frames = 1 kept frame
    assert face_clip_rows(face, 2, 2, frame_step=2).tolist() == [[0, 4], [4, 10]]
    assert face_clip_rows(face, 2, 2, frame_step=2, tolerance_frames=4).tolist() == [[0, 4]]
    assert face_clip_rows(np.zeros(5), 2, 1).shape == (0, 2)


def _clips(tiny_tfr, **kwargs):
    from emotrack.data.pipeline import training_windows

    ds = training_windows(tiny_tfr, "train", window=4, hop=6, batch_size=64, shuffle=False, frame_step=2,
                          target="clip", **kwargs)
    return [tuple(t.numpy() for t in batch) for batch in ds]


def test_drop_cuts_the_clips_of_mask_when_every_frame_has_a_face(tiny_tfr):
    from emotrack.data.pipeline import count_windows, face_rows

    rows = face_rows(tiny_tfr, "train", 4, 6, 2, "drop", None, "clip")
    [(name, r)] = rows.items()
    masked, dropped = _clips(tiny_tfr), _clips(tiny_tfr, faceless="drop")
    # The tiny corpus' train session shows its face in every frame on the clip grid: the same clips.
    assert len(r) == count_windows(tiny_tfr, "train", 4, 6, 2, "clip", faceless="drop")
    assert len(r) > 1 and len(dropped[0][0]) == len(r)
    if len(r) == len(masked[0][0]):
        for a, b in zip(masked[0], dropped[0]):
            np.testing.assert_array_equal(a, b)
    else:  # some frames have no face: every dropped clip holds only face frames (weight 1)
        np.testing.assert_array_equal(dropped[0][2], np.ones(len(r)))


def test_drop_refuses_siamese_pairs(tiny_tfr):
    from emotrack.data.pipeline import face_rows

    with pytest.raises(ValueError, match="faceless=mask"):
        face_rows(tiny_tfr, "train", 4, 6, 1, "drop", None, "siamese")
    with pytest.raises(ValueError, match="mask, drop"):
        face_rows(tiny_tfr, "train", 4, 6, 1, "hide", None, "clip")
