"""Training choices: automatic patch size, schedules, losses, argument checks."""

import numpy as np
import pytest

from kerasseg.plan import auto_patch_size
from kerasseg.training import recipe


def test_auto_patch_pads_small_slices_to_the_stride():
    patch, reason = auto_patch_size([(35, 51), (40, 48), (31, 50)], stride=8)
    assert patch == (40, 56)
    assert "whole slices" in reason and "40x56" in reason


def test_auto_patch_uses_patches_for_large_images():
    # A 584x565 RGB retina photo at stride 16: 256x256 patches and tiled prediction.
    patch, reason = auto_patch_size([(584, 565)], stride=16)
    assert patch == (256, 256)
    assert "patches" in reason and "tiles" in reason


def test_auto_patch_mixed_sizes_caps_only_the_large_axis():
    assert auto_patch_size([(100, 300)], stride=32)[0] == (128, 256)


def test_poly_schedule_values():
    schedule = recipe.make_schedule("poly", 0.01, total_steps=100)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 * 0.5**0.9, rel=1e-5)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)


def test_cosine_schedule_with_warmup():
    schedule = recipe.make_schedule("cosine", 1e-3, total_steps=110, warmup_steps=10)
    assert float(schedule(5)) == pytest.approx(5e-4, rel=1e-4)
    assert float(schedule(10)) == pytest.approx(1e-3, rel=1e-4)
    # Half-way through the decay: (1 + cos(pi / 2)) / 2 = 0.5.
    assert float(schedule(60)) == pytest.approx(5e-4, rel=1e-3)


def test_losses_by_name():
    loss = recipe.make_loss("dice_ce", 3)
    assert loss.from_logits and not loss.include_background
    y_true = np.array([[[0, 1], [2, 2]]])
    logits = np.eye(3)[y_true] * 20.0
    assert float(loss(y_true, logits)) < 1e-3
    assert recipe.make_loss("ce", 1).__class__.__name__ == "BinaryCrossentropy"


def test_training_metric_is_foreground_dice_on_logits():
    # Labels [[0, 1], [2, 2]]; predicted [[0, 1], [1, 2]]: class 1 has 1 TP and 1 FP
    # (Dice 2/3), class 2 has 1 TP and 1 FN (Dice 2/3); background is not averaged.
    y_true = np.array([[[0, 1], [2, 2]]])
    logits = np.eye(3)[np.array([[[0, 1], [1, 2]]])] * 5.0
    metric = recipe.make_metric(3)
    metric.update_state(y_true, logits)
    assert metric.name == "dice" and float(metric.result()) == pytest.approx(2 / 3, abs=1e-6)
    # A one-channel sigmoid model is scored as background + foreground.
    binary = recipe.make_metric(1, name="val_dice")
    binary.update_state(np.array([[[0, 1], [1, 1]]]), np.array([[[-4.0], [4.0]], [[4.0], [-4.0]]])[None])
    assert binary.name == "val_dice" and float(binary.result()) == pytest.approx(0.8, abs=1e-6)


@pytest.mark.parametrize("call,message", [
    (lambda: recipe.make_loss("l2", 2), "`loss` must be one of ['dice_ce', 'dice', 'ce', 'focal', 'tversky']. Received: loss='l2'"),
    (lambda: recipe.make_schedule("step", 0.1, 10), "`schedule` must be one of ['cosine', 'poly', 'constant']"),
    (lambda: recipe.make_schedule("cosine", 0.0, 10), "`learning_rate` must be > 0"),
    (lambda: auto_patch_size([], 8), "`slice_shapes` must not be empty"),
])
def test_invalid_choices(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
