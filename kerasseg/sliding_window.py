"""Sliding-window prediction of whole volumes with patch-sized models (nnU-Net's scheme).

A model trained on patches predicts a larger volume window by window:

1. along each spatial axis the windows start where :func:`window_starts` says: evenly
   spaced, the first at 0 and the last ending at the volume's edge, at most
   ``patch * (1 - overlap)`` voxels apart;
2. an axis shorter than the patch is padded up to the patch with ``pad_value`` (zero by
   default), centred (``(patch - size) // 2`` voxels before, the rest after, as nnU-Net's
   ``pad_nd_image``), and the prediction is cropped back, so the output has the volume's
   shape. The padding is done window by window: no padded copy of the volume is made;
3. each window's class probabilities are multiplied by an importance map (a Gaussian
   centred on the patch, :func:`gaussian_importance`, or ones with ``mode="constant"``)
   and added into a sum of the volume's size; the map is added into a weight sum; the
   result is sum / weights, a weighted average of every window covering a voxel;
4. with ``mirror_axes`` each window is also predicted flipped along every non-empty subset
   of those axes, each prediction is flipped back, and the ``2 ** len(mirror_axes)``
   predictions are averaged before blending (nnU-Net's mirroring).

Windows are predicted ``batch_size`` at a time; the two accumulators, ``(*spatial, K)`` and
``(*spatial,)`` in ``dtype`` (float32 by default), are the only arrays of the volume's size
(``(K + 1) * 4 * D * H * W`` bytes). ``benchmarks/sliding_window_memory.py`` measures it.

The core, :func:`sliding_window_predict`, needs NumPy only and takes any callable that
maps a batch of windows to probabilities; :func:`predict_volume` wraps a Keras model.
"""

import itertools
import math

import numpy as np

MODES = ("gaussian", "constant")

# scipy.ndimage.gaussian_filter's default: its kernel ends at 4 sigma from the centre.
_TRUNCATE = 4.0

# Slack for ``patch * (1 - overlap)`` (100 * (1 - 0.9) is 9.999999999999998 in floating point).
_STEP_SLACK = 1e-9


def _integer(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def _patch_size(patch_size, ndim=None):
    """``patch_size`` as a tuple of positive ints, ``ndim`` long when given (an int repeats)."""
    if isinstance(patch_size, (int, np.integer)) and not isinstance(patch_size, bool):
        if ndim is None:
            raise ValueError("`patch_size` must be a tuple of positive integers, one per "
                             f"spatial axis. Received: patch_size={patch_size!r}")
        patch_size = (patch_size,) * ndim
    try:
        patch = tuple(patch_size)
    except TypeError:
        patch = None
    if (not patch or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                             and n >= 1 for n in patch)):
        raise ValueError("`patch_size` must be a non-empty tuple of positive integers, one per "
                         f"spatial axis. Received: patch_size={patch_size!r}")
    if ndim is not None and len(patch) != ndim:
        raise ValueError(f"`patch_size` must have one entry per spatial axis of `volume` ({ndim}). "
                         f"Received: patch_size={patch_size!r}")
    return tuple(int(n) for n in patch)


def _positive_real(name, value):
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value) or value <= 0):
        raise ValueError(f"`{name}` must be a positive finite number. Received: {name}={value!r}")
    return float(value)


def _overlap(overlap):
    if (isinstance(overlap, bool) or not isinstance(overlap, (int, float, np.integer, np.floating))
            or not 0 <= overlap < 1):
        raise ValueError(f"`overlap` must be a number in [0, 1). Received: overlap={overlap!r}")
    return float(overlap)


