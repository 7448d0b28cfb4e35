"""Tests of kerasseg.losses against values computed by hand on tiny masks."""

import math

import keras
import numpy as np
import pytest

from kerasseg import losses

ALL_LOSSES = [losses.DiceLoss, losses.DiceCELoss, losses.FocalLoss, losses.TverskyLoss]


def value(loss, y_true, y_pred):
    return np.asarray(keras.ops.convert_to_numpy(loss(y_true, y_pred)), dtype=np.float64)


def two_class_example():
    """A 2x2 image, labels [[0, 1], [1, 1]], foreground probabilities [[.2, .6], [.9, .5]]."""
    labels = np.array([[[0, 1], [1, 1]]], dtype="int32")  # (1, 2, 2)
    p1 = np.array([[[0.2, 0.6], [0.9, 0.5]]], dtype="float32")
    probs = np.stack([1.0 - p1, p1], axis=-1)  # (1, 2, 2, 2)
    return labels, probs


# Class 1: t = [0, 1, 1, 1], p = [.2, .6, .9, .5]
#   TP = .6 + .9 + .5 = 2.0, sum p = 2.2, sum t = 3 -> Dice = 2*2 / (2.2 + 3) = 4 / 5.2
DICE_1 = 4.0 / 5.2
# Class 0: t = [1, 0, 0, 0], p = [.8, .4, .1, .5]
#   TP = .8, sum p = 1.8, sum t = 1 -> Dice = 1.6 / 2.8
DICE_0 = 1.6 / 2.8
# Cross-entropy: -mean(log .8, log .6, log .9, log .5)
CE = -(math.log(0.8) + math.log(0.6) + math.log(0.9) + math.log(0.5)) / 4


