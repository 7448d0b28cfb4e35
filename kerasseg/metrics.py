"""Streaming segmentation metrics for Keras, and the per-case NumPy evaluation functions.

:class:`Dice`, :class:`Jaccard`, :class:`Sensitivity` and :class:`Specificity` are
``keras.metrics.Metric`` objects for ``model.compile(metrics=[...])``. They turn predictions
into hard labels (argmax over the ``K`` classes; a 0.5 threshold for one-channel sigmoid
outputs and for ``multilabel=True``), accumulate true/false positive/negative voxel counts
per class over every batch seen since the last reset (micro-averaging over voxels, not a mean
of per-batch values), and score each class from those counts.

A class absent from both the ground truth and the predictions over the whole stream has a
zero denominator: its score is NaN in :meth:`per_class` and it is left out of the mean that
:meth:`result` returns (NaN when every class is left out). The same rule holds in the NumPy
functions re-exported here from :mod:`kerasseg.evaluation` (:func:`dice`, :func:`jaccard`,
:func:`sensitivity`, :func:`specificity`, :func:`hausdorff_distance`,
:func:`average_surface_distance`, :func:`evaluate_case`).

Example:
    >>> import kerasseg
    >>> model = kerasseg.build("unet", input_shape=(32, 32, 1), num_classes=3, depth=1)
    >>> model.compile(optimizer="adam", loss=kerasseg.losses.DiceCELoss(from_logits=True),
    ...               metrics=[kerasseg.metrics.Dice(num_classes=3, from_logits=True)])
"""

import keras
from keras import ops

from kerasseg.evaluation import (
    average_surface_distance,
    dice,
    evaluate_case,
    hausdorff_distance,
    jaccard,
    sensitivity,
    specificity,
)

__all__ = [
    "Dice",
    "Jaccard",
    "Sensitivity",
    "Specificity",
    "dice",
    "jaccard",
    "sensitivity",
    "specificity",
    "hausdorff_distance",
    "average_surface_distance",
    "evaluate_case",
]


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be one of [True, False]. Received: {name}={value!r}")
    return value


