"""3-D in-graph augmentation: known transforms, label integrity, seeds, parameter errors."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kerasseg.data.augment3d import (PRESETS_3D, get_augmentation_3d, mirrored_axes, resample,
                                     rotation_matrices, tf_augment_3d)


def _batch(shape=(2, 6, 8, 10), channels=1, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=shape + (channels,)).astype("float32")
    labels = rng.integers(0, 3, size=shape).astype("int32")
    return images, labels


def test_none_preset_is_the_identity():
    images, labels = _batch(channels=2)
    x, y = tf_augment_3d(images, labels, 3, "none")
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_mirroring_with_certainty_flips_the_axis(axis):
    images, labels = _batch()
    x, y = tf_augment_3d(images, labels, 5, {"mirror_prob": 1.0, "mirror_axes": [axis]})
    np.testing.assert_array_equal(x.numpy(), np.flip(images, axis + 1))
    np.testing.assert_array_equal(y.numpy(), np.flip(labels, axis + 1))


def test_rotation_by_90_degrees_about_axis_0_is_rot90_in_the_plane():
    matrix = rotation_matrices(tf.constant([[math.pi / 2, 0.0, 0.0]])).numpy()[0]
    np.testing.assert_allclose(matrix, [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-6)
    # Output (z, y, x) reads input R (p - c) + c: on a cube that is np.rot90 of each slice.
    n = 5
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=(1, n, n, n)).astype("int32")
    images = labels[..., None].astype("float32")
    grid = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).astype("float32")
    centre = (n - 1) / 2.0
    coords = (grid - centre) @ matrix.T + centre
    x, y = resample(tf.constant(images), tf.constant(labels), tf.constant(coords[None]))
    expected = np.rot90(labels[0], k=-1, axes=(1, 2))
    np.testing.assert_array_equal(y.numpy()[0], expected)
    np.testing.assert_allclose(x.numpy()[0, ..., 0], expected, atol=1e-5)


def test_trilinear_sampling_and_outside_reads():
    images = np.arange(8, dtype="float32").reshape(1, 2, 2, 2, 1)
    labels = np.arange(8, dtype="int32").reshape(1, 2, 2, 2)
    grid = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).astype("float32")
    shifted = grid.copy()
    shifted[..., 2] += 0.25                    # a quarter voxel along x
    x, y = resample(tf.constant(images), tf.constant(labels), tf.constant(shifted[None]))
    # Inside: v + 0.25 (x step 1); at x = 1.25 the right neighbour is outside and weighs 0.
    expected = images[0, ..., 0].copy()
    expected[..., 0] += 0.25
    expected[..., 1] *= 0.75
    np.testing.assert_allclose(x.numpy()[0, ..., 0], expected, atol=1e-6)
    np.testing.assert_array_equal(y.numpy()[0], labels[0])   # nearest: rounds back


def test_spatial_transforms_keep_label_values_and_seeds_reproduce():
    images, labels = _batch(shape=(3, 10, 12, 9))
    params = {"preset": "strong", "rotate_prob": 1.0, "scale_prob": 1.0, "elastic_prob": 1.0}
    x1, y1 = tf_augment_3d(images, labels, 11, params)
    x2, y2 = tf_augment_3d(images, labels, 11, params)
    x3, _ = tf_augment_3d(images, labels, 12, params)
    np.testing.assert_array_equal(x1.numpy(), x2.numpy())
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    assert not np.allclose(x1.numpy(), x3.numpy())
    assert set(np.unique(y1.numpy())) <= set(np.unique(labels))
    assert y1.dtype == tf.int32 and x1.shape == images.shape


def test_identity_zoom_and_zero_angle_change_nothing():
    images, labels = _batch()
    x, y = tf_augment_3d(images, labels, 2, {"scale_prob": 1.0, "scale": (1.0, 1.0),
                                              "rotate_prob": 1.0, "rotate": 0.0})
    np.testing.assert_allclose(x.numpy(), images, atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), labels)


def test_intensity_transforms_leave_labels_and_brightness_shifts_by_std():
    images, labels = _batch(shape=(1, 6, 6, 6))
    x, y = tf_augment_3d(images, labels, 4, {"brightness_prob": 1.0, "brightness": 0.5})
    shift = (x.numpy() - images).ravel()
    assert np.allclose(shift, shift[0], atol=1e-5)               # one shift per example
    assert abs(shift[0]) <= 0.5 * images.std() + 1e-5 and abs(shift[0]) > 0
    np.testing.assert_array_equal(y.numpy(), labels)
    x, y = tf_augment_3d(images, labels, 4, {"preset": "default", "mirror_prob": 0.0,
                                              "rotate_prob": 0.0, "scale_prob": 0.0,
                                              "gamma_prob": 1.0, "noise_prob": 1.0,
                                              "lowres_prob": 1.0, "contrast_prob": 1.0})
    np.testing.assert_array_equal(y.numpy(), labels)
    assert np.isfinite(x.numpy()).all() and not np.allclose(x.numpy(), images)


def test_works_inside_tf_data_with_unknown_batch_and_two_channels():
    images, labels = _batch(shape=(5, 6, 8, 6), channels=2)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)
    ds = ds.map(lambda x, y: tf_augment_3d(x, y, 1, "strong"))
    shapes = [tuple(x.shape) for x, _ in ds]
    assert shapes == [(2, 6, 8, 6, 2), (2, 6, 8, 6, 2), (1, 6, 8, 6, 2)]


def test_parameters_are_checked_by_name():
    assert get_augmentation_3d(None) == get_augmentation_3d("none")
    assert set(PRESETS_3D) == {"none", "light", "default", "strong"}
    assert mirrored_axes("default") == [0, 1, 2]
    assert mirrored_axes({"preset": "default", "mirror_axes": []}) == []
    assert mirrored_axes({"preset": "default", "mirror_prob": 0.0}) == []
    with pytest.raises(ValueError, match=r"Received unknown: \['flip_axes'\]"):
        get_augmentation_3d({"flip_axes": [1]})
    with pytest.raises(ValueError, match=r"`mirror_prob` must be in \[0, 1\]"):
        get_augmentation_3d({"mirror_prob": 1.5})
    with pytest.raises(ValueError, match="`rotate_axes` must list distinct axes among 0, 1"):
        get_augmentation_3d({"rotate_axes": [3]})
    with pytest.raises(ValueError, match="`mirror_axes` must list distinct"):
        get_augmentation_3d({"mirror_axes": [1, 1]})
    with pytest.raises(ValueError, match="`scale` must be a range"):
        get_augmentation_3d({"scale": (1.2, 0.8)})
    with pytest.raises(ValueError, match="3-D presets"):
        get_augmentation_3d("sideways")
