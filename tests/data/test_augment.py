"""Tests of kerasseg.data.augment: image/mask alignment, mask values, reproducibility,
float32 multi-channel support, for both the albumentations and the TF backends."""

import numpy as np
import pytest
import tensorflow as tf

from kerasseg.data.augment import AUGMENT_PRESETS, AlbumentationsAugmenter, get_augmentation, tf_augment

SPATIAL_ONLY = {
    "preset": "strong",
    "brightness_prob": 0.0,
    "contrast_prob": 0.0,
    "gamma_prob": 0.0,
    "noise_prob": 0.0,
}
DIHEDRAL_ONLY = {"flip_prob": 0.5, "rot90_prob": 0.75}


def _labelled_image(size=64, channels=3):
    """A label map with values {0, 3, 7} and an image whose intensity encodes it (label * 100)."""
    label = np.zeros((size, size), np.int32)
    label[8:30, 10:40] = 3
    label[34:56, 20:52] = 7
    label[40:44, 5:15] = 3
    image = np.repeat((label * 100.0).astype(np.float32)[..., None], channels, axis=-1)
    return image, label


def _albumentations(augment, image, label, seed):
    return AlbumentationsAugmenter(augment)(image, label, seed)


def _tf(augment, image, label, seed):
    out_image, out_label = tf_augment(image, label, seed, augment)
    return out_image.numpy(), out_label.numpy()


BACKENDS = [pytest.param(_albumentations, id="albumentations"), pytest.param(_tf, id="tf")]


def test_presets_and_invalid_names():
    assert AUGMENT_PRESETS == ("none", "light", "default", "strong")
    assert get_augmentation("none")["flip_prob"] == 0.0
    assert get_augmentation("default")["elastic_prob"] > 0
    assert get_augmentation(None) == get_augmentation("none")
    with pytest.raises(ValueError, match=r"must be one of \['none', 'light', 'default', 'strong'\]"):
        get_augmentation("heavy")
    with pytest.raises(ValueError, match="unknown"):
        get_augmentation({"flip": 0.5})
    with pytest.raises(ValueError, match="flip_prob"):
        get_augmentation({"flip_prob": 2.0})
    with pytest.raises(ValueError, match="augment"):
        AlbumentationsAugmenter("heavy")


@pytest.mark.parametrize("run", BACKENDS)
def test_spatial_transforms_keep_image_and_mask_aligned(run):
    image, label = _labelled_image()
    changed = 0
    for seed in range(8):
        out_image, out_label = run(SPATIAL_ONLY, image, label, seed)
        assert out_image.shape == image.shape and out_label.shape == label.shape
        assert out_label.dtype == label.dtype
        # Nearest neighbour for masks: no interpolated value such as 1, 2, 5.
        assert set(np.unique(out_label)) <= {0, 3, 7}
        # The image (linear) decoded back to labels matches the mask except on borders.
        decoded = np.array([0, 3, 7])[np.abs(out_image[..., 0, None] - np.array([0, 300, 700])).argmin(-1)]
        assert np.mean(decoded != out_label) < 0.04
        np.testing.assert_array_equal(out_image[..., 0], out_image[..., 2])
        changed += int(not np.array_equal(out_label, label))
    assert changed >= 6


def _dihedral(array):
    """The 8 flips/rotations of the first two axes."""
    out = []
    for k in range(4):
        rotated = np.rot90(array, k, axes=(0, 1))
        out += [rotated, rotated[:, ::-1]]
    return out


@pytest.mark.parametrize("run", BACKENDS)
def test_flips_and_rot90_are_exact_and_shared_by_image_and_mask(run):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(16, 16, 5)).astype(np.float32)  # 5 channels, negative values
    label = rng.integers(0, 4, size=(16, 16)).astype(np.int32)
    seen = set()
    for seed in range(40):
        out_image, out_label = run(DIHEDRAL_ONLY, image, label, seed)
        matches = [i for i, (a, b) in enumerate(zip(_dihedral(image), _dihedral(label)))
                   if np.allclose(out_image, a, atol=1e-5) and np.array_equal(out_label, b)]
        assert matches, f"seed {seed}: output is not a flip/rotation of the input shared by image and mask"
        seen.add(matches[0])
    assert len(seen) >= 6  # flips are drawn independently (not all together)


@pytest.mark.parametrize("run", BACKENDS)
def test_same_seed_same_result_different_seed_differs(run):
    image, label = _labelled_image()
    first = run("default", image, label, 11)
    second = run("default", image, label, 11)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    outputs = [run("strong", image, label, seed)[0] for seed in range(4)]
    assert any(not np.array_equal(outputs[0], other) for other in outputs[1:])


