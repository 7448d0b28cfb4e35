"""Tests of the streaming Keras metrics and the per-case NumPy evaluation functions."""

import itertools
import math

import keras
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from kerasseg import losses, metrics

METRICS = [metrics.Dice, metrics.Jaccard, metrics.Sensitivity, metrics.Specificity]

# Two batches of one 2x3 label map each, 3 classes; predictions are one-hot.
TRUTH_1 = np.array([[[0, 1, 2], [1, 1, 0]]])
PRED_1 = np.array([[[0, 1, 1], [2, 1, 0]]])
TRUTH_2 = np.array([[[2, 2, 0], [0, 1, 2]]])
PRED_2 = np.array([[[2, 0, 0], [0, 1, 2]]])
# (truth, pred) pairs over both batches:
#   batch 1: (0,0) (1,1) (2,1) (1,2) (1,1) (0,0);  batch 2: (2,2) (2,0) (0,0) (0,0) (1,1) (2,2)
# class 0: TP 4, FP 1, FN 0, TN 7
# class 1: TP 3, FP 1, FN 1, TN 7
# class 2: TP 2, FP 1, FN 2, TN 7
EXPECTED = {
    metrics.Dice: [8 / 9, 6 / 8, 4 / 7],
    metrics.Jaccard: [4 / 5, 3 / 5, 2 / 5],
    metrics.Sensitivity: [4 / 4, 3 / 4, 2 / 4],
    metrics.Specificity: [7 / 8, 7 / 8, 7 / 8],
}


def one_hot(labels, k=3):
    return np.eye(k, dtype="float32")[labels]


