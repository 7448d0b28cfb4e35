"""``tf.data`` pipelines for training and evaluation, and the per-case preprocessing that
training and inference share.

* A *preprocessing spec* (:func:`make_preprocessing_spec`) is a JSON-able dict naming
  everything that decides what a model sees: slicing mode, 2.5-D context, slicing axis,
  target spacing and intensity normalization. It is stored with a trained model and
  applied again by :func:`preprocess_case` at inference and export time.
* :func:`make_dataset` preprocesses and validates every case once, up front (a bad file
  raises :class:`~kerasseg.data.errors.DataError` naming it before any graph is built),
  keeps the volumes as arrays, and samples 2-D slices or patches per epoch with
  foreground oversampling and augmentation. Fixed seeds give the same sequence.
* :func:`make_eval_dataset` yields every slice of every volume, in order, unaugmented.
"""

import concurrent.futures
import hashlib
import json
import os
import re
from typing import NamedTuple, Optional, Tuple

import numpy as np

from kerasseg.data.augment import AUGMENT_BACKENDS, AlbumentationsAugmenter, get_augmentation, tf_augment
from kerasseg.data.errors import DataError
from kerasseg.data.preprocess import (
    Normalizer,
    _window,
    class_locations,
    crop_or_pad,
    extract_slice,
    resample,
    resample_label,
    resample_to_shape,
    sample_patch_start,
)
from kerasseg.data.types import CaseData, Geometry
from kerasseg.files import atomic_path

__all__ = [
    "MODES",
    "make_preprocessing_spec",
    "slice_axes",
    "preprocess_case",
    "PreparedCase",
    "prepare_case",
    "prepare_cases",
    "restore_prediction",
    "make_dataset",
    "make_eval_dataset",
]

MODES = ("2d", "2.5d")
SPEC_VERSION = 1
_MAX_LOCATIONS = 10000


# ------------------------------------------------------------------------- the spec


