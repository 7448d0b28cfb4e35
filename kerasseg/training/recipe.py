"""Choices a training run makes before it starts: loss, metric, optimizer, schedule."""

import keras

from kerasseg import losses

LOSSES = ("dice_ce", "dice", "ce", "focal", "tversky")
SCHEDULES = ("cosine", "poly", "constant")


@keras.saving.register_keras_serializable(package="kerasseg")
class OneHotTargetsLoss(keras.losses.Loss):
    """A per-channel (multilabel) loss trained on label maps of exclusive classes.

    A model with sigmoid outputs over ``K > 1`` channels gives each class its own
    probability; its loss scores every channel as a binary problem (class ``c`` against
    the rest). The wrapped loss takes multi-hot targets, so this one-hot encodes the label
    map ``(B, *spatial)`` (or ``(B, *spatial, 1)``) first.

    Args:
        loss: a :mod:`kerasseg.losses` loss built with ``multilabel=True`` (or its
            serialized config).
        num_classes: the number of output channels ``K``.
        reduction: Keras' reduction of the per-sample values.
        name: the loss's name (default: the wrapped loss's).
        dtype: the loss's dtype.

    Example:
        >>> from kerasseg import losses
        >>> loss = OneHotTargetsLoss(losses.DiceLoss(multilabel=True), 3)
    """

    def __init__(self, loss, num_classes, reduction="sum_over_batch_size", name=None,
                 dtype=None):
        if isinstance(loss, dict):
            loss = keras.losses.deserialize(loss)
        super().__init__(name=name or loss.name, reduction=reduction, dtype=dtype)
        self.loss = loss
        self.num_classes = int(num_classes)

    def call(self, y_true, y_pred):
        y_true = keras.ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = keras.ops.squeeze(y_true, axis=-1)
        labels = keras.ops.cast(keras.ops.round(keras.ops.cast(y_true, "float32")), "int32")
        return self.loss.call(keras.ops.one_hot(labels, self.num_classes, dtype=y_pred.dtype),
                              y_pred)

    def get_config(self):
        return {**super().get_config(), "loss": keras.losses.serialize(self.loss),
                "num_classes": self.num_classes}


def make_loss(name, num_classes, output_activation="logits"):
    """Return the training loss for ``name``, in the form the model's outputs need.

    Args:
        name: ``"dice_ce"`` (default: soft Dice over the foreground classes plus
            cross-entropy, as nnU-Net), ``"dice"``, ``"ce"``, ``"focal"`` or ``"tversky"``.
        num_classes: number of model outputs ``K``.
        output_activation: what the model outputs (:func:`kerasseg.models.output_activation`):
            ``"logits"`` (the losses apply softmax, or sigmoid for ``K == 1``, themselves:
            ``from_logits=True``), ``"softmax"`` (probabilities over the ``K`` classes) or
            ``"sigmoid"`` (a probability per channel: for ``K == 1`` the binary forms, for
            ``K > 1`` each class scored against the rest with binary cross-entropy terms
            and a soft Dice over every channel, see :class:`OneHotTargetsLoss`).

    Returns:
        A Keras loss.

    Raises:
        ValueError: for an unknown name or output activation, or softmax over one output.

    Example:
        >>> make_loss("dice_ce", 3).name
        'dice_ce_loss'
        >>> make_loss("ce", 3, "softmax").get_config()["from_logits"]
        False
    """
    from kerasseg.models.blocks import check_output_activation

    if name not in LOSSES:
        raise ValueError(f"`loss` must be one of {list(LOSSES)}. Received: loss={name!r}")
    check_output_activation(output_activation, num_classes)
    from_logits = output_activation == "logits"
    if output_activation == "sigmoid" and num_classes > 1:
        inner = {
            "dice_ce": lambda: losses.DiceCELoss(multilabel=True),
            "dice": lambda: losses.DiceLoss(multilabel=True),
            "focal": lambda: losses.FocalLoss(multilabel=True),
            "tversky": lambda: losses.TverskyLoss(multilabel=True),
            "ce": lambda: losses.FocalLoss(gamma=0.0, multilabel=True, name="ce_loss"),
        }[name]()
        return OneHotTargetsLoss(inner, num_classes)
    background = num_classes == 1
    if name == "dice_ce":
        return losses.DiceCELoss(from_logits=from_logits, include_background=background)
    if name == "dice":
        return losses.DiceLoss(from_logits=from_logits, include_background=background)
    if name == "focal":
        return losses.FocalLoss(from_logits=from_logits)
    if name == "tversky":
        return losses.TverskyLoss(from_logits=from_logits, include_background=background)
    if num_classes == 1:
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def make_metric(num_classes, name="dice", output_activation="logits"):
    """Return the Dice metric that training reports, on the model's outputs.

    A single-output (sigmoid) model is scored as two classes, background and foreground.

    Args:
        num_classes: number of model outputs.
        name: the metric's name in logs and history (``val_`` is prefixed for validation).
        output_activation: what the model outputs, as in :func:`make_loss`; the metric
            takes ``from_logits=True`` only for logits (it matters for the 0.5 threshold of
            one output; ``K > 1`` outputs are scored by their argmax).

    Returns:
        A :class:`kerasseg.metrics.Dice`.

    Raises:
        ValueError: for an unknown output activation, or softmax over one output.

    Example:
        >>> make_metric(3).num_classes
        3
        >>> make_metric(1, output_activation="sigmoid").from_logits
        False
    """
    from kerasseg.metrics import Dice
    from kerasseg.models.blocks import check_output_activation

    check_output_activation(output_activation, num_classes)
    return Dice(max(2, int(num_classes)), from_logits=output_activation == "logits", name=name)


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
