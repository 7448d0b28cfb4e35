"""DeepLabv3+ specifics: shapes per backbone and stride, widths and rates, parameter
count by hand, the image-pooling broadcast, option validation and TFLite conversion.

The generic checks (training step, config and ``.keras`` round trips) are in
``test_all_models.py``.
"""

import numpy as np
import pytest
import keras
import tensorflow as tf

import kerasseg
from kerasseg.models import deeplab
from kerasseg.models.deeplab import SpatialBroadcast


def _batch(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize(
    "backbone,output_stride,channels",
    [
        ("small", 8, 1), ("small", 8, 3), ("small", 16, 1), ("small", 16, 3),
        ("mobilenetv2", 8, 1), ("mobilenetv2", 16, 3),
        ("resnet50", 8, 1), ("resnet50", 16, 3),
    ],
)
def test_output_shape_any_size(backbone, output_stride, channels):
    model = kerasseg.build("deeplab", input_shape=(None, None, channels), num_classes=3,
                           backbone=backbone, output_stride=output_stride)
    assert model.input_shape == (None, None, None, channels)
    assert model.name == f"deeplabv3plus_{backbone}"
    for height, width in [(64, 64), (96, 96)]:
        out = model(_batch((1, height, width, channels)), training=False)
        assert tuple(out.shape) == (1, height, width, 3)
        assert np.all(np.isfinite(out))


def test_alias_builds_the_same_model():
    a = kerasseg.build("deeplab", input_shape=(64, 64, 1))
    b = kerasseg.build("deeplabv3plus", input_shape=(64, 64, 1))
    assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers]


def _rates(model):
    names = sorted(layer.name for layer in model.layers if "_atrous" in layer.name
                   and layer.name.endswith("_conv"))
    return tuple(model.get_layer(name).dilation_rate[0] for name in names)


@pytest.mark.parametrize(
    "backbone,output_stride,rates",
    [("small", 16, (1, 2, 3)), ("small", 8, (2, 4, 6)),
     ("mobilenetv2", 16, (6, 12, 18)), ("mobilenetv2", 8, (12, 24, 36))],
)
def test_default_atrous_rates(backbone, output_stride, rates):
    model = kerasseg.build("deeplab", input_shape=(None, None, 3), backbone=backbone,
                           output_stride=output_stride)
    assert _rates(model) == rates


def test_custom_rates_and_widths():
    model = kerasseg.build("deeplab", input_shape=(64, 64, 1), atrous_rates=(3, 5),
                           aspp_filters=40, decoder_filters=24, low_level_filters=16)
    assert _rates(model) == (3, 5)
    assert model.get_layer("aspp_concat").output.shape[-1] == 40 * 4  # 1x1, 2 rates, pool
    assert model.get_layer("aspp_project_conv").filters == 40
    assert model.get_layer("decoder_low_level_conv").filters == 16
    assert model.get_layer("decoder_conv2_conv").filters == 24
    # The default decoder width follows the ASPP width; the small encoder's ASPP is 128.
    default = kerasseg.build("deeplab", input_shape=(64, 64, 1))
    assert default.get_layer("aspp_project_conv").filters == 128
    assert default.get_layer("decoder_conv2_conv").filters == 128


def _conv(k, cin, cout):
    """A convolution without bias followed by batch norm (4 weights per channel)."""
    return k * k * cin * cout + 4 * cout


def test_parameter_count_by_hand():
    classes, f, low, c = 3, 128, 48, 1
    model = kerasseg.build("deeplab", input_shape=(64, 64, c), num_classes=classes)
    encoder = _conv(3, c, 32) + _conv(3, 32, 32)
    for cin, cout in [(32, 64), (64, 128), (128, 256)]:
        encoder += _conv(1, cin, cout) + _conv(3, cin, cout) + _conv(3, cout, cout)
    aspp = _conv(1, 256, f) + 3 * _conv(3, 256, f) + _conv(1, 256, f) + _conv(1, 5 * f, f)
    decoder = _conv(1, 64, low) + _conv(3, f + low, f) + _conv(3, f, f)
    head = f * classes + classes
    assert model.count_params() == encoder + aspp + decoder + head == 2_609_507
    assert encoder < 1_500_000


