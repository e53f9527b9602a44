"""Export of a run's model for use outside emotrack: a ``.keras`` copy, a TensorFlow SavedModel or
a TFLite flat buffer, each with the run's input contract beside it as JSON.

Formats:
- ``keras``: the checkpoint file unchanged. Loading it needs Keras 3 and emotrack's custom layers
  (``import emotrack.models`` registers them), or the same classes passed as ``custom_objects``.
- ``savedmodel``: ``model.export(path, format="tf_saved_model")``: a standalone TensorFlow graph
  with the signature ``serving_default`` (also callable as ``.serve``) that takes the model's
  input by name (``frames`` or ``video``: (batch, T, H, W, C) float32; ``audio``: (batch, T, S))
  with T free where the model allows it, and returns ``output_0``.
- ``tflite``: the same graph for one clip of a fixed time length T (``time_steps``; default: the
  run's clip length ``data.window`` over the temporal pooling factor k, i.e. the clips the model
  was trained on, or the model's own fixed length), batch 1, converted by
  ``tf.lite.TFLiteConverter`` with TFLite's built-in ops where that can be done:
  - TFLite has no 3D pooling, so 3D max and average pooling layers (Huang et al. 2018, the
    inflated i3D backbones) are rebuilt for the conversion as a 2D pooling of every frame followed
    by a 2D pooling over time, which gives the same numbers.
  - ConvLSTM2D and LSTM layers become a built-in WHILE loop, which needs static shapes: hence the
    fixed batch (a free batch also trips XNNPack's reshapes at run time).
  - Only when a graph still holds an op outside the built-in set is it converted with
    ``SELECT_TF_OPS`` as well; such a file needs a TFLite runtime with the TensorFlow Select ops
    (the "Flex" delegate), which the ``tf.lite.Interpreter`` of the ``tensorflow`` wheel does not
    have; the contract says so (``tflite.select_tf_ops``).
  A file on built-in ops is run once on a random clip and compared with the Keras model before it
  is written (``tflite.max_abs_difference_to_keras``; more than ``TFLITE_TOLERANCE`` is an error).

The contract (``<out>.json``) holds what a user must do to a video to feed the model and to read
its output: the input names, shapes and value range, the targets in output order, the temporal
pooling (``data.temporal_pooling_s``: average k frames per input step, repeat each prediction k
times), the annotator delay (``data.label_delay_s``: predictions describe the face that many
seconds earlier), the face preprocessing options (``data.preprocessing``) and, when the run has
one, the post-processing chain fitted on devel.

Writes are atomic (:func:`emotrack.files.atomic_path`): the model and its contract are written under
hidden temporary names beside ``out`` and renamed into place, the contract after the model; an
output replaced with ``overwrite`` is removed only after the new one is there, and nothing is left
behind when the export fails.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import keras
from keras import ops

from emotrack import __version__
from emotrack.config.run import checkpoint_path, load_run_config
from emotrack.files import atomic_path

FORMATS = ("keras", "savedmodel", "tflite")
SUFFIXES = {"keras": ".keras", "savedmodel": ".savedmodel", "tflite": ".tflite"}
EXPORT_DIR = "export"
CONTRACT_SUFFIX = ".json"
TFLITE_TOLERANCE = 1e-3  # largest absolute difference to the Keras model accepted on a random clip


def contract_path(out: str | Path) -> Path:
    """Where the input contract of an exported model ``out`` is written: ``<out>.json``."""
    out = Path(out)
    return out.with_name(out.name + CONTRACT_SUFFIX)


def run_frame_rate(config: dict[str, Any]) -> float | None:
    """The frame rate of the run's training data (from the manifest of ``data.dir``), or None
    when that folder is gone or its sessions have different rates."""
    from emotrack.records.manifest import read_manifest

    data_dir = config.get("data", {}).get("dir")
    if not data_dir:
        return None
    try:
        manifest = read_manifest(data_dir)
    except (OSError, ValueError):
        return None
    rates = {float(s["fps"]) for s in manifest.get("sessions", [])}
    return rates.pop() if len(rates) == 1 else None


class Pooling3DAs2D(keras.layers.Layer):
    """A channels-last ``MaxPooling3D`` / ``AveragePooling3D`` computed as a 2D pooling over
    (height, width) of every frame, then a 2D pooling over (time, 1): (batch, T, H, W, C) ->
    (batch, T', H', W', C). A box pooling is separable when each axis is padded on its own
    (TensorFlow's "same" padding leaves padded cells out of both the maximum and the average's
    count, in 2D as in 3D), so the numbers are those of the 3D layer, in ops TFLite has built in.
    Used only in memory, for the conversion; not registered for saving."""

    def __init__(self, mode: str, pool_size, strides, padding: str, **kwargs):
        super().__init__(**kwargs)
        self.mode, self.padding = mode, padding
        self.pool_size, self.strides = tuple(pool_size), tuple(strides)

    def call(self, x):
        pool = ops.max_pool if self.mode == "max" else ops.average_pool
        shape = ops.shape(x)  # sizes unknown when traced are read at run time
        batch, time, h, w, c = shape
        y = pool(ops.reshape(x, (-1, h, w, c)), self.pool_size[1:], self.strides[1:], self.padding)
        h2, w2 = ops.shape(y)[1:3]
        if self.pool_size[0] == 1 and self.strides[0] == 1:
            return ops.reshape(y, (batch, time, h2, w2, c))
        y = pool(ops.reshape(y, (batch, time, h2 * w2 * c, 1)), (self.pool_size[0], 1), (self.strides[0], 1),
                 self.padding)
        return ops.reshape(y, (batch, -1, h2, w2, c))


def tflite_compatible(model):
    """``model``, or a copy with the same weights whose 3D pooling layers are rebuilt from 2D
    poolings (:class:`Pooling3DAs2D`): TFLite has no built-in 3D pooling."""
    kinds = {keras.layers.MaxPooling3D: "max", keras.layers.AveragePooling3D: "average"}

    def replaceable(layer) -> bool:
        return type(layer) in kinds and layer.data_format == "channels_last"

    if not any(replaceable(layer) for layer in model._flatten_layers(include_self=False, recursive=True)):
        return model

    def clone(layer):
        if replaceable(layer):
            return Pooling3DAs2D(kinds[type(layer)], layer.pool_size, layer.strides, layer.padding,
                                 name=layer.name, dtype=layer.dtype_policy)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def _tensor_specs(model) -> list[dict[str, Any]]:
    return [{"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)} for t in model.inputs]


def _exported_network(model, target: str):
    """The network that predicts: a Siamese model (AST-Net) predicts with one of its streams."""
    if target != "siamese":
        return model
    from emotrack.inference.session import single_stream

    return single_stream(model)


def default_time_steps(config: dict[str, Any], model, fps: float | None) -> int:
    """The fixed time length of a TFLite export: the model's own when its input fixes one, else
    the run's clip length ``data.window`` over the temporal pooling factor k."""
    from emotrack.config.run import input_contract

    fixed = model.inputs[0].shape[1]
    if fixed is not None:
        return int(fixed)
    if config["data"].get("temporal_pooling_s") and fps is None:
        raise ValueError(f"the run pools {config['data']['temporal_pooling_s']} s of frames per step but the "
                         f"frame rate of its data is unknown ({config['data'].get('dir')} cannot be read); "
                         f"pass --time-steps")
    k, _ = input_contract(config, fps or 1.0)
    return int(config["data"]["window"]) // k


def _check_time_steps(config: dict[str, Any], model, time_steps: int) -> None:
    from emotrack.config.run import input_contract

    if time_steps < 1:
        raise ValueError(f"--time-steps must be at least 1, not {time_steps}")
    fixed = model.inputs[0].shape[1]
    if fixed is not None and fixed != time_steps:
        raise ValueError(f"this model takes clips of exactly {fixed} steps, not {time_steps}")
    _, factor = input_contract({"model": config["model"]}, 1.0)
    if time_steps % factor:
        raise ValueError(f"--time-steps must be a multiple of {factor}, the network's own reduction of time "
                         f"(pooling {config['model']['options'].get('pooling')!r}), not {time_steps}")


def _contract(config: dict[str, Any], run_dir: Path, checkpoint: str, fmt: str, model, fps: float | None,
              info, artifact: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    from emotrack.config.run import input_contract
    from emotrack.data.align import delay_frames
    from emotrack.data.temporal import pooling_frames

    data = config["data"]
    centre_scale = ((data.get("augment") or {}).get("resize_crop")) or None
    pooling_s = data.get("temporal_pooling_s")
    k = pooling_frames(pooling_s, fps) if fps or not pooling_s else None  # None: the rate is unknown
    _, factor = input_contract({"model": config["model"]}, 1.0)
    delay_s = float(data["label_delay_s"])
    chain_file = run_dir / "postprocessing.json"
    outputs = [list(t.shape) for t in model.outputs]
    if info.target == "clip":
        reading = ("one prediction per clip of clip_frames steps; `emotrack evaluate` gives each frame the "
                   "mean of the clips that cover it")
    else:
        reading = "one prediction per input step: repeat each frames_per_step times to return to the frame rate"
    return {
        "format": fmt,
        "exported_by": {"emotrack": __version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "run": {"folder": str(run_dir.resolve()), "checkpoint": checkpoint, "experiment": config.get("experiment"),
                "model": config["model"]["name"], "options": config["model"].get("options", {})},
        "network": model.name,  # a Siamese model's single stream outside the keras format
        "inputs": [{**spec, "modality": modality} for spec, modality in zip(_tensor_specs(model), info.inputs)],
        "input_values": "float32; face crops as pixel values 0..255 (H, W, C as in preprocessing); audio "
                        "as the samples of each frame",
        "outputs": {"shape": outputs[0] if len(outputs) == 1 else outputs, "targets": list(config["targets"]),
                    "per": {"frame": "input step", "clip": "clip", "siamese": "input step"}[info.target]},
        "time": {
            "fps": fps,
            "clip_frames": data.get("window"),
            "frame_step": int(data["frame_step"]),
            "temporal_pooling_s": pooling_s,
            "frames_per_step": k,
            "network_time_factor": factor,
            "label_delay_s": delay_s,
            "label_delay_frames": delay_frames(delay_s, fps) if fps else None,
        },
        "preprocessing": data.get("preprocessing"),
        # Trained with resize-and-random-crop: the network expects the centre crop of the face resized by
        # this scale (what `emotrack evaluate` and `predict` feed it; emotrack.data.augment.centre_crop).
        "centre_crop_scale": centre_scale,
        "postprocessing": json.loads(chain_file.read_text()) if chain_file.is_file() else None,
        "how_to_apply": [
            "crop faces as `preprocessing` says (size, gray, margin) and keep every frame_step-th frame",
            *([f"resize each face crop by centre_crop_scale ({centre_scale:g}) and cut it back to its size at "
               f"the centre (the scale the network was trained at)"] if centre_scale else []),
            "average every frames_per_step consecutive frames into one input step (temporal pooling)",
            "the time length must be a multiple of network_time_factor (and equal tflite.time_steps "
            "for a TFLite file)",
            reading,
            "move the predictions label_delay_s later in time to compare them with ratings",
            "optionally apply `postprocessing` (fitted on devel; see emotrack.evaluation.postprocess)",
        ],
        fmt: artifact,
    }


def _convert_tflite(model, scratch: Path, time_steps: int) -> tuple[bytes, bool]:
    """A TFLite flat buffer of ``model`` for one clip of ``time_steps`` steps (batch 1), and
    whether it needs the TensorFlow Select ops (tried only when built-in ops alone fail).

    The batch size is fixed: a recurrent layer's loop becomes built-in ops only with static shapes,
    and XNNPack fails to resize some reshapes of a free batch at run time."""
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import (
        ConverterError,  # not exported under tf.lite
    )

    model = tflite_compatible(model)
    specs = [tf.TensorSpec((1, time_steps, *t.shape[2:]), t.dtype, name=t.name) for t in model.inputs]
    structure = model._inputs_struct
    if isinstance(structure, dict):
        signature = [dict(zip(structure, specs))]
    elif isinstance(structure, (list, tuple)):
        signature = [list(specs)]
    else:
        signature = specs
    saved_dir = scratch / "saved_model"
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=signature)
    archive.write_out(str(saved_dir), verbose=False)
    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return _converter(saved_dir, builtins).convert(), False
    except ConverterError:
        return _converter(saved_dir, builtins + [tf.lite.OpsSet.SELECT_TF_OPS]).convert(), True


def _converter(saved_dir: Path, ops_sets):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir))
    converter.target_spec.supported_ops = ops_sets
    return converter


