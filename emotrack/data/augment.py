"""Data augmentation of face clips, as the papers use it, deterministic under a seed.

- Tzirakis et al. 2017, Sec. V: faces resized to 110x110 and randomly cropped back to 96x96 (scale
  invariance), random brightness and saturation. The resize is a scale relative to the crop (110/96),
  so that it means the same zoom on crops of any size; evaluation and prediction see the centre crop
  of the same resized face (:func:`centre_crop`), at the scale training saw.
- Teixeira et al. 2021, Sec. 4.3: rotation, flipping and brightness ("highlight") variations.

Every frame of a clip gets the same transform (a face does not jump between frames), drawn with
TensorFlow's stateless random ops from a ``(seed, index)`` pair, so that the same clip in the same
epoch is augmented the same way whether training runs straight through or is resumed.

Options (``data.augment`` in a config; any subset):
    resize_crop: scale of the resize before a random crop back to the crop size, relative to the
        crop (110/96 = 1.146 for the paper's 110 px on 96 px crops), from 1 to 2.
    brightness: largest change of brightness, as a fraction of the 0..255 range (e.g. 0.1).
    saturation: ``[low, high]`` saturation factors for RGB crops (e.g. ``[0.8, 1.2]``).
    flip: mirror left-right with probability 1/2.
    rotation_deg: largest rotation in degrees about the crop centre (e.g. 10), reflected borders.
"""

from __future__ import annotations

import math
from typing import Any

KNOWN = ("resize_crop", "brightness", "saturation", "flip", "rotation_deg")


#: The largest ``resize_crop`` scale; a larger number is taken for a side in pixels (what the option
#: once was) and refused rather than read as a zoom.
MAX_RESIZE_SCALE = 2.0


def check_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The augmentation options, checked (``data.augment`` of a config).

    Raises:
        ValueError: for an unknown option, or a ``resize_crop`` that is no scale from 1 to 2.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(KNOWN))
    if unknown:
        raise ValueError(f"unknown augmentation option(s) {unknown}; known: {', '.join(KNOWN)}")
    scale = options.get("resize_crop")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                              or not 1.0 <= scale <= MAX_RESIZE_SCALE):
        raise ValueError(f"data.augment.resize_crop={scale!r}: it is the scale of the resize relative to the crop, "
                         f"from 1 to {MAX_RESIZE_SCALE:g} (the paper's 110 px on 96 px crops: 110/96 = 1.146), not a "
                         f"side in pixels; set data.augment.resize_crop={110 / 96:.4f} or the side you meant divided "
                         f"by the crop's side")
    return options


def resized_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(height, width) of a ``height`` x ``width`` crop resized by ``scale`` (rounded, at least the crop)."""
    return max(height, round(height * scale)), max(width, round(width * scale))


def centre_crop(frames, options: dict[str, Any] | None):
    """What a model trained with ``options`` sees at evaluation: with ``resize_crop``, ``frames``
    (..., H, W, C) float32 resized as in training and cut back to H x W at the centre, so that a face
    has the size it had in training; without it, ``frames`` unchanged. Deterministic."""
    import tensorflow as tf

    scale = check_options(options).get("resize_crop")
    if not scale or scale == 1:
        return frames
    shape = tf.shape(frames)
    height, width, channels = frames.shape[-3], frames.shape[-2], frames.shape[-1]
    side_h, side_w = resized_size(height, width, float(scale))
    x = tf.image.resize(tf.reshape(tf.cast(frames, tf.float32), [-1, height, width, channels]), [side_h, side_w])
    top, left = (side_h - height) // 2, (side_w - width) // 2
    return tf.reshape(x[:, top:top + height, left:left + width], shape)


def _rotation_transform(angle, height: int, width: int):
    """The projective transform (8 numbers) that rotates an image by ``angle`` radians about its
    centre (output pixel -> input pixel, as ImageProjectiveTransformV3 takes it)."""
    import tensorflow as tf

    cos, sin = tf.cos(angle), tf.sin(angle)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return tf.stack([cos, -sin, cx - cos * cx + sin * cy,
                     sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])[None]


def augment_frames(frames, seed, options: dict[str, Any]):
    """Augment ``frames`` (..., H, W, C) float32 in 0..255 with one random transform for all of
    them; ``seed`` is a shape-(2,) int tensor. Returns a tensor of the same shape."""
    import tensorflow as tf

    options = check_options(options)
    shape = tf.shape(frames)
    height, width, channels = frames.shape[-3], frames.shape[-2], frames.shape[-1]
    x = tf.reshape(frames, [-1, height, width, channels])
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6)
    if options.get("resize_crop"):
        x = tf.image.resize(x, resized_size(height, width, float(options["resize_crop"])))
        x = tf.image.stateless_random_crop(x, [tf.shape(x)[0], height, width, channels], seed=seeds[0])
    if options.get("rotation_deg"):
        limit = math.radians(float(options["rotation_deg"]))
        angle = tf.random.stateless_uniform([], seeds[1], -limit, limit)
        x = tf.raw_ops.ImageProjectiveTransformV3(
            images=x, transforms=tf.repeat(_rotation_transform(angle, height, width), tf.shape(x)[0], axis=0),
            output_shape=[height, width], fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
    if options.get("flip"):
        flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
        x = tf.cond(flip, lambda: tf.reverse(x, axis=[2]), lambda: x)
    if options.get("saturation") and channels == 3:
        low, high = options["saturation"]
        factor = tf.random.stateless_uniform([], seeds[3], float(low), float(high))
        x = tf.image.adjust_saturation(x / 255.0, factor) * 255.0
    if options.get("brightness"):
        delta = float(options["brightness"]) * 255.0
        x = x + tf.random.stateless_uniform([], seeds[4], -delta, delta)
    x = tf.clip_by_value(x, 0.0, 255.0)
    return tf.reshape(x, shape)
