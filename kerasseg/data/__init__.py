"""Segmentation data: reading data sets and files, preprocessing, augmentation, tf.data.

* :func:`load_dataset` opens a data set folder (plain 2-D image/mask folders, the Medical
  Segmentation Decathlon, PROMISE12) as a :class:`CaseDataset` of :class:`Case` objects;
  :func:`validate` checks every case up front; bad input raises :class:`DataError`.
* :func:`read_image`, :func:`read_label`, :func:`write_image`, :func:`write_label` and
  :func:`prediction_path` read and write single files with their geometry.
* :mod:`~kerasseg.data.spec` (what a model sees), :mod:`~kerasseg.data.prepare` (one case
  at a time), :mod:`~kerasseg.data.cache` (prepared cases held for the pipelines),
  :mod:`~kerasseg.data.pipeline` (``tf.data``: :func:`make_dataset`),
  :mod:`~kerasseg.data.preprocess`, :mod:`~kerasseg.data.augment` (2-D) and
  :mod:`~kerasseg.data.augment3d` (3-D, in-graph) are imported on first use.

Example:
    >>> from kerasseg.data import load_dataset
    >>> from kerasseg.sample import hippocampus_path
    >>> ds = load_dataset(hippocampus_path())  # the bundled hippocampus MRI sample
    >>> print(ds.describe())
    Data set at .../hippocampus
      format: decathlon (Medical Segmentation Decathlon (Hippocampus): dataset.json with 52 ...)
      cases: 52 (52 with labels, 0 without)
      images: 3-D, 1 channel(s) ['MRI']
      classes (3): 0 background, 1 Anterior, 2 Posterior
    >>> image, label, geometry, roi = ds[0].load()
    >>> image.shape, label.shape, geometry.spacing
    ((35, 51, 35, 1), (35, 51, 35), (1.0, 1.0, 1.0))
"""

import importlib

from kerasseg.data.dataset import Case, CaseDataset, load_dataset, validate
from kerasseg.data.errors import DataError
from kerasseg.data.io import (
    SUPPORTED_EXTENSIONS,
    prediction_path,
    read_image,
    read_info,
    read_label,
    write_image,
    write_label,
)
from kerasseg.data.sources import FORMATS
from kerasseg.data.types import CaseData, Geometry

_LAZY_MODULES = ("preprocess", "augment", "augment3d", "spec", "prepare", "cache", "pipeline", "split")
_LAZY_NAMES = {
    "make_dataset": "pipeline",
    "make_eval_dataset": "pipeline",
    "make_preprocessing_spec": "spec",
    "preprocess_case": "prepare",
    "prepare_case": "prepare",
    "prepare_cases": "prepare",
    "restore_prediction": "prepare",
    "PreparedCase": "prepare",
    "CaseStore": "cache",
    "split_cases": "split",
    "kfold": "split",
    "Normalizer": "preprocess",
}


def __getattr__(name):
    if name in _LAZY_MODULES:
        module = importlib.import_module(f"kerasseg.data.{name}")
        globals()[name] = module
        return module
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f"kerasseg.data.{_LAZY_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kerasseg.data' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_MODULES) | set(_LAZY_NAMES))


__all__ = [
    "Case",
    "CaseData",
    "CaseDataset",
    "DataError",
    "FORMATS",
    "Geometry",
    "SUPPORTED_EXTENSIONS",
    "load_dataset",
    "make_dataset",
    "prediction_path",
    "read_image",
    "read_info",
    "read_label",
    "validate",
    "write_image",
    "write_label",
]