def test_image_pooling_off_removes_the_branch():
    on = kerasseg.build("deeplab", input_shape=(64, 64, 1), aspp_filters=32)
    off = kerasseg.build("deeplab", input_shape=(64, 64, 1), aspp_filters=32,
                         image_pooling=False)
    assert "aspp_pool_broadcast" not in [layer.name for layer in off.layers]
    # The pooling branch's 1x1 conv + norm and its rows of the projection.
    assert on.count_params() - off.count_params() == _conv(1, 256, 32) + 32 * 32


@pytest.mark.parametrize("image_pooling", [True, False])
def test_image_pooling_branch_carries_global_context(image_pooling):
    """A change in one corner reaches the far corner only through image pooling."""
    keras.utils.set_random_seed(0)
    model = kerasseg.build("deeplab", input_shape=(256, 256, 1), atrous_rates=(1,),
                           aspp_filters=16, dropout=0.0, image_pooling=image_pooling)
    x = _batch((1, 256, 256, 1))
    y = x.copy()
    y[:, 224:, 224:] += 3.0
    far = np.abs(model.predict(x, verbose=0) - model.predict(y, verbose=0))[0, :16, :16]
    if image_pooling:
        assert far.min() > 0
    else:
        assert far.max() == 0


def test_spatial_broadcast_by_hand():
    features = np.array([1.0, 2.0, 3.0, -1.0, 0.5, 0.0], "float32").reshape(2, 1, 1, 3)
    out = np.asarray(SpatialBroadcast()([features, np.zeros((2, 4, 5, 7), "float32")]))
    assert out.shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(out[0, 3, 4], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(out[1, 0, 2], [-1.0, 0.5, 0.0])
    layer = SpatialBroadcast(name="b")
    assert SpatialBroadcast.from_config(layer.get_config()).name == "b"
    assert keras.saving.get_registered_name(SpatialBroadcast) == "kerasseg>SpatialBroadcast"
    assert layer.compute_output_shape(((None, 1, 1, 3), (None, None, 8, 7))) == (
        None, None, 8, 3)


@pytest.mark.parametrize("normalization", ["group", "instance", "none"])
def test_normalizations(normalization):
    model = kerasseg.build("deeplab", input_shape=(64, 64, 2), num_classes=2,
                           aspp_filters=16, normalization=normalization)
    names = [layer.name for layer in model.layers]
    assert ("small_stem1_norm" in names) == (normalization != "none")
    # The image-pooling branch sees one pixel: no instance normalization there.
    assert ("aspp_pool_proj_norm" in names) == (normalization == "group")
    out = model.predict(_batch((2, 64, 64, 2)), verbose=0)
    assert out.shape == (2, 64, 64, 2) and np.all(np.isfinite(out))


def test_mobilenetv2_keras_file_round_trip(tmp_path):
    """The rewritten strides, dilations and paddings survive a ``.keras`` file."""
    model = kerasseg.build("deeplab", input_shape=(64, 64, 1), backbone="mobilenetv2",
                           output_stride=8)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.get_layer("block_14_depthwise").dilation_rate == (4, 4)
    assert reloaded.get_layer("block_13_depthwise").strides == (1, 1)
    assert tuple(map(tuple, reloaded.get_layer("block_13_pad").padding)) == ((2, 2), (2, 2))
    x = _batch((1, 64, 64, 1))
    np.testing.assert_allclose(reloaded(x, training=False), model(x, training=False),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"output_stride": 32},
         "`output_stride` must be one of [8, 16]. Received: output_stride=32"),
        ({"backbone": "vgg"}, "`backbone` must be one of ['small', 'resnet50', 'mobilenetv2']. "
                              "Received: backbone='vgg'"),
        ({"backbone_weights": "imagenet"},
         "`backbone_weights` must be one of [None] for backbone='small'. "
         "Received: backbone_weights='imagenet'"),
        ({"backbone": "resnet50", "backbone_weights": "coco"},
         "`backbone_weights` must be one of [None, 'imagenet'] for backbone='resnet50'. "
         "Received: backbone_weights='coco'"),
        ({"atrous_rates": (6, 0)},
         "`atrous_rates` must be None or a non-empty tuple of positive ints. "
         "Received: atrous_rates=(6, 0)"),
        ({"atrous_rates": ()}, "`atrous_rates` must be None or a non-empty tuple"),
        ({"aspp_filters": 0}, "`aspp_filters` must be a positive int. Received: aspp_filters=0"),
        ({"decoder_filters": 1.5}, "`decoder_filters` must be a positive int. "
                                   "Received: decoder_filters=1.5"),
        ({"low_level_filters": -1}, "`low_level_filters` must be a positive int"),
        ({"image_pooling": "yes"}, "`image_pooling` must be one of [True, False]. "
                                   "Received: image_pooling='yes'"),
        ({"normalization": "layer"}, "`normalization` must be one of ['batch', 'group', "
                                     "'instance', 'none']. Received: normalization='layer'"),
        ({"dropout": 1.0}, "`dropout` must be in [0, 1). Received: dropout=1.0"),
        ({"output_activation": "relu"}, "`output_activation` must be one of"),
        ({"input_shape": (72, 72, 1)},
         "`input_shape` height and width must be multiples of output_stride=16. "
         "Received: input_shape=(72, 72, 1)"),
    ],
)
def test_invalid_options(options, message):
    with pytest.raises(ValueError) as info:
        kerasseg.build("deeplab", **options)
    assert message in str(info.value)


