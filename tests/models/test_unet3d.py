"""3-D U-Net specifics: anisotropic levels, the filter cap, deep supervision, validation."""

import numpy as np
import pytest
import keras

import kerasseg
from kerasseg.models import registry
from kerasseg.models.blocks import conv_block


def _shape(model, layer):
    return tuple(model.get_layer(layer).output.shape)


def test_anisotropic_pool_and_kernel_sizes_give_the_per_level_shapes():
    model = kerasseg.build("unet3d", input_shape=(8, 32, 32, 1), num_classes=2, depth=2,
                           base_filters=4, pool_sizes=[(1, 2, 2), (2, 2, 2)],
                           kernel_sizes=[(1, 3, 3), (3, 3, 3), (3, 3, 3)])
    # Level 0 pools in-plane only, level 1 on every axis.
    assert _shape(model, "enc0_2_act") == (None, 8, 32, 32, 4)
    assert _shape(model, "enc0_pool") == (None, 8, 16, 16, 4)
    assert _shape(model, "enc1_2_act") == (None, 8, 16, 16, 8)
    assert _shape(model, "enc1_pool") == (None, 4, 8, 8, 8)
    assert _shape(model, "bottleneck_2_act") == (None, 4, 8, 8, 16)
    assert _shape(model, "dec1_up") == (None, 8, 16, 16, 8)
    assert _shape(model, "dec0_up") == (None, 8, 32, 32, 4)
    assert model.output_shape == (None, 8, 32, 32, 2)
    # The pooling and upsampling factors, and each level's kernels (decoder as encoder).
    assert model.get_layer("enc0_pool").pool_size == (1, 2, 2)
    assert model.get_layer("enc1_pool").pool_size == (2, 2, 2)
    assert model.get_layer("dec0_up").kernel_size == (1, 2, 2)
    assert model.get_layer("dec0_up").strides == (1, 2, 2)
    assert model.get_layer("dec1_up").strides == (2, 2, 2)
    for layer in ("enc0_1_conv", "enc0_2_conv", "dec0_1_conv", "dec0_2_conv"):
        assert model.get_layer(layer).kernel_size == (1, 3, 3), layer
    for layer in ("enc1_1_conv", "dec1_2_conv", "bottleneck_1_conv"):
        assert model.get_layer(layer).kernel_size == (3, 3, 3), layer


def test_anisotropic_stride_is_checked_per_axis():
    options = dict(depth=2, base_filters=4, pool_sizes=[(1, 2, 2), (2, 2, 2)])
    assert registry.stride_per_axis("unet3d", **options) == (2, 4, 4)
    # Depth 2 and in-plane 4: the smallest volume the strides (2, 4, 4) allow.
    model = kerasseg.build("unet3d", input_shape=(2, 4, 4, 1), **options)
    assert _shape(model, "bottleneck_1_conv") == (None, 1, 1, 1, 16)
    for bad in [(3, 32, 32, 1), (8, 30, 32, 1), (8, 32, 2, 1)]:
        with pytest.raises(ValueError) as info:
            kerasseg.build("unet3d", input_shape=bad, **options)
        assert str(info.value) == (
            "`input_shape` spatial sizes must be multiples of the stride of their axis, "
            "(2, 4, 4) (the product of `pool_sizes` per axis). "
            f"Received: input_shape={bad!r}")


def test_an_int_entry_stands_for_every_axis():
    model = kerasseg.build("unet3d", depth=2, base_filters=4, pool_sizes=[2, (1, 2, 2)],
                           kernel_sizes=[3, 1, (1, 3, 3)])
    assert model.get_layer("enc0_pool").pool_size == (2, 2, 2)
    assert model.get_layer("enc1_1_conv").kernel_size == (1, 1, 1)
    assert model.get_layer("bottleneck_1_conv").kernel_size == (1, 3, 3)
    assert registry.stride_per_axis("unet3d", depth=2, pool_sizes=[2, (1, 2, 2)]) == (2, 4, 4)


def test_filters_double_per_level_up_to_the_cap():
    model = kerasseg.build("unet3d", depth=4, base_filters=8, max_filters=32)
    widths = [model.get_layer(f"enc{level}_1_conv").filters for level in range(4)]
    assert widths == [8, 16, 32, 32]
    # The deepest convolutions: both bottleneck convolutions stop at the cap.
    assert model.get_layer("bottleneck_1_conv").filters == 32
    assert model.get_layer("bottleneck_2_conv").filters == 32
    assert model.get_layer("bottleneck_2_conv").kernel.shape == (3, 3, 3, 32, 32)
    assert max(layer.filters for layer in model.layers if hasattr(layer, "filters")) == 32
    assert [model.get_layer(f"dec{level}_2_conv").filters for level in range(4)] == widths


