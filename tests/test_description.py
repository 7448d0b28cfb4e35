"""The typed model and run descriptions: validation, round trips and migration of old files."""

import json
import pathlib
import zipfile

import pytest

import kerasseg

from kerasseg.description import (
    FIXED_DEFAULTS,
    ModelInfo,
    Preprocessing,
    RunSettings,
    RunSpec,
)
from kerasseg.modelfile import read_info

WEIGHTS = pathlib.Path(__file__).resolve().parents[1] / "kerasseg" / "zoo" / "weights"
SHIPPED = sorted(WEIGHTS.glob("*.keras"))

# The info of a model trained before the info was typed (schema 1), written by hand: the
# version under its old key, a preprocessing spec from before multi-view models (no
# slice_axis) and no flip_axes (recorded since), as in files of that time.
OLD_INFO = {
    "kerasseg_model_version": 1,
    "model": "unet",
    "model_options": {"depth": 3, "base_filters": 16},
    "num_classes": 3,
    "class_names": ["background", "Anterior", "Posterior"],
    "modalities": ["MRI"],
    "channels": 3,
    "spatial_dims": 3,
    "format": "decathlon",
    "preprocessing": {"version": 1, "mode": "2.5d", "context": 1,
                      "target_spacing": [1.0, 1.0, None],
                      "normalization": {"method": "zscore", "params": {"nonzero": False}},
                      "patch_size": [64, 64]},
    "patch_size": [64, 64],
    "stride": 8,
    "training_data": "data/msd_hippocampus",
    "epoch": 12,
    "val_dice": 0.81,
}

# A run.json of that time: no version, settings without the options added since.
OLD_RUN = {
    "settings": {"model": "unet", "epochs": 2, "batch_size": 4, "steps_per_epoch": None,
                 "patch_size": "auto", "mode": "2.5d", "context": 1, "normalization": "zscore",
                 "target_spacing": None, "model_options": {"depth": 3}, "loss": "dice_ce",
                 "learning_rate": 0.001, "weight_decay": 0.0001, "schedule": "cosine",
                 "warmup_epochs": 0, "early_stopping": None, "val_fraction": 0.2,
                 "val_cases": None, "seed": 0, "strategy": "auto", "devices": None,
                 "mixed_precision": False, "augment": "default", "foreground_prob": 0.33,
                 "resume": False, "overwrite": False, "evaluate": True,
                 "output_dir": "/runs/old"},
    "split": {"train": ["hippocampus_001", "hippocampus_003"], "val": ["hippocampus_004"]},
    "patch_size": [64, 64],
    "patch_reason": "whole slices 35x51 padded to 40x56",
    "train_slices": 120,
    "data": {"root": "data/msd_hippocampus", "format": "decathlon", "cases": 3,
             "class_names": ["background", "Anterior", "Posterior"]},
    "info": {key: value for key, value in OLD_INFO.items() if key not in ("epoch", "val_dice")},
}


def _info(**changes):
    fields = dict(model="unet", num_classes=2, channels=1, patch_size=(64, 64), stride=8,
                  preprocessing=Preprocessing(mode="2d"), class_names=("bg", "fg"))
    fields.update(changes)
    return ModelInfo(**fields)


def test_the_shipped_zoo_entries_load_and_round_trip():
    assert [path.stem for path in SHIPPED] == [
        "hippocampus-deeplab", "hippocampus-fcn8s", "hippocampus-unet", "hippocampus-unet3d",
        "isbi2012-unet"]
    # The 3-D entry was written with the typed info (schema 2), in mode 3d.
    volume = WEIGHTS / "hippocampus-unet3d.keras"
    stored = json.loads(zipfile.ZipFile(volume).read("kerasseg.json"))
    assert stored["schema_version"] == 2
    info = read_info(volume)
    assert info.preprocessing.mode == "3d" and info.patch_size == (40, 56, 40)
    assert ModelInfo.from_dict(info.to_dict()) == info
    for path in [p for p in SHIPPED if p != volume]:
        info = read_info(path)
        assert isinstance(info, ModelInfo)
        stored = json.loads(zipfile.ZipFile(path).read("kerasseg.json"))
        assert stored["kerasseg_model_version"] == 1  # written before the typed info
        # Nothing is lost: the typed info writes back the same fields (schema 2 now).
        written = info.to_dict()
        assert written.pop("schema_version") == ModelInfo.SCHEMA_VERSION == 2
        assert written == {k: v for k, v in stored.items() if k != "kerasseg_model_version"}
        assert ModelInfo.from_dict(info.to_dict()) == info
    unet = read_info(WEIGHTS / "hippocampus-unet.keras")
    assert unet.preprocessing.mode == "2.5d" and unet.preprocessing.slice_axes == (0, 1, 2)
    assert unet.patch_size == (64, 64) and unet.flip_axes == () and unet.weights_storage == "float16"
    isbi = read_info(WEIGHTS / "isbi2012-unet.keras")
    assert isbi.label_values == (255, 0) and isbi.flip_axes == (0, 1)
    assert read_info(WEIGHTS / "hippocampus-deeplab.keras").shift_offsets[1] == (0, 2)
    # Files written before schema 2 do not say which version made them; the 3-D one does.
    assert {read_info(path).created_with for path in SHIPPED if path != volume} == {None}
    assert read_info(volume).created_with == kerasseg.__version__