class TestDiceLoss:
    def test_hand_values_with_and_without_background(self):
        labels, probs = two_class_example()
        with_bg = losses.DiceLoss(include_background=True, smooth=0.0)
        without_bg = losses.DiceLoss(include_background=False, smooth=0.0)
        np.testing.assert_allclose(value(with_bg, labels, probs), 1 - (DICE_0 + DICE_1) / 2,
                                   rtol=1e-6)
        np.testing.assert_allclose(value(without_bg, labels, probs), 1 - DICE_1, rtol=1e-6)

    def test_default_smooth_is_negligible_on_non_empty_masks(self):
        labels, probs = two_class_example()
        np.testing.assert_allclose(value(losses.DiceLoss(), labels, probs),
                                   1 - (DICE_0 + DICE_1) / 2, rtol=1e-5)

    def test_class_weights(self):
        labels, probs = two_class_example()
        loss = losses.DiceLoss(class_weights=[1.0, 3.0], smooth=0.0)
        # 1 - (1 * Dice_0 + 3 * Dice_1) / 4
        np.testing.assert_allclose(value(loss, labels, probs), 1 - (DICE_0 + 3 * DICE_1) / 4,
                                   rtol=1e-6)

    def test_empty_class_in_truth_and_prediction_scores_one(self):
        # Truth all background; prediction all background with certainty.
        labels = np.zeros((1, 2, 2), "int32")
        probs = np.zeros((1, 2, 2, 2), "float32")
        probs[..., 0] = 1.0
        # Class 1: (0 + s) / (0 + s) = 1 -> loss 0; class 0 perfect -> loss 0.
        assert value(losses.DiceLoss(include_background=False), labels, probs) == pytest.approx(
            0.0, abs=1e-6)
        assert value(losses.DiceLoss(), labels, probs) == pytest.approx(0.0, abs=1e-6)

    def test_empty_truth_with_false_positives(self):
        labels = np.zeros((1, 2, 2), "int32")
        probs = np.full((1, 2, 2, 2), 0.5, "float32")
        # Class 1: TP = 0, sum p = 2, sum t = 0; smooth 1 -> Dice = 1 / (2 + 1) -> loss 2/3.
        loss = losses.DiceLoss(include_background=False, smooth=1.0)
        assert value(loss, labels, probs) == pytest.approx(2.0 / 3.0, rel=1e-6)

    def test_batch_and_sample_reduction(self):
        # Two 1x4 binary samples (K = 1, sigmoid):
        #   A: truth [1, 1, 0, 0], pred [1, 1, 0, 0] -> Dice 1
        #   B: truth [0, 0, 0, 0], pred [1, 0, 0, 0] -> Dice 0 / (0 + 1) = 0
        # per sample: losses [0, 1]; batch: TP = 2, FP = 1, FN = 0 -> Dice 4/5, loss 0.2
        truth = np.array([[[1, 1, 0, 0]], [[0, 0, 0, 0]]], "float32")[..., None]
        pred = np.array([[[1, 1, 0, 0]], [[1, 0, 0, 0]]], "float32")[..., None]
        sample = losses.DiceLoss(dice_reduction="sample", smooth=0.0, reduction="none")
        batch = losses.DiceLoss(dice_reduction="batch", smooth=0.0, reduction="none")
        np.testing.assert_allclose(value(sample, truth, pred), [0.0, 1.0], atol=1e-7)
        np.testing.assert_allclose(value(batch, truth, pred), [0.2, 0.2], rtol=1e-6)
        default = losses.DiceLoss(smooth=0.0)
        assert default.dice_reduction == "batch"
        assert value(default, truth, pred) == pytest.approx(0.2, rel=1e-6)

    def test_sample_weight_in_sample_mode(self):
        truth = np.array([[[1, 1, 0, 0]], [[0, 0, 0, 0]]], "float32")[..., None]
        pred = np.array([[[1, 1, 0, 0]], [[1, 0, 0, 0]]], "float32")[..., None]
        loss = losses.DiceLoss(dice_reduction="sample", smooth=0.0)
        # (0 * 1 + 1 * 3) / 2 samples
        out = keras.ops.convert_to_numpy(loss(truth, pred, sample_weight=np.array([1.0, 3.0])))
        assert float(out) == pytest.approx(1.5)

    def test_three_dimensional_input_matches_two_dimensional(self):
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 3, size=(2, 3, 4, 5))
        logits = rng.normal(size=(2, 3, 4, 5, 3)).astype("float32")
        loss = losses.DiceLoss(from_logits=True, dice_reduction="sample", reduction="none")
        as_3d = value(loss, labels, logits)
        as_2d = value(loss, labels.reshape(2, 12, 5), logits.reshape(2, 12, 5, 3))
        np.testing.assert_allclose(as_3d, as_2d, rtol=1e-6)

    def test_multilabel_is_mean_of_binary_channels(self):
        rng = np.random.default_rng(1)
        truth = (rng.random((2, 4, 4, 2)) > 0.5).astype("float32")
        logits = rng.normal(size=(2, 4, 4, 2)).astype("float32")
        multi = losses.DiceLoss(multilabel=True, from_logits=True)
        single = losses.DiceLoss(from_logits=True)
        expected = np.mean([value(single, truth[..., c:c + 1], logits[..., c:c + 1])
                            for c in range(2)])
        assert value(multi, truth, logits) == pytest.approx(expected, rel=1e-6)


class TestTverskyLoss:
    def test_hand_value(self):
        labels, probs = two_class_example()
        # Class 1: TP = 2.0, FP = sum p (1 - t) = .2, FN = sum (1 - p) t = .4 + .1 + .5 = 1.0
        # index = 2 / (2 + .3 * .2 + .7 * 1.0) = 2 / 2.76
        loss = losses.TverskyLoss(alpha=0.3, beta=0.7, include_background=False, smooth=0.0)
        assert value(loss, labels, probs) == pytest.approx(1 - 2 / 2.76, rel=1e-6)

    def test_half_half_equals_dice(self):
        rng = np.random.default_rng(2)
        labels = rng.integers(0, 3, size=(2, 5, 5))
        logits = rng.normal(size=(2, 5, 5, 3)).astype("float32")
        labels[1] = 0  # classes 1 and 2 absent from the second sample
        for reduction in ("batch", "sample"):
            tversky = losses.TverskyLoss(alpha=0.5, beta=0.5, smooth=0.5, from_logits=True,
                                         dice_reduction=reduction)
            dice = losses.DiceLoss(smooth=1.0, from_logits=True, dice_reduction=reduction)
            assert value(tversky, labels, logits) == pytest.approx(
                value(dice, labels, logits), rel=1e-6)
        # Without smoothing the two are identical as well.
        tversky = losses.TverskyLoss(alpha=0.5, beta=0.5, smooth=0.0, from_logits=True)
        dice = losses.DiceLoss(smooth=0.0, from_logits=True)
        assert value(tversky, labels, logits) == pytest.approx(value(dice, labels, logits),
                                                               rel=1e-6)


