"""TFLite export of the 3-D families (unet3d, vnet): one window in, parity on real MRI
windows, the exact replacement of MaxPooling3D, and the refusals (int8, ops without kernels).
"""

import json
import os

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg import export
from kerasseg.export.parity import run_tflite
from kerasseg.export.tflite import builtin_max_pooling
from tests import small

WINDOW = (8, 16, 16)
FAMILIES = ("unet3d", "vnet")


@pytest.fixture(scope="module")
def mri_windows(sample):
    """Six z-scored (8, 16, 16, 1) windows of real hippocampus MRI (fixed seed)."""
    rng = np.random.RandomState(0)
    windows = []
    for index in range(3):
        image = sample[index].load().image.astype(np.float32)
        image = (image - image.mean()) / max(float(image.std()), 1e-8)
        for _ in range(2):
            start = [rng.randint(0, n - w + 1) for n, w in zip(image.shape[:3], WINDOW)]
            windows.append(image[tuple(slice(s, s + w) for s, w in zip(start, WINDOW))])
    return np.stack(windows)


def _tiny(family, **options):
    return small.build_small(family, WINDOW + (1,), 2, seed=0, **options)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """``converted(family) -> (model, {mode: path})`` for "none" and "float16", once each."""
    cache = {}

    def convert(family):
        if family not in cache:
            model = _tiny(family)
            folder = tmp_path_factory.mktemp(f"tflite3d_{family}")
            cache[family] = model, {
                mode: export.tflite(model, folder / f"{family}_{mode}.tflite", quantize=mode)
                for mode in ("none", "float16")}
        return cache[family]

    return convert


@pytest.mark.parametrize("family", FAMILIES)
def test_3d_float_exports_take_one_window_and_match_keras(family, converted, mri_windows):
    model, paths = converted(family)
    for mode, path in paths.items():
        outputs, details = run_tflite(path, mri_windows[:2])
        assert outputs.shape == (2, *WINDOW, 2)
        assert (details["input_dtype"], details["output_dtype"]) == ("float32", "float32")
        np.testing.assert_allclose(outputs.sum(axis=-1), 1.0, atol=1e-3)  # softmax
    none = export.parity_report(model, paths["none"], mri_windows)
    float16 = export.parity_report(model, paths["float16"], mri_windows)
    print(f"\n{family} float32\n{none}\n{family} float16\n{float16}")
    assert none["num_images"] == 6
    assert none["argmax_agreement"] >= 0.999, none.table()
    assert none["max_abs_prob_diff"] < 1e-4, none.table()
    assert float16["argmax_agreement"] >= 0.99, float16.table()
    assert float16["max_abs_prob_diff"] < 0.02, float16.table()
    assert os.path.getsize(paths["float16"]) < 0.75 * os.path.getsize(paths["none"])


def test_dynamic_3d_model_is_exported_at_the_given_window(mri_windows, tmp_path):
    model = small.build_small("unet3d", (None, None, None, 1), 2, seed=1)
    with pytest.raises(ValueError, match=r"pass input_size=\(depth, height, width\)"):
        export.tflite(model, tmp_path / "d.tflite")
    path = export.tflite(model, tmp_path / "d.tflite", input_size=WINDOW)
    report = export.parity_report(model, path, mri_windows[:2])
    assert report["argmax_agreement"] >= 0.999 and report["max_abs_prob_diff"] < 1e-4


