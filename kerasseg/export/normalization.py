"""Intensity normalization as TensorFlow ops, for the encoded-image serving signature.

A served model must see its inputs normalized exactly as in training, without Python or
kerasseg at serving time. The normalization is described by a JSON-able dict and
rebuilt here from TF ops whose constants are stored in the exported graph.

Accepted forms of the ``normalization`` argument (all mean the same thing):

* ``None``: ``{"method": "none"}``, the stored intensities as float32 (0..255 for an
  8-bit PNG or JPEG, 0..65535 for a 16-bit PNG), the same as
  :func:`kerasseg.data.io.read_image` with ``Normalizer(None)`` in training;
* a method name, e.g. ``"zscore"``;
* ``{"method": NAME, "params": {...}}``, the form of
  :meth:`kerasseg.data.preprocess.Normalizer.to_dict`, or a ``Normalizer`` itself;
* the flat form ``{"method": NAME, **params}``.

Methods and parameters (statistics are computed per image and per channel, over the
decoded image at the model's input size, as the training pipeline computes them per
volume):

==================== ================================== =====================================
method               params (default)                   result per channel ``x``
==================== ================================== =====================================
``none``             --                                 ``x``
``scale``            ``scale`` (req.), ``offset`` (0)   ``x * scale + offset``
``fixed``            ``mean``, ``std`` (req.; a number  ``(x - mean) / std``
                     or one per channel)
``zscore``           ``nonzero`` (False)                ``(x - mean(x)) / max(std(x), 1e-8)``;
                                                        with ``nonzero`` the statistics use
                                                        the nonzero pixels and the others
                                                        become 0
``minmax``           ``min``, ``max`` (None)            ``(x - lo) / max(hi - lo, 1e-8)``,
                                                        ``lo, hi`` the image's min and max,
                                                        or ``clip(x, min, max)`` scaled by
                                                        the fixed ``min``/``max`` when given
``percentile_clip``  ``lower`` (0.5), ``upper`` (99.5), clip to the percentiles (linear
                     ``rescale`` (False)                interpolation, as ``numpy.percentile``),
                                                        then optionally scale to [0, 1]
``percentile_zscore`` ``lower``, ``upper``, ``nonzero`` clip to the percentiles, then z-score
``ct_window``        ``center``, ``width`` (req.)       ``clip((x - center + width / 2) /
                                                        width, 0, 1)``
==================== ================================== =====================================

Example:
    >>> spec = normalization_spec({"method": "zscore"})
    >>> spec
    {'method': 'zscore', 'params': {'nonzero': False}}
    >>> normalize_image(tf.constant([[[1.0], [3.0]]]), spec).numpy().ravel().tolist()
    [-1.0, 1.0]
"""

import math

import tensorflow as tf

_REQUIRED = object()
_EPS = 1e-8

# method -> {param: default}; _REQUIRED marks parameters without default.
_METHODS = {
    "none": {},
    "scale": {"scale": _REQUIRED, "offset": 0.0},
    "fixed": {"mean": _REQUIRED, "std": _REQUIRED},
    "zscore": {"nonzero": False},
    "minmax": {"min": None, "max": None},
    "percentile_clip": {"lower": 0.5, "upper": 99.5, "rescale": False},
    "percentile_zscore": {"lower": 0.5, "upper": 99.5, "nonzero": False},
    "ct_window": {"center": _REQUIRED, "width": _REQUIRED},
}
NORMALIZATION_METHODS = tuple(_METHODS)


def _number(method, key, value, positive=False):
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(
            f"Normalization {method!r}: `{key}` must be a number or a list of numbers. "
            f"Received: {key}={value!r}"
        )
    for item in values:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise ValueError(
                f"Normalization {method!r}: `{key}` must be a finite number or a list of "
                f"them. Received: {key}={value!r}"
            )
        if positive and item <= 0:
            raise ValueError(
                f"Normalization {method!r}: `{key}` must be positive. Received: {key}={value!r}"
            )
    return [float(v) for v in values] if isinstance(value, (list, tuple)) else float(value)


