"""Segmentation losses: soft Dice, Dice + cross-entropy, focal and Tversky.

All losses take model outputs ``y_pred`` of shape ``(B, *spatial, K)`` (``(B, H, W, K)`` for
2-D models, ``(B, D, H, W, K)`` for 3-D ones), either logits (``from_logits=True``) or
probabilities: softmax over the ``K`` classes when ``K > 1``, a sigmoid when ``K == 1``
(binary segmentation) or when ``multilabel=True`` (independent, possibly overlapping
labels).

``y_true`` is either a label map of class indices, ``(B, *spatial)`` or ``(B, *spatial, 1)``,
or a one-hot (or soft) encoding ``(B, *spatial, K)``. The rule: when ``y_true`` has the rank of
``y_pred``, its last axis is ``K`` and ``K > 1``, it is taken as one-hot; otherwise a trailing
axis of 1 is dropped and the class indices are one-hot encoded. For ``K == 1`` ``y_true`` is
the binary mask itself. With ``multilabel=True`` ``y_true`` must be a multi-hot
``(B, *spatial, K)`` array.

Every loss returns one value per sample before Keras' own ``reduction`` (default
``"sum_over_batch_size"``, the batch mean), so ``reduction="none"`` gives per-sample losses as
custom and distributed training loops expect. The computations use :mod:`keras.ops` only and
run on the TensorFlow, JAX and PyTorch backends.

Example:
    >>> import kerasseg
    >>> model = kerasseg.build("unet", input_shape=(32, 32, 1), num_classes=3, depth=1)
    >>> model.compile(optimizer="adam", loss=kerasseg.losses.DiceCELoss(from_logits=True))
"""

import math

import keras
from keras import ops

__all__ = ["DiceLoss", "DiceCELoss", "FocalLoss", "TverskyLoss"]

_DICE_REDUCTIONS = ("batch", "sample")
_KERAS_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)
_EPSILON = 1e-7


# ----------------------------------------------------------------------------- validation


def _check_number(name, value, low=None, high=None, low_inclusive=True, allow_none=False):
    """Return ``value`` as float after checking it is a finite number within bounds."""
    if value is None and allow_none:
        return None
    bounds = []
    if low is not None:
        bounds.append(f"{'>=' if low_inclusive else '>'} {low}")
    if high is not None:
        bounds.append(f"<= {high}")
    expected = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    value = float(value)
    bad = not math.isfinite(value)
    if low is not None:
        bad = bad or (value < low if low_inclusive else value <= low)
    if high is not None:
        bad = bad or value > high
    if bad:
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    return value


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be one of [True, False]. Received: {name}={value!r}")
    return value


def _check_class_weights(name, weights):
    """Return a tuple of non-negative floats with a positive sum, or None."""
    if weights is None:
        return None
    try:
        values = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be None or a sequence of non-negative numbers, one per class. "
            f"Received: {name}={weights!r}"
        ) from None
    if not values or any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise ValueError(
            f"`{name}` must be None or a non-empty sequence of finite non-negative numbers "
            f"with a positive sum, one per class. Received: {name}={weights!r}"
        )
    return values


def _check_dice_reduction(value):
    if value not in _DICE_REDUCTIONS:
        raise ValueError(
            f"`dice_reduction` must be one of {list(_DICE_REDUCTIONS)}. "
            f"Received: dice_reduction={value!r}"
        )
    return value


def _check_reduction(value):
    """Check Keras' ``reduction`` up front, pointing Dice users to ``dice_reduction``."""
    if value not in _KERAS_REDUCTIONS:
        hint = ""
        if value in _DICE_REDUCTIONS:
            hint = f" (to compute the Dice per {value}, pass dice_reduction={value!r})"
        raise ValueError(
            f"`reduction` must be one of {list(_KERAS_REDUCTIONS)}{hint}. "
            f"Received: reduction={value!r}"
        )
    return value


# ------------------------------------------------------------------------ tensor helpers


def _num_classes(y_pred):
    """Return the static number of channels ``K`` of ``y_pred``."""
    if len(y_pred.shape) < 3:
        raise ValueError(
            "`y_pred` must have shape (batch, *spatial, classes) with 1 to 3 spatial axes. "
            f"Received: y_pred.shape={tuple(y_pred.shape)}"
        )
    channels = y_pred.shape[-1]
    if channels is None:
        raise ValueError(
            "The last axis of `y_pred` (the classes) must have a static size. "
            f"Received: y_pred.shape={tuple(y_pred.shape)}"
        )
    return int(channels)


