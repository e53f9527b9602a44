"""The on-disk session format: one ``tf.train.SequenceExample`` per session, one TFRecord file each.

Context (per session): ``session``, ``subject``, ``partition`` (bytes); ``fps``, ``rating_rate``
(float); ``num_frames``, ``height``, ``width``, ``channels`` (int64); ``dimensions`` (bytes list);
``image_format`` (bytes: png or jpeg).
Feature lists (per frame): ``frames`` (encoded image bytes), ``face_present`` (int64, 1 value),
``box`` (float, 4 values: x, y, w, h in pixels of the source frame, zeros where no face),
``ratings`` (float, one value per dimension, aligned to the frame's time), ``time`` (float, seconds),
``rating_valid`` (int64, 1 value).
Optional, for sessions stored with audio: ``audio`` (float, the S samples of the frame's time span at
``audio_rate``, normalised per session; see :mod:`emotrack.audio`), with the context fields
``audio_rate`` (float) and ``audio_samples`` (int64, S).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

SEQUENCE_FEATURES = ("frames", "face_present", "box", "ratings", "time")


def encode_image(image: np.ndarray, image_format: str = "png") -> bytes:
    """Encode a uint8 (H, W, C) image, C in {1, 3}; PNG is lossless so frames read back exactly."""
    arr = image[..., 0] if image.shape[-1] == 1 else image
    buf = io.BytesIO()
    if image_format == "png":
        Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    elif image_format == "jpeg":
        Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    else:
        raise ValueError(f"image_format must be 'png' or 'jpeg', not {image_format!r}")
    return buf.getvalue()


def session_to_example(*, session: str, subject: str, partition: str, fps: float, rating_rate: float,
                       dimensions: list[str], frames: np.ndarray, face_present: np.ndarray,
                       boxes: np.ndarray, ratings: np.ndarray, times: np.ndarray,
                       image_format: str = "png", rating_valid: np.ndarray | None = None,
                       audio: np.ndarray | None = None, audio_rate: float | None = None) -> bytes:
    """Serialise one session.

    Args:
        frames: uint8 (T, H, W, C) face crops.
        face_present: (T,) 0/1.
        boxes: float (T, 4).
        ratings: float (T, D), D = len(dimensions).
        times: float (T,) seconds.
        rating_valid: (T,) 0/1, whether the frame's rating is a real one (Aff-Wild2 marks frames
            without one); all 1 when None.
        audio: float (T, S), each frame's audio samples at ``audio_rate``; no audio when None.
    Returns:
        the serialised ``SequenceExample``.
    """
    import tensorflow as tf

    t, h, w, c = frames.shape
    rating_valid = np.ones(t, np.int64) if rating_valid is None else np.asarray(rating_valid)
    if not (len(rating_valid) == len(face_present) == len(boxes) == len(ratings) == len(times) == t):
        raise ValueError("frames, face_present, boxes, ratings and times must have the same length")
    if ratings.shape[1] != len(dimensions):
        raise ValueError(f"ratings have {ratings.shape[1]} columns but {len(dimensions)} dimensions")
    if audio is not None and (np.ndim(audio) != 2 or len(audio) != t or not audio_rate):
        raise ValueError("audio must be (T, S) with T the number of frames, and needs its audio_rate")

    def b(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    def f(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    def i(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    context = tf.train.Features(feature={
        "session": b([session.encode()]), "subject": b([subject.encode()]),
        "partition": b([partition.encode()]), "fps": f([fps]), "rating_rate": f([rating_rate]),
        "num_frames": i([t]), "height": i([h]), "width": i([w]), "channels": i([c]),
        "dimensions": b([d.encode() for d in dimensions]), "image_format": b([image_format.encode()]),
        **({"audio_rate": f([float(audio_rate)]), "audio_samples": i([int(audio.shape[1])])}
           if audio is not None else {}),
    })
    lists = tf.train.FeatureLists(feature_list={
        "frames": tf.train.FeatureList(feature=[b([encode_image(fr, image_format)]) for fr in frames]),
        "face_present": tf.train.FeatureList(feature=[i([int(v)]) for v in face_present]),
        "box": tf.train.FeatureList(feature=[f(row.tolist()) for row in np.asarray(boxes, np.float32)]),
        "ratings": tf.train.FeatureList(feature=[f(row.tolist()) for row in np.asarray(ratings, np.float32)]),
        "time": tf.train.FeatureList(feature=[f([float(v)]) for v in times]),
        "rating_valid": tf.train.FeatureList(feature=[i([int(v)]) for v in rating_valid]),
    })
    if audio is not None:
        lists.feature_list["audio"].feature.extend(f(row.tolist()) for row in np.asarray(audio, np.float32))
    # Map fields (the features) in key order: the same session gives the same bytes in any process.
    return tf.train.SequenceExample(context=context, feature_lists=lists).SerializeToString(deterministic=True)


def parse_session(serialized, num_dimensions: int, channels: int, audio_samples: int | None = None):
    """Parse a serialised session into a dict of tensors (usable inside ``tf.data``).

    Args:
        audio_samples: S, when the caller knows it (the manifest's ``audio.samples_per_frame``), to give
            ``audio`` a static shape; the records are read the same either way.
    Returns:
        dict with ``frames`` uint8 (T, H, W, C), ``face_present`` int64 (T,), ``rating_valid``
        int64 (T,), ``box`` float32 (T, 4), ``ratings`` float32 (T, D), ``time`` float32 (T,),
        ``audio`` float32 (T, S) (T x 0 for a session stored without audio), and the context fields.
    """
    import tensorflow as tf

    context_spec = {
        "session": tf.io.FixedLenFeature([], tf.string), "subject": tf.io.FixedLenFeature([], tf.string),
        "partition": tf.io.FixedLenFeature([], tf.string), "fps": tf.io.FixedLenFeature([], tf.float32),
        "rating_rate": tf.io.FixedLenFeature([], tf.float32),
        "num_frames": tf.io.FixedLenFeature([], tf.int64),
    }
    sequence_spec = {
        "frames": tf.io.FixedLenSequenceFeature([], tf.string),
        "face_present": tf.io.FixedLenSequenceFeature([1], tf.int64),
        "box": tf.io.FixedLenSequenceFeature([4], tf.float32),
        "ratings": tf.io.FixedLenSequenceFeature([num_dimensions], tf.float32),
        "time": tf.io.FixedLenSequenceFeature([1], tf.float32),
        "rating_valid": tf.io.FixedLenSequenceFeature([1], tf.int64, allow_missing=True),
        # Ragged: S is not known from the spec of the parse, and sessions without audio have none.
        "audio": tf.io.RaggedFeature(tf.float32),
    }
    context, seq = tf.io.parse_single_sequence_example(serialized, context_features=context_spec,
                                                       sequence_features=sequence_spec)
    frames = tf.map_fn(lambda data: tf.io.decode_image(data, channels=channels, expand_animations=False),
                       seq["frames"], fn_output_signature=tf.uint8)
    out = dict(context)
    face_present = seq["face_present"][:, 0]
    # Records written before the field existed: every rating is valid.
    rating_valid = tf.cond(tf.size(seq["rating_valid"]) > 0, lambda: seq["rating_valid"][:, 0],
                           lambda: tf.ones_like(face_present))
    audio = tf.reshape(seq["audio"].to_tensor(), [tf.shape(face_present)[0], -1])
    if audio_samples:
        audio = tf.ensure_shape(audio, [None, int(audio_samples)])
    out.update(frames=frames, face_present=face_present, box=seq["box"], ratings=seq["ratings"],
               time=seq["time"][:, 0], rating_valid=rating_valid, audio=audio)
    return out
