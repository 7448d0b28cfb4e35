"""Per-case evaluation of segmentations with NumPy and SciPy: overlap and surface distances.

These functions score one predicted mask or label map against its ground truth, in 2-D
(images) or 3-D (volumes, with voxel spacing for distances in millimetres). They are
re-exported from :mod:`kerasseg.metrics`.

Empty masks follow one rule throughout: a ratio whose denominator is zero is NaN, so

* both masks empty: ``dice`` and ``jaccard`` are NaN (as nnU-Net reports), and so are
  ``hausdorff_distance`` and ``average_surface_distance``; ``sensitivity`` is NaN (no
  positives) and ``specificity`` is 1.0 (it is defined as long as there are negatives);
* one mask empty, the other not: ``dice`` and ``jaccard`` are 0.0, the distances are ``inf``
  (as MONAI and DeepMind's surface-distance report); ``sensitivity`` is 0.0 for an empty
  prediction and NaN for an empty ground truth.

Aggregate NaN values with :func:`numpy.nanmean` to leave such cases out of a mean.

Example:
    >>> from kerasseg.metrics import evaluate_case
    >>> truth = np.zeros((1, 4, 4), int); truth[0, :2, :2] = 1; truth[0, 2:, 2:] = 2
    >>> pred = truth.copy(); pred[0, 0, 2] = 1  # one voxel too many of class 1
    >>> scores = evaluate_case(pred, truth, num_classes=3, spacing=(1.0, 1.0, 1.0),
    ...                        class_names=["background", "anterior", "posterior"])
    >>> round(scores["anterior"]["dice"], 4), scores["posterior"]["dice"]  # 2*4/(4+5), exact
    (0.8889, 1.0)
"""

import math

import numpy as np
from scipy import ndimage

__all__ = [
    "dice",
    "jaccard",
    "sensitivity",
    "specificity",
    "hausdorff_distance",
    "average_surface_distance",
    "evaluate_case",
    "check_labels",
]


# ----------------------------------------------------------------------------- validation


def _pair(pred, truth, names=("pred", "truth")):
    """Return two arrays of the same shape (at least 1-D) or raise ValueError."""
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must have the same shape. Received: "
            f"{names[0]}.shape={pred.shape}, {names[1]}.shape={truth.shape}"
        )
    if pred.ndim == 0:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must be arrays of at least one axis. "
            f"Received: {names[0]}.shape={pred.shape}, {names[1]}.shape={truth.shape}"
        )
    return pred, truth


def _masks(pred, truth):
    pred, truth = _pair(pred, truth)
    return pred != 0, truth != 0


def _check_spacing(spacing, ndim, shape):
    if spacing is None:
        return (1.0,) * ndim
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        values = ()
    if len(values) != ndim or any(not math.isfinite(s) or s <= 0 for s in values):
        raise ValueError(
            f"`spacing` must be None or {ndim} positive numbers, one per axis of arrays of "
            f"shape {shape}. Received: spacing={spacing!r}"
        )
    return values


def _check_percentile(percentile):
    if (
        isinstance(percentile, bool)
        or not isinstance(percentile, (int, float, np.integer, np.floating))
        or not 0 <= percentile <= 100
    ):
        raise ValueError(
            f"`percentile` must be a number in [0, 100]. Received: percentile={percentile!r}"
        )
    return float(percentile)


# --------------------------------------------------------------------------- overlap scores


def _ratio(numerator, denominator):
    return float(numerator) / float(denominator) if denominator > 0 else float("nan")


def _counts(pred, truth):
    """Return ``(tp, fp, fn, tn)`` voxel counts of two boolean masks."""
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(truth)) - tp
    tn = int(pred.size) - tp - fp - fn
    return tp, fp, fn, tn


