"""Preprocessed volumes held for the ``tf.data`` pipelines: in memory, on disk, or re-read.

A :class:`CaseStore` prepares every case of a source once, up front, in a thread pool
(:func:`kerasseg.data.prepare.prepare_case`), keeps each case's arrays with the slicing axis
first (one entry per view of a multi-view spec) and the voxel locations of each class for
foreground sampling. Build it once and hand it to
:func:`~kerasseg.data.pipeline.make_dataset` or
:func:`~kerasseg.data.pipeline.make_eval_dataset` (training measures slice shapes from the
same store that then feeds its pipeline).
"""

import concurrent.futures
import hashlib
import json
import os
import re
from typing import NamedTuple

import numpy as np

from kerasseg.data.errors import DataError
from kerasseg.data.prepare import check_cases, describe, label_values, prepare_case, source_items
from kerasseg.data.preprocess import class_locations
from kerasseg.data.spec import check_spec, patch_dims, patch_shape, slice_axes
from kerasseg.files import atomic_path

__all__ = ["CaseStore"]

_MAX_LOCATIONS = 10000


def _preparation(spec):
    """The part of a spec that decides the stored arrays (the patch size does not)."""
    return {key: value for key, value in spec.items() if key != "patch_size"}


class _Volume(NamedTuple):
    image: np.ndarray  # (N, H, W, C), slicing axis first
    label: np.ndarray  # (N, H, W)
    locations: dict


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


class CaseStore:
    """Preprocessed volumes, in memory, in a disk cache, or re-read on every access.

    Entry ``k`` is one view of one case: the case's arrays with view ``k``'s slicing axis
    first. A single-axis spec has one view per case, a multi-view spec one per listed axis
    (``self.views[k]`` is ``(case index, axis)``). Every case is prepared and checked when
    the store is built, so a bad file raises before any ``tf.data`` graph exists.

    Args:
        source: a CaseDataset, a list of its cases, or a list of ``CaseData``.
        spec: dict from :func:`~kerasseg.data.spec.make_preprocessing_spec` (its patch
            size is not part of what is stored).
        cache: ``"memory"`` (keep the arrays), a folder (``.npy`` files reused across runs
            and memory-mapped) or ``None`` (prepare a case again on every access).
        require_labels: raise for a case without a label map.
        num_classes: check labels against ``[0, num_classes)``; inferred if ``None``.
        patch_size: the patch size slices (or, in mode ``"3d"``, volumes) are cropped to;
            ``None`` requires one slice (volume) shape.
        workers: threads that prepare cases (default: up to 8, one per CPU).

    Attributes:
        shapes: each view's array shape ``(slices, h, w)`` (in mode ``"3d"``: each
            volume's ``(d, h, w)``).
        channels: image channels per case.
        num_classes: the checked number of classes.
        slice_shape: the first view's slice shape ``(h, w)``.

    Raises:
        DataError: for a case that cannot be read or holds invalid values (named).
        ValueError: for an invalid argument, or differing slice shapes without ``patch_size``.

    Example:
        >>> from kerasseg.data.spec import make_preprocessing_spec
        >>> from kerasseg.data.types import CaseData, Geometry
        >>> case = CaseData(np.ones((3, 4, 5, 1), "float32"), np.zeros((3, 4, 5), "uint8"), Geometry())
        >>> store = CaseStore([case], make_preprocessing_spec(slice_axis=(0, 2)), patch_size=4)
        >>> store.shapes, store.slice_shapes, store.total_slices
        ([(3, 4, 5), (5, 3, 4)], [(4, 5), (3, 4)], 8)
    """

    def __init__(self, source, spec, cache="memory", require_labels=True, num_classes=None,
                 patch_size=None, workers=None):
        items, ids = source_items(source)
        self.spec, self.ids, self.items = check_spec(spec), ids, items
        self.axes = slice_axes(self.spec)
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
        self.shapes = [tuple(r.label.shape) for r in results]
        self.channels = results[0].image.shape[-1]
        self._channels = [r.image.shape[-1] for r in results]
        by_case = {}
        for (case_index, _), volume in zip(self.views, results):
            if case_index not in by_case:  # every view of a case holds the same values
                by_case[case_index] = label_values(volume.label)
        self._values = [by_case[case_index] for case_index, _ in self.views]
        self.num_classes = self.check(num_classes, patch_size)
        self.slice_shape = self.shapes[0][1:]

    @property
    def slice_shapes(self):
        """Each view's slice shape ``(h, w)``."""
        return [shape[1:] for shape in self.shapes]

    @property
    def total_slices(self):
        """The number of slices over all views of all cases."""
        return int(sum(shape[0] for shape in self.shapes))

    def check(self, num_classes=None, patch_size=None):
        """Check the stored cases against a number of classes and a patch size.

        Args:
            num_classes: labels must lie in ``[0, num_classes)``; inferred if ``None``.
            patch_size: ``None`` requires one slice shape over all views (one volume
                shape in mode ``"3d"``).

        Returns:
            The number of classes.

        Raises:
            DataError: naming a case whose labels do not fit.
            ValueError: for differing slice shapes without ``patch_size``.
        """
        views = [self.items[i] for i, _ in self.views]
        dims = patch_dims(self.spec["mode"])
        shapes = self.shapes if dims == 3 else self.slice_shapes
        return check_cases(views, [self.ids[i] for i, _ in self.views],
                           self._channels, self._values, shapes,
                           num_classes, patch_shape(patch_size, dims))

    def serves(self, spec):
        """Whether the store holds cases prepared as ``spec`` prepares them (patch size aside)."""
        return _preparation(check_spec(spec)) == _preparation(self.spec)

    def _prepare(self, i):
        item, case_id = self.items[i], self.ids[i]
        if self.cache not in (None, "memory"):
            key = _case_identity(item, json.dumps(_preparation(self.spec), sort_keys=True))
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
                raise DataError(f"{describe(item, case_id)} has no label map; training and evaluation need one.")
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
        """Return entry ``k`` (one view of one case) with ``image``, ``label`` and ``locations``."""
        if self.volumes is not None:
            return self.volumes[k]
        case_index, axis = self.views[k]
        return self._compute(case_index)[self.axes.index(axis)]
