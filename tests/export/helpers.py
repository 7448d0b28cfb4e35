"""Helpers shared by the export tests (small models, z-score, PNG reading, EM paths)."""

import importlib
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasseg

EM_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data",
                       "isbi2012_membrane", "train")
EM_ROOT = os.path.normpath(EM_ROOT)
CROP = 64

SMALL_OPTIONS = {
    "unet": {"depth": 3, "base_filters": 8},
    "fcn8s": {"base_filters": 8, "fc_filters": 32, "dropout": 0.0},
    "deeplab": {"backbone": "small", "aspp_filters": 32},
}


def build_small(name, input_shape=(CROP, CROP, 1), num_classes=3, seed=0, **options):
    """A small model of family ``name`` with fixed random weights; skips unregistered ones."""
    if name not in kerasseg.list_models():
        try:  # a family module registers itself when imported
            importlib.import_module(f"kerasseg.models.{name}")
        except ImportError:
            pass
    if name not in kerasseg.list_models():
        pytest.skip(f"model family {name!r} is not available")
    keras.utils.set_random_seed(seed)
    return kerasseg.build(name, input_shape=input_shape, num_classes=num_classes,
                          **SMALL_OPTIONS[name], **options)


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