def gaussian_importance(patch_size, sigma_scale=1.0 / 8):
    """Return nnU-Net's importance map for a patch: a Gaussian centred on it, maximum 1.

    The value at voxel ``x`` is ``exp(-sum_i (x_i - c_i)**2 / (2 * sigma_i**2))`` with
    ``sigma_i = patch_size[i] * sigma_scale`` and the centre ``c_i = patch_size[i] // 2``
    (a voxel, so the centre's value is exactly 1; for an even size the map has one voxel
    more before the centre than after it, and is symmetric about it otherwise). As in
    nnU-Net (``scipy.ndimage.gaussian_filter`` of a centred delta), the kernel ends at
    ``int(4 * sigma_i + 0.5)`` voxels from the centre along each axis; voxels beyond it, or
    whose value is 0 in float32, get the smallest non-zero value instead, so every voxel
    of the patch has some weight. With the default ``sigma_scale`` no voxel lies beyond it.

    Args:
        patch_size: the patch's spatial shape, e.g. ``(128, 128, 128)`` or ``(256, 256)``.
        sigma_scale: the standard deviation as a fraction of the patch size, per axis.

    Returns:
        A float32 array of shape ``patch_size``.

    Raises:
        ValueError: if ``patch_size`` is not a non-empty tuple of positive integers, or
            ``sigma_scale`` is not a positive finite number.

    Example:
        >>> weights = gaussian_importance((8, 8, 8))    # sigma = 1 voxel, centre (4, 4, 4)
        >>> float(weights[4, 4, 4]), round(float(weights[4, 4, 5]), 6)   # exp(-1/2)
        (1.0, 0.606531)
        >>> round(float(weights[4, 6, 3]), 6) == round(float(np.exp(-(4 + 1) / 2)), 6)
        True
    """
    patch = _patch_size(patch_size)
    sigma_scale = _positive_real("sigma_scale", sigma_scale)
    exponent = np.zeros((1,) * len(patch))
    inside = np.ones((1,) * len(patch), bool)
    for axis, size in enumerate(patch):
        sigma = size * sigma_scale
        offset = np.arange(size) - size // 2
        shape = [1] * len(patch)
        shape[axis] = size
        exponent = exponent + (offset ** 2 / (2.0 * sigma ** 2)).reshape(shape)
        inside = inside & (np.abs(offset) <= int(_TRUNCATE * sigma + 0.5)).reshape(shape)
    weights = np.where(inside, np.exp(-exponent), 0.0).astype("float32")
    zero = weights == 0
    if zero.any():
        weights[zero] = weights[~zero].min()
    return weights


def window_starts(size, patch, overlap):
    """Return the start positions of the windows along one axis (nnU-Net's rule).

    The target step is ``max(1, int(patch * (1 - overlap)))`` voxels. The number of
    windows is ``ceil((size - patch) / step) + 1``, and they are spread evenly so that the
    first starts at 0 and the last ends at ``size``: window ``i`` starts at
    ``round(i * (size - patch) / (count - 1))`` (NumPy's rounding, half to even). Neighbours
    are therefore at most ``step`` voxels apart and every voxel is covered. An axis no
    longer than the patch has one window, at 0: :func:`sliding_window_predict` pads a shorter
    axis to the patch, centred, and crops the prediction back.

    nnU-Net takes the unrounded ``patch * (1 - overlap)`` as the target step; the two agree
    whenever it is a whole number (e.g. an even patch and ``overlap=0.5``).

    Args:
        size: the axis' length in voxels.
        patch: the window's length along the axis.
        overlap: the fraction of the window that neighbours share at least, in ``[0, 1)``.

    Returns:
        A list of ints, increasing, the first 0 and the last ``max(size - patch, 0)``.

    Raises:
        ValueError: if ``size`` or ``patch`` is not a positive integer, or ``overlap`` is
            not in ``[0, 1)``.

    Example:
        >>> window_starts(10, 4, 0.5)      # step 2: ceil(6 / 2) + 1 = 4 windows
        [0, 2, 4, 6]
        >>> window_starts(110, 64, 0.5)    # step 32: 3 windows, spread 46 / 2 = 23 apart
        [0, 23, 46]
        >>> window_starts(3, 4, 0.5)       # shorter than the patch: padded, one window
        [0]
    """
    size = _integer("size", size)
    patch = _integer("patch", patch)
    overlap = _overlap(overlap)
    if size <= patch:
        return [0]
    step = max(1, int(patch * (1.0 - overlap) + _STEP_SLACK))
    count = -(-(size - patch) // step) + 1
    spacing = (size - patch) / (count - 1)
    return [int(np.round(spacing * i)) for i in range(count)]


def _mirror_axes(mirror_axes, ndim):
    try:
        axes = tuple(mirror_axes)
    except TypeError:
        axes = None
    if (axes is None or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                                and 0 <= a < ndim for a in axes) or len(set(axes)) != len(axes)):
        raise ValueError(f"`mirror_axes` must be distinct spatial axes of the patch, integers in "
                         f"[0, {ndim}). Received: mirror_axes={mirror_axes!r}")
    axes = tuple(int(a) for a in axes)
    return [subset for count in range(len(axes) + 1)
            for subset in itertools.combinations(axes, count)]