class _ConfusionMetric(keras.metrics.Metric):
    """Per-class voxel confusion counts accumulated over batches; subclasses score them."""

    def __init__(
        self,
        num_classes,
        class_id=None,
        include_background=False,
        from_logits=False,
        threshold=0.5,
        multilabel=False,
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                "`num_classes` must be an integer >= 2 (a one-channel sigmoid model has 2 "
                f"classes, 0 and 1). Received: num_classes={num_classes!r}"
            )
        self.multilabel = _check_bool("multilabel", multilabel)
        if class_id is not None and (
            isinstance(class_id, bool)
            or not isinstance(class_id, int)
            or not 0 <= class_id < num_classes
        ):
            raise ValueError(
                f"`class_id` must be None or an integer in [0, {num_classes}). "
                f"Received: class_id={class_id!r}"
            )
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
            0.0 < threshold < 1.0
        ):
            raise ValueError(
                f"`threshold` must be a number in (0, 1). Received: threshold={threshold!r}"
            )
        self.num_classes = num_classes
        self.class_id = class_id
        self.include_background = _check_bool("include_background", include_background)
        self.from_logits = _check_bool("from_logits", from_logits)
        self.threshold = float(threshold)
        self.tp = self.add_weight(shape=(num_classes,), initializer="zeros", name="tp")
        self.fp = self.add_weight(shape=(num_classes,), initializer="zeros", name="fp")
        self.fn = self.add_weight(shape=(num_classes,), initializer="zeros", name="fn")
        self.tn = self.add_weight(shape=(num_classes,), initializer="zeros", name="tn")

    # -- conversion of a batch into one-hot hard labels

    def _hard_predictions(self, y_pred):
        channels = y_pred.shape[-1]
        if self.multilabel:
            expected = self.num_classes
        else:
            expected = 1 if self.num_classes == 2 and channels == 1 else self.num_classes
        if len(y_pred.shape) < 3 or channels != expected:
            raise ValueError(
                f"`y_pred` must have shape (batch, *spatial, {expected}) for "
                f"num_classes={self.num_classes}. Received: y_pred.shape={tuple(y_pred.shape)}"
            )
        y_pred = ops.convert_to_tensor(y_pred)
        if channels == 1 or self.multilabel:
            prob = ops.sigmoid(y_pred) if self.from_logits else y_pred
            positive = ops.cast(prob > self.threshold, "float32")
            if self.multilabel:
                return positive
            return ops.concatenate([1.0 - positive, positive], axis=-1)
        return ops.one_hot(ops.argmax(y_pred, axis=-1), self.num_classes, dtype="float32")

    def _hard_targets(self, y_true, y_pred):
        """Return ``(one-hot targets, voxel validity)`` for a batch."""
        rank_pred = len(y_pred.shape)
        channels = y_pred.shape[-1]
        # As float32 once, whatever the label dtype (integer masks compare with 0.5 too).
        y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
        if len(y_true.shape) == rank_pred and y_true.shape[-1] == channels and channels > 1:
            if self.multilabel:
                return ops.cast(y_true > 0.5, "float32"), None
            labels = ops.argmax(y_true, axis=-1)
            return ops.one_hot(labels, self.num_classes, dtype="float32"), None
        if self.multilabel:
            raise ValueError(
                "With `multilabel=True`, `y_true` must be a multi-hot array with the shape of "
                f"`y_pred`. Received: y_true.shape={tuple(y_true.shape)}, "
                f"y_pred.shape={tuple(y_pred.shape)}"
            )
        if len(y_true.shape) == rank_pred and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        if len(y_true.shape) != rank_pred - 1:
            raise ValueError(
                "`y_true` must be a label map (batch, *spatial) or (batch, *spatial, 1), or a "
                f"one-hot array with {channels} channels. Received: "
                f"y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
            )
        if channels == 1:
            labels = ops.cast(y_true > 0.5, "int32")
        else:
            labels = ops.cast(ops.round(y_true), "int32")
        valid = ops.cast(
            ops.logical_and(labels >= 0, labels < self.num_classes), "float32"
        )
        return ops.one_hot(labels, self.num_classes, dtype="float32"), valid

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add the voxel counts of one batch.

        Args:
            y_true: label map ``(B, *spatial)``/``(B, *spatial, 1)``, or one-hot
                ``(B, *spatial, K)`` (multi-hot with ``multilabel=True``). Integer labels
                outside ``[0, num_classes)`` (e.g. an "ignore" value 255) are not counted.
            y_pred: model outputs ``(B, *spatial, K)`` (``K == 1`` for a sigmoid model with
                ``num_classes=2``).
            sample_weight: optional weights broadcastable to ``(B, *spatial)``, e.g. ``(B,)``.

        Raises:
            ValueError: if the shapes do not fit ``num_classes``.
        """
        self.add_counts(*self.batch_counts(y_true, y_pred, sample_weight))

    def batch_counts(self, y_true, y_pred, sample_weight=None):
        """Return the per-class voxel counts of one batch, without adding them.

        A distributed loop sums these over replicas and passes the sums to
        :meth:`add_counts`.

        Args:
            y_true, y_pred, sample_weight: as for :meth:`update_state`.

        Returns:
            ``(tp, fp, fn, tn)``, four float tensors of shape ``(num_classes,)``.

        Raises:
            ValueError: if the shapes do not fit ``num_classes``.

        Example:
            >>> labels = np.array([[[0, 1, 2], [0, 1, 1]]])
            >>> probabilities = np.eye(3)[[[[0, 1, 1], [0, 1, 2]]]]
            >>> metric = Dice(num_classes=3)
            >>> tp, fp, fn, tn = metric.batch_counts(labels, probabilities)
            >>> tp.numpy().tolist(), fp.numpy().tolist(), fn.numpy().tolist()
            ([2.0, 2.0, 0.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0])
        """
        pred = self._hard_predictions(y_pred)
        true, valid = self._hard_targets(y_true, y_pred)
        weight = valid
        if sample_weight is not None:
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            voxel_rank = len(y_pred.shape) - 1
            if len(sample_weight.shape) == voxel_rank + 1 and sample_weight.shape[-1] == 1:
                sample_weight = ops.squeeze(sample_weight, axis=-1)
            while len(sample_weight.shape) < voxel_rank:
                sample_weight = ops.expand_dims(sample_weight, axis=-1)
            sample_weight = ops.broadcast_to(sample_weight, ops.shape(pred)[:-1])
            weight = sample_weight if weight is None else weight * sample_weight
        if weight is not None:
            weight = ops.expand_dims(weight, axis=-1)
            negatives = (1.0 - true) * weight
            true = true * weight
        else:
            negatives = 1.0 - true
        axes = tuple(range(len(pred.shape) - 1))
        tp = ops.sum(true * pred, axis=axes)
        fn = ops.sum(true * (1.0 - pred), axis=axes)
        fp = ops.sum(negatives * pred, axis=axes)
        tn = ops.sum(negatives * (1.0 - pred), axis=axes)
        return tp, fp, fn, tn

    def add_counts(self, tp, fp, fn, tn):
        """Add per-class voxel counts (from :meth:`batch_counts`) to the running totals.

        Args:
            tp, fp, fn, tn: per-class counts, each of shape ``(num_classes,)``.

        Example:
            >>> labels = np.array([[[0, 1, 2], [0, 1, 1]]])
            >>> probabilities = np.eye(3)[[[[0, 1, 1], [0, 1, 2]]]]
            >>> metric = Dice(num_classes=3)
            >>> metric.add_counts(*metric.batch_counts(labels, probabilities))
            >>> float(metric.result())
            0.3333
        """
        self.tp.assign_add(ops.cast(tp, self.tp.dtype))
        self.fp.assign_add(ops.cast(fp, self.fp.dtype))
        self.fn.assign_add(ops.cast(fn, self.fn.dtype))
        self.tn.assign_add(ops.cast(tn, self.tn.dtype))

    # -- results

    def _score(self, tp, fp, fn, tn):
        raise NotImplementedError

    def per_class(self):
        """Return the score of every class, a ``(num_classes,)`` tensor, NaN where undefined.

        Returns:
            A float tensor; entry ``c`` is the score of class ``c`` over the stream.

        Example:
            >>> labels = np.array([[[0, 1, 2], [0, 1, 1]]])
            >>> probabilities = np.eye(3)[[[[0, 1, 1], [0, 1, 2]]]]  # one-hot predictions
            >>> metric = Dice(num_classes=3, include_background=True)
            >>> metric.update_state(labels, probabilities)
            >>> metric.per_class().numpy().tolist()
            [1.0, 0.6667, 0.0]
        """
        numerator, denominator = self._score(self.tp, self.fp, self.fn, self.tn)
        return ops.divide(numerator, denominator)

    def result(self):
        if self.class_id is not None:
            return self.per_class()[self.class_id]
        numerator, denominator = self._score(self.tp, self.fp, self.fn, self.tn)
        start = 0 if (self.include_background or self.multilabel) else 1
        numerator, denominator = numerator[start:], denominator[start:]
        defined = ops.cast(denominator > 0, numerator.dtype)
        safe = ops.where(denominator > 0, denominator, ops.ones_like(denominator))
        return ops.divide(ops.sum(defined * numerator / safe), ops.sum(defined))

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "class_id": self.class_id,
            "include_background": self.include_background,
            "from_logits": self.from_logits,
            "threshold": self.threshold,
            "multilabel": self.multilabel,
            "name": self.name,
            "dtype": self.dtype,
        }


_ARGS_DOC = """
    Args:
        num_classes: number of classes ``K`` the model outputs, background included (2 for a
            one-channel sigmoid model; the number of labels with ``multilabel=True``).
        class_id: None to report the mean over classes, or one class index to report.
        include_background: whether class 0 enters the mean (ignored for ``multilabel``,
            where every channel is a label, and when ``class_id`` is given).
        from_logits: whether sigmoid outputs are logits (only the thresholding depends on
            it; argmax is the same for logits and probabilities).
        threshold: probability above which a sigmoid output is foreground, in (0, 1).
        multilabel: threshold every channel on its own; ``y_true`` is then multi-hot.
        name: name of the metric.
        dtype: dtype of the result.

    Raises:
        ValueError: for an invalid option; ``update_state`` raises it when the shapes do
            not fit ``num_classes``.