class TestFocalLoss:
    def test_binary_hand_value(self):
        # 1x4 sigmoid: p = [.9, .6, .3, .1], t = [1, 1, 0, 0] -> p_t = [.9, .6, .7, .9]
        # FL = -(1 - p_t)^2 log p_t = [.01 * -log .9, .16 * -log .6, .09 * -log .7, .01 * -log .9]
        truth = np.array([[[1, 1, 0, 0]]], "float32")[..., None]
        pred = np.array([[[0.9, 0.6, 0.3, 0.1]]], "float32")[..., None]
        pt = np.array([0.9, 0.6, 0.7, 0.9])
        terms = -((1 - pt) ** 2) * np.log(pt)
        assert value(losses.FocalLoss(gamma=2.0), truth, pred) == pytest.approx(
            terms.mean(), rel=1e-5)
        # alpha = .25: positives weighted .25, negatives .75
        alpha_t = np.array([0.25, 0.25, 0.75, 0.75])
        assert value(losses.FocalLoss(gamma=2.0, alpha=0.25), truth, pred) == pytest.approx(
            (alpha_t * terms).mean(), rel=1e-5)

    def test_multiclass_hand_value(self):
        labels, probs = two_class_example()
        # p_t = [.8, .6, .9, .5]; gamma = 1: mean of -(1 - p_t) log p_t
        pt = np.array([0.8, 0.6, 0.9, 0.5])
        expected = np.mean(-(1 - pt) * np.log(pt))
        assert value(losses.FocalLoss(gamma=1.0), labels, probs) == pytest.approx(
            expected, rel=1e-5)
        # Per-class alpha [2, 1]: only the first voxel is background.
        weights = np.array([2.0, 1.0, 1.0, 1.0])
        assert value(losses.FocalLoss(gamma=1.0, alpha=[2.0, 1.0]), labels, probs) == (
            pytest.approx(np.mean(weights * -(1 - pt) * np.log(pt)), rel=1e-5))

    def test_gamma_zero_is_cross_entropy(self):
        labels, probs = two_class_example()
        assert value(losses.FocalLoss(gamma=0.0), labels, probs) == pytest.approx(CE, rel=1e-6)
        rng = np.random.default_rng(3)
        labels = rng.integers(0, 4, size=(2, 6, 6))
        logits = rng.normal(size=(2, 6, 6, 4)).astype("float32")
        keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        assert value(losses.FocalLoss(gamma=0.0, from_logits=True), labels, logits) == (
            pytest.approx(value(keras_ce, labels, logits), rel=1e-5))
        masks = (rng.random((2, 6, 6, 1)) > 0.5).astype("float32")
        keras_bce = keras.losses.BinaryCrossentropy(from_logits=True)
        assert value(losses.FocalLoss(gamma=0.0, from_logits=True), masks,
                     logits[..., :1]) == pytest.approx(value(keras_bce, masks, logits[..., :1]),
                                                       rel=1e-5)

    def test_gradient_is_finite_for_confident_logits(self):
        logits = np.array([[[[60.0, -60.0], [-60.0, 60.0]]]], "float32")
        labels = np.array([[[0, 1]]], "int32")
        for loss in (losses.FocalLoss(gamma=0.5, from_logits=True),
                     losses.DiceCELoss(from_logits=True)):
            out, grad = value_and_gradient(loss, labels, logits)
            assert np.isfinite(out) and np.all(np.isfinite(grad))


