"""Tests of kerasseg.data.augment3d: values of every transform against NumPy, label values and
alignment, reproducibility, parameter checks, tf.data/tf.function use with unknown sizes."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from kerasseg.data import augment3d
from kerasseg.data.augment3d import (
    AUGMENT_PRESETS_3D,
    PRESETS_3D,
    get_augmentation_3d,
    mirrored_axes,
    tf_augment_3d,
)

SHAPE = (8, 12, 10)  # D, H, W: no common factor, not powers of two
SPATIAL = {"rotate_prob": 0.8, "rotate": 40.0, "scale_prob": 0.8, "scale": (0.7, 1.4),
           "elastic_prob": 0.5, "elastic_alpha": 3.0, "elastic_sigma": 2.0}
INTENSITY = {"brightness_prob": 1.0, "brightness": 0.3, "contrast_prob": 1.0, "contrast": 0.3,
             "gamma_prob": 1.0, "gamma": (0.6, 1.7), "noise_prob": 1.0, "noise_std": 0.3,
             "lowres_prob": 1.0, "lowres_zoom": (0.4, 0.8)}


def _labels(batch=3, shape=SHAPE, seed=0):
    """Label maps with values {0, 3, 7}: two boxes and random specks."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((batch, *shape), np.int32)
    labels[:, 1:5, 2:7, 1:6] = 3
    labels[:, 4:7, 6:11, 5:9] = 7
    labels[rng.random(labels.shape) < 0.05] = 3
    return labels


def _images(batch=3, shape=SHAPE, channels=2, seed=1):
    rng = np.random.default_rng(seed)
    scale = np.arange(1, channels + 1, dtype=np.float32) * 10.0
    return (rng.normal(size=(batch, *shape, channels)) * scale + 5.0).astype(np.float32)


def _run(images, labels, seed, augment):
    out_images, out_labels = tf_augment_3d(images, labels, seed, augment)
    return out_images.numpy(), out_labels.numpy()


# ---------------------------------------------------------------------------- parameters


def test_presets():
    assert AUGMENT_PRESETS_3D == ("none", "light", "default", "strong")
    default = get_augmentation_3d("default")
    assert default["rotate"] == 30.0 and default["rotate_prob"] == 0.2
    assert default["scale"] == (0.7, 1.4) and default["scale_prob"] == 0.2
    assert default["mirror_prob"] == 0.5 and default["mirror_axes"] == (0, 1, 2)
    assert default["gamma"] == (0.7, 1.5) and default["gamma_prob"] == 0.3
    assert default["lowres_zoom"] == (0.5, 1.0) and default["lowres_prob"] == 0.25
    assert default["elastic_prob"] == 0.0
    assert all(value == 0.0 for key, value in get_augmentation_3d("none").items() if key.endswith("_prob"))
    assert get_augmentation_3d(None) == get_augmentation_3d("none")
    for name in AUGMENT_PRESETS_3D:
        assert set(get_augmentation_3d(name)) == set(PRESETS_3D["none"])
    # A fresh dict each time; overrides start from the named preset, missing keys are off.
    fresh = get_augmentation_3d("default")
    fresh["rotate"] = 99.0
    assert get_augmentation_3d("default")["rotate"] == 30.0
    assert get_augmentation_3d({"preset": "strong", "rotate": 5})["rotate_prob"] == 0.3
    assert get_augmentation_3d({"rotate_prob": 0.5})["mirror_prob"] == 0.0


