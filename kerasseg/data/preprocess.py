"""Preprocessing of images and label maps: resampling, intensity normalization,
cropping/padding, 2-D and 2.5-D slice extraction and foreground-aware patch sampling.

Pure NumPy/SciPy functions on the array conventions of :mod:`kerasseg.data.types`:
an image is float32 ``(D, H, W, C)``, a label map is an integer ``(D, H, W)`` array and a
:class:`~kerasseg.data.types.Geometry` holds spacing, origin and direction in SimpleITK's
``(x, y, z)`` order. The same functions serve training (:mod:`kerasseg.data.pipeline`) and
inference, so that a model always sees its inputs prepared the same way.
"""

import json

import numpy as np
from scipy import ndimage

from kerasseg.data.normalization import (
    NAMED_NORMALIZATIONS,
    NORMALIZATION_METHODS,
    ct_window,
    minmax,
    normalization_spec,
    normalize_array,
    percentile_clip,
    zscore,
)
from kerasseg.data.types import Geometry

__all__ = [
    "resample",
    "resample_label",
    "resample_to_shape",
    "zscore",
    "percentile_clip",
    "ct_window",
    "minmax",
    "Normalizer",
    "NORMALIZATION_METHODS",
    "NAMED_NORMALIZATIONS",
    "normalization_spec",
    "crop_or_pad",
    "uncrop",
    "extract_slice",
    "extract_slices",
    "class_locations",
    "sample_patch_start",
    "sample_patch",
]

CROP_MODES = ("center", "start", "end", "random")


# --------------------------------------------------------------------------- resampling


def _check_image(image, name="image"):
    image = np.asarray(image)
    if image.ndim != 4:
        raise ValueError(
            f"`{name}` must be a (D, H, W, C) array. Received: {name} with shape {image.shape}"
        )
    return image


def _target_spacing_zyx(geometry, target_spacing):
    """Target spacing in array order ``(z, y, x)``; ``None`` keeps an axis."""
    values = tuple(target_spacing)
    if len(values) != geometry.ndim:
        raise ValueError(
            f"`target_spacing` must have {geometry.ndim} entries in (x, y"
            f"{', z' if geometry.ndim == 3 else ''}) order, like the geometry's spacing. "
            f"Received: target_spacing={target_spacing}"
        )
    for value in values:
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ValueError(
                "`target_spacing` entries must be positive numbers or None. "
                f"Received: target_spacing={target_spacing}"
            )
    zyx = tuple(reversed(values))
    return zyx if len(zyx) == 3 else (None,) + zyx


def _resampled_shape(shape_zyx, spacing_zyx, target_zyx):
    return tuple(
        int(n) if t is None else max(1, int(round(n * s / t)))
        for n, s, t in zip(shape_zyx, spacing_zyx, target_zyx)
    )


def _zoom(array, shape, order):
    """Resample the spatial array ``array`` to ``shape`` (pixel extents aligned)."""
    shape = tuple(int(n) for n in shape)
    if array.shape == shape:
        return array.copy()
    factors = [new / old for new, old in zip(shape, array.shape)]
    return ndimage.zoom(
        array, factors, order=order, mode="nearest", grid_mode=True, prefilter=order > 1
    )


def _geometry_for_shape(geometry, old_shape_zyx, new_shape_zyx):
    """Geometry of the same physical extent sampled on ``new_shape_zyx`` voxels."""
    ndim = geometry.ndim
    old_n = np.array(tuple(reversed(old_shape_zyx))[:ndim], dtype=np.float64)
    new_n = np.array(tuple(reversed(new_shape_zyx))[:ndim], dtype=np.float64)
    old_spacing = np.asarray(geometry.spacing, dtype=np.float64)
    new_spacing = old_spacing * old_n / new_n
    direction = np.asarray(geometry.direction, dtype=np.float64).reshape(ndim, ndim)
    # The first voxel's outer corner stays where it was; its centre moves by half the
    # change of the voxel size, along the image axes.
    origin = np.asarray(geometry.origin, dtype=np.float64) + direction @ (
        0.5 * (new_spacing - old_spacing)
    )
    return Geometry(
        spacing=tuple(float(v) for v in new_spacing),
        origin=tuple(float(v) for v in origin),
        direction=tuple(float(v) for v in geometry.direction),
    )