def normalization_spec(normalization):
    """Validate a normalization description and return its canonical dict.

    Args:
        normalization: ``None``, a method name, a dict ``{"method": ..., "params": {...}}``
            or ``{"method": ..., **params}``, or an object with a ``to_dict()`` method
            returning one of those (such as ``kerasseg.data.preprocess.Normalizer``).

    Returns:
        ``{"method": NAME, "params": {...}}`` with every parameter filled in (JSON-able).

    Raises:
        ValueError: for an unknown method (the valid ones are listed), an unknown or
            missing parameter, or an invalid value.

    Example:
        >>> normalization_spec("ct_window")
        Traceback (most recent call last):
        ValueError: Normalization 'ct_window' requires parameters ['center', 'width'] ...
        >>> normalization_spec({"method": "scale", "scale": 1 / 255})["params"]["offset"]
        0.0
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
    if method not in _METHODS:
        raise ValueError(
            f"`normalization['method']` must be one of {list(NORMALIZATION_METHODS)}. "
            f"Received: method={method!r}"
        )
    extra = {k: v for k, v in normalization.items() if k not in ("method", "params")}
    params = dict(normalization.get("params") or {})
    params.update(extra)
    allowed = _METHODS[method]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"Normalization {method!r} accepts parameters {sorted(allowed)}. "
            f"Received unknown parameters: {unknown}"
        )
    missing = sorted(k for k, v in allowed.items() if v is _REQUIRED and k not in params)
    if missing:
        raise ValueError(
            f"Normalization {method!r} requires parameters {missing}. Received: {params}"
        )
    resolved = {k: params.get(k, default) for k, default in allowed.items()}
    for key in ("nonzero", "rescale"):
        if key in resolved and not isinstance(resolved[key], bool):
            raise ValueError(
                f"Normalization {method!r}: `{key}` must be one of [True, False]. "
                f"Received: {key}={resolved[key]!r}"
            )
    if method == "scale":
        resolved["scale"] = _number(method, "scale", resolved["scale"])
        resolved["offset"] = _number(method, "offset", resolved["offset"])
    elif method == "fixed":
        resolved["mean"] = _number(method, "mean", resolved["mean"])
        resolved["std"] = _number(method, "std", resolved["std"], positive=True)
    elif method == "minmax":
        lo, hi = resolved["min"], resolved["max"]
        if (lo is None) != (hi is None):
            raise ValueError(
                "Normalization 'minmax': give both `min` and `max` (fixed range) or neither "
                f"(per-image range). Received: min={lo!r}, max={hi!r}"
            )
        if lo is not None:
            lo, hi = _number(method, "min", lo), _number(method, "max", hi)
            if isinstance(lo, list) or isinstance(hi, list) or not hi > lo:
                raise ValueError(
                    "Normalization 'minmax': `min` and `max` must be numbers with max > min. "
                    f"Received: min={lo!r}, max={hi!r}"
                )
            resolved["min"], resolved["max"] = lo, hi
    elif method in ("percentile_clip", "percentile_zscore"):
        lower = _number(method, "lower", resolved["lower"])
        upper = _number(method, "upper", resolved["upper"])
        if isinstance(lower, list) or isinstance(upper, list) or not 0 <= lower < upper <= 100:
            raise ValueError(
                "`lower` and `upper` must satisfy 0 <= lower < upper <= 100. "
                f"Received: lower={resolved['lower']!r}, upper={resolved['upper']!r}"
            )
        resolved["lower"], resolved["upper"] = lower, upper
    elif method == "ct_window":
        resolved["center"] = _number(method, "center", resolved["center"])
        resolved["width"] = _number(method, "width", resolved["width"], positive=True)
    return {"method": method, "params": resolved}


# ------------------------------------------------------------------------- TF ops


def _channel_stats(x, region=None):
    """Mean and standard deviation per channel of ``x`` (H, W, C), optionally over a
    boolean ``region`` (H, W, C); an empty region falls back to all pixels."""
    if region is None:
        mean, var = tf.nn.moments(x, axes=[0, 1])
        return mean, tf.sqrt(var)
    weights = tf.cast(region, x.dtype)
    count = tf.reduce_sum(weights, axis=[0, 1])
    empty = tf.equal(count, 0.0)
    weights = tf.where(empty[None, None, :], tf.ones_like(weights), weights)
    count = tf.reduce_sum(weights, axis=[0, 1])
    mean = tf.reduce_sum(x * weights, axis=[0, 1]) / count
    var = tf.reduce_sum(tf.square(x - mean) * weights, axis=[0, 1]) / count
    return mean, tf.sqrt(var)


def _zscore(x, nonzero):
    region = tf.not_equal(x, 0.0) if nonzero else None
    mean, std = _channel_stats(x, region)
    out = (x - mean) / tf.maximum(std, _EPS)
    if nonzero:
        out = tf.where(region, out, tf.zeros_like(out))
    return out


def _percentiles(x, q):
    """Per-channel percentiles ``q`` (a Python float list) of ``x`` (H, W, C), with the
    linear interpolation of ``numpy.percentile``; returns (len(q), C)."""
    channels = tf.shape(x)[-1]
    values = tf.sort(tf.reshape(tf.transpose(x, [2, 0, 1]), [channels, -1]), axis=-1)
    n = tf.cast(tf.shape(values)[-1], tf.float64)
    out = []
    for percent in q:
        pos = percent / 100.0 * (n - 1.0)
        low = tf.floor(pos)
        frac = tf.cast(pos - low, x.dtype)
        i0 = tf.cast(low, tf.int32)
        i1 = tf.minimum(i0 + 1, tf.cast(n, tf.int32) - 1)
        v0, v1 = values[:, i0], values[:, i1]
        out.append(v0 + (v1 - v0) * frac)
    return tf.stack(out)


def normalize_image(image, spec):
    """Normalize one float32 image ``(H, W, C)`` with TF ops, as described by ``spec``.

    Args:
        image: float32 tensor ``(H, W, C)`` of stored intensities.
        spec: a normalization description (see :func:`normalization_spec`).

    Returns:
        float32 tensor of the same shape.

    Raises:
        ValueError: if ``spec`` is invalid.

    Example:
        >>> x = tf.constant([[[0.0], [255.0]]])
        >>> normalize_image(x, {"method": "scale", "scale": 1 / 255}).numpy().ravel().tolist()
        [0.0, 1.0]
    """
    spec = normalization_spec(spec)
    method, p = spec["method"], spec["params"]
    x = tf.cast(image, tf.float32)
    if method == "none":
        return x
    if method == "scale":
        return x * p["scale"] + p["offset"]
    if method == "fixed":
        return (x - tf.constant(p["mean"], tf.float32)) / tf.constant(p["std"], tf.float32)
    if method == "zscore":
        return _zscore(x, p["nonzero"])
    if method == "minmax":
        if p["min"] is not None:
            lo, hi = p["min"], p["max"]
            return (tf.clip_by_value(x, lo, hi) - lo) / (hi - lo)
        lo = tf.reduce_min(x, axis=[0, 1])
        hi = tf.reduce_max(x, axis=[0, 1])
        return (x - lo) / tf.maximum(hi - lo, _EPS)
    if method in ("percentile_clip", "percentile_zscore"):
        bounds = _percentiles(x, [p["lower"], p["upper"]])
        lo, hi = bounds[0], bounds[1]
        clipped = tf.minimum(tf.maximum(x, lo), hi)
        if method == "percentile_zscore":
            return _zscore(clipped, p["nonzero"])
        if p["rescale"]:
            return (clipped - lo) / tf.maximum(hi - lo, _EPS)
        return clipped
    # ct_window
    lower = p["center"] - p["width"] / 2.0
    return tf.clip_by_value((x - lower) / p["width"], 0.0, 1.0)
