"""The input pipeline: tf.data from the TFRecords that ``emotrack preprocess`` wrote.

Elements of :func:`load_sessions` are whole sessions (dicts of tensors, see
:func:`emotrack.records.tfrecord.parse_session`). :func:`training_windows` cuts them into fixed-length clips
for ``model.fit``: ``(frames float32 (B, L, H, W, C) in 0..255, ratings float32 (B, L, D),
weights float32 (B, L))`` where a weight is 0 for frames without a face or without a rating.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emotrack.data.align import delay_frames, shift_labels
from emotrack.data.clips import FACELESS, clip_span, face_clip_rows
from emotrack.records.manifest import read_manifest
from emotrack.records.split import select_sessions

TARGETS = ("frame", "clip", "siamese")
#: Batches decoded ahead of the model: one keeps the model fed, and a fixed number bounds what the
#: pipeline holds (a batch of AST-Net's 8 pairs of 50 224x224 RGB float32 frames is 480 MB).
PREFETCH_BATCHES = 1
LABEL_FUSIONS = ("mean", "extremum")


def crop_feature(manifest: dict[str, Any], crops: str | None = None) -> tuple[str, dict[str, int]]:
    """Where a crop set is in the records of a preprocessed corpus: (the record's feature, its
    ``{height, width, channels}``).

    Args:
        crops: the set's name as preprocessing wrote it (the manifest's ``crops``), or any name
            `emotrack.faces.crop.crop_set` knows (``tzirakis2017``, ``96x96rgb``) of a set of that shape;
            None: the default set, ``frames``.
    Raises:
        ValueError: naming the sets the corpus holds.
    """
    from emotrack.faces.crop import crop_set

    frame = manifest["frame"]
    # Manifests written before crop sets existed hold one set, the frames.
    sets = manifest.get("crops") or {"default": {**frame, "feature": "frames"}}
    if crops is None:
        name = frame.get("crops", next(iter(sets)))
    elif crops in sets:
        name = crops
    else:
        try:
            shape = crop_set(crops)[1].shape
        except ValueError:
            shape = None
        name = next((n for n, s in sets.items() if (s["height"], s["width"], s["channels"]) == shape), None)
        if name is None:
            held = ", ".join(f"{n} ({s['height']}x{s['width']}x{s['channels']})" for n, s in sets.items())
            raise ValueError(f"the corpus holds no crop set {crops!r}; it holds {held} (preprocess it with "
                             f"--crops to add one)")
    entry = sets[name]
    return entry["feature"], {k: int(entry[k]) for k in ("height", "width", "channels")}


def load_sessions(data_dir: str | Path, partitions: str | list[str] | None = None, crops: str | None = None,
                  validation: dict[str, Any] | None = None, decode: bool = True):
    """A ``tf.data.Dataset`` of whole sessions of the given partition(s), in manifest order.

    Args:
        crops: the crop set returned as ``frames`` (see `crop_feature`), for corpora preprocessed with
            several (``emotrack preprocess --crops``); None: the default set.
        validation: the run's ``data.validation`` split (:mod:`emotrack.records.split`): the training
            subjects it holds out are the ``validation`` partition.
        decode: False: ``frames`` are the encoded images, string (T,), as the records hold them.
    """
    import tensorflow as tf

    from emotrack.records.tfrecord import parse_session

    manifest = read_manifest(data_dir)
    feature, frame = crop_feature(manifest, crops)
    dims, channels = len(manifest["dimensions"]), frame["channels"]
    chosen = select_sessions(manifest, partitions, validation)
    if not chosen:
        raise ValueError(f"{data_dir} holds no session of partition(s) {partitions}")
    files = [str(Path(data_dir) / s["file"]) for s in chosen]

    audio_samples = (manifest.get("audio") or {}).get("samples_per_frame")

    def parse(serialized):
        s = parse_session(serialized, dims, channels, audio_samples=audio_samples, frames_key=feature, decode=decode)
        if decode:  # static crop sizes, so that models that reshape (batch, time) into one axis see them
            s["frames"] = tf.ensure_shape(s["frames"], [None, frame["height"], frame["width"], channels])
        return s

    return tf.data.TFRecordDataset(files).map(parse)


class EncodedClips:
    """The clips of a partition, read from the records once and held as the records hold them: each
    frame's encoded image (bytes), rating, weight and audio, the sessions one after the other. A clip
    is a row of frame indices into them; only its own frames are decoded, when it is taken, so memory
    holds the encoded records and a few decoded clips, whatever the clip size and the number of clips.

    ``rows``: (clips, L) int64, or (clips, 2, L) for Siamese pairs. `take` serves the ``j``-th clip of
    an epoch's order: a permutation of the clips drawn from ``(seed, epoch)`` alone, or the stored
    order for epoch -1.
    """

    def __init__(self, sessions: list[dict[str, Any]], rows: np.ndarray, seed: int):
        self.encoded = np.concatenate([s["frames"] for s in sessions])
        self.ratings = np.concatenate([s["ratings"] for s in sessions]).astype(np.float32)
        self.weights = np.concatenate([s["weights"] for s in sessions]).astype(np.float32)
        self.audio = np.concatenate([s["audio"] for s in sessions]).astype(np.float32) \
            if "audio" in sessions[0] else np.zeros((len(self.weights), 0), np.float32)
        self.rows, self.seed = rows, int(seed)
        self._order: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's permutation of the clips, the same whichever epoch training started at."""
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng([self.seed % 2 ** 63, int(epoch)])
            self._order = (int(epoch), rng.permutation(len(self.rows)))
        return self._order[1]

    def take(self, j, epoch):
        """The encoded frames, ratings, weights and audio of clip ``j`` of ``epoch`` (-1: stored order),
        flattened over the row's frames."""
        j, epoch = int(j), int(epoch)
        row = self.rows[j if epoch < 0 else self.order(epoch)[j]].reshape(-1)
        return self.encoded[row], self.ratings[row], self.weights[row], self.audio[row]