@pytest.mark.parametrize("run", BACKENDS)
def test_intensity_transforms_handle_float32_outside_unit_range(run):
    rng = np.random.default_rng(1)
    image = rng.normal(0.0, 1.0, size=(32, 32, 5)).astype(np.float32)  # z-scored, 5 channels
    label = np.zeros((32, 32), np.int32)
    mean, std = image.mean(axis=(0, 1)), image.std(axis=(0, 1))

    def only(**params):
        return run(params, image, label, 3)[0]

    out = only(brightness_prob=1.0, brightness=0.5)
    shift = (out.mean(axis=(0, 1)) - mean) / std
    assert np.ptp(shift) < 1e-4 and 0 < abs(shift[0]) <= 0.5  # one shift, in std units
    np.testing.assert_allclose(out.std(axis=(0, 1)), std, rtol=1e-4)

    out = only(contrast_prob=1.0, contrast=0.5)
    np.testing.assert_allclose(out.mean(axis=(0, 1)), mean, atol=1e-4)
    factor = out.std(axis=(0, 1)) / std
    assert np.ptp(factor) < 1e-4 and 0.5 <= factor[0] <= 1.5 and abs(factor[0] - 1) > 1e-3

    out = only(gamma_prob=1.0, gamma=(0.5, 2.0))
    np.testing.assert_allclose(out.min(axis=(0, 1)), image.min(axis=(0, 1)), atol=1e-4)
    np.testing.assert_allclose(out.max(axis=(0, 1)), image.max(axis=(0, 1)), atol=1e-4)
    assert not np.allclose(out, image, atol=1e-3)

    out = only(noise_prob=1.0, noise_std=0.5)
    residual = (out - image).std(axis=(0, 1)) / std
    assert np.all(residual < 0.55) and np.all(residual > 0)

    out = run("strong", image, label, 5)[0]
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    assert out.min() < -1.0 and out.max() > 1.0  # not clipped to [0, 1]


@pytest.mark.parametrize("run", BACKENDS)
def test_default_preset_on_non_square_multichannel_images(run):
    image = np.random.default_rng(2).normal(size=(24, 40, 7)).astype(np.float32)
    label = (image[..., 0] > 0).astype(np.uint8)
    for seed in range(5):
        out_image, out_label = run("default", image, label, seed)
        assert out_image.shape == (24, 40, 7) and out_label.shape == (24, 40)
        assert out_label.dtype == np.uint8 and set(np.unique(out_label)) <= {0, 1}


def test_none_preset_is_identity():
    image, label = _labelled_image()
    out_image, out_label = AlbumentationsAugmenter("none")(image, label, 0)
    np.testing.assert_array_equal(out_image, image)
    np.testing.assert_array_equal(out_label, label)
    tf_image, tf_label = _tf("none", image, label, 0)
    np.testing.assert_array_equal(tf_image, image)
    np.testing.assert_array_equal(tf_label, label)


def test_tf_backend_batches_draw_per_example_parameters_and_run_in_graph():
    image, label = _labelled_image(size=32)
    images = np.repeat(image[None], 6, axis=0)
    labels = np.repeat(label[None], 6, axis=0)

    @tf.function
    def run(x, y, seed):
        return tf_augment(x, y, seed, "default")

    out_images, out_labels = run(images, labels, tf.constant([4, 2], tf.int64))
    assert out_images.shape == (6, 32, 32, 3) and out_labels.dtype == tf.int32
    distinct = {out_labels[i].numpy().tobytes() for i in range(6)}
    assert len(distinct) >= 3
    again = run(images, labels, tf.constant([4, 2], tf.int64))
    np.testing.assert_array_equal(out_images.numpy(), again[0].numpy())
    with pytest.raises(ValueError, match="images"):
        tf_augment(np.zeros((4, 4)), np.zeros((4,)), 0)


