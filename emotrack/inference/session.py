"""Inference over whole sessions, shared by evaluate, predict and export: a session's inputs are cut
as the training pipeline cut them (clips, frame subsampling, temporal pooling), run through the model
and put back to one prediction per frame. The annotator delay is undone by the callers with
`emotrack.data.align.undo_label_delay`, the inverse of the training pipeline's label shift."""

from __future__ import annotations

from typing import Any

import numpy as np

from emotrack.data.temporal import temporal_pool, temporal_unpool


def predict_session(model, frames, chunk: int, factor: int = 1) -> np.ndarray:
    """Per-frame predictions for a whole session.

    Args:
        frames: (T, H, W, C) face crops, or a dict of (T, ...) arrays by input name (e.g. ``audio``
            and ``video``).
        chunk: frames per forward pass (bounds memory); rounded down to a multiple of ``factor``.
        factor: the model's temporal reduction; the tail is padded by repeating the last frame.
    Returns:
        float32 (T, outputs).
    """
    arrays = frames if isinstance(frames, dict) else {"x": frames}
    t = len(next(iter(arrays.values())))
    chunk = max(factor, chunk - chunk % factor)
    outs = []
    for start in range(0, t, chunk):
        parts = {}
        for name, x in arrays.items():
            part = np.asarray(x[start:start + chunk], np.float32)
            pad = (-len(part)) % factor
            if pad:
                part = np.concatenate([part, np.repeat(part[-1:], pad, axis=0)])
            parts[name] = part[None]
        n = min(chunk, t - start)
        batch = parts["x"] if "x" in parts else parts
        outs.append(np.asarray(model(batch, training=False))[0, :n])
    return np.concatenate(outs).astype(np.float32)


def single_stream(model):
    """The single-stream network inside a Siamese model (AST-Net predicts with one stream)."""
    nested = [layer for layer in model.layers if isinstance(layer, type(model)) or hasattr(layer, "layers")]
    if not nested:
        raise ValueError(f"{model.name} holds no single-stream network to predict with")
    return nested[0]


def predict_frames(model, session: dict[str, Any], config: dict[str, Any]) -> np.ndarray:
    """One prediction per frame of a whole session, whatever the model's kind (frame-level,
    clip-level or Siamese), undoing what the training pipeline did to its input: temporal pooling
    (Huang 2018), frame subsampling (``data.frame_step``: the session is cut into the interleaved
    subsequences ``frames[j::step]``, each predicted and put back in place), and clips (each
    frame gets the mean prediction of the clips that cover it). Returns (T, outputs)."""
    from emotrack.config.run import input_contract
    from emotrack.config.schema import with_defaults
    from emotrack.data.clips import clip_starts, run_clip_hop
    from emotrack.inference.session import pooled_predictions, stitch_clips
    from emotrack.models import model_info

    config = with_defaults(config)
    info = model_info(config["model"]["name"])
    data_cfg = config["data"]
    chunk = config["evaluate"]["chunk"]
    if (data_cfg.get("augment") or {}).get("resize_crop"):
        model = CentreCropped(model if info.target != "siamese" else single_stream(model), data_cfg["augment"])
    step = int(data_cfg["frame_step"])
    names = {"video": "frames", "audio": "audio"}
    arrays = {name: session[names[name]] for name in info.inputs}
    inputs = arrays[info.inputs[0]] if len(arrays) == 1 else arrays
    length = len(session["frames"])
    if info.target == "clip":
        span = (data_cfg["window"] - 1) * step + 1
        starts = clip_starts(length, span, config["evaluate"]["hop"] or run_clip_hop(data_cfg))
        values = []
        for first in range(0, len(starts), 16):
            batch = {}
            for name, x in arrays.items():
                clips = []
                for start in starts[first:first + 16]:
                    clip = x[start:start + span:step]
                    if len(clip) < data_cfg["window"]:  # a session shorter than one clip
                        clip = np.concatenate([clip, np.repeat(clip[-1:], data_cfg["window"] - len(clip), 0)])
                    clips.append(clip)
                batch[name] = np.stack(clips).astype(np.float32)
            values.append(np.asarray(model(batch[info.inputs[0]] if len(batch) == 1 else batch, training=False)))
        return stitch_clips(np.concatenate(values), starts, span, length)
    if info.target == "siamese" and not isinstance(model, CentreCropped):
        model = single_stream(model)
    k, factor = input_contract(config, float(session["fps"]))
    if step == 1:
        return pooled_predictions(model, inputs, k, chunk, factor)
    pred = None
    for j in range(step):
        part = {n: x[j::step] for n, x in arrays.items()}
        out = pooled_predictions(model, part[info.inputs[0]] if len(part) == 1 else part, k, chunk, factor)
        if pred is None:
            pred = np.zeros((length, out.shape[1]), np.float32)
        pred[j::step] = out
    return pred