def numpy_value(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


# ------------------------------------------------------------------------- streaming metrics


@pytest.mark.parametrize("cls", METRICS)
def test_streaming_hand_values(cls):
    metric = cls(num_classes=3)
    metric.update_state(TRUTH_1, one_hot(PRED_1))
    metric.update_state(TRUTH_2, one_hot(PRED_2))
    expected = EXPECTED[cls]
    np.testing.assert_allclose(numpy_value(metric.per_class()), expected, rtol=1e-6)
    # Mean without background (the default), with it, and one class.
    assert numpy_value(metric.result()) == pytest.approx(np.mean(expected[1:]), rel=1e-6)
    with_bg = cls(num_classes=3, include_background=True)
    with_bg.update_state(TRUTH_1, one_hot(PRED_1))
    with_bg.update_state(TRUTH_2, one_hot(PRED_2))
    assert numpy_value(with_bg.result()) == pytest.approx(np.mean(expected), rel=1e-6)
    single = cls(num_classes=3, class_id=2)
    single.update_state(TRUTH_1, one_hot(PRED_1))
    single.update_state(TRUTH_2, one_hot(PRED_2))
    assert numpy_value(single.result()) == pytest.approx(expected[2], rel=1e-6)


@pytest.mark.parametrize("cls", METRICS)
def test_two_batches_equal_their_concatenation(cls):
    rng = np.random.default_rng(10)
    truth = rng.integers(0, 4, size=(6, 5, 7))
    logits = rng.normal(size=(6, 5, 7, 4)).astype("float32")
    streamed = cls(num_classes=4)
    streamed.update_state(truth[:2], logits[:2])
    streamed.update_state(truth[2:], logits[2:])
    whole = cls(num_classes=4)
    whole.update_state(truth, logits)
    np.testing.assert_allclose(numpy_value(streamed.per_class()),
                               numpy_value(whole.per_class()), rtol=1e-6)
    assert numpy_value(streamed.result()) == pytest.approx(numpy_value(whole.result()),
                                                           rel=1e-6)


def test_batch_counts_are_the_hand_counts_and_sum_like_replicas():
    metric = metrics.Dice(num_classes=3)
    counts_1 = [numpy_value(c) for c in metric.batch_counts(TRUTH_1, one_hot(PRED_1))]
    counts_2 = [numpy_value(c) for c in metric.batch_counts(TRUTH_2, one_hot(PRED_2))]
    # batch_counts adds nothing to the metric's totals.
    assert np.isnan(numpy_value(metric.per_class())).all()
    # Both batches together: the TP/FP/FN/TN of the comment above EXPECTED.
    tp, fp, fn, tn = (a + b for a, b in zip(counts_1, counts_2))
    np.testing.assert_array_equal(tp, [4, 3, 2])
    np.testing.assert_array_equal(fp, [1, 1, 1])
    np.testing.assert_array_equal(fn, [0, 1, 2])
    np.testing.assert_array_equal(tn, [7, 7, 7])
    # Summed counts (what a distributed loop gathers from its replicas) give the same
    # score as streaming both batches.
    metric.add_counts(tp, fp, fn, tn)
    np.testing.assert_allclose(numpy_value(metric.per_class()), EXPECTED[metrics.Dice],
                               rtol=1e-6)


def test_targets_as_label_maps_with_channel_and_one_hot_agree():
    results = []
    for truth_1, truth_2 in [(TRUTH_1, TRUTH_2), (TRUTH_1[..., None], TRUTH_2[..., None]),
                             (one_hot(TRUTH_1), one_hot(TRUTH_2))]:
        metric = metrics.Dice(num_classes=3)
        metric.update_state(truth_1, one_hot(PRED_1))
        metric.update_state(truth_2, one_hot(PRED_2))
        results.append(numpy_value(metric.per_class()))
    for result in results:
        np.testing.assert_allclose(result, EXPECTED[metrics.Dice], rtol=1e-6)


def test_class_absent_from_stream_is_nan_and_left_out_of_mean():
    # Class 3 never appears in truth nor prediction.
    metric = metrics.Dice(num_classes=4)
    metric.update_state(TRUTH_1, one_hot(PRED_1, 4))
    metric.update_state(TRUTH_2, one_hot(PRED_2, 4))
    per_class = numpy_value(metric.per_class())
    np.testing.assert_allclose(per_class[:3], EXPECTED[metrics.Dice], rtol=1e-6)
    assert math.isnan(per_class[3])
    assert numpy_value(metric.result()) == pytest.approx((6 / 8 + 4 / 7) / 2, rel=1e-6)
    assert math.isnan(numpy_value(metrics.Dice(num_classes=4, class_id=3).result()))


def test_reset_state():
    metric = metrics.Jaccard(num_classes=3)
    metric.update_state(TRUTH_1, one_hot(PRED_1))
    metric.reset_state()
    assert all(np.all(numpy_value(v) == 0) for v in metric.variables)
    assert math.isnan(numpy_value(metric.result()))  # nothing seen: every class undefined
    metric.update_state(TRUTH_1, one_hot(PRED_1))
    metric.update_state(TRUTH_2, one_hot(PRED_2))
    np.testing.assert_allclose(numpy_value(metric.per_class()), EXPECTED[metrics.Jaccard],
                               rtol=1e-6)


def test_binary_sigmoid_outputs_with_logits_and_threshold():
    truth = np.array([[[1, 1, 0, 0]]], "float32")  # (1, 1, 4)
    # logits [2, -1, .5, -3] -> sigmoid > .5 -> prediction [1, 0, 1, 0]
    logits = np.array([[[2.0, -1.0, 0.5, -3.0]]], "float32")[..., None]
    metric = metrics.Dice(num_classes=2, from_logits=True)
    metric.update_state(truth, logits)
    # foreground: TP 1, FP 1, FN 1 -> 2 / 4; background likewise
    np.testing.assert_allclose(numpy_value(metric.per_class()), [0.5, 0.5], rtol=1e-6)
    assert numpy_value(metric.result()) == pytest.approx(0.5)
    # Integer label maps (as read from mask files) give the same counts.
    as_integers = metrics.Dice(num_classes=2, from_logits=True)
    as_integers.update_state(truth.astype("int64"), logits)
    np.testing.assert_allclose(numpy_value(as_integers.per_class()), [0.5, 0.5], rtol=1e-6)
    # probabilities [.8, .6, .75, .1] with threshold .7 -> [1, 0, 1, 0] as well
    probs = np.array([[[0.8, 0.6, 0.75, 0.1]]], "float32")[..., None]
    sens = metrics.Sensitivity(num_classes=2, threshold=0.7)
    sens.update_state(truth[..., None], probs)
    assert numpy_value(sens.result()) == pytest.approx(0.5)


def test_multilabel():
    # Two independent labels on a 1x4 image.
    truth = np.array([[[[1, 0], [1, 1], [0, 1], [0, 0]]]], "float32")
    probs = np.array([[[[0.9, 0.1], [0.2, 0.8], [0.6, 0.7], [0.1, 0.4]]]], "float32")
    # label 0: pred [1, 0, 1, 0] vs [1, 1, 0, 0] -> TP 1 FP 1 FN 1 -> 0.5
    # label 1: pred [0, 1, 1, 0] vs [0, 1, 1, 0] -> 1.0
    metric = metrics.Dice(num_classes=2, multilabel=True)
    metric.update_state(truth, probs)
    np.testing.assert_allclose(numpy_value(metric.per_class()), [0.5, 1.0], rtol=1e-6)
    integers = metrics.Dice(num_classes=2, multilabel=True)
    integers.update_state(truth.astype("uint8"), probs)
    np.testing.assert_allclose(numpy_value(integers.per_class()), [0.5, 1.0], rtol=1e-6)
    assert numpy_value(metric.result()) == pytest.approx(0.75)


def test_ignore_label_and_sample_weight():
    truth = np.array([[[0, 1, 255, 1]]])
    pred = one_hot(np.array([[[0, 1, 1, 0]]]), 2)
    # The voxel labelled 255 is not counted: class 1 TP 1, FP 0, FN 1 -> 2 / 3
    metric = metrics.Dice(num_classes=2)
    metric.update_state(truth, pred)
    assert numpy_value(metric.result()) == pytest.approx(2 / 3, rel=1e-6)
    # A zero sample weight drops the second batch entry.
    weighted = metrics.Dice(num_classes=3)
    weighted.update_state(np.concatenate([TRUTH_1, TRUTH_2]),
                          one_hot(np.concatenate([PRED_1, PRED_2])),
                          sample_weight=np.array([1.0, 0.0]))
    only_first = metrics.Dice(num_classes=3)
    only_first.update_state(TRUTH_1, one_hot(PRED_1))
    np.testing.assert_allclose(numpy_value(weighted.per_class()),
                               numpy_value(only_first.per_class()), rtol=1e-6)


def test_three_dimensional_outputs():
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 3, size=(2, 3, 4, 5))
    probs = rng.random((2, 3, 4, 5, 3)).astype("float32")
    volume = metrics.Dice(num_classes=3)
    volume.update_state(truth, probs)
    flat = metrics.Dice(num_classes=3)
    flat.update_state(truth.reshape(2, 12, 5), probs.reshape(2, 12, 5, 3))
    np.testing.assert_allclose(numpy_value(volume.per_class()), numpy_value(flat.per_class()))


