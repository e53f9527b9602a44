"""Where and how training computes: the ``tf.distribute`` strategy, mixed precision and op
determinism, each set for one training and undone after it, so that nothing a training changes in
TensorFlow or Keras outlives it in the process.

``train.strategy`` spreads training over devices with TensorFlow's ``tf.distribute``:
``default`` (one device), ``mirrored`` (the GPUs of this machine, or its CPU as one replica) or
``multiworker`` (several machines, each started with the same command and a ``TF_CONFIG``
environment variable naming the cluster and its own place in it). ``data.batch_size`` is the global
batch: each of R replicas gets batch_size / R clips of it, so the CCC loss is computed per replica
on its share and averaged, and results depend on R. In a multi-worker run only the chief (worker 0)
writes the run folder; the other workers write their copy to a temporary folder removed at the end
(or, to keep it, to ``$EMOTRACK_WORKER_DIR/worker-<index>``). ``train.mixed_precision: true`` computes
in float16 with float32 variables (Keras's ``mixed_float16``, for GPUs), the model's outputs kept in
float32; ``mixed_bfloat16`` there is for CPUs, whose TensorFlow kernels for 3D pooling take no float16.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator
from typing import Any

STRATEGIES = ("default", "mirrored", "multiworker")
WORKER_DIR_ENV = "EMOTRACK_WORKER_DIR"

_TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'


def check_tf_config(text: str | None) -> dict[str, Any]:
    """The cluster of a multi-worker run, from the JSON text of the ``TF_CONFIG`` environment
    variable: the same ``cluster`` (job -> "host:port" addresses) on every machine and each
    machine's own ``task`` (job type and index); a clear error when it is missing or malformed."""
    hint = f"set it on every machine, e.g. TF_CONFIG='{_TF_CONFIG_EXAMPLE}' with task.index 0, 1, ..."
    if not text:
        raise ValueError(f"train.strategy=multiworker reads the cluster from the TF_CONFIG environment variable, "
                         f"which is not set; {hint}")
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not JSON ({err}); {hint}") from err
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    task = tf_config.get("task") if isinstance(tf_config, dict) else None
    if not isinstance(cluster, dict) or not cluster or not all(
            isinstance(hosts, list) and hosts and all(isinstance(h, str) and ":" in h for h in hosts)
            for hosts in cluster.values()):
        raise ValueError(f"TF_CONFIG needs a 'cluster' mapping each job to a list of host:port addresses; {hint}")
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int) \
            or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise ValueError(f"TF_CONFIG needs a 'task' with a 'type' among {sorted(cluster)} and an 'index' into its "
                         f"addresses, not {task!r}; {hint}")
    return tf_config


def make_strategy(name: str):
    """A new ``tf.distribute`` strategy of the kind ``train.strategy`` names (see the module
    docstring), for one training. ``multiworker`` joins the cluster of ``TF_CONFIG``: TensorFlow
    allows that once per process, before it runs anything."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"train.strategy must be one of {', '.join(STRATEGIES)}, not {name!r}")
    if name == "multiworker":
        check_tf_config(os.environ.get("TF_CONFIG"))
    return {"default": tf.distribute.get_strategy, "mirrored": tf.distribute.MirroredStrategy,
            "multiworker": tf.distribute.MultiWorkerMirroredStrategy}[name]()


def is_multiworker(strategy) -> bool:
    """Whether ``strategy`` spreads training over the machines of a cluster."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def worker_index(strategy) -> int | None:
    """This process's index among the workers of a multi-worker run, or None when it writes the
    run folder (one process, or the chief: task ``chief``, or worker 0 when there is none)."""
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster or resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                                        and "chief" not in cluster):
        return None
    return int(resolver.task_id)


@contextlib.contextmanager
def multiworker_reduce() -> Iterator[None]:
    """Inside, Keras 3's ``fit`` averages each step's scalar logs over the replicas of all workers
    under ``MultiWorkerMirroredStrategy``; as released (keras-team/keras#20585; Keras 3.15) it
    reduces them along an axis 0 they do not have. Every worker then sees the same logs and stops at
    the same step. Keras's function is replaced for the whole process, so the original is put back
    on leaving, also after an error; other strategies are passed through unchanged meanwhile."""
    import keras
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica

    @functools.wraps(original)
    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        trainer.reduce_per_replica = original


@contextlib.contextmanager
def multiworker_fit(model) -> Iterator[None]:
    """Let ``model.fit`` inside train under ``MultiWorkerMirroredStrategy``, which Keras 3 cannot as
    released: it builds a model made under a strategy by reducing the first batch across workers,
    which fails for (x, y, weights) batches, and it reduces step logs wrongly (see
    :func:`multiworker_reduce`). The model is left to build when fit traces its step (so fit must
    run in the strategy's scope); the logs are reduced by :func:`multiworker_reduce` until leaving."""
    model._distribute_strategy = None
    with multiworker_reduce():
        yield


@contextlib.contextmanager
def op_determinism(enabled: bool) -> Iterator[None]:
    """Inside, with ``enabled``, TensorFlow's ops give the same results on every run
    (``tf.config.experimental.enable_op_determinism``); the state before is restored on leaving.
    ``enabled`` False leaves the state as it is."""
    import tensorflow as tf
    # Reading the state and switching it off again are not in tf.config (TensorFlow 2.21).
    from tensorflow.python.framework import config as framework_config

    switch = enabled and not framework_config.is_op_determinism_enabled()
    if switch:
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if switch:
            framework_config.disable_op_determinism()


@contextlib.contextmanager
def mixed_precision_policy(setting: bool | str | None) -> Iterator[None]:
    """Layers made inside compute in 16 bits with float32 variables: ``setting`` True (Keras's
    ``mixed_float16``), ``mixed_float16`` or ``mixed_bfloat16``; False or None leaves the policy
    alone. The global policy before is restored on leaving (layers keep theirs)."""
    import keras

    policy = "mixed_float16" if setting is True else setting or None
    if policy not in (None, "mixed_float16", "mixed_bfloat16"):
        raise ValueError(f"train.mixed_precision must be true, false, mixed_float16 or mixed_bfloat16, not {setting!r}")
    previous = keras.mixed_precision.global_policy()
    if policy:
        keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def float32_outputs(model):
    """``model`` with a linear float32 activation after each output, as Keras advises for mixed
    precision: the loss and metrics then see float32 predictions of the same shapes."""
    import keras

    flat = keras.tree.flatten(model.output)
    cast = [keras.layers.Activation("linear", dtype="float32", name=f"output_float32_{i}" if len(flat) > 1
                                    else "output_float32")(t) for i, t in enumerate(flat)]
    return keras.Model(model.input, keras.tree.pack_sequence_as(model.output, cast), name=model.name)