def _targets(y_true, y_pred, multilabel):
    """Return ``y_true`` as a float tensor with the shape of ``y_pred``.

    Integer label maps are one-hot encoded; one-hot, soft and multi-hot targets and binary
    masks are passed through.
    """
    k = _num_classes(y_pred)
    rank_pred = len(y_pred.shape)
    rank_true = len(y_true.shape)
    if rank_true == rank_pred and y_true.shape[-1] == k and (k > 1 or multilabel):
        return ops.cast(y_true, y_pred.dtype)
    if multilabel and k > 1:
        raise ValueError(
            "With `multilabel=True`, `y_true` must be a multi-hot array with the shape of "
            f"`y_pred`. Received: y_true.shape={tuple(y_true.shape)}, "
            f"y_pred.shape={tuple(y_pred.shape)}"
        )
    if rank_true == rank_pred:
        if y_true.shape[-1] != 1:
            raise ValueError(
                "`y_true` must be a label map (batch, *spatial) or (batch, *spatial, 1), or a "
                f"one-hot array with {k} channels. Received: y_true.shape="
                f"{tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
            )
        y_true = ops.squeeze(y_true, axis=-1)
    elif rank_true != rank_pred - 1:
        raise ValueError(
            "`y_true` must be a label map (batch, *spatial) or (batch, *spatial, 1), or a "
            f"one-hot array with {k} channels. Received: y_true.shape={tuple(y_true.shape)}, "
            f"y_pred.shape={tuple(y_pred.shape)}"
        )
    if k == 1:
        return ops.expand_dims(ops.cast(y_true, y_pred.dtype), axis=-1)
    labels = ops.cast(ops.round(ops.cast(y_true, "float32")), "int32")
    return ops.one_hot(labels, k, dtype=y_pred.dtype)


def _uses_sigmoid(k, multilabel):
    return k == 1 or multilabel


def _probabilities(y_pred, from_logits, sigmoid):
    if not from_logits:
        return y_pred
    return ops.sigmoid(y_pred) if sigmoid else ops.softmax(y_pred, axis=-1)


def _log_probabilities(y_pred, from_logits, sigmoid):
    """Return ``(log p, log(1 - p))`` for sigmoid outputs, ``(log p, None)`` for softmax."""
    if from_logits:
        if sigmoid:
            return ops.log_sigmoid(y_pred), ops.log_sigmoid(-y_pred)
        return ops.log_softmax(y_pred, axis=-1), None
    p = ops.clip(y_pred, _EPSILON, 1.0 - _EPSILON)
    if sigmoid:
        return ops.log(p), ops.log(1.0 - p)
    return ops.log(p), None


def _spatial_axes(y_pred):
    return tuple(range(1, len(y_pred.shape) - 1))


def _per_sample_ones(y_pred):
    """A ``(B,)`` tensor of ones, to broadcast a batch-level loss to every sample."""
    return ops.ones_like(ops.mean(y_pred, axis=tuple(range(1, len(y_pred.shape)))))


def _class_mask(k, multilabel, include_background):
    """Return the indices of the classes that enter the Dice/Tversky mean."""
    if k == 1 or multilabel or include_background:
        return list(range(k))
    return list(range(1, k))


def _overlap_loss(
    y_true, y_pred, *, from_logits, multilabel, include_background, dice_reduction,
    class_weights, index_fn,
):
    """Shared body of the Dice and Tversky losses: ``1 - weighted mean of index_fn``."""
    k = _num_classes(y_pred)
    target = _targets(y_true, y_pred, multilabel)
    prob = _probabilities(y_pred, from_logits, _uses_sigmoid(k, multilabel))
    classes = _class_mask(k, multilabel, include_background)
    if class_weights is not None and len(class_weights) != k:
        raise ValueError(
            f"`class_weights` must have one value per class ({k} for this `y_pred`). "
            f"Received: class_weights={list(class_weights)}"
        )
    axes = _spatial_axes(y_pred)
    if dice_reduction == "batch":
        axes = (0,) + axes
    tp = ops.sum(target * prob, axis=axes)
    fp = ops.sum((1.0 - target) * prob, axis=axes)
    fn = ops.sum(target * (1.0 - prob), axis=axes)
    index = index_fn(tp, fp, fn)  # (B, K) per sample, (K,) per batch
    weights = [0.0] * k
    for c in classes:
        weights[c] = 1.0 if class_weights is None else class_weights[c]
    total = sum(weights)
    if total <= 0:
        raise ValueError(
            "`class_weights` must give a positive weight to at least one scored class. "
            f"Received: class_weights={list(class_weights)}, scored classes={classes}"
        )
    weights = ops.convert_to_tensor([w / total for w in weights], dtype=index.dtype)
    loss = ops.sum((1.0 - index) * weights, axis=-1)
    if dice_reduction == "batch":
        loss = loss * _per_sample_ones(y_pred)
    return loss


