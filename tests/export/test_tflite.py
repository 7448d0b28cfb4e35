"""TFLite export of every family and quantization mode, and the parity report's bars."""

import os

import numpy as np
import pytest

from kerasseg import export
from kerasseg.export.parity import run_tflite
from tests.export.helpers import CROP, build_small


def test_invalid_quantize_lists_modes(unet_model, tmp_path):
    with pytest.raises(ValueError) as info:
        export.tflite(unet_model, tmp_path / "m.tflite", quantize="int4")
    assert str(info.value) == (
        "`quantize` must be one of ['none', 'float16', 'dynamic', 'int8']. "
        "Received: quantize='int4'")


def test_int8_needs_representative_data(unet_model, tmp_path):
    with pytest.raises(ValueError, match="`quantize='int8'` needs `representative_data`"):
        export.tflite(unet_model, tmp_path / "m.tflite", quantize="int8")
    with pytest.raises(ValueError, match=r"must yield float32 batches \(N, 64, 64, 1\)"):
        export.tflite(unet_model, tmp_path / "m.tflite", quantize="int8",
                      representative_data=[np.zeros((2, 32, 32, 1), np.float32)])
    with pytest.raises(ValueError, match="yielded no images"):
        export.tflite(unet_model, tmp_path / "m.tflite", quantize="int8",
                      representative_data=iter([]))
    assert not (tmp_path / "m.tflite").exists()


def test_dynamic_size_model_needs_input_size(dynamic_model, tmp_path):
    with pytest.raises(ValueError, match="`input_size` must be given as"):
        export.tflite(dynamic_model, tmp_path / "d.tflite")
    with pytest.raises(ValueError, match="multiples of the model's stride 8"):
        export.tflite(dynamic_model, tmp_path / "d.tflite", input_size=(60, 60))
    path = export.tflite(dynamic_model, tmp_path / "d.tflite", input_size=(48, 32))
    images = np.random.RandomState(0).rand(2, 48, 32, 1).astype(np.float32)
    report = export.parity_report(dynamic_model, path, images)
    assert report["argmax_agreement"] >= 0.999
    assert report["max_abs_prob_diff"] < 1e-4


def test_mask_dice_hand_values():
    a = np.array([[0, 1], [1, 1]])
    b = np.array([[0, 1], [0, 1]])
    assert export.mask_dice(a, b, [1]) == pytest.approx(0.8)
    # Class 2 absent from both is skipped; class 1 perfect.
    assert export.mask_dice(b, b, [1, 2]) == 1.0
    assert export.mask_dice(np.zeros((2, 2)), np.zeros((2, 2)), [1]) == 1.0
    three_a = np.array([1, 1, 2, 2])
    three_b = np.array([1, 2, 2, 2])
    # Class 1: 2*1/(2+1); class 2: 2*2/(2+3).
    assert export.mask_dice(three_a, three_b, [1, 2]) == pytest.approx((2 / 3 + 4 / 5) / 2)


def _family_model(family, trained_unet):
    # The U-Net is the briefly trained one (1 sigmoid channel), so that its int8 bars mean
    # something; the other families have fixed random weights and 2 softmax classes.
    if family == "unet":
        return trained_unet
    return build_small(family, input_shape=(CROP, CROP, 1), num_classes=2)


@pytest.fixture(scope="module")
def convert_family(trained_unet, em_train, tmp_path_factory):
    """``convert_family(name) -> (model, {mode: path})``, each family converted once."""
    cache = {}
    _, calibration, _ = em_train

    def convert(family):
        if family not in cache:
            model = _family_model(family, trained_unet)
            folder = tmp_path_factory.mktemp(f"tflite_{family}")
            cache[family] = model, {
                mode: export.tflite(
                    model, folder / f"{family}_{mode}.tflite", quantize=mode,
                    representative_data=[calibration[:64]] if mode == "int8" else None)
                for mode in export.QUANTIZE_MODES
            }
        return cache[family]

    return convert


@pytest.fixture(params=["unet", "fcn8s", "deeplab"])
def converted(request, convert_family):
    """Every quantization mode of one family: ``(family, model, {mode: path})``."""
    return (request.param, *convert_family(request.param))