def dice(pred, truth):
    """Dice coefficient ``2 TP / (2 TP + FP + FN)`` of two binary masks.

    Args:
        pred: predicted mask, any shape; non-zero voxels are foreground.
        truth: ground-truth mask of the same shape.

    Returns:
        A float in [0, 1]; NaN when both masks are empty.

    Raises:
        ValueError: if the shapes differ.

    Example:
        >>> dice([[1, 1], [0, 0]], [[1, 0], [0, 0]])  # 2*1 / (2*1 + 1 + 0)
        0.6666666666666666
    """
    tp, fp, fn, _ = _counts(*_masks(pred, truth))
    return _ratio(2 * tp, 2 * tp + fp + fn)


def jaccard(pred, truth):
    """Jaccard index (intersection over union) ``TP / (TP + FP + FN)`` of two binary masks.

    Args:
        pred: predicted mask; non-zero voxels are foreground.
        truth: ground-truth mask of the same shape.

    Returns:
        A float in [0, 1]; NaN when both masks are empty.

    Raises:
        ValueError: if the shapes differ.

    Example:
        >>> jaccard([[1, 1], [0, 0]], [[1, 0], [0, 0]])  # 1 / (1 + 1 + 0)
        0.5
    """
    tp, fp, fn, _ = _counts(*_masks(pred, truth))
    return _ratio(tp, tp + fp + fn)


def sensitivity(pred, truth):
    """Sensitivity (recall, true positive rate) ``TP / (TP + FN)``.

    Args:
        pred: predicted mask; non-zero voxels are foreground.
        truth: ground-truth mask of the same shape.

    Returns:
        A float in [0, 1]; NaN when the ground truth is empty.

    Raises:
        ValueError: if the shapes differ.

    Example:
        >>> sensitivity([[1, 0], [0, 0]], [[1, 1], [0, 0]])  # 1 / (1 + 1)
        0.5
    """
    tp, _, fn, _ = _counts(*_masks(pred, truth))
    return _ratio(tp, tp + fn)


def specificity(pred, truth):
    """Specificity (true negative rate) ``TN / (TN + FP)``.

    Args:
        pred: predicted mask; non-zero voxels are foreground.
        truth: ground-truth mask of the same shape.

    Returns:
        A float in [0, 1]; NaN when the ground truth covers every voxel.

    Raises:
        ValueError: if the shapes differ.

    Example:
        >>> specificity([[1, 1], [0, 0]], [[1, 0], [0, 0]])  # 2 / (2 + 1)
        0.6666666666666666
    """
    _, fp, _, tn = _counts(*_masks(pred, truth))
    return _ratio(tn, tn + fp)


# -------------------------------------------------------------------------- surface distances


