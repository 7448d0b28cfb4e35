"""The shipped zoo entries: registry integrity, golden outputs and held-out accuracy.

The hippocampus checks run on held-out cases that ship in the bundled sample, so they need
no other data; the EM checks read ../shared/data (or $KERASSEG_DATA) and skip without it.
"""

import json
import os
import pathlib

import numpy as np
import pytest

import kerasseg
from kerasseg import zoo
from kerasseg.cli import main
from kerasseg.data import load_dataset
from kerasseg.data.io import read_label
from kerasseg.evaluation import dice
from kerasseg.modelfile import read_info
from kerasseg.sample import hippocampus_path
from tests.conftest import DATA_ROOT, REPO_ROOT as ROOT, need_data

ZOO = pathlib.Path(zoo.WEIGHTS)
ENTRIES = zoo.list_entries()
# Entries with a model file of their own, and entries that are ensembles of them.
MODELS = [name for name in ENTRIES if not zoo.is_ensemble(name)]
ENSEMBLES = [name for name in ENTRIES if zoo.is_ensemble(name)]
HIPPOCAMPUS = [name for name in ENTRIES if name.startswith("hippocampus-")]
# The held-out mean foreground Dice (per case in 3-D, anterior and posterior) that every
# hippocampus entry must reach to be released.
HIPPOCAMPUS_FLOOR = 0.88


def _dataset(record):
    """The entry's data set: the bundled sample for hippocampus, else the shared data."""
    kwargs = {"class_names": record["class_names"]}
    folder = record["training"]["data_folder"]
    if folder == "msd_hippocampus":
        return load_dataset(hippocampus_path(), **kwargs)
    path = need_data(DATA_ROOT / folder)
    if record.get("input", {}).get("label_values"):
        kwargs["label_values"] = record["input"]["label_values"]
    return load_dataset(str(path), **kwargs)


def _held_out(record, dataset, count=None):
    ids = [case_id for case_id in record["split"]["test"] if case_id in dataset.case_ids]
    return ids[:count] if count else ids


def _per_case(name):
    return json.loads((ZOO / f"{name}.metrics.json").read_text())


def test_the_zoo_has_the_six_entries():
    assert ENTRIES == ["hippocampus-deeplab", "hippocampus-ensemble", "hippocampus-fcn8s",
                       "hippocampus-unet", "hippocampus-unet3d", "isbi2012-unet"]
    assert ENSEMBLES == ["hippocampus-ensemble"]


@pytest.mark.parametrize("name", MODELS)
def test_registry_integrity(name):
    record = zoo.entry(name)
    path = ZOO / record["file"]
    assert path.exists(), f"{path} is missing"
    # Files stay small enough to ship in the wheel: 8 MB for the 2-D families; a 3-D U-Net's
    # 3x3x3 kernels hold three times the weights of 3x3 ones (5.6 M parameters, 11.2 MB
    # at float16), so 12 MB for the 3-D ones.
    volumetric = kerasseg.models.registry.spatial_dims(record["arch"]) == 3
    assert path.stat().st_size == record["size"] < (12_000_000 if volumetric else 8_000_000)
    assert zoo.sha256(path) == record["sha256"]
    assert (ZOO / record["card"]).exists()
    # The parameter count equals a freshly built model's with the recorded build config.
    build = record["build"]
    spatial = (None,) * (3 if volumetric else 2)
    fresh = kerasseg.build(build["arch"], input_shape=spatial + (build["input_channels"],),
                           num_classes=build["num_classes"], **build["options"])
    assert fresh.count_params() == record["params"]
    # The prediction's shift averaging travels in the file, as the registry states.
    stored = read_info(path).shift_offsets
    assert (None if stored is None else [list(pair) for pair in stored]) == \
        record["input"].get("shift_offsets")
    # The split is disjoint and the command is the recorded recipe's.
    split = record["split"]
    assert not set(split["test"]) & (set(split["train"]) | set(split["val"]))
    assert not set(split["train"]) & set(split["val"])
    assert record["training"]["command"].startswith(
        f"kerasseg train --data ../shared/data/{record['training']['data_folder']} ")
    assert f"--seed {record['training']['seed']}" in record["training"]["command"]
    # A staged recipe: each later stage starts from the previous stage's best model, on the
    # same split.
    commands = record["training"]["command"].split("\n")
    assert len(commands) == record["training"].get("stages", 1)
    for previous, command in zip(commands, commands[1:]):
        assert command.startswith("kerasseg train ")
        output = _option(previous, "--output")
        assert _option(command, "--init-weights") == f"{output}/best.keras"
        for option in ("--data", "--seed", "--test-fraction", "--val-fraction", "--model"):
            assert _option(command, option) == _option(previous, option)