def resample_to_shape(array, shape, order=1):
    """Resample an array to a new spatial shape, keeping its physical extent.

    Voxel extents are aligned (the first and last voxels' outer faces stay in place), so
    resampling to shape ``S`` and back to the original shape is the inverse mapping used
    to take a prediction back to the grid of its input.

    Args:
        array: spatial array with ``len(shape)`` dimensions, optionally followed by one
            trailing channel axis (for example ``(D, H, W, C)`` images or ``(D, H, W, K)``
            class probabilities), which is not resampled.
        shape: the new spatial shape.
        order: spline order: 0 nearest (label maps), 1 linear (images, probabilities),
            up to 5.

    Returns:
        The resampled array, same dtype as ``array``.

    Raises:
        ValueError: if ``array`` has neither ``len(shape)`` nor ``len(shape) + 1``
            dimensions, or ``order`` is not in 0..5.

    Example:
        >>> probs = np.random.rand(20, 32, 32, 3).astype("float32")
        >>> resample_to_shape(probs, (40, 64, 64)).shape
        (40, 64, 64, 3)
    """
    array = np.asarray(array)
    shape = tuple(int(n) for n in shape)
    if order not in range(6):
        raise ValueError(f"`order` must be one of [0, 1, 2, 3, 4, 5]. Received: order={order}")
    if any(n < 1 for n in shape):
        raise ValueError(f"`shape` entries must be positive. Received: shape={shape}")
    if array.ndim == len(shape):
        return _zoom(array, shape, order)
    if array.ndim == len(shape) + 1:
        channels = [_zoom(array[..., c], shape, order) for c in range(array.shape[-1])]
        return np.stack(channels, axis=-1).astype(array.dtype, copy=False)
    raise ValueError(
        f"`array` must have {len(shape)} spatial dimensions and optionally one channel "
        f"axis. Received: array with shape {array.shape} and shape={shape}"
    )


def resample(image, geometry, target_spacing, order=1):
    """Resample an image to a target voxel spacing (linear interpolation by default).

    The physical extent of the image is kept: the new shape is the old one times
    ``spacing / target_spacing``, rounded, and the returned geometry's spacing is the
    target up to that rounding (exactly the target when the extent is a whole number of
    target voxels). The origin moves by half the change of the voxel size, since it is
    the centre of the first voxel.

    Args:
        image: float array ``(D, H, W, C)``.
        geometry: the image's :class:`Geometry` (spacing in ``(x, y, z)`` order; a 2-D
            geometry describes ``(x, y)`` and leaves the ``D`` axis untouched).
        target_spacing: new spacing in the geometry's ``(x, y[, z])`` order; a ``None``
            entry keeps that axis as it is (for example ``(0.6, 0.6, None)`` resamples
            in-plane only, as usual for anisotropic MRI). ``None`` returns the input.
        order: spline order, 1 (linear) by default; 3 for cubic.

    Returns:
        ``(resampled_image, new_geometry)``; the image is float32.

    Raises:
        ValueError: if ``image`` is not 4-D or ``target_spacing`` does not match the
            geometry's dimension or holds non-positive values.

    Example:
        >>> image = np.zeros((10, 20, 20, 1), "float32")
        >>> geometry = Geometry(spacing=(1.0, 1.0, 2.0))
        >>> out, g = resample(image, geometry, (0.5, 0.5, None))
        >>> out.shape, g.spacing
        ((10, 40, 40, 1), (0.5, 0.5, 2.0))
    """
    image = _check_image(image)
    if target_spacing is None:
        return image.astype(np.float32, copy=True), geometry
    target = _target_spacing_zyx(geometry, target_spacing)
    new_shape = _resampled_shape(image.shape[:3], geometry.spacing_zyx, target)
    out = resample_to_shape(image.astype(np.float32, copy=False), new_shape, order=order)
    return out, _geometry_for_shape(geometry, image.shape[:3], new_shape)


