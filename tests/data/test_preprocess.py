"""Tests of kerasseg.data.preprocess: values checked against hand computations."""

import json

import numpy as np
import pytest

from kerasseg.data.preprocess import (
    Normalizer,
    class_locations,
    crop_or_pad,
    ct_window,
    extract_slice,
    extract_slices,
    minmax,
    percentile_clip,
    resample,
    resample_label,
    resample_to_shape,
    sample_patch,
    sample_patch_start,
    uncrop,
    zscore,
)
from kerasseg.data.types import Geometry

IDENTITY3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


# ------------------------------------------------------------------------ resampling


def test_resample_halved_spacing_doubles_size_with_linear_values():
    image = np.zeros((2, 3, 4, 1), np.float32)
    image[..., 0] = np.arange(4.0)  # ramp along x
    geometry = Geometry(spacing=(1.0, 1.0, 2.0), origin=(10.0, 20.0, 30.0), direction=IDENTITY3)
    out, new = resample(image, geometry, (0.5, 0.5, 1.0))
    assert out.shape == (4, 6, 8, 1) and out.dtype == np.float32
    # Pixel extents aligned: output x = (j + 0.5) / 2 - 0.5, clamped at the edges.
    np.testing.assert_allclose(out[0, 0, :, 0], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0])
    assert new.spacing == (0.5, 0.5, 1.0)
    # The first voxel centre moves by half the change of the voxel size.
    assert new.origin == pytest.approx((9.75, 19.75, 29.5))
    assert new.direction == IDENTITY3


def test_resample_origin_follows_direction_and_keeps_extent():
    direction = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # as in the hippocampus files
    geometry = Geometry(spacing=(1.0, 1.0, 1.0), origin=(-1.0, -1.0, 1.0), direction=direction)
    out, new = resample(np.zeros((4, 4, 4, 1), np.float32), geometry, (2.0, 2.0, 2.0))
    assert out.shape == (2, 2, 2, 1)
    assert new.spacing == (2.0, 2.0, 2.0)
    # Origin moves +0.5 mm along each image axis; x and y axes point to -x and -y.
    assert new.origin == pytest.approx((-1.5, -1.5, 1.5))
    # Physical corner of the first voxel is unchanged: origin - D @ spacing / 2.
    d = np.array(direction).reshape(3, 3)
    corner_old = np.array(geometry.origin) - d @ (0.5 * np.array(geometry.spacing))
    corner_new = np.array(new.origin) - d @ (0.5 * np.array(new.spacing))
    np.testing.assert_allclose(corner_old, corner_new)


def test_resample_none_keeps_axis_and_2d_geometry():
    image = np.random.default_rng(0).random((5, 6, 8, 2)).astype(np.float32)
    geometry = Geometry(spacing=(0.5, 0.5, 3.0))
    out, new = resample(image, geometry, (1.0, 1.0, None))
    assert out.shape == (5, 3, 4, 2)
    assert new.spacing == (1.0, 1.0, 3.0)
    np.testing.assert_allclose(out[..., 1].mean(), image[..., 1].mean(), atol=0.05)

    planar, g2 = resample(np.ones((1, 4, 6, 1), np.float32), Geometry.identity(2), (0.5, 0.5))
    assert planar.shape == (1, 8, 12, 1) and g2.spacing == (0.5, 0.5)
    np.testing.assert_allclose(planar, 1.0)
    same, g3 = resample(image, geometry, None)
    np.testing.assert_array_equal(same, image)
    assert g3 == geometry


