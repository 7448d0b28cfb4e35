"""The preprocessing spec: what decides what a model sees, stored with a trained model.

A spec (:func:`make_preprocessing_spec`) is a JSON-able dict naming the slicing mode, the
2.5-D context, the slicing axis (or axes, for a multi-view model), the target spacing, the
intensity normalization and the training patch size. Training writes it into the model's
description; :func:`kerasseg.data.prepare.preprocess_case` applies it again at inference
and export time.
"""

import numpy as np

from kerasseg.data.preprocess import Normalizer

__all__ = ["MODES", "SPEC_VERSION", "make_preprocessing_spec", "slice_axes", "check_spec",
           "patch_pair", "patch_shape", "patch_dims"]

MODES = ("2d", "2.5d", "3d")
SPEC_VERSION = 1


def make_preprocessing_spec(
    mode="2d", context=None, normalization="zscore", target_spacing=None, slice_axis=0, patch_size=None
):
    """Build (and validate) the JSON-able preprocessing spec stored with a model.

    Args:
        mode: ``"2d"`` (one slice per input), ``"2.5d"`` (the slice plus ``context``
            neighbours on each side as extra channels) or ``"3d"`` (3-D patches of the
            volume, for the 3-D families; no context, ``slice_axis`` 0).
        context: neighbours on each side; default 1 for ``"2.5d"``, 0 otherwise.
        normalization: a method name of :class:`~kerasseg.data.preprocess.Normalizer`,
            its dict form or a ``Normalizer``.
        target_spacing: resampling target in ``(x, y[, z])`` order (``None`` entries keep
            an axis), or ``None`` for no resampling.
        slice_axis: array axis of ``(D, H, W)`` along which slices are taken (0: axial),
            or several distinct axes (e.g. ``(0, 1, 2)``) for a multi-view model: training
            draws slices across every listed axis and prediction averages the class
            probabilities of all views.
        patch_size: training patch size ``(h, w)``, or ``(d, h, w)`` in ``"3d"`` (an int
            means the same on every axis), or ``None``.

    Returns:
        dict with keys ``version, mode, context, slice_axis, target_spacing,
        normalization, patch_size`` (plain lists, numbers and strings).

    Raises:
        ValueError: for an invalid mode, context, axis, spacing or normalization.

    Example:
        >>> spec = make_preprocessing_spec(mode="2.5d", target_spacing=(1.0, 1.0, None))
        >>> spec["context"], spec["normalization"]["method"]
        (1, 'zscore')
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {list(MODES)}. Received: mode={mode!r}")
    if context is None:
        context = 1 if mode == "2.5d" else 0
    if not isinstance(context, (int, np.integer)) or isinstance(context, bool) or context < 0:
        raise ValueError(f"`context` must be an integer >= 0. Received: context={context!r}")
    if mode == "2d" and context != 0:
        raise ValueError(f"`context` must be 0 when mode='2d' (use mode='2.5d'). Received: context={context}")
    if mode == "2.5d" and context < 1:
        raise ValueError(f"`context` must be >= 1 when mode='2.5d'. Received: context={context}")
    if mode == "3d" and context != 0:
        raise ValueError(f"`context` must be 0 when mode='3d' (a 3-D patch holds its "
                         f"neighbours). Received: context={context}")
    axes = _slice_axes(slice_axis)
    if mode == "3d" and axes != [0]:
        raise ValueError("`slice_axis` must be 0 when mode='3d' (the volume is not sliced). "
                         f"Received: slice_axis={slice_axis!r}")
    if target_spacing is not None:
        target_spacing = [None if s is None else float(s) for s in target_spacing]
        if len(target_spacing) not in (2, 3) or any(s is not None and not s > 0 for s in target_spacing):
            raise ValueError(
                "`target_spacing` must hold 2 or 3 positive numbers (or None) in (x, y[, z]) "
                f"order. Received: target_spacing={target_spacing}"
            )
    return {
        "version": SPEC_VERSION,
        "mode": mode,
        "context": int(context),
        "slice_axis": axes[0] if len(axes) == 1 else axes,
        "target_spacing": target_spacing,
        "normalization": Normalizer.from_spec(normalization).to_dict(),
        "patch_size": patch_shape(patch_size, patch_dims(mode)),
    }


def _slice_axes(slice_axis):
    axes = list(slice_axis) if isinstance(slice_axis, (list, tuple)) else [slice_axis]
    if (not axes or len(set(axes)) != len(axes)
            or any(isinstance(a, bool) or a not in (0, 1, 2) for a in axes)):
        raise ValueError(
            "`slice_axis` must be one of [0, 1, 2] or a list of distinct ones (multi-view). "
            f"Received: slice_axis={slice_axis!r}")
    return [int(a) for a in axes]


def slice_axes(spec):
    """Return the list of slicing axes of a preprocessing spec (one, or several views).

    Args:
        spec: dict from :func:`make_preprocessing_spec` (older specs without the key
            slice along axis 0).

    Returns:
        A list of distinct ints in ``0..2``.

    Raises:
        ValueError: for an invalid ``slice_axis`` entry.

    Example:
        >>> slice_axes(make_preprocessing_spec(slice_axis=(2, 0)))
        [2, 0]
    """
    return _slice_axes(spec.get("slice_axis", 0))


def patch_pair(patch_size):
    """Return a patch size as a ``[h, w]`` list of ints (an int means square), or ``None``.

    Args:
        patch_size: an int, a pair of positive ints, or ``None``.

    Returns:
        ``[h, w]``, or ``None`` for ``None``.

    Raises:
        ValueError: for anything else.

    Example:
        >>> patch_pair(64), patch_pair((32, 48)), patch_pair(None)
        ([64, 64], [32, 48], None)
    """
    if patch_size is None:
        return None
    if isinstance(patch_size, (int, np.integer)):
        patch_size = (patch_size, patch_size)
    patch_size = list(patch_size)
    if len(patch_size) != 2 or any(not isinstance(p, (int, np.integer)) or p < 1 for p in patch_size):
        raise ValueError(
            f"`patch_size` must be an int or a pair of positive ints (h, w). Received: patch_size={patch_size}"
        )
    return [int(p) for p in patch_size]


def patch_dims(mode):
    """Return the number of patch axes of a slicing mode: 3 for ``"3d"``, else 2.

    Args:
        mode: one of :data:`MODES`.

    Returns:
        2 or 3.

    Raises:
        ValueError: for an unknown mode.

    Example:
        >>> patch_dims("2.5d"), patch_dims("3d")
        (2, 3)
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {list(MODES)}. Received: mode={mode!r}")
    return 3 if mode == "3d" else 2