def resample_label(label, geometry, target_spacing):
    """Resample a label map to a target spacing with nearest-neighbour interpolation.

    Uses the same grid as :func:`resample`, so an image and its mask stay aligned; the
    result holds only values present in the input.

    Args:
        label: integer array ``(D, H, W)`` (a boolean region of interest works too).
        geometry: the label map's :class:`Geometry`.
        target_spacing: as in :func:`resample`.

    Returns:
        ``(resampled_label, new_geometry)``, the label with the input's dtype.

    Raises:
        ValueError: if ``label`` is not 3-D or ``target_spacing`` is invalid.

    Example:
        >>> label = np.zeros((10, 20, 20), "uint8")
        >>> out, g = resample_label(label, Geometry(spacing=(1.0, 1.0, 2.0)), (2.0, 2.0, 2.0))
        >>> out.shape
        (10, 10, 10)
    """
    label = np.asarray(label)
    if label.ndim != 3:
        raise ValueError(
            f"`label` must be a (D, H, W) array. Received: label with shape {label.shape}"
        )
    if target_spacing is None:
        return label.copy(), geometry
    target = _target_spacing_zyx(geometry, target_spacing)
    new_shape = _resampled_shape(label.shape, geometry.spacing_zyx, target)
    dtype = label.dtype
    work = label.astype(np.uint8) if dtype == bool else label
    out = _zoom(work, new_shape, order=0).astype(dtype, copy=False)
    return out, _geometry_for_shape(geometry, label.shape, new_shape)


# ------------------------------------------------------------------ intensity normalization
# The registry, its validation and both implementations (NumPy for training and inference,
# TensorFlow for exported graphs) live in kerasseg.data.normalization; zscore,
# percentile_clip, ct_window and minmax are re-exported from there.


class Normalizer:
    """A serializable intensity normalization: a method name and its parameters.

    The same object (or its dict/JSON form) is stored with a model so that inference and
    export normalize inputs exactly as training did. The methods, their parameters and
    defaults and the validation are those of the one registry,
    :data:`kerasseg.data.normalization.METHOD_PARAMS` (see its table), which the exported
    graphs use too.

    Methods: ``"none"``, ``"scale"`` (``scale`` required, ``offset=0``), ``"fixed"``
    (``mean``, ``std`` required), ``"zscore"`` (``nonzero=False``), ``"minmax"``
    (``min=None, max=None``), ``"percentile_clip"`` (``lower=0.5, upper=99.5,
    rescale=False``), ``"percentile_zscore"`` (``lower, upper, nonzero``: clip to the
    percentiles, then z-score, nnU-Net's recipe for MRI) and ``"ct_window"``
    (``center``, ``width``, both required).

    Args:
        method: one of :data:`NORMALIZATION_METHODS`.
        **params: the method's parameters; missing ones take their defaults.

    Raises:
        ValueError: for an unknown method, an unknown parameter, a missing required one or
            an invalid value (the same messages as :func:`normalization_spec`).

    Example:
        >>> norm = Normalizer("ct_window", center=40, width=400)
        >>> norm.to_dict()
        {'method': 'ct_window', 'params': {'center': 40.0, 'width': 400.0}}
        >>> Normalizer.from_json(norm.to_json()) == norm
        True
    """

    def __init__(self, method="zscore", **params):
        spec = normalization_spec({"method": method, "params": params})
        self.method = spec["method"]
        self.params = spec["params"]

    def __call__(self, image, mask=None):
        """Normalize ``image`` (channels last); ``mask`` restricts the statistics.

        Args:
            image: array ``(..., C)``.
            mask: optional boolean array of the spatial shape (used by the z-score and
                percentile methods).

        Returns:
            float32 array of the same shape.

        Raises:
            ValueError: for per-channel parameters that do not fit the image's channels or
                a ``mask`` of the wrong shape.
        """
        return normalize_array(image, self.to_dict(), mask=mask)

    def to_dict(self):
        """Return ``{"method": ..., "params": {...}}`` (JSON-able)."""
        return {"method": self.method, "params": dict(self.params)}

    get_config = to_dict

    def to_json(self):
        """Return the JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, config):
        """Rebuild from :meth:`to_dict` output (``params`` may be omitted)."""
        if not isinstance(config, dict) or "method" not in config:
            raise ValueError(
                "`config` must be a dict with keys 'method' and optionally 'params'. "
                f"Received: config={config!r}"
            )
        return cls.from_spec(config)

    from_config = from_dict

    @classmethod
    def from_json(cls, text):
        """Rebuild from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_spec(cls, spec):
        """Accept any description :func:`normalization_spec` accepts, or a ``Normalizer``.

        Args:
            spec: a :class:`Normalizer`, ``None`` (= ``"none"``), a method name, or a dict
                (canonical ``{"method", "params"}`` or flat).

        Returns:
            A :class:`Normalizer`.

        Raises:
            ValueError: for an invalid description (see :func:`normalization_spec`).

        Example:
            >>> Normalizer.from_spec("zscore").method
            'zscore'
        """
        if isinstance(spec, Normalizer):
            return spec
        canonical = normalization_spec(spec)
        return cls(canonical["method"], **canonical["params"])

    def __eq__(self, other):
        return isinstance(other, Normalizer) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.to_json())

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"Normalizer({self.method!r}{args})"