def _modulating_factor(log_p, gamma):
    """``(1 - p)^gamma``, with ``1 - p`` kept >= 1e-7 so that the gradient stays finite."""
    return ops.power(ops.maximum(1.0 - ops.exp(log_p), _EPSILON), gamma)


def _cross_entropy(y_true, y_pred, *, from_logits, multilabel, gamma=0.0, alpha=None):
    """Per-sample (focal) cross-entropy, averaged over voxels (and channels for sigmoid)."""
    k = _num_classes(y_pred)
    sigmoid = _uses_sigmoid(k, multilabel)
    target = _targets(y_true, y_pred, multilabel)
    log_p, log_not_p = _log_probabilities(y_pred, from_logits, sigmoid)
    if alpha is not None and not isinstance(alpha, float) and len(alpha) != k:
        raise ValueError(
            f"`alpha` must be a number or have one value per class ({k} for this `y_pred`). "
            f"Received: alpha={list(alpha)}"
        )
    if alpha is not None:
        alpha = ops.convert_to_tensor(alpha, dtype=y_pred.dtype)
    if sigmoid:
        pos = -target * log_p
        neg = -(1.0 - target) * log_not_p
        if gamma:
            pos = pos * _modulating_factor(log_p, gamma)
            neg = neg * _modulating_factor(log_not_p, gamma)
        if alpha is not None:
            pos = alpha * pos
            neg = (1.0 - alpha) * neg
        per_voxel = ops.mean(pos + neg, axis=-1)
    else:
        terms = -target * log_p
        if gamma:
            terms = terms * _modulating_factor(log_p, gamma)
        if alpha is not None:
            terms = alpha * terms
        per_voxel = ops.sum(terms, axis=-1)
    return ops.mean(per_voxel, axis=_spatial_axes(y_pred))


def _dice_index(smooth):
    def index(tp, fp, fn):
        return (2.0 * tp + smooth) / (2.0 * tp + fp + fn + smooth)

    return index


def _tversky_index(alpha, beta, smooth):
    def index(tp, fp, fn):
        return (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)

    return index


def _dtype_name(loss):
    return loss._dtype_policy.name


# ---------------------------------------------------------------------------------- losses


class _OverlapLoss(keras.losses.Loss):
    """Options and computation shared by the soft-overlap losses (Dice, Tversky, Dice+CE)."""

    def __init__(self, include_background, from_logits, smooth, dice_reduction,
                 class_weights, multilabel, reduction, name, dtype):
        super().__init__(name=name, reduction=_check_reduction(reduction), dtype=dtype)
        self.include_background = _check_bool("include_background", include_background)
        self.from_logits = _check_bool("from_logits", from_logits)
        self.smooth = _check_number("smooth", smooth, low=0.0)
        self.dice_reduction = _check_dice_reduction(dice_reduction)
        self.class_weights = _check_class_weights("class_weights", class_weights)
        self.multilabel = _check_bool("multilabel", multilabel)

    def _overlap(self, y_true, y_pred, index_fn):
        return _overlap_loss(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            multilabel=self.multilabel,
            include_background=self.include_background,
            dice_reduction=self.dice_reduction,
            class_weights=self.class_weights,
            index_fn=index_fn,
        )

    def get_config(self):
        return {
            "include_background": self.include_background,
            "from_logits": self.from_logits,
            "smooth": self.smooth,
            "dice_reduction": self.dice_reduction,
            "class_weights": None if self.class_weights is None else list(self.class_weights),
            "multilabel": self.multilabel,
            "reduction": self.reduction,
            "name": self.name,
            "dtype": _dtype_name(self),
        }


