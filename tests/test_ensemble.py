"""Ensembles: the argmax of the members' (weighted) mean probabilities at the original grid,
checked against hand-computed softmaxes of pixelwise models, then on the shipped zoo
entries through the API, the command line and a temporary registry with an ensemble entry."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
import SimpleITK as sitk

from kerasseg import zoo
from kerasseg.cli import main
from kerasseg.data import load_dataset
from kerasseg.data.spec import make_preprocessing_spec
from kerasseg.data.types import CaseData, Geometry
from kerasseg.description import ModelInfo
from kerasseg.ensemble import EnsemblePredictor, predictor
from kerasseg.evaluation import evaluate_case
from kerasseg.inference import Predictor, predict_path
from kerasseg.sample import hippocampus_path
from kerasseg.scoring import evaluate_model, rank_ensembles

NAMES = ("background", "organ")


def _pixelwise(slope, offset, classes=2):
    """A 1x1 convolution whose class-1 logit is ``slope * x + offset`` (class 0: 0)."""
    inputs = keras.Input((None, None, 1))
    layer = keras.layers.Conv2D(classes, 1)
    model = keras.Model(inputs, layer(inputs))
    kernel = np.zeros((1, 1, 1, classes), "float32")
    kernel[0, 0, 0, 1] = slope
    bias = np.zeros(classes, "float32")
    bias[1] = offset
    layer.set_weights([kernel, bias])
    return model


def _info(classes=2, class_names=NAMES, **fields):
    spec = make_preprocessing_spec(normalization="none")  # raw intensities, original grid
    return ModelInfo(model="unet", num_classes=classes, channels=1, preprocessing=spec,
                     patch_size=(16, 16), stride=4, class_names=class_names, **fields)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# A's class-1 logit is 8x - 4, B's 1.5 - 2x: at x = 1 A says 1 (0.982) and B 0 (0.378); at
# x = 0 A says 0 (0.018) and B 1 (0.818); at x = 0.45 A says 0 (0.401) and B 1 (0.646). The
# mean sides with A at 0 and 1, with B at 0.45.
SLOPE_A, OFFSET_A, SLOPE_B, OFFSET_B = 8.0, -4.0, -2.0, 1.5


@pytest.fixture(scope="module")
def members():
    return (Predictor(_pixelwise(SLOPE_A, OFFSET_A), _info()),
            Predictor(_pixelwise(SLOPE_B, OFFSET_B), _info()))


@pytest.fixture(scope="module")
def case():
    image = np.zeros((2, 6, 7, 1), "float32")
    image[0, 1:4, 2:5] = 1.0
    image[1, :, 5:] = 0.45
    image[1, 4, 0] = 0.25
    label = np.zeros((2, 6, 7), "uint8")
    label[0, 1:4, 2:6] = 1  # the 9 voxels of x = 1, and 3 more
    label[1, 0:3, 5:] = 1   # 6 of the 12 voxels of x = 0.45
    label[1, 0, 0] = 1      # a voxel no model finds
    return CaseData(image, label, Geometry(spacing=(0.8, 0.8, 2.0)))


def _expected(image, weights=(1.0, 1.0)):
    """The weighted mean of the two models' softmaxes, by hand."""
    x = image[..., 0].astype("float64")
    p1 = (weights[0] * _sigmoid(SLOPE_A * x + OFFSET_A)
          + weights[1] * _sigmoid(SLOPE_B * x + OFFSET_B)) / sum(weights)
    return np.stack([1.0 - p1, p1], axis=-1)


