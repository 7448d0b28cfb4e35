"""examples/train_promise12.py end to end on a PROMISE12-layout tree of real MRI volumes.

The tree is written in the test from bundled hippocampus MRI cases with SimpleITK, in
PROMISE12's layout and naming, with anisotropic spacing like prostate MRI; the masks are
made binary (hippocampus vs background) as PROMISE12's are (prostate vs background).
"""

import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest
import SimpleITK as sitk

from kerasseg.data import load_dataset
from kerasseg.sample import hippocampus_path

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "train_promise12.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("train_promise12", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_promise12_tree(root, n_train=8, n_test=1):
    dataset = load_dataset(hippocampus_path())
    for index in range(n_train + n_test):
        image = sitk.ReadImage(dataset[index].image_paths[0])
        image.SetSpacing((0.5, 0.5, 3.0))
        image.SetOrigin((-20.0, 12.0, 4.0 * index))
        test = index >= n_train
        folder = root / ("TestData" if test else f"TrainingData_Part{1 + index % 3}")
        folder.mkdir(parents=True, exist_ok=True)
        case = f"Case{index - n_train if test else index:02d}"
        sitk.WriteImage(image, str(folder / f"{case}.mhd"))
        if not test:
            label = sitk.ReadImage(dataset[index].label_path)
            binary = sitk.GetImageFromArray((sitk.GetArrayFromImage(label) > 0).astype(np.uint8))
            binary.CopyInformation(image)
            sitk.WriteImage(binary, str(folder / f"{case}_segmentation.mhd"))
    return root


def test_without_data_it_explains_where_to_get_promise12(capsys):
    code = _load_example().main([])
    assert code == 2
    err = capsys.readouterr().err
    assert "promise12.grand-challenge.org" in err and "Case00_segmentation.mhd" in err


def test_wrong_folder_is_explained(tmp_path, capsys):
    assert _load_example().main(["--data-dir", str(tmp_path)]) == 2
    assert "no CaseNN.mhd files" in capsys.readouterr().err


@pytest.mark.slow
def test_runs_end_to_end_on_a_promise12_tree(tmp_path):
    data = _write_promise12_tree(tmp_path / "PROMISE12")
    output = tmp_path / "run"
    code = _load_example().main([
        "--data-dir", str(data), "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4",
        "--model-option", "depth=2", "--model-option", "base_filters=4",
        "--target-spacing", "1.0,1.0,", "--output", str(output),
    ])
    assert code == 0
    stored = json.loads((output / "run.json").read_text())
    assert stored["data"]["format"] == "promise12"
    # Planned for 0.5 x 0.5 x 3 mm volumes: 2.5-D across the coarse axis 0, one neighbour on
    # each side, so three channels.
    assert (stored["settings"]["mode"], stored["settings"]["context"]) == ("2.5d", 1)
    assert stored["settings"]["slice_axis"] == 0
    assert stored["info"]["channels"] == 3
    assert (output / "plan.json").exists()
    assert len(stored["split"]["val"]) == 2  # 20% of 8 cases, by case
    report = json.loads((output / "validation.json").read_text())
    assert len(report["cases"]) == 2
    # Validation is evaluated at the original 0.5 x 0.5 x 3 mm geometry.
    assert report["cases"][0]["spacing_zyx"] == [3.0, 0.5, 0.5]
    prediction = sitk.ReadImage(str(output / "test_predictions" / "Case00_segmentation.mhd"))
    assert prediction.GetSpacing() == pytest.approx((0.5, 0.5, 3.0))
    assert (output / "export" / "promise12" / "1" / "saved_model.pb").exists()
    assert (output / "promise12.tflite").stat().st_size > 0


@pytest.mark.slow
def test_mode_3d_trains_unet3d_end_to_end_on_a_promise12_tree(tmp_path, capsys):
    data = _write_promise12_tree(tmp_path / "PROMISE12")
    output = tmp_path / "run3d"
    code = _load_example().main([
        "--data-dir", str(data), "--mode", "3d", "--epochs", "1", "--steps-per-epoch", "2",
        "--batch-size", "2", "--model-option", "depth=2", "--model-option", "base_filters=4",
        "--target-spacing", "1.0,1.0,", "--output", str(output),
    ])
    assert code == 0
    out = capsys.readouterr().out
    assert "--mode 3d without --model: training unet3d" in out
    stored = json.loads((output / "run.json").read_text())
    assert stored["settings"]["mode"] == "3d"
    assert stored["info"]["model"] == "unet3d"
    assert len(stored["split"]["val"]) == 2
    report = json.loads((output / "validation.json").read_text())
    assert len(report["cases"]) == 2
    assert report["cases"][0]["spacing_zyx"] == [3.0, 0.5, 0.5]
    prediction = sitk.ReadImage(str(output / "test_predictions" / "Case00_segmentation.mhd"))
    assert prediction.GetSpacing() == pytest.approx((0.5, 0.5, 3.0))
    source = sitk.ReadImage(str(data / "TestData" / "Case00.mhd"))
    assert prediction.GetSize() == source.GetSize()
    assert (output / "export" / "promise12" / "1" / "saved_model.pb").exists()
    tflite = output / "promise12.tflite"
    assert tflite.stat().st_size > 0
    # The TFLite file takes one training-patch window (1, D, H, W, 1); its parity was printed.
    from kerasseg.export.parity import run_tflite

    patch = tuple(stored["patch_size"])
    probabilities, _ = run_tflite(str(tflite), np.zeros((1, *patch, 1), np.float32))
    assert probabilities.shape == (1, *patch, 2)
    assert "mask agreement (pixels)" in out