def _regions(starts, patch, shape):
    """The window's part inside the volume: (volume slices, patch slices)."""
    volume, window = [], []
    for start, length, size in zip(starts, patch, shape):
        low, high = max(start, 0), min(start + length, size)
        volume.append(slice(low, high))
        window.append(slice(low - start, high - start))
    return tuple(volume), tuple(window)


def sliding_window_predict(volume, predict_fn, patch_size, num_classes, overlap=0.5,
                           sigma_scale=1.0 / 8, batch_size=2, mode="gaussian", mirror_axes=(),
                           dtype="float32", pad_value=0.0, return_weights=False):
    """Predict a volume window by window and blend the windows' class probabilities.

    See the module's description for the scheme. The windows' starts along each axis are
    :func:`window_starts` of the (padded) axis; windows are visited in C order of their
    starts and passed to ``predict_fn`` ``batch_size`` at a time (the last batch may be
    smaller).

    Args:
        volume: array ``(D, H, W, C)``, or ``(H, W, C)`` for a 2-D image (any number of
            spatial axes, channels last).
        predict_fn: callable mapping a batch ``(N, *patch_size, C)`` of ``dtype`` to class
            probabilities ``(N, *patch_size, num_classes)`` (NumPy or array-like).
        patch_size: the window's spatial shape, one entry per spatial axis of ``volume``
            (an int is used for every axis).
        num_classes: ``K``, the number of channels ``predict_fn`` returns.
        overlap: the fraction of a window that neighbours share at least, in ``[0, 1)``.
        sigma_scale: the Gaussian's standard deviation as a fraction of the patch size.
        batch_size: windows per call of ``predict_fn``.
        mode: ``"gaussian"`` (weights from :func:`gaussian_importance`) or
            ``"constant"`` (every window weighs 1 everywhere: the plain average).
        mirror_axes: spatial axes of the patch (0 = first spatial axis) to flip for test-time
            augmentation; every subset of them is predicted, flipped back and averaged.
        dtype: floating dtype of the windows passed to ``predict_fn``, of the accumulators
            and of the result.
        pad_value: the value an axis shorter than the patch is padded with.
        return_weights: also return the accumulated weight map.

    Returns:
        The blended probabilities, ``(*spatial, num_classes)`` in ``dtype``; with
        ``return_weights=True`` a tuple of them and the weight map ``(*spatial,)``, at each
        voxel the sum of the importance maps of the windows covering it.

    Raises:
        ValueError: naming the argument: ``volume`` without a channel axis or with an
            empty axis, ``patch_size`` not one positive int per spatial axis, ``overlap``
            outside ``[0, 1)``, ``num_classes``, ``batch_size`` not a positive integer,
            ``sigma_scale`` not positive, an unknown ``mode``, ``mirror_axes`` not distinct
            spatial axes, a non-floating ``dtype``, a ``predict_fn`` that is not callable
            or returns another shape, or ``num_classes`` that differs from the channels
            it returns.

    Example:
        >>> volume = np.arange(30, dtype="float32").reshape(6, 5, 1)
        >>> identity = lambda batch: batch          # every window agrees with the volume
        >>> out = sliding_window_predict(volume, identity, (4, 4), num_classes=1)
        >>> out.shape, bool(np.allclose(out, volume))
        ((6, 5, 1), True)
        >>> constant = lambda batch: np.ones(batch.shape[:-1] + (1,), "float32")
        >>> _, weights = sliding_window_predict(np.zeros((6, 4, 1)), constant, (4, 4), 1,
        ...                                     mode="constant", return_weights=True)
        >>> weights[:, 0].tolist()                  # windows start at rows 0 and 2
        [1.0, 1.0, 2.0, 2.0, 1.0, 1.0]
    """
    volume = np.asarray(volume)
    if volume.ndim < 2 or 0 in volume.shape:
        raise ValueError("`volume` must have one or more spatial axes and a channel axis last, "
                         f"none of them empty. Received: volume of shape {volume.shape}")
    shape = volume.shape[:-1]
    patch = _patch_size(patch_size, len(shape))
    if not callable(predict_fn):
        raise ValueError(f"`predict_fn` must be callable. Received: predict_fn={predict_fn!r}")
    num_classes = _integer("num_classes", num_classes)
    overlap = _overlap(overlap)
    batch_size = _integer("batch_size", batch_size)
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {list(MODES)}. Received: mode={mode!r}")
    flips = _mirror_axes(mirror_axes, len(shape))
    try:
        floating = np.dtype(dtype)
    except TypeError:
        floating = None
    if floating is None or not np.issubdtype(floating, np.floating):
        raise ValueError(f"`dtype` must be a floating-point dtype. Received: dtype={dtype!r}")
    dtype = floating
    if mode == "gaussian":
        importance = gaussian_importance(patch, sigma_scale).astype(dtype)
    else:
        _positive_real("sigma_scale", sigma_scale)
        importance = np.ones(patch, dtype)

    # Window starts in volume coordinates: negative along an axis padded before the volume.
    starts = [[start - (max(size, length) - size) // 2
               for start in window_starts(max(size, length), length, overlap)]
              for size, length in zip(shape, patch)]
    scores = np.zeros(shape + (num_classes,), dtype)
    weights = np.zeros(shape, dtype)
    windows = itertools.product(*starts)
    while True:
        chunk = list(itertools.islice(windows, batch_size))
        if not chunk:
            break
        batch = np.full((len(chunk),) + patch + volume.shape[-1:], pad_value, dtype)
        regions = [_regions(window, patch, shape) for window in chunk]
        for index, (inside, part) in enumerate(regions):
            batch[(index,) + part] = volume[inside]
        probabilities = _mirrored(predict_fn, batch, flips, num_classes, dtype)
        for index, (inside, part) in enumerate(regions):
            weight = importance[part]
            scores[inside] += probabilities[(index,) + part] * weight[..., None]
            weights[inside] += weight
    scores /= weights[..., None]
    return (scores, weights) if return_weights else scores