@pytest.mark.slow
def test_every_mode_is_written_with_the_documented_io(converted, em_test):
    family, model, paths = converted
    _, images, _ = em_test
    classes = model.output_shape[-1]
    sizes = {mode: os.path.getsize(path) for mode, path in paths.items()}
    for mode, path in paths.items():
        outputs, details = run_tflite(path, images[:2])
        assert outputs.shape == (2, CROP, CROP, classes)
        expected_dtype = "int8" if mode == "int8" else "float32"
        assert (details["input_dtype"], details["output_dtype"]) == (expected_dtype,) * 2
        assert outputs.min() >= 0.0 and outputs.max() <= 1.0  # probabilities
        if classes > 1:
            np.testing.assert_allclose(outputs.sum(axis=-1), 1.0, atol=0.02)  # softmax
    assert sizes["float16"] < 0.75 * sizes["none"]
    assert sizes["int8"] < 0.5 * sizes["none"]
    assert sizes["dynamic"] < 0.5 * sizes["none"]


@pytest.mark.slow
def test_float32_parity_bar(converted, em_test):
    family, model, paths = converted
    _, images, _ = em_test
    report = export.parity_report(model, paths["none"], images)
    assert report["argmax_agreement"] >= 0.999, report.table()
    assert report["max_abs_prob_diff"] < 1e-4, report.table()
    float16 = export.parity_report(model, paths["float16"], images)
    assert float16["argmax_agreement"] >= 0.99, float16.table()


@pytest.mark.slow
def test_int8_parity_bar_on_trained_unet(convert_family, em_test):
    model, paths = convert_family("unet")
    _, images, labels = em_test
    reports = {mode: export.parity_report(model, paths[mode], images, labels)
               for mode in ("none", "int8")}
    for mode, report in reports.items():
        print(f"\n{mode}\n{report}")
    # The model learned something: its own Dice against the membranes is far from 0.
    assert reports["none"]["dice_keras_vs_labels"] > 0.5
    assert reports["none"]["argmax_agreement"] >= 0.999
    assert reports["int8"]["dice_vs_keras"] >= 0.97
    assert reports["int8"]["input_dtype"] == "int8"
    assert abs(reports["int8"]["dice_tflite_vs_labels"]
               - reports["none"]["dice_keras_vs_labels"]) < 0.03
    table = reports["int8"].table()
    assert "Dice TFLite mask vs Keras mask" in table and "mask agreement (pixels)" in table
    assert str(reports["int8"]) == table


def test_parity_report_checks_inputs(unet_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        export.parity_report(unet_model, tmp_path / "missing.tflite",
                             np.zeros((1, CROP, CROP, 1), np.float32))
    path = export.tflite(unet_model, tmp_path / "u.tflite", quantize="dynamic")
    with pytest.raises(ValueError, match=r"`images` must be float32 \(N, 64, 64, 1\)"):
        export.parity_report(unet_model, path, np.zeros((1, 32, 32, 1), np.float32))
    with pytest.raises(ValueError, match=r"`labels` must have shape \(1, 64, 64\)"):
        export.parity_report(unet_model, path, np.zeros((1, CROP, CROP, 1), np.float32),
                             labels=np.zeros((1, 32, 32)))


def test_a_mixed_precision_model_exports_in_float32(tmp_path):
    """Training plans mixed bfloat16; its saved models must still convert, in float32."""
    import keras

    import kerasseg
    from kerasseg.modelfile import float32_model

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = kerasseg.build("unet", input_shape=(32, 32, 1), num_classes=2, depth=2,
                               base_filters=4)
    finally:
        keras.config.set_dtype_policy("float32")
    assert mixed.layers[1].compute_dtype == "bfloat16"
    path = export.tflite(mixed, tmp_path / "mixed.tflite")
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype(np.float32)
    outputs, _ = run_tflite(path, images)
    expected = keras.ops.convert_to_numpy(
        keras.ops.softmax(float32_model(mixed)(images, training=False)))
    np.testing.assert_allclose(outputs, expected, atol=1e-4)
