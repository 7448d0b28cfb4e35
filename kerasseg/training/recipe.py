"""Choices a training run makes before it starts: patch size, loss, optimizer, schedule."""

import math

import keras

from kerasseg import losses

LOSSES = ("dice_ce", "dice", "ce", "focal", "tversky")
SCHEDULES = ("cosine", "poly", "constant")
MAX_AUTO_PATCH = 256


def _round_up(value, multiple):
    return int(math.ceil(value / multiple) * multiple)


def auto_patch_size(slice_shapes, stride, max_size=MAX_AUTO_PATCH):
    """Choose the training patch size from the slice shapes of a data set.

    Slices no larger than ``max_size`` are used whole, padded to the smallest multiple of
    ``stride`` that holds the largest slice. Larger images are trained on patches of
    ``max_size`` (rounded down to a multiple of ``stride``) and predicted by tiling.

    Args:
        slice_shapes: iterable of ``(height, width)`` of the preprocessed slices.
        stride: the model's total stride (height and width must be multiples of it).
        max_size: the largest patch side.

    Returns:
        ``((patch_h, patch_w), reason)``: the patch size and a sentence for the log.

    Raises:
        ValueError: if ``slice_shapes`` is empty.

    Example:
        >>> auto_patch_size([(35, 51), (40, 48)], stride=8)[0]
        (40, 56)
    """
    shapes = [tuple(int(n) for n in shape) for shape in slice_shapes]
    if not shapes:
        raise ValueError("`slice_shapes` must not be empty.")
    cap = max(stride, (max_size // stride) * stride)
    height = max(shape[0] for shape in shapes)
    width = max(shape[1] for shape in shapes)
    patch = (min(_round_up(height, stride), cap), min(_round_up(width, stride), cap))
    if patch[0] >= height and patch[1] >= width:
        reason = (
            f"slices up to {height}x{width}: whole slices, zero-padded to {patch[0]}x{patch[1]} "
            f"(a multiple of the model stride {stride})"
        )
    else:
        reason = (
            f"slices up to {height}x{width} exceed {cap}: training on {patch[0]}x{patch[1]} "
            "patches (foreground-oversampled); prediction tiles whole images with overlap"
        )
    return patch, reason


def make_loss(name, num_classes):
    """Return the training loss for ``name`` (all from logits).

    Args:
        name: ``"dice_ce"`` (default: soft Dice over the foreground classes plus
            cross-entropy, as nnU-Net), ``"dice"``, ``"ce"``, ``"focal"`` or ``"tversky"``.
        num_classes: number of model outputs.

    Returns:
        A Keras loss.

    Raises:
        ValueError: for an unknown name.

    Example:
        >>> make_loss("dice_ce", 3).name
        'dice_ce_loss'
    """
    if name not in LOSSES:
        raise ValueError(f"`loss` must be one of {list(LOSSES)}. Received: loss={name!r}")
    background = num_classes == 1
    if name == "dice_ce":
        return losses.DiceCELoss(from_logits=True, include_background=background)
    if name == "dice":
        return losses.DiceLoss(from_logits=True, include_background=background)
    if name == "focal":
        return losses.FocalLoss(from_logits=True)
    if name == "tversky":
        return losses.TverskyLoss(from_logits=True, include_background=background)
    if num_classes == 1:
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_metric(num_classes, name="dice"):
    """Return the Dice metric that training reports, on the model's logits.

    A single-output (sigmoid) model is scored as two classes, background and foreground.

    Args:
        num_classes: number of model outputs.
        name: the metric's name in logs and history (``val_`` is prefixed for validation).

    Returns:
        A :class:`kerasseg.metrics.Dice` with ``from_logits=True``.

    Example:
        >>> make_metric(3).num_classes
        3
        >>> make_metric(1).num_classes
        2
    """
    from kerasseg.metrics import Dice

    return Dice(max(2, int(num_classes)), from_logits=True, name=name)


def make_schedule(name, learning_rate, total_steps, warmup_steps=0):
    """Return a learning-rate schedule.

    Args:
        name: ``"cosine"`` (cosine decay to 0, optional linear warm-up), ``"poly"``
            (``(1 - step / total) ** 0.9``, nnU-Net's schedule) or ``"constant"``.
        learning_rate: peak learning rate.
        total_steps: optimizer steps of the whole run.
        warmup_steps: linear warm-up steps (cosine only).

    Returns:
        A ``keras.optimizers.schedules.LearningRateSchedule`` or a float.

    Raises:
        ValueError: for an unknown name or a non-positive learning rate.

    Example:
        >>> float(make_schedule("poly", 0.01, 100)(50)) < 0.01
        True
    """
    if name not in SCHEDULES:
        raise ValueError(f"`schedule` must be one of {list(SCHEDULES)}. Received: schedule={name!r}")
    if not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={learning_rate!r}")
    total_steps = max(1, int(total_steps))
    if name == "constant":
        return float(learning_rate)
    if name == "poly":
        return keras.optimizers.schedules.PolynomialDecay(
            learning_rate, total_steps, end_learning_rate=0.0, power=0.9
        )
    warmup_steps = min(int(warmup_steps), total_steps - 1)
    if warmup_steps > 0:
        return keras.optimizers.schedules.CosineDecay(
            0.0, max(1, total_steps - warmup_steps), warmup_target=learning_rate,
            warmup_steps=warmup_steps,
        )
    return keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)


def make_optimizer(schedule, weight_decay=1e-4, clipnorm=12.0):
    """AdamW with the given schedule, weight decay and gradient-norm clipping.

    Args:
        schedule: a learning rate or schedule (see :func:`make_schedule`).
        weight_decay: decoupled weight decay.
        clipnorm: per-variable gradient norm clip (``None`` to disable).

    Returns:
        A ``keras.optimizers.AdamW``.
    """
    return keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=weight_decay, clipnorm=clipnorm
    )
