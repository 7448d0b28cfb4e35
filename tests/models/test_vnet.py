"""V-Net specifics: residual stages, PReLU, strided downsampling, options and validation."""

import numpy as np
import pytest
import keras

import kerasseg
from kerasseg.models import vnet

# depth=2, base_filters=2, no normalization (so every convolution has a bias), 1 input
# channel: encoder stages of 2 and 4 channels, a bottom stage of 8, decoder stages of
# 8 and 4 (upsampled features concatenated with the encoder's).
TINY = dict(input_shape=(16, 16, 16, 1), num_classes=2, depth=2, base_filters=2,
            normalization="none", convs_per_stage=[1, 2, 2])


def conv(cin, cout, k=5):
    """Parameters of a k x k x k convolution with bias from cin to cout channels."""
    return k ** 3 * cin * cout + cout


def _stage_params(model, prefix):
    return sum(layer.count_params() for layer in model.layers
               if layer.name.startswith(prefix + "_"))


def test_one_residual_stage_has_the_hand_counted_parameters():
    model = kerasseg.build("vnet", **TINY)
    # Encoder level 1: two 5x5x5 convolutions from 4 to 4 channels (125*4*4 + 4 = 2004
    # each) and a PReLU slope per channel after each (4 + 4); the sum adds none.
    assert _stage_params(model, "enc1") == 2 * conv(4, 4) + 2 * 4 == 4016
    assert _stage_params(model, "bottom") == 2 * conv(8, 8) + 2 * 8 == 16032
    assert _stage_params(model, "dec1") == 2 * conv(8, 8) + 2 * 8 == 16032
    assert _stage_params(model, "dec0") == conv(4, 4) + 4 == 2008


def test_whole_model_has_the_hand_counted_parameters():
    model = kerasseg.build("vnet", **TINY)
    expected = (
        conv(1, 2) + 2 + conv(1, 2, k=1)         # enc0: conv, PReLU, 1x1x1 input projection
        + conv(2, 4, k=2) + 4                    # down0: 2x2x2 stride-2 conv, PReLU
        + 2 * conv(4, 4) + 2 * 4                 # enc1
        + conv(4, 8, k=2) + 8                    # down1
        + 2 * conv(8, 8) + 2 * 8                 # bottom
        + conv(8, 4, k=2) + 4                    # up1: 2x2x2 transposed conv 8 -> 4, PReLU
        + 2 * conv(8, 8) + 2 * 8                 # dec1 on concat(4 + 4)
        + conv(8, 2, k=2) + 2                    # up0: 8 -> 2
        + conv(4, 4) + 4                         # dec0 on concat(2 + 2)
        + conv(4, 2, k=1)                        # 1x1x1 classifier
    )
    assert expected == 39096
    assert model.count_params() == expected


def test_stages_are_residual():
    model = kerasseg.build("vnet", **TINY)
    # Each sum adds the stage's last convolution to the stage's input.
    add = model.get_layer("enc1_add")
    assert add.input[0] is model.get_layer("enc1_conv2_conv").output
    assert add.input[1] is model.get_layer("down0_act").output
    assert model.get_layer("bottom_add").input[1] is model.get_layer("down1_act").output
    assert model.get_layer("dec0_add").input[1] is model.get_layer("dec0_concat").output
    # The first stage's residual is the image projected to base_filters channels.
    assert model.get_layer("enc0_add").input[1] is model.get_layer("enc0_skip").output
    same_width = kerasseg.build("vnet", **{**TINY, "input_shape": (16, 16, 16, 2)})
    assert "enc0_skip" not in [layer.name for layer in same_width.layers]
    assert same_width.get_layer("enc0_add").input[1] is same_width.input


def test_prelu_activations():
    model = kerasseg.build("vnet", **TINY)
    prelus = [layer for layer in model.layers if isinstance(layer, keras.layers.PReLU)]
    # One per convolution of a stage (1 + 2 + 2 + 2 + 1), per down- and per up-sampling.
    assert len(prelus) == 8 + 2 + 2
    assert not any(isinstance(layer, (keras.layers.Activation, keras.layers.ReLU))
                   for layer in model.layers)
    slopes = model.get_layer("bottom_act").get_weights()[0]
    assert slopes.shape == (1, 1, 1, 8)  # one per channel, shared over space
    np.testing.assert_array_equal(slopes, np.full((1, 1, 1, 8), 0.25, "float32"))


def test_prelu_computes_keras_prelu():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5, 6)).astype("float32")
    ours = vnet.PReLU(shared_axes=[1, 2, 3])
    theirs = keras.layers.PReLU(shared_axes=[1, 2, 3])
    ours.build(x.shape)
    theirs.build(x.shape)
    alpha = np.linspace(-0.5, 0.7, 6, dtype="float32").reshape(1, 1, 1, 6)
    ours.set_weights([alpha])
    theirs.set_weights([alpha])
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=1e-6)
    assert ours.get_config() == {**theirs.get_config(), "name": ours.name}