def test_probabilities_are_the_mean_of_the_softmaxes_and_the_label_its_argmax(members, case):
    ensemble = EnsemblePredictor(list(members))
    label, mean = ensemble.predict_case(case, return_probabilities=True)
    expected = _expected(case.image)
    assert mean.shape == (2, 6, 7, 2) and label.shape == (2, 6, 7) and label.dtype == np.int32
    np.testing.assert_allclose(mean, expected, atol=1e-6)
    np.testing.assert_array_equal(label, expected.argmax(-1))
    # The members disagree everywhere; the mean sides with the surer one.
    alone = [member.predict_case(case) for member in members]
    assert alone[0][0, 2, 3] == 1 and alone[1][0, 2, 3] == 0 and label[0, 2, 3] == 1
    assert mean[0, 2, 3, 1] == pytest.approx((_sigmoid(4.0) + _sigmoid(-0.5)) / 2, abs=1e-6)
    assert alone[0][0, 0, 0] == 0 and alone[1][0, 0, 0] == 1 and label[0, 0, 0] == 0
    assert alone[0][1, 0, 5] == 0 and alone[1][1, 0, 5] == 1 and label[1, 0, 5] == 1
    assert mean[1, 0, 5, 1] == pytest.approx((_sigmoid(-0.4) + _sigmoid(0.6)) / 2, abs=1e-6)
    # x = 0.25: A gives sigmoid(-2) = 0.119, B sigmoid(1) = 0.731; mean 0.425 -> 0.
    assert mean[1, 4, 0, 1] == pytest.approx((_sigmoid(-2.0) + _sigmoid(1.0)) / 2, abs=1e-6)
    assert label[1, 4, 0] == 0
    assert ensemble.info is members[0].info and ensemble.num_classes == 2
    assert ensemble.weights == (0.5, 0.5) and ensemble.tta is False
    assert ensemble.shifts == [(0, 0)]


def test_weights_change_the_result_as_computed_by_hand(members, case):
    ensemble = EnsemblePredictor(list(members), weights=[3, 1])
    label, mean = ensemble.predict_case(case, return_probabilities=True)
    assert ensemble.weights == (0.75, 0.25)
    expected = _expected(case.image, weights=(3.0, 1.0))
    np.testing.assert_allclose(mean, expected, atol=1e-6)
    np.testing.assert_array_equal(label, expected.argmax(-1))
    # x = 0.45: (3 * 0.401 + 0.646) / 4 = 0.462, so A now wins where B won with equal weights.
    assert mean[1, 0, 5, 1] == pytest.approx((3 * _sigmoid(-0.4) + _sigmoid(0.6)) / 4, abs=1e-6)
    assert label[1, 0, 5] == 0 and EnsemblePredictor(list(members)).predict_case(case)[1, 0, 5] == 1
    assert EnsemblePredictor.combine([mean, mean], [5, 5]).tolist() == mean.tolist()


@pytest.mark.parametrize("bad", [[1.0], [1.0, 0.0], [1.0, -2.0], [1.0, float("nan")], "1,1"])
def test_invalid_weights_are_refused(members, bad):
    with pytest.raises(ValueError, match=r"`weights` must be one positive number per member \(2\)"):
        EnsemblePredictor(list(members), weights=bad)


@pytest.mark.parametrize("other, message", [
    (lambda: Predictor(_pixelwise(1.0, 0.0, classes=3), _info(3, ("a", "b", "c"))),
     r"disagree on the number of classes: 2 and 3"),
    (lambda: Predictor(_pixelwise(1.0, 0.0), _info(class_names=("background", "tumour"))),
     r"disagree on the class names: \('background', 'organ'\) and \('background', 'tumour'\)"),
    (lambda: Predictor(_pixelwise(1.0, 0.0), _info(label_values=(0, 255))),
     r"disagree on the mask values of the classes \(label_values\): None and \(0, 255\)"),
])
def test_members_that_disagree_on_the_classes_are_refused(members, other, message):
    member = other()
    with pytest.raises(ValueError, match=r"Ensemble members 'member 1 \(a Predictor of unet\)' "
                                         r"and 'member 2 \(a Predictor of unet\)' " + message):
        EnsemblePredictor([members[0], member])


