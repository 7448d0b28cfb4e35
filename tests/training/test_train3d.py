"""`kerasseg.train` of the 3-D families (mode "3d") on real MRI cases, tiny models, few steps."""

import json
import os

import numpy as np
import pytest

import kerasseg
from kerasseg.inference import Predictor
from kerasseg.modelfile import read_info

TINY_UNET3D = {"depth": 2, "base_filters": 4}
FAST3D = dict(epochs=2, steps_per_epoch=2, batch_size=2, model_options=TINY_UNET3D, verbose=0,
              plan=False, val_every=1, augment={"preset": "light", "mirror_axes": [2]})


@pytest.fixture(scope="module")
def run3d(tiny, tmp_path_factory):
    output = tmp_path_factory.mktemp("run3d")
    return kerasseg.train(tiny, "unet3d", output_dir=output, **FAST3D)


def test_3d_run_trains_on_whole_volumes_and_records_mode_3d(run3d, tiny):
    with open(os.path.join(run3d.output_dir, "run.json")) as handle:
        stored = json.load(handle)
    ids = stored["split"]["train"] + stored["split"]["val"]
    shapes = [tiny[case_id].load().image.shape[:3] for case_id in ids]
    # plan=False: mode 3d for a 3-D family, whole training volumes padded to the stride 4.
    train_shapes = [tiny[case_id].load().image.shape[:3] for case_id in stored["split"]["train"]]
    expected = [-(-max(s[axis] for s in train_shapes) // 4) * 4 for axis in range(3)]
    assert stored["patch_size"] == expected
    assert len(shapes) == 6 and run3d.epochs_run == 2
    info = read_info(run3d.best_model)
    assert info.preprocessing.mode == "3d" and info.preprocessing.context == 0
    assert list(info.patch_size) == expected
    assert info.flip_axes == (2,)                 # the axes the augmentation mirrored
    assert info.model == "unet3d" and info.channels == 1
    assert 0.0 <= run3d.best_val_dice <= 1.0


def test_3d_model_predicts_a_case_at_its_original_grid(run3d, tiny):
    predictor = Predictor(run3d.best_model, tta=True)
    case = tiny[0].load()
    label, probs = predictor.predict_case(tiny[0], return_probabilities=True)
    assert label.shape == case.label.shape and probs.shape == case.label.shape + (3,)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-4)
    assert set(np.unique(label)) <= {0, 1, 2}


def test_3d_run_resumes_where_it_stopped(tiny, tmp_path):
    from kerasseg.modelfile import load_model

    kerasseg.train(tiny, "unet3d", output_dir=tmp_path, **{**FAST3D, "epochs": 1},
                   evaluate=False)
    # Simulate a run stopped after epoch 1 of 2 by rewriting the stored epoch count.
    with open(tmp_path / "run.json") as handle:
        stored = json.load(handle)
    stored["settings"]["epochs"] = 2
    with open(tmp_path / "run.json", "w") as handle:
        json.dump(stored, handle)
    resumed = kerasseg.train(tiny, "unet3d", output_dir=tmp_path, resume=True, **FAST3D,
                             evaluate=False)
    assert resumed.epochs_run == 2 and [row["epoch"] for row in resumed.history] == [1, 2]
    model, info = load_model(tmp_path / "last.keras", compile=True)
    assert int(model.optimizer.iterations.numpy()) == 2 * FAST3D["steps_per_epoch"]
    assert info.preprocessing.mode == "3d"


@pytest.mark.parametrize("options, message", [
    (dict(model="unet3d", mode="2.5d"), "`mode` '2.5d' does not fit the 3-D family"),
    (dict(model="unet", mode="3d"), "`mode` '3d' does not fit the 2-D family"),
    (dict(model="unet3d", patch_size=(16, 16)), r"\(depth, height, width\) for a 3-D family"),
    (dict(model="unet3d", patch_size=(16, 16, 18)), "multiple of the model stride 4 for unet3d"),
    (dict(model="unet3d", augment={"preset": "light", "flip_axes": [1]}), "flip_axes"),
])
def test_3d_settings_that_do_not_fit_are_refused(tiny, tmp_path, options, message):
    settings = {**FAST3D, "model_options": TINY_UNET3D if options["model"] == "unet3d" else {}}
    settings.update({k: v for k, v in options.items() if k != "model"})
    with pytest.raises(ValueError, match=message):
        kerasseg.train(tiny, options["model"], output_dir=tmp_path / "r", **settings)


def test_3d_run_from_other_weights_under_mixed_precision(run3d, tiny, tmp_path):
    """--init-weights copies a 3-D model's weights (a learning rate of 1e-12 leaves them
    where they started) and mixed bfloat16 trains the 3-D family."""
    from kerasseg.modelfile import load_model

    result = kerasseg.train(tiny, "unet3d", output_dir=tmp_path,
                            **{**FAST3D, "epochs": 1, "learning_rate": 1e-12},
                            init_weights=run3d.best_model, mixed_precision="mixed_bfloat16",
                            evaluate=False)
    source, _ = load_model(run3d.best_model)
    trained, info = load_model(result.best_model)
    np.testing.assert_allclose(trained.get_weights()[0], source.get_weights()[0], atol=1e-6)
    assert info.preprocessing.mode == "3d"
    assert np.isfinite(result.history[0]["loss"])