"""


@keras.saving.register_keras_serializable(package="kerasseg")
class Dice(_ConfusionMetric):
    __doc__ = (
        """Dice coefficient ``2 TP / (2 TP + FP + FN)`` over all voxels seen, per class.

    :meth:`result` returns the mean over classes (NaN classes, absent from truth and
    prediction, left out) or the score of ``class_id``; :meth:`per_class` the vector.
"""
        + _ARGS_DOC
        + """
    Example:
        >>> labels = np.array([[[0, 1, 2], [0, 1, 1]]])  # (B, H, W) class indices
        >>> probabilities = np.eye(3)[[[[0, 1, 1], [0, 1, 2]]]]  # (B, H, W, K), one-hot
        >>> metric = Dice(num_classes=3)
        >>> metric.update_state(labels, probabilities)
        >>> float(metric.result())  # the mean of class 1 (2/3) and class 2 (0)
        0.3333
"""
    )

    def __init__(self, num_classes, class_id=None, include_background=False,
                 from_logits=False, threshold=0.5, multilabel=False, name="dice", dtype=None):
        super().__init__(num_classes, class_id, include_background, from_logits, threshold,
                         multilabel, name=name, dtype=dtype)

    def _score(self, tp, fp, fn, tn):
        return 2.0 * tp, 2.0 * tp + fp + fn


@keras.saving.register_keras_serializable(package="kerasseg")
class Jaccard(_ConfusionMetric):
    __doc__ = (
        """Jaccard index (IoU) ``TP / (TP + FP + FN)`` over all voxels seen, per class.

    :meth:`result` returns the mean over classes (NaN classes left out) or the score of
    ``class_id``; :meth:`per_class` the vector.
