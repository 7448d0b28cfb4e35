"""`kerasseg.train` end to end on real MRI cases, with tiny models and few steps."""

import csv
import json
import os

import pytest

import kerasseg
from kerasseg.description import RunSpec
from kerasseg.modelfile import load_model, read_info
from tests.small import TINY_UNET

# Options the plan would fill are given where a test checks the mechanics they drive.
FAST = dict(epochs=2, steps_per_epoch=2, batch_size=4, model_options=TINY_UNET, verbose=0,
            augment="light", mode="2d", val_every=1)
# What the plan adds to the given model options.
PLANNED_UNET = {**TINY_UNET, "normalization": "instance"}


@pytest.fixture(scope="module")
def run(tiny, tmp_path_factory):
    output = tmp_path_factory.mktemp("run")
    return kerasseg.train(tiny, "unet", output_dir=output, **FAST)


def test_run_folder_contents(run):
    for name in ("best.keras", "last.keras", "history.csv", "run.json", "train.log"):
        assert os.path.exists(os.path.join(run.output_dir, name)), name
    assert os.path.isdir(os.path.join(run.output_dir, "logs"))
    with open(os.path.join(run.output_dir, "history.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    assert {"loss", "dice", "val_loss", "val_dice", "learning_rate"} <= set(rows[0])
    assert run.epochs_run == 2
    assert run.best_val_dice == pytest.approx(max(float(r["val_dice"]) for r in rows))


def test_run_json_records_split_by_case_and_settings(run, tiny):
    with open(os.path.join(run.output_dir, "run.json")) as handle:
        stored = json.load(handle)
    train_ids, val_ids = stored["split"]["train"], stored["split"]["val"]
    assert not set(train_ids) & set(val_ids)
    assert sorted(train_ids + val_ids) == sorted(tiny.case_ids)
    assert len(val_ids) == 1  # round(0.2 * 6)
    assert stored["settings"]["epochs"] == 2
    # The file is a RunSpec: typed, versioned, with the model's info.
    spec = RunSpec.read(os.path.join(run.output_dir, "run.json"))
    assert stored["schema_version"] == RunSpec.SCHEMA_VERSION
    assert spec.settings.epochs == 2 and spec.split["val"] == val_ids
    assert spec.info == read_info(run.best_model).replace(epoch=None, val_dice=None)
    # Whole slices of the training and validation cases, padded to the next multiple of the
    # U-Net's stride (4 at depth 2).
    shapes = [tiny[case_id].load().image.shape[1:3] for case_id in train_ids + val_ids]
    expected = [-(-max(s[axis] for s in shapes) // 4) * 4 for axis in (0, 1)]
    assert stored["patch_size"] == expected


def test_best_model_carries_what_inference_needs(run):
    info = read_info(run.best_model)
    assert info.class_names == ("background", "Anterior", "Posterior")
    assert info.preprocessing.normalization["method"] == "zscore"
    assert info.model == "unet" and info.model_options == PLANNED_UNET
    assert info.stride == 4 and info.channels == 1
    assert info.created_with == kerasseg.__version__
    model, _ = load_model(run.best_model)
    assert model.output_shape == (None, None, None, 3)


def test_final_evaluation_is_per_case_in_3d(run, tiny):
    evaluation = run.evaluation
    assert len(evaluation["cases"]) == 1
    case = evaluation["cases"][0]
    original = tiny[case["case_id"]].load()
    assert case["shape"] == list(original.label.shape)
    assert set(case["metrics"]) == {"Anterior", "Posterior"}
    assert 0.0 <= evaluation["mean_foreground_dice"] <= 1.0


def test_existing_run_needs_resume_or_overwrite(run, tiny):
    with pytest.raises(ValueError, match="already holds a run.*resume=True"):
        kerasseg.train(tiny, "unet", output_dir=run.output_dir, **FAST)


def test_resume_of_a_finished_run_trains_nothing(run, tiny):
    before = os.path.getmtime(os.path.join(run.output_dir, "last.keras"))
    again = kerasseg.train(tiny, "unet", output_dir=run.output_dir, resume=True, **FAST)
    assert again.epochs_run == 2 and len(again.history) == 2
    assert os.path.getmtime(os.path.join(run.output_dir, "last.keras")) == before


def test_resume_continues_to_the_same_epoch_count(tiny, tmp_path):
    first = kerasseg.train(tiny, "unet", output_dir=tmp_path, **{**FAST, "epochs": 1},
                           evaluate=False)
    assert first.epochs_run == 1
    # Same folder, more epochs requested, resume: the stored run (1 epoch) is complete.
    done = kerasseg.train(tiny, "unet", output_dir=tmp_path, resume=True, **FAST)
    assert done.epochs_run == 1
    # Simulate a run stopped after epoch 1 of 2 by rewriting the stored epoch count.
    with open(tmp_path / "run.json") as handle:
        stored = json.load(handle)
    stored["settings"]["epochs"] = 2
    del stored["settings"]["val_every"]  # as runs stored before the setting existed
    with open(tmp_path / "run.json", "w") as handle:
        json.dump(stored, handle)
    resumed = kerasseg.train(tiny, "unet", output_dir=tmp_path, resume=True, **FAST)
    assert resumed.epochs_run == 2
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    assert all("val_dice" in row for row in resumed.history)  # they validated every epoch
    # The optimizer continued: its step counter covers both epochs.
    model, _ = load_model(tmp_path / "last.keras", compile=True)
    assert int(model.optimizer.iterations.numpy()) == 2 * FAST["steps_per_epoch"]


def test_early_stopping(tiny, tmp_path, monkeypatch):
    from kerasseg.training import keeper

    values = iter([0.5, 0.4, 0.3, 0.2, 0.1])
    original = keeper.RunKeeper.on_epoch_end

    def fake(self, epoch, logs=None):
        logs = dict(logs or {})
        logs["val_dice"] = next(values)
        return original(self, epoch, logs)

    monkeypatch.setattr(keeper.RunKeeper, "on_epoch_end", fake)
    result = kerasseg.train(tiny, "unet", output_dir=tmp_path, early_stopping=2, evaluate=False,
                            **{**FAST, "epochs": 5, "steps_per_epoch": 1})
    assert result.epochs_run == 3  # best at 1, no improvement at 2 and 3
    assert result.best_epoch == 1 and result.best_val_dice == pytest.approx(0.5)


def test_validation_epochs_every_nth_and_the_last():
    from kerasseg.training.trainer import validation_epochs

    assert validation_epochs(10, 4) == [4, 8, 10]
    assert validation_epochs(3) == [1, 2, 3]
    assert validation_epochs(6, 3) == [3, 6]
    assert validation_epochs(2, 5) == [2]
    with pytest.raises(ValueError, match="`val_every` must be a positive int"):
        validation_epochs(4, 0)


def test_val_every_validates_only_the_chosen_epochs(tiny, tmp_path):
    result = kerasseg.train(tiny, "unet", output_dir=tmp_path, evaluate=False,
                            **{**FAST, "epochs": 3, "steps_per_epoch": 1, "val_every": 2})
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert ["val_dice" in row for row in result.history] == [False, True, True]
    # Wall-clock seconds per epoch, and of the validation where there was one.
    assert ["val_seconds" in row for row in result.history] == [False, True, True]
    assert all(0.0 < row["val_seconds"] < row["seconds"] for row in result.history[1:])
    assert result.history[0]["seconds"] > 0.0
    assert result.best_epoch in (2, 3)
    assert result.best_val_dice == pytest.approx(
        max(row["val_dice"] for row in result.history[1:]))
    assert read_info(result.best_model).epoch == result.best_epoch
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["val_dice"] == "" and float(rows[1]["val_dice"]) > 0.0
    stored = json.loads((tmp_path / "run.json").read_text())
    assert stored["settings"]["val_every"] == 2


def test_early_stopping_counts_validations_not_epochs(tiny, tmp_path, monkeypatch):
    from kerasseg.training import keeper

    values = iter([0.5, 0.4, 0.3, 0.2])
    original = keeper.RunKeeper.on_epoch_end

    def fake(self, epoch, logs=None):
        logs = dict(logs or {})
        if "val_dice" in logs:
            logs["val_dice"] = next(values)
        return original(self, epoch, logs)

    monkeypatch.setattr(keeper.RunKeeper, "on_epoch_end", fake)
    result = kerasseg.train(tiny, "unet", output_dir=tmp_path, early_stopping=2, evaluate=False,
                            **{**FAST, "epochs": 10, "steps_per_epoch": 1, "val_every": 2})
    # Validations after epochs 2 (best), 4 and 6: two without improvement stop the run.
    assert result.epochs_run == 6
    assert result.best_epoch == 2 and result.best_val_dice == pytest.approx(0.5)


@pytest.mark.parametrize("option,value,message", [
    ("epochs", 0, "`epochs` must be a positive int. Received: epochs=0"),
    ("val_every", 0, "`val_every` must be a positive int. Received: val_every=0"),
    ("batch_size", -1, "`batch_size` must be a positive int"),
    ("loss", "l1", "`loss` must be one of"),
    ("schedule", "exp", "`schedule` must be one of"),
    ("val_fraction", 1.5, "`val_fraction` must be in (0, 1)"),
    ("patch_size", "big", "`patch_size` must be 'auto', a positive int or (height, width)"),
    ("strategy", "horovod", "`strategy` must be one of"),
])
def test_invalid_settings(tiny, tmp_path, option, value, message):
    with pytest.raises(ValueError) as info:
        kerasseg.train(tiny, "unet", output_dir=tmp_path, **{**FAST, option: value})
    assert message in str(info.value)


def test_patch_not_multiple_of_stride(tiny, tmp_path):
    with pytest.raises(ValueError, match="multiple of the model stride 4"):
        kerasseg.train(tiny, "unet", output_dir=tmp_path, **{**FAST, "patch_size": 30})


def test_unknown_model_name(tiny, tmp_path):
    with pytest.raises(ValueError, match="`name` must be one of"):
        kerasseg.train(tiny, "segnet", output_dir=tmp_path, **FAST)


@pytest.mark.parametrize("model", ["unet3d", "VNet"])
def test_3d_families_on_images_are_refused_before_any_file_is_written(isbi_dir, tmp_path,
                                                                      model):
    output = tmp_path / "run"
    with pytest.raises(ValueError) as info:
        kerasseg.train(isbi_dir, model, output_dir=output, **{**FAST, "model_options": {},
                                                                "mode": None})
    assert str(info.value) == (
        f"`model` {model.lower()!r} is a 3-D family and the data holds 2-D images; train one "
        f"of the 2-D families ['deeplab', 'fcn8s', 'unet']. Received: model={model!r}")
    assert not output.exists()


def test_a_mode_that_does_not_fit_the_family_is_refused_before_the_data_is_read(tmp_path):
    from kerasseg.training.setup import validate

    # Refused from the settings alone: the data is never looked at.
    with pytest.raises(ValueError, match=r"`mode` '2.5d' does not fit the 3-D family 'vnet'"):
        validate({"model": "vnet", "mode": "2.5d", "loss": "dice_ce", "patch_size": None,
                  "val_cases": None})


def test_slice_axis_sets_patch_and_prediction_grid(tiny, tmp_path):
    result = kerasseg.train(tiny, "unet", output_dir=tmp_path, slice_axis=2, evaluate=True,
                            **{**FAST, "epochs": 1, "steps_per_epoch": 1})
    with open(tmp_path / "run.json") as handle:
        stored = json.load(handle)
    # Slices across axis 2 are (D, H): the patch is the largest (D, H) rounded up to 4.
    shapes = [tiny[case_id].load().image.shape[:2]
              for case_id in stored["split"]["train"] + stored["split"]["val"]]
    expected = [-(-max(s[axis] for s in shapes) // 4) * 4 for axis in (0, 1)]
    assert stored["patch_size"] == expected
    assert read_info(result.best_model).preprocessing.slice_axis == 2
    case = result.evaluation["cases"][0]
    assert case["shape"] == list(tiny[case["case_id"]].load().label.shape)


def test_multi_view_run_covers_every_view_and_predicts_the_original_grid(tiny, tmp_path):
    result = kerasseg.train(tiny, "unet", output_dir=tmp_path, slice_axis=[0, 2], evaluate=True,
                            **{**FAST, "epochs": 1, "steps_per_epoch": 1})
    with open(tmp_path / "run.json") as handle:
        stored = json.load(handle)
    # The patch holds the largest slice of either view: (H, W) across axis 0, (D, H) across 2.
    shapes = [tiny[case_id].load().image.shape[:3] for case_id in stored["split"]["train"]]
    faces = [(s[1], s[2]) for s in shapes] + [(s[0], s[1]) for s in shapes]
    expected = [-(-max(f[axis] for f in faces) // 4) * 4 for axis in (0, 1)]
    assert stored["patch_size"] == expected
    assert read_info(result.best_model).preprocessing.slice_axis == (0, 2)
    case = result.evaluation["cases"][0]
    assert case["shape"] == list(tiny[case["case_id"]].load().label.shape)


def test_training_prepares_each_case_once(tiny, tmp_path, monkeypatch):
    """The slices that set the patch size are the ones the pipeline samples: every training
    and validation case is read and preprocessed exactly once in a run."""
    from kerasseg.data import cache, prepare

    calls = []
    original = prepare.prepare_case

    def counting(case, spec, case_id=None):
        calls.append(case_id)
        return original(case, spec, case_id=case_id)

    monkeypatch.setattr(prepare, "prepare_case", counting)
    monkeypatch.setattr(cache, "prepare_case", counting)
    kerasseg.train(tiny, "unet", output_dir=tmp_path, patch_size="auto", evaluate=False,
                   **{**FAST, "epochs": 1, "steps_per_epoch": 1})
    with open(tmp_path / "run.json") as handle:
        split = json.load(handle)["split"]
    assert sorted(calls) == sorted(split["train"] + split["val"])


def test_test_fraction_holds_cases_out_of_training_and_selection(sample, tmp_path):
    data = sample.subset(list(range(10)))
    result = kerasseg.train(data, "unet", output_dir=tmp_path, test_fraction=0.2,
                            **{**FAST, "epochs": 1, "steps_per_epoch": 1})
    with open(tmp_path / "run.json") as handle:
        split = json.load(handle)["split"]
    assert len(split["test"]) == 2 and len(split["val"]) == 2 and len(split["train"]) == 6
    assert not set(split["test"]) & (set(split["train"]) | set(split["val"]))
    tested = sorted(case["case_id"] for case in result.evaluation["test"]["cases"])
    assert tested == sorted(split["test"])
    assert (tmp_path / "test_cases.json").exists()


def test_invalid_test_fraction(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"`test_fraction` must be in \[0, 1\)"):
        kerasseg.train(tiny, "unet", output_dir=tmp_path, test_fraction=1.0, **FAST)