def _option(command, option):
    words = command.split()
    return words[words.index(option) + 1]


@pytest.mark.parametrize("name", ENTRIES)
def test_card_and_registry_state_the_per_case_measurements(name):
    record = zoo.entry(name)
    per_case = _per_case(name)
    assert sorted(per_case["no_tta"]) == sorted(record["split"]["test"])
    assert ("tta" in per_case) == (record["metrics_tta"] is not None)
    for key, metrics in (("no_tta", record["metrics"]), ("tta", record["metrics_tta"])):
        if metrics is None:
            continue
        cases = per_case[key].values()
        foreground = record["class_names"][1:]
        means = [np.mean([case[c]["dice"] for c in foreground]) for case in cases]
        assert metrics["mean_dice"] == pytest.approx(np.mean(means), abs=1e-4)
        for c in foreground:
            assert metrics[f"dice_{c}"] == pytest.approx(
                np.mean([case[c]["dice"] for case in cases]), abs=1e-4)
    card = (ZOO / record["card"]).read_text()
    assert record["training"]["command"] in card
    assert name in ENSEMBLES or record["sha256"] in card  # an ensemble has no file
    assert f"{record['metrics']['mean_dice']:.3f}" in card
    readme = (ROOT / "README.md").read_text()
    assert f"[{name}](kerasseg/zoo/weights/{record['card']})" in readme
    assert f"{record['metrics']['mean_dice']:.3f}" in readme


@pytest.mark.parametrize("name", HIPPOCAMPUS)
def test_hippocampus_entries_reach_the_floor(name):
    record = zoo.entry(name)
    assert record["metrics"]["mean_dice"] >= HIPPOCAMPUS_FLOOR
    assert len(record["split"]["test"]) >= 40


@pytest.mark.parametrize("name", MODELS)
def test_golden_output_on_a_real_held_out_case(name):
    record = zoo.entry(name)
    golden = np.load(ZOO / f"{name}.golden.npz")
    dataset = _dataset(record)
    case_id = str(golden["case_id"])
    if case_id not in dataset.case_ids:
        pytest.skip(f"{case_id} is not in {dataset.root}")
    from kerasseg.inference import Predictor

    label, scores = Predictor(name).predict_case(dataset[case_id],
                                                 return_probabilities=True)
    expected = golden["labels"]
    assert label.shape == expected.shape
    assert np.mean(label == expected) >= 0.999
    crop = golden["slice_scores"]
    np.testing.assert_allclose(
        scores[int(golden["slice_index"]), :crop.shape[0], :crop.shape[1]], crop, atol=2e-3)


@pytest.mark.parametrize("name", MODELS)
def test_load_and_evaluate_held_out_cases_reproduces_the_card(name):
    from kerasseg.scoring import evaluate_model

    record = zoo.entry(name)
    dataset = _dataset(record)
    ids = _held_out(record, dataset, count=3)
    model, info = zoo.load(name, return_info=True)
    assert list(info.class_names) == record["class_names"] and info.zoo_entry == name
    report = evaluate_model(name, dataset.subset(ids))
    stated = _per_case(name)["no_tta"]
    for row in report["cases"]:
        for c in record["class_names"][1:]:
            assert row["metrics"][c]["dice"] == pytest.approx(stated[row["case_id"]][c]["dice"],
                                                              abs=2e-3)
    # Three cases vary more than the 42-case mean: a looser floor, on top of the per-case match.
    floor = HIPPOCAMPUS_FLOOR - 0.08 if name in HIPPOCAMPUS else 0.7
    assert report["mean_foreground_dice"] >= floor