def pooled_predictions(model, inputs, k: int, chunk: int, factor: int = 1) -> np.ndarray:
    """Per-frame predictions of a model trained on temporally pooled input.

    ``inputs`` (T, ...) for one input, or a dict of them by input name, are pooled by ``k``, run
    through the model in chunks (see :func:`emotrack.inference.session.predict_session`, ``factor`` being
    the network's own reduction of time) and the predictions repeated back to T steps: (T, outputs).
    """
    from emotrack.inference.session import predict_session

    single = not isinstance(inputs, dict)
    arrays = {"x": inputs} if single else dict(inputs)
    length = len(next(iter(arrays.values())))
    pooled = {name: (temporal_pool(x, k) if k > 1 else x) for name, x in arrays.items()}
    pred = predict_session(model, pooled["x"] if single else pooled, max(1, chunk // k), factor)
    return temporal_unpool(pred, k, length)


def stitch_clips(clip_values: np.ndarray, starts: np.ndarray, span: int, length: int) -> np.ndarray:
    """Per-frame values from per-clip values: every frame gets the mean of the clips that cover it.

    ``clip_values`` (n, D) for clips of ``span`` frames at ``starts``; returns (length, D). A
    frame covered by one clip gets that clip's value exactly.
    """
    clip_values = np.asarray(clip_values, np.float64)
    sums = np.zeros((length, clip_values.shape[1]))
    counts = np.zeros(length)
    for start, value in zip(starts, clip_values):
        end = min(int(start) + span, length)
        sums[start:end] += value
        counts[start:end] += 1
    if (counts == 0).any():
        raise ValueError("some frames are covered by no clip")
    return (sums / counts[:, None]).astype(np.float32)


class CentreCropped:
    """A model as evaluation and prediction run it when it was trained with ``resize_crop``
    augmentation: its face crops (the ``video`` input) are first resized by the training scale and cut
    back at the centre (:func:`emotrack.data.augment.centre_crop`), so that a face has the size in
    pixels it had in the random crops training saw."""

    def __init__(self, model, augment: dict[str, Any]):
        from emotrack.data.augment import check_options

        self.model, self.augment = model, check_options(augment)

    def __call__(self, x, training: bool = False):
        from emotrack.data.augment import centre_crop

        if isinstance(x, dict):
            import keras

            # Keras takes a dict of tensors or of arrays, not both: the audio goes in as a tensor too.
            x = {name: keras.ops.convert_to_tensor(centre_crop(value, self.augment) if name == "video" else value)
                 for name, value in x.items()}
        else:
            x = centre_crop(x, self.augment)
        return self.model(x, training=training)


class CompiledModel:
    """A Keras model called through one ``tf.function`` traced for any batch and time length.

    Eager calls run the time loop of ConvLSTM and LSTM layers step by step from Python; in a graph the
    same network runs about twice as fast on a CPU, with the same numbers up to float rounding. Siamese
    models are wrapped too: their nested single-stream network, which `predict_frames` predicts with,
    is found under ``layers`` compiled in the same way.
    """

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        specs = [tf.TensorSpec(tensor.shape, tf.float32) for tensor in model.inputs]
        self._call = tf.function(lambda x: model(x, training=False), input_signature=specs[:1]) \
            if len(specs) == 1 else None
        self._layers = None

    def __getattr__(self, name):
        if name == "model":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)  # name, inputs, outputs, ... of the wrapped model

    def __call__(self, x, training: bool = False):
        if self._call is None or training:
            return self.model(x, training=training)
        return self._call(x)

    @property
    def layers(self) -> list:
        if self._layers is None:
            self._layers = [CompiledModel(layer) if hasattr(layer, "layers") and hasattr(layer, "inputs")
                            else layer for layer in self.model.layers]
        return self._layers

    @classmethod
    def wrap(cls, model):
        """``model`` compiled where the TensorFlow backend runs it; as it is on other backends."""
        import keras

        return cls(model) if keras.backend.backend() == "tensorflow" else model


def hold_last_face(pred: np.ndarray, face_present: np.ndarray, before_first: str = "nan") -> np.ndarray:
    """The rule for frames without a face in a prediction for a new video: each such frame holds the
    prediction of the last frame with a face, since a crop without a face says nothing of the face's
    affect (in training and evaluation these frames are masked instead).

    Args:
        pred: (T, D) predictions.
        face_present: (T,) 0/1.
        before_first: what frames before the first face get: ``nan`` (no prediction), or ``first`` (the
            first face's prediction, e.g. to give a post-processing chain an unbroken sequence).
    Returns:
        float32 (T, D), a copy; unchanged where ``face_present`` is 1.
    """
    present = np.asarray(face_present).astype(bool)
    if not present.any():
        raise ValueError("no frame has a face: there is no prediction to hold")
    last = np.maximum.accumulate(np.where(present, np.arange(len(present)), -1))
    out = np.asarray(pred, np.float32)[np.where(last < 0, np.argmax(present), last)]
    if before_first == "nan":
        out[last < 0] = np.nan
    elif before_first != "first":
        raise ValueError(f"before_first must be 'nan' or 'first', not {before_first!r}")
    return out
