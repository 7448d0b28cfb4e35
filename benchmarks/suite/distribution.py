"""MirroredStrategy against the default strategy, in a fresh TensorFlow process.

On a machine without two GPUs the one physical CPU is split into two logical CPU devices
(``tf.config.set_logical_device_configuration``, which must run before TensorFlow
initializes its devices, hence the fresh process); both strategies then train the same
small U-Net from the same seed for the same steps on the same global batches, and the
final losses and weights are compared. The U-Net uses group normalization and the loss is
cross-entropy, optimized with SGD: all three give the same update whether a batch is
processed whole or as two halves whose gradients are averaged (batch normalization
statistics and the batch-Dice loss would differ between one batch and two halves by
design). With two or more GPUs, the per-replica batch is kept and the global batch grows
with the replicas, and the table reports the scaling instead.
"""

import time

import numpy as np

from benchmarks.suite.measure import summarize_times


def configure_devices():
    """Split the CPU into two logical devices, unless two GPUs are present.

    Must run before any TensorFlow operation.

    Returns:
        ``(kind, devices)``: ``"gpu"`` or ``"cpu-logical"`` and the device names the
        MirroredStrategy uses.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= 2:
        return "gpu", [f"/gpu:{index}" for index in range(len(gpus))]
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    return "cpu-logical", ["/cpu:0", "/cpu:1"]


def _train(strategy, size, options, global_batch, warmup, steps, seed):
    import keras
    import tensorflow as tf

    import kerasseg
    from benchmarks.suite.training import compile_like_trainer

    rng = np.random.default_rng(seed)
    count = global_batch * (warmup + steps)
    images = rng.normal(size=(count,) + tuple(size)).astype("float32")
    labels = rng.integers(0, 2, size=(count,) + tuple(size[:2])).astype("int32")
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = kerasseg.build("unet", input_shape=tuple(size), num_classes=2, **options)
        compile_like_trainer(model, 2, loss="ce", optimizer=keras.optimizers.SGD(0.05))
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(global_batch)
    warm = dataset.take(warmup)
    timed = dataset.skip(warmup)
    model.fit(warm, epochs=1, verbose=0, shuffle=False)

    times = []

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    start = time.perf_counter()
    history = model.fit(timed, epochs=1, verbose=0, shuffle=False, callbacks=[StepTimer()])
    total = time.perf_counter() - start
    weights = [np.asarray(w) for w in model.get_weights()]
    summary = summarize_times(times)
    return {
        "replicas": int(strategy.num_replicas_in_sync),
        "global_batch": global_batch,
        "steps": steps,
        "images_per_s": global_batch / summary["median_s"],
        "images_per_s_overall": global_batch * steps / total,
        "final_loss": float(history.history["loss"][-1]),
    }, weights


def compare_strategies(size=(64, 64, 1), options=None, batch=8, warmup=2, steps=10, seed=0):
    """Train under the default strategy and under MirroredStrategy and compare.

    Call :func:`configure_devices` first, in a fresh process.

    Args:
        size: ``(H, W, C)`` of the small U-Net.
        options: its options (default: depth 3, 16 filters, group normalization).
        batch: the global batch on CPUs; the per-replica batch on GPUs.
        warmup: untimed steps (tracing).
        steps: timed steps.
        seed: seed of weights and data.

    Returns:
        dict with ``kind``, ``devices``, ``rows`` (strategy, replicas, global batch,
        images/s, final loss), ``overhead_ratio`` (default img/s / mirrored img/s, on
        CPUs), ``scaling`` (mirrored / default img/s, on GPUs), ``max_abs_weight_diff``
        and ``final_loss_diff`` (CPUs only).
    """
    import tensorflow as tf

    from kerasseg.training.strategy import get_strategy

    options = dict(options or {"depth": 3, "base_filters": 16, "normalization": "group"})
    gpus = tf.config.list_logical_devices("GPU")
    kind = "gpu" if len(gpus) >= 2 else "cpu-logical"
    devices = [d.name for d in gpus] if kind == "gpu" else [
        d.name for d in tf.config.list_logical_devices("CPU")][:2]
    default_row, default_weights = _train(get_strategy("default"), size, options, batch,
                                          warmup, steps, seed)
    mirrored = get_strategy("mirrored", devices=devices)
    global_batch = batch * len(devices) if kind == "gpu" else batch
    mirrored_row, mirrored_weights = _train(mirrored, size, options, global_batch,
                                            warmup, steps, seed)
    default_row["strategy"] = "default"
    mirrored_row["strategy"] = "mirrored"
    result = {"kind": kind, "devices": devices, "rows": [default_row, mirrored_row],
              "model": {"shape": list(size), **options}, "optimizer": "SGD(0.05)", "loss": "ce"}
    if kind == "gpu":
        result["scaling"] = mirrored_row["images_per_s"] / default_row["images_per_s"]
        result["efficiency"] = result["scaling"] / len(devices)
    else:
        result["overhead_ratio"] = default_row["images_per_s"] / mirrored_row["images_per_s"]
        result["max_abs_weight_diff"] = float(max(
            np.max(np.abs(a - b)) for a, b in zip(default_weights, mirrored_weights)))
        result["final_loss_diff"] = abs(default_row["final_loss"] - mirrored_row["final_loss"])
    return result