def test_default_filters_are_nnunet_s():
    model = kerasseg.build("unet3d", depth=5)
    widths = [model.get_layer(f"enc{level}_1_conv").filters for level in range(5)]
    assert widths + [model.get_layer("bottleneck_1_conv").filters] == [32, 64, 128, 256, 320,
                                                                        320]
    uncapped = kerasseg.build("unet3d", depth=3, base_filters=8, max_filters=None)
    assert uncapped.get_layer("bottleneck_2_conv").filters == 64


def test_parameter_count_matches_hand_count():
    # depth=1, base_filters=2, no normalization, 1 input channel, 2 classes.
    model = kerasseg.build("unet3d", input_shape=(4, 4, 4, 1), num_classes=2, depth=1,
                           base_filters=2, normalization="none")
    conv = lambda cin, cout, k=3: k ** 3 * cin * cout + cout  # noqa: E731
    expected = (
        conv(1, 2) + conv(2, 2)            # encoder level 0: 56 + 110
        + conv(2, 4) + conv(4, 4)          # bottleneck: 220 + 436
        + conv(4, 2, k=2)                  # 2x2x2 transposed conv 4 -> 2: 66
        + conv(4, 2) + conv(2, 2)          # decoder on concat(2 + 2): 218 + 110
        + conv(2, 2, k=1)                  # 1x1x1 classifier: 6
    )
    assert expected == 1222
    assert model.count_params() == expected


def test_deep_supervision_outputs_and_shapes():
    model = kerasseg.build("unet3d", input_shape=(8, 32, 32, 1), num_classes=3, depth=3,
                           base_filters=4, pool_sizes=[(1, 2, 2), (2, 2, 2), (2, 2, 2)],
                           deep_supervision=True)
    # Full resolution first, then decoder levels 1 and 2 (1/(1,2,2) and 1/(2,4,4)).
    assert model.output_shape == [(None, 8, 32, 32, 3), (None, 8, 16, 16, 3),
                                  (None, 4, 8, 8, 3)]
    assert model.output_names == ["head_logits", "ds1_logits", "ds2_logits"]
    outputs = model.predict(np.ones((2, 8, 32, 32, 1), "float32"), verbose=0)
    assert [out.shape for out in outputs] == [(2, 8, 32, 32, 3), (2, 8, 16, 16, 3),
                                              (2, 4, 8, 8, 3)]

    one = kerasseg.build("unet3d", input_shape=(8, 32, 32, 1), num_classes=3, depth=3,
                         base_filters=4, pool_sizes=[(1, 2, 2), (2, 2, 2), (2, 2, 2)],
                         deep_supervision=1)
    assert one.output_shape == [(None, 8, 32, 32, 3), (None, 8, 16, 16, 3)]


def test_without_deep_supervision_there_is_one_output():
    model = kerasseg.build("unet3d", depth=3, base_filters=4)
    assert model.output_shape == (None, None, None, None, 2)
    assert len(model.outputs) == 1
    assert kerasseg.build("unet3d", depth=3, base_filters=4,
                          deep_supervision=0).output_shape == (None, None, None, None, 2)


def test_deep_supervision_keeps_the_full_resolution_model():
    """The first output is the plain model's: same layers, same weights, same values."""
    options = dict(input_shape=(8, 16, 16, 1), num_classes=2, depth=2, base_filters=4,
                   output_activation="softmax")
    supervised = kerasseg.build("unet3d", deep_supervision=True, **options)
    plain = kerasseg.build("unet3d", **options)
    for layer in plain.layers:
        layer.set_weights(supervised.get_layer(layer.name).get_weights())
    x = np.random.default_rng(0).normal(size=(1, 8, 16, 16, 1)).astype("float32")
    full, level1 = supervised.predict(x, verbose=0)
    np.testing.assert_allclose(full, plain.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    # Every head has the output activation.
    np.testing.assert_allclose(level1.sum(-1), 1.0, atol=1e-5)
    assert kerasseg.models.output_activation(supervised) == "softmax"
    assert supervised.get_layer("ds1_softmax").output.shape == (None, 4, 8, 8, 2)


def test_deep_supervision_trains_with_one_target_per_output():
    keras.utils.set_random_seed(0)
    model = kerasseg.build("unet3d", input_shape=(4, 8, 8, 1), num_classes=2, depth=2,
                           base_filters=4, deep_supervision=True)
    x = np.random.default_rng(0).normal(size=(2, 4, 8, 8, 1)).astype("float32")
    y = (x[..., 0] > 0).astype("int32")
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True)] * 2,
                  loss_weights=[1.0, 0.5])
    first = float(model.train_on_batch(x, [y, y[:, ::2, ::2, ::2]])[0])
    second = float(model.train_on_batch(x, [y, y[:, ::2, ::2, ::2]])[0])
    assert second < first


