"""Helpers shared by the export tests (small models, z-score, PNG reading)."""

import numpy as np
import tensorflow as tf

from tests import small

CROP = 64


def build_small(name, input_shape=(CROP, CROP, 1), num_classes=3, seed=0, **options):
    """A model in its small test configuration (tests.small) with fixed random weights."""
    return small.build_small(name, input_shape, num_classes, seed=seed, **options)


def zscore(image):
    """Per-image, per-channel z-score in float32 (the exports' "zscore" normalization)."""
    image = np.asarray(image, np.float64)
    mean = image.mean(axis=(0, 1), keepdims=True)
    std = np.maximum(image.std(axis=(0, 1), keepdims=True), 1e-8)
    return ((image - mean) / std).astype(np.float32)


def read_png(path):
    return tf.io.decode_png(tf.io.read_file(path)).numpy()


def png(array):
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    return tf.io.encode_png(array).numpy()


def raw_crop(seed, shape=(CROP, CROP), channels=1, dtype=np.uint8, high=256):
    rng = np.random.RandomState(seed)
    base = rng.randint(0, high, size=(shape[0] // 4 + 1, shape[1] // 4 + 1, channels))
    # Smooth structure, so that the model's masks are not pixel noise.
    image = np.kron(base, np.ones((4, 4, 1)))[: shape[0], : shape[1]]
    return image.astype(dtype)