def _mirrored(predict_fn, batch, flips, num_classes, dtype):
    """The mean of ``predict_fn`` over the flips of ``batch``, each flipped back."""
    total = None
    for axes in flips:
        batch_axes = tuple(axis + 1 for axis in axes)
        inputs = np.ascontiguousarray(np.flip(batch, batch_axes)) if axes else batch
        outputs = np.asarray(predict_fn(inputs))
        expected = batch.shape[:-1] + (num_classes,)
        if outputs.shape != expected:
            if outputs.shape[:-1] == expected[:-1]:
                raise ValueError(
                    f"`num_classes` ({num_classes}) differs from the {outputs.shape[-1]} "
                    f"channels `predict_fn` returned for a batch of shape {batch.shape}")
            raise ValueError(
                f"`predict_fn` must map a batch (N, *patch_size, C) to (N, *patch_size, "
                f"num_classes): for a batch of shape {batch.shape} it returned shape "
                f"{outputs.shape}, expected {expected}")
        outputs = np.flip(outputs, batch_axes) if axes else outputs
        if total is None:  # a copy only where it is added to (predict_fn may own its output)
            total = outputs.astype(dtype, copy=len(flips) > 1)
        else:
            total += outputs
    if len(flips) > 1:
        total /= len(flips)
    return total