def test_an_old_format_info_is_migrated():
    info = ModelInfo.from_dict(OLD_INFO)
    assert info.preprocessing.slice_axis == 0  # specs without it sliced along axis 0
    assert info.flip_axes is None  # unknown: flip TTA assumes both axes, as before
    assert info.preprocessing.target_spacing == (1.0, 1.0, None)
    assert info.epoch == 12 and info.val_dice == pytest.approx(0.81)
    assert info.created_with is None  # recorded since schema 2
    written = info.to_dict()
    assert written["schema_version"] == 2 and "kerasseg_model_version" not in written
    assert written["preprocessing"]["slice_axis"] == 0
    assert ModelInfo.from_dict(written) == info


def test_an_old_run_json_is_migrated(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(OLD_RUN))
    spec = RunSpec.read(path)
    # Options that did not exist then get the values the run ran with.
    assert spec.settings.val_every == FIXED_DEFAULTS["val_every"] == 1
    assert spec.settings.slice_axis == 0 and spec.settings.test_fraction == 0.0
    assert spec.settings.plan is False and spec.settings.augment_backend == "tf"
    assert spec.split == {"train": ["hippocampus_001", "hippocampus_003"],
                          "val": ["hippocampus_004"], "test": []}
    assert spec.patch_size == (64, 64) and spec.info.class_names[2] == "Posterior"
    spec.write(path)
    stored = json.loads(path.read_text())
    assert stored["schema_version"] == 2 and stored["info"]["schema_version"] == 2
    assert stored["settings"]["val_every"] == 1 and "schema_version" not in stored["settings"]
    assert RunSpec.read(path) == spec
    assert RunSpec.read(tmp_path / "missing.json") is None


@pytest.mark.parametrize("changes, message", [
    ({"stride": 0}, "`ModelInfo.stride` must be a positive integer. Received: 0"),
    ({"num_classes": True}, "`ModelInfo.num_classes` must be a positive integer"),
    ({"patch_size": [64]}, "`ModelInfo.patch_size` must be (height, width) or (depth, height, width)"),
    ({"class_names": "bg,fg"}, "`ModelInfo.class_names` must be a list of strings"),
    ({"class_names": ["bg"]}, "`ModelInfo.class_names` must be a name for each of the 2"),
    ({"label_values": [0, 1, 2]}, "`ModelInfo.label_values` must be a mask value for each"),
    ({"flip_axes": [3]}, "`ModelInfo.flip_axes` must be a list of image axes"),
    ({"flip_axes": [2]}, "`ModelInfo.flip_axes` must be axes below 2 for a model of mode '2d'"),
    ({"patch_size": [8, 64, 64]}, "`ModelInfo.patch_size` must be 2 sizes for a model of mode"),
    ({"shift_offsets": [[0, 0.5]]}, "`ModelInfo.shift_offsets` must be a non-empty list"),
    ({"weights_storage": "int8"}, "`ModelInfo.weights_storage` must be one of ['float32', "),
    ({"model_options": {"f": object()}}, "`ModelInfo.model_options` must be JSON-serializable"),
    ({"preprocessing": {"mode": "4d"}}, "`ModelInfo.preprocessing.mode` must be one of ['2d'"),
    ({"preprocessing": {"mode": "3d", "context": 1}},
     "`ModelInfo.preprocessing.context` must be 0 when mode is '3d'"),
    ({"preprocessing": {"mode": "2d", "context": 1}},
     "`ModelInfo.preprocessing.context` must be 0 when mode is '2d'"),
    ({"preprocessing": {"mode": "2d", "slice_axis": [0, 0]}},
     "`ModelInfo.preprocessing.slice_axis` must be an axis in 0..2 or a list of distinct"),
    ({"preprocessing": {"mode": "2d", "target_spacing": [1.0]}},
     "`ModelInfo.preprocessing.target_spacing` must be 2 or 3 positive numbers"),
    ({"preprocessing": {"mode": "2d", "normalization": "zscore"}},
     "`ModelInfo.preprocessing.normalization` must be a dict {'method': NAME"),
    ({"colour": "red"}, "`ModelInfo` holds unknown field(s) ['colour']"),
    ({"schema_version": 3}, "written with schema version 3 by a newer kerasseg"),
])
def test_invalid_info_names_the_field(changes, message):
    with pytest.raises(ValueError) as error:
        ModelInfo.from_dict({**_info().to_dict(), **changes})
    assert message in str(error.value)