@pytest.mark.parametrize("augment, message", [
    ("heavy", r"`augment` must be one of \['none', 'light', 'default', 'strong'\]"),
    (["default"], r"`augment` must be one of"),
    ({"preset": "heavy"}, r"`preset` must be one of"),
    ({"mirror": 0.5}, r"`augment` parameters must be among \[.*\]\. Received unknown: \['mirror'\]"),
    ({"mirror_prob": 1.5}, r"`mirror_prob` must be a probability in \[0, 1\]\. Received: mirror_prob=1.5"),
    ({"gamma_prob": -0.1}, r"`gamma_prob` must be a probability in \[0, 1\]"),
    ({"noise_prob": "often"}, r"`noise_prob` must be a number"),
    ({"mirror_axes": [3]}, r"`mirror_axes` must list distinct axes of \(D, H, W\) among 0, 1, 2.*"
                           r"Received: mirror_axes=\[3\]"),
    ({"rotate_axes": [0, 0]}, r"`rotate_axes` must list distinct axes.*Received: rotate_axes=\[0, 0\]"),
    ({"mirror_axes": [True]}, r"`mirror_axes` must list distinct axes"),
    ({"scale": (1.2, 0.8)}, r"`scale` must be a range \(low, high\) with 0 < low <= high\. Received"),
    ({"gamma": 1.2}, r"`gamma` must be a range"),
    ({"lowres_zoom": (0.5, 1.5)}, r"`lowres_zoom` must be a range \(low, high\) with 0 < low <= high <= 1"),
    ({"rotate": 200}, r"`rotate` must be in \[0, 180\]"),
    ({"contrast": -0.1}, r"`contrast` must be in \[0, 1\]"),
    ({"elastic_sigma": 0}, r"`elastic_sigma` must be positive"),
])
def test_invalid_parameters_are_named(augment, message):
    with pytest.raises(ValueError, match=message):
        get_augmentation_3d(augment)
    with pytest.raises(ValueError, match=message):
        tf_augment_3d(np.zeros((1, 4, 4, 4, 1), np.float32), np.zeros((1, 4, 4, 4), np.int32), 0, augment)


def test_mirrored_axes():
    assert mirrored_axes("default") == [0, 1, 2]
    assert mirrored_axes({"preset": "default", "mirror_axes": [2, 0]}) == [0, 2]
    assert mirrored_axes({"mirror_prob": 0.5, "mirror_axes": []}) == []
    assert mirrored_axes({"preset": "strong", "mirror_prob": 0.0}) == []
    assert mirrored_axes("none") == []


def test_ranks_are_checked():
    with pytest.raises(ValueError, match=r"`images` must be \(B, D, H, W, C\)"):
        tf_augment_3d(np.zeros((4, 4, 4), np.float32), np.zeros((4, 4, 4), np.int32), 0)


# ------------------------------------------------------------------------------ spatial


def test_none_returns_the_inputs_exactly():
    images, labels = _images(), _labels()
    out_images, out_labels = _run(images, labels, 11, "none")
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels, labels)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_mirror_with_prob_one_is_np_flip(axis):
    images, labels = _images(), _labels()
    out_images, out_labels = _run(images, labels, 4, {"mirror_prob": 1.0, "mirror_axes": [axis]})
    np.testing.assert_array_equal(out_images, np.flip(images, axis + 1))
    np.testing.assert_array_equal(out_labels, np.flip(labels, axis + 1))


def test_mirror_decisions_are_per_example_and_axis():
    images, labels = _images(batch=8), _labels(batch=8)
    _, out_labels = _run(images, labels, 9, {"mirror_prob": 0.5})
    flips = set()
    for example in range(8):
        matches = []
        for k in range(8):
            axes = tuple(axis for axis in range(3) if k >> axis & 1)
            expected = np.flip(labels[example], axes) if axes else labels[example]
            if np.array_equal(out_labels[example], expected):
                matches.append(k)
        assert len(matches) == 1
        flips.add(matches[0])
    assert len(flips) > 2


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_rotation_by_90_degrees_matches_np_rot90(axis):
    labels = np.random.default_rng(axis).integers(0, 5, (2, 6, 6, 6)).astype(np.int32)
    images = np.stack([labels * 10.0, -labels * 1.0], axis=-1).astype(np.float32)
    angles = np.zeros((2, 3), np.float32)
    angles[0, axis] = np.pi / 2
    angles[1, axis] = -np.pi / 2
    forward = augment3d._rotation_matrices(tf.constant(angles))
    out_images, out_labels = augment3d._spatial_transform(
        tf.constant(images), tf.constant(labels), tf.linalg.matrix_transpose(forward))
    plane = ((axis + 1) % 3, (axis + 2) % 3)
    for example, k in ((0, 1), (1, -1)):
        np.testing.assert_array_equal(out_labels[example], np.rot90(labels[example], k, axes=plane))
        np.testing.assert_allclose(out_images[example], np.rot90(images[example], k, axes=plane), atol=1e-4)