def _tflite_difference(flat: bytes, model, time_steps: int, modalities: tuple[str, ...]) -> float:
    """The largest absolute difference between the TFLite file and the Keras model on one random
    clip (video: pixel values 0..255; audio: samples in -1..1)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    inputs = {t.name: (rng.uniform(0, 255, (1, time_steps, *t.shape[2:])) if modality == "video" else
                       rng.uniform(-1, 1, (1, time_steps, *t.shape[2:]))).astype("float32")
              for t, modality in zip(model.inputs, modalities)}
    structure = model._inputs_struct
    x = (inputs if isinstance(structure, dict) else list(inputs.values()) if isinstance(structure, (list, tuple))
         else next(iter(inputs.values())))
    expected = np.asarray(model(x, training=False))
    with warnings.catch_warnings():  # its deprecation notice, on every export, says nothing about the file
        warnings.simplefilter("ignore", UserWarning)
        runner = tf.lite.Interpreter(model_content=flat).get_signature_runner("serving_default")
    got = next(iter(runner(**inputs).values()))
    return float(np.max(np.abs(got - expected)))


def export_run(run_dir: str | Path, fmt: str, out: str | Path | None = None, checkpoint: str = "best.keras",
               time_steps: int | None = None, overwrite: bool = False) -> Path:
    """Export the model of a run folder for use outside emotrack (see the module docstring).

    Args:
        run_dir: a run folder written by ``emotrack train`` (``config.yaml`` and checkpoints).
        fmt: ``keras``, ``savedmodel`` or ``tflite``.
        out: the file (folder for ``savedmodel``) to write; default
            ``<run_dir>/export/<checkpoint stem><.keras|.savedmodel|.tflite>``. The contract is
            written to ``<out>.json``.
        checkpoint: the checkpoint file in the run folder.
        time_steps: ``tflite`` only: the fixed time length T of the input (batch, T, ...); default
            :func:`default_time_steps`.
        overwrite: replace an existing ``out``.
    Returns:
        ``out``.
    Raises:
        FileNotFoundError: ``run_dir`` is not a run folder, or the checkpoint is missing.
        FileExistsError: ``out`` exists and ``overwrite`` is not set.
        ValueError: an unknown format or a time length the model cannot take.
    """
    from emotrack.models import load_model, model_info

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if time_steps is not None and fmt != "tflite":
        raise ValueError(f"--time-steps fixes the time length of a TFLite file; a {fmt} export keeps the "
                         f"model's own")
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    source = checkpoint_path(run_dir, checkpoint)
    out = Path(out) if out is not None else run_dir / EXPORT_DIR / (Path(checkpoint).stem + SUFFIXES[fmt])
    if fmt == "keras" and out.suffix != ".keras":
        raise ValueError(f"a Keras model file must end in .keras (Keras loads it by that name), not {out.name!r}")
    if os.path.lexists(out) and not overwrite:
        raise FileExistsError(f"{out} already exists; choose another --out or pass --overwrite")

    info = model_info(config["model"]["name"])
    model = load_model(source)
    if fmt != "keras":
        model = _exported_network(model, info.target)
    fps = run_frame_rate(config)
    if fmt == "tflite":
        if time_steps is None:
            time_steps = default_time_steps(config, model, fps)
        _check_time_steps(config, model, int(time_steps))

    out.parent.mkdir(parents=True, exist_ok=True)
    # Leaving the inner block renames the model into place, then the outer one its contract: an
    # error before leaves neither, and an old output is kept.
    with atomic_path(contract_path(out)) as staged_contract, atomic_path(out, keep_suffix=True) as staged:
        if fmt == "keras":
            shutil.copyfile(source, staged)
            artifact = {"file": out.name, "load": "emotrack.models.load_model(path), or keras.models.load_model "
                                                  "with emotrack's custom layers importable"}
        elif fmt == "savedmodel":
            model.export(str(staged), format="tf_saved_model", verbose=False)
            artifact = {"folder": out.name, "signature": "serving_default", "endpoint": "serve",
                        "input_names": [t.name for t in model.inputs], "output_key": "output_0",
                        "free_time": model.inputs[0].shape[1] is None}
        else:
            # The converter reads a SavedModel: written to a scratch folder, removed after.
            with tempfile.TemporaryDirectory(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent) as scratch:
                flat, select_ops = _convert_tflite(model, Path(scratch), int(time_steps))
            # The Select ops need the Flex delegate, which this TensorFlow's interpreter lacks.
            difference = None if select_ops else _tflite_difference(flat, model, int(time_steps), info.inputs)
            if difference is not None and difference > TFLITE_TOLERANCE:
                raise ValueError(f"the TFLite conversion of {source} differs from the Keras model by {difference:.3g} "
                                 f"(more than {TFLITE_TOLERANCE}) on a random clip")
            staged.write_bytes(flat)
            artifact = {"file": out.name, "input_shapes": {t.name: [1, int(time_steps), *t.shape[2:]]
                                                           for t in model.inputs},
                        "time_steps": int(time_steps), "batch": 1, "select_tf_ops": select_ops,
                        "signature": "serving_default", "max_abs_difference_to_keras": difference}
        contract = _contract(config, run_dir, checkpoint, fmt, model, fps, info, artifact)
        staged_contract.write_text(json.dumps(contract, indent=2))
    return out