@pytest.mark.parametrize("cls", METRICS)
def test_config_round_trip(cls):
    metric = cls(num_classes=4, class_id=2, include_background=True, from_logits=True,
                 threshold=0.3, name="m")
    config = metric.get_config()
    assert config == {"num_classes": 4, "class_id": 2, "include_background": True,
                      "from_logits": True, "threshold": 0.3, "multilabel": False,
                      "name": "m", "dtype": "float32"}
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert type(restored) is cls and restored.get_config() == config
    assert cls.from_config(config).get_config() == config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_classes=1), "`num_classes` must be an integer >= 2"),
        (dict(num_classes=3, class_id=3),
         "`class_id` must be None or an integer in [0, 3). Received: class_id=3"),
        (dict(num_classes=3, threshold=1.5),
         "`threshold` must be a number in (0, 1). Received: threshold=1.5"),
        (dict(num_classes=3, from_logits=1), "`from_logits` must be one of [True, False]"),
    ],
)
def test_invalid_metric_options(kwargs, message):
    with pytest.raises(ValueError) as info:
        metrics.Dice(**kwargs)
    assert message in str(info.value)


def test_update_with_wrong_number_of_channels_raises():
    metric = metrics.Dice(num_classes=4)
    with pytest.raises(ValueError, match=r"`y_pred` must have shape \(batch, \*spatial, 4\)"):
        metric.update_state(TRUTH_1, one_hot(PRED_1))


