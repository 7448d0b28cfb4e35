"""The `kerasseg` command: train, evaluate, predict (formats, names, geometry)."""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

from kerasseg.cli import main
from kerasseg.data import load_dataset
from kerasseg.sample import hippocampus_path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    output = tmp_path_factory.mktemp("cli_run")
    code = main(["train", "--data", hippocampus_path(), "--model", "unet", "--epochs", "1",
                 "--steps-per-epoch", "2", "--batch-size", "4", "--model-option", "depth=2",
                 "--model-option", "base_filters=4", "--output", str(output), "--verbose", "0",
                 "--no-evaluate", "--val-fraction", "0.1"])
    assert code == 0
    return output


def test_train_writes_the_run(trained):
    assert (trained / "best.keras").exists()
    stored = json.loads((trained / "run.json").read_text())
    assert stored["settings"]["model_options"] == {"depth": 2, "base_filters": 4}
    assert len(stored["split"]["val"]) == 5  # round(0.1 * 52)


def test_evaluate_writes_report_and_figures(trained, tmp_path, capsys):
    report = tmp_path / "report.json"
    code = main(["evaluate", "--model", str(trained / "best.keras"), "--data",
                 hippocampus_path(), "--report", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    assert "the run's validation cases" in out
    data = json.loads(report.read_text())
    stored = json.loads((trained / "run.json").read_text())
    assert sorted(c["case_id"] for c in data["cases"]) == sorted(stored["split"]["val"])
    for name in ("report.csv", "report_cases.png", "report_training.png"):
        assert (tmp_path / name).stat().st_size > 0, name


def test_predict_nifti_keeps_name_shape_and_geometry(trained, tmp_path):
    dataset = load_dataset(hippocampus_path())
    source = dataset[0].image_paths[0]
    code = main(["predict", "--model", str(trained / "best.keras"), "--input", source,
                 "--output", str(tmp_path), "--tta"])
    assert code == 0
    written = tmp_path / os.path.basename(source)
    prediction, original = sitk.ReadImage(str(written)), sitk.ReadImage(source)
    assert prediction.GetSize() == original.GetSize()
    assert prediction.GetSpacing() == pytest.approx(original.GetSpacing())
    assert prediction.GetOrigin() == pytest.approx(original.GetOrigin())
    assert set(np.unique(sitk.GetArrayFromImage(prediction))) <= {0, 1, 2}


def test_predict_promise12_names_and_geometry(trained, tmp_path):
    source = load_dataset(hippocampus_path())[1].image_paths[0]
    image = sitk.ReadImage(source)
    image.SetSpacing((0.6, 0.6, 3.6))
    image.SetOrigin((-10.0, 5.0, 2.5))
    folder = tmp_path / "TestData"
    folder.mkdir()
    sitk.WriteImage(image, str(folder / "Case05.mhd"))
    code = main(["predict", "--model", str(trained / "best.keras"), "--input", str(folder),
                 "--output", str(tmp_path / "out")])
    assert code == 0
    written = tmp_path / "out" / "Case05_segmentation.mhd"
    assert written.exists() and (tmp_path / "out" / "Case05_segmentation.raw").exists()
    prediction = sitk.ReadImage(str(written))
    assert prediction.GetSpacing() == pytest.approx((0.6, 0.6, 3.6))
    assert prediction.GetOrigin() == pytest.approx((-10.0, 5.0, 2.5))
    assert prediction.GetSize() == image.GetSize()


def test_predict_reports_bad_input(trained, tmp_path, capsys):
    code = main(["predict", "--model", str(trained / "best.keras"), "--input",
                 str(tmp_path / "missing"), "--output", str(tmp_path / "out")])
    assert code == 1
    assert "missing" in capsys.readouterr().err


def test_train_refuses_existing_run(trained, capsys):
    code = main(["train", "--data", hippocampus_path(), "--output", str(trained),
                 "--epochs", "1", "--verbose", "0"])
    assert code == 1
    assert "--resume" in capsys.readouterr().err