def test_downsampling_is_a_strided_convolution_and_upsampling_a_transposed_one():
    model = kerasseg.build("vnet", **TINY)
    assert not any("Pooling" in type(layer).__name__ for layer in model.layers)
    for level, shape in [(0, (None, 8, 8, 8, 4)), (1, (None, 4, 4, 4, 8))]:
        down = model.get_layer(f"down{level}_conv")
        assert type(down) is keras.layers.Conv3D
        assert (down.kernel_size, down.strides) == ((2, 2, 2), (2, 2, 2))
        assert tuple(down.output.shape) == shape
    for level, shape in [(1, (None, 8, 8, 8, 4)), (0, (None, 16, 16, 16, 2))]:
        up = model.get_layer(f"up{level}_conv")
        assert type(up) is keras.layers.Conv3DTranspose
        assert (up.kernel_size, up.strides) == ((2, 2, 2), (2, 2, 2))
        assert tuple(up.output.shape) == shape


def test_paper_configuration():
    # The paper's stages (Milletari et al. 2016, figure 1), at a smaller width.
    model = kerasseg.build("vnet", depth=4, base_filters=2)

    def convs(stage):
        return sum(1 for layer in model.layers
                   if layer.name.startswith(f"{stage}_conv") and layer.name.endswith("_conv"))

    assert [convs(f"enc{level}") for level in range(4)] + [convs("bottom")] == [1, 2, 3, 3, 3]
    assert [convs(f"dec{level}") for level in (3, 2, 1, 0)] == [3, 3, 2, 1]
    assert model.get_layer("enc2_conv1_conv").kernel_size == (5, 5, 5)
    assert [model.get_layer(f"enc{level}_conv1_conv").filters for level in range(4)] == \
        [2, 4, 8, 16]
    assert model.get_layer("bottom_conv1_conv").filters == 32
    assert [model.get_layer(f"dec{level}_conv1_conv").filters for level in range(4)] == \
        [4, 8, 16, 32]
    assert vnet.default_convs_per_stage(2) == [1, 2, 3]


def test_kernel_size_and_convs_per_stage_options():
    model = kerasseg.build("vnet", depth=1, base_filters=2, kernel_size=(1, 3, 3),
                           convs_per_stage=2)
    assert model.get_layer("enc0_conv2_conv").kernel_size == (1, 3, 3)
    assert model.get_layer("bottom_conv2_conv").kernel_size == (1, 3, 3)
    assert model.get_layer("dec0_conv2_conv").kernel_size == (1, 3, 3)


@pytest.mark.parametrize("normalization", ["batch", "group", "instance", "none"])
def test_options_build_and_run(normalization):
    model = kerasseg.build("vnet", input_shape=(8, 8, 8, 2), num_classes=3, depth=2,
                           base_filters=4, normalization=normalization,
                           output_activation="softmax")
    out = model.predict(np.ones((1, 8, 8, 8, 2), "float32"), verbose=0)
    assert out.shape == (1, 8, 8, 8, 3)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    norms = [layer.name for layer in model.layers if layer.name.endswith("_norm")]
    assert (len(norms) == 0) == (normalization == "none")


@pytest.mark.parametrize(
    "options,message",
    [
        ({"depth": 0}, "`depth` must be an int in [1, 5]. Received: depth=0"),
        ({"depth": 6}, "`depth` must be an int in [1, 5]. Received: depth=6"),
        ({"base_filters": 0}, "`base_filters` must be a positive int. Received: base_filters=0"),
        ({"convs_per_stage": 0}, "`convs_per_stage` must be None, a positive int or a list of "
                                 "depth + 1 = 5 positive ints. Received: convs_per_stage=0"),
        ({"depth": 2, "convs_per_stage": [1, 2]}, "a list of depth + 1 = 3 positive ints"),
        ({"kernel_size": (5, 5)}, "`kernel_size` must be a positive int or a tuple of 3 "
                                  "positive ints. Received: kernel_size=(5, 5)"),
        ({"normalization": "layer"}, "`normalization` must be one of"),
        ({"output_activation": "relu"}, "`output_activation` must be one of"),
        ({"input_shape": (16, 16, 24, 1)},
         "`input_shape` spatial sizes must be multiples of the stride of their axis, "
         "(16, 16, 16) (2**depth). Received: input_shape=(16, 16, 24, 1)"),
    ],
)
def test_invalid_options(options, message):
    with pytest.raises(ValueError) as info:
        kerasseg.build("vnet", **options)
    assert message in str(info.value)