@pytest.mark.parametrize("name", ENSEMBLES)
def test_ensemble_entry_is_the_best_choice_and_reproduces_its_card(name):
    from kerasseg.ensemble import predictor
    from kerasseg.scoring import evaluate_model

    record = zoo.entry(name)
    members = record["ensemble"]
    assert members == zoo.ensemble_members(name)[0] and set(members) <= set(MODELS)
    # The members share the split the ensemble states; its sizes are theirs together.
    for member in members:
        assert zoo.entry(member)["split"] == record["split"]
    assert record["params"] == sum(zoo.entry(m)["params"] for m in members)
    assert record["size"] == sum(zoo.entry(m)["size"] for m in members)
    # The members are the best-ranked combination on the model-selection cases; each
    # combination's stated mean is the mean of its stated per-case Dice.
    ranking = record["selection"]
    assert ranking[0]["members"] == members
    assert [row["mean_dice"] for row in ranking] == sorted(
        (row["mean_dice"] for row in ranking), reverse=True)
    selection = _per_case(name)["selection"]
    for row in ranking:
        per_case = selection[" + ".join(row["members"])]
        assert sorted(per_case) == sorted(record["split"]["val"])
        assert row["mean_dice"] == pytest.approx(np.mean(list(per_case.values())), abs=1e-4)
    # Three held-out cases in the bundled sample, predicted by name, give the card's Dice.
    dataset = _dataset(record)
    ids = _held_out(record, dataset, count=3)
    report = evaluate_model(None, dataset.subset(ids), predictor=predictor(name))
    stated = _per_case(name)["no_tta"]
    assert len(report["cases"]) == 3
    for row in report["cases"]:
        for c in record["class_names"][1:]:
            assert row["metrics"][c]["dice"] == pytest.approx(stated[row["case_id"]][c]["dice"],
                                                              abs=2e-3)


@pytest.mark.parametrize("name", ENSEMBLES)
def test_ensemble_choice_is_reproduced_on_model_selection_cases(name):
    from kerasseg.scoring import rank_ensembles

    record = zoo.entry(name)
    dataset = _dataset(record)
    ids = [case_id for case_id in record["split"]["val"] if case_id in dataset.case_ids][:1]
    assert ids, "the bundled sample holds model-selection cases of the hippocampus"
    candidates = sorted({m for row in record["selection"] for m in row["members"]})
    result = rank_ensembles(candidates, dataset.subset(ids))
    selection = _per_case(name)["selection"]
    assert len(result["ranking"]) == len(selection)
    for entry in result["ranking"]:
        stated = selection[_stated_key(selection, entry["members"])]
        assert entry["per_case"] == pytest.approx([stated[i] for i in ids], abs=2e-3)


def _stated_key(selection, members):
    """The key of a combination in the stated selection, whatever the members' order."""
    for key in selection:
        if sorted(key.split(" + ")) == sorted(members):
            return key
    raise AssertionError(f"the card states no combination {members}")


def test_predict_cli_with_a_zoo_name_reproduces_the_card(tmp_path):
    """``kerasseg predict --model hippocampus-unet`` on raw NIfTI files, scored afterwards."""
    name = "hippocampus-unet"
    record = zoo.entry(name)
    dataset = _dataset(record)
    ids = _held_out(record, dataset, count=4)
    inputs = tmp_path / "images"
    inputs.mkdir()
    for case_id in ids:
        source = dataset[case_id].image_paths[0]
        os.symlink(source, inputs / os.path.basename(source))
    assert main(["predict", "--model", name, "--input", str(inputs),
                 "--output", str(tmp_path / "out")]) == 0
    stated = _per_case(name)["no_tta"]
    for case_id in ids:
        case = dataset[case_id]
        written = tmp_path / "out" / os.path.basename(case.image_paths[0])
        predicted, _ = read_label(str(written))
        truth = case.load().label
        assert predicted.shape == truth.shape
        for index, c in enumerate(record["class_names"][1:], start=1):
            assert dice(predicted == index, truth == index) == pytest.approx(
                stated[case_id][c]["dice"], abs=2e-3)
