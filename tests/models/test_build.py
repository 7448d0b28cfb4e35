"""`kerasseg.build` argument checking and the registry."""

import pytest

import kerasseg
from kerasseg.models import registry


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        kerasseg.build("segnet")
    message = str(info.value)
    assert "`name` must be one of" in message
    for valid in ("unet", "fcn8s", "deeplab", "deeplabv3plus"):
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
        model = kerasseg.build(family, input_shape=(64, 64, 1), name=f"my_{family}")
        assert model.name == f"my_{family}"


def test_total_stride_per_family():
    assert registry.total_stride("unet") == 16
    assert registry.total_stride("unet", depth=3) == 8
    assert registry.total_stride("fcn8s") == 32
    assert registry.total_stride("deeplab") == 16
    assert registry.total_stride("deeplabv3plus", output_stride=8) == 8