def make_preprocessing_spec(
    mode="2d", context=None, normalization="zscore", target_spacing=None, slice_axis=0, patch_size=None
):
    """Build (and validate) the JSON-able preprocessing spec stored with a model.

    Args:
        mode: ``"2d"`` (one slice per input) or ``"2.5d"`` (the slice plus ``context``
            neighbours on each side as extra channels).
        context: neighbours on each side; default 0 for ``"2d"`` and 1 for ``"2.5d"``.
        normalization: a method name of :class:`~kerasseg.data.preprocess.Normalizer`,
            its dict form or a ``Normalizer``.
        target_spacing: resampling target in ``(x, y[, z])`` order (``None`` entries keep
            an axis), or ``None`` for no resampling.
        slice_axis: array axis of ``(D, H, W)`` along which slices are taken (0: axial),
            or several distinct axes (e.g. ``(0, 1, 2)``) for a multi-view model: training
            draws slices across every listed axis and prediction averages the class
            probabilities of all views.
        patch_size: training patch size ``(h, w)`` (an int means square), or ``None``.

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
        context = 0 if mode == "2d" else 1
    if not isinstance(context, (int, np.integer)) or isinstance(context, bool) or context < 0:
        raise ValueError(f"`context` must be an integer >= 0. Received: context={context!r}")
    if mode == "2d" and context != 0:
        raise ValueError(f"`context` must be 0 when mode='2d' (use mode='2.5d'). Received: context={context}")
    if mode == "2.5d" and context < 1:
        raise ValueError(f"`context` must be >= 1 when mode='2.5d'. Received: context={context}")
    axes = _slice_axes(slice_axis)
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
        "patch_size": _patch_size(patch_size),
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


def _patch_size(patch_size):
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


def _check_spec(spec):
    """Validate a stored spec (e.g. read back from JSON) and return it normalized."""
    if not isinstance(spec, dict):
        raise ValueError(f"`spec` must be a dict from make_preprocessing_spec(). Received: spec={spec!r}")
    known = {"mode", "context", "normalization", "target_spacing", "slice_axis", "patch_size"}
    return make_preprocessing_spec(**{k: v for k, v in spec.items() if k in known})


# ------------------------------------------------------------------- one case at a time


def _describe(case, case_id):
    paths = []
    for path in list(getattr(case, "image_paths", None) or []):
        paths.append(f"image {os.fspath(path)}")
    label_path = getattr(case, "label_path", None)
    if label_path is not None:
        paths.append(f"label {os.fspath(label_path)}")
    return f"case {case_id!r}" + (f" ({', '.join(paths)})" if paths else "")


def _integer_label(label, where):
    label = np.asarray(label)
    if np.issubdtype(label.dtype, np.integer) or label.dtype == bool:
        return label
    if not np.all(np.isfinite(label)) or not np.all(label == np.round(label)):
        raise DataError(f"The label map of {where} must hold integer class indices; found non-integer values.")
    return label.astype(np.int32)


def preprocess_case(case_data, spec):
    """Apply a preprocessing spec to one loaded case: normalize, then resample.

    Normalization comes first, on the original voxels (as nnU-Net), then the image is
    resampled linearly and the label map (and region of interest) with nearest neighbour.

    Args:
        case_data: a :class:`~kerasseg.data.types.CaseData` (``image`` float ``(D, H, W, C)``,
            ``label`` ``(D, H, W)`` or ``None``, ``geometry``, optional ``roi``).
        spec: dict from :func:`make_preprocessing_spec`.

    Returns:
        A new ``CaseData`` with the preprocessed arrays and the resampled geometry.

    Raises:
        ValueError: for an invalid spec or arrays of the wrong shape.

    Example:
        >>> spec = make_preprocessing_spec(target_spacing=(2.0, 2.0, 2.0))
        >>> data = CaseData(np.random.rand(8, 8, 8, 1).astype("float32"), None, Geometry())
        >>> preprocess_case(data, spec).image.shape
        (4, 4, 4, 1)
    """
    spec = _check_spec(spec)
    image, label, geometry = case_data.image, case_data.label, case_data.geometry
    roi = case_data.roi if len(case_data) > 3 else None
    image = np.asarray(image)
    if image.ndim != 4:
        raise ValueError(f"`image` must be a (D, H, W, C) array. Received: image with shape {image.shape}")
    if label is not None and np.shape(label) != image.shape[:3]:
        raise ValueError(
            f"`label` must have the image's shape {image.shape[:3]}. Received: label with shape {np.shape(label)}"
        )
    geometry = geometry if geometry is not None else Geometry.identity(3)
    target = spec["target_spacing"]
    if target is not None and len(target) != geometry.ndim:
        raise ValueError(
            f"`target_spacing` must have {geometry.ndim} entries for this {geometry.ndim}-D image. "
            f"Received: target_spacing={target}"
        )
    image = Normalizer.from_dict(spec["normalization"])(image)
    new_image, new_geometry = resample(image, geometry, target)
    new_label = None if label is None else resample_label(np.asarray(label), geometry, target)[0]
    new_roi = None if roi is None else resample_label(np.asarray(roi, dtype=bool), geometry, target)[0]
    return CaseData(new_image, new_label, new_geometry, new_roi)


class PreparedCase(NamedTuple):
    """A case after :func:`prepare_case`: preprocessed arrays plus what is needed to go back.

    Attributes:
        case_id: the case's identifier.
        image: preprocessed float32 image ``(D', H', W', C)``.
        label: preprocessed label map ``(D', H', W')`` or ``None``.
        geometry: geometry of the preprocessed grid.
        roi: preprocessed region of interest or ``None``.
        original_shape: ``(D, H, W)`` before preprocessing.
        original_geometry: geometry before preprocessing (to write predictions back).
    """

    case_id: str
    image: np.ndarray
    label: Optional[np.ndarray]
    geometry: Geometry
    roi: Optional[np.ndarray]
    original_shape: Tuple[int, int, int]
    original_geometry: Geometry


def prepare_case(case, spec, case_id=None):
    """Load (if needed), check and preprocess one case.

    Args:
        case: a ``Case`` from :func:`kerasseg.data.load_dataset` (anything with ``load()``)
            or a :class:`~kerasseg.data.types.CaseData`.
        spec: dict from :func:`make_preprocessing_spec`.
        case_id: identifier used in messages; defaults to ``case.case_id``.

    Returns:
        A :class:`PreparedCase`.

    Raises:
        DataError: if the case cannot be read or holds invalid values (NaN intensities,
            non-integer labels, mismatched shapes); the message names the case's files.

    Example:
        >>> spec = make_preprocessing_spec()
        >>> data = CaseData(np.ones((2, 4, 4, 1), "float32"), np.zeros((2, 4, 4), "uint8"), Geometry())
        >>> prepare_case(data, spec, case_id="a").original_shape
        (2, 4, 4)
    """
    spec = _check_spec(spec)
    case_id = case_id if case_id is not None else str(getattr(case, "case_id", "case"))
    where = _describe(case, case_id)
    try:
        data = case.load() if hasattr(case, "load") else case
        if not isinstance(data, tuple) or len(data) < 3:
            raise DataError(f"{where} did not give (image, label, geometry). Received: {type(data).__name__}")
        image = np.asarray(data[0])
        if image.ndim != 4:
            raise DataError(f"The image of {where} must be (D, H, W, C). Received shape {image.shape}")
        if not np.all(np.isfinite(image)):
            raise DataError(f"The image of {where} holds NaN or infinite values.")
        label = data[1]
        if label is not None:
            label = _integer_label(label, where)
            if label.shape != image.shape[:3]:
                raise DataError(
                    f"The label map of {where} has shape {label.shape}; the image has {image.shape[:3]}."
                )
        roi = data[3] if len(data) > 3 else None
        processed = preprocess_case(CaseData(image.astype(np.float32, copy=False), label, data[2], roi), spec)
    except DataError:
        raise
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        raise DataError(f"Could not prepare {where}: {error}") from error
    return PreparedCase(
        case_id=case_id,
        image=processed.image,
        label=processed.label,
        geometry=processed.geometry,
        roi=processed.roi,
        original_shape=tuple(int(n) for n in image.shape[:3]),
        original_geometry=data[2],
    )


def restore_prediction(prediction, prepared, order=None):
    """Take a prediction on the preprocessed grid back to the case's original grid.

    Args:
        prediction: label map ``(D', H', W')`` or class scores ``(D', H', W', K)`` on the
            grid of ``prepared.image``.
        prepared: the :class:`PreparedCase` the prediction was made on.
        order: interpolation order; by default 0 (nearest) for integer label maps and 1
            (linear) for float scores.

    Returns:
        Array on the original ``(D, H, W)`` grid (plus the class axis for scores).

    Raises:
        ValueError: if the prediction's spatial shape is not the preprocessed shape.

    Example:
        >>> spec = make_preprocessing_spec(target_spacing=(2.0, 2.0, 2.0))
        >>> data = CaseData(np.ones((8, 8, 8, 1), "float32"), None, Geometry())
        >>> prepared = prepare_case(data, spec, case_id="a")
        >>> restore_prediction(np.zeros((4, 4, 4), "uint8"), prepared).shape
        (8, 8, 8)
    """
    prediction = np.asarray(prediction)
    grid = prepared.image.shape[:3]
    if prediction.shape[:3] != grid:
        raise ValueError(
            f"`prediction` must have the preprocessed shape {grid} (plus an optional class axis). "
            f"Received: prediction with shape {prediction.shape}"
        )
    if order is None:
        order = 0 if np.issubdtype(prediction.dtype, np.integer) or prediction.dtype == bool else 1
    return resample_to_shape(prediction, prepared.original_shape, order=order)


# ---------------------------------------------------------------- prepared case store


class _Volume(NamedTuple):
    image: np.ndarray  # (N, H, W, C), slicing axis first
    label: np.ndarray  # (N, H, W)
    locations: dict


def _source_items(source):
    if isinstance(source, (CaseData, PreparedCase)) or hasattr(source, "load") and not hasattr(source, "__len__"):
        raise ValueError(
            "`source` must be a CaseDataset or a list of cases / CaseData. "
            f"Received: a single {type(source).__name__}; wrap it in a list."
        )
    try:
        items = [source[i] for i in range(len(source))]
    except TypeError as error:
        raise ValueError(
            "`source` must be a CaseDataset or a list of cases / CaseData. "
            f"Received: source={type(source).__name__}"
        ) from error
    if not items:
        raise ValueError("`source` must hold at least one case. Received: an empty source")
    ids = [str(getattr(item, "case_id", f"case_{i}")) for i, item in enumerate(items)]
    return items, ids


def _case_identity(item, spec_key):
    digest = hashlib.sha256(spec_key.encode())
    paths = list(getattr(item, "image_paths", None) or []) + [getattr(item, "label_path", None)]
    paths = [p for p in paths if p is not None]
    if hasattr(item, "load") and paths:
        for path in paths:
            stat = os.stat(path)
            digest.update(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    else:
        data = item.load() if hasattr(item, "load") else item
        for array in data[:2]:
            if array is not None:
                array = np.ascontiguousarray(array)
                digest.update(f"{array.shape}{array.dtype}".encode())
                digest.update(array.tobytes())
        digest.update(repr(data[2]).encode())
    return digest.hexdigest()[:20]


def _atomic_save(path, array):
    with atomic_path(path, ".tmp") as temp, open(temp, "wb") as handle:
        np.save(handle, array)


def _check_cases(items, ids, channels, labels, num_classes, patch_size):
    """Checks across cases; ``labels`` have the slicing axis first. Returns num_classes."""
    for i, c in enumerate(channels):
        if c != channels[0]:
            raise DataError(
                f"All cases must have the same number of channels: {_describe(items[0], ids[0])} has "
                f"{channels[0]}, {_describe(items[i], ids[i])} has {c}."
            )
    max_label = max(int(label.max()) if label.size else 0 for label in labels)
    if num_classes is None:
        num_classes = max(2, max_label + 1)
    for i, label in enumerate(labels):
        if label.size and (int(label.min()) < 0 or int(label.max()) >= num_classes):
            raise DataError(
                f"The label map of {_describe(items[i], ids[i])} holds values "
                f"{sorted(int(v) for v in np.unique(label))}; expected class indices in "
                f"[0, {num_classes}) for num_classes={num_classes}."
            )
    slice_shapes = sorted({tuple(label.shape[1:]) for label in labels})
    if patch_size is None and len(slice_shapes) > 1:
        raise ValueError(
            "`patch_size` must be given when cases have different slice shapes (batching needs "
            f"one shape); found {slice_shapes[:5]}{' ...' if len(slice_shapes) > 5 else ''}. "
            "Received: patch_size=None. Pass e.g. patch_size=(256, 256): slices are then cropped "
            "or padded to it."
        )
    return int(num_classes)


class _CaseStore:
    """Preprocessed volumes, in memory, in a disk cache, or re-read on every access.

    Entry ``k`` is one view of one case: the case's arrays with view ``k``'s slicing axis
    first. A single-axis spec has one view per case, a multi-view spec one per listed axis
    (``self.views[k]`` is ``(case index, axis)``).
    """

    def __init__(self, source, spec, cache, require_labels, num_classes, patch_size, workers=None):
        items, ids = _source_items(source)
        self.spec, self.ids, self.items = spec, ids, items
        self.axes = slice_axes(spec)
        self.views = [(i, axis) for i in range(len(items)) for axis in self.axes]
        self.cache = cache
        if cache is not None and cache != "memory":
            if not isinstance(cache, (str, os.PathLike)):
                raise ValueError(f"`cache` must be 'memory', a folder path or None. Received: cache={cache!r}")
            self.cache_dir = os.fspath(cache)
            os.makedirs(self.cache_dir, exist_ok=True)
        self.require_labels = require_labels
        workers = workers or min(8, os.cpu_count() or 1, len(items))
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = [view for views in pool.map(self._prepare, range(len(items))) for view in views]
        self.volumes = results if cache is not None else None
        self.shapes = [r.label.shape for r in results]
        self.channels = results[0].image.shape[-1]
        self.num_classes = _check_cases(
            [items[i] for i, _ in self.views], [ids[i] for i, _ in self.views],
            [r.image.shape[-1] for r in results], [r.label for r in results],
            num_classes, patch_size,
        )
        self.slice_shape = self.shapes[0][1:]

    def _prepare(self, i):
        item, case_id = self.items[i], self.ids[i]
        if self.cache not in (None, "memory"):
            key = _case_identity(item, json.dumps(self.spec, sort_keys=True))
            stem = os.path.join(self.cache_dir, f"{re.sub(r'[^A-Za-z0-9_.-]', '_', case_id)}-{key}")
            stems = [stem] if len(self.axes) == 1 else [f"{stem}-axis{a}" for a in self.axes]
            if all(os.path.exists(s + ".label.npy") and os.path.exists(s + ".image.npy") for s in stems):
                views = []
                for s in stems:
                    image = np.load(s + ".image.npy", mmap_mode="r")
                    label = np.load(s + ".label.npy", mmap_mode="r")
                    views.append(_Volume(image, label, class_locations(
                        label, max_per_class=_MAX_LOCATIONS, seed=i)))
                return views
            views = self._compute(i)
            for s, volume in zip(stems, views):
                _atomic_save(s + ".image.npy", volume.image)
                _atomic_save(s + ".label.npy", volume.label)
            return views
        return self._compute(i)

    def _compute(self, i):
        """Return case ``i`` as one ``_Volume`` per slicing axis."""
        item, case_id = self.items[i], self.ids[i]
        prepared = prepare_case(item, self.spec, case_id=case_id)
        label = prepared.label
        if label is None:
            if self.require_labels:
                raise DataError(f"{_describe(item, case_id)} has no label map; training and evaluation need one.")
            label = np.zeros(prepared.image.shape[:3], np.uint8)
        small = label.size == 0 or (label.min() >= 0 and label.max() < 256)
        views = []
        for axis in self.axes:
            image = np.ascontiguousarray(np.moveaxis(prepared.image, axis, 0), dtype=np.float32)
            view = np.ascontiguousarray(np.moveaxis(label, axis, 0), dtype=np.uint8 if small else np.int32)
            views.append(_Volume(image, view, class_locations(view, max_per_class=_MAX_LOCATIONS, seed=i)))
        return views

    def __len__(self):
        return len(self.views)

    def get(self, k):
        if self.volumes is not None:
            return self.volumes[k]
        case_index, axis = self.views[k]
        return self._compute(case_index)[self.axes.index(axis)]


def prepare_cases(source, spec, *, require_labels=True, num_classes=None, patch_size=None):
    """Preprocess and validate every case of ``source`` eagerly (threads), for inspection.

    The training and evaluation pipelines call this first, so that any bad file stops
    the program with a :class:`DataError` naming it before ``tf.data`` starts.

    Args:
        source: a CaseDataset, a list of cases, or a list of ``CaseData``.
        spec: dict from :func:`make_preprocessing_spec`.
        require_labels: raise if a case has no label map.
        num_classes: check that labels lie in ``[0, num_classes)``; inferred if None.
        patch_size: when None, every slice must have the same shape.

    Returns:
        A list of :class:`PreparedCase` (arrays on the preprocessed grid).

    Raises:
        DataError: for a case that cannot be read or holds invalid values.
        ValueError: for an invalid argument, or differing slice shapes without ``patch_size``.

    Example:
        >>> cases = [CaseData(np.ones((2, 4, 4, 1), "float32"), np.zeros((2, 4, 4), "uint8"), Geometry())]
        >>> prepare_cases(cases, make_preprocessing_spec())[0].image.shape
        (2, 4, 4, 1)
    """
    spec = _check_spec(spec)
    items, ids = _source_items(source)
    workers = max(1, min(8, os.cpu_count() or 1, len(items)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        prepared = list(pool.map(lambda pair: prepare_case(pair[0], spec, case_id=pair[1]), zip(items, ids)))
    axes = slice_axes(spec)
    labels = []
    for item, case_id, case in zip(items, ids, prepared):
        if case.label is None and require_labels:
            raise DataError(f"{_describe(item, case_id)} has no label map; training and evaluation need one.")
        label = case.label if case.label is not None else np.zeros(case.image.shape[:3], np.uint8)
        labels += [np.moveaxis(label, axis, 0) for axis in axes]
    views = len(axes)
    _check_cases([i for i in items for _ in range(views)], [i for i in ids for _ in range(views)],
                 [c.image.shape[-1] for c in prepared for _ in range(views)], labels, num_classes,
                 _patch_size(patch_size))
    return prepared


# --------------------------------------------------------------------- the pipelines


def _check_shard(shard):
    if shard is None:
        return None
    try:
        num, index = (int(v) for v in shard)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`shard` must be a pair (num_shards, index). Received: shard={shard!r}") from error
    if num < 1 or not 0 <= index < num:
        raise ValueError(f"`shard` must satisfy num_shards >= 1 and 0 <= index < num_shards. Received: shard={shard!r}")
    return num, index


def _options(explicit_shard):
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF if explicit_shard else tf.data.experimental.AutoShardPolicy.DATA
    )
    return options


def _window_slice(volume, z, starts, size, context):
    image = extract_slice(volume.image, z, axis=0, context=context)
    return _window(image, starts, size, 0.0), _window(volume.label[z], starts, size, 0)


def _resolve(spec, mode, context, normalization, target_spacing, slice_axis, patch_size):
    if spec is None:
        return make_preprocessing_spec(mode, context, normalization, target_spacing, slice_axis, patch_size)
    spec = dict(_check_spec(spec))
    if patch_size is not None:
        spec["patch_size"] = _patch_size(patch_size)
    return spec


def make_dataset(
    source,
    *,
    patch_size=None,
    batch_size=8,
    mode="2d",
    context=None,
    normalization="zscore",
    target_spacing=None,
    slice_axis=0,
    augment="default",
    augment_backend="albumentations",
    foreground_prob=0.33,
    cache="memory",
    shuffle=True,
    repeat=True,
    samples_per_epoch=None,
    seed=0,
    num_parallel_calls=None,
    shard=None,
    num_classes=None,
    drop_remainder=True,
    spec=None,
):
    """Build the training ``tf.data.Dataset`` of 2-D (or 2.5-D) slices or patches.

    Every case is loaded, preprocessed (normalized, resampled) and checked once, up front,
    in a thread pool; then each sample picks a case, a slice and a patch (centred on a
    random voxel of a random foreground class with probability ``foreground_prob``),
    augments it and batches. Sampling randomness comes from ``seed``: the same seed gives
    the same sequence of batches, whatever ``num_parallel_calls`` is.

    Args:
        source: a CaseDataset (:func:`kerasseg.data.load_dataset`), a list of its cases,
            or a list of :class:`~kerasseg.data.types.CaseData`.
        patch_size: ``(h, w)`` or int: slices are cropped/padded to it (needed when
            cases differ in slice shape). ``None`` uses whole slices.
        batch_size: examples per batch.
        mode: ``"2d"`` or ``"2.5d"``.
        context: neighbouring slices on each side as channels in ``"2.5d"`` (default 1).
        normalization: see :class:`~kerasseg.data.preprocess.Normalizer`.
        target_spacing: resampling target in ``(x, y[, z])`` order, ``None`` entries
            keeping an axis; ``None``: no resampling.
        slice_axis: axis of ``(D, H, W)`` to slice along, or several (multi-view: each
            sample comes from a case and view drawn uniformly).
        augment: one of ``"none"``, ``"light"``, ``"default"``, ``"strong"``, or a dict
            (see :func:`kerasseg.data.augment.get_augmentation`).
        augment_backend: ``"albumentations"`` (NumPy, per example) or ``"tf"`` (in-graph
            TF ops, per batch, faster); both apply every transform, elastic included.
        foreground_prob: fraction of samples centred on a foreground voxel.
        cache: ``"memory"`` (default), a folder path (preprocessed arrays stored as
            ``.npy`` and memory-mapped; reused across runs), or ``None`` (re-read and
            preprocess a case for each sample: slow, minimal memory).
        shuffle: pick the case of each sample at random; ``False`` cycles through cases.
        repeat: ``True`` for an endless dataset (pass ``steps_per_epoch`` to ``fit``);
            ``False`` for ``samples_per_epoch`` samples per iteration, each iteration
            drawing new (still seed-determined) samples.
        samples_per_epoch: samples per iteration when ``repeat=False``; default: the
            total number of slices.
        seed: seed of all sampling and augmentation.
        num_parallel_calls: parallelism of sampling/augmentation (default AUTOTUNE).
        shard: ``(num_shards, index)`` to give each worker a disjoint part of the sample
            stream; when ``None``, ``tf.distribute`` shards by data
            (``AutoShardPolicy.DATA``).
        num_classes: check labels against ``[0, num_classes)``; inferred if ``None``.
        drop_remainder: drop a last incomplete batch (fixed batch dimension).
        spec: a stored preprocessing spec; when given it replaces ``mode``, ``context``,
            ``normalization``, ``target_spacing`` and ``slice_axis``.

    Returns:
        ``tf.data.Dataset`` of ``(image float32 (B, h, w, C'), label int32 (B, h, w))``
        with ``C' = C * (2 * context + 1)``.

    Raises:
        DataError: for a case that cannot be read or holds invalid values (named).
        ValueError: for invalid arguments, or differing slice shapes without ``patch_size``.

    Example:
        >>> ds = make_dataset(load_dataset("msd_hippocampus"), patch_size=64, batch_size=8,
        ...                   mode="2.5d", augment="default")  # doctest: +SKIP
        >>> images, labels = next(iter(ds))  # doctest: +SKIP
    """
    import tensorflow as tf

    spec = _resolve(spec, mode, context, normalization, target_spacing, slice_axis, patch_size)
    params = get_augmentation(augment)
    if augment_backend not in AUGMENT_BACKENDS:
        raise ValueError(
            f"`augment_backend` must be one of {list(AUGMENT_BACKENDS)}. Received: augment_backend={augment_backend!r}"
        )
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    if not 0.0 <= foreground_prob <= 1.0:
        raise ValueError(f"`foreground_prob` must be in [0, 1]. Received: foreground_prob={foreground_prob}")
    shard = _check_shard(shard)
    store = _CaseStore(source, spec, cache, True, num_classes, spec["patch_size"])
    context = spec["context"]
    if spec["patch_size"] is not None:
        height, width = spec["patch_size"]
    else:
        height, width = store.slice_shape
    channels = store.channels * (2 * context + 1)
    total_slices = sum(s[0] for s in store.shapes)
    if samples_per_epoch is None:
        samples_per_epoch = total_slices
    if not isinstance(samples_per_epoch, (int, np.integer)) or samples_per_epoch < 1:
        raise ValueError(f"`samples_per_epoch` must be a positive integer. Received: samples_per_epoch={samples_per_epoch!r}")
    if not repeat and drop_remainder:
        per_shard = -(-samples_per_epoch // shard[0]) if shard is not None else samples_per_epoch
        if per_shard < batch_size:
            raise ValueError(
                f"`samples_per_epoch` ({samples_per_epoch}{' over ' + str(shard[0]) + ' shards' if shard else ''}) "
                f"must give at least one full batch of batch_size={batch_size} when repeat=False and "
                "drop_remainder=True; pass a larger samples_per_epoch or drop_remainder=False."
            )
    augmenter = AlbumentationsAugmenter(params) if augment_backend == "albumentations" else None
    any_augment = any(v > 0 for k, v in params.items() if k.endswith("_prob"))
    n_cases = len(store)

    def sample(index, random_value):
        rng = np.random.default_rng([int(seed) % (2**63), int(random_value) % (2**63)])
        case_index = int(rng.integers(n_cases)) if shuffle else int(index) % n_cases
        volume = store.get(case_index)
        size = (1, height, width)
        start, _ = sample_patch_start(volume.label.shape, size, rng, foreground_prob, volume.locations)
        image, label = _window_slice(volume, start[0], start[1:], size[1:], context)
        aug_seed = rng.integers(0, 2**62, size=2, dtype=np.int64)
        if augmenter is not None and any_augment:
            image, label = augmenter(image, label, int(aug_seed[0]))
        return image.astype(np.float32, copy=False), label.astype(np.int32, copy=False), aug_seed

    def to_tensors(index, random_value):
        image, label, aug_seed = tf.numpy_function(
            sample, [index, random_value], [tf.float32, tf.int32, tf.int64], stateful=False
        )
        image.set_shape((height, width, channels))
        label.set_shape((height, width))
        aug_seed.set_shape((2,))
        return image, label, aug_seed

    if repeat:
        # Sample i is a pure function of (seed, i): the stream is the same however often or
        # wherever (a tf.distribute strategy, a resumed run) the dataset is iterated.
        dataset = tf.data.Dataset.counter().map(lambda i: (i, i))
    else:
        # A finite dataset draws new (seed-determined) samples on each pass.
        indices = tf.data.Dataset.range(samples_per_epoch)
        randoms = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip((indices, randoms))
    if shard is not None:
        dataset = dataset.shard(*shard)
    parallel = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls
    plain = tf.autograph.experimental.do_not_convert  # no Python control flow to convert
    dataset = dataset.map(plain(to_tensors), num_parallel_calls=parallel, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if augment_backend == "tf" and any_augment:
        dataset = dataset.map(
            plain(lambda x, y, s: tf_augment(x, y, s[0], params)), num_parallel_calls=parallel, deterministic=True
        )
    else:
        dataset = dataset.map(plain(lambda x, y, s: (x, y)))
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(_options(shard is not None))


def make_eval_dataset(
    source,
    *,
    patch_size=None,
    batch_size=8,
    mode="2d",
    context=None,
    normalization="zscore",
    target_spacing=None,
    slice_axis=0,
    cache="memory",
    num_parallel_calls=None,
    shard=None,
    num_classes=None,
    return_index=False,
    spec=None,
):
    """Build the deterministic evaluation dataset: every slice of every case, in order.

    No augmentation, no shuffling, no foreground sampling. Each slice is centre-cropped or
    padded to ``patch_size`` when given (otherwise all slices must share one shape).

    Args:
        source: a CaseDataset, a list of cases, or a list of ``CaseData``.
        patch_size: ``(h, w)``/int to centre-crop or pad slices to, or ``None``.
        batch_size: slices per batch (the last batch may be smaller).
        mode, context, normalization, target_spacing, slice_axis, spec: as in
            :func:`make_dataset`.
        cache: as in :func:`make_dataset`.
        num_parallel_calls: parallelism of slice extraction (default AUTOTUNE).
        shard: ``(num_shards, index)``: this worker's disjoint share of the slices.
        num_classes: check labels against ``[0, num_classes)``; inferred if ``None``.
        return_index: also yield an int32 ``(B, 2)`` tensor of ``(case_index, slice_index)``
            (with a multi-view spec, the first entry counts views: case * views + view).

    Returns:
        ``tf.data.Dataset`` of ``(image, label)`` or ``(image, label, index)`` batches.

    Raises:
        DataError: for a case that cannot be read or holds invalid values (named).
        ValueError: for invalid arguments, or differing slice shapes without ``patch_size``.

    Example:
        >>> ds = make_eval_dataset(load_dataset("msd_hippocampus"), patch_size=64)  # doctest: +SKIP
    """
    import tensorflow as tf

    spec = _resolve(spec, mode, context, normalization, target_spacing, slice_axis, patch_size)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    shard = _check_shard(shard)
    store = _CaseStore(source, spec, cache, True, num_classes, spec["patch_size"])
    context = spec["context"]
    height, width = spec["patch_size"] if spec["patch_size"] is not None else store.slice_shape
    channels = store.channels * (2 * context + 1)
    pairs = np.array([(c, z) for c, shape in enumerate(store.shapes) for z in range(shape[0])], dtype=np.int32)

    def extract(pair):
        case_index, z = int(pair[0]), int(pair[1])
        volume = store.get(case_index)
        image = extract_slice(volume.image, z, axis=0, context=context)
        image = crop_or_pad(image, (height, width), mode="center", pad_value=0.0)[0]
        label = crop_or_pad(volume.label[z], (height, width), mode="center", pad_value=0)[0]
        return image.astype(np.float32, copy=False), label.astype(np.int32, copy=False)

    def to_tensors(pair):
        image, label = tf.numpy_function(extract, [pair], [tf.float32, tf.int32], stateful=False)
        image.set_shape((height, width, channels))
        label.set_shape((height, width))
        return (image, label, pair) if return_index else (image, label)

    dataset = tf.data.Dataset.from_tensor_slices(pairs)
    if shard is not None:
        dataset = dataset.shard(*shard)
    parallel = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls
    plain = tf.autograph.experimental.do_not_convert
    dataset = dataset.map(plain(to_tensors), num_parallel_calls=parallel, deterministic=True)
    dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(_options(shard is not None))