def training_windows(data_dir: str | Path, partitions: str | list[str], window: int, hop: int,
                     batch_size: int, label_delay_s: float = 0.0, shuffle: bool = True, seed: int = 0,
                     temporal_pooling_s: float | None = None,
                     epochs: tuple[int, int] | None = None, frame_step: int = 1, target: str = "frame",
                     label_fusion: str = "mean", inputs: tuple[str, ...] = ("video",),
                     augment: dict[str, Any] | None = None, drop_remainder: bool = False,
                     crops: str | None = None, validation: dict[str, Any] | None = None,
                     faceless: str = "mask", gap_tolerance_s: float | None = None):
    """Fixed-length clips for training or validation.

    The records are read once and held encoded (:class:`EncodedClips`); what is shuffled is the clips'
    indices, and a clip's frames are decoded when it is taken, so that memory does not grow with the
    clip size times a shuffle buffer, nor with the corpus beyond its encoded records.

    Args:
        window: frames per clip (L); hop: frames between clip starts.
        label_delay_s: annotator delay compensated by pairing frame t with the rating at t + delay
            (:mod:`emotrack.data.align`).
        temporal_pooling_s: average frames, ratings and weights over windows of this duration
            (Huang et al. 2018, Sec. 4.2; see :mod:`emotrack.data.temporal`); ``window`` must then be a
            multiple of the pooling factor k and clips hold L / k steps.
        epochs: ``(first, end)``: the clips of epochs first .. end - 1 one after the other, each
            epoch a permutation of all clips drawn from ``seed`` and the epoch's index, so that epoch e
            has the same order whether training started at epoch 0 or was resumed at e. Without it,
            one pass, reshuffled at each iteration.
        frame_step: a clip takes every ``frame_step``-th frame (frame-rate subsampling, e.g. 50 ->
            10 fps with 5; AST-Net's sparse clips, 50 frames every 10), so it spans
            ``(L - 1) * frame_step + 1`` frames; ``hop`` stays in frames of the session.
        target: what the model predicts: ``frame`` (one value per clip step), ``clip`` (one value
            per clip: ratings fused by ``label_fusion``) or ``siamese`` (pairs of clips, the second
            shifted by one frame: AST-Net, Wang & Hsu 2017).
        label_fusion: for ``clip``: ``mean`` of the valid frames' ratings or ``extremum`` (per
            dimension, the valid rating farthest from 0; Teixeira et al. 2021, Sec. 3.2).
        inputs: the model's inputs, ``video`` (face crops) and/or ``audio`` (the samples of each
            frame, when the TFRecords hold audio); with both, x is a dict keyed by input name.
        augment: augmentation options (:mod:`emotrack.data.augment`), one random transform per clip
            seeded by ``seed``, the epoch and the clip's place in the epoch; only with ``epochs``.
        drop_remainder: leave out the last, smaller batch (of each epoch).
        crops: the crop set the clips are cut from (see `crop_feature`); None: the default set.
        faceless: frames without a face are ``mask``-ed (weight 0) or ``drop``-ped before clips are
            cut, clips then spanning at most ``gap_tolerance_s`` between two of their frames
            (:func:`emotrack.data.clips.face_clip_rows`; not with ``siamese``).
    Returns:
        ``tf.data.Dataset`` of (x, ratings, weights). For ``frame``: frames (B, L', H, W, C)
        float32, ratings (B, L', D), weights (B, L') with L' = L / k (L without pooling); for
        ``clip``: ratings (B, D), weights (B,) = fraction of valid frames; for ``siamese``: an extra
        axis of 2 after B everywhere.
    """
    import tensorflow as tf

    from emotrack.data.augment import augment_frames, check_options
    from emotrack.data.temporal import pooling_frames, tf_temporal_pool
    from emotrack.records.tfrecord import decode_frames

    augment = check_options(augment)
    if augment and epochs is None:
        raise ValueError("augmentation needs the per-epoch pipeline (epochs=(first, end)) for its seeds")

    manifest = read_manifest(data_dir)
    fps = {s["session"]: s["fps"] for s in manifest["sessions"]}
    fps_values = set(fps.values())
    if label_delay_s and len(fps_values) > 1:
        raise ValueError(f"{data_dir}: sessions have different frame rates {sorted(fps_values)}; "
                         f"resample them to one rate before compensating a delay")
    shift = delay_frames(label_delay_s, next(iter(fps_values))) if label_delay_s else 0
    k = 1
    if temporal_pooling_s:
        if len(fps_values) > 1:
            raise ValueError(f"{data_dir}: sessions have different frame rates {sorted(fps_values)}; "
                             f"resample them to one rate before temporal pooling")
        k = pooling_frames(temporal_pooling_s, next(iter(fps_values)))
        if window % k:
            raise ValueError(f"the clip length ({window} frames) must be a multiple of the temporal pooling "
                             f"window ({temporal_pooling_s} s = {k} frames); change data.window")

    def prepare(s):
        # A frame counts when a face was seen in it and its (delay-shifted) rating is a real one.
        weights = tf.cast(s["face_present"], tf.float32)
        ratings, weights = shift_labels(s["ratings"], weights, shift)
        valid, _ = shift_labels(tf.cast(s["rating_valid"], tf.float32)[:, None], weights, shift)
        out = {"frames": s["frames"], "ratings": ratings, "weights": weights * valid[:, 0], "session": s["session"],
               "face_present": s["face_present"]}
        if "audio" in inputs:
            out["audio"] = s["audio"]
        return out

    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if label_fusion not in LABEL_FUSIONS:
        raise ValueError(f"label_fusion must be one of {', '.join(LABEL_FUSIONS)}, not {label_fusion!r}")
    if "audio" in inputs:
        check_audio(manifest, data_dir)
    _, frame = crop_feature(manifest, crops)
    check_faceless(faceless, target)
    sessions = list(load_sessions(data_dir, partitions, crops, validation, decode=False).map(prepare)
                    .as_numpy_iterator())
    # Frames without a face dropped: the clips from the face flags of the sessions just read.
    face = None if faceless == "mask" else {
        _name(s["session"]): _face_rows_of(s["face_present"], fps[_name(s["session"])], window, hop, frame_step,
                                            gap_tolerance_s) for s in sessions}
    store = EncodedClips(sessions, clip_rows(sessions, face, window, hop, frame_step, target), seed)
    pairs = 2 if target == "siamese" else 1

    def clip(frames, ratings, weights, audio):
        x = {"video": tf_temporal_pool(frames, k)}
        if "audio" in inputs:
            x["audio"] = tf_temporal_pool(audio, k)
        x = x[inputs[0]] if len(inputs) == 1 else {name: x[name] for name in inputs}
        y, w = tf_temporal_pool(ratings, k), tf_temporal_pool(weights, k)
        if target == "clip":
            y, w = fuse_labels(y, w, label_fusion)
        return x, y, w

    def take(j, epoch):
        encoded, ratings, weights, audio = tf.numpy_function(
            store.take, [j, epoch], [tf.string, tf.float32, tf.float32, tf.float32], stateful=False)
        n = pairs * window
        frames = tf.ensure_shape(decode_frames(tf.ensure_shape(encoded, [n]), frame["channels"]),
                                 [n, frame["height"], frame["width"], frame["channels"]])
        parts = (frames, tf.ensure_shape(ratings, [n, store.ratings.shape[1]]), tf.ensure_shape(weights, [n]),
                 tf.ensure_shape(audio, [n, store.audio.shape[1]]))
        if pairs == 1:
            return clip(*parts)
        a, b = (clip(*(p[i * window:(i + 1) * window] for p in parts)) for i in range(2))
        return tuple(tf.nest.map_structure(lambda u, v: tf.stack([u, v]), a[i], b[i]) for i in range(3))

    def one_pass(epoch: int | None):
        """The clips of one epoch (None: in the stored order), augmented with the epoch's seeds."""
        indices = tf.data.Dataset.range(len(store))
        if epoch is None and shuffle:  # one pass, its order drawn anew at each iteration
            indices = indices.shuffle(max(len(store), 1), seed=seed, reshuffle_each_iteration=True)
        order = -1 if epoch is None or not shuffle else epoch
        clips = indices.map(lambda j: (j, take(j, order)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if not augment or epoch is None:
            return clips.map(lambda j, element: element)
        epoch_seed = seed * 1_000_003 + epoch

        def augmented(index, element):
            x, y, w = element
            key = tf.stack([tf.constant(epoch_seed, tf.int64), index])
            if isinstance(x, dict):
                x = {**x, "video": augment_frames(x["video"], key, augment)}
            else:
                x = augment_frames(x, key, augment)
            return x, y, w

        return clips.map(augmented, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    if epochs is None:
        return one_pass(None).batch(batch_size, drop_remainder=drop_remainder).prefetch(PREFETCH_BATCHES)
    parts = [one_pass(e).batch(batch_size, drop_remainder=drop_remainder) for e in range(*epochs)]
    if not parts:
        return one_pass(None).batch(batch_size).take(0)
    out = parts[0]
    for part in parts[1:]:
        out = out.concatenate(part)
    return out.prefetch(PREFETCH_BATCHES)


def clip_rows(sessions: list[dict[str, Any]], face: dict[str, np.ndarray] | None, window: int, hop: int,
              frame_step: int, target: str) -> np.ndarray:
    """The frames of every clip of ``sessions`` (dicts with ``frames`` and ``session``, one after the
    other), as indices into their concatenation, in session order: (clips, L) int64, or (clips, 2, L)
    for ``siamese`` pairs (the second clip one frame later). ``face``: session -> its clips' own frame
    indices (:func:`face_rows` with ``faceless="drop"``); None: clips every ``hop`` frames."""
    span = clip_span(window, frame_step)
    extra = 1 if target == "siamese" else 0
    out, offset = [], 0
    for s in sessions:
        t = len(s["frames"])
        if face is not None:
            rows = np.asarray(face[_name(s["session"])], np.int64).reshape(-1, window)
        else:
            starts = np.arange(0, max(t - span - extra + 1, 0), hop, dtype=np.int64)
            rows = starts[:, None] + np.arange(window, dtype=np.int64) * frame_step
        if extra:
            rows = np.stack([rows, rows + 1], axis=1)
        out.append(rows + offset)
        offset += t
    shape = (0, 2, window) if extra else (0, window)
    return np.concatenate(out) if out else np.zeros(shape, np.int64)


def check_audio(manifest: dict[str, Any], data_dir: str | Path) -> int:
    """Samples of audio per frame for a model that takes audio, or a clear error saying why the
    preprocessed corpus cannot give them."""
    audio = manifest.get("audio") or {}
    if not audio.get("sample_rate"):
        missing = audio.get("sessions_without_audio") or [s["session"] for s in manifest["sessions"]]
        unusable = audio.get("unusable") or {}  # session -> why its audio was set aside (older manifests: none)
        if unusable:
            reasons = "; ".join(f"{name}: {why}" for name, why in list(unusable.items())[:5])
            raise ValueError(f"{data_dir}: an audio model needs every session's audio, but the audio of "
                             f"{len(unusable)} session(s) was set aside in preprocessing ({reasons}"
                             f"{'; ...' if len(unusable) > 5 else ''}); fix those audio files and preprocess again, "
                             f"or train a visual model on this data")
        raise ValueError(f"{data_dir}: sessions without audio ({', '.join(missing[:5])}"
                         f"{', ...' if len(missing) > 5 else ''}); preprocess the corpus with --audio and audio "
                         f"files for every session")
    if not audio.get("samples_per_frame"):
        rates = sorted({s["fps"] for s in manifest["sessions"]})
        raise ValueError(f"{data_dir}: sessions have different frame rates {rates}, so their frames hold different "
                         f"numbers of audio samples; an audio model needs one frame rate (resample the videos to one rate)")
    return int(audio["samples_per_frame"])


def fuse_labels(ratings, weights, fusion: str = "mean"):
    """One label per clip from its frames' (L, D) ratings and (L,) weights (Teixeira et al. 2021,
    Sec. 3.2): ``mean`` of the valid frames or ``extremum``, per dimension the valid rating with the
    largest magnitude. Returns ((D,) ratings, () weight = fraction of valid frames)."""
    import tensorflow as tf

    valid = tf.cast(weights > 0, ratings.dtype)[:, None]
    count = tf.reduce_sum(valid)
    if fusion == "mean":
        fused = tf.reduce_sum(ratings * valid, axis=0) / tf.maximum(count, 1.0)
    else:
        magnitude = tf.where(valid > 0, tf.abs(ratings), -1.0)
        index = tf.argmax(magnitude, axis=0)
        fused = tf.gather_nd(tf.transpose(ratings), tf.stack([tf.range(tf.shape(ratings)[1], dtype=index.dtype),
                                                              index], axis=1))
    return fused, tf.reduce_mean(tf.cast(weights, ratings.dtype))


def check_faceless(faceless: str, target: str) -> None:
    """``data.faceless`` is known and fits the model's target (raised as ValueError naming the key)."""
    if faceless not in FACELESS:
        raise ValueError(f"data.faceless must be one of {', '.join(FACELESS)}, not {faceless!r}")
    if faceless == "drop" and target == "siamese":
        raise ValueError("data.faceless=drop cuts clips of the frames with a face; it does not make AST-Net's "
                         "Siamese pairs (one frame apart): use data.faceless=mask")


def _name(session) -> str:
    return session.decode() if isinstance(session, bytes) else str(session)


def _face_rows_of(face_present, fps: float, window: int, hop: int, frame_step: int,
                  gap_tolerance_s: float | None) -> np.ndarray:
    """:func:`face_clip_rows` of one session, the gap tolerance turned from seconds into frames."""
    tolerance = None if gap_tolerance_s is None else float(gap_tolerance_s) * float(fps)
    return face_clip_rows(np.asarray(face_present).reshape(-1), window, hop, frame_step, tolerance)


def face_rows(data_dir: str | Path, partitions: str | list[str], window: int, hop: int, frame_step: int,
              faceless: str, gap_tolerance_s: float | None, target: str,
              validation: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """With ``faceless="drop"``: session -> its clips' frame indices (:func:`face_clip_rows`), read
    from the records' ``face_present`` alone (no frame is decoded); with ``mask``: None."""
    check_faceless(faceless, target)
    if faceless == "mask":
        return None
    import tensorflow as tf

    manifest = read_manifest(data_dir)
    out = {}
    for s in select_sessions(manifest, partitions, validation):
        record = next(iter(tf.data.TFRecordDataset(str(Path(data_dir) / s["file"]))))
        _, seq = tf.io.parse_single_sequence_example(
            record, sequence_features={"face_present": tf.io.FixedLenSequenceFeature([1], tf.int64)})
        out[s["session"]] = _face_rows_of(seq["face_present"].numpy(), s["fps"], window, hop, frame_step,
                                          gap_tolerance_s)
    return out


def count_windows(data_dir: str | Path, partitions: str | list[str], window: int, hop: int,
                  frame_step: int = 1, target: str = "frame", validation: dict[str, Any] | None = None,
                  faceless: str = "mask", gap_tolerance_s: float | None = None) -> int:
    """How many clips (or pairs) :func:`training_windows` cuts from the partition(s), from the manifest
    (and, with ``faceless="drop"``, the records' face flags)."""
    rows = face_rows(data_dir, partitions, window, hop, frame_step, faceless, gap_tolerance_s, target, validation)
    if rows is not None:
        return sum(len(r) for r in rows.values())
    span = clip_span(window, frame_step) + (1 if target == "siamese" else 0)
    return sum((s["num_frames"] - span) // hop + 1
               for s in select_sessions(read_manifest(data_dir), partitions, validation) if s["num_frames"] >= span)


def session_arrays(data_dir: str | Path, partitions: str | list[str] | None = None,
                   crops: str | None = None, validation: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Whole sessions as numpy arrays (for evaluation and tests), with the frames of crop set ``crops``."""
    out = []
    for s in load_sessions(data_dir, partitions, crops, validation).as_numpy_iterator():
        s = dict(s)
        for key in ("session", "subject", "partition"):
            s[key] = s[key].decode()
        out.append(s)
    return out
