"""Intensity normalization as TensorFlow ops, for the encoded-image serving signature.

A served model must see its inputs normalized exactly as in training, without Python or
kerasseg at serving time. The normalization is described by the JSON-able dict that
training stores with the model, and rebuilt here from TF ops whose constants are stored in
the exported graph.

The methods, their parameters, defaults and validation are one registry shared with
training and inference: :mod:`kerasseg.data.normalization` (its module docstring has the
table). :func:`normalize_image` is its TensorFlow implementation,
:func:`kerasseg.data.normalization.normalize_tensor`; statistics are computed per image
and per channel, over the decoded image at the model's input size, as the training
pipeline computes them per volume.

Example:
    >>> import tensorflow as tf
    >>> spec = normalization_spec({"method": "zscore"})
    >>> spec
    {'method': 'zscore', 'params': {'nonzero': False}}
    >>> normalize_image(tf.constant([[[1.0], [3.0]]]), spec).numpy().ravel().tolist()
    [-1.0, 1.0]
"""

from kerasseg.data.normalization import (
    NORMALIZATION_METHODS,
    check_channels,
    normalization_spec,
    normalize_tensor,
)

__all__ = ["NORMALIZATION_METHODS", "check_channels", "normalization_spec", "normalize_image"]

normalize_image = normalize_tensor
