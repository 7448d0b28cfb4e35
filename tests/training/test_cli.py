"""The `kerasseg` command: train, evaluate, predict (formats, names, geometry)."""

import json
import os
import re

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
                 "--no-evaluate", "--val-fraction", "0.1", "--val-every", "2",
                 "--augment", "default"])
    assert code == 0
    return output


def test_train_writes_the_run(trained):
    assert (trained / "best.keras").exists()
    stored = json.loads((trained / "run.json").read_text())
    # Given options stay; the plan adds the normalization layers it chose.
    assert stored["settings"]["model_options"] == {"depth": 2, "base_filters": 4,
                                                   "normalization": "instance"}
    plan = json.loads((trained / "plan.json").read_text())
    rows = {row["name"]: row for row in plan["rows"]}
    assert rows["epochs"]["given"] and rows["epochs"]["value"] == 1
    assert not rows["mode"]["given"] and stored["settings"]["mode"] == rows["mode"]["value"]
    assert plan["fingerprint"]["cases"] == 52
    assert stored["settings"]["val_every"] == 2  # epoch 1 is the last, so it validates
    assert len(stored["split"]["val"]) == 5  # round(0.1 * 52)
    assert stored["info"]["flip_axes"] == [0, 1]  # the default preset flips rows and columns


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


def test_shift_step_option_of_evaluate_and_predict(trained, tmp_path, capsys):
    from kerasseg.inference import Predictor, shift_grid

    model = str(trained / "best.keras")
    dataset = load_dataset(hippocampus_path())
    case = dataset[0]
    for step, expected in ((None, [[0, 0]]), (2, [[0, 0], [0, 2], [2, 0], [2, 2]])):
        report = tmp_path / f"report{step}.json"
        option = [] if step is None else ["--shift-step", str(step)]
        assert main(["evaluate", "--model", model, "--data", hippocampus_path(), "--report",
                     str(report), "--cases", case.case_id] + option) == 0
        assert json.loads(report.read_text())["shifts"] == expected
    assert main(["predict", "--model", model, "--input", case.image_paths[0], "--output",
                 str(tmp_path / "out"), "--shift-step", "2"]) == 0
    written = sitk.GetArrayFromImage(
        sitk.ReadImage(str(tmp_path / "out" / os.path.basename(case.image_paths[0]))))
    direct = Predictor(model, shifts=shift_grid(2)).predict_case(case)
    np.testing.assert_array_equal(written, direct)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["predict", "--model", model, "--input", case.image_paths[0], "--output",
              str(tmp_path / "out"), "--shift-step", "-2"])
    assert "--shift-step must be a whole number of pixels, 0 or more" in capsys.readouterr().err


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