@pytest.mark.parametrize("run", BACKENDS)
@pytest.mark.parametrize("axes", [[0], [1], []])
def test_flip_axes_restricts_flips_to_the_named_image_axes(run, axes):
    rng = np.random.default_rng(1)
    image = rng.normal(size=(12, 16, 2)).astype(np.float32)
    label = rng.integers(0, 3, size=(12, 16)).astype(np.int32)
    allowed = [(image, label)]
    if 0 in axes:
        allowed.append((image[::-1], label[::-1]))
    if 1 in axes:
        allowed.append((image[:, ::-1], label[:, ::-1]))
    seen = set()
    for seed in range(16):
        out_image, out_label = run({"flip_prob": 0.5, "flip_axes": axes}, image, label, seed)
        matches = [i for i, (a, b) in enumerate(allowed)
                   if np.allclose(out_image, a, atol=1e-5) and np.array_equal(out_label, b)]
        assert matches, f"seed {seed}: a flip along an axis outside {axes}"
        seen.add(matches[0])
    assert seen == set(range(len(allowed)))  # the allowed flip does happen


def test_flip_axes_validation_and_flipped_axes():
    from kerasseg.data.augment import flipped_axes

    assert get_augmentation("light")["flip_axes"] == (0, 1)
    assert get_augmentation({"preset": "light", "flip_axes": [1]})["flip_axes"] == (1,)
    assert flipped_axes("light") == [0, 1]
    assert flipped_axes({"preset": "light", "flip_axes": [0]}) == [0]
    assert flipped_axes({"preset": "light", "flip_prob": 0.0}) == []
    assert flipped_axes("none") == []
    for bad in ([2], [0, 0], [True], [1.0], "1", 1):
        with pytest.raises(ValueError, match="flip_axes"):
            get_augmentation({"flip_prob": 0.5, "flip_axes": bad})


def _coordinate_image(size):
    rows, cols = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32),
                             indexing="ij")
    return np.stack([rows, cols], axis=-1), np.zeros((size, size), np.int32)


def test_tf_elastic_moves_pixels_as_far_as_albumentations():
    # An image holding each pixel's own coordinates: after warping, (value - position)
    # is the displacement. Same alpha and sigma: the TF field is as strong as the
    # albumentations one (measured away from the border).
    image, label = _coordinate_image(64)
    params = {"elastic_prob": 1.0, "elastic_alpha": 300.0, "elastic_sigma": 12.0}
    spread = {}
    for name, run in (("tf", _tf), ("albumentations", _albumentations)):
        spread[name] = np.mean([(run(params, image, label, seed)[0] - image)[8:-8, 8:-8].std()
                                for seed in range(20)])
    assert 1.0 < spread["albumentations"] < 4.0
    assert 0.75 < spread["tf"] / spread["albumentations"] < 1.33
    # alpha scales the displacement linearly (small fields: no pixel reflects at the border).
    small, doubled = ([(_tf(dict(params, elastic_alpha=alpha), image, label, 0)[0]
                        - image)[16:-16, 16:-16] for alpha in (50.0, 100.0)])
    np.testing.assert_allclose(doubled, 2.0 * small, atol=1e-3)


def test_tf_elastic_is_smooth_and_keeps_masks_nearest():
    image, label = _labelled_image()
    out_image, out_label = _tf({"elastic_prob": 1.0, "elastic_alpha": 600.0,
                                "elastic_sigma": 12.0}, image, label, 3)
    assert set(np.unique(out_label)) <= {0, 3, 7} and not np.array_equal(out_label, label)
    # A smooth field: neighbouring pixels move almost together.
    coords, zeros = _coordinate_image(64)
    warped = (_tf({"elastic_prob": 1.0, "elastic_alpha": 300.0, "elastic_sigma": 12.0},
                  coords, zeros, 3)[0] - coords)[16:-16, 16:-16]
    assert np.abs(np.diff(warped, axis=0)).max() < 1.0
    assert np.abs(np.diff(warped, axis=1)).max() < 1.0
    assert np.abs(warped).max() > 1.0


def test_tf_elastic_applies_only_to_the_drawn_examples_and_alpha_zero_is_identity():
    image, label = _labelled_image(size=32)
    images, labels = np.repeat(image[None], 8, axis=0), np.repeat(label[None], 8, axis=0)
    out_images, out_labels = tf_augment(images, labels, 5, {
        "elastic_prob": 0.5, "elastic_alpha": 400.0, "elastic_sigma": 8.0})
    same = [np.array_equal(out_images[i].numpy(), image) and
            np.array_equal(out_labels[i].numpy(), label) for i in range(8)]
    assert 0 < sum(same) < 8
    still, still_labels = tf_augment(images, labels, 5, {
        "elastic_prob": 1.0, "elastic_alpha": 0.0, "elastic_sigma": 8.0})
    np.testing.assert_array_equal(still.numpy(), images)
    np.testing.assert_array_equal(still_labels.numpy(), labels)
