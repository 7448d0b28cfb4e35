"""Intensity normalization: one registry, a NumPy and a TensorFlow implementation.

The registry (:data:`METHOD_PARAMS`) names every method, its parameters and their defaults;
:func:`normalization_spec` validates a description against it and returns the canonical
dict that a model stores. Both implementations read that same dict:

* :func:`normalize_array` (NumPy) serves training and inference
  (:class:`kerasseg.data.preprocess.Normalizer` calls it); statistics are taken per
  volume and channel, over every axis but the last.
* :func:`normalize_tensor` (TensorFlow ops) serves exported graphs (the ``serving_bytes``
  signature of :mod:`kerasseg.export`); statistics are taken per image ``(H, W, C)`` and
  channel. On the same array the two give the same numbers.

Accepted forms of a description (all mean the same thing):

* ``None``: ``{"method": "none"}``;
* a method name, e.g. ``"zscore"`` (only for the methods of :data:`NAMED_NORMALIZATIONS`,
  whose parameters all have defaults);
* ``{"method": NAME, "params": {...}}`` (the canonical form), or the flat form
  ``{"method": NAME, **params}``;
* an object with a ``to_dict()`` method returning one of those, such as a ``Normalizer``.

Methods and parameters:

===================== ================================== ====================================
method                params (default)                   result per channel ``x``
===================== ================================== ====================================
``none``              --                                 ``x`` (as float32)
``scale``             ``scale`` (req.), ``offset`` (0)   ``x * scale + offset``
``fixed``             ``mean``, ``std`` (req.)           ``(x - mean) / std``
``zscore``            ``nonzero`` (False)                ``(x - mean(x)) / max(std(x), 1e-8)``;
                                                         with ``nonzero`` the statistics use
                                                         the nonzero voxels and the others
                                                         become 0
``minmax``            ``min``, ``max`` (None)            ``(x - lo) / max(hi - lo, 1e-8)``,
                                                         ``lo, hi`` the image's min and max,
                                                         or ``clip(x, min, max)`` scaled by
                                                         the fixed ``min``/``max`` when given
``percentile_clip``   ``lower`` (0.5), ``upper`` (99.5), clip to the percentiles (linear
                      ``rescale`` (False)                interpolation, as ``numpy.percentile``),
                                                         then optionally scale to [0, 1]
``percentile_zscore`` ``lower`` (0.5), ``upper`` (99.5), clip to the percentiles, then z-score
                      ``nonzero`` (False)                (nnU-Net's recipe for MRI)
``ct_window``         ``center``, ``width`` (req.)       ``clip((x - center + width / 2) /
                                                         width, 0, 1)``
===================== ================================== ====================================

``scale``, ``offset``, ``mean`` and ``std`` are a number or a list with one number per
channel. Statistics are computed in float64 and applied in float32 by both implementations.

Example:
    >>> spec = normalization_spec("zscore")
    >>> spec
    {'method': 'zscore', 'params': {'nonzero': False}}
    >>> normalize_array(np.array([[[1.0], [3.0]]]), spec).ravel().tolist()
    [-1.0, 1.0]
"""

import math

import numpy as np

__all__ = [
    "METHOD_PARAMS",
    "NORMALIZATION_METHODS",
    "NAMED_NORMALIZATIONS",
    "normalization_spec",
    "check_channels",
    "normalize_array",
    "normalize_tensor",
]

REQUIRED = object()
"""Marks a parameter of :data:`METHOD_PARAMS` that has no default."""

EPS = 1e-8