def test_identity_grid_changes_nothing():
    images, labels = _images(), _labels()
    augment = {"rotate_prob": 1.0, "rotate": 0.0, "scale_prob": 1.0, "scale": (1.0, 1.0),
               "lowres_prob": 1.0, "lowres_zoom": (1.0, 1.0)}
    out_images, out_labels = _run(images, labels, 2, augment)
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels, labels)


def _zoom_reference(volume, factor, fill=0):
    """Nearest-neighbour zoom by ``factor`` about the centre, written independently in NumPy."""
    grids = np.meshgrid(*(np.arange(n) for n in volume.shape), indexing="ij")
    source = [np.floor((g - (n - 1) / 2) / factor + (n - 1) / 2 + 0.5).astype(int) for g, n in zip(grids, volume.shape)]
    inside = np.all([(s >= 0) & (s < n) for s, n in zip(source, volume.shape)], axis=0)
    clipped = [np.clip(s, 0, n - 1) for s, n in zip(source, volume.shape)]
    return np.where(inside, volume[tuple(clipped)], fill)


@pytest.mark.parametrize("factor", [2.0, 0.8])
def test_scaling_matches_a_nearest_zoom(factor):
    labels = _labels(batch=2)
    images = labels[..., None].astype(np.float32)
    out_images, out_labels = _run(images, labels, 5, {"scale_prob": 1.0, "scale": (factor, factor)})
    for example in range(2):
        np.testing.assert_array_equal(out_labels[example], _zoom_reference(labels[example], factor))
    if factor < 1:  # the first and last D slices sample outside the volume: label 0
        assert out_labels[:, 0].max() == 0 and out_labels[:, -1].max() == 0
    matrix = np.eye(3) / factor
    for example in range(2):
        np.testing.assert_allclose(out_images[example, ..., 0], _trilinear_reference(images[example, ..., 0], matrix),
                                   atol=1e-4)


def _trilinear_reference(volume, inverse):
    """SciPy's trilinear resampling at ``centre + inverse @ (p - centre)``, zero outside."""
    centre = (np.array(volume.shape) - 1) / 2
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in volume.shape), indexing="ij"), axis=0)
    coords = np.einsum("ij,j...->i...", inverse, grid - centre[:, None, None, None]) + centre[:, None, None, None]
    return ndimage.map_coordinates(volume.astype(np.float64), coords, order=1, mode="grid-constant", cval=0.0)