def test_metrics_in_compile_fit_evaluate_and_saved_model(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(12)
    x = rng.normal(size=(8, 8, 8, 1)).astype("float32")
    y = np.digitize(x[..., 0], [-0.5, 0.5])  # labels 0, 1, 2 learnable from the pixel value
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=losses.DiceCELoss(from_logits=True),
        metrics=[metrics.Dice(num_classes=3), metrics.Jaccard(num_classes=3, class_id=1),
                 metrics.Sensitivity(num_classes=3), metrics.Specificity(num_classes=3)],
    )
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    for key in ("dice", "jaccard", "sensitivity", "specificity"):
        assert len(history.history[key]) == 2
        assert 0.0 <= history.history[key][-1] <= 1.0
    scores = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    # The same scores computed independently from the predictions over all 8 images.
    pred = np.argmax(model.predict(x, verbose=0), axis=-1)
    tp = np.array([np.sum((pred == c) & (y == c)) for c in range(3)], float)
    fp = np.array([np.sum((pred == c) & (y != c)) for c in range(3)], float)
    fn = np.array([np.sum((pred != c) & (y == c)) for c in range(3)], float)
    tn = pred.size - tp - fp - fn
    assert scores["dice"] == pytest.approx(np.mean((2 * tp / (2 * tp + fp + fn))[1:]), rel=1e-5)
    assert scores["jaccard"] == pytest.approx(tp[1] / (tp[1] + fp[1] + fn[1]), rel=1e-5)
    assert scores["sensitivity"] == pytest.approx(np.mean((tp / (tp + fn))[1:]), rel=1e-5)
    assert scores["specificity"] == pytest.approx(np.mean((tn / (tn + fp))[1:]), rel=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)  # no custom_objects
    again = reloaded.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    for key, val in scores.items():
        assert again[key] == pytest.approx(val, rel=1e-6)


# ------------------------------------------------------------------------ NumPy evaluation


def test_overlap_functions_hand_values():
    pred = np.array([[1, 1, 0], [0, 1, 0]])
    truth = np.array([[1, 0, 0], [1, 1, 0]])
    # TP 2 (0,0) (1,1); FP 1 (0,1); FN 1 (1,0); TN 2
    assert metrics.dice(pred, truth) == pytest.approx(4 / 6)
    assert metrics.jaccard(pred, truth) == pytest.approx(2 / 4)
    assert metrics.sensitivity(pred, truth) == pytest.approx(2 / 3)
    assert metrics.specificity(pred, truth) == pytest.approx(2 / 3)
    assert metrics.dice(pred.astype(bool), truth * 7) == pytest.approx(4 / 6)