def test_resample_rejects_bad_target_spacing():
    with pytest.raises(ValueError, match="target_spacing"):
        resample(np.zeros((2, 2, 2, 1)), Geometry(), (1.0, 1.0))
    with pytest.raises(ValueError, match="target_spacing"):
        resample(np.zeros((2, 2, 2, 1)), Geometry(), (1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="image"):
        resample(np.zeros((2, 2, 2)), Geometry(), (1.0, 1.0, 1.0))


def test_resample_label_nearest_keeps_values_and_dtype():
    label = np.zeros((1, 1, 4), np.uint8)
    label[0, 0] = [0, 3, 7, 3]
    out, geometry = resample_label(label, Geometry(spacing=(1.0, 1.0, 1.0)), (0.5, 1.0, 1.0))
    assert out.dtype == np.uint8 and out.shape == (1, 1, 8)
    assert out[0, 0].tolist() == [0, 0, 3, 3, 7, 7, 3, 3]
    assert geometry.spacing == (0.5, 1.0, 1.0)

    rng = np.random.default_rng(1)
    big = rng.choice(np.array([0, 2, 5], np.int32), size=(6, 9, 7))
    down, _ = resample_label(big, Geometry(spacing=(1.0, 1.0, 1.0)), (1.7, 1.3, 2.1))
    assert set(np.unique(down)) <= {0, 2, 5}
    assert down.dtype == np.int32


def test_resample_to_shape_round_trip_and_channels():
    rng = np.random.default_rng(2)
    label = rng.integers(0, 3, size=(3, 5, 4)).astype(np.int16)
    up = resample_to_shape(label, (6, 10, 8), order=0)
    np.testing.assert_array_equal(up[::2, ::2, ::2], label)
    np.testing.assert_array_equal(resample_to_shape(up, label.shape, order=0), label)
    probs = rng.random((3, 5, 4, 2)).astype(np.float32)
    restored = resample_to_shape(probs, (6, 10, 8), order=1)
    assert restored.shape == (6, 10, 8, 2) and restored.dtype == np.float32
    with pytest.raises(ValueError, match="spatial dimensions"):
        resample_to_shape(np.zeros((2, 2)), (2, 2, 2))
    with pytest.raises(ValueError, match="order"):
        resample_to_shape(label, (3, 5, 4), order=7)


# ------------------------------------------------------------------- normalization


def test_zscore_per_channel_mean_zero_std_one():
    rng = np.random.default_rng(3)
    image = np.stack([rng.normal(5, 3, (4, 8, 8)), rng.normal(-100, 20, (4, 8, 8))], -1)
    out = zscore(image)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), [0, 0], atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), [1, 1], atol=1e-4)
    np.testing.assert_allclose(zscore(np.array([[1.0], [3.0]]))[:, 0], [-1.0, 1.0])
    np.testing.assert_array_equal(zscore(np.full((3, 1), 7.0)), 0.0)


def test_zscore_nonzero_and_mask():
    image = np.array([[0.0], [0.0], [2.0], [4.0], [6.0]])
    out = zscore(image, nonzero=True)[:, 0]
    std = np.std([2.0, 4.0, 6.0])
    np.testing.assert_allclose(out, [0, 0, -2 / std, 0, 2 / std], rtol=1e-6)
    mask = np.array([False, True, True, True, False])
    np.testing.assert_allclose(zscore(image, mask=mask)[:, 0], [0, -1.2247449, 0, 1.2247449, 0], rtol=1e-6)
    with pytest.raises(ValueError, match="mask"):
        zscore(image, mask=np.ones(4, bool))


def test_percentile_clip_bounds():
    image = np.arange(101.0).reshape(101, 1)
    out = percentile_clip(image, lower=1, upper=99)
    assert out.min() == 1.0 and out.max() == 99.0
    np.testing.assert_array_equal(out[1:100, 0], image[1:100, 0])
    rescaled = percentile_clip(image, 0.5, 99.5, rescale=True)
    assert rescaled.min() == 0.0 and rescaled.max() == 1.0
    np.testing.assert_allclose(rescaled[50, 0], (50 - 0.5) / 99.0)
    with pytest.raises(ValueError, match="lower"):
        percentile_clip(image, 60, 40)


def test_ct_window_by_hand():
    hu = np.array([-1000.0, -160.0, 40.0, 140.0, 240.0, 3000.0])
    np.testing.assert_allclose(ct_window(hu, center=40, width=400), [0, 0, 0.5, 0.75, 1.0, 1.0])
    with pytest.raises(ValueError, match="width"):
        ct_window(hu, 40, 0)


def test_minmax_by_hand():
    image = np.array([[2.0, 10.0], [4.0, 10.0], [6.0, 10.0]])
    np.testing.assert_allclose(minmax(image), [[0, 0], [0.5, 0], [1, 0]])


def test_normalizer_serialization_and_application():
    image = np.random.default_rng(4).normal(50, 10, (3, 6, 6, 2)).astype(np.float32)
    for norm, expected in [
        (Normalizer("zscore"), zscore(image)),
        (Normalizer("zscore", nonzero=True), zscore(image, nonzero=True)),
        (Normalizer("ct_window", center=40, width=400), ct_window(image, 40, 400)),
        (Normalizer("percentile_clip", lower=2, upper=98), percentile_clip(image, 2, 98)),
        (Normalizer("percentile_zscore"), zscore(percentile_clip(image, 0.5, 99.5))),
        (Normalizer("minmax"), minmax(image)),
        (Normalizer("none"), image),
    ]:
        round_trip = Normalizer.from_json(json.dumps(json.loads(norm.to_json())))
        assert round_trip == norm
        assert Normalizer.from_dict(norm.to_dict()) == norm
        np.testing.assert_allclose(round_trip(image), expected, rtol=1e-6)
    assert Normalizer("zscore").to_dict() == {"method": "zscore", "params": {"nonzero": False}}
    assert Normalizer.from_spec("zscore") == Normalizer("zscore")
    spec = {"method": "ct_window", "params": {"center": 40, "width": 400}}
    assert Normalizer.from_spec(spec) == Normalizer("ct_window", center=40, width=400)
    assert Normalizer.from_spec(None).method == "none"


def test_normalizer_rejects_bad_specs():
    with pytest.raises(ValueError, match=r"must be one of \['none', 'scale'"):
        Normalizer("histogram")
    with pytest.raises(ValueError, match=r"requires parameters \['center', 'width'\]"):
        Normalizer("ct_window")
    with pytest.raises(ValueError, match="unknown parameters"):
        Normalizer("zscore", clip=True)
    with pytest.raises(ValueError, match="normalization"):
        Normalizer.from_spec(3)


# ------------------------------------------------------------------- crop and pad


def test_crop_or_pad_offsets_by_hand():
    out, offsets = crop_or_pad(np.arange(5), (3,))
    assert out.tolist() == [1, 2, 3] and offsets == (1,)
    out, offsets = crop_or_pad(np.arange(2), (5,), pad_value=-1)
    assert out.tolist() == [-1, 0, 1, -1, -1] and offsets == (-1,)
    out, offsets = crop_or_pad(np.arange(5), (3,), mode="end")
    assert out.tolist() == [2, 3, 4] and offsets == (2,)
    out, offsets = crop_or_pad(np.arange(5), (3,), mode="start")
    assert out.tolist() == [0, 1, 2] and offsets == (0,)


def test_crop_or_pad_uncrop_round_trip_with_channels():
    rng = np.random.default_rng(5)
    array = rng.random((7, 4, 3)).astype(np.float32)  # crop axis 0, pad axis 1, keep channels
    out, offsets = crop_or_pad(array, (5, 8))
    assert out.shape == (5, 8, 3) and offsets == (1, -2)
    back = uncrop(out, offsets, (7, 4))
    np.testing.assert_array_equal(back[1:6], array[1:6])
    np.testing.assert_array_equal(back[[0, 6]], 0.0)
    # Padding alone is exactly invertible.
    padded, offs = crop_or_pad(array, (9, 6))
    np.testing.assert_array_equal(uncrop(padded, offs, array.shape[:2]), array)
    kept, offs = crop_or_pad(array, (None, 2))
    assert kept.shape == (7, 2, 3) and offs == (0, 1)
    for seed in range(5):
        crop, offs = crop_or_pad(array, (4, 6), mode="random", rng=np.random.default_rng(seed))
        assert 0 <= offs[0] <= 3 and -2 <= offs[1] <= 0
        np.testing.assert_array_equal(uncrop(crop, offs, (7, 4))[offs[0]:offs[0] + 4], array[offs[0]:offs[0] + 4])


def test_crop_or_pad_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"`mode` must be one of \['center', 'start', 'end', 'random'\]"):
        crop_or_pad(np.zeros(4), (2,), mode="middle")
    with pytest.raises(ValueError, match="rng"):
        crop_or_pad(np.zeros(4), (2,), mode="random")


# ---------------------------------------------------------------------- 2.5-D slices


def _indexed_volume(depth=4, channels=2):
    """Voxel value = 10 * slice + channel, so every channel names its source."""
    volume = np.zeros((depth, 3, 5, channels), np.float32)
    for z in range(depth):
        for c in range(channels):
            volume[z, :, :, c] = 10 * z + c
    return volume


def test_extract_slice_context_channels_are_neighbours_with_edge_replication():
    volume = _indexed_volume()
    first = extract_slice(volume, 0, context=1)
    assert first.shape == (3, 5, 6)
    # Modality-major: [m0 z-1, m0 z, m0 z+1, m1 z-1, m1 z, m1 z+1]; z-1 replicates slice 0.
    assert first[0, 0].tolist() == [0, 0, 10, 1, 1, 11]
    assert extract_slice(volume, 3, context=1)[0, 0].tolist() == [20, 30, 30, 21, 31, 31]
    assert extract_slice(volume, 2, context=2)[1, 1].tolist() == [0, 10, 20, 30, 30, 1, 11, 21, 31, 31]
    assert extract_slice(volume, 1)[0, 0].tolist() == [10, 11]


def test_extract_slices_matches_single_slices_on_every_axis():
    volume = np.random.default_rng(6).random((4, 5, 6, 2)).astype(np.float32)
    for axis, shape in [(0, (4, 5, 6, 6)), (1, (5, 4, 6, 6)), (2, (6, 4, 5, 6))]:
        stack = extract_slices(volume, axis=axis, context=1)
        assert stack.shape == shape
        for i in range(shape[0]):
            np.testing.assert_array_equal(stack[i], extract_slice(volume, i, axis=axis, context=1))
    label = np.arange(24).reshape(2, 3, 4)
    np.testing.assert_array_equal(extract_slice(label, 1, axis=2), label[:, :, 1])
    np.testing.assert_array_equal(extract_slices(label, axis=1), np.moveaxis(label, 1, 0))
    with pytest.raises(ValueError, match="context"):
        extract_slice(label, 0, context=1)
    with pytest.raises(ValueError, match="index"):
        extract_slice(volume, 4)


# ------------------------------------------------------------------- patch sampling


def test_class_locations_and_subsampling():
    label = np.array([[0, 2], [1, 2]])
    locations = class_locations(label)
    assert sorted(locations) == [1, 2]
    assert locations[2].tolist() == [[0, 1], [1, 1]]
    many = class_locations(np.ones((50, 50), np.uint8), max_per_class=100, seed=0)
    assert many[1].shape == (100, 2)
    np.testing.assert_array_equal(many[1], class_locations(np.ones((50, 50), np.uint8), max_per_class=100, seed=0)[1])


def test_foreground_sampling_rate_matches_foreground_prob():
    label = np.zeros((100, 100), np.uint8)
    label[50, 50] = 1  # one foreground pixel: random 10x10 patches rarely hit it
    image = label[..., None].astype(np.float32)
    locations = class_locations(label)
    rng = np.random.default_rng(0)
    n, hits = 3000, 0
    for _ in range(n):
        _, patch = sample_patch(image, label, (10, 10), rng, foreground_prob=0.33, locations=locations)
        hits += int(patch.any())
    chance = 100 / 91**2  # a uniformly placed patch covering the pixel
    expected = 0.33 + 0.67 * chance
    assert abs(hits / n - expected) < 0.03
    none = sum(
        sample_patch(image, label, (10, 10), rng, foreground_prob=0.0, locations=locations)[1].any()
        for _ in range(300)
    )
    assert none / 300 < 0.05


def test_foreground_class_is_chosen_uniformly_in_3d():
    label = np.zeros((20, 30, 30), np.uint8)
    label[:, :15] = 1  # a large class
    label[10, 20, 20] = 2  # a tiny class, chosen as often as the large one
    locations = class_locations(label)
    rng = np.random.default_rng(1)
    counts = {1: 0, 2: 0}
    for _ in range(1000):
        start, fg = sample_patch_start(label.shape, (8, 8, 8), rng, 1.0, locations)
        assert fg
        center = tuple(s + 4 for s in start)
        patch = label[start[0]:start[0] + 8, start[1]:start[1] + 8, start[2]:start[2] + 8]
        counts[2 if (patch == 2).any() else 1] += 1
        assert all(0 <= s <= n - 8 for s, n in zip(start, label.shape)), center
    assert abs(counts[2] / 1000 - 0.5) < 0.06


def test_sample_patch_pads_small_arrays_and_checks_shapes():
    image = np.ones((4, 6, 2), np.float32)
    label = np.ones((4, 6), np.int32)
    patch, lab = sample_patch(image, label, (8, 6), np.random.default_rng(0), pad_value=-5.0)
    assert patch.shape == (8, 6, 2) and lab.shape == (8, 6)
    assert patch[:2].max() == -5.0 and patch[2:6].min() == 1.0 and lab[:2].max() == 0
    with pytest.raises(ValueError, match="patch_size"):
        sample_patch(image, label, (8,), np.random.default_rng(0))
    with pytest.raises(ValueError, match="label"):
        sample_patch(image, label[:3], (2, 2), np.random.default_rng(0))
    with pytest.raises(ValueError, match="foreground_prob"):
        sample_patch_start((4, 4), (2, 2), np.random.default_rng(0), 1.5)
