"""`kerasseg.build` argument checking and the registry."""

import pytest

import kerasseg
from kerasseg.models import registry
from tests.small import input_shape as _shape


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        kerasseg.build("segnet")
    message = str(info.value)
    assert "`name` must be one of" in message
    for valid in ("unet", "fcn8s", "deeplab", "deeplabv3plus", "unet3d", "vnet"):
        assert repr(valid) in message
    assert "Received: name='segnet'" in message


def test_alias_and_case_resolve_to_the_same_family():
    assert registry.resolve_name("deeplabv3plus") == "deeplab"
    assert registry.resolve_name("UNet") == "unet"


@pytest.mark.parametrize(
    "input_shape",
    [(128, 128), (128, 128, None), (0, 128, 1), (128.0, 128, 1), "128x128"],
)
def test_bad_input_shape(input_shape):
    with pytest.raises(ValueError, match="`input_shape`"):
        kerasseg.build("unet", input_shape=input_shape)


@pytest.mark.parametrize(
    "input_shape",
    [(32, 32, 1), (32, 32, 32), (32, 32, 32, None), (0, 32, 32, 1), (32, 32.0, 32, 1)],
)
def test_bad_volume_input_shape(input_shape):
    with pytest.raises(ValueError, match="`input_shape`"):
        kerasseg.build("unet3d", input_shape=input_shape)


def test_wrong_rank_message_names_the_expected_layout():
    with pytest.raises(ValueError) as info:
        kerasseg.build("vnet", input_shape=(64, 64, 1))
    assert str(info.value) == (
        "`input_shape` must be a tuple (depth, height, width, channels) for the 3-D model "
        "'vnet'; depth, height and width may be None. Received: input_shape=(64, 64, 1)")


def test_default_input_shape_follows_the_family():
    from kerasseg.models.build import default_input_shape

    assert default_input_shape("UNet") == (None, None, 1)
    assert default_input_shape("unet3d") == (None, None, None, 1)


@pytest.mark.parametrize("num_classes", [0, -1, 2.5, True, None])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="`num_classes` must be a positive int"):
        kerasseg.build("unet", num_classes=num_classes)


def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        kerasseg.build("unet", input_shape=(64, 64, 1), weights=str(tmp_path / "missing.weights.h5"))


def test_duplicate_registration_is_rejected():
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model("unet")(lambda input_shape, num_classes: None)


def test_family_name_option_passes_through_build():
    for family in kerasseg.list_models():
        model = kerasseg.build(family, input_shape=_shape(family, 1, {2: (64, 64),
                                                                      3: (16, 16, 16)}),
                               name=f"my_{family}")
        assert model.name == f"my_{family}"


def test_total_stride_per_family():
    assert registry.total_stride("unet") == 16
    assert registry.total_stride("unet", depth=3) == 8
    assert registry.total_stride("fcn8s") == 32
    assert registry.total_stride("deeplab") == 16
    assert registry.total_stride("deeplabv3plus", output_stride=8) == 8
    assert registry.total_stride("unet3d") == 16
    assert registry.total_stride("unet3d", depth=3) == 8
    assert registry.total_stride("vnet") == 16
    assert registry.total_stride("vnet", depth=2) == 4


def test_stride_per_axis():
    assert registry.stride_per_axis("unet") == (16, 16)
    assert registry.stride_per_axis("fcn8s") == (32, 32)
    assert registry.stride_per_axis("deeplab", output_stride=8) == (8, 8)
    assert registry.stride_per_axis("vnet", depth=3) == (8, 8, 8)
    assert registry.stride_per_axis("unet3d") == (16, 16, 16)
    # nnU-Net style: no pooling along the slice axis at the first two levels.
    pools = [(1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2)]
    assert registry.stride_per_axis("unet3d", pool_sizes=pools) == (4, 16, 16)
    assert registry.total_stride("unet3d", pool_sizes=pools) == 16
    # Strides whose least common multiple is none of them: 3 * 2 = 6 along depth, 4 in-plane.
    pools = [(3, 2, 2), (2, 2, 2)]
    assert registry.stride_per_axis("unet3d", depth=2, pool_sizes=pools) == (6, 4, 4)
    assert registry.total_stride("unet3d", depth=2, pool_sizes=pools) == 12


def test_stride_of_bad_options_names_the_option():
    with pytest.raises(ValueError, match="`pool_sizes` must be None or a list of 4 entries"):
        registry.total_stride("unet3d", pool_sizes=[2, 2])
    with pytest.raises(ValueError, match=r"`depth` must be an int in \[1, 5\]"):
        registry.stride_per_axis("vnet", depth=9)


def test_spatial_dims_per_family():
    assert {name: registry.spatial_dims(name) for name in kerasseg.list_models()} == {
        "deeplab": 2, "fcn8s": 2, "unet": 2, "unet3d": 3, "vnet": 3}
    assert registry.spatial_dims("DeepLabV3Plus") == 2
    with pytest.raises(ValueError, match="`name` must be one of"):
        registry.spatial_dims("segnet")


def test_bad_spatial_dims_are_rejected():
    with pytest.raises(ValueError, match=r"`spatial_dims` must be one of \[2, 3\]. "
                                         r"Received: spatial_dims=4"):
        registry.register_model("unet4d", spatial_dims=4)
    with pytest.raises(ValueError, match=r"`spatial_dims` must be None or one of \[2, 3\]. "
                                         r"Received: spatial_dims=1"):
        kerasseg.list_models(spatial_dims=1)