def test_missing_fields_and_non_dicts_are_named():
    with pytest.raises(ValueError, match=r"`ModelInfo` lacks the required field\(s\) "
                                         r"\['channels', 'preprocessing'"):
        ModelInfo.from_dict({"model": "unet", "num_classes": 2})
    with pytest.raises(ValueError, match=r"`ModelInfo` must be a dict"):
        ModelInfo.from_dict(["unet"])
    with pytest.raises(ValueError, match=r"`RunSpec.settings.epochs` must be a positive integer"):
        RunSpec.from_dict({**OLD_RUN, "settings": {**OLD_RUN["settings"], "epochs": 0}})
    with pytest.raises(ValueError, match=r"`RunSpec.split` must be a dict \{'train'"):
        RunSpec.from_dict({**OLD_RUN, "split": ["a", "b"]})
    with pytest.raises(ValueError, match=r"`RunSpec.info.stride` must be a positive integer"):
        RunSpec.from_dict({**OLD_RUN, "info": {**OLD_RUN["info"], "stride": -1}})


def test_constructed_records_are_checked_and_frozen():
    with pytest.raises(ValueError, match="`ModelInfo.channels` must be a positive integer"):
        _info(channels=0)
    info = _info(class_names=["bg", "fg"], flip_axes=[1])
    assert info.class_names == ("bg", "fg") and info.flip_axes == (1,)
    with pytest.raises(ValueError, match="`ModelInfo.epoch` must be an integer >= 0"):
        info.replace(epoch=-1)
    with pytest.raises(Exception):
        info.stride = 4  # frozen: changes go through replace(), which validates
    assert info.replace(epoch=3).epoch == 3 and info.epoch is None
    # Fields left unset (None) are not written, so files stay as they were.
    assert "epoch" not in info.to_dict() and "state" not in info.to_dict()


def test_preprocessing_gives_the_pipeline_spec():
    from kerasseg.data.spec import make_preprocessing_spec

    spec = make_preprocessing_spec(mode="2.5d", context=2, slice_axis=(0, 2),
                                   target_spacing=(0.5, 0.5, None), patch_size=(32, 48))
    typed = Preprocessing.from_dict(spec)
    assert typed.to_dict() == spec
    assert typed.slice_axes == (0, 2) and typed.patch_size == (32, 48)


def test_run_settings_take_the_trainers_arguments():
    settings = RunSettings.from_dict({"model": "deeplab", "epochs": None, "budget": 1200,
                                      "patch_size": [64, 96], "augment": {"preset": "light"},
                                      "mixed_precision": "mixed_bfloat16",
                                      "target_spacing": "keep", "val_cases": ["a", 3]})
    assert settings.patch_size == (64, 96) and settings.budget == 1200.0
    assert settings.to_dict()["augment"] == {"preset": "light"}
    assert RunSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ValueError, match="`RunSettings.augment_backend` must be one of"):
        RunSettings.from_dict({"model": "unet", "augment_backend": "torch"})
    with pytest.raises(ValueError, match=r"`RunSettings` holds unknown field\(s\) \['epoch'\]"):
        RunSettings.from_dict({"model": "unet", "epoch": 3})