def patch_shape(patch_size, dims):
    """Return a patch size as a list of ``dims`` ints (an int means the same on every axis).

    Args:
        patch_size: an int, ``dims`` positive ints, or ``None``.
        dims: 2 (``[h, w]``) or 3 (``[d, h, w]``).

    Returns:
        A list of ``dims`` ints, or ``None`` for ``None``.

    Raises:
        ValueError: for anything else.

    Example:
        >>> patch_shape(32, 3), patch_shape((16, 32, 32), 3), patch_shape(None, 3)
        ([32, 32, 32], [16, 32, 32], None)
    """
    if dims == 2:
        return patch_pair(patch_size)
    if patch_size is None:
        return None
    if isinstance(patch_size, (int, np.integer)) and not isinstance(patch_size, bool):
        patch_size = (patch_size,) * dims
    try:
        values = list(patch_size)
    except TypeError:
        values = None
    if (values is None or len(values) != dims
            or any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1
                   for p in values)):
        raise ValueError(
            f"`patch_size` must be an int or {dims} positive ints (d, h, w) in mode '3d'. "
            f"Received: patch_size={patch_size!r}")
    return [int(p) for p in values]


def check_spec(spec):
    """Validate a stored spec (e.g. read back from JSON) and return it normalized.

    Args:
        spec: a dict from :func:`make_preprocessing_spec` (unknown keys are ignored).

    Returns:
        The spec as :func:`make_preprocessing_spec` builds it.

    Raises:
        ValueError: if ``spec`` is not a dict or holds an invalid entry.

    Example:
        >>> check_spec({"mode": "2.5d", "context": 2})["context"]
        2
    """
    if not isinstance(spec, dict):
        raise ValueError(f"`spec` must be a dict from make_preprocessing_spec(). Received: spec={spec!r}")
    known = {"mode", "context", "normalization", "target_spacing", "slice_axis", "patch_size"}
    return make_preprocessing_spec(**{k: v for k, v in spec.items() if k in known})