def test_evaluate_model_scores_the_averaged_label(members, case):
    report = evaluate_model(None, [case], predictor=EnsemblePredictor(list(members)))
    label = _expected(case.image).argmax(-1)
    truth = case.label == 1
    dice = 2 * np.sum((label == 1) & truth) / (np.sum(label == 1) + np.sum(truth))
    assert np.sum(label == 1) == 9 + 12 and np.sum((label == 1) & truth) == 9 + 6  # by hand
    assert report["cases"][0]["metrics"]["organ"]["dice"] == pytest.approx(dice, abs=1e-9)
    assert report["mean_foreground_dice"] == pytest.approx(2 * 15 / (21 + 19), abs=1e-9)
    alone = evaluate_model(None, [case], predictor=members[0])  # A alone finds 9: 18 / 28
    assert alone["mean_foreground_dice"] == pytest.approx(2 * 9 / (9 + 19), abs=1e-9)
    assert report["ensemble"] == [
        {"model": f"member {index} (a Predictor of unet)", "weight": 0.5, "tta": False,
         "shifts": [[0, 0]]} for index in (1, 2)]


def test_predict_path_writes_files_of_the_input_shape(members, case, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(2):
        volume = sitk.GetImageFromArray(np.roll(case.image[..., 0], index, axis=2))
        volume.SetSpacing((0.8, 0.8, 2.0))
        sitk.WriteImage(volume, str(inputs / f"case_{index}.nii.gz"))
    ensemble = EnsemblePredictor(list(members))
    written = predict_path(None, str(inputs), str(tmp_path / "out"), predictor=ensemble)
    assert len(written) == 2
    for source, target in written:
        image = sitk.ReadImage(source)
        label = sitk.GetArrayFromImage(sitk.ReadImage(target))
        assert label.shape == (2, 6, 7) == sitk.GetArrayFromImage(image).shape
        assert sitk.ReadImage(target).GetSpacing() == pytest.approx((0.8, 0.8, 2.0))
        array = sitk.GetArrayFromImage(image).astype("float32")[..., None]
        np.testing.assert_array_equal(label, _expected(array).argmax(-1))
    # The ensemble may also stand in for the model argument.
    again = predict_path(ensemble, str(inputs), str(tmp_path / "again"))
    assert [os.path.basename(t) for _, t in again] == [os.path.basename(t) for _, t in written]


def _empty_label_case(case):
    """The same image with no foreground: every voxel a model calls organ is a false positive."""
    return CaseData(case.image, np.zeros_like(case.label), case.geometry)


def test_rank_ensembles_scores_each_combination_by_hand(members, case):
    result = rank_ensembles(list(members), [case, _empty_label_case(case)])
    # Case 1 (19 organ voxels): A finds the 9 voxels of x = 1: 2*9 / (9 + 19). B calls all but
    # those 9 organ (75 voxels), 10 of them right: 2*10 / (75 + 19). Their mean: 21 voxels, 15
    # right (see test_evaluate_model_scores_the_averaged_label): 2*15 / (21 + 19).
    # Case 2 has no organ: each combination predicts some, Dice 0.
    a, b, both = 18 / 28, 20 / 94, 30 / 40
    ranking = result["ranking"]
    assert [entry["members"] for entry in ranking] == [
        ["member 1 (a Predictor of unet)", "member 2 (a Predictor of unet)"],
        ["member 1 (a Predictor of unet)"], ["member 2 (a Predictor of unet)"]]
    for entry, first in zip(ranking, (both, a, b)):
        assert entry["per_case"] == pytest.approx([first, 0.0], abs=1e-12)
        assert entry["mean_foreground_dice"] == pytest.approx(first / 2, abs=1e-12)
        assert entry["dice"] == {"organ": pytest.approx(first / 2, abs=1e-12)}
    assert result["case_ids"] == ["0", "1"] and len(result["models"]) == 2
    # One member at most: the two models alone, best first.
    singles = rank_ensembles(list(members), [case], max_members=1)["ranking"]
    assert [entry["mean_foreground_dice"] for entry in singles] == pytest.approx([a, b])


def test_rank_ensembles_breaks_ties_by_size_then_given_order(members, case):
    a, b = members
    ranking = rank_ensembles([a, a, b], [case])["ranking"]
    names = [[int(name.split()[1]) for name in entry["members"]] for entry in ranking]
    dice = [entry["mean_foreground_dice"] for entry in ranking]
    assert dice == sorted(dice, reverse=True)
    # A + B twice at 30/40; A alone twice, A + A and A + A + B at 18/28 ((2A + B) / 3 is
    # 0.78 at x = 1, 0.48 at x = 0.45, 0.32 at 0.25 and 0.28 at 0: A's label): fewer members
    # first, then the given order.
    assert names[:2] == [[1, 3], [2, 3]] and dice[0] == dice[1] == pytest.approx(0.75)
    tied = [entry for entry, value in zip(names, dice) if value == pytest.approx(18 / 28)]
    assert tied == [[1], [2], [1, 2], [1, 2, 3]]


def test_rank_ensembles_leaves_out_a_case_without_any_dice(members, case):
    # An image of ones with no organ: A calls every voxel organ (Dice 0), B none (both masks
    # empty: no Dice), their mean calls every voxel organ ((0.982 + 0.378) / 2 = 0.68).
    ones = CaseData(np.ones_like(case.image), np.zeros_like(case.label), case.geometry)
    result = rank_ensembles(list(members), [case, ones])
    by_members = {len(entry["members"]) * 10 + int(entry["members"][0].split()[1]): entry
                  for entry in result["ranking"]}
    a, b, both = by_members[11], by_members[12], by_members[21]
    assert a["per_case"] == pytest.approx([18 / 28, 0.0]) and a["mean_foreground_dice"] == \
        pytest.approx(9 / 28)
    assert both["per_case"] == pytest.approx([0.75, 0.0]) and both["mean_foreground_dice"] == \
        pytest.approx(0.375)
    assert b["per_case"][0] == pytest.approx(20 / 94) and np.isnan(b["per_case"][1])
    assert b["mean_foreground_dice"] == pytest.approx(20 / 94)  # over the first case only
    assert [entry["mean_foreground_dice"] for entry in result["ranking"]] == pytest.approx(
        [0.375, 9 / 28, 20 / 94])


@pytest.mark.parametrize("arguments, message", [
    (dict(models="one"), r"at least two models"),
    (dict(models="a string"), r"`models` must be a list of two or more models"),
    (dict(models="twice"), r"`models` names 'runs/a/best.keras' more than once"),
    (dict(cases="bad values"), r"`the label of case 0` must hold integer class indices in "
                               r"\[0, 2\). Received values: \[2\]"),
    (dict(max_members=0), r"`max_members` must be an integer in \[1, 2\]"),
    (dict(max_members=3), r"`max_members` must be an integer in \[1, 2\]"),
    (dict(max_members=True), r"`max_members` must be an integer in \[1, 2\]"),
    (dict(cases=[]), r"`cases` is empty"),
    (dict(cases="unlabelled"), r"Case 0 has no label to score against"),
])
def test_rank_ensembles_refuses_bad_input(members, case, arguments, message):
    arguments = dict(arguments)
    models = {None: list(members), "one": [members[0]], "a string": "hippocampus-unet",
              "twice": ["runs/a/best.keras", members[1], "runs/a/best.keras"]
              }[arguments.pop("models", None)]
    cases = arguments.pop("cases", [case])
    if cases == "unlabelled":
        cases = [CaseData(case.image, None, case.geometry)]
    if cases == "bad values":
        cases = [CaseData(case.image, case.label * 2, case.geometry)]
    with pytest.raises(ValueError, match=message):
        rank_ensembles(models, cases, **arguments)


# ----------------------------------------------------- shipped zoo entries, real cases

UNET, FCN = "hippocampus-unet", "hippocampus-fcn8s"
CASES = ("hippocampus_008", "hippocampus_019")  # in the sample and both entries' test split


@pytest.fixture(scope="module")
def sample_cases():
    return load_dataset(hippocampus_path()).subset(list(CASES))


@pytest.fixture(scope="module")
def member_probabilities(sample_cases):
    """Each entry's probabilities on the two cases (case id -> (unet, fcn8s))."""
    unet, fcn = Predictor(UNET), Predictor(FCN)
    return {case.case_id: (unet.predict_case(case, return_probabilities=True)[1],
                           fcn.predict_case(case, return_probabilities=True)[1])
            for case in sample_cases}


def _by_hand(probabilities, weights=(1.0, 1.0)):
    mean = (weights[0] * probabilities[0] + weights[1] * probabilities[1]) / sum(weights)
    return mean.argmax(-1)


@pytest.fixture
def ensemble_registry(tmp_path, monkeypatch):
    """The shipped registry plus an ensemble entry; the U-Net's test split cut to CASES and
    the FCN-8s's to another case, so that `--cases auto` shows whose rule is used."""
    with open(zoo.REGISTRY, encoding="utf-8") as handle:
        data = json.load(handle)
    for record in data["entries"]:
        if record["name"] == UNET:
            record["split"] = {**record["split"], "test": list(CASES)}
        if record["name"] == FCN:
            record["split"] = {**record["split"], "test": ["hippocampus_026"]}
    data["entries"].append({"name": "hippocampus-2d-ensemble", "ensemble": [UNET, FCN],
                            "ensemble_weights": [2, 1], "split": {"test": [CASES[0]]}})
    data["entries"].append({"name": "bad-ensemble", "ensemble": [UNET, "no-such-entry"]})
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("KERASSEG_ZOO_REGISTRY", str(path))
    for variable in ("KERASSEG_ZOO_DIR", "KERASSEG_ZOO_URL"):
        monkeypatch.delenv(variable, raising=False)
    return path


def _predict_cli(models, sample_cases, tmp_path, extra=()):
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir(exist_ok=True)
    for case in sample_cases:
        shutil.copy(case.image_paths[0], inputs)
    argv = ["predict", "--input", str(inputs), "--output", str(output), *extra]
    for model in models:
        argv += ["--model", model]
    assert main(argv) == 0
    return {case.case_id: sitk.GetArrayFromImage(sitk.ReadImage(
        str(output / os.path.basename(case.image_paths[0])))) for case in sample_cases}


def test_cli_predict_with_two_models_is_the_ensemble(sample_cases, member_probabilities,
                                                     tmp_path, capsys):
    written = _predict_cli([UNET, FCN], sample_cases, tmp_path)
    assert "2 prediction(s) written" in capsys.readouterr().out
    ensemble = EnsemblePredictor([UNET, FCN])
    for case in sample_cases:
        expected = _by_hand(member_probabilities[case.case_id])
        np.testing.assert_array_equal(written[case.case_id], expected)
        np.testing.assert_array_equal(ensemble.predict_case(case), expected)
        assert written[case.case_id].shape == case.load().image.shape[:3]
        # The members disagree somewhere on these cases, so the average does decide.
        unet, fcn = (p.argmax(-1) for p in member_probabilities[case.case_id])
        assert np.any(unet != fcn)


def test_cli_weights_are_checked(sample_cases, tmp_path, capsys):
    with pytest.raises(SystemExit, match="gives 1 weight"):
        _predict_cli([UNET, FCN], sample_cases, tmp_path, extra=["--weights", "1"])
    with pytest.raises(SystemExit, match="members of an ensemble of several --model"):
        _predict_cli([UNET], sample_cases, tmp_path, extra=["--weights", "1"])
    with pytest.raises(SystemExit):  # argparse: not a positive number
        _predict_cli([UNET, FCN], sample_cases, tmp_path, extra=["--weights", "1,-1"])
    assert "--weights must be positive numbers" in capsys.readouterr().err


def test_cli_evaluate_two_models_uses_the_first_model_s_cases(
        ensemble_registry, member_probabilities, tmp_path, capsys):
    report = tmp_path / "ensemble.json"
    code = main(["evaluate", "--model", UNET, "--model", FCN, "--weights", "3,1",
                 "--data", hippocampus_path(), "--report", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    assert "evaluating an ensemble of 2 models, hippocampus-unet (weight 0.75), " \
           "hippocampus-fcn8s (weight 0.25), on 2 case(s)" in out
    assert "the zoo entry's held-out cases, picked for the first model, hippocampus-unet" in out
    assert "evaluated the ensemble of hippocampus-unet, hippocampus-fcn8s" in out
    data = json.loads(report.read_text())
    assert data["meta"]["model"] == [UNET, FCN] and data["meta"]["weights"] == [0.75, 0.25]
    assert [member["weight"] for member in data["ensemble"]] == [0.75, 0.25]
    truth = {case.case_id: case.load().label
             for case in load_dataset(hippocampus_path()).subset(list(CASES))}
    for row in data["cases"]:
        label = _by_hand(member_probabilities[row["case_id"]], weights=(3.0, 1.0))
        dice = evaluate_case(label, truth[row["case_id"]], 3, spacing=row["spacing_zyx"],
                             class_names=["background", "Anterior", "Posterior"])
        assert row["metrics"]["Anterior"]["dice"] == pytest.approx(dice["Anterior"]["dice"])
        assert row["metrics"]["Posterior"]["dice"] == pytest.approx(dice["Posterior"]["dice"])
    assert sorted(row["case_id"] for row in data["cases"]) == list(CASES)
    assert not (tmp_path / "ensemble_training.png").exists()


def test_a_zoo_ensemble_entry_resolves_to_an_ensemble_predictor(
        ensemble_registry, sample_cases, member_probabilities, tmp_path, capsys):
    name = "hippocampus-2d-ensemble"
    assert zoo.is_ensemble(name) and not zoo.is_ensemble(UNET)
    assert zoo.ensemble_members(name) == ([UNET, FCN], [2.0, 1.0])
    for refused in (lambda: zoo.load(name), lambda: zoo.fetch(name), lambda: Predictor(name)):
        with pytest.raises(ValueError, match=r"is an ensemble of \['hippocampus-unet', "
                                             r"'hippocampus-fcn8s'\], not one model.*"
                                             r"EnsemblePredictor\('hippocampus-2d-ensemble'\)"):
            refused()
    resolved = predictor(name)
    assert isinstance(resolved, EnsemblePredictor)
    assert resolved.names == [UNET, FCN] and resolved.weights == pytest.approx((2 / 3, 1 / 3))
    assert resolved.info.zoo_entry == UNET  # the first member's info, as documented
    assert isinstance(predictor(UNET), Predictor)
    assert predictor([UNET, FCN], weights=[1, 1]).names == [UNET, FCN]
    # The command line resolves it too: the registry's weights, 2:1.
    written = _predict_cli([name], list(sample_cases)[:1], tmp_path)
    np.testing.assert_array_equal(written[CASES[0]],
                                  _by_hand(member_probabilities[CASES[0]], (2.0, 1.0)))
    capsys.readouterr()
    assert main(["zoo", "list"]) == 0
    assert any(line.startswith(name) and " ensemble " in line
               for line in capsys.readouterr().out.splitlines())
    with pytest.raises(ValueError, match="names 'no-such-entry', which is not a zoo entry"):
        predictor("bad-ensemble")


def test_cli_choose_ensemble_ranks_on_the_validation_cases(
        ensemble_registry, member_probabilities, tmp_path, capsys):
    # The U-Net's validation cases are CASES here; the FCN-8s trained on the first of them.
    data = json.loads(ensemble_registry.read_text())
    for record in data["entries"]:
        if record["name"] == UNET:
            record["split"]["val"] = list(CASES)
        if record["name"] == FCN:
            record["split"]["train"] = [CASES[0]] + record["split"]["train"]
    ensemble_registry.write_text(json.dumps(data))
    output = tmp_path / "ranking.json"
    assert main(["choose-ensemble", "--model", UNET, "--model", FCN, "--data",
                 hippocampus_path(), "--output", str(output)]) == 0
    captured = capsys.readouterr()
    assert f"warning: 1 of the 2 case(s) trained {FCN} ({CASES[0]})" in captured.err
    assert "on 2 case(s)" in captured.out and f"the validation cases of {UNET}" in captured.out
    truth = {case.case_id: case.load() for case in
             load_dataset(hippocampus_path()).subset(list(CASES))}

    def by_hand(combination):
        scores = []
        for case_id in CASES:
            probabilities = member_probabilities[case_id]
            label = np.mean([probabilities[i] for i in combination], axis=0).argmax(-1)
            metrics = evaluate_case(label, truth[case_id].label, 3,
                                    class_names=["background", "Anterior", "Posterior"])
            scores.append((metrics["Anterior"]["dice"] + metrics["Posterior"]["dice"]) / 2)
        return float(np.mean(scores))

    expected = sorted([((0,), by_hand((0,))), ((1,), by_hand((1,))),
                       ((0, 1), by_hand((0, 1)))], key=lambda item: (-item[1], len(item[0])))
    stored = json.loads(output.read_text())
    names = (UNET, FCN)
    assert [entry["members"] for entry in stored["ranking"]] == [
        [names[i] for i in combination] for combination, _ in expected]
    assert [entry["mean_foreground_dice"] for entry in stored["ranking"]] == pytest.approx(
        [value for _, value in expected], abs=1e-9)
    assert stored["case_ids"] == list(CASES) and stored["chosen"] == stored["ranking"][0]["members"]
    best = " + ".join(stored["chosen"])
    assert f"   1  {expected[0][1]:9.4f}" in captured.out and f"chosen: {best};" in captured.out
    command = "kerasseg evaluate " + " ".join(f"--model {m}" for m in stored["chosen"])
    assert f"`{command} --data {hippocampus_path()} --report REPORT.json" in captured.out
    # The registry here gives the U-Net the scored cases as its test cases, the FCN-8s another.
    if stored["chosen"][0] == UNET:
        assert "no held-out cases apart from the scored ones are known" in captured.out
    else:
        assert f"(the test cases of {FCN}, which --cases auto picks)" in captured.out


def test_cli_choose_ensemble_needs_known_validation_cases(tmp_path, capsys):
    model = tmp_path / "model.keras"
    shutil.copy(zoo.fetch(UNET), model)  # a file without a run beside it
    assert main(["choose-ensemble", "--model", str(model), "--model", FCN, "--data",
                 hippocampus_path()]) == 1
    assert "no validation cases are known for" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="give --model two or more times"):
        main(["choose-ensemble", "--model", UNET, "--data", hippocampus_path()])
    with pytest.raises(SystemExit, match="--max-members 3 is more than the 2 --model options"):
        main(["choose-ensemble", "--model", UNET, "--model", FCN, "--max-members", "3",
              "--data", hippocampus_path(), "--cases", CASES[0]])
    capsys.readouterr()
    with pytest.raises(SystemExit):  # argparse: not a positive number
        main(["choose-ensemble", "--model", UNET, "--model", FCN, "--max-members", "0",
              "--data", hippocampus_path()])
    assert "--max-members must be a positive whole number. Received: '0'" in \
        capsys.readouterr().err
