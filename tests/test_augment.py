"""Augmentation: one transform per clip, reproducible from the seed, each operation checked
against what it must do to a known image; evaluation sees faces at the scale training did."""

import numpy as np
import pytest
import tensorflow as tf

from emotrack.data.augment import augment_frames, centre_crop, check_options
from emotrack.data.pipeline import training_windows


def _clip(frames=3, size=(24, 20), channels=3, seed=0):
    rng = np.random.default_rng(seed)
    still = rng.uniform(0, 255, (*size, channels)).astype(np.float32)
    return np.repeat(still[None], frames, axis=0)


def _aug(x, options, seed=(1, 2)):
    return augment_frames(tf.constant(x), tf.constant(seed, tf.int64), options).numpy()


def test_one_transform_for_every_frame_of_a_clip():
    x = _clip()
    out = _aug(x, {"resize_crop": 1.25, "brightness": 0.2, "saturation": [0.5, 1.5], "flip": True,
                   "rotation_deg": 15})
    assert out.shape == x.shape and not np.allclose(out, x)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[1], out[2])
    assert out.min() >= 0 and out.max() <= 255


def test_reproducible_from_the_seed():
    x = _clip()
    options = {"resize_crop": 1.25, "brightness": 0.2, "flip": True, "rotation_deg": 15}
    np.testing.assert_array_equal(_aug(x, options, (3, 4)), _aug(x, options, (3, 4)))
    assert not np.array_equal(_aug(x, options, (3, 4)), _aug(x, options, (3, 5)))


def test_each_operation_does_what_it_says():
    x = _clip(channels=1) * 0.5 + 60  # away from the clipping bounds
    # Resizing by a scale of 1 and cropping it back changes nothing.
    np.testing.assert_allclose(_aug(x, {"resize_crop": 1}), x, atol=1e-3)
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


def _square(side=48, square=16):
    """A (1, side, side, 1) frame: a white square of ``square`` pixels at the centre, on black."""
    x = np.zeros((1, side, side, 1), np.float32)
    lo = (side - square) // 2
    x[:, lo:lo + square, lo:lo + square] = 255.0
    return x


def _width(frame):
    """The widest run of bright pixels in any row: the square's side in pixels."""
    return int((np.asarray(frame)[..., 0] > 127.5).sum(axis=-1).max())


def test_resize_crop_is_a_scale_and_evaluation_sees_the_training_scale():
    x = _square()
    tzirakis = {"resize_crop": 110 / 96}
    evaluated = _width(centre_crop(tf.constant(x), tzirakis))
    trained = {_width(_aug(x, tzirakis, (0, s))) for s in range(12)}
    # Every random training crop and the evaluation crop show the square at one size, the paper's
    # 110/96 of it, on 48x48 crops as on 96x96 ones.
    assert trained == {evaluated}
    assert abs(evaluated - 16 * 110 / 96) <= 1 and _width(x) == 16  # bilinear edges: within a pixel
    assert abs(_width(centre_crop(tf.constant(_square(96, 32)), tzirakis)) - 32 * 110 / 96) <= 1
    # The random crops do move it: augmentation still shifts the face.
    shifted = {int(np.argmax(_aug(x, tzirakis, (0, s))[0, 24, :, 0] > 127.5)) for s in range(12)}
    assert len(shifted) > 1
    np.testing.assert_array_equal(centre_crop(x, {}), x)  # no resize_crop: evaluation leaves crops alone


def test_a_side_in_pixels_is_refused_with_the_scale_to_use():
    for wrong in (110, 0.5, "110/96", True):
        with pytest.raises(ValueError, match=r"data\.augment\.resize_crop=.*relative to the crop.*1\.1458"):
            check_options({"resize_crop": wrong})


def test_evaluation_and_prediction_feed_the_model_the_centre_crop():
    import keras

    from emotrack.inference.session import predict_frames

    frames = np.repeat(_square(), 6, axis=0).astype(np.uint8)  # a session of 6 frames
    inputs = keras.Input((None, 48, 48, 1))
    bright = keras.layers.Lambda(
        lambda v: keras.ops.sum(keras.ops.cast(v > 127.5, "float32"), axis=(2, 3, 4))[..., None])(inputs)
    model = keras.Model(inputs, bright)  # per frame: the number of bright pixels it was given

    def seen(augment):
        config = {"model": {"name": "huang2018-convlstm"}, "data": {"augment": augment}}
        return predict_frames(model, {"frames": frames, "fps": 10.0}, config)[:, 0]

    crop = np.asarray(centre_crop(tf.constant(frames[:1].astype(np.float32)), {"resize_crop": 110 / 96}))
    np.testing.assert_array_equal(seen({"resize_crop": 110 / 96}), np.full(6, (crop > 127.5).sum()))
    np.testing.assert_array_equal(seen(None), np.full(6, 16 * 16))


def test_a_two_input_network_gets_the_centre_crop_beside_its_audio():
    import keras

    from emotrack.inference.session import CentreCropped

    frames = np.repeat(_square(), 6, axis=0)[None]  # (1, 6, 48, 48, 1)
    audio = np.arange(6 * 4, dtype=np.float32).reshape(1, 6, 4)
    video_in, audio_in = keras.Input((None, 48, 48, 1), name="video"), keras.Input((None, 4), name="audio")
    bright = keras.layers.Lambda(
        lambda v: keras.ops.sum(keras.ops.cast(v > 127.5, "float32"), axis=(2, 3, 4))[..., None])(video_in)
    loud = keras.layers.Lambda(lambda a: keras.ops.sum(a, axis=-1, keepdims=True))(audio_in)
    model = keras.Model({"audio": audio_in, "video": video_in}, keras.layers.Concatenate()([loud, bright]))
    seen = np.asarray(CentreCropped(model, {"resize_crop": 110 / 96})({"audio": audio, "video": frames}))[0]
    crop = np.asarray(centre_crop(tf.constant(frames[0, :1]), {"resize_crop": 110 / 96}))
    np.testing.assert_array_equal(seen[:, 0], audio[0].sum(axis=-1))
    np.testing.assert_array_equal(seen[:, 1], np.full(6, (crop > 127.5).sum()))