@keras.saving.register_keras_serializable(package="kerasseg")
class DiceLoss(_OverlapLoss):
    """Soft Dice loss, ``1 - mean over classes of (2 TP + s) / (2 TP + FP + FN + s)``.

    With probabilities ``p`` and one-hot targets ``t``, the soft counts are
    ``TP = sum(p t)``, ``FP = sum(p (1 - t))`` and ``FN = sum((1 - p) t)``, summed over the
    spatial axes of each sample (``dice_reduction="sample"``) or over the whole batch as well
    (``dice_reduction="batch"``, nnU-Net's "batch dice").

    Empty masks: a class absent from both the target and the prediction scores
    ``(0 + s) / (0 + s) = 1`` through the ``smooth`` term ``s``, so it contributes a loss of 0;
    it is not excluded from the mean. A class absent from the target but predicted with total
    probability ``P`` scores ``s / (P + s)``, i.e. close to a loss of 1 for the default
    ``s = 1e-5``.

    Args:
        include_background: whether class 0 enters the mean over classes. Ignored (all
            channels are scored) for one-channel sigmoid outputs and for ``multilabel=True``.
        from_logits: whether ``y_pred`` holds logits; softmax (or sigmoid, see above) is then
            applied first.
        smooth: non-negative constant added to the numerator and denominator.
        dice_reduction: ``"batch"`` (default) computes each class' Dice from counts summed over
            the whole batch, one value shared by every sample; this is stable when a class is
            missing from many images of a batch (2-D slices of 3-D structures) and is what
            nnU-Net uses for 2-D training. ``"sample"`` computes the Dice of each sample and
            gives per-sample losses, so that ``sample_weight`` weighs images individually. In
            ``"batch"`` mode a ``sample_weight`` only scales the batch loss.
        class_weights: optional sequence of ``K`` non-negative weights for the mean over
            classes (the background weight is ignored when it is excluded).
        multilabel: sigmoid outputs with independent labels, ``y_true`` multi-hot.
        reduction: Keras' reduction of the per-sample losses (``"sum_over_batch_size"``,
            ``"sum"``, ``"mean"``, ``"mean_with_sample_weight"``, ``"none"`` or ``None``).
        name: name of the loss.
        dtype: dtype of the loss computations (default: ``keras.backend.floatx()``).

    Returns:
        Calling the loss returns the reduced loss (a scalar, or ``(B,)`` with
        ``reduction="none"``).

    Raises:
        ValueError: for an invalid option, or when ``y_true``/``y_pred`` shapes do not fit.

    Example:
        >>> labels = np.array([[[0, 1], [1, 1]]])  # (B, H, W) class indices
        >>> logits = np.array([[[[4.0, -4.0], [-4.0, 4.0]],  # (B, H, W, K)
        ...                     [[4.0, -4.0], [-4.0, 4.0]]]])
        >>> loss = DiceLoss(include_background=False, from_logits=True)
        >>> float(loss(labels, logits))  # one of the three class-1 pixels missed: Dice 0.8
        0.2001
    """

    def __init__(
        self,
        include_background=True,
        from_logits=False,
        smooth=1e-5,
        dice_reduction="batch",
        class_weights=None,
        multilabel=False,
        reduction="sum_over_batch_size",
        name="dice_loss",
        dtype=None,
    ):
        super().__init__(include_background, from_logits, smooth, dice_reduction, class_weights,
                         multilabel, reduction, name, dtype)

    def call(self, y_true, y_pred):
        return self._overlap(y_true, y_pred, _dice_index(self.smooth))