def test_the_sampling_grid_matches_scipy_for_any_rotation_and_scale():
    images = _images(batch=2, channels=2)
    labels = _labels(batch=2)
    angles = np.array([[0.3, -0.5, 1.1], [-2.0, 0.2, 0.7]], np.float32)
    scales = np.array([1.2, 0.9], np.float32)
    forward = augment3d._rotation_matrices(tf.constant(angles))
    inverse = tf.linalg.matrix_transpose(forward) / scales[:, None, None]
    out_images, out_labels = augment3d._spatial_transform(tf.constant(images), tf.constant(labels), inverse)
    for example in range(2):
        matrix = inverse[example].numpy().astype(np.float64)
        for channel in range(2):
            np.testing.assert_allclose(out_images[example, ..., channel],
                                       _trilinear_reference(images[example, ..., channel], matrix), atol=2e-3)
        # Labels: nearest neighbour, away from rounding ties.
        centre = (np.array(SHAPE) - 1) / 2
        grid = np.stack(np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij"), axis=-1)
        coords = (grid - centre) @ matrix.T + centre
        nearest = np.floor(coords + 0.5).astype(int)
        inside = np.all((nearest >= 0) & (nearest < np.array(SHAPE)), axis=-1)
        clear = np.all(np.abs(coords - np.round(coords)) < 0.49, axis=-1)
        clipped = np.clip(nearest, 0, np.array(SHAPE) - 1)
        expected = np.where(inside, labels[example][tuple(np.moveaxis(clipped, -1, 0))], 0)
        assert clear.mean() > 0.8
        np.testing.assert_array_equal(out_labels.numpy()[example][clear], expected[clear])


def test_rotation_about_axis_0_keeps_every_d_slice_apart():
    labels = np.zeros((4, *SHAPE), np.int32)
    labels[:, 2:4, 3:9, 2:8] = 3
    labels[:, 6, 4:8, 3:7] = 7
    images = labels[..., None].astype(np.float32)
    out_images, out_labels = _run(images, labels, 8, {"rotate_prob": 1.0, "rotate": 45.0, "rotate_axes": [0]})
    assert not np.array_equal(out_labels, labels)
    for d in range(SHAPE[0]):
        assert set(np.unique(out_labels[:, d])) <= set(np.unique(labels[:, d]))
        assert (out_images[:, d] > 0).any() == (labels[:, d] > 0).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spatial_transforms_keep_labels_and_images_aligned(seed):
    labels = _labels(batch=4, seed=seed)
    # One channel per foreground class: a voxel whose channel is ~1 had that class at all
    # 8 voxels it was interpolated from, so its nearest label is that class.
    images = np.stack([labels == 3, labels == 7], axis=-1).astype(np.float32)
    out_images, out_labels = _run(images, labels, seed, SPATIAL)
    assert not np.array_equal(out_labels, labels)
    assert set(np.unique(out_labels)) <= {0, 3, 7}
    assert out_labels.dtype == np.int32
    assert np.all(out_labels[out_images[..., 0] > 0.999] == 3)
    assert np.all(out_labels[out_images[..., 1] > 0.999] == 7)
    assert np.all(out_labels[(out_images[..., 0] < 1e-3) & (out_images[..., 1] < 1e-3)] == 0)


def test_labels_hold_only_input_values_under_every_preset():
    labels = _labels(batch=4)
    for preset in ("light", "default", "strong"):
        for seed in range(3):
            _, out_labels = _run(_images(batch=4), labels, seed, preset)
            assert set(np.unique(out_labels)) <= {0, 3, 7}


def test_elastic_field_has_the_largest_displacement_alpha():
    noise = tf.random.stateless_normal((2, *SHAPE, 3), seed=[1, 2])
    field = augment3d._elastic_field(noise, 2.5, 3.0).numpy()
    np.testing.assert_allclose(np.linalg.norm(field, axis=-1).max(axis=(1, 2, 3)), [2.5, 2.5], rtol=1e-5)
    # Smooth: neighbouring displacements differ much less than the displacements do.
    assert np.abs(np.diff(field, axis=2)).max() < 0.5 * np.abs(field).max()


# -------------------------------------------------------------------------- reproducible


def test_same_seed_same_output_other_seed_other_output():
    images, labels = _images(batch=4), _labels(batch=4)
    first = _run(images, labels, 21, "strong")
    again = _run(images, labels, tf.constant(21, tf.int64), "strong")
    other = _run(images, labels, 22, "strong")
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[1], other[1])
    # Examples draw their own parameters: equal inputs come out different.
    assert not np.array_equal(first[0][0], first[0][1])


# ---------------------------------------------------------------------------- intensity


def test_intensity_transforms_leave_labels_untouched():
    images, labels = _images(), _labels()
    out_images, out_labels = _run(images, labels, 3, INTENSITY)
    np.testing.assert_array_equal(out_labels, labels)
    assert not np.allclose(out_images, images)
    assert np.isfinite(out_images).all()


def test_brightness_shifts_each_channel_by_the_same_multiple_of_its_std():
    images, labels = _images(batch=4), _labels(batch=4)
    out_images, _ = _run(images, labels, 6, {"brightness_prob": 1.0, "brightness": 0.5})
    shift = out_images - images
    std = images.std(axis=(1, 2, 3))  # (B, C)
    # A constant shift per example and channel, equal to the mean's shift ...
    np.testing.assert_allclose(shift, np.broadcast_to(shift[:, :1, :1, :1], shift.shape), atol=1e-4)
    mean_shift = out_images.mean(axis=(1, 2, 3)) - images.mean(axis=(1, 2, 3))
    np.testing.assert_allclose(mean_shift, shift[:, 0, 0, 0], atol=1e-4)
    # ... of s standard deviations, s in [-0.5, 0.5] drawn per example, shared by the channels.
    multiple = mean_shift / std
    np.testing.assert_allclose(multiple[:, 0], multiple[:, 1], atol=1e-4)
    assert np.all(np.abs(multiple) <= 0.5 + 1e-5) and np.abs(multiple).max() > 0.05
    np.testing.assert_allclose(out_images.std(axis=(1, 2, 3)), std, rtol=1e-4)