# method -> {param: default}; REQUIRED marks parameters without default.
METHOD_PARAMS = {
    "none": {},
    "scale": {"scale": REQUIRED, "offset": 0.0},
    "fixed": {"mean": REQUIRED, "std": REQUIRED},
    "zscore": {"nonzero": False},
    "minmax": {"min": None, "max": None},
    "percentile_clip": {"lower": 0.5, "upper": 99.5, "rescale": False},
    "percentile_zscore": {"lower": 0.5, "upper": 99.5, "nonzero": False},
    "ct_window": {"center": REQUIRED, "width": REQUIRED},
}
NORMALIZATION_METHODS = tuple(METHOD_PARAMS)
# The methods a bare name describes (every parameter has a default), e.g. on the command line.
NAMED_NORMALIZATIONS = tuple(
    method for method, params in METHOD_PARAMS.items()
    if all(default is not REQUIRED for default in params.values()))
# Parameters that take one number per channel as well as one number.
PER_CHANNEL = ("scale", "offset", "mean", "std")
_BOOLEANS = ("nonzero", "rescale")


# ----------------------------------------------------------------------------- validation


def _number(method, key, value, positive=False, per_channel=False):
    """``value`` as a float (or list of floats, where ``per_channel``), checked."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    many = isinstance(value, (list, tuple))
    expected = "a finite number or a list of them" if per_channel else "a finite number"
    if many and not per_channel or many and not value:
        raise ValueError(
            f"Normalization {method!r}: `{key}` must be {expected}. Received: {key}={value!r}")
    for item in value if many else [value]:
        if isinstance(item, np.generic):
            item = item.item()
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise ValueError(
                f"Normalization {method!r}: `{key}` must be {expected}. Received: {key}={value!r}")
        if positive and item <= 0:
            raise ValueError(
                f"Normalization {method!r}: `{key}` must be positive. Received: {key}={value!r}")
    return [float(v) for v in value] if many else float(value)


def normalization_spec(normalization):
    """Validate a normalization description and return its canonical dict.

    This is the one validation of normalization descriptions: training, inference
    (:class:`kerasseg.data.preprocess.Normalizer`) and export
    (:func:`kerasseg.export.normalization_spec`) all call it, so they accept and reject
    the same descriptions with the same messages.

    Args:
        normalization: ``None``, a method name, a dict ``{"method": ..., "params": {...}}``
            or ``{"method": ..., **params}``, or an object with a ``to_dict()`` method
            returning one of those (such as ``kerasseg.data.preprocess.Normalizer``).

    Returns:
        ``{"method": NAME, "params": {...}}`` with every parameter of the method filled in
        (numbers as floats, JSON-able).

    Raises:
        ValueError: for an unknown method (the valid ones are listed), an unknown or
            missing parameter, or an invalid value.

    Example:
        >>> normalization_spec({"method": "scale", "scale": 1 / 255})["params"]["offset"]
        0.0
        >>> normalization_spec("ct_window")
        Traceback (most recent call last):
        ValueError: Normalization 'ct_window' requires parameters ['center', 'width']. Received: {}
    """
    if normalization is None:
        normalization = {"method": "none"}
    elif isinstance(normalization, str):
        normalization = {"method": normalization}
    elif not isinstance(normalization, dict) and hasattr(normalization, "to_dict"):
        normalization = normalization.to_dict()
    if not isinstance(normalization, dict) or "method" not in normalization:
        raise ValueError(
            "`normalization` must be None, a method name, or a dict with key 'method' "
            f"(one of {list(NORMALIZATION_METHODS)}). Received: normalization={normalization!r}"
        )
    method = normalization["method"]
    if not isinstance(method, str) or method not in METHOD_PARAMS:
        raise ValueError(
            f"`normalization['method']` must be one of {list(NORMALIZATION_METHODS)}. "
            f"Received: method={method!r}"
        )
    params = normalization.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError(
            f"Normalization {method!r}: `params` must be a dict. Received: params={params!r}")
    params = dict(params)
    params.update({k: v for k, v in normalization.items() if k not in ("method", "params")})
    allowed = METHOD_PARAMS[method]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"Normalization {method!r} accepts parameters {sorted(allowed)}. "
            f"Received unknown parameters: {unknown}"
        )
    missing = sorted(k for k, v in allowed.items() if v is REQUIRED and k not in params)
    if missing:
        raise ValueError(
            f"Normalization {method!r} requires parameters {missing}. Received: {params}")
    resolved = {k: params.get(k, default) for k, default in allowed.items()}
    for key in _BOOLEANS:
        if key in resolved:
            value = resolved[key]
            if isinstance(value, np.bool_):
                value = resolved[key] = bool(value)
            if not isinstance(value, bool):
                raise ValueError(
                    f"Normalization {method!r}: `{key}` must be one of [True, False]. "
                    f"Received: {key}={value!r}"
                )
    if method == "scale":
        resolved["scale"] = _number(method, "scale", resolved["scale"], per_channel=True)
        resolved["offset"] = _number(method, "offset", resolved["offset"], per_channel=True)
    elif method == "fixed":
        resolved["mean"] = _number(method, "mean", resolved["mean"], per_channel=True)
        resolved["std"] = _number(method, "std", resolved["std"], positive=True,
                                  per_channel=True)
    elif method == "minmax":
        lo, hi = resolved["min"], resolved["max"]
        if (lo is None) != (hi is None):
            raise ValueError(
                "Normalization 'minmax': give both `min` and `max` (fixed range) or neither "
                f"(per-image range). Received: min={lo!r}, max={hi!r}"
            )
        if lo is not None:
            lo, hi = _number(method, "min", lo), _number(method, "max", hi)
            if not hi > lo:
                raise ValueError(
                    "Normalization 'minmax': `min` and `max` must be numbers with max > min. "
                    f"Received: min={lo!r}, max={hi!r}"
                )
            resolved["min"], resolved["max"] = lo, hi
    elif method in ("percentile_clip", "percentile_zscore"):
        lower = _number(method, "lower", resolved["lower"])
        upper = _number(method, "upper", resolved["upper"])
        if not 0 <= lower < upper <= 100:
            raise ValueError(
                "`lower` and `upper` must satisfy 0 <= lower < upper <= 100. "
                f"Received: lower={resolved['lower']!r}, upper={resolved['upper']!r}"
            )
        resolved["lower"], resolved["upper"] = lower, upper
    elif method == "ct_window":
        resolved["center"] = _number(method, "center", resolved["center"])
        resolved["width"] = _number(method, "width", resolved["width"], positive=True)
    return {"method": method, "params": resolved}


def check_channels(spec, channels):
    """Check that the per-channel parameters of ``spec`` fit ``channels`` image channels.

    Args:
        spec: a canonical dict from :func:`normalization_spec`.
        channels: the number of image channels.

    Raises:
        ValueError: if a list parameter (``scale``, ``offset``, ``mean``, ``std``) has
            neither one entry nor one per channel.

    Example:
        >>> check_channels(normalization_spec({"method": "fixed", "mean": [0, 1], "std": 1}), 2)
    """
    for key in PER_CHANNEL:
        value = spec["params"].get(key)
        if isinstance(value, list) and len(value) not in (1, channels):
            raise ValueError(
                f"Normalization {spec['method']!r}: `{key}` must be one number or one per "
                f"channel ({channels}). Received: {key}={value!r}"
            )


# ------------------------------------------------------------------------- NumPy


def _channels_last_float(image):
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(
            "`image` must have spatial axes and a trailing channel axis. "
            f"Received: image with shape {image.shape}"
        )
    return image.astype(np.float32, copy=False)


def _check_mask(mask, image):
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape[:-1]:
        raise ValueError(
            f"`mask` must have the image's spatial shape {image.shape[:-1]}. "
            f"Received: mask with shape {mask.shape}"
        )
    return mask


def zscore(image, mask=None, nonzero=False, eps=EPS):
    """Z-score normalization per channel: ``(x - mean) / std``.

    Statistics are computed per volume and per channel, over all voxels, over ``mask``
    when given, or over each channel's nonzero voxels with ``nonzero=True`` (the usual
    choice for skull-stripped brain MRI). With a mask, voxels outside it are set to 0.

    Args:
        image: array ``(..., C)`` with channels last, e.g. ``(D, H, W, C)``.
        mask: optional boolean array of the image's spatial shape.
        nonzero: use each channel's nonzero voxels as the mask.
        eps: lower bound of the standard deviation (a constant channel becomes 0).

    Returns:
        float32 array of the same shape.

    Raises:
        ValueError: if ``mask`` does not have the image's spatial shape.

    Example:
        >>> out = zscore(np.array([[[[1.0], [3.0]]]]))
        >>> out.ravel().tolist()
        [-1.0, 1.0]
    """
    image = _channels_last_float(image)
    mask = _check_mask(mask, image)
    out = np.empty(image.shape, dtype=np.float32)
    for c in range(image.shape[-1]):
        channel = image[..., c]
        region = mask if mask is not None else (channel != 0 if nonzero else None)
        values = channel if region is None else channel[region]
        if values.size == 0:
            values = channel
        mean = np.float32(np.mean(values, dtype=np.float64))
        std = np.float32(max(float(np.std(values, dtype=np.float64)), eps))
        normalized = (channel - mean) / std
        if region is not None:
            normalized = np.where(region, normalized, np.float32(0.0))
        out[..., c] = normalized
    return out


def percentile_clip(image, lower=0.5, upper=99.5, mask=None, rescale=False):
    """Clip each channel to its ``lower`` and ``upper`` intensity percentiles.

    Args:
        image: array ``(..., C)`` with channels last.
        lower: lower percentile in [0, 100).
        upper: upper percentile in (lower, 100].
        mask: optional boolean array; percentiles are taken over it.
        rescale: map the clipped range linearly to [0, 1].

    Returns:
        float32 array of the same shape.

    Raises:
        ValueError: if the percentiles are not ``0 <= lower < upper <= 100``.

    Example:
        >>> out = percentile_clip(np.arange(101.0).reshape(101, 1), 1, 99)
        >>> float(out.min()), float(out.max())
        (1.0, 99.0)
    """
    if not 0 <= lower < upper <= 100:
        raise ValueError(
            "`lower` and `upper` must satisfy 0 <= lower < upper <= 100. "
            f"Received: lower={lower}, upper={upper}"
        )
    image = _channels_last_float(image)
    mask = _check_mask(mask, image)
    out = np.empty(image.shape, dtype=np.float32)
    for c in range(image.shape[-1]):
        channel = image[..., c]
        values = channel if mask is None or not mask.any() else channel[mask]
        lo, hi = np.percentile(values.astype(np.float64), [lower, upper]).astype(np.float32)
        clipped = np.minimum(np.maximum(channel, lo), hi)
        if rescale:
            clipped = (clipped - lo) / np.float32(max(hi - lo, EPS))
        out[..., c] = clipped
    return out


def ct_window(image, center, width):
    """Apply a CT intensity window and scale it to [0, 1].

    Values below ``center - width / 2`` become 0, above ``center + width / 2`` become 1,
    linear in between.

    Args:
        image: array of Hounsfield units, any shape.
        center: window centre (level), e.g. 40 for soft tissue.
        width: window width, positive, e.g. 400.

    Returns:
        float32 array of the same shape with values in [0, 1].

    Raises:
        ValueError: if ``width`` is not positive.

    Example:
        >>> ct_window(np.array([-200.0, 40.0, 240.0, 1000.0]), center=40, width=400).tolist()
        [0.0, 0.5, 1.0, 1.0]
    """
    if not width > 0:
        raise ValueError(f"`width` must be positive. Received: width={width}")
    lower = np.float32(center - width / 2.0)
    image = np.asarray(image, dtype=np.float32)
    return np.clip((image - lower) / np.float32(width), 0.0, 1.0).astype(np.float32)


def minmax(image, low=None, high=None):
    """Scale each channel linearly to [0, 1] by its minimum and maximum, or a fixed range.

    Args:
        image: array ``(..., C)`` with channels last.
        low: with ``high``, a fixed range: intensities are clipped to ``[low, high]`` and
            scaled by it; ``None`` (default) takes each channel's own minimum and maximum.
        high: the upper end of the fixed range.

    Returns:
        float32 array of the same shape (a constant channel becomes 0).

    Raises:
        ValueError: if only one of ``low`` and ``high`` is given, or ``high <= low``.

    Example:
        >>> minmax(np.array([[2.0], [4.0], [6.0]])).ravel().tolist()
        [0.0, 0.5, 1.0]
    """
    image = _channels_last_float(image)
    if low is not None or high is not None:
        spec = normalization_spec({"method": "minmax", "min": low, "max": high})
        low, high = np.float32(spec["params"]["min"]), np.float32(spec["params"]["max"])
        return ((np.clip(image, low, high) - low) / (high - low)).astype(np.float32)
    axes = tuple(range(image.ndim - 1))
    lo = image.min(axis=axes, keepdims=True)
    hi = image.max(axis=axes, keepdims=True)
    return ((image - lo) / np.maximum(hi - lo, np.float32(EPS))).astype(np.float32)


def normalize_array(image, spec, mask=None):
    """Normalize a NumPy image or volume (channels last) as ``spec`` describes.

    Args:
        image: array ``(..., C)``, e.g. ``(D, H, W, C)``; statistics are per channel over
            all other axes.
        spec: a normalization description (see :func:`normalization_spec`).
        mask: optional boolean array of the spatial shape restricting the statistics of
            the z-score and percentile methods (NumPy only: exported graphs have none).

    Returns:
        float32 array of the same shape.

    Raises:
        ValueError: for an invalid ``spec``, per-channel parameters that do not fit the
            channels, or a ``mask`` of the wrong shape.

    Example:
        >>> normalize_array(np.array([[0.0], [255.0]]), {"method": "scale", "scale": 1 / 255}
        ...                 ).ravel().tolist()
        [0.0, 1.0]
    """
    spec = normalization_spec(spec)
    method, p = spec["method"], spec["params"]
    if method == "none":
        return np.array(image, dtype=np.float32)
    x = _channels_last_float(image)
    check_channels(spec, x.shape[-1])
    if method == "scale":
        out = x * np.asarray(p["scale"], np.float32) + np.asarray(p["offset"], np.float32)
    elif method == "fixed":
        out = (x - np.asarray(p["mean"], np.float32)) / np.asarray(p["std"], np.float32)
    elif method == "zscore":
        out = zscore(x, mask=mask, nonzero=p["nonzero"])
    elif method == "minmax":
        out = minmax(x, p["min"], p["max"])
    elif method == "percentile_clip":
        out = percentile_clip(x, p["lower"], p["upper"], mask=mask, rescale=p["rescale"])
    elif method == "percentile_zscore":
        clipped = percentile_clip(x, p["lower"], p["upper"], mask=mask)
        out = zscore(clipped, mask=mask, nonzero=p["nonzero"])
    else:
        out = ct_window(x, p["center"], p["width"])
    return np.asarray(out, dtype=np.float32)


# ------------------------------------------------------------------------- TensorFlow


def _tf_channel_stats(tf, x, region=None):
    """Mean and standard deviation per channel of ``x`` (H, W, C), in float64, optionally
    over a boolean ``region`` (H, W, C); an empty region falls back to all pixels."""
    x = tf.cast(x, tf.float64)
    if region is None:
        mean, var = tf.nn.moments(x, axes=[0, 1])
        return mean, tf.sqrt(var)
    weights = tf.cast(region, tf.float64)
    count = tf.reduce_sum(weights, axis=[0, 1])
    empty = tf.equal(count, 0.0)
    weights = tf.where(empty[None, None, :], tf.ones_like(weights), weights)
    count = tf.reduce_sum(weights, axis=[0, 1])
    mean = tf.reduce_sum(x * weights, axis=[0, 1]) / count
    var = tf.reduce_sum(tf.square(x - mean) * weights, axis=[0, 1]) / count
    return mean, tf.sqrt(var)


def _tf_zscore(tf, x, nonzero):
    region = tf.not_equal(x, 0.0) if nonzero else None
    mean, std = _tf_channel_stats(tf, x, region)
    out = (x - tf.cast(mean, x.dtype)) / tf.cast(tf.maximum(std, EPS), x.dtype)
    if nonzero:
        out = tf.where(region, out, tf.zeros_like(out))
    return out


def _tf_percentiles(tf, x, q):
    """Per-channel percentiles ``q`` (Python floats) of ``x`` (H, W, C) with the linear
    interpolation of ``numpy.percentile``, in float64; returns (len(q), C) float32."""
    channels = tf.shape(x)[-1]
    values = tf.sort(tf.reshape(tf.transpose(tf.cast(x, tf.float64), [2, 0, 1]),
                                [channels, -1]), axis=-1)
    n = tf.cast(tf.shape(values)[-1], tf.float64)
    out = []
    for percent in q:
        pos = percent / 100.0 * (n - 1.0)
        low = tf.floor(pos)
        frac = pos - low
        i0 = tf.cast(low, tf.int32)
        i1 = tf.minimum(i0 + 1, tf.cast(n, tf.int32) - 1)
        v0, v1 = tf.gather(values, i0, axis=1), tf.gather(values, i1, axis=1)
        out.append(v0 + (v1 - v0) * frac)
    return tf.cast(tf.stack(out), tf.float32)


def normalize_tensor(image, spec):
    """Normalize one image ``(H, W, C)`` with TensorFlow ops, as ``spec`` describes.

    The ops (and the constants of ``spec``) can be traced into a graph, e.g. an exported
    serving signature, which then needs neither Python nor kerasseg.

    Args:
        image: tensor ``(H, W, C)`` of stored intensities (cast to float32).
        spec: a normalization description (see :func:`normalization_spec`).

    Returns:
        float32 tensor of the same shape.

    Raises:
        ValueError: for an invalid ``spec``.

    Example:
        >>> import tensorflow as tf
        >>> x = tf.constant([[[0.0], [255.0]]])
        >>> normalize_tensor(x, {"method": "scale", "scale": 1 / 255}).numpy().ravel().tolist()
        [0.0, 1.0]
    """
    import tensorflow as tf

    spec = normalization_spec(spec)
    method, p = spec["method"], spec["params"]
    x = tf.cast(image, tf.float32)
    if method == "none":
        return x
    if method == "scale":
        return x * tf.constant(p["scale"], tf.float32) + tf.constant(p["offset"], tf.float32)
    if method == "fixed":
        return (x - tf.constant(p["mean"], tf.float32)) / tf.constant(p["std"], tf.float32)
    if method == "zscore":
        return _tf_zscore(tf, x, p["nonzero"])
    if method == "minmax":
        if p["min"] is not None:
            lo, hi = p["min"], p["max"]
            return (tf.clip_by_value(x, lo, hi) - lo) / (hi - lo)
        lo = tf.reduce_min(x, axis=[0, 1])
        hi = tf.reduce_max(x, axis=[0, 1])
        return (x - lo) / tf.maximum(hi - lo, EPS)
    if method in ("percentile_clip", "percentile_zscore"):
        bounds = _tf_percentiles(tf, x, [p["lower"], p["upper"]])
        lo, hi = bounds[0], bounds[1]
        clipped = tf.minimum(tf.maximum(x, lo), hi)
        if method == "percentile_zscore":
            return _tf_zscore(tf, clipped, p["nonzero"])
        if p["rescale"]:
            return (clipped - lo) / tf.maximum(hi - lo, EPS)
        return clipped
    # ct_window
    lower = p["center"] - p["width"] / 2.0
    return tf.clip_by_value((x - lower) / p["width"], 0.0, 1.0)
