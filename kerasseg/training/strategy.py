"""Choosing a ``tf.distribute`` strategy by name.

Global batch size = per-replica batch size x ``strategy.num_replicas_in_sync``. The
learning rate is not scaled automatically: the linear scaling rule (multiply the
learning rate by the number of replicas, with a warm-up) is a good starting point when
the global batch grows; :func:`scaled_learning_rate` computes it for users who want it.
"""

import json
import logging
import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")

log = logging.getLogger("kerasseg")


def _gpus():
    return tf.config.list_logical_devices("GPU")


def get_strategy(name="auto", devices=None):
    """Return the ``tf.distribute.Strategy`` named ``name``.

    Args:
        name: ``"auto"`` (Mirrored when more than one GPU is visible, else the default
            strategy), ``"default"`` (one device), ``"mirrored"`` (all local GPUs, or
            ``devices``), ``"multiworker"`` (MultiWorkerMirrored from the ``TF_CONFIG``
            environment variable) or ``"tpu"`` (a TPU found by the cluster resolver).
        devices: optional device names for ``"mirrored"``, e.g. two logical CPUs
            ``["/cpu:0", "/cpu:1"]``.

    Returns:
        A ``tf.distribute.Strategy``.

    Raises:
        ValueError: for an unknown name, for ``"multiworker"`` without a valid
            ``TF_CONFIG``, or for ``"tpu"`` when no TPU is found.

    Example:
        >>> strategy = get_strategy("default")
        >>> strategy.num_replicas_in_sync
        1
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {list(STRATEGIES)}. Received: strategy={name!r}")
    if name == "auto":
        name = "mirrored" if len(_gpus()) > 1 else "default"
        log.info("strategy auto -> %s (%d GPU(s) visible)", name, len(_gpus()))
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        config = os.environ.get("TF_CONFIG")
        try:
            cluster = json.loads(config)["cluster"] if config else None
        except (ValueError, KeyError, TypeError):
            cluster = None
        if not cluster:
            raise ValueError(
                "strategy='multiworker' needs the TF_CONFIG environment variable with a "
                '"cluster" and a "task", e.g. {"cluster": {"worker": ["host1:12345", '
                '"host2:12345"]}, "task": {"type": "worker", "index": 0}}. '
                f"Received: TF_CONFIG={config!r}"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.NotFoundError) as error:
        raise ValueError(f"strategy='tpu' but no TPU was found: {error}") from error
    return tf.distribute.TPUStrategy(resolver)


def scaled_learning_rate(base_learning_rate, num_replicas):
    """Linear scaling rule: the learning rate for ``num_replicas`` times the batch.

    Args:
        base_learning_rate: learning rate tuned for one replica's batch.
        num_replicas: ``strategy.num_replicas_in_sync``.

    Returns:
        ``base_learning_rate * num_replicas``.

    Example:
        >>> scaled_learning_rate(1e-3, 4)
        0.004
    """
    return base_learning_rate * num_replicas


def is_chief(strategy):
    """Return True on the worker that writes checkpoints and logs (worker 0 or single host)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )
