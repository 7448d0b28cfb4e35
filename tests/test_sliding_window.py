"""Sliding-window prediction: importance map, window starts, blending, mirroring, batching,
padding, memory, the Keras wrapper and argument checks, against values computed by hand."""

import itertools
import math
import tracemalloc

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from kerasseg.sliding_window import (gaussian_importance, predict_volume, sliding_window_predict,
                                     window_starts)


def _hand_gaussian(patch, sigma_scale):
    """exp(-sum (x - n // 2)**2 / (2 (n * sigma_scale)**2)), voxel by voxel."""
    out = np.zeros(patch)
    for index in itertools.product(*(range(n) for n in patch)):
        out[index] = math.exp(-sum((i - n // 2) ** 2 / (2 * (n * sigma_scale) ** 2)
                                   for i, n in zip(index, patch)))
    return out


def _nnunet_gaussian(patch, sigma_scale):
    """nnU-Net's construction: a centred delta smoothed by scipy, maximum 1, no zeros."""
    delta = np.zeros(patch)
    delta[tuple(n // 2 for n in patch)] = 1
    out = gaussian_filter(delta, [n * sigma_scale for n in patch], 0, mode="constant", cval=0)
    out = out / out.max()
    out[out == 0] = out[out != 0].min()
    return out


# ------------------------------------------------------------------ the importance map

def test_gaussian_importance_at_hand_computed_points():
    w = gaussian_importance((8, 8, 8))          # sigma = 8 / 8 = 1 voxel, centre (4, 4, 4)
    assert w.shape == (8, 8, 8) and w.dtype == np.float32
    assert w[4, 4, 4] == 1.0 and w.max() == 1.0
    assert np.unravel_index(np.argmax(w), w.shape) == (4, 4, 4)
    assert w[4, 4, 5] == pytest.approx(math.exp(-1 / 2), rel=1e-6)
    assert w[5, 6, 4] == pytest.approx(math.exp(-(1 + 4) / 2), rel=1e-6)
    assert w[0, 0, 0] == pytest.approx(math.exp(-3 * 16 / 2), rel=1e-6)   # offsets (-4,-4,-4)
    assert w[7, 7, 7] == pytest.approx(math.exp(-3 * 9 / 2), rel=1e-6)    # offsets (3, 3, 3)
    # Symmetric about the centre voxel where both sides exist (offsets -3..3), and across axes.
    for d in range(1, 4):
        assert w[4 - d, 4, 4] == w[4 + d, 4, 4] == w[4, 4 - d, 4] == w[4, 4, 4 + d]
    np.testing.assert_array_equal(w, w.transpose(1, 0, 2))
    np.testing.assert_array_equal(w, w.transpose(2, 1, 0))
    assert w.min() > 0


def test_gaussian_importance_in_2d_has_one_sigma_per_axis():
    w = gaussian_importance((4, 6), sigma_scale=1 / 4)    # sigmas (1, 1.5), centre (2, 3)
    assert w[2, 3] == 1.0
    assert w[0, 0] == pytest.approx(math.exp(-(4 / 2 + 9 / 4.5)), rel=1e-6)
    assert w[3, 5] == pytest.approx(math.exp(-(1 / 2 + 4 / 4.5)), rel=1e-6)
    np.testing.assert_allclose(w, _hand_gaussian((4, 6), 1 / 4), rtol=1e-6)


def test_gaussian_importance_beyond_four_sigma_takes_the_smallest_value():
    # sigma = 9 / 16 = 0.5625: the kernel ends int(4 * 0.5625 + 0.5) = 2 voxels from the
    # centre 4; offsets 3 and 4 get the value at offset 2.
    w = gaussian_importance((9,), sigma_scale=1 / 16)
    one = math.exp(-1 / (2 * 0.5625 ** 2))
    two = math.exp(-4 / (2 * 0.5625 ** 2))
    np.testing.assert_allclose(w, [two, two, two, one, 1, one, two, two, two], rtol=1e-6)


@pytest.mark.parametrize("patch, sigma_scale", [((8, 8, 8), 1 / 8), ((5, 6), 1 / 8),
                                                ((7, 4, 6), 1 / 4), ((9,), 1 / 16),
                                                ((12, 10), 1 / 20)])
def test_gaussian_importance_is_nnunet_s(patch, sigma_scale):
    np.testing.assert_allclose(gaussian_importance(patch, sigma_scale),
                               _nnunet_gaussian(patch, sigma_scale), rtol=1e-6)


# ------------------------------------------------------------------ the window starts

@pytest.mark.parametrize("size, patch, overlap, expected", [
    (10, 4, 0.5, [0, 2, 4, 6]),        # step 2: ceil(6 / 2) + 1 = 4 windows, 2 apart
    (110, 64, 0.5, [0, 23, 46]),       # step 32: 3 windows, 46 / 2 = 23 apart (nnU-Net's example)
    (11, 4, 0.5, [0, 2, 4, 5, 7]),     # 5 windows, 7 / 4 = 1.75 apart: 0, 1.75, 3.5, 5.25, 7
    (13, 8, 0.5, [0, 2, 5]),           # 3 windows 2.5 apart: 2.5 rounds half to even, to 2
    (10, 4, 0.0, [0, 3, 6]),           # step 4: ceil(6 / 4) + 1 = 3 windows, 3 apart
    (12, 4, 0.0, [0, 4, 8]),           # no overlap, the axis a multiple of the patch
    (6, 4, 0.75, [0, 1, 2]),           # step 1
    (120, 100, 0.9, [0, 10, 20]),      # step 100 * (1 - 0.9) = 10, not 9.999... -> 9
    (4, 4, 0.5, [0]),                  # the axis is the patch
    (3, 4, 0.5, [0]),                  # shorter: padded to the patch, one window
])
def test_window_starts_by_hand(size, patch, overlap, expected):
    assert window_starts(size, patch, overlap) == expected


def test_window_starts_cover_the_axis_at_most_a_step_apart():
    for size, patch, overlap in itertools.product(range(1, 41), range(1, 13),
                                                  (0.0, 0.25, 0.5, 0.75, 0.9)):
        starts = window_starts(size, patch, overlap)
        step = max(1, round(patch * (1 - overlap), 6) // 1)
        assert starts[0] == 0 and starts[-1] == max(size - patch, 0), (size, patch, overlap)
        gaps = np.diff(starts)
        assert (gaps > 0).all() and (gaps <= step).all(), (size, patch, overlap, starts)
        covered = np.zeros(max(size, patch), bool)
        for start in starts:
            covered[start:start + patch] = True
        assert covered.all()


# ------------------------------------------------------------------ blending

def test_windows_that_agree_recover_the_function_of_the_global_coordinate():
    # Channel 0 is f(z, y, x) = (100 z + 10 y + x) / 1000; predict_fn returns (f, 1 - f), so
    # every window covering a voxel predicts the same value there.
    z, y, x = np.meshgrid(np.arange(7), np.arange(9), np.arange(10), indexing="ij")
    f = ((100 * z + 10 * y + x) / 1000).astype("float32")

    def predict(batch):
        return np.concatenate([batch, 1 - batch], axis=-1)

    out = sliding_window_predict(f[..., None], predict, (4, 4, 4), num_classes=2)
    assert out.shape == (7, 9, 10, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], f, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], 1 - f, atol=1e-6)
    # 2-D, and an axis shorter than the patch (padded, then cropped back).
    image = f[0, :, :3]
    out = sliding_window_predict(image[..., None], predict, (4, 6), num_classes=2)
    assert out.shape == (9, 3, 2)
    np.testing.assert_allclose(out[..., 0], image, atol=1e-6)


def _window_values(batch):
    """One value per window, from its origin: channel 0 holds z, channel 1 holds y."""
    z0, y0 = batch[:, 0, 0, 0, 0], batch[:, 0, 0, 0, 1]
    values = 1 + z0 + 10 * y0           # windows at (z, y) = (0, 0), (0, 2), (2, 0), (2, 2)
    return np.broadcast_to(values[:, None, None, None, None], batch.shape[:-1] + (1,)).copy()


def _origin_volume():
    z, y = np.meshgrid(np.arange(6), np.arange(6), indexing="ij")
    return np.stack(np.broadcast_arrays(z[..., None], y[..., None]), axis=-1).astype(
        "float32") * np.ones((6, 6, 4, 1), "float32")


def test_disagreeing_windows_are_weighted_by_their_gaussians():
    # Volume (6, 6, 4), patch (4, 4, 4), overlap 0.5: windows start at 0 and 2 along z and y
    # and at 0 along x; they predict v = 1, 21, 3, 23 at (z, y) = (0, 0), (0, 2), (2, 0),
    # (2, 2). With sigma_scale 1/4, sigma = 1 and the centre is local index 2: a voxel at
    # local index l weighs exp(-(l - 2)**2 / 2) along an axis; the x factors are shared.
    out, weights = sliding_window_predict(_origin_volume(), _window_values, (4, 4, 4), 1,
                                          sigma_scale=1 / 4, return_weights=True)
    out = out[..., 0]
    e2 = math.exp(-2)                   # local index 0: offset -2 from the centre
    assert out[0, 0, 1] == pytest.approx(1)          # one window
    assert out[5, 5, 2] == pytest.approx(23)
    assert out[4, 1, 0] == pytest.approx(3)          # z only in window 2, y only in window 0
    # z = 3: local 3 and 1 in the two z windows, offsets +1 and -1, equal weights; y = 3 too.
    assert out[3, 3, 0] == pytest.approx((1 + 21 + 3 + 23) / 4, rel=1e-6)
    # z = 2: local 2 (weight 1) in the window at 0, local 0 (weight e^-2) in the one at 2.
    assert out[2, 0, 3] == pytest.approx((1 * 1 + e2 * 3) / (1 + e2), rel=1e-6)
    assert out[2, 3, 1] == pytest.approx((1 * (1 + 21) + e2 * (3 + 23)) / (2 * (1 + e2)),
                                         rel=1e-6)
    # The weight there: (1 + e^-2) along z, 2 exp(-1/2) along y (local 3 and 1), exp(-1/2)
    # along x (local 1).
    assert weights[2, 3, 1] == pytest.approx((1 + e2) * 2 * math.exp(-0.5) * math.exp(-0.5),
                                             rel=1e-6)
    # The default sigma_scale 1/8 (sigma 0.5): local 0 weighs exp(-4 / (2 * 0.25)) = e^-8.
    out = sliding_window_predict(_origin_volume(), _window_values, (4, 4, 4), 1)[..., 0]
    e8 = math.exp(-8)
    assert out[2, 0, 3] == pytest.approx((1 + e8 * 3) / (1 + e8), rel=1e-6)


def test_constant_mode_is_the_plain_average():
    out, weights = sliding_window_predict(_origin_volume(), _window_values, (4, 4, 4), 1,
                                          mode="constant", return_weights=True)
    out = out[..., 0]
    assert out[2, 0, 3] == pytest.approx((1 + 3) / 2, rel=1e-6)
    assert out[3, 3, 0] == pytest.approx((1 + 21 + 3 + 23) / 4, rel=1e-6)
    assert out[2, 5, 0] == pytest.approx((21 + 23) / 2, rel=1e-6)
    assert out[5, 1, 2] == 3
    counts = np.array([1, 1, 2, 2, 1, 1], "float32")     # windows [0, 4) and [2, 6)
    np.testing.assert_array_equal(weights, counts[:, None, None] * counts[None, :, None]
                                  * np.ones((1, 1, 4)))


@pytest.mark.parametrize("shape, patch, before", [
    ((7, 9, 5), (4, 4, 6), (0, 0, 0)),     # starts [0, 2, 3] and [0, 2, 3, 5]; x padded after
    ((3, 10), (6, 4), (1, 0)),             # rows padded 1 before, 2 after
])
def test_weight_map_is_the_sum_of_the_covering_windows_importance(shape, patch, before):
    # Brute force: the hand Gaussian added at every window on the padded canvas, cropped.
    starts = {(7, 4): [0, 2, 3], (9, 4): [0, 2, 3, 5], (5, 6): [0], (3, 6): [0],
              (10, 4): [0, 2, 4, 6]}
    gaussian = _hand_gaussian(patch, 1 / 8)
    canvas = np.zeros([max(n, p) for n, p in zip(shape, patch)])
    for origin in itertools.product(*(starts[n, p] for n, p in zip(shape, patch))):
        canvas[tuple(slice(o, o + p) for o, p in zip(origin, patch))] += gaussian
    expected = canvas[tuple(slice(b, b + n) for b, n in zip(before, shape))]

    def ones(batch):
        return np.ones(batch.shape[:-1] + (1,), "float32")

    out, weights = sliding_window_predict(np.zeros(shape + (1,)), ones, patch, 1,
                                          return_weights=True)
    assert weights.shape == shape
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    np.testing.assert_allclose(out, 1, rtol=1e-6)


def test_a_short_axis_is_padded_centred_with_the_pad_value():
    image = np.arange(30, dtype="float32").reshape(3, 10, 1)     # rows 3 < patch 6
    seen = []

    def record(batch):
        seen.append(batch.copy())
        return batch

    out = sliding_window_predict(image, record, (6, 4), 1, pad_value=-7, batch_size=4)
    batch = np.concatenate(seen)
    assert batch.shape == (4, 6, 4, 1)                           # columns start 0, 2, 4, 6
    assert (batch[:, :1] == -7).all() and (batch[:, 4:] == -7).all()   # 1 before, 2 after
    for index, start in enumerate([0, 2, 4, 6]):
        np.testing.assert_array_equal(batch[index, 1:4], image[:, start:start + 4])
    np.testing.assert_allclose(out, image, rtol=1e-6)


# ------------------------------------------------------------------ mirroring, batching

def _local_grids(shape):
    return np.meshgrid(*(np.arange(n, dtype="float32") for n in shape), indexing="ij")


@pytest.mark.parametrize("axes, expected_extra", [
    ((), lambda z, y: z * y),
    ((1,), lambda z, y: z * 4 / 2),                    # (z y + z (4 - y)) / 2, y in 0..4
    ((0, 1), lambda z, y: (4 - 1) * (5 - 1) / 4 + 0 * z),   # mean of the four products
])
def test_mirroring_averages_the_flipped_predictions(axes, expected_extra):
    # predict_fn adds z * y of the window's local indices: not flip-equivariant. One window.
    rng = np.random.default_rng(0)
    volume = rng.uniform(size=(4, 5, 3, 1)).astype("float32")
    z, y, _ = _local_grids((4, 5, 3))
    calls = []

    def predict(batch):
        calls.append(batch.shape)
        return batch + (z * y)[None, ..., None]

    out = sliding_window_predict(volume, predict, (4, 5, 3), 1, mirror_axes=axes)
    assert len(calls) == 2 ** len(axes)
    np.testing.assert_allclose(out[..., 0], volume[..., 0] + expected_extra(z, y), atol=1e-5)


def test_mirroring_flips_the_input_and_the_output_back():
    # predict_fn scales by 1 + x (local x in 0..2). Flipped along x: (1 + (2 - x)), flipped
    # back; the mean with the plain prediction is volume * (1 + x + 3 - x) / 2 = 2 * volume.
    rng = np.random.default_rng(1)
    volume = rng.uniform(size=(4, 5, 3, 1)).astype("float32")
    _, _, x = _local_grids((4, 5, 3))
    out = sliding_window_predict(volume, lambda batch: batch * (1 + x)[None, ..., None],
                                 (4, 5, 3), 1, mirror_axes=(2,))
    np.testing.assert_allclose(out, 2 * volume, rtol=1e-6)


def test_mirroring_leaves_an_array_that_predict_fn_reuses_unchanged():
    cached = np.full((2, 4, 4, 4, 2), 0.25, "float32")
    out = sliding_window_predict(np.zeros((6, 4, 4, 1)), lambda batch: cached, (4, 4, 4), 2,
                                 mirror_axes=(0, 1))
    assert (cached == 0.25).all()
    np.testing.assert_allclose(out, 0.25, rtol=1e-6)


def test_batch_size_does_not_change_the_result():
    rng = np.random.default_rng(2)
    volume = rng.uniform(-1, 1, size=(7, 9, 5, 1)).astype("float32")
    x = _local_grids((4, 4, 6))[2]

    def predict(batch):        # windows disagree: depends on the local x
        p = 1 / (1 + np.exp(-(3 * batch[..., 0] + x)))
        return np.stack([1 - p, p], axis=-1)

    results, sizes = [], {}
    for batch_size in (1, 3, 5, 12, 100):
        calls = []

        def counting(batch, calls=calls):
            calls.append(len(batch))
            return predict(batch)

        results.append(sliding_window_predict(volume, counting, (4, 4, 6), 2,
                                              batch_size=batch_size, mirror_axes=(0,)))
        sizes[batch_size] = calls
    # 3 * 4 * 1 = 12 windows, each batch predicted twice (plain and flipped).
    assert sizes[1] == [1] * 24
    assert sizes[5] == [5, 5, 5, 5, 2, 2]
    assert sizes[12] == sizes[100] == [12, 12]
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_memory_stays_near_the_accumulators():
    # 32^3 voxels, patch 8, overlap 0.5: 7^3 = 343 windows. All of them at once would be
    # 343 * 8^3 * 4 B = 702,464 B of inputs alone; the accumulators (K + 1) * 4 * 32^3 with
    # K = 2 are 393,216 B.
    volume = np.zeros((32, 32, 32, 1), "float32")

    def predict(batch):
        return np.full(batch.shape[:-1] + (2,), 0.5, "float32")

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = sliding_window_predict(volume, predict, (8, 8, 8), 2, overlap=0.5)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    accumulators = 3 * 4 * 32 ** 3
    assert accumulators <= peak < accumulators + 100_000, peak
    np.testing.assert_allclose(out, 0.5, rtol=1e-6)


# ------------------------------------------------------------------ the Keras wrapper

KERNEL = np.array([[1.0, -1.0, 0.5], [0.25, 2.0, -1.0]], "float32")   # 2 channels -> 3
BIAS = np.array([0.0, 0.1, -0.2], "float32")


def _pointwise(activation=None, classes=3, spatial=(4, 4, 4)):
    """A 1x1x1 Conv3D with the weights above: each voxel's output depends on it alone."""
    import keras

    inputs = keras.Input(spatial + (2,))
    layer = keras.layers.Conv3D(classes, 1, activation=activation)
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([KERNEL[:, :classes].reshape(1, 1, 1, 2, classes), BIAS[:classes]])
    return model


def _softmax(logits):
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def volume():
    # 6 (two windows), 5 (not a multiple of 4: windows at 0 and 1) and 3 (padded to 4).
    return np.random.default_rng(3).uniform(-1, 1, size=(6, 5, 3, 2)).astype("float32")


def test_predict_volume_applies_softmax_to_logits(volume):
    model = _pointwise()
    expected = _softmax(volume @ KERNEL + BIAS)
    out = predict_volume(model, volume)
    assert out.shape == (6, 5, 3, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)
    # A pointwise model is flip-equivariant: mirroring changes nothing.
    np.testing.assert_allclose(predict_volume(model, volume, mirror_axes=(0, 1, 2)), expected,
                               atol=1e-6)
    # A volume smaller than the patch along every axis.
    np.testing.assert_allclose(predict_volume(model, volume[:2, :3, :1]), expected[:2, :3, :1],
                               atol=1e-6)


def test_predict_volume_keeps_probabilities_and_splits_one_sigmoid_channel(volume):
    expected = _softmax(volume @ KERNEL + BIAS)      # applied once, by the model
    np.testing.assert_allclose(predict_volume(_pointwise("softmax"), volume), expected,
                               atol=1e-6)
    p = 1 / (1 + np.exp(-(volume @ KERNEL[:, :1] + BIAS[:1])))
    for model in (_pointwise("sigmoid", classes=1), _pointwise(None, classes=1)):
        np.testing.assert_allclose(predict_volume(model, volume),
                                   np.concatenate([1 - p, p], axis=-1), atol=1e-6)


def test_predict_volume_patch_size_for_a_model_of_any_size(volume):
    model = _pointwise(spatial=(None, None, None))
    with pytest.raises(ValueError, match="`patch_size` is required"):
        predict_volume(model, volume)
    np.testing.assert_allclose(predict_volume(model, volume, patch_size=(4, 4, 2)),
                               _softmax(volume @ KERNEL + BIAS), atol=1e-6)
    with pytest.raises(ValueError, match="`volume` must have the model's 2 input channels"):
        predict_volume(model, volume[..., :1], patch_size=(4, 4, 4))


# ------------------------------------------------------------------ bad arguments

def _probabilities(batch):
    return np.full(batch.shape[:-1] + (2,), 0.5, "float32")


@pytest.mark.parametrize("changes, match", [
    ({"volume": np.zeros(4)}, "`volume` must have one or more spatial axes"),
    ({"volume": np.zeros((4, 0, 4, 1))}, "`volume` must have"),
    ({"patch_size": (4, 4)}, "`patch_size` must have one entry per spatial axis"),
    ({"patch_size": (4, 0, 4)}, "`patch_size` must be a non-empty tuple of positive"),
    ({"patch_size": "444"}, "`patch_size`"),
    ({"predict_fn": "model"}, "`predict_fn` must be callable"),
    ({"predict_fn": lambda batch: batch[:, :2]}, "`predict_fn` must map a batch"),
    ({"num_classes": 3}, r"`num_classes` \(3\) differs from the 2 channels"),
    ({"num_classes": 0}, "`num_classes` must be an integer >= 1"),
    ({"overlap": 1.0}, r"`overlap` must be a number in \[0, 1\)"),
    ({"overlap": -0.1}, "`overlap`"),
    ({"overlap": float("nan")}, "`overlap`"),
    ({"sigma_scale": 0}, "`sigma_scale` must be a positive finite number"),
    ({"sigma_scale": 0, "mode": "constant"}, "`sigma_scale`"),
    ({"batch_size": 0}, "`batch_size` must be an integer >= 1"),
    ({"batch_size": 2.0}, "`batch_size`"),
    ({"mode": "median"}, r"`mode` must be one of \['gaussian', 'constant'\]"),
    ({"mirror_axes": (3,)}, r"`mirror_axes` must be distinct spatial axes .* \[0, 3\)"),
    ({"mirror_axes": (0, 0)}, "`mirror_axes`"),
    ({"mirror_axes": 1}, "`mirror_axes`"),
    ({"dtype": "int32"}, "`dtype` must be a floating-point dtype"),
])
def test_bad_arguments_are_named(changes, match):
    arguments = dict(volume=np.zeros((5, 5, 5, 1)), predict_fn=_probabilities,
                     patch_size=(4, 4, 4), num_classes=2)
    arguments.update(changes)
    with pytest.raises(ValueError, match=match):
        sliding_window_predict(**arguments)


@pytest.mark.parametrize("function, arguments, match", [
    (window_starts, (0, 4, 0.5), "`size` must be an integer >= 1"),
    (window_starts, (10, 0, 0.5), "`patch` must be an integer >= 1"),
    (window_starts, (10, 4, 1), "`overlap`"),
    (window_starts, (10, 4, True), "`overlap`"),
    (gaussian_importance, ((),), "`patch_size`"),
    (gaussian_importance, (8,), "`patch_size` must be a tuple"),
    (gaussian_importance, ((8, 8), -1.0), "`sigma_scale`"),
])
def test_bad_arguments_of_the_helpers_are_named(function, arguments, match):
    with pytest.raises(ValueError, match=match):
        function(*arguments)


# ------------------------------------------------------------------ the memory benchmark

def test_memory_benchmark_counts_windows_and_accumulators():
    from benchmarks.sliding_window_memory import measure, table, window_count

    # 512 and patch 128, step 64: ceil(384 / 64) + 1 = 7; 300: ceil(172 / 64) + 1 = 4.
    assert window_count((512, 512, 300), (128, 128, 128), 0.5) == 7 * 7 * 4
    # 128 and patch 64, step 32: 3; 96: ceil(32 / 32) + 1 = 2.
    assert window_count((128, 128, 96), (64, 64, 64), 0.5) == 3 * 3 * 2
    result = measure((16, 16, 8), (8, 8, 8), classes=2, overlap=0.5, batch_size=2)
    assert result["windows"] == 3 * 3 * 1
    assert result["accumulators"] == (2 + 1) * 4 * 16 * 16 * 8
    assert result["error"] == 0
    assert result["traced"] >= result["accumulators"]
    assert table(result).splitlines()[2].startswith("| 16x16x8 | 8x8x8 |       9 |")