# ------------------------------------------------------------------------ crop and pad


def _window(array, offsets, size, pad_value):
    """``out[i] = array[i + offsets]`` over the leading ``len(size)`` axes, padded."""
    out = np.full(tuple(size) + array.shape[len(size):], pad_value, dtype=array.dtype)
    src, dst = [], []
    for off, n_out, n_in in zip(offsets, size, array.shape):
        lo = max(0, -off)
        hi = min(n_out, n_in - off)
        if hi <= lo:
            return out
        dst.append(slice(lo, hi))
        src.append(slice(lo + off, hi + off))
    out[tuple(dst)] = array[tuple(src)]
    return out


def crop_or_pad(array, shape, mode="center", pad_value=0, rng=None):
    """Crop and/or pad the leading axes of an array to ``shape``.

    Args:
        array: array whose first ``len(shape)`` axes are resized (trailing axes, such as
            channels, are kept).
        shape: target size per leading axis; ``None`` keeps an axis.
        mode: where the kept window sits: ``"center"`` (padding split evenly, the extra
            voxel after), ``"start"``, ``"end"`` or ``"random"`` (needs ``rng``).
        pad_value: value of padded voxels.
        rng: ``numpy.random.Generator`` for ``mode="random"``.

    Returns:
        ``(out, offsets)``: ``out[i] == array[i + offsets]`` wherever ``i + offsets`` lies
        inside ``array`` (a negative offset means padding before). Pass ``offsets`` to
        :func:`uncrop` to go back.

    Raises:
        ValueError: for an unknown ``mode``, a ``shape`` longer than ``array.ndim``, or
            ``mode="random"`` without ``rng``.

    Example:
        >>> out, offsets = crop_or_pad(np.arange(5), (3,))
        >>> out.tolist(), offsets
        ([1, 2, 3], (1,))
    """
    array = np.asarray(array)
    if mode not in CROP_MODES:
        raise ValueError(f"`mode` must be one of {list(CROP_MODES)}. Received: mode={mode!r}")
    shape = tuple(shape)
    if len(shape) > array.ndim:
        raise ValueError(
            f"`shape` must have at most array.ndim={array.ndim} entries. Received: shape={shape}"
        )
    if mode == "random" and rng is None:
        raise ValueError("`rng` must be a numpy.random.Generator when mode='random'. Received: rng=None")
    size = tuple(array.shape[i] if s is None else int(s) for i, s in enumerate(shape))
    offsets = []
    for n, s in zip(array.shape, size):
        if mode == "center":
            off = (n - s) // 2 if n >= s else -((s - n) // 2)
        elif mode == "start":
            off = 0
        elif mode == "end":
            off = n - s
        else:
            off = int(rng.integers(min(0, n - s), max(0, n - s) + 1))
        offsets.append(int(off))
    offsets = tuple(offsets)
    return _window(array, offsets, size, pad_value), offsets


def uncrop(array, offsets, shape, fill_value=0):
    """Invert :func:`crop_or_pad`: place ``array`` back on a grid of ``shape``.

    Args:
        array: the cropped/padded array (or a prediction computed on it).
        offsets: the offsets returned by :func:`crop_or_pad`.
        shape: the original size of the leading axes.
        fill_value: value of the voxels that had been cropped away.

    Returns:
        Array of shape ``shape + array.shape[len(shape):]``.

    Raises:
        ValueError: if ``offsets`` and ``shape`` differ in length.

    Example:
        >>> out, offsets = crop_or_pad(np.arange(5), (3,))
        >>> uncrop(out, offsets, (5,)).tolist()
        [0, 1, 2, 3, 0]
    """
    array = np.asarray(array)
    shape, offsets = tuple(int(s) for s in shape), tuple(int(o) for o in offsets)
    if len(shape) != len(offsets):
        raise ValueError(
            f"`offsets` and `shape` must have the same length. Received: offsets={offsets}, shape={shape}"
        )
    return _window(array, tuple(-o for o in offsets), shape, fill_value)


# ------------------------------------------------------------------------------ slices


def _check_axis(axis):
    if axis not in (0, 1, 2):
        raise ValueError(f"`axis` must be one of [0, 1, 2]. Received: axis={axis}")


def _check_context(context):
    if not isinstance(context, (int, np.integer)) or context < 0:
        raise ValueError(f"`context` must be an integer >= 0. Received: context={context!r}")