def value_and_gradient(loss, y_true, logits):
    """Loss value and its gradient with respect to ``logits`` on the active backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        variable = tf.Variable(logits)
        with tf.GradientTape() as tape:
            out = loss(y_true, variable)
        return float(out), tape.gradient(out, variable).numpy()
    if backend == "jax":
        import jax

        out, grad = jax.value_and_grad(lambda x: loss(y_true, x))(logits)
        return float(out), np.asarray(grad)
    pytest.skip(f"no gradient helper for the {backend} backend")


class TestDiceCELoss:
    def test_hand_value(self):
        labels, probs = two_class_example()
        loss = losses.DiceCELoss(include_background=False, smooth=0.0)
        assert value(loss, labels, probs) == pytest.approx((1 - DICE_1) + CE, rel=1e-5)
        weighted = losses.DiceCELoss(dice_weight=2.0, ce_weight=0.5, include_background=False,
                                     smooth=0.0)
        assert value(weighted, labels, probs) == pytest.approx(2 * (1 - DICE_1) + 0.5 * CE,
                                                               rel=1e-5)

    def test_binary_hand_value(self):
        # K = 1: Dice of t = [1, 1, 0, 0], p = [.9, .6, .3, .1]: TP = 1.5, sum p = 1.9, sum t = 2
        # -> Dice 3 / 3.9; BCE = -mean(log .9, log .6, log .7, log .9)
        truth = np.array([[[1, 1, 0, 0]]], "float32")[..., None]
        pred = np.array([[[0.9, 0.6, 0.3, 0.1]]], "float32")[..., None]
        bce = -np.mean(np.log([0.9, 0.6, 0.7, 0.9]))
        loss = losses.DiceCELoss(smooth=0.0)
        assert value(loss, truth, pred) == pytest.approx(1 - 3 / 3.9 + bce, rel=1e-5)


@pytest.mark.parametrize("cls", ALL_LOSSES)
def test_perfect_prediction_gives_zero(cls):
    labels = np.array([[[0, 1], [2, 1]], [[2, 2], [0, 0]]], "int32")
    probs = keras.ops.convert_to_numpy(keras.ops.one_hot(labels, 3))
    assert value(cls(), labels, probs) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("cls", ALL_LOSSES)
def test_logits_and_probabilities_agree(cls):
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, size=(2, 4, 4))
    logits = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    assert value(cls(from_logits=True), labels, logits) == pytest.approx(
        value(cls(from_logits=False), labels, probs), rel=1e-5)
    # Binary sigmoid outputs.
    masks = (rng.random((2, 4, 4, 1)) > 0.5).astype("float32")
    sig = keras.ops.convert_to_numpy(keras.ops.sigmoid(logits[..., :1]))
    assert value(cls(from_logits=True), masks, logits[..., :1]) == pytest.approx(
        value(cls(from_logits=False), masks, sig), rel=1e-5)


@pytest.mark.parametrize("cls", ALL_LOSSES)
def test_integer_and_one_hot_targets_agree(cls):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, size=(2, 4, 4))
    one_hot = np.eye(3, dtype="float32")[labels]
    logits = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    loss = cls(from_logits=True)
    expected = value(loss, one_hot, logits)
    assert value(loss, labels, logits) == pytest.approx(expected, rel=1e-6)
    assert value(loss, labels[..., None], logits) == pytest.approx(expected, rel=1e-6)
    # Binary: (B, H, W) and (B, H, W, 1) masks agree.
    masks = (labels > 0).astype("float32")
    assert value(loss, masks, logits[..., :1]) == pytest.approx(
        value(loss, masks[..., None], logits[..., :1]), rel=1e-6)


NON_DEFAULT = {
    losses.DiceLoss: dict(include_background=False, from_logits=True, smooth=0.5,
                          dice_reduction="sample", class_weights=[0.0, 1.0, 2.0],
                          reduction="sum", name="my_dice"),
    losses.DiceCELoss: dict(dice_weight=0.7, ce_weight=0.3, include_background=False,
                            from_logits=True, class_weights=[1.0, 2.0, 3.0], name="my_dce"),
    losses.FocalLoss: dict(gamma=1.5, alpha=[0.2, 0.3, 0.5], from_logits=True,
                           reduction="none", name="my_focal"),
    losses.TverskyLoss: dict(alpha=0.2, beta=0.8, smooth=0.1, multilabel=True,
                             name="my_tversky"),
}


@pytest.mark.parametrize("cls", ALL_LOSSES)
def test_serialization_round_trip(cls):
    loss = cls(**NON_DEFAULT[cls])
    config = loss.get_config()
    for key, val in NON_DEFAULT[cls].items():
        assert config[key] == val
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls
    assert restored.get_config() == config
    assert cls.from_config(config).get_config() == config
    assert keras.losses.serialize(loss)["registered_name"] == f"kerasseg>{cls.__name__}"


def test_saved_model_with_loss_reloads_without_custom_objects(tmp_path):
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Conv2D(3, 1)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd",
                  loss=losses.DiceCELoss(from_logits=True, include_background=False,
                                         dice_weight=0.5))
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    y = rng.integers(0, 3, size=(2, 4, 4))
    before = model.evaluate(x, y, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.loss, losses.DiceCELoss)
    assert reloaded.loss.get_config() == model.loss.get_config()
    assert reloaded.evaluate(x, y, verbose=0) == pytest.approx(before, rel=1e-6)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: losses.FocalLoss(gamma=-1.0),
         "`gamma` must be a finite number >= 0.0. Received: gamma=-1.0"),
        (lambda: losses.FocalLoss(alpha=1.5),
         "`alpha` must be a finite number >= 0.0 and <= 1.0. Received: alpha=1.5"),
        (lambda: losses.FocalLoss(alpha=[0.5, -1.0]), "Received: alpha=[0.5, -1.0]"),
        (lambda: losses.DiceLoss(dice_reduction="mean"),
         "`dice_reduction` must be one of ['batch', 'sample']. Received: dice_reduction='mean'"),
        (lambda: losses.DiceLoss(reduction="batch"),
         "`reduction` must be one of ['sum_over_batch_size', 'sum', 'mean', "
         "'mean_with_sample_weight', 'none', None] (to compute the Dice per batch, pass "
         "dice_reduction='batch'). Received: reduction='batch'"),
        (lambda: losses.FocalLoss(reduction="avg"), "Received: reduction='avg'"),
        (lambda: losses.DiceLoss(smooth=-1), "`smooth` must be a finite number >= 0.0"),
        (lambda: losses.DiceLoss(include_background="no"),
         "`include_background` must be one of [True, False]. Received: include_background='no'"),
        (lambda: losses.DiceLoss(class_weights=[1.0, -2.0]),
         "Received: class_weights=[1.0, -2.0]"),
        (lambda: losses.DiceLoss(class_weights=[0.0, 0.0]), "with a positive sum"),
        (lambda: losses.TverskyLoss(alpha=0.0, beta=0.0),
         "`alpha` + `beta` must be > 0. Received: alpha=0.0, beta=0.0"),
        (lambda: losses.TverskyLoss(beta=-0.5), "`beta` must be a finite number >= 0.0"),
        (lambda: losses.DiceCELoss(dice_weight=0.0, ce_weight=0.0),
         "`dice_weight` + `ce_weight` must be > 0"),
    ],
)
def test_invalid_options_raise(factory, message):
    with pytest.raises(ValueError) as info:
        factory()
    assert message in str(info.value)


def test_shape_errors_raise_at_call():
    labels, probs = two_class_example()
    with pytest.raises(ValueError, match=r"`class_weights` must have one value per class \(2"):
        losses.DiceLoss(class_weights=[1.0, 1.0, 1.0])(labels, probs)
    with pytest.raises(ValueError, match=r"`alpha` must be a number or have one value per"):
        losses.FocalLoss(alpha=[1.0, 1.0, 1.0])(labels, probs)
    with pytest.raises(ValueError, match=r"`y_true` must be a label map"):
        losses.DiceLoss()(np.zeros((1, 2, 2, 3)), probs)
    with pytest.raises(ValueError, match=r"multi-hot"):
        losses.DiceLoss(multilabel=True)(labels, probs)
