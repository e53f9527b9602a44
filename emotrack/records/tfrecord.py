"""The on-disk session format: one ``tf.train.SequenceExample`` per session, one TFRecord file each.

Context (per session): ``session``, ``subject``, ``partition`` (bytes); ``fps``, ``rating_rate``
(float); ``num_frames``, ``height``, ``width``, ``channels`` (int64); ``dimensions`` (bytes list);
``image_format`` (bytes: png or jpeg).
Feature lists (per frame): ``frames`` (encoded image bytes), ``face_present`` (int64, 1 value),
``box`` (float, 4 values: x, y, w, h in pixels of the source frame, zeros where no face),
``ratings`` (float, one value per dimension, aligned to the frame's time), ``time`` (float, seconds),
``rating_valid`` (int64, 1 value).
Optional, for sessions stored with several crop sets (one per model family, see
`emotrack.faces.crop.CROP_SPECS`): ``frames`` holds the first (default) set, and every other set ``<name>`` is
the feature list ``frames_<name>`` (encoded images, the same format), with the context fields ``crops``
(bytes list of those names, in order) and ``frames_<name>/shape`` (int64: height, width, channels).
Optional, for sessions stored with audio: ``audio`` (float, the S samples of the frame's time span at
``audio_rate``, normalised per session; see :mod:`emotrack.media.audio`), with the context fields
``audio_rate`` (float) and ``audio_samples`` (int64, S).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

SEQUENCE_FEATURES = ("frames", "face_present", "box", "ratings", "time")
IMAGE_FORMATS = ("png", "jpeg")
#: What a manifest must hold for training, evaluation and prediction to read its records.
MANIFEST_KEYS = ("sessions", "dimensions", "frame", "options")


class RecordError(ValueError):
    """A preprocessed corpus whose manifest or records cannot be trusted: missing, damaged or changed."""


def _redo(data_dir: Path, records: bool = True) -> str:
    if not records:
        return f"re-run `emotrack preprocess` with the options the data was made with and --out {data_dir}"
    return (f"re-run `emotrack preprocess` with the options it was made with (manifest.json's \"options\") and "
            f"--out {data_dir}: it rewrites the records whose checksum fails")


def read_checked_manifest(data_dir: str | Path, needs: Sequence[str] = MANIFEST_KEYS) -> dict[str, Any]:
    """`emotrack.records.manifest.read_manifest`, with a manifest that is not JSON, or lacks one of the keys
    ``needs``, named as such (`RecordError`) instead of a bare parse error."""
    from emotrack.records.manifest import MANIFEST, read_manifest

    data_dir = Path(data_dir)
    try:
        manifest = read_manifest(data_dir)
    except (ValueError, UnicodeDecodeError) as err:
        raise RecordError(f"{data_dir / MANIFEST} is damaged, not JSON ({err}); {_redo(data_dir, False)}") from None
    lacks = [key for key in needs if not isinstance(manifest, dict) or key not in manifest]
    if lacks:
        raise RecordError(f"{data_dir / MANIFEST} is not a manifest written by `emotrack preprocess` (it lacks "
                          f"{', '.join(lacks)}); {_redo(data_dir, False)}")
    return manifest


def verify_records(data_dir: str | Path, sessions: Iterable[dict[str, Any]]) -> None:
    """Check the record of every manifest entry in ``sessions`` against the SHA-256 the manifest holds for
    it, before anything reads them: a record cut short or with a flipped bit would otherwise reach
    TensorFlow, whose error names no file.

    Raises:
        RecordError: naming every record that is missing or whose checksum fails, and the fix.
    """
    from emotrack.records.manifest import file_sha256

    data_dir = Path(data_dir)
    bad = []
    for entry in sessions:
        path = data_dir / entry["file"]
        if not path.is_file():
            bad.append(f"{path} is missing")
        elif entry.get("sha256") and file_sha256(path) != entry["sha256"]:
            bad.append(f"{path} is damaged (its SHA-256 differs from the manifest's)")
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise RecordError(f"{shown}; {_redo(data_dir)}")


def encode_image(image: np.ndarray, image_format: str = "png") -> bytes:
    """Encode a uint8 (H, W, C) image, C in {1, 3}.

    ``png`` is lossless, so frames read back exactly. ``jpeg`` is quality 95 without chroma subsampling
    (4:4:4): several times faster to write and smaller, and it reads back within a few grey levels.
    """
    arr = image[..., 0] if image.shape[-1] == 1 else image
    buf = io.BytesIO()
    if image_format == "png":
        Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    elif image_format == "jpeg":
        Image.fromarray(arr).save(buf, format="JPEG", quality=95, subsampling=0)
    else:
        raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, not {image_format!r}")
    return buf.getvalue()


class EncodedFrames(NamedTuple):
    """Frames already encoded (`encode_image`), one image per frame, all of one ``shape`` (H, W, C)."""

    images: Sequence[bytes]
    shape: tuple[int, int, int]


def _encoded(frames: np.ndarray | EncodedFrames, image_format: str) -> EncodedFrames:
    if isinstance(frames, EncodedFrames):
        return frames
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"frames must be uint8 (T, H, W, C), not of shape {frames.shape}")
    return EncodedFrames([encode_image(fr, image_format) for fr in frames], tuple(int(v) for v in frames.shape[1:]))


def session_to_example(*, session: str, subject: str, partition: str, fps: float, rating_rate: float,
                       dimensions: list[str], frames: np.ndarray | EncodedFrames, face_present: np.ndarray,
                       boxes: np.ndarray, ratings: np.ndarray, times: np.ndarray,
                       image_format: str = "png", rating_valid: np.ndarray | None = None,
                       audio: np.ndarray | None = None, audio_rate: float | None = None,
                       crops: Mapping[str, np.ndarray | EncodedFrames] | None = None) -> bytes:
    """Serialise one session.

    Args:
        frames: uint8 (T, H, W, C) face crops, or the T crops already encoded in ``image_format``.
        face_present: (T,) 0/1.
        boxes: float (T, 4).
        ratings: float (T, D), D = len(dimensions).
        times: float (T,) seconds.
        rating_valid: (T,) 0/1, whether the frame's rating is a real one (Aff-Wild2 marks frames
            without one); all 1 when None.
        audio: float (T, S), each frame's audio samples at ``audio_rate``; no audio when None.
        crops: further crop sets by name, each like ``frames`` (T crops of its own size), stored as
            ``frames_<name>``.
    Returns:
        the serialised ``SequenceExample``.
    """
    import tensorflow as tf

    frames = _encoded(frames, image_format)
    extra = {name: _encoded(images, image_format) for name, images in (crops or {}).items()}
    t = len(frames.images)
    h, w, c = frames.shape
    if any(len(images.images) != t for images in extra.values()):
        raise ValueError("every crop set must hold one image per frame")
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
        **({"crops": b([name.encode() for name in extra])} if extra else {}),
        **{f"frames_{name}/shape": i(list(images.shape)) for name, images in extra.items()},
    })
    lists = tf.train.FeatureLists(feature_list={
        "frames": tf.train.FeatureList(feature=[b([image]) for image in frames.images]),
        "face_present": tf.train.FeatureList(feature=[i([int(v)]) for v in face_present]),
        "box": tf.train.FeatureList(feature=[f(row.tolist()) for row in np.asarray(boxes, np.float32)]),
        "ratings": tf.train.FeatureList(feature=[f(row.tolist()) for row in np.asarray(ratings, np.float32)]),
        "time": tf.train.FeatureList(feature=[f([float(v)]) for v in times]),
        "rating_valid": tf.train.FeatureList(feature=[i([int(v)]) for v in rating_valid]),
    })
    for name, images in extra.items():
        lists.feature_list[f"frames_{name}"].feature.extend(b([image]) for image in images.images)
    if audio is not None:
        lists.feature_list["audio"].feature.extend(f(row.tolist()) for row in np.asarray(audio, np.float32))
    # Map fields (the features) in key order: the same session gives the same bytes in any process.
    return tf.train.SequenceExample(context=context, feature_lists=lists).SerializeToString(deterministic=True)


def decode_frames(encoded, channels: int):
    """Encoded face crops, string (T,), decoded to uint8 (T, H, W, C)."""
    import tensorflow as tf

    return tf.map_fn(lambda data: tf.io.decode_image(data, channels=channels, expand_animations=False),
                     encoded, fn_output_signature=tf.uint8)


def parse_session(serialized, num_dimensions: int, channels: int, audio_samples: int | None = None,
                  frames_key: str = "frames", decode: bool = True):
    """Parse a serialised session into a dict of tensors (usable inside ``tf.data``).

    Args:
        channels: of the crop set read.
        frames_key: the crop set returned as ``frames``: ``frames`` (the default set) or
            ``frames_<name>``; the other sets are not decoded.
        decode: False: ``frames`` holds the encoded images, string (T,), for a reader that decodes
            only the frames it uses.
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
        frames_key: tf.io.FixedLenSequenceFeature([], tf.string),
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
    frames = decode_frames(seq[frames_key], channels) if decode else seq[frames_key]
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
