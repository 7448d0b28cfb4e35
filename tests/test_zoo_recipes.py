"""The zoo's training recipes (scripts/zoo_recipes.py): how later stages change arguments,
and that every shipped entry records the command its recipe gives."""

import importlib.util
import pathlib

import pytest

from kerasseg import zoo

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recipes():
    spec = importlib.util.spec_from_file_location("zoo_recipes", ROOT / "scripts" / "zoo_recipes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_overrides_replace_values_in_place_and_append_new_options(recipes):
    args = ["--model", "unet", "--learning-rate", "2e-3", "--no-evaluate"]
    assert recipes._with(args, ["--learning-rate", "1e-3", "--slice-axis", "0,1,2", "--resume"]) == [
        "--model", "unet", "--learning-rate", "1e-3", "--no-evaluate",
        "--slice-axis", "0,1,2", "--resume"]
    assert args[3] == "2e-3"  # the recipe's own list is left alone


def test_repeatable_key_value_options_are_replaced_by_key(recipes):
    args = ["--augment", "light", "--augment-option", "flip_prob=0",
            "--model-option", "depth=3", "--model-option", "base_filters=32"]
    out = recipes._with(args, ["--augment", "default", "--augment-option", "rot90_prob=0",
                               "--augment-option", "flip_prob=0.5",
                               "--model-option", "base_filters=16"])
    assert out == ["--augment", "default", "--augment-option", "flip_prob=0.5",
                   "--model-option", "depth=3", "--model-option", "base_filters=16",
                   "--augment-option", "rot90_prob=0"]


def test_stages_chain_their_runs(recipes):
    for name in recipes.RECIPES:
        commands = recipes.train_commands(name, runs="R")
        folders = recipes.run_folders(name, runs="R")
        assert len(commands) == len(folders) == 1 + len(recipes.RECIPES[name].get("refine", []))
        for command, folder in zip(commands, folders):
            assert command[command.index("--output") + 1] == folder
        for previous, command in zip(folders, commands[1:]):
            assert command[command.index("--init-weights") + 1] == f"{previous}/best.keras"


MODELS = [name for name in zoo.list_entries() if not zoo.is_ensemble(name)]
ENSEMBLES = [name for name in zoo.list_entries() if zoo.is_ensemble(name)]


@pytest.mark.parametrize("name", MODELS)
def test_recorded_command_is_the_current_recipe(recipes, name):
    # scripts/zoo_recipes.py is what `scripts/build_zoo.py train` runs: the command an
    # entry states must be the one that reproduces it with this version of kerasseg.
    expected = "\n".join("kerasseg " + " ".join(c) for c in recipes.train_commands(name))
    assert zoo.entry(name)["training"]["command"] == expected


@pytest.mark.parametrize("name", ENSEMBLES)
def test_an_ensemble_records_its_candidates_choice(recipes, name):
    recipe = recipes.ENSEMBLES[name]
    models = " ".join(f"--model {candidate}" for candidate in recipe["candidates"])
    expected = f"kerasseg choose-ensemble {models} --data ../shared/data/{recipe['data']}"
    record = zoo.entry(name)
    assert record["training"]["command"] == expected
    assert len(record["selection"]) == 2 ** len(recipe["candidates"]) - 1
    assert {tuple(row["members"]) for row in record["selection"]} >= {
        (candidate,) for candidate in recipe["candidates"]}


@pytest.mark.parametrize("name", MODELS)
def test_recorded_shift_averaging_is_the_recipes(recipes, name):
    from kerasseg.inference import shift_grid

    step = recipes.RECIPES[name].get("shift_step", 0)
    expected = [list(shift) for shift in shift_grid(step)] if step else None
    assert zoo.entry(name)["input"].get("shift_offsets") == expected


def test_packaging_counts_epochs_and_the_best_one_across_stages(tmp_path):
    spec = importlib.util.spec_from_file_location("build_zoo", ROOT / "scripts" / "build_zoo.py")
    build_zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_zoo)
    first, second = tmp_path / "stage1", tmp_path / "stage2"
    first.mkdir(), second.mkdir()
    (first / "history.csv").write_text(
        "epoch,loss,val_dice\n1,0.5,0.70\n2,0.4,0.80\n3,0.3,0.80\n")
    # A run validating every second epoch (--val-every 2) leaves the other cells empty.
    (second / "history.csv").write_text(
        "epoch,loss,val_dice\n1,0.3,\n2,0.2,0.85\n3,0.25,\n4,0.2,0.84\n")
    assert build_zoo._epochs([first]) == (3, 2)  # the first of equal values
    assert build_zoo._epochs([first, second]) == (7, 5)
    (second / "history.csv").write_text("epoch,loss\n1,0.3\n")
    assert build_zoo._epochs([first, second]) == (4, None)
