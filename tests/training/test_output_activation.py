"""The output activation is one contract: a model declares logits, softmax or sigmoid outputs;
the loss and metric take ``from_logits`` only for logits, inference and export apply
softmax/sigmoid only to logits, and the trained model's info records it."""

import keras
import numpy as np
import pytest

from kerasseg.data.spec import make_preprocessing_spec
from kerasseg.inference import Predictor
from kerasseg.models import OUTPUT_ACTIVATIONS, build, output_activation
from kerasseg.training import recipe
from kerasseg.training.recipe import LOSSES, OneHotTargetsLoss, make_loss, make_metric
from kerasseg.training.fitting import compile_model as _compile

from tests.small import TINY_UNET

SETTINGS = dict(schedule="constant", learning_rate=1e-3, warmup_epochs=0, weight_decay=1e-4)


def _pair(activation, num_classes, seed=3):
    """A model of logits and the same weights with ``activation`` on top."""
    keras.utils.set_random_seed(seed)
    logits = build("unet", input_shape=(None, None, 1), num_classes=num_classes, **TINY_UNET)
    model = build("unet", input_shape=(None, None, 1), num_classes=num_classes,
                  output_activation=activation, **TINY_UNET)
    model.set_weights(logits.get_weights())
    return logits, model


def _batch(num_classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 16, 16, 1)).astype("float32")
    y = rng.integers(0, max(2, num_classes), size=(2, 16, 16)).astype("int32")
    return x, y


def _compiled_loss(model, loss_name, num_classes, x, y):
    _compile(model, dict(SETTINGS, loss=loss_name), num_classes, steps=1, total_steps=1,
             done_steps=0)
    return float(model.loss(y, model(x)))


def test_models_declare_their_output_activation():
    assert OUTPUT_ACTIVATIONS == ("logits", "softmax", "sigmoid")
    for activation in (None, "softmax", "sigmoid"):
        for family, options in (("unet", TINY_UNET), ("fcn8s", {}), ("deeplab", {})):
            model = build(family, input_shape=(64, 64, 1), num_classes=3,
                          output_activation=activation, **options)
            assert output_activation(model) == (activation or "logits"), family


@pytest.mark.parametrize("loss_name", LOSSES)
@pytest.mark.parametrize("activation, num_classes", [("softmax", 3), ("sigmoid", 1)])
def test_training_loss_of_probabilities_equals_the_loss_of_their_logits(
        loss_name, activation, num_classes):
    """Before, the loss took every model's outputs as logits: a softmax model's loss was the
    loss of softmax(softmax(z)). Now the loss of a softmax (or one-channel sigmoid) model is
    the loss of the logits model with the same weights."""
    logits, model = _pair(activation, num_classes)
    x, y = _batch(num_classes)
    expected = _compiled_loss(logits, loss_name, num_classes, x, y)
    got = _compiled_loss(model, loss_name, num_classes, x, y)
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-5)
    assert model.loss.get_config().get("from_logits") is False
    assert logits.loss.get_config().get("from_logits") is True
    for net, from_logits in ((model, False), (logits, True)):
        metric = net.get_compile_config()["metrics"][0]
        assert metric["config"]["from_logits"] is from_logits


def test_hand_computed_losses_on_a_known_batch():
    # Softmax outputs over 2 classes, 1x2 pixels, one sample.
    p = np.array([[[[0.8, 0.2], [0.3, 0.7]]]], "float32")
    y = np.array([[[0, 0]]], "int32")
    ce = -(np.log(0.8) + np.log(0.3)) / 2
    assert float(make_loss("ce", 2, "softmax")(y, p)) == pytest.approx(ce, rel=1e-5)
    # The same numbers taken as logits give another value: the old, wrong form.
    assert float(make_loss("ce", 2, "logits")(y, p)) != pytest.approx(ce, rel=1e-3)
    # Dice + CE over the foreground class: soft Dice of class 1 = 2*0 / (0.2 + 0.7 + 0).
    smooth = make_loss("dice_ce", 2, "softmax").get_config()["smooth"]
    dice = (0.0 + smooth) / (0.9 + smooth)
    assert float(make_loss("dice_ce", 2, "softmax")(y, p)) == pytest.approx(
        (1 - dice) + ce, rel=1e-4)
    # Sigmoid outputs over 2 channels: each class against the rest, binary cross-entropy
    # averaged over channels and pixels, targets one-hot from the label map.
    onehot = np.array([[[[1, 0], [1, 0]]]], "float32")
    bce = -np.mean(onehot * np.log(p) + (1 - onehot) * np.log(1 - p))
    loss = make_loss("ce", 2, "sigmoid")
    assert isinstance(loss, OneHotTargetsLoss)
    assert float(loss(y, p)) == pytest.approx(bce, rel=1e-5)
    assert float(loss(y[..., None], p)) == pytest.approx(bce, rel=1e-5)
    # One sigmoid channel: binary cross-entropy on the probability.
    q = p[..., 1:]
    mask = np.array([[[0, 1]]], "int32")
    expected = -(np.log(1 - 0.2) + np.log(0.7)) / 2
    assert float(make_loss("ce", 1, "sigmoid")(mask, q)) == pytest.approx(expected, rel=1e-5)