@keras.saving.register_keras_serializable(package="kerasseg")
class TverskyLoss(_OverlapLoss):
    """Tversky loss (Salehi et al. 2017), ``1 - mean of (TP + s) / (TP + a FP + b FN + s)``.

    ``alpha`` weighs false positives and ``beta`` false negatives; ``beta > alpha`` favours
    recall of small structures. With ``alpha = beta = 0.5`` and smooth ``s`` this equals
    :class:`DiceLoss` with smooth ``2 s`` (``(2TP + 2s) / (2TP + FP + FN + 2s)``).

    The soft counts, the class selection, ``dice_reduction`` and the handling of empty masks
    (a class absent from target and prediction scores 1, loss 0, through ``smooth``) are those
    of :class:`DiceLoss`.

    Args:
        alpha: non-negative weight of false positives.
        beta: non-negative weight of false negatives; ``alpha + beta`` must be positive.
        include_background: whether class 0 enters the mean over classes.
        from_logits: whether ``y_pred`` holds logits.
        smooth: non-negative constant added to the numerator and denominator.
        dice_reduction: ``"batch"`` (default) or ``"sample"``, as in :class:`DiceLoss`.
        class_weights: optional sequence of ``K`` non-negative weights.
        multilabel: sigmoid outputs with independent labels.
        reduction: Keras' reduction of the per-sample losses.
        name: name of the loss.
        dtype: dtype of the loss computations.

    Returns:
        Calling the loss returns the reduced loss.

    Raises:
        ValueError: for an invalid option (e.g. ``alpha + beta <= 0``) or unfit shapes.

    Example:
        >>> labels = np.array([[[0, 1], [1, 1]]])
        >>> probabilities = np.array([[[[0.9, 0.1], [0.2, 0.8]],
        ...                            [[0.6, 0.4], [0.1, 0.9]]]])
        >>> loss = TverskyLoss(alpha=0.3, beta=0.7, include_background=False)
        >>> float(loss(labels, probabilities))
        0.2391
    """

    def __init__(
        self,
        alpha=0.3,
        beta=0.7,
        include_background=True,
        from_logits=False,
        smooth=1e-5,
        dice_reduction="batch",
        class_weights=None,
        multilabel=False,
        reduction="sum_over_batch_size",
        name="tversky_loss",
        dtype=None,
    ):
        super().__init__(include_background, from_logits, smooth, dice_reduction, class_weights,
                         multilabel, reduction, name, dtype)
        self.alpha = _check_number("alpha", alpha, low=0.0)
        self.beta = _check_number("beta", beta, low=0.0)
        if self.alpha + self.beta <= 0:
            raise ValueError(
                "`alpha` + `beta` must be > 0. "
                f"Received: alpha={self.alpha!r}, beta={self.beta!r}"
            )

    def call(self, y_true, y_pred):
        return self._overlap(y_true, y_pred, _tversky_index(self.alpha, self.beta, self.smooth))

    def get_config(self):
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "beta": self.beta,
        }


def _check_alpha(alpha):
    """Focal ``alpha``: None, a number in [0, 1], or one non-negative number per class."""
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        return _check_number("alpha", alpha, low=0.0, high=1.0)
    try:
        values = tuple(float(a) for a in alpha)
    except (TypeError, ValueError):
        values = ()
    if not values or any(not math.isfinite(a) or a < 0 for a in values):
        raise ValueError(
            "`alpha` must be None, a number in [0, 1] or a sequence of non-negative numbers, "
            f"one per class. Received: alpha={alpha!r}"
        )
    return values