def _em_folder(root, em, count=3):
    """Three real EM crops (64x64) whose masks store cells as 255 and membranes as 0."""
    import cv2

    (root / "image").mkdir(parents=True)
    (root / "label").mkdir()
    for index in range(count):
        image = cv2.imread(os.path.join(em, "image", f"{index}.png"), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(os.path.join(em, "label", f"{index}.png"), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(root / "image" / f"{index}.png"), image[:64, :64])
        cv2.imwrite(str(root / "label" / f"{index}.png"), mask[:64, :64])
    return root


def test_train_with_class_names_and_label_values_writes_masks_back(tmp_path, isbi_dir):
    data = _em_folder(tmp_path / "em", isbi_dir)
    assert main(["train", "--data", str(data), "--output", str(tmp_path / "run"),
                 "--class-names", "cell,membrane", "--label-values", "255,0",
                 "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2",
                 "--model-option", "depth=1", "--model-option", "base_filters=2",
                 "--verbose", "0", "--no-evaluate"]) == 0
    info = json.load(open(tmp_path / "run" / "run.json"))["info"]
    assert info["class_names"] == ["cell", "membrane"] and info["label_values"] == [255, 0]
    # Predictions are written in the masks' own convention: class 0 (cell) as 255.
    from kerasseg.inference import Predictor

    predictor = Predictor(str(tmp_path / "run" / "best.keras"))
    data_case = load_dataset(str(data), label_values=[255, 0])[0].load()
    expected = predictor.predict_case(data_case)[0]
    assert main(["predict", "--model", str(tmp_path / "run" / "best.keras"),
                 "--input", str(data / "image" / "0.png"), "--output", str(tmp_path / "out")]) == 0
    import cv2

    written = cv2.imread(str(tmp_path / "out" / "0.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(written, np.where(expected == 0, 255, 0))
    # Resuming without the options keeps the run's classes and mask values.
    assert main(["train", "--output", str(tmp_path / "run"), "--resume", "--epochs", "2",
                 "--steps-per-epoch", "1", "--batch-size", "2", "--model-option", "depth=1",
                 "--model-option", "base_filters=2", "--verbose", "0", "--no-evaluate"]) == 0
    resumed = json.load(open(tmp_path / "run" / "run.json"))
    assert resumed["info"]["class_names"] == ["cell", "membrane"]
    assert resumed["info"]["label_values"] == [255, 0]


def test_train_refuses_bad_label_values(tmp_path, capsys):
    with pytest.raises(SystemExit, match="--label-values must be comma-separated integers"):
        main(["train", "--data", hippocampus_path(), "--output", str(tmp_path / "run"),
              "--label-values", "0,one"])


@pytest.mark.parametrize("bad", ["3", "0,0", "a", "0,,1"])
def test_train_refuses_bad_slice_axes(bad, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--data", hippocampus_path(), "--output", str(tmp_path / "run"),
              "--slice-axis", bad])
    assert "--slice-axis must be 0, 1 or 2, or distinct ones" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["train", "plan"])
def test_3d_families_are_refused_on_images_with_the_2d_ones_named(command, tmp_path, capsys,
                                                                   isbi_dir):
    run = tmp_path / "run"
    args = [command, "--data", str(isbi_dir), "--model", "vnet"]
    assert main(args + (["--output", str(run)] if command == "train" else [])) == 1
    err = capsys.readouterr().err
    assert f"kerasseg {command}: error: `model` 'vnet' is a 3-D family and the data holds " \
           "2-D images; train one of the 2-D families ['deeplab', 'fcn8s', 'unet']" in err
    assert not run.exists()


def test_plan_prints_a_3d_plan_for_a_3d_family(capsys):
    assert main(["plan", "--data", hippocampus_path(), "--model", "unet3d"]) == 0
    out = capsys.readouterr().out
    assert "Plan for unet3d on 52 case(s)" in out
    assert re.search(r"mode +3d ", out) and re.search(r"patch_size +\(\d+, \d+, \d+\)", out)


def test_model_help_names_the_trainable_families():
    import argparse

    from kerasseg.cli import build_parser

    subparsers = next(action for action in build_parser()._actions
                      if isinstance(action, argparse._SubParsersAction))
    for command in ("train", "plan"):
        option = next(action for action in subparsers.choices[command]._actions
                      if "--model" in action.option_strings)
        assert option.help == ("model family: a 2-D one (deeplab, fcn8s, unet; default unet) "
                               "trains on slices, a 3-D one (unet3d, vnet) on 3-D patches "
                               "(--mode 3d)")
        assert option.default == "unet"


def test_train_parses_several_slice_axes_as_views():
    from kerasseg.cli import _slice_axes

    assert _slice_axes("2") == 2 and _slice_axes("0,1,2") == [0, 1, 2] and _slice_axes("2,0") == [2, 0]


def test_augment_options_override_the_preset_and_set_the_tta_flips(tmp_path, capsys):
    from kerasseg.modelfile import load_model

    common = ["train", "--data", hippocampus_path(), "--steps-per-epoch", "1", "--batch-size",
              "4", "--model-option", "depth=1", "--model-option", "base_filters=2", "--verbose",
              "0", "--no-evaluate", "--val-fraction", "0.1", "--epochs", "1", "--augment", "light"]
    run = tmp_path / "columns"
    assert main(common + ["--output", str(run), "--augment-option", "flip_axes=[1]",
                          "--augment-option", "rotate=5"]) == 0
    stored = json.loads((run / "run.json").read_text())
    assert stored["settings"]["augment"] == {"preset": "light", "flip_axes": [1], "rotate": 5}
    assert load_model(run / "best.keras")[1].flip_axes == (1,)

    run = tmp_path / "unflipped"
    assert main(common + ["--output", str(run), "--augment-option", "flip_prob=0"]) == 0
    assert load_model(run / "best.keras")[1].flip_axes == ()
    capsys.readouterr()
    image = os.path.join(hippocampus_path(), "imagesTr", "hippocampus_001.nii.gz")
    assert main(["predict", "--model", str(run / "best.keras"), "--input", image,
                 "--output", str(tmp_path / "out"), "--tta"]) == 1
    assert "trained without" in capsys.readouterr().err

    assert main(common + ["--output", str(tmp_path / "bad"), "--augment-option",
                          "flip_axes=[2]"]) == 1
    assert "flip_axes" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit, match="--augment-option must be KEY=VALUE"):
        main(common + ["--output", str(tmp_path / "bad"), "--augment-option", "flip_axes"])