def test_sigmoid_over_several_classes_trains_each_class_against_the_rest():
    logits, model = _pair("sigmoid", 3)
    x, y = _batch(3)
    got = _compiled_loss(model, "ce", 3, x, y)
    prob = np.clip(np.asarray(model(x)), 1e-7, 1 - 1e-7)
    onehot = np.eye(3)[y]
    expected = -np.mean(onehot * np.log(prob) + (1 - onehot) * np.log(1 - prob))
    assert got == pytest.approx(expected, rel=1e-4)
    config = keras.saving.serialize_keras_object(model.loss)
    restored = keras.saving.deserialize_keras_object(config)
    assert float(restored(y, model(x))) == pytest.approx(got, rel=1e-6)


def test_bad_activations_are_refused():
    with pytest.raises(ValueError, match=r"`output_activation` must be one of \['logits'"):
        make_loss("dice_ce", 3, "relu")
    with pytest.raises(ValueError, match="softmax over one class is constant"):
        make_metric(1, output_activation="softmax")
    assert make_metric(1, output_activation="sigmoid").from_logits is False
    assert make_metric(3).from_logits is True
    assert recipe.make_loss("dice", 3).get_config()["from_logits"] is True


def _info(num_classes, **extra):
    return {"model": "unet", "channels": 1,
            "preprocessing": make_preprocessing_spec(normalization="none"),
            "patch_size": [16, 16], "stride": 4, "num_classes": num_classes, **extra}


@pytest.mark.parametrize("activation, num_classes", [("softmax", 3), ("sigmoid", 1)])
def test_inference_gives_the_logits_models_probabilities(activation, num_classes):
    logits, model = _pair(activation, num_classes)
    x = np.random.default_rng(1).normal(size=(3, 16, 16, 1)).astype("float32")
    expected = Predictor(logits, _info(num_classes)).predict_slices(x)
    for info in (_info(num_classes), _info(num_classes, output_activation=activation)):
        got = Predictor(model, info).predict_slices(x)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert Predictor(model, _info(num_classes)).activation == activation
    np.testing.assert_allclose(expected.sum(axis=-1), 1.0, rtol=1e-5)


def test_inference_of_sigmoid_outputs_over_several_classes_keeps_them():
    logits, model = _pair("sigmoid", 3)
    x = np.random.default_rng(2).normal(size=(2, 16, 16, 1)).astype("float32")
    got = Predictor(model, _info(3)).predict_slices(x)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-np.asarray(logits(x)))), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="output_activation"):
        Predictor(model, _info(3, output_activation="tanh"))


def test_export_takes_the_declared_activation():
    from kerasseg.export.signatures import OUTPUT_ACTIVATIONS as EXPORT_ACTIVATIONS
    from kerasseg.export.signatures import model_info

    assert EXPORT_ACTIVATIONS == ("auto",) + OUTPUT_ACTIVATIONS
    logits, model = _pair("softmax", 3)
    assert model_info(model, stride=4).outputs_probabilities
    assert not model_info(logits, stride=4).outputs_probabilities


def test_a_trained_model_records_and_keeps_its_output_activation(tiny, tmp_path):
    from kerasseg.modelfile import load_model
    from kerasseg.training import train

    result = train(tiny, "unet", output_dir=str(tmp_path / "run"), epochs=1, steps_per_epoch=2,
                   batch_size=4, patch_size=32, mode="2d", normalization="zscore",
                   model_options=dict(TINY_UNET, output_activation="sigmoid"), augment="none",
                   plan=False, evaluate=False, verbose=0, val_fraction=0.2)
    model, info = load_model(result.best_model)
    assert info.output_activation == "sigmoid"
    assert np.isfinite(result.history[-1]["loss"])
    predictor = Predictor(result.best_model)
    slices = np.random.default_rng(0).normal(size=(1, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(predictor.predict_slices(slices), np.asarray(model(slices)),
                               rtol=1e-5, atol=1e-6)