# Instance normalization: one group per channel (16); group normalization: 8 groups.
@pytest.mark.parametrize("normalization,layer_type,groups",
                         [("instance", keras.layers.GroupNormalization, 16),
                          ("group", keras.layers.GroupNormalization, 8),
                          ("batch", keras.layers.BatchNormalization, None)])
def test_normalization_layers(normalization, layer_type, groups):
    model = kerasseg.build("unet3d", input_shape=(4, 8, 8, 1), depth=1, base_filters=16,
                           normalization=normalization)
    norm = model.get_layer("enc0_1_norm")
    assert isinstance(norm, layer_type)
    assert getattr(norm, "groups", None) == groups
    assert model.get_layer("enc0_1_conv").use_bias is False


def test_no_normalization_uses_biases():
    model = kerasseg.build("unet3d", depth=1, base_filters=4, normalization="none")
    assert model.get_layer("enc0_1_conv").use_bias is True
    assert not any("norm" in layer.name for layer in model.layers)


@pytest.mark.parametrize("normalization", ["batch", "group", "instance", "none"])
def test_options_build_and_run(normalization):
    model = kerasseg.build("unet3d", input_shape=(8, 8, 8, 2), num_classes=2, depth=2,
                           base_filters=4, normalization=normalization, dropout=0.2,
                           activation="elu")
    out = model.predict(np.ones((1, 8, 8, 8, 2), "float32"), verbose=0)
    assert out.shape == (1, 8, 8, 8, 2)
    assert model.get_layer("bottleneck_dropout").rate == 0.2
    assert model.get_layer("enc0_1_act").activation.__name__ == "elu"


@pytest.mark.parametrize(
    "options,message",
    [
        ({"depth": 0}, "`depth` must be an int in [1, 6]. Received: depth=0"),
        ({"depth": 7}, "`depth` must be an int in [1, 6]. Received: depth=7"),
        ({"base_filters": 0}, "`base_filters` must be a positive int. Received: base_filters=0"),
        ({"max_filters": 16}, "`max_filters` must be None or an int >= base_filters=32. "
                              "Received: max_filters=16"),
        ({"pool_sizes": [2, 2]}, "`pool_sizes` must be None or a list of 4 entries"),
        ({"depth": 2, "pool_sizes": [2, (2, 2)]},
         "`pool_sizes` entries must be positive ints or tuples of 3 positive ints. "
         "Received: pool_sizes=[2, (2, 2)]"),
        ({"depth": 2, "pool_sizes": [0, 2]}, "`pool_sizes` entries must be positive ints"),
        ({"depth": 2, "kernel_sizes": [3, 3]},
         "`kernel_sizes` must be None or a list of 3 entries (each an int or a tuple of 3 "
         "ints). Received: kernel_sizes=[3, 3]"),
        ({"depth": 2, "kernel_sizes": [3, 3, "3"]}, "`kernel_sizes` entries must be positive"),
        ({"depth": 1, "deep_supervision": True}, "`deep_supervision` needs depth >= 2"),
        ({"depth": 3, "deep_supervision": 3},
         "`deep_supervision` must be a bool or an int in [0, depth - 1 = 2]. "
         "Received: deep_supervision=3"),
        ({"deep_supervision": "yes"}, "`deep_supervision` must be a bool or an int"),
        ({"dropout": 1.5}, "`dropout` must be in [0, 1). Received: dropout=1.5"),
        ({"normalization": "layer"}, "`normalization` must be one of"),
        ({"output_activation": "relu"}, "`output_activation` must be one of"),
    ],
)
def test_invalid_options(options, message):
    with pytest.raises(ValueError) as info:
        kerasseg.build("unet3d", **options)
    assert message in str(info.value)


def test_separable_convolutions_are_2d_only():
    with pytest.raises(ValueError, match="`separable` convolutions are 2-D only"):
        conv_block(keras.Input((4, 8, 8, 1)), 4, "x", separable=True)