def test_model_name_option():
    # `name` is also build()'s first argument, so the builder is called directly here.
    model = deeplab.build_deeplab((64, 64, 1), 2, aspp_filters=16, name="hippocampus")
    assert model.name == "hippocampus"
    with pytest.raises(ValueError, match=r"`name` must be None or a string. Received: name=3"):
        deeplab.build_deeplab((64, 64, 1), 2, name=3)


def test_size_multiple_of_output_stride_8_is_accepted():
    model = kerasseg.build("deeplab", input_shape=(72, 40, 1), output_stride=8,
                           aspp_filters=16)
    assert model.output_shape == (None, 72, 40, 2)


def _tflite_run(model, x):
    from ai_edge_litert.interpreter import Interpreter

    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize(
    "backbone,output_stride,channels",
    [("small", 16, 1), pytest.param("mobilenetv2", 8, 3, marks=pytest.mark.slow)],
)
def test_converts_to_tflite(backbone, output_stride, channels):
    keras.utils.set_random_seed(0)
    model = kerasseg.build("deeplab", input_shape=(64, 64, channels), num_classes=3,
                           backbone=backbone, output_stride=output_stride,
                           output_activation="softmax")
    x = _batch((1, 64, 64, channels))
    got = _tflite_run(model, x)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-4)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)


def _hippocampus_slices(root, case_ids):
    """Axial slices with foreground, z-scored per volume, zero-padded to 64x64."""
    import SimpleITK as sitk

    images, labels = [], []
    for case in case_ids:
        read = lambda folder: sitk.GetArrayFromImage(  # noqa: E731
            sitk.ReadImage(str(root / folder / f"hippocampus_{case:03d}.nii.gz")))
        volume, label = read("imagesTr").astype("float32"), read("labelsTr").astype("int32")
        volume = (volume - volume.mean()) / (volume.std() + 1e-6)
        for image, mask in zip(volume, label):
            if mask.any():
                padded = np.zeros((2, 64, 64), "float32")
                padded[0, :image.shape[0], :image.shape[1]] = image
                padded[1, :mask.shape[0], :mask.shape[1]] = mask
                images.append(padded[0])
                labels.append(padded[1])
    return np.stack(images)[..., None], np.stack(labels).astype("int32")


@pytest.mark.slow
def test_small_backbone_learns_hippocampus(sample_dir):
    """164 steps on slices of 24 real MRI cases of the sample; Dice measured on 8 other cases."""
    case_ids = sorted(int(p.name[12:15]) for p in (sample_dir / "imagesTr").glob("*.nii.gz"))
    x_train, y_train = _hippocampus_slices(sample_dir, case_ids[:24])
    x_val, y_val = _hippocampus_slices(sample_dir, case_ids[-8:])
    keras.utils.set_random_seed(0)
    model = kerasseg.build("deeplab", input_shape=(64, 64, 1), num_classes=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, batch_size=8, epochs=2, verbose=0)
    pred = model.predict(x_val, batch_size=64, verbose=0).argmax(-1)
    for label in (1, 2):  # anterior, posterior hippocampus
        a, b = pred == label, y_val == label
        dice = 2 * np.sum(a & b) / (np.sum(a) + np.sum(b))
        assert dice > 0.5, (label, dice)
