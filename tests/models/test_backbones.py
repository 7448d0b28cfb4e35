"""Backbones: pyramid levels and strides, dilation plans, ImageNet weight transfer.

The ``keras.applications`` networks are built with random weights here (no network):
the weight transfer is checked by copying from such a model and comparing features.
"""

import numpy as np
import pytest
import keras

import kerasseg
from kerasseg.models import deeplab  # noqa: F401  (registers "deeplab")
from kerasseg.models import backbones
from kerasseg.models.backbones import applications

CHANNELS = {
    "small": (32, 64, 128, 256),
    "resnet50": (64, 256, 512, 1024, 2048),
    "mobilenetv2": (16, 24, 32, 96, 320),
}


def _level_shapes(backbone, output_stride, channels=1, size=64):
    inputs = keras.Input((size, size, channels))
    levels = backbones.build_backbone(inputs, backbone, output_stride=output_stride)
    return inputs, levels


@pytest.mark.parametrize("backbone", ["small", "resnet50", "mobilenetv2"])
@pytest.mark.parametrize("output_stride", [8, 16])
def test_levels_have_expected_strides_and_widths(backbone, output_stride):
    _, levels = _level_shapes(backbone, output_stride)
    assert list(levels) == [f"P{k}" for k in range(1, len(CHANNELS[backbone]) + 1)]
    for k, width in enumerate(CHANNELS[backbone], start=1):
        stride = min(2**k, output_stride)
        assert tuple(levels[f"P{k}"].shape) == (None, 64 // stride, 64 // stride, width)


@pytest.mark.parametrize("backbone", ["resnet50", "mobilenetv2"])
def test_levels_are_the_named_keras_applications_layers(backbone):
    inputs, levels = _level_shapes(backbone, 16, channels=3)
    model = keras.Model(inputs, levels)
    for level, layer_name in backbones.APPLICATION_LEVELS[backbone].items():
        assert model.get_layer(layer_name).output is levels[level]


def test_dynamic_size_levels():
    inputs = keras.Input((None, None, 2))
    levels = backbones.build_backbone(inputs, "mobilenetv2", output_stride=8)
    model = keras.Model(inputs, levels)
    out = model(np.zeros((1, 96, 64, 2), "float32"))
    assert tuple(out["P2"].shape) == (1, 24, 16, 24)
    assert tuple(out["P5"].shape) == (1, 12, 8, 320)


def test_small_encoder_parameter_count_by_hand():
    inputs = keras.Input((64, 64, 1))
    levels = backbones.small_encoder(inputs)
    model = keras.Model(inputs, levels["P4"])

    def conv(k, cin, cout):  # convolution without bias, then batch norm (4 per channel)
        return k * k * cin * cout + 4 * cout

    expected = conv(3, 1, 32) + conv(3, 32, 32)
    for cin, cout in [(32, 64), (64, 128), (128, 256)]:
        expected += conv(1, cin, cout) + conv(3, cin, cout) + conv(3, cout, cout)
    assert model.count_params() == expected == 1_219_360
    assert model.count_params() < 1_500_000


def test_small_encoder_dilates_the_last_block_at_output_stride_8():
    inputs = keras.Input((64, 64, 1))
    model = keras.Model(inputs, backbones.small_encoder(inputs, output_stride=8)["P4"])
    assert model.get_layer("small_p3_conv1_conv").strides == (2, 2)
    assert model.get_layer("small_p4_conv1_conv").strides == (1, 1)
    assert model.get_layer("small_p4_conv1_conv").dilation_rate == (1, 1)
    assert model.get_layer("small_p4_conv2_conv").dilation_rate == (2, 2)
    assert model.get_layer("small_p4_shortcut_conv").strides == (1, 1)


def test_dilation_plan_resnet50():
    assert applications.dilation_plan("resnet50", 16) == {
        "conv5_block1_0_conv": {"strides": (1, 1)},
        "conv5_block1_1_conv": {"strides": (1, 1)},
        "conv5_block1_2_conv": {"dilation_rate": (2, 2)},
        "conv5_block2_2_conv": {"dilation_rate": (2, 2)},
        "conv5_block3_2_conv": {"dilation_rate": (2, 2)},
    }
    plan = applications.dilation_plan("resnet50", 8)
    assert len(plan) == 2 + 6 + 2 + 3
    assert plan["conv4_block6_2_conv"] == {"dilation_rate": (2, 2)}
    assert plan["conv5_block1_2_conv"] == {"dilation_rate": (4, 4)}


def test_dilation_plan_mobilenetv2():
    plan = applications.dilation_plan("mobilenetv2", 8)
    assert plan["block_6_pad"] == {"padding": ((1, 1), (1, 1))}
    assert plan["block_6_depthwise"] == {"strides": (1, 1), "dilation_rate": (1, 1)}
    assert [plan[f"block_{b}_depthwise"] for b in range(7, 13)] == [
        {"dilation_rate": (2, 2)}] * 6
    assert plan["block_13_pad"] == {"padding": ((2, 2), (2, 2))}
    assert plan["block_13_depthwise"] == {"strides": (1, 1), "dilation_rate": (2, 2)}
    assert [plan[f"block_{b}_depthwise"] for b in range(14, 17)] == [
        {"dilation_rate": (4, 4)}] * 3
    assert set(applications.dilation_plan("mobilenetv2", 16)) == {
        "block_13_pad", "block_13_depthwise", "block_14_depthwise", "block_15_depthwise",
        "block_16_depthwise",
    }


def test_adapt_input_kernel_by_hand():
    # Input channels (R, G, B) map to filters with weights [1, 2], [3, -1], [0, 4].
    kernel = np.array([1.0, 2.0, 3.0, -1.0, 0.0, 4.0], "float32").reshape(1, 1, 3, 2)
    np.testing.assert_allclose(applications.adapt_input_kernel(kernel, 1)[0, 0], [[4.0, 5.0]])
    np.testing.assert_allclose(
        applications.adapt_input_kernel(kernel, 2)[0, 0], [[2.0, 2.5], [2.0, 2.5]]
    )
    with pytest.raises(ValueError, match=r"`channels` must be a positive int. Received: "
                                         r"channels=0"):
        applications.adapt_input_kernel(kernel, 0)


def _randomize_batch_norm(model, seed=0):
    """Give every batch norm non-trivial statistics so that copying them matters."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights([
                rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.1, shape),
                rng.normal(0, 0.1, shape), rng.uniform(0.5, 1.5, shape),
            ])


def _features(model, backbone):
    names = backbones.APPLICATION_LEVELS[backbone].values()
    return keras.Model(model.input, [model.get_layer(n).output for n in names])


@pytest.mark.parametrize(
    "backbone,output_stride,channels",
    [("resnet50", 16, 1), ("mobilenetv2", 8, 3), ("mobilenetv2", 16, 2)],
)
def test_transfer_weights_gives_the_strided_network_features(backbone, output_stride,
                                                             channels):
    keras.utils.set_random_seed(0)
    source = backbones.applications_model(backbone, channels=3)
    _randomize_batch_norm(source)
    target = kerasseg.build("deeplab", input_shape=(64, 64, channels), num_classes=2,
                            backbone=backbone, output_stride=output_stride)
    copied = backbones.transfer_weights(source, target)

    # Every weighted layer of the network up to P5 is copied; only MobileNetV2's final
    # 1x1 convolution (not a pyramid level) is left out.
    expected = {layer.name for layer in source.layers if layer.weights}
    if backbone == "mobilenetv2":
        expected -= {"Conv_1", "Conv_1_bn"}
    assert set(copied) == expected
    first = "conv1_conv" if backbone == "resnet50" else "Conv1"
    source_kernel = source.get_layer(first).get_weights()[0]
    target_kernel = target.get_layer(first).get_weights()[0]
    if channels == 3:
        np.testing.assert_array_equal(target_kernel, source_kernel)
    else:
        np.testing.assert_allclose(
            target_kernel, applications.adapt_input_kernel(source_kernel, channels)
        )

    # A grey image repeated over the channels: the dilated network sampled every
    # 2**k / output_stride pixels reproduces the strided network's features.
    grey = np.random.default_rng(1).normal(size=(2, 64, 64, 1)).astype("float32")
    expected_features = _features(source, backbone).predict(np.repeat(grey, 3, -1), verbose=0)
    features = _features(target, backbone).predict(np.repeat(grey, channels, -1), verbose=0)
    for k, (want, got) in enumerate(zip(expected_features, features), start=1):
        step = max(1, 2**k // output_stride)
        offset = 0 if backbone == "resnet50" else step - 1
        sampled = got[:, offset::step, offset::step]
        assert sampled.shape == want.shape
        np.testing.assert_allclose(sampled, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_imagenet_weights_are_loaded_from_keras_applications(monkeypatch):
    """The ``"imagenet"`` path, with the download replaced by a random-weights model."""
    real = applications.applications_model
    calls = []

    def fake_applications_model(backbone, channels=3, weights=None):
        calls.append((backbone, channels, weights))
        if weights != "imagenet":
            return real(backbone, channels=channels, weights=None)
        keras.utils.set_random_seed(7)
        model = real(backbone, channels=3, weights=None)
        _randomize_batch_norm(model, seed=7)
        fake_applications_model.source = model
        return model

    monkeypatch.setattr(applications, "applications_model", fake_applications_model)
    model = kerasseg.build("deeplab", input_shape=(None, None, 1), num_classes=2,
                           backbone="mobilenetv2", backbone_weights="imagenet")
    assert ("mobilenetv2", 3, "imagenet") in calls
    source = fake_applications_model.source
    np.testing.assert_array_equal(
        model.get_layer("block_12_project_BN").get_weights()[2],
        source.get_layer("block_12_project_BN").get_weights()[2],
    )
    np.testing.assert_allclose(
        model.get_layer("Conv1").get_weights()[0],
        source.get_layer("Conv1").get_weights()[0].sum(axis=2, keepdims=True),
        rtol=1e-6,
    )


def test_transfer_weights_rejects_mismatched_shapes():
    def tiny(width):
        inputs = keras.Input((8, 8, 1))
        return keras.Model(inputs, keras.layers.Conv2D(width, 3, name="conv")(inputs))

    with pytest.raises(ValueError, match=r"Layer 'conv': weight shape \(3, 3, 1, 4\) of the "
                                         r"target does not match shape \(3, 3, 1, 2\)"):
        backbones.transfer_weights(tiny(2), tiny(4))


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: backbones.build_backbone(keras.Input((64, 64, 1)), "vgg16"),
         "`backbone` must be one of ['small', 'resnet50', 'mobilenetv2']. "
         "Received: backbone='vgg16'"),
        (lambda: backbones.build_backbone(keras.Input((64, 64, 1)), "small",
                                          weights="imagenet"),
         "`backbone_weights` must be one of [None] for backbone='small'. "
         "Received: backbone_weights='imagenet'"),
        (lambda: backbones.small_encoder(keras.Input((64, 64, 1)), output_stride=32),
         "`output_stride` must be one of [8, 16]. Received: output_stride=32"),
        (lambda: backbones.small_encoder(keras.Input((64, 64, 1)), filters=(8, 16)),
         "`filters` must be four positive ints. Received: filters=(8, 16)"),
        (lambda: backbones.applications_model("resnet50", channels=1, weights="imagenet"),
         "ImageNet weights need a 3-channel network"),
        (lambda: backbones.dilation_plan("resnet50", 4),
         "`output_stride` must be one of [8, 16]. Received: output_stride=4"),
    ],
)
def test_invalid_arguments(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
