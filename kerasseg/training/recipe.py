"""Choices a training run makes before it starts: loss, metric, optimizer, schedule."""

import keras

from kerasseg import losses

LOSSES = ("dice_ce", "dice", "ce", "focal", "tversky")
SCHEDULES = ("cosine", "poly", "constant")


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