def test_resume_keeps_class_names_given_without_label_values(tmp_path):
    run = tmp_path / "run"
    common = ["--steps-per-epoch", "1", "--batch-size", "4", "--model-option", "depth=1",
              "--model-option", "base_filters=2", "--verbose", "0", "--no-evaluate",
              "--val-fraction", "0.1", "--epochs", "1"]
    assert main(["train", "--data", hippocampus_path(), "--output", str(run),
                 "--class-names", "bg,front,back"] + common) == 0
    assert main(["train", "--output", str(run), "--resume"] + common) == 0
    # The resumed run loads the data with the run's class names, not the data set's.
    models = [line for line in (run / "train.log").read_text().splitlines() if " model: unet " in line]
    assert len(models) == 2
    assert all("3 classes ['bg', 'front', 'back']" in line for line in models)


# ------------------------------------------------------------------ one source for each option


def _choices(parser, prefix=()):
    """{(sub-command..., option): choices} of every option with choices, sub-commands included."""
    import argparse

    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_choices(sub, prefix + (name,)))
        elif action.choices is not None:
            found[prefix + (action.option_strings[-1],)] = list(action.choices)
    return found


def test_every_choice_list_comes_from_the_constant_its_validation_uses():
    from kerasseg.cli import build_parser
    from kerasseg.data.augment import AUGMENT_BACKENDS, AUGMENT_PRESETS
    from kerasseg.data.normalization import NAMED_NORMALIZATIONS
    from kerasseg.data.spec import MODES
    from kerasseg.export.tflite import QUANTIZE_MODES
    from kerasseg.training.recipe import LOSSES, SCHEDULES
    from kerasseg.training.strategy import STRATEGIES
    from kerasseg.training.trainer import VERBOSITY

    planned = {"--mode": MODES, "--normalization": NAMED_NORMALIZATIONS,
               "--schedule": SCHEDULES, "--augment": AUGMENT_PRESETS}
    expected = {("train", "--loss"): LOSSES, ("train", "--strategy"): STRATEGIES,
                ("train", "--augment-backend"): AUGMENT_BACKENDS,
                ("train", "--verbose"): VERBOSITY, ("export", "--quantize"): QUANTIZE_MODES}
    for command in ("train", "plan"):
        expected.update({(command, option): values for option, values in planned.items()})
    assert _choices(build_parser()) == {key: list(values) for key, values in expected.items()}


def test_the_library_rejects_what_the_choices_leave_out(tmp_path):
    """Each constant is also what the library checks: a value outside it is refused there."""
    from kerasseg.data.pipeline import make_dataset
    from kerasseg.data.spec import make_preprocessing_spec
    from kerasseg.data.preprocess import Normalizer
    from kerasseg.export.tflite import tflite
    from kerasseg.training import train
    from kerasseg.training.strategy import get_strategy

    with pytest.raises(ValueError, match=r"`strategy` must be one of \['auto', 'default'"):
        get_strategy("parameter_server")
    with pytest.raises(ValueError, match=r"`augment_backend` must be one of"):
        make_dataset([], patch_size=16, augment_backend="numpy")
    with pytest.raises(ValueError, match=r"`quantize` must be one of \['none', 'float16'"):
        tflite(None, str(tmp_path / "m.tflite"), quantize="int4")
    with pytest.raises(ValueError, match=r"`mode` must be one of \['2d', '2.5d', '3d'\]"):
        make_preprocessing_spec(mode="4d")
    with pytest.raises(ValueError, match=r"`verbose` must be one of \[0, 1, 2\]"):
        train(hippocampus_path(), output_dir=str(tmp_path / "run"), verbose=3)
    for method in ("scale", "fixed", "ct_window"):  # not choices: they need parameters
        with pytest.raises(ValueError, match="requires parameters"):
            Normalizer.from_spec(method)


def test_train_docstring_lists_exactly_the_normalizations_accepted_by_name():
    import re

    from kerasseg.data.normalization import METHOD_PARAMS, NAMED_NORMALIZATIONS
    from kerasseg.training import train

    doc = train.__doc__
    section = doc[doc.index("        normalization:"):doc.index("        target_spacing:")]
    by_name, with_params = section.split("or\n", 1)[0], section.split("or\n", 1)[1]
    named = re.findall(r'``"(\w+)"``', by_name)
    assert tuple(named) == NAMED_NORMALIZATIONS
    needing = [m for m in re.findall(r'``"(\w+)"``', with_params) if m in METHOD_PARAMS]
    assert sorted(needing) == sorted(set(METHOD_PARAMS) - set(NAMED_NORMALIZATIONS))
