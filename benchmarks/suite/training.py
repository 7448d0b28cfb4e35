"""Training-step throughput of a model family, compiled as ``kerasseg train`` compiles it.

The model is built with ``kerasseg.build`` after ``keras.utils.set_random_seed(seed)``
and compiled with the training recipe's AdamW (cosine schedule, weight decay 1e-4,
gradient clipping), the Dice + cross-entropy loss and the Dice metric. Every step
trains on the same random batch (the input pipeline is measured on its own), so two
runs with the same seed and batch see the same data and their loss trajectories can be
compared. The step is ``model.train_on_batch``; images/s is the batch divided by the
median timed step.
"""

import contextlib
import os

import numpy as np

from benchmarks.suite.measure import gflops_per_second, summarize_times, training_flops

_FLOPS_CACHE = {}


def padded_size(family, size, options=None):
    """Round ``(H, W)`` up to the family's total stride, keeping the channel count.

    Args:
        family: a model family name.
        size: ``(H, W, C)``.
        options: the family options the model is built with.

    Returns:
        ``(H', W', C)`` with ``H'`` and ``W'`` multiples of the stride.

    Example:
        >>> padded_size("fcn8s", (48, 64, 5))
        (64, 64, 5)
    """
    from kerasseg.models import total_stride

    stride = total_stride(family, **(options or {}))
    height, width, channels = size
    return (-(-height // stride) * stride, -(-width // stride) * stride, channels)


def forward_flops(family, size, num_classes, options=None):
    """Forward FLOPs for one image, counted by :func:`kerasseg.models.summary.count_flops`.

    The count is cached per family, size, class count and options.

    Args:
        family: a model family name.
        size: ``(H, W, C)``.
        num_classes: output classes.
        options: family options.

    Returns:
        FLOPs (int) of the forward pass at batch 1.
    """
    import keras

    import kerasseg
    from kerasseg.models.summary import count_flops

    key = (family, tuple(size), num_classes, tuple(sorted((options or {}).items())))
    if key not in _FLOPS_CACHE:
        with float32_policy():
            model = kerasseg.build(family, input_shape=tuple(size), num_classes=num_classes,
                                   **(options or {}))
            _FLOPS_CACHE[key] = count_flops(model)
        del model
        keras.backend.clear_session()
    return _FLOPS_CACHE[key]


@contextlib.contextmanager
def float32_policy(policy="float32"):
    """Set the Keras dtype policy to ``policy`` for the body, then restore the previous one."""
    import keras

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def random_batch(size, num_classes, batch, seed=0):
    """A reproducible random batch: float32 images ``(B, H, W, C)``, int32 labels ``(B, H, W)``.

    Example:
        >>> images, labels = random_batch((4, 4, 1), 3, 2)
        >>> images.shape, labels.shape, int(labels.max()) < 3
        ((2, 4, 4, 1), (2, 4, 4), True)
    """
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(batch,) + tuple(size)).astype("float32")
    labels = rng.integers(0, max(2, num_classes), size=(batch,) + tuple(size[:2])).astype("int32")
    return images, labels


def compile_like_trainer(model, num_classes, jit_compile=False, loss="dice_ce",
                         optimizer=None):
    """Compile ``model`` with the training recipe's optimizer, loss and Dice metric.

    Args:
        model: a Keras model.
        num_classes: output classes.
        jit_compile: passed to ``model.compile`` (``kerasseg train`` leaves Keras'
            default ``"auto"``, which is ``False`` on a CPU-only machine).
        loss: a :func:`kerasseg.training.recipe.make_loss` name.
        optimizer: an optimizer to use instead of the recipe's AdamW.

    Returns:
        ``model``.
    """
    from kerasseg.training import recipe

    if optimizer is None:
        optimizer = recipe.make_optimizer(recipe.make_schedule("cosine", 1e-3, 1000), 1e-4)
    model.compile(
        optimizer=optimizer,
        loss=recipe.make_loss(loss, num_classes),
        metrics=[recipe.make_metric(num_classes)],
        jit_compile=jit_compile,
    )
    return model


def measure_training(family, size, num_classes, batch, steps, warmup=1, options=None,
                     jit_compile=False, policy="float32", seed=0):
    """Train ``steps + warmup`` steps on one random batch and time the last ``steps``.

    Args:
        family: a model family name (``kerasseg.build``).
        size: ``(H, W, C)``.
        num_classes: output classes.
        batch: images per step.
        steps: timed steps.
        warmup: untimed steps first (the first one traces and compiles the step).
        options: family options (e.g. ``{"depth": 4, "base_filters": 32}``).
        jit_compile: compile the step with XLA.
        policy: Keras dtype policy while the model is built (``"mixed_bfloat16"`` ...).
        seed: seed of the weights and of the batch.

    Returns:
        dict with ``family``, ``shape``, ``batch``, ``options``, ``jit_compile``,
        ``policy``, ``forward_gflops`` (one image), ``train_gflops_per_image`` (3x),
        ``step_s_median``, ``step_s_best``, ``images_per_s``, ``gflops_per_s`` and
        ``losses`` (every step's loss, warm-up included).

    Example:
        >>> row = measure_training("unet", (32, 32, 1), 2, batch=2, steps=1,
        ...                        options={"depth": 2, "base_filters": 4})
        >>> len(row["losses"])
        2
    """
    import time

    import keras

    import kerasseg

    options = dict(options or {})
    flops = forward_flops(family, size, num_classes, options)
    keras.utils.set_random_seed(seed)
    with float32_policy(policy):
        model = kerasseg.build(family, input_shape=tuple(size), num_classes=num_classes, **options)
        compile_like_trainer(model, num_classes, jit_compile=jit_compile)
    images, labels = random_batch(size, num_classes, batch, seed=seed)
    losses, times = [], []
    for step in range(warmup + steps):
        start = time.perf_counter()
        logs = model.train_on_batch(images, labels, return_dict=True)
        elapsed = time.perf_counter() - start
        losses.append(float(logs["loss"]))
        if step >= warmup:
            times.append(elapsed)
    summary = summarize_times(times)
    train_per_image = training_flops(flops)
    del model
    keras.backend.clear_session()
    return {
        "family": family,
        "shape": list(size),
        "batch": batch,
        "options": options,
        "jit_compile": bool(jit_compile),
        "policy": policy,
        "forward_gflops": flops / 1e9,
        "train_gflops_per_image": train_per_image / 1e9,
        "step_s_median": summary["median_s"],
        "step_s_best": summary["best_s"],
        "steps": summary["repeats"],
        "images_per_s": batch / summary["median_s"],
        "gflops_per_s": gflops_per_second(train_per_image * batch, summary["median_s"]),
        "losses": losses,
        "threads": thread_settings(),
    }


def thread_settings():
    """TensorFlow's intra- and inter-op thread settings (0: TensorFlow's choice)."""
    import tensorflow as tf

    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
    }


def max_loss_difference(losses, reference):
    """Largest absolute difference between two loss trajectories, step by step.

    Args:
        losses: a trajectory.
        reference: another trajectory (the shorter length is compared).

    Returns:
        A float, or ``None`` if either is empty.

    Example:
        >>> max_loss_difference([1.0, 0.5], [1.0, 0.75, 0.1])
        0.25
    """
    count = min(len(losses or []), len(reference or []))
    if not count:
        return None
    return float(max(abs(a - b) for a, b in zip(losses[:count], reference[:count])))
