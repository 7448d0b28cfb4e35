"""The base test every registered model family runs.

A family added to the registry is picked up by ``list_models()``; it must also get an
entry in ``tests.small.SMALL_OPTIONS`` (a small configuration that keeps these tests fast),
which a test checks.
"""

import numpy as np
import pytest
import keras

import kerasseg
from tests.small import SMALL_OPTIONS, build_small as _build

MODELS = kerasseg.list_models()


def _batch(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_every_model_has_small_options():
    assert set(MODELS) == set(SMALL_OPTIONS)


def test_list_models_names():
    assert {"unet", "fcn8s", "deeplab"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    "input_shape,num_classes",
    [((128, 128, 1), 2), ((96, 96, 3), 3), ((64, 160, 2), 1)],
)
def test_output_shape(name, input_shape, num_classes):
    model = _build(name, input_shape, num_classes)
    out = model.predict(_batch((2,) + input_shape), verbose=0)
    assert out.shape == (2,) + input_shape[:2] + (num_classes,)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", MODELS)
def test_dynamic_spatial_size(name):
    model = _build(name, (None, None, 1), 2)
    assert model.input_shape == (None, None, None, 1)
    for hw in [(64, 64), (96, 128)]:
        out = model(_batch((1,) + hw + (1,)), training=False)
        assert tuple(out.shape) == (1,) + hw + (2,)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_output_activation(name, activation):
    model = _build(name, (64, 64, 1), 3, output_activation=activation)
    out = np.asarray(model(_batch((1, 64, 64, 1)), training=False))
    if activation == "softmax":
        np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    else:
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_lowers_loss(name):
    keras.utils.set_random_seed(0)
    model = _build(name, (64, 64, 1), 3)
    x = _batch((4, 64, 64, 1))
    # A learnable target: the class is given by the intensity band of the input.
    y = np.digitize(x[..., 0], [-0.5, 0.5]).astype("int32")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # train_on_batch returns the loss computed before its update.
    first = float(model.train_on_batch(x, y))
    second = float(model.train_on_batch(x, y))
    assert np.isfinite(first)
    assert second < first


@pytest.mark.parametrize("name", MODELS)
def test_config_round_trip(name):
    model = _build(name, (64, 64, 2), 3)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = _batch((2, 64, 64, 2))
    np.testing.assert_allclose(
        clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", MODELS)
def test_keras_save_and_reload(name, tmp_path):
    model = _build(name, (None, None, 1), 2)
    x = _batch((2, 64, 64, 1))
    expected = model.predict(x, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    # No custom_objects: everything the model needs is registered under kerasseg.
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected)


@pytest.mark.parametrize("name", MODELS)
def test_weights_file_round_trip(name, tmp_path):
    model = _build(name, (64, 64, 1), 2)
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    other = _build(name, (64, 64, 1), 2, weights=str(path))
    x = _batch((1, 64, 64, 1))
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("name", MODELS)
def test_default_options_build_at_issue_sizes(name):
    for input_shape, num_classes in [((128, 128, 1), 2), ((96, 96, 3), 3)]:
        model = kerasseg.build(name, input_shape=input_shape, num_classes=num_classes)
        out = model.predict(_batch((1,) + input_shape), verbose=0)
        assert out.shape == (1,) + input_shape[:2] + (num_classes,)


@pytest.mark.parametrize("name", MODELS)
def test_unknown_option_lists_valid_ones(name):
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['bogus'\].*Valid options are"):
        kerasseg.build(name, bogus=1)


@pytest.mark.parametrize("name", MODELS)
def test_size_not_multiple_of_stride_is_rejected(name):
    with pytest.raises(ValueError, match="multiple"):
        kerasseg.build(name, input_shape=(100, 100, 1), num_classes=2)