def _probabilities(outputs, activation):
    """Class probabilities from a model's outputs: softmax/sigmoid only for logits; a
    one-channel model's probability ``p`` becomes two channels ``(1 - p, p)``."""
    outputs = np.asarray(outputs, "float32")
    if outputs.shape[-1] == 1:
        p = 1.0 / (1.0 + np.exp(-outputs)) if activation == "logits" else outputs
        return np.concatenate([1.0 - p, p], axis=-1)
    if activation != "logits":
        return outputs
    exp = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def predict_volume(model, volume, patch_size=None, overlap=0.5, sigma_scale=1.0 / 8,
                   batch_size=2, mode="gaussian", mirror_axes=(), pad_value=0.0):
    """Class probabilities of a Keras model for a whole volume, by sliding window.

    The model is called with ``model.predict_on_batch`` on batches of windows. Its output
    activation (:func:`kerasseg.models.output_activation`) decides what is applied: a
    softmax over the channels for logits (a sigmoid for a one-channel model), nothing for
    softmax or sigmoid outputs. A one-channel model's probability ``p`` is returned as two
    channels ``(1 - p, p)``, as :class:`kerasseg.inference.Predictor` does. Everything else
    is :func:`sliding_window_predict`.

    Args:
        model: a Keras model on ``(N, *patch, C)`` inputs, channels last.
        volume: array ``(D, H, W, C)`` (or ``(H, W, C)`` for a 2-D model), preprocessed as
            the model expects.
        patch_size: the window's spatial shape; ``None`` takes the model's input shape,
            which must then be fixed.
        overlap, sigma_scale, batch_size, mode, mirror_axes, pad_value: as for
            :func:`sliding_window_predict`.

    Returns:
        float32 ``(*spatial, K')`` probabilities, ``K'`` the model's output channels (2 for
        a one-channel model).

    Raises:
        ValueError: ``patch_size`` missing for a model without a fixed input shape,
            ``volume``'s channels differing from the model's, an output activation that does
            not fit the channels, or any error of :func:`sliding_window_predict`.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((4, 4, 4, 1)),
        ...                           keras.layers.Conv3D(2, 1, kernel_initializer="ones")])
        >>> out = predict_volume(model, np.zeros((5, 6, 3, 1), "float32"))
        >>> out.shape, out[0, 0, 0].tolist()        # equal logits: softmax 1/2 each
        ((5, 6, 3, 2), [0.5, 0.5])
    """
    from kerasseg.models.blocks import check_output_activation, output_activation

    input_shape = tuple(model.input_shape)
    volume = np.asarray(volume)
    if patch_size is None:
        patch_size = input_shape[1:-1]
        if not patch_size or any(n is None for n in patch_size):
            raise ValueError("`patch_size` is required for a model whose input shape "
                             f"{input_shape} has no fixed spatial size")
    channels = input_shape[-1]
    if channels is not None and volume.ndim >= 1 and volume.shape[-1] != channels:
        raise ValueError(f"`volume` must have the model's {channels} input channels last. "
                         f"Received: volume of shape {volume.shape}")
    outputs = int(model.output_shape[-1])
    activation = check_output_activation(output_activation(model), outputs)

    def predict_fn(batch):
        return _probabilities(model.predict_on_batch(batch), activation)

    return sliding_window_predict(volume, predict_fn, patch_size, 2 if outputs == 1 else outputs,
                                  overlap=overlap, sigma_scale=sigma_scale,
                                  batch_size=batch_size, mode=mode, mirror_axes=mirror_axes,
                                  dtype="float32", pad_value=pad_value)