def test_contrast_and_gamma_keep_statistics_they_should():
    images, labels = _images(), _labels()
    contrast, _ = _run(images, labels, 7, {"contrast_prob": 1.0, "contrast": 0.4})
    np.testing.assert_allclose(contrast.mean(axis=(1, 2, 3)), images.mean(axis=(1, 2, 3)), rtol=1e-4, atol=1e-3)
    ratio = contrast.std(axis=(1, 2, 3)) / images.std(axis=(1, 2, 3))
    assert np.all((ratio >= 0.6 - 1e-4) & (ratio <= 1.4 + 1e-4))
    np.testing.assert_allclose(ratio[:, 0], ratio[:, 1], rtol=1e-4)
    gamma, _ = _run(images, labels, 7, {"gamma_prob": 1.0, "gamma": (2.0, 2.0)})
    low, high = images.min(axis=(1, 2, 3), keepdims=True), images.max(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(gamma, ((images - low) / (high - low)) ** 2 * (high - low) + low, rtol=1e-4, atol=1e-3)


def _lowres_reference(volume, zoom):
    """Nearest downsampling then linear upsampling of ``(D, H, W, C)``, one axis at a time."""
    for axis in range(3):
        n = volume.shape[axis]
        m = max(round(n * zoom), 1)
        small = np.take(volume, np.minimum(np.floor((np.arange(m) + 0.5) * n / m).astype(int), n - 1), axis)
        place = (np.arange(n) + 0.5) * m / n - 0.5
        volume = np.apply_along_axis(lambda line: np.interp(place, np.arange(m), line), axis, small)
    return volume


@pytest.mark.parametrize("zoom", [0.5, 0.7])
def test_low_resolution_matches_a_numpy_reference(zoom):
    images, labels = _images(), _labels()
    out_images, out_labels = _run(images, labels, 1, {"lowres_prob": 1.0, "lowres_zoom": (zoom, zoom)})
    for example in range(3):
        np.testing.assert_allclose(out_images[example], _lowres_reference(images[example], zoom), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(out_labels, labels)


def test_noise_adds_noise_of_at_most_noise_std_stds():
    images, labels = _images(batch=4), _labels(batch=4)
    out_images, _ = _run(images, labels, 12, {"noise_prob": 1.0, "noise_std": 0.2})
    ratio = (out_images - images).std(axis=(1, 2, 3)) / images.std(axis=(1, 2, 3))
    assert np.all(ratio < 0.2 * 1.2) and ratio.max() > 0.01
    np.testing.assert_allclose(ratio[:, 0], ratio[:, 1], rtol=0.2)


# ------------------------------------------------------------------------- graph usage


def test_inside_tf_data_map_with_unknown_batch_size():
    images, labels = _images(batch=5), _labels(batch=5)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2).enumerate()
    dataset = dataset.map(lambda i, batch: tf_augment_3d(batch[0], batch[1], 100 + i, "strong"))
    assert dataset.element_spec[0].shape.as_list() == [None, *SHAPE, 2]
    out = list(dataset.as_numpy_iterator())
    assert [x.shape[0] for x, _ in out] == [2, 2, 1]
    for i, (out_images, out_labels) in enumerate(out):
        eager = _run(images[2 * i:2 * i + 2], labels[2 * i:2 * i + 2], tf.constant(100 + i, tf.int64), "strong")
        np.testing.assert_allclose(out_images, eager[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out_labels, eager[1])
        assert out_labels.dtype == np.int32 and set(np.unique(out_labels)) <= {0, 3, 7}


def test_in_a_tf_function_with_unknown_sizes_and_one_example():
    augment = dict(SPATIAL, **INTENSITY, mirror_prob=0.5)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.float32),
                                  tf.TensorSpec([None, None, None, None], tf.int32),
                                  tf.TensorSpec([], tf.int64)])
    def run(images, labels, seed):
        return tf_augment_3d(images, labels, seed, augment)

    images, labels = _images(batch=2, shape=(7, 9, 5), channels=3), _labels(batch=2, shape=(7, 9, 5))
    out_images, out_labels = run(images, labels, tf.constant(4, tf.int64))
    assert out_images.shape == images.shape and out_labels.shape == labels.shape
    assert set(np.unique(out_labels.numpy())) <= {0, 3, 7}
    single_images, single_labels = tf_augment_3d(images[0], labels[0], 4, augment)
    assert single_images.shape == images.shape[1:] and single_labels.shape == labels.shape[1:]