@pytest.mark.parametrize("pool", [(2, 2, 2), (1, 2, 2), (2, 1, 1)])
def test_max_pooling_by_builtins_is_exact(pool):
    inputs = keras.Input((None, None, None, 3))
    pooled = keras.layers.MaxPooling3D(pool)(inputs)
    model = keras.Model(inputs, keras.layers.Conv3D(2, 1)(pooled))
    replaced = builtin_max_pooling(model)
    assert not any(isinstance(layer, keras.layers.MaxPooling3D) for layer in replaced.layers)
    x = np.random.default_rng(0).normal(size=(2, 4, 6, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(replaced(x)), np.asarray(model(x)))
    # Shared layers: the replacement has the model's weights, not copies.
    assert replaced.layers[-1] is model.layers[-1]
    plain = keras.Model(inputs, keras.layers.Conv3D(2, 1)(inputs))
    assert builtin_max_pooling(plain) is plain


@pytest.mark.parametrize("family", FAMILIES)
def test_int8_of_a_3d_family_is_refused_naming_the_3d_convolutions(family, mri_windows,
                                                                   tmp_path):
    with pytest.raises(ValueError) as info:
        export.tflite(_tiny(family), tmp_path / "q.tflite", quantize="int8",
                      representative_data=[mri_windows])
    message = str(info.value)
    assert message.startswith(
        f"int8 is not supported for the 3-D model '{family}': TFLite has no int8 kernel for "
        "CONV_3D, CONV_3D_TRANSPOSE (float32 only), so the converter keeps them")
    assert message.endswith(
        "in float32 between dequantize and quantize ops: the file would be neither "
        "full-integer nor smaller than float32. Export it with quantize='none' or 'float16'.")
    assert not (tmp_path / "q.tflite").exists()


def test_dynamic_range_of_a_3d_family_is_refused(tmp_path):
    with pytest.raises(ValueError) as info:
        export.tflite(_tiny("unet3d"), tmp_path / "d.tflite", quantize="dynamic")
    assert str(info.value) == (
        "`quantize='dynamic'` is not supported for the 3-D model 'unet3d': TFLite has no "
        "dynamic-range (int8 weight) kernel for CONV_3D, CONV_3D_TRANSPOSE, so no weight "
        "would be quantized and the file would be the float32 one. Export it with "
        "quantize='none' or 'float16'.")
    assert not (tmp_path / "d.tflite").exists()


def test_int8_calibration_windows_are_checked(mri_windows, tmp_path):
    with pytest.raises(ValueError, match=r"must yield float32 batches \(N, 8, 16, 16, 1\)"):
        export.tflite(_tiny("vnet"), tmp_path / "q.tflite", quantize="int8",
                      representative_data=[mri_windows[:, :4]])


def test_a_3d_op_without_a_tflite_kernel_is_named(mri_windows, tmp_path):
    inputs = keras.Input(WINDOW + (1,))
    x = keras.layers.Conv3D(2, 3, padding="same")(inputs)
    x = keras.layers.UpSampling3D(2)(keras.layers.AveragePooling3D(2)(x))
    model = keras.Model(inputs, x, name="avgpool3d")
    with pytest.raises(ValueError) as info:
        export.tflite(model, tmp_path / "a.tflite")
    assert str(info.value) == (
        "TFLite export (quantize='none') is not supported for the 3-D model 'avgpool3d': "
        "AvgPool3D has no TFLite builtin kernel. Replace the layer by one TFLite runs (e.g. "
        "a strided convolution in place of a 3-D pooling) or export a SavedModel.")
    with pytest.raises(ValueError, match="^int8 is not supported for the 3-D model "
                                         "'avgpool3d': AvgPool3D has no TFLite builtin kernel"):
        export.tflite(model, tmp_path / "a.tflite", quantize="int8",
                      representative_data=[mri_windows])


@pytest.fixture(scope="module")
def trained3d(sample, tmp_path_factory):
    """A tiny unet3d trained for 2 steps on real cases (mode 3d)."""
    output = tmp_path_factory.mktemp("trained3d")
    return kerasseg.train(sample.subset(list(range(6))), "unet3d", output_dir=output,
                          epochs=1, steps_per_epoch=2, batch_size=2, verbose=0, plan=False,
                          evaluate=False, model_options={"depth": 2, "base_filters": 4})


def test_export_trained_3d_converts_at_the_patch_and_reports_parity(trained3d, sample,
                                                                    tmp_path):
    from kerasseg.deploy import export_trained
    from kerasseg.inference import Predictor

    predictor = Predictor(trained3d.best_model)
    patch = tuple(predictor.info.patch_size)
    assert predictor.info.preprocessing.mode == "3d"
    data = sample.subset(list(range(6)))
    results = {mode: export_trained(predictor, tflite_path=tmp_path / f"m_{mode}.tflite",
                                    quantize=mode, data=data)
               for mode in ("none", "float16")}
    for mode, result in results.items():
        report = result["parity"]
        print(f"\ntrained unet3d {mode}\n{report}")
        outputs, _ = run_tflite(result["tflite"], np.zeros((1, *patch, 1), np.float32))
        assert outputs.shape == (1, *patch, 3)
        # Windows tiling the data set's cases, prepared as in training.
        assert report["num_images"] >= 6
        assert report["argmax_agreement"] >= (0.999 if mode == "none" else 0.99), report.table()
    assert results["none"]["parity"]["max_abs_prob_diff"] < 1e-3
    with pytest.raises(ValueError, match="^int8 is not supported for the 3-D model 'unet3d'"):
        export_trained(predictor, tflite_path=tmp_path / "q.tflite", quantize="int8",
                       data=data)
    assert json.loads(json.dumps(dict(results["none"]["parity"])))  # plain numbers