def _surface(mask):
    """Foreground voxels with a face neighbour in the background (or on the array border)."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def _surface_distances(pred, truth, spacing):
    """Directed surface distances ``(pred -> truth, truth -> pred)`` of two non-empty masks.

    The arrays are cropped to the bounding box of both masks plus one voxel, which leaves the
    surfaces and their distances unchanged and keeps the distance transforms small.
    """
    both = pred | truth
    lows, highs = [], []
    for axis in range(both.ndim):
        other = tuple(a for a in range(both.ndim) if a != axis)
        present = np.flatnonzero(np.any(both, axis=other))
        lows.append(max(int(present[0]) - 1, 0))
        highs.append(min(int(present[-1]) + 2, both.shape[axis]))
    box = tuple(slice(lo, hi) for lo, hi in zip(lows, highs))
    pred_surface = _surface(pred[box])
    truth_surface = _surface(truth[box])
    to_truth = ndimage.distance_transform_edt(~truth_surface, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)
    return to_truth[pred_surface], to_pred[truth_surface]


def _prepared_distances(pred, truth, spacing):
    """Return the directed distances, or the value (NaN or inf) of an empty case."""
    pred, truth = _masks(pred, truth)
    spacing = _check_spacing(spacing, pred.ndim, pred.shape)
    has_pred, has_truth = bool(pred.any()), bool(truth.any())
    if not has_pred and not has_truth:
        return float("nan")
    if not has_pred or not has_truth:
        return float("inf")
    return _surface_distances(pred, truth, spacing)


def _hausdorff(distances, percentile):
    if isinstance(distances, float):
        return distances
    pred_to_truth, truth_to_pred = distances
    return float(
        max(np.percentile(pred_to_truth, percentile), np.percentile(truth_to_pred, percentile))
    )


def _assd(distances):
    if isinstance(distances, float):
        return distances
    pred_to_truth, truth_to_pred = distances
    total = float(pred_to_truth.sum() + truth_to_pred.sum())
    return total / (pred_to_truth.size + truth_to_pred.size)


def hausdorff_distance(pred, truth, spacing=None, percentile=95):
    """Symmetric (percentile) Hausdorff distance between the surfaces of two binary masks.

    Surface voxels are foreground voxels with at least one face neighbour (4-connectivity in
    2-D, 6 in 3-D) in the background or outside the array. For each surface voxel of one mask
    the Euclidean distance to the nearest surface voxel of the other is taken from
    ``scipy.ndimage.distance_transform_edt(..., sampling=spacing)``. The result is the
    **maximum of the two directed percentiles**, ``max(P_q(d(pred -> truth)),
    P_q(d(truth -> pred)))`` with NumPy's linear interpolation, as MONAI's
    ``compute_hausdorff_distance`` and DeepMind's ``compute_robust_hausdorff`` do;
    ``percentile=100`` is the classic Hausdorff distance.

    Args:
        pred: predicted mask (2-D or 3-D); non-zero voxels are foreground.
        truth: ground-truth mask of the same shape.
        spacing: voxel size per axis (e.g. millimetres, in array axis order); None means 1.
        percentile: percentile in [0, 100] of the directed distances, 95 for HD95.

    Returns:
        The distance in units of ``spacing`` (voxels when None); NaN when both masks are
        empty, ``inf`` when exactly one is.

    Raises:
        ValueError: if the shapes differ, ``spacing`` does not give one positive value per
            axis, or ``percentile`` is outside [0, 100].

    Example:
        >>> a = np.zeros((5, 1, 1)); a[0] = 1
        >>> b = np.zeros((5, 1, 1)); b[3] = 1
        >>> hausdorff_distance(a, b, spacing=(2.0, 1.0, 1.0))  # 3 slices of 2 mm
        6.0
    """
    percentile = _check_percentile(percentile)
    return _hausdorff(_prepared_distances(pred, truth, spacing), percentile)


def average_surface_distance(pred, truth, spacing=None):
    """Average symmetric surface distance (ASSD) between two binary masks.

    The mean of all surface distances pooled over both directions,
    ``(sum d(pred -> truth) + sum d(truth -> pred)) / (|S_pred| + |S_truth|)``, with the
    surfaces and distances defined as in :func:`hausdorff_distance`.

    Args:
        pred: predicted mask (2-D or 3-D); non-zero voxels are foreground.
        truth: ground-truth mask of the same shape.
        spacing: voxel size per axis; None means 1.

    Returns:
        The distance in units of ``spacing``; NaN when both masks are empty, ``inf`` when
        exactly one is.

    Raises:
        ValueError: if the shapes differ or ``spacing`` does not fit.

    Example:
        >>> average_surface_distance([[1, 0, 0]], [[0, 0, 1]], spacing=(1.0, 0.5))
        1.0
    """
    return _assd(_prepared_distances(pred, truth, spacing))


# ---------------------------------------------------------------------------------- per case


def check_labels(name, labels, num_classes):
    """Return a label map as int64 after checking that its values are class indices.

    Args:
        name: the argument's name, for the error message.
        labels: an array of class indices (booleans and whole-number floats are accepted).
        num_classes: the number of classes; values must lie in ``[0, num_classes)``.

    Returns:
        The labels as an int64 array of the same shape.

    Raises:
        ValueError: for a non-numeric array or values that are not class indices (the
            message names ``name`` and up to five offending values).

    Example:
        >>> check_labels("truth", np.array([0.0, 2.0]), 3).tolist()
        [0, 2]
    """
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.number):
        raise ValueError(
            f"`{name}` must be a numeric array of class indices. Received: dtype={labels.dtype}"
        )
    values = np.unique(labels)
    bad = values[(values != np.round(values)) | (values < 0) | (values >= num_classes)]
    if bad.size:
        raise ValueError(
            f"`{name}` must hold integer class indices in [0, {num_classes}). "
            f"Received values: {bad[:5].tolist()}"
        )
    return labels.astype(np.int64)


def evaluate_case(
    pred_labels,
    true_labels,
    num_classes,
    spacing=None,
    class_names=None,
    include_background=False,
    percentile=95,
):
    """Score every class of one predicted label map against its ground truth.

    Args:
        pred_labels: predicted label map (2-D or 3-D) of class indices in
            ``[0, num_classes)``; float arrays holding whole numbers are accepted.
        true_labels: ground-truth label map of the same shape.
        num_classes: number of classes, background (0) included; at least 2.
        spacing: voxel size per axis (millimetres for medical volumes); None means 1.
        class_names: optional ``num_classes`` names used as keys of the result.
        include_background: whether class 0 is scored.
        percentile: percentile of the Hausdorff distance (95 gives the ``"hd95"`` key).

    Returns:
        A dict ``{class: scores}`` keyed by the class name (or the class index when
        ``class_names`` is None), in class order. Each ``scores`` dict holds ``"dice"``,
        ``"jaccard"``, ``"sensitivity"``, ``"specificity"``, ``"hd95"`` (``"hd{percentile}"``
        in general), ``"assd"``, the voxel counts ``"tp"``, ``"fp"``, ``"fn"``, ``"tn"`` and
        the volumes ``"volume_true"`` and ``"volume_pred"`` (voxel count times voxel volume).
        Empty classes give NaN or ``inf`` as described in this module's docstring.

    Raises:
        ValueError: if the shapes differ, labels are not class indices in range,
            ``num_classes``, ``class_names``, ``spacing`` or ``percentile`` do not fit.

    Example:
        >>> truth = np.zeros((1, 4, 4), int); truth[0, :2, :2] = 1; truth[0, 2:, 2:] = 2
        >>> pred = truth.copy(); pred[0, 0, 2] = 1
        >>> scores = evaluate_case(pred, truth, num_classes=3, spacing=(1.0, 1.0, 1.0))
        >>> round(scores[1]["dice"], 4), scores[2]["hd95"]  # 2*4/(4+5); class 2 exact
        (0.8889, 0.0)
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or (
        num_classes < 2
    ):
        raise ValueError(
            f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}"
        )
    num_classes = int(num_classes)
    pred_labels, true_labels = _pair(pred_labels, true_labels, ("pred_labels", "true_labels"))
    pred_labels = check_labels("pred_labels", pred_labels, num_classes)
    true_labels = check_labels("true_labels", true_labels, num_classes)
    spacing = _check_spacing(spacing, pred_labels.ndim, pred_labels.shape)
    percentile = _check_percentile(percentile)
    if class_names is not None:
        class_names = list(class_names)
        if len(class_names) != num_classes or len(set(class_names)) != num_classes:
            raise ValueError(
                f"`class_names` must be {num_classes} distinct names, one per class. "
                f"Received: class_names={class_names!r}"
            )
    if not isinstance(include_background, bool):
        raise ValueError(
            "`include_background` must be one of [True, False]. "
            f"Received: include_background={include_background!r}"
        )
    voxel_volume = float(np.prod(spacing))
    hd_key = f"hd{percentile:g}"
    results = {}
    for c in range(0 if include_background else 1, num_classes):
        pred, truth = pred_labels == c, true_labels == c
        tp, fp, fn, tn = _counts(pred, truth)
        distances = _prepared_distances(pred, truth, spacing)
        key = class_names[c] if class_names is not None else c
        results[key] = {
            "dice": _ratio(2 * tp, 2 * tp + fp + fn),
            "jaccard": _ratio(tp, tp + fp + fn),
            "sensitivity": _ratio(tp, tp + fn),
            "specificity": _ratio(tn, tn + fp),
            hd_key: _hausdorff(distances, percentile),
            "assd": _assd(distances),
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": tn,
            "volume_true": (tp + fn) * voxel_volume,
            "volume_pred": (tp + fp) * voxel_volume,
        }
    return results
