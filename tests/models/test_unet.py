"""U-Net specifics: filter progression, options and their validation."""

import numpy as np
import pytest

import kerasseg


def _conv_filters(model, prefix):
    return model.get_layer(f"{prefix}_conv").filters


def test_filters_double_per_level():
    model = kerasseg.build("unet", input_shape=(64, 64, 1), depth=4, base_filters=32)
    widths = [_conv_filters(model, f"enc{level}_1") for level in range(4)]
    assert widths == [32, 64, 128, 256]
    assert _conv_filters(model, "bottleneck_1") == 512


def test_parameter_count_matches_hand_count():
    # depth=1, base_filters=4, no normalization, 1 input channel, 2 classes.
    model = kerasseg.build("unet", input_shape=(8, 8, 1), depth=1, base_filters=4,
                           normalization="none")
    conv = lambda cin, cout, k=3: k * k * cin * cout + cout  # noqa: E731
    expected = (
        conv(1, 4) + conv(4, 4)            # encoder level 0
        + conv(4, 8) + conv(8, 8)          # bottleneck
        + (2 * 2 * 8 * 4 + 4)              # 2x2 transposed conv 8 -> 4
        + conv(8, 4) + conv(4, 4)          # decoder on concat(4 + 4)
        + conv(4, 2, k=1)                  # 1x1 classifier
    )
    assert model.count_params() == expected


@pytest.mark.parametrize("normalization", ["batch", "group", "instance", "none"])
@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
def test_options_build_and_run(normalization, upsampling):
    model = kerasseg.build("unet", input_shape=(32, 32, 2), num_classes=2, depth=2,
                           base_filters=8, normalization=normalization,
                           upsampling=upsampling, dropout=0.2)
    out = model.predict(np.ones((1, 32, 32, 2), "float32"), verbose=0)
    assert out.shape == (1, 32, 32, 2)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"depth": 0}, "`depth` must be an int in [1, 6]. Received: depth=0"),
        ({"base_filters": 0}, "`base_filters` must be a positive int"),
        ({"dropout": 1.5}, "`dropout` must be in [0, 1). Received: dropout=1.5"),
        ({"upsampling": "nearest"}, "`upsampling` must be one of ['transpose', 'bilinear']"),
        ({"normalization": "layer"}, "`normalization` must be one of"),
        ({"output_activation": "relu"}, "`output_activation` must be one of"),
    ],
)
def test_invalid_options(options, message):
    with pytest.raises(ValueError) as info:
        kerasseg.build("unet", **options)
    assert message in str(info.value)
