"""One case at a time: load, check and preprocess a case by a spec, and map a prediction back.

:func:`prepare_case` reads a case, checks its values (a bad file raises
:class:`~kerasseg.data.errors.DataError` naming it), normalizes and resamples it by a
preprocessing spec (:mod:`kerasseg.data.spec`); :func:`restore_prediction` takes a
prediction on the preprocessed grid back to the case's own. :func:`prepare_cases` does the
first for a whole data set, with the checks across cases.
"""

import concurrent.futures
import os
from typing import NamedTuple, Optional, Tuple

import numpy as np

from kerasseg.data.errors import DataError
from kerasseg.data.preprocess import Normalizer, resample, resample_label, resample_to_shape
from kerasseg.data.spec import make_preprocessing_spec  # noqa: F401 (the examples use it)
from kerasseg.data.spec import check_spec, patch_dims, patch_shape, slice_axes
from kerasseg.data.types import CaseData, Geometry

__all__ = ["preprocess_case", "PreparedCase", "prepare_case", "prepare_cases", "restore_prediction",
           "label_values", "check_cases", "describe", "source_items"]


def describe(case, case_id):
    """Name a case and its files for error messages: ``case 'x' (image a.nii.gz, label b.nii.gz)``."""
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
    spec = check_spec(spec)
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
    spec = check_spec(spec)
    case_id = case_id if case_id is not None else str(getattr(case, "case_id", "case"))
    where = describe(case, case_id)
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


def source_items(source):
    """Return ``(cases, ids)`` of a data set or a list of cases; raise ValueError otherwise."""
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


def label_values(label):
    """Return the sorted distinct values of a label map (an empty list for an empty one).

    Args:
        label: an integer label map.

    Returns:
        A list of ints.

    Example:
        >>> label_values(np.array([[2, 0], [2, 2]]))
        [0, 2]
    """
    return [int(v) for v in np.unique(np.asarray(label))]


def check_cases(items, ids, channels, values, slice_shapes, num_classes, patch_size):
    """Check what cases must share: channels, class indices and (without a patch) slice shape.

    Args:
        items: the cases (for naming them in errors), one entry per view.
        ids: their identifiers, one entry per view.
        channels: each view's image channels.
        values: each view's label values (:func:`label_values`).
        slice_shapes: each view's slice shape ``(h, w)``, or each volume's shape
            ``(d, h, w)`` in mode ``"3d"``.
        num_classes: the classes labels must lie in, or ``None`` to infer it.
        patch_size: the patch size; ``None`` requires one slice shape for all views.

    Returns:
        The number of classes (given, or one more than the largest label, at least 2).

    Raises:
        DataError: naming the case whose channels or labels do not fit.
        ValueError: for differing slice shapes without a patch size.

    Example:
        >>> check_cases(["a"], ["a"], [1], [[0, 1, 2]], [(4, 4)], None, None)
        3
    """
    for i, c in enumerate(channels):
        if c != channels[0]:
            raise DataError(
                f"All cases must have the same number of channels: {describe(items[0], ids[0])} has "
                f"{channels[0]}, {describe(items[i], ids[i])} has {c}."
            )
    max_label = max((v[-1] for v in values if v), default=0)
    if num_classes is None:
        num_classes = max(2, max_label + 1)
    for i, found in enumerate(values):
        if found and (found[0] < 0 or found[-1] >= num_classes):
            raise DataError(
                f"The label map of {describe(items[i], ids[i])} holds values {found}; expected "
                f"class indices in [0, {num_classes}) for num_classes={num_classes}."
            )
    shapes = sorted({tuple(shape) for shape in slice_shapes})
    if patch_size is None and len(shapes) > 1:
        volumes = len(shapes[0]) == 3
        what, example = ("volume", "(64, 64, 64)") if volumes else ("slice", "(256, 256)")
        raise ValueError(
            f"`patch_size` must be given when cases have different {what} shapes (batching "
            f"needs one shape); found {shapes[:5]}{' ...' if len(shapes) > 5 else ''}. "
            f"Received: patch_size=None. Pass e.g. patch_size={example}: {what}s are then "
            "cropped or padded to it."
        )
    return int(num_classes)


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
    spec = check_spec(spec)
    items, ids = source_items(source)
    workers = max(1, min(8, os.cpu_count() or 1, len(items)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        prepared = list(pool.map(lambda pair: prepare_case(pair[0], spec, case_id=pair[1]), zip(items, ids)))
    axes = slice_axes(spec)
    values, shapes = [], []
    for item, case_id, case in zip(items, ids, prepared):
        if case.label is None and require_labels:
            raise DataError(f"{describe(item, case_id)} has no label map; training and evaluation need one.")
        found = label_values(case.label) if case.label is not None else [0]
        values += [found] * len(axes)
        shape = case.image.shape[:3]
        if spec["mode"] == "3d":
            shapes.append(tuple(shape))
        else:
            shapes += [tuple(n for i, n in enumerate(shape) if i != axis) for axis in axes]
    views = len(axes)
    check_cases([i for i in items for _ in range(views)], [i for i in ids for _ in range(views)],
                [c.image.shape[-1] for c in prepared for _ in range(views)], values, shapes,
                num_classes, patch_shape(patch_size, patch_dims(spec["mode"])))
    return prepared
