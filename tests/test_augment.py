"""Augmentation: one transform per clip, reproducible from the seed, each operation checked
against what it must do to a known image."""

import numpy as np
import pytest
import tensorflow as tf

from emotrack.data.augment import augment_frames, check_options
from emotrack.data.pipeline import training_windows


def _clip(frames=3, size=(24, 20), channels=3, seed=0):
    rng = np.random.default_rng(seed)
    still = rng.uniform(0, 255, (*size, channels)).astype(np.float32)
    return np.repeat(still[None], frames, axis=0)


def _aug(x, options, seed=(1, 2)):
    return augment_frames(tf.constant(x), tf.constant(seed, tf.int64), options).numpy()


def test_one_transform_for_every_frame_of_a_clip():
    x = _clip()
    out = _aug(x, {"resize_crop": 30, "brightness": 0.2, "saturation": [0.5, 1.5], "flip": True,
                   "rotation_deg": 15})
    assert out.shape == x.shape and not np.allclose(out, x)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[1], out[2])
    assert out.min() >= 0 and out.max() <= 255


def test_reproducible_from_the_seed():
    x = _clip()
    options = {"resize_crop": 30, "brightness": 0.2, "flip": True, "rotation_deg": 15}
    np.testing.assert_array_equal(_aug(x, options, (3, 4)), _aug(x, options, (3, 4)))
    assert not np.array_equal(_aug(x, options, (3, 4)), _aug(x, options, (3, 5)))


def test_each_operation_does_what_it_says():
    x = _clip(channels=1) * 0.5 + 60  # away from the clipping bounds
    # Resizing to the crop's own size and cropping it back changes nothing.
    np.testing.assert_allclose(_aug(x, {"resize_crop": 24}), x, atol=1e-3)
    # A flip is a mirror image or nothing.
    flips = [_aug(x, {"flip": True}, (0, s)) for s in range(8)]
    assert any(np.array_equal(f, x[:, :, ::-1]) for f in flips) and any(np.array_equal(f, x) for f in flips)
    # Brightness adds one constant within the limit.
    shifted = _aug(x, {"brightness": 0.1})
    delta = shifted - x
    assert np.ptp(delta) < 1e-3 and 0 < abs(delta.mean()) <= 25.5
    # A rotation by a tiny angle is almost the identity; the centre pixel of a rotated image
    # stays in place.
    np.testing.assert_allclose(_aug(x, {"rotation_deg": 1e-4}), x, atol=0.05)
    with pytest.raises(ValueError, match="unknown augmentation"):
        check_options({"blur": 1})


def test_training_clips_are_augmented_per_epoch_and_seeded(tiny_tfr):
    def first(seed, epochs=(0, 2)):
        ds = training_windows(tiny_tfr, "train", window=4, hop=4, batch_size=2, seed=seed, epochs=epochs,
                              augment={"brightness": 0.2, "flip": True})
        return [x for x, _, _ in ds.as_numpy_iterator()]

    a, b = first(5), first(5)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    plain = [x for x, _, _ in training_windows(tiny_tfr, "train", window=4, hop=4, batch_size=2, seed=5,
                                               epochs=(0, 2)).as_numpy_iterator()]
    assert any(not np.array_equal(u, v) for u, v in zip(a, plain))
    resumed = first(5, epochs=(1, 2))
    for u, v in zip(resumed, a[len(a) - len(resumed):]):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="per-epoch"):
        training_windows(tiny_tfr, "train", window=4, hop=4, batch_size=2, augment={"flip": True})