def _stack_context(volume, indices):
    """``volume`` (N, H, W, C), ``indices`` (..., K) -> (..., H, W, C * K), modality-major."""
    block = volume[indices]  # (..., K, H, W, C)
    k = indices.shape[-1]
    lead = indices.shape[:-1]
    block = np.moveaxis(block, len(lead), -1)  # (..., H, W, C, K)
    return block.reshape(lead + block.shape[len(lead):-2] + (block.shape[-2] * k,))


def extract_slice(array, index, axis=0, context=0):
    """Extract one 2-D slice, optionally with neighbouring slices as channels (2.5-D).

    Args:
        array: image ``(D, H, W, C)`` or label map ``(D, H, W)``.
        index: slice index along ``axis``.
        axis: 0 (axial ``(H, W)`` slices), 1 or 2.
        context: number of neighbours on each side added as channels (images only);
            slices beyond the volume repeat the edge slice. Channel
            ``c * (2 * context + 1) + context + j`` holds modality ``c`` at offset ``j``.

    Returns:
        ``(H', W', C * (2 * context + 1))`` for an image, ``(H', W')`` for a label map.

    Raises:
        ValueError: for an invalid ``axis``/``context``, ``context > 0`` on a label map,
            or ``index`` out of range.

    Example:
        >>> vol = np.arange(3, dtype="float32").reshape(3, 1, 1, 1)
        >>> extract_slice(vol, 0, context=1).ravel().tolist()
        [0.0, 0.0, 1.0]
    """
    array = np.asarray(array)
    _check_axis(axis)
    _check_context(context)
    n = array.shape[axis]
    if not 0 <= index < n:
        raise ValueError(f"`index` must be in [0, {n}). Received: index={index}")
    if array.ndim == 3:
        if context:
            raise ValueError(f"`context` must be 0 for a label map. Received: context={context}")
        return np.take(array, index, axis=axis)
    volume = np.moveaxis(_check_image(array, "array"), axis, 0)
    indices = np.clip(np.arange(index - context, index + context + 1), 0, n - 1)
    return _stack_context(volume, indices)


def extract_slices(array, axis=0, context=0):
    """Extract every 2-D slice along ``axis`` (see :func:`extract_slice`).

    Args:
        array: image ``(D, H, W, C)`` or label map ``(D, H, W)``.
        axis: slicing axis.
        context: neighbours on each side as extra channels (images only).

    Returns:
        ``(N, H', W', C * (2 * context + 1))`` for an image, ``(N, H', W')`` for a label.

    Raises:
        ValueError: as :func:`extract_slice`.

    Example:
        >>> extract_slices(np.zeros((4, 8, 8, 2), "float32"), context=1).shape
        (4, 8, 8, 6)
    """
    array = np.asarray(array)
    _check_axis(axis)
    _check_context(context)
    if array.ndim == 3:
        if context:
            raise ValueError(f"`context` must be 0 for a label map. Received: context={context}")
        return np.moveaxis(array, axis, 0).copy()
    volume = np.moveaxis(_check_image(array, "array"), axis, 0)
    n = volume.shape[0]
    offsets = np.arange(-context, context + 1)
    indices = np.clip(np.arange(n)[:, None] + offsets[None, :], 0, n - 1)
    return _stack_context(volume, indices)


# -------------------------------------------------------------------- patch sampling


def class_locations(label, classes=None, max_per_class=10000, seed=0):
    """Voxel coordinates of each foreground class, for foreground-aware sampling.

    Args:
        label: integer label map (2-D or 3-D).
        classes: classes to index; by default every nonzero value present.
        max_per_class: keep at most this many voxels per class (a fixed-seed random
            subset), which bounds memory on large volumes.
        seed: seed of that subset.

    Returns:
        dict ``{class: int array (n, label.ndim)}``; classes absent from ``label`` are
        left out.

    Example:
        >>> locs = class_locations(np.array([[0, 2], [1, 2]]))
        >>> sorted(locs), locs[1].tolist()
        ([1, 2], [[1, 0]])
    """
    label = np.asarray(label)
    if classes is None:
        classes = [int(c) for c in np.unique(label) if c != 0]
    rng = np.random.default_rng(seed)
    out = {}
    for c in classes:
        coords = np.argwhere(label == c)
        if len(coords) == 0:
            continue
        if len(coords) > max_per_class:
            keep = np.sort(rng.choice(len(coords), size=max_per_class, replace=False))
            coords = coords[keep]
        out[int(c)] = coords.astype(np.int64)
    return out