"""
        + _ARGS_DOC
        + """
    Example:
        >>> labels = np.array([[[0, 1, 2], [0, 1, 1]]])
        >>> probabilities = np.eye(3)[[[[0, 1, 1], [0, 1, 2]]]]
        >>> metric = Jaccard(num_classes=3, class_id=1)
        >>> metric.update_state(labels, probabilities)
        >>> float(metric.result())  # TP 2, FP 1, FN 1
        0.5
"""
    )

    def __init__(self, num_classes, class_id=None, include_background=False,
                 from_logits=False, threshold=0.5, multilabel=False, name="jaccard", dtype=None):
        super().__init__(num_classes, class_id, include_background, from_logits, threshold,
                         multilabel, name=name, dtype=dtype)

    def _score(self, tp, fp, fn, tn):
        return tp, tp + fp + fn


@keras.saving.register_keras_serializable(package="kerasseg")
class Sensitivity(_ConfusionMetric):
    __doc__ = (
        """Sensitivity (recall) ``TP / (TP + FN)`` over all voxels seen, per class.

    A class absent from the ground truth of the whole stream is NaN and left out of the mean.
"""
        + _ARGS_DOC
        + """
    Example:
        >>> masks = np.array([[[[0], [1]], [[1], [1]]]])  # binary masks (B, H, W, 1)
        >>> logits = np.array([[[[-3.0], [3.0]], [[-1.0], [2.0]]]])  # (B, H, W, 1)
        >>> metric = Sensitivity(num_classes=2, from_logits=True)
        >>> metric.update_state(masks, logits)
        >>> float(metric.result())  # 2 of the 3 foreground pixels found
        0.6667
"""
    )

    def __init__(self, num_classes, class_id=None, include_background=False,
                 from_logits=False, threshold=0.5, multilabel=False, name="sensitivity",
                 dtype=None):
        super().__init__(num_classes, class_id, include_background, from_logits, threshold,
                         multilabel, name=name, dtype=dtype)

    def _score(self, tp, fp, fn, tn):
        return tp, tp + fn


@keras.saving.register_keras_serializable(package="kerasseg")
class Specificity(_ConfusionMetric):
    __doc__ = (
        """Specificity ``TN / (TN + FP)`` over all voxels seen, per class.

    A class covering every voxel of the stream (no negatives) is NaN and left out of the mean.
"""
        + _ARGS_DOC
        + """
    Example:
        >>> labels = np.array([[[0, 1, 2], [0, 1, 1]]])
        >>> probabilities = np.eye(3)[[[[0, 1, 1], [0, 1, 2]]]]
        >>> metric = Specificity(num_classes=3)
        >>> metric.update_state(labels, probabilities)
        >>> float(metric.result())  # the mean of class 1 (2/3) and class 2 (4/5)
        0.7333
"""
    )

    def __init__(self, num_classes, class_id=None, include_background=False,
                 from_logits=False, threshold=0.5, multilabel=False, name="specificity",
                 dtype=None):
        super().__init__(num_classes, class_id, include_background, from_logits, threshold,
                         multilabel, name=name, dtype=dtype)

    def _score(self, tp, fp, fn, tn):
        return tn, tn + fp
