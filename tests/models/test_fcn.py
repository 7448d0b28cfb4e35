"""FCN-8s specifics: score fusion from pool3/pool4, bilinear initialisation."""

import numpy as np
import pytest
import keras

import kerasseg
from kerasseg.models.fcn import BilinearUpsamplingInitializer


def test_skip_scores_come_from_pool3_and_pool4():
    model = kerasseg.build("fcn8s", input_shape=(64, 64, 1), num_classes=2, base_filters=8,
                           fc_filters=16)
    assert model.get_layer("score_pool4").input.shape[1:3] == (4, 4)   # 1/16
    assert model.get_layer("score_pool3").input.shape[1:3] == (8, 8)   # 1/8
    assert model.get_layer("upscore8").strides == (8, 8)


def test_fresh_model_equals_fcn32s_path():
    # Skip score layers start at zero, so the output is the upsampled fc7 score only.
    model = kerasseg.build("fcn8s", input_shape=(64, 64, 1), num_classes=2, base_filters=8,
                           fc_filters=16)
    for name in ("score_pool3", "score_pool4"):
        assert not np.any(model.get_layer(name).get_weights()[0])


def test_bilinear_initializer_upsamples_like_bilinear():
    layer = keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=BilinearUpsamplingInitializer())
    ramp = np.arange(8, dtype="float32").reshape(1, 1, 8, 1) * np.ones((1, 8, 1, 1), "float32")
    out = np.asarray(layer(ramp))[0, :, :, 0]
    # Interior values of a 2x bilinear upsampling of a ramp step by 0.5.
    np.testing.assert_allclose(np.diff(out[4, 2:-2]), 0.5, atol=1e-6)
    kernel = BilinearUpsamplingInitializer()((4, 4, 2, 2))
    np.testing.assert_allclose(np.asarray(kernel)[:, :, 0, 1], 0.0)
    np.testing.assert_allclose(np.asarray(kernel)[:, 0, 0, 0], [0.0625, 0.1875, 0.1875, 0.0625])


@pytest.mark.parametrize(
    "options,message",
    [
        ({"base_filters": 0}, "`base_filters` must be a positive int"),
        ({"fc_kernel_size": -1}, "`fc_kernel_size` must be a positive int"),
        ({"dropout": -0.1}, "`dropout` must be in [0, 1)"),
        ({"normalization": "batchnorm"}, "`normalization` must be one of"),
    ],
)
def test_invalid_options(options, message):
    with pytest.raises(ValueError) as info:
        kerasseg.build("fcn8s", **options)
    assert message in str(info.value)