def _check_patch_size(patch_size, shape):
    patch_size = tuple(int(p) for p in patch_size)
    if len(patch_size) != len(shape) or any(p < 1 for p in patch_size):
        raise ValueError(
            f"`patch_size` must have {len(shape)} positive entries for an array of spatial "
            f"shape {tuple(shape)}. Received: patch_size={patch_size}"
        )
    return patch_size


def sample_patch_start(shape, patch_size, rng, foreground_prob=0.33, locations=None):
    """Choose the corner of a patch, centred on foreground with probability ``foreground_prob``.

    As nnU-Net's oversampling: with probability ``foreground_prob`` a class is drawn
    uniformly among the foreground classes present, then one of its voxels, and the patch
    is placed around it (shifted to stay inside the array when the array is larger than
    the patch); otherwise the patch is placed uniformly at random. Along an axis where the
    array is smaller than the patch, the patch is centred (the rest is padding).

    Args:
        shape: spatial shape of the array, 2-D or 3-D.
        patch_size: patch size, same length as ``shape``.
        rng: ``numpy.random.Generator``.
        foreground_prob: probability of a foreground-centred patch, in [0, 1].
        locations: output of :func:`class_locations`; no foreground → random patches.

    Returns:
        ``(start, foreground)``: the patch's first voxel (may be negative, meaning
        padding) and whether the patch was centred on a foreground voxel.

    Raises:
        ValueError: for a ``patch_size`` of the wrong length or ``foreground_prob``
            outside [0, 1].

    Example:
        >>> rng = np.random.default_rng(0)
        >>> start, fg = sample_patch_start((10, 10), (4, 4), rng, 1.0, {1: np.array([[5, 5]])})
        >>> start, fg
        ((3, 3), True)
    """
    shape = tuple(int(n) for n in shape)
    patch_size = _check_patch_size(patch_size, shape)
    if not 0.0 <= foreground_prob <= 1.0:
        raise ValueError(
            f"`foreground_prob` must be in [0, 1]. Received: foreground_prob={foreground_prob}"
        )
    center = None
    classes = sorted(c for c, v in (locations or {}).items() if len(v))
    if classes and rng.random() < foreground_prob:
        coords = locations[classes[int(rng.integers(len(classes)))]]
        center = coords[int(rng.integers(len(coords)))]
    start = []
    for axis, (n, p) in enumerate(zip(shape, patch_size)):
        if n < p:
            start.append(-((p - n) // 2))
        elif center is None:
            start.append(int(rng.integers(0, n - p + 1)))
        else:
            start.append(int(np.clip(int(center[axis]) - p // 2, 0, n - p)))
    return tuple(start), center is not None


def sample_patch(image, label, patch_size, rng, foreground_prob=0.33, locations=None, pad_value=0.0):
    """Sample one image/label patch, foreground-centred with probability ``foreground_prob``.

    Works for 2-D (``image (H, W, C)``, ``label (H, W)``) and 3-D (``image (D, H, W, C)``,
    ``label (D, H, W)``) arrays; see :func:`sample_patch_start` for the placement.

    Args:
        image: image with channels last.
        label: label map of the image's spatial shape.
        patch_size: patch size per spatial axis.
        rng: ``numpy.random.Generator``.
        foreground_prob: probability of a foreground-centred patch.
        locations: precomputed :func:`class_locations` of ``label`` (computed when None).
        pad_value: image value for padding (labels are padded with 0).

    Returns:
        ``(image_patch, label_patch)``.

    Raises:
        ValueError: if ``label`` does not have the image's spatial shape, or as
            :func:`sample_patch_start`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> img, lab = sample_patch(np.zeros((64, 64, 1)), np.zeros((64, 64), int), (32, 32), rng)
        >>> img.shape, lab.shape
        ((32, 32, 1), (32, 32))
    """
    image, label = np.asarray(image), np.asarray(label)
    if image.shape[:-1] != label.shape:
        raise ValueError(
            f"`label` must have the image's spatial shape {image.shape[:-1]}. "
            f"Received: label with shape {label.shape}"
        )
    if locations is None:
        locations = class_locations(label)
    start, _ = sample_patch_start(label.shape, patch_size, rng, foreground_prob, locations)
    size = tuple(int(p) for p in patch_size)
    return _window(image, start, size, pad_value), _window(label, start, size, 0)