def test_empty_masks():
    empty = np.zeros((3, 4, 5), bool)
    full = np.zeros((3, 4, 5), bool)
    full[1, 1:3, 2] = True
    # Both empty: undefined overlap and distances, specificity 1.
    for fn in (metrics.dice, metrics.jaccard, metrics.sensitivity, metrics.hausdorff_distance,
               metrics.average_surface_distance):
        assert math.isnan(fn(empty, empty))
    assert metrics.specificity(empty, empty) == 1.0
    # One empty: overlap 0, distances inf.
    for pred, truth in ((empty, full), (full, empty)):
        assert metrics.dice(pred, truth) == 0.0
        assert metrics.jaccard(pred, truth) == 0.0
        assert metrics.hausdorff_distance(pred, truth) == math.inf
        assert metrics.average_surface_distance(pred, truth) == math.inf
    assert metrics.sensitivity(empty, full) == 0.0
    assert math.isnan(metrics.sensitivity(full, empty))
    assert metrics.specificity(full, empty) == pytest.approx(58 / 60)
    # Ground truth covering every voxel: no negatives.
    assert math.isnan(metrics.specificity(~empty, ~empty))


def test_anisotropic_spacing_two_voxels():
    pred = np.zeros((5, 4, 4), bool)
    truth = np.zeros((5, 4, 4), bool)
    pred[0, 1, 1] = True
    truth[3, 1, 1] = True
    # 3 slices apart with a z spacing of 2 mm -> 6 mm in both directions
    spacing = (2.0, 0.7, 0.7)
    assert metrics.hausdorff_distance(pred, truth, spacing=spacing) == pytest.approx(6.0)
    assert metrics.hausdorff_distance(pred, truth, spacing=spacing, percentile=100) == (
        pytest.approx(6.0))
    assert metrics.average_surface_distance(pred, truth, spacing=spacing) == pytest.approx(6.0)
    # Offsets in the other axes: sqrt((3*2)^2 + (2*0.7)^2)
    truth[3, 1, 1] = False
    truth[3, 3, 1] = True
    assert metrics.hausdorff_distance(pred, truth, spacing=spacing) == pytest.approx(
        math.hypot(6.0, 1.4))


def test_hausdorff_is_max_of_directed_percentiles():
    # 1x5 image: truth pixel 0; prediction pixels 0 and 4 (two one-pixel surfaces)
    # d(pred -> truth) = [0, 4], d(truth -> pred) = [0]
    truth = np.array([[1, 0, 0, 0, 0]])
    pred = np.array([[1, 0, 0, 0, 1]])
    assert metrics.hausdorff_distance(pred, truth, percentile=100) == pytest.approx(4.0)
    # np.percentile([0, 4], 95) = 0 + 0.95 * 4 = 3.8
    assert metrics.hausdorff_distance(pred, truth) == pytest.approx(3.8)
    assert metrics.hausdorff_distance(truth, pred) == pytest.approx(3.8)
    # ASSD pools both directions: (0 + 4 + 0) / 3
    assert metrics.average_surface_distance(pred, truth) == pytest.approx(4 / 3)


def brute_force_surface(mask):
    """Voxels of ``mask`` with a face neighbour outside the mask or outside the array."""
    points = []
    for index in zip(*np.nonzero(mask)):
        for axis, step in itertools.product(range(mask.ndim), (-1, 1)):
            neighbour = list(index)
            neighbour[axis] += step
            inside = 0 <= neighbour[axis] < mask.shape[axis]
            if not inside or not mask[tuple(neighbour)]:
                points.append(index)
                break
    return np.array(points, float)


def test_distances_against_brute_force_on_random_volume():
    rng = np.random.default_rng(13)
    pred = rng.random((6, 7, 8)) > 0.6
    truth = rng.random((6, 7, 8)) > 0.7
    spacing = np.array([2.5, 0.8, 1.1])
    a = brute_force_surface(pred) * spacing
    b = brute_force_surface(truth) * spacing
    pairwise = cdist(a, b)
    a_to_b, b_to_a = pairwise.min(axis=1), pairwise.min(axis=0)
    for q in (95, 100, 50):
        expected = max(np.percentile(a_to_b, q), np.percentile(b_to_a, q))
        assert metrics.hausdorff_distance(pred, truth, spacing=spacing, percentile=q) == (
            pytest.approx(expected, rel=1e-9))
    expected_assd = (a_to_b.sum() + b_to_a.sum()) / (a_to_b.size + b_to_a.size)
    assert metrics.average_surface_distance(pred, truth, spacing=spacing) == pytest.approx(
        expected_assd, rel=1e-9)


