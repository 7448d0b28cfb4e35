"""The base test every registered model family runs, 2-D and 3-D alike.

A family added to the registry is picked up by ``list_models()``; it must also get an
entry in ``tests.small.SMALL_OPTIONS`` (a small configuration that keeps these tests fast),
which a test checks. Inputs come from ``tests.small.input_shape``: images for 2-D families,
volumes for 3-D ones (each test names the sizes for both).
"""

import numpy as np
import pytest
import keras

import kerasseg
from kerasseg.models import registry
from tests.small import SMALL_OPTIONS, build_small as _build, input_shape as _shape

MODELS = kerasseg.list_models()


def _batch(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_every_model_has_small_options():
    assert set(MODELS) == set(SMALL_OPTIONS)


def test_list_models_names():
    assert {"unet", "fcn8s", "deeplab", "unet3d", "vnet"} <= set(MODELS)


def test_list_models_by_spatial_dims():
    assert kerasseg.list_models(spatial_dims=2) == ["deeplab", "fcn8s", "unet"]
    assert kerasseg.list_models(spatial_dims=3) == ["unet3d", "vnet"]
    assert kerasseg.list_models(spatial_dims=None) == MODELS
    assert sorted(kerasseg.list_models(spatial_dims=2) + kerasseg.list_models(spatial_dims=3)) \
        == MODELS


@pytest.mark.parametrize("name", MODELS)
def test_input_rank_is_the_family_s_spatial_dims(name):
    dims = registry.spatial_dims(name)
    model = _build(name, (None,) * dims + (2,), 2)
    assert model.input_shape == (None,) + (None,) * dims + (2,)
    assert model.output_shape == (None,) + (None,) * dims + (2,)


# Each case: spatial sizes for 2-D and 3-D families, channels, classes.
OUTPUT_CASES = [
    ({2: (128, 128), 3: (16, 32, 32)}, 1, 2),
    ({2: (96, 96), 3: (32, 16, 16)}, 3, 3),
    ({2: (64, 160), 3: (8, 16, 40)}, 2, 1),
]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("sizes,channels,num_classes", OUTPUT_CASES)
def test_output_shape(name, sizes, channels, num_classes):
    input_shape = _shape(name, channels, sizes)
    model = _build(name, input_shape, num_classes)
    out = model.predict(_batch((2,) + input_shape), verbose=0)
    assert out.shape == (2,) + input_shape[:-1] + (num_classes,)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", MODELS)
def test_dynamic_spatial_size(name):
    model = _build(name, _shape(name, 1, {2: None, 3: None}), 2)
    dims = registry.spatial_dims(name)
    assert model.input_shape == (None,) * (dims + 1) + (1,)
    sizes = {2: [(64, 64), (96, 128)], 3: [(16, 16, 16), (8, 32, 24)]}[dims]
    for spatial in sizes:
        out = model(_batch((1,) + spatial + (1,)), training=False)
        assert tuple(out.shape) == (1,) + spatial + (2,)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_output_activation(name, activation):
    shape = _shape(name)
    model = _build(name, shape, 3, output_activation=activation)
    out = np.asarray(model(_batch((1,) + shape), training=False))
    if activation == "softmax":
        np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    else:
        assert out.min() >= 0.0 and out.max() <= 1.0
    assert kerasseg.models.output_activation(model) == activation


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_lowers_loss(name):
    keras.utils.set_random_seed(0)
    shape = _shape(name)
    model = _build(name, shape, 3)
    x = _batch((4,) + shape)
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
    shape = _shape(name, 2)
    model = _build(name, shape, 3)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = _batch((2,) + shape)
    np.testing.assert_allclose(
        clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", MODELS)
def test_keras_save_and_reload(name, tmp_path):
    model = _build(name, _shape(name, 1, {2: None, 3: None}), 2)
    x = _batch((2,) + _shape(name))
    expected = model.predict(x, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    # No custom_objects: everything the model needs is registered under kerasseg.
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected)


@pytest.mark.parametrize("name", MODELS)
def test_weights_file_round_trip(name, tmp_path):
    shape = _shape(name)
    model = _build(name, shape, 2, seed=1)
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    other = _build(name, shape, 2, seed=2, weights=str(path))
    x = _batch((1,) + shape)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("name", MODELS)
def test_default_options_build_at_issue_sizes(name):
    # Default options: a stride of 16 or 32 in 2-D, 16 in 3-D.
    for sizes, channels, num_classes in [({2: (128, 128), 3: (16, 32, 32)}, 1, 2),
                                         ({2: (96, 96), 3: (16, 16, 16)}, 3, 3)]:
        input_shape = _shape(name, channels, sizes)
        model = kerasseg.build(name, input_shape=input_shape, num_classes=num_classes)
        out = model.predict(_batch((1,) + input_shape), verbose=0)
        assert out.shape == (1,) + input_shape[:-1] + (num_classes,)


@pytest.mark.parametrize("name", MODELS)
def test_default_input_shape_is_any_size_one_channel(name):
    model = kerasseg.build(name, **SMALL_OPTIONS[name])
    assert model.input_shape == (None,) * (registry.spatial_dims(name) + 1) + (1,)


@pytest.mark.parametrize("name", MODELS)
def test_unknown_option_lists_valid_ones(name):
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['bogus'\].*Valid options are"):
        kerasseg.build(name, bogus=1)


@pytest.mark.parametrize("name", MODELS)
def test_size_not_multiple_of_stride_is_rejected(name):
    # 100 and 20 are not multiples of 16 (the default strides are 16 or 32).
    input_shape = _shape(name, 1, {2: (100, 100), 3: (16, 20, 32)})
    with pytest.raises(ValueError, match=r"multiple.*Received: input_shape="):
        kerasseg.build(name, input_shape=input_shape, num_classes=2)
    assert registry.total_stride(name) in (16, 32)


@pytest.mark.parametrize("name", MODELS)
def test_input_shape_of_the_other_dimensionality_is_rejected(name):
    dims = registry.spatial_dims(name)
    wrong = (32,) * (5 - dims) + (1,)  # 3-D for a 2-D family and the reverse
    layout = {2: r"\(height, width, channels\)", 3: r"\(depth, height, width, channels\)"}[dims]
    with pytest.raises(ValueError, match=rf"`input_shape` must be a tuple {layout}"):
        kerasseg.build(name, input_shape=wrong)