@keras.saving.register_keras_serializable(package="kerasseg")
class FocalLoss(keras.losses.Loss):
    """Focal loss (Lin et al. 2017), ``-alpha_t (1 - p_t)^gamma log(p_t)``, mean over voxels.

    For softmax outputs (``K > 1``) each voxel's loss is
    ``-sum_c alpha_c t_c (1 - p_c)^gamma log(p_c)``; for sigmoid outputs (``K == 1`` or
    ``multilabel=True``) each channel is a binary problem with
    ``alpha_t = alpha`` for positives and ``1 - alpha`` for negatives, averaged over channels.
    With ``gamma=0`` and ``alpha=None`` this is the (binary) cross-entropy. All classes,
    background included, enter the loss.

    Args:
        gamma: focusing parameter, ``>= 0`` (Lin et al. use 2).
        alpha: class balance. ``None`` (no weighting, the default), a number in ``[0, 1]``
            (for sigmoid outputs the positive-class weight, Lin et al. use 0.25; for softmax
            outputs a common factor) or a sequence of ``K`` non-negative per-class weights.
        from_logits: whether ``y_pred`` holds logits.
        multilabel: sigmoid outputs with independent labels.
        reduction: Keras' reduction of the per-sample losses.
        name: name of the loss.
        dtype: dtype of the loss computations.

    Returns:
        Calling the loss returns the reduced loss.

    Raises:
        ValueError: for an invalid option (e.g. ``gamma < 0``) or unfit shapes.

    Example:
        >>> masks = np.array([[[[0], [1]], [[1], [1]]]])  # binary masks (B, H, W, 1)
        >>> logits = np.array([[[[-3.0], [3.0]], [[-1.0], [2.0]]]])  # (B, H, W, 1)
        >>> loss = FocalLoss(gamma=2.0, alpha=0.25, from_logits=True)
        >>> float(loss(masks, logits))
        0.0440
    """

    def __init__(
        self,
        gamma=2.0,
        alpha=None,
        from_logits=False,
        multilabel=False,
        reduction="sum_over_batch_size",
        name="focal_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=_check_reduction(reduction), dtype=dtype)
        self.gamma = _check_number("gamma", gamma, low=0.0)
        self.alpha = _check_alpha(alpha)
        self.from_logits = _check_bool("from_logits", from_logits)
        self.multilabel = _check_bool("multilabel", multilabel)

    def call(self, y_true, y_pred):
        return _cross_entropy(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            multilabel=self.multilabel,
            gamma=self.gamma,
            alpha=self.alpha,
        )

    def get_config(self):
        return {
            "gamma": self.gamma,
            "alpha": self.alpha if not isinstance(self.alpha, tuple) else list(self.alpha),
            "from_logits": self.from_logits,
            "multilabel": self.multilabel,
            "reduction": self.reduction,
            "name": self.name,
            "dtype": _dtype_name(self),
        }


@keras.saving.register_keras_serializable(package="kerasseg")
class DiceCELoss(_OverlapLoss):
    """``dice_weight * Dice loss + ce_weight * cross-entropy``, the nnU-Net training loss.

    The Dice term is :class:`DiceLoss` with the same options; the cross-entropy term is the
    softmax cross-entropy (binary cross-entropy for ``K == 1`` or ``multilabel=True``)
    averaged over voxels, over all classes including the background. ``class_weights``
    applies to the Dice term only.

    Args:
        dice_weight: non-negative weight of the Dice term.
        ce_weight: non-negative weight of the cross-entropy term; the two must not both be 0.
        include_background: whether class 0 enters the Dice mean.
        from_logits: whether ``y_pred`` holds logits.
        smooth: non-negative Dice smoothing constant.
        dice_reduction: ``"batch"`` (default) or ``"sample"``, as in :class:`DiceLoss`.
        class_weights: optional ``K`` weights of the Dice mean over classes.
        multilabel: sigmoid outputs with independent labels.
        reduction: Keras' reduction of the per-sample losses.
        name: name of the loss.
        dtype: dtype of the loss computations.

    Returns:
        Calling the loss returns the reduced loss.

    Raises:
        ValueError: for an invalid option or unfit shapes.

    Example:
        >>> labels = np.array([[[0, 1], [1, 1]]])
        >>> logits = np.array([[[[4.0, -4.0], [-4.0, 4.0]],
        ...                     [[4.0, -4.0], [-4.0, 4.0]]]])
        >>> loss = DiceCELoss(include_background=False, from_logits=True)
        >>> float(loss(labels, logits))  # Dice loss 0.2 + cross-entropy 8 / 4 pixels
        2.2005
    """

    def __init__(
        self,
        dice_weight=1.0,
        ce_weight=1.0,
        include_background=True,
        from_logits=False,
        smooth=1e-5,
        dice_reduction="batch",
        class_weights=None,
        multilabel=False,
        reduction="sum_over_batch_size",
        name="dice_ce_loss",
        dtype=None,
    ):
        super().__init__(include_background, from_logits, smooth, dice_reduction, class_weights,
                         multilabel, reduction, name, dtype)
        self.dice_weight = _check_number("dice_weight", dice_weight, low=0.0)
        self.ce_weight = _check_number("ce_weight", ce_weight, low=0.0)
        if self.dice_weight + self.ce_weight <= 0:
            raise ValueError(
                "`dice_weight` + `ce_weight` must be > 0. "
                f"Received: dice_weight={self.dice_weight!r}, ce_weight={self.ce_weight!r}"
            )

    def call(self, y_true, y_pred):
        dice = self._overlap(y_true, y_pred, _dice_index(self.smooth))
        ce = _cross_entropy(
            y_true, y_pred, from_logits=self.from_logits, multilabel=self.multilabel
        )
        return self.dice_weight * dice + self.ce_weight * ce

    def get_config(self):
        return {
            **super().get_config(),
            "dice_weight": self.dice_weight,
            "ce_weight": self.ce_weight,
        }