def test_distances_against_brute_force_on_small_objects_away_from_border():
    # Cropping to the objects' bounding box must not change anything.
    rng = np.random.default_rng(14)
    pred = np.zeros((20, 20), bool)
    truth = np.zeros((20, 20), bool)
    pred[5:9, 6:12] = rng.random((4, 6)) > 0.3
    truth[7:13, 4:9] = rng.random((6, 5)) > 0.3
    a, b = brute_force_surface(pred) * [1.0, 0.5], brute_force_surface(truth) * [1.0, 0.5]
    pairwise = cdist(a, b)
    expected = max(np.percentile(pairwise.min(axis=1), 95), np.percentile(pairwise.min(axis=0),
                                                                          95))
    assert metrics.hausdorff_distance(pred, truth, spacing=(1.0, 0.5)) == pytest.approx(
        expected, rel=1e-9)


def test_evaluate_case():
    truth = np.zeros((4, 5, 6), np.uint8)
    pred = np.zeros((4, 5, 6), np.float32)  # float labels holding whole numbers are accepted
    truth[1:3, 1:4, 1:3] = 1
    truth[1:3, 1:4, 4:6] = 2
    pred[1:3, 1:3, 1:3] = 1
    pred[1:3, 1:4, 3:6] = 2
    spacing = (3.0, 1.0, 0.5)
    scores = metrics.evaluate_case(pred, truth, num_classes=4, spacing=spacing,
                                   class_names=["bg", "a", "b", "c"])
    assert list(scores) == ["a", "b", "c"]
    for name, c in (("a", 1), ("b", 2)):
        p, t = pred == c, truth == c
        s = scores[name]
        assert s["dice"] == pytest.approx(metrics.dice(p, t))
        assert s["jaccard"] == pytest.approx(metrics.jaccard(p, t))
        assert s["sensitivity"] == pytest.approx(metrics.sensitivity(p, t))
        assert s["specificity"] == pytest.approx(metrics.specificity(p, t))
        assert s["hd95"] == pytest.approx(metrics.hausdorff_distance(p, t, spacing))
        assert s["assd"] == pytest.approx(metrics.average_surface_distance(p, t, spacing))
        assert s["volume_true"] == pytest.approx(t.sum() * 1.5)
        assert s["volume_pred"] == pytest.approx(p.sum() * 1.5)
    # Hand values: class 1 truth 12 voxels, prediction 8 of them -> Dice 16 / 20
    assert scores["a"]["dice"] == pytest.approx(0.8)
    assert (scores["a"]["tp"], scores["a"]["fp"], scores["a"]["fn"]) == (8, 0, 4)
    # class 2: truth 12 voxels, prediction 18 containing them -> Dice 24 / 30
    assert scores["b"]["dice"] == pytest.approx(0.8)
    # class 3 absent from both
    assert math.isnan(scores["c"]["dice"]) and math.isnan(scores["c"]["hd95"])
    # Default keys are class indices; background on request; other percentiles.
    with_bg = metrics.evaluate_case(pred, truth, num_classes=3, include_background=True,
                                    percentile=100)
    assert list(with_bg) == [0, 1, 2] and "hd100" in with_bg[1]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.dice(np.zeros((2, 3)), np.zeros((3, 2))),
         "`pred` and `truth` must have the same shape. Received: pred.shape=(2, 3), "
         "truth.shape=(3, 2)"),
        (lambda: metrics.hausdorff_distance(np.ones((2, 2, 2)), np.ones((2, 2, 2)),
                                            spacing=(1.0, 1.0)),
         "`spacing` must be None or 3 positive numbers, one per axis of arrays of shape "
         "(2, 2, 2). Received: spacing=(1.0, 1.0)"),
        (lambda: metrics.average_surface_distance(np.ones((2, 2)), np.ones((2, 2)),
                                                  spacing=(1.0, -1.0)),
         "Received: spacing=(1.0, -1.0)"),
        (lambda: metrics.hausdorff_distance(np.ones((2, 2)), np.ones((2, 2)), percentile=101),
         "`percentile` must be a number in [0, 100]. Received: percentile=101"),
        (lambda: metrics.evaluate_case(np.zeros((2, 2)), np.full((2, 2), 3), num_classes=3),
         "`true_labels` must hold integer class indices in [0, 3). Received values: [3]"),
        (lambda: metrics.evaluate_case(np.full((2, 2), 0.5), np.zeros((2, 2)), num_classes=3),
         "`pred_labels` must hold integer class indices in [0, 3). Received values: [0.5]"),
        (lambda: metrics.evaluate_case(np.zeros((2, 2)), np.zeros((2, 3)), num_classes=3),
         "`pred_labels` and `true_labels` must have the same shape. Received: "
         "pred_labels.shape=(2, 2), true_labels.shape=(2, 3)"),
        (lambda: metrics.evaluate_case(np.zeros((2, 2)), np.zeros((2, 2)), num_classes=1),
         "`num_classes` must be an integer >= 2. Received: num_classes=1"),
        (lambda: metrics.evaluate_case(np.zeros((2, 2)), np.zeros((2, 2)), num_classes=2,
                                       class_names=["bg"]),
         "`class_names` must be 2 distinct names, one per class. Received: class_names=['bg']"),
    ],
)
def test_evaluation_invalid_arguments(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_evaluate_case_on_real_hippocampus_label(sample_dir):
    import SimpleITK as sitk
    from scipy import ndimage

    image = sitk.ReadImage(str(sample_dir / "labelsTr" / "hippocampus_001.nii.gz"))
    truth = sitk.GetArrayFromImage(image).astype(np.int64)  # (z, y, x)
    spacing = tuple(reversed(image.GetSpacing()))  # SimpleITK gives (x, y, z)
    # A plausible "prediction": anterior eroded by one voxel, posterior shifted along y.
    pred = np.zeros_like(truth)
    pred[ndimage.binary_erosion(truth == 1)] = 1
    pred[np.roll(truth == 2, 1, axis=1) & (pred == 0)] = 2
    scores = metrics.evaluate_case(pred, truth, num_classes=3, spacing=spacing,
                                   class_names=["background", "anterior", "posterior"])
    for name, c in (("anterior", 1), ("posterior", 2)):
        p, t = pred == c, truth == c
        tp = np.sum(p & t)
        assert scores[name]["dice"] == pytest.approx(2 * tp / (p.sum() + t.sum()))
        a = brute_force_surface(p) * spacing
        b = brute_force_surface(t) * spacing
        pairwise = cdist(a, b)
        hd95 = max(np.percentile(pairwise.min(axis=1), 95),
                   np.percentile(pairwise.min(axis=0), 95))
        assert scores[name]["hd95"] == pytest.approx(hd95, rel=1e-9)
        assert 0 < scores[name]["hd95"] <= 2.0  # one-voxel changes at 1 mm spacing
    # Eroding by one voxel loses exactly the surface: sensitivity = interior / all.
    interior = ndimage.binary_erosion(truth == 1).sum()
    assert scores["anterior"]["sensitivity"] == pytest.approx(interior / (truth == 1).sum())
    assert scores["anterior"]["specificity"] == 1.0
    same = metrics.evaluate_case(truth, truth, num_classes=3, spacing=spacing)
    assert [same[c]["dice"] for c in (1, 2)] == [1.0, 1.0]
    assert [same[c]["hd95"] for c in (1, 2)] == [0.0, 0.0]
