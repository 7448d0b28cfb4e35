"""Planned runs: the time budget, a single case, inference/training agreement, divergence."""

import json
import logging

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg.cli import main
from kerasseg.modelfile import load_model, read_info
from kerasseg.sample import hippocampus_path
from kerasseg.training import budget as budget_lib
from kerasseg.training import keeper
from tests.small import TINY_UNET

TINY = dict(steps_per_epoch=2, batch_size=4, model_options=TINY_UNET, verbose=0,
            evaluate=False, mode="2d", augment="none")


@pytest.fixture(autouse=True)
def _run_messages_reach_caplog(caplog):
    """A run stops the ``kerasseg`` logger from propagating (its messages go to train.log),
    so they never reach the root logger, where caplog's handler is. pytest also hands the
    handler to loggers that are already non-propagating when a test starts, which covers
    every test but the first to train in its process: give it to the logger here, once."""
    logger = logging.getLogger("kerasseg")
    added = caplog.handler not in logger.handlers
    if added:
        logger.addHandler(caplog.handler)
    yield
    if added:
        logger.removeHandler(caplog.handler)


def test_fit_epochs_by_hand():
    times = budget_lib.StepTimes(step_seconds=0.2, val_batch_seconds=0.5, val_batches=8,
                                 setup_seconds=5.0)
    # 600 s budget, 50 s spent, final evaluation 4 s: 546 s left. An epoch of 100 steps is
    # 20 s plus a validation (4 s) every 3rd epoch; the last epoch always validates:
    # floor((546 - 4 * (1 - 1/3)) / (20 + 4/3)) = floor(543.33 / 21.33) = 25.
    assert budget_lib.fit_epochs(600, 50, times, 100, 3) == 25
    assert budget_lib.fit_epochs(600, 50, times, 100, 3, max_epochs=10) == 10
    # Not even one epoch fits: one, with a warning.
    assert budget_lib.fit_epochs(30, 25, times, 100, 1) == 1


def test_budget_sets_the_epochs_from_the_measured_step_time(tiny, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="kerasseg"):
        result = kerasseg.train(tiny, "unet", output_dir=tmp_path, budget="30s", val_every=1,
                                **TINY)
    stored = json.loads((tmp_path / "run.json").read_text())["settings"]
    measured = stored["measured"]
    assert measured["step_seconds"] > 0 and measured["val_batches"] >= 1
    assert stored["budget"] == 30.0 and stored["epochs"] >= 1
    # The planned epochs run, unless the machine turned slower (then the run says so).
    assert result.epochs_run == stored["epochs"] or (
        1 <= result.epochs_run < stored["epochs"] and "time budget spent" in caplog.text)
    # The epochs chosen fit in the budget by the run's own measurement.
    epoch = stored["steps_per_epoch"] * measured["step_seconds"] + \
        measured["val_batch_seconds"] * measured["val_batches"]
    assert stored["epochs"] == 1 or stored["epochs"] * epoch <= 30.0
    plan = json.loads((tmp_path / "plan.json").read_text())
    rows = {row["name"]: row for row in plan["rows"]}
    assert rows["budget"]["given"] and rows["epochs"]["value"] is None


def test_out_of_time_by_hand():
    # The next epoch (40 s) would end at 140: 10 s past a deadline of 130 is within half an
    # epoch (20 s); 25 s past 115 is not.
    assert not keeper.out_of_time(100.0, 40.0, 130.0)
    assert keeper.out_of_time(100.0, 40.0, 115.0)
    assert not keeper.out_of_time(100.0, 40.0, 120.0)  # exactly half an epoch late
    assert keeper.out_of_time(100.0, 40.0, 119.9)


def test_a_run_that_falls_behind_its_budget_stops_and_keeps_its_best_model(
        tiny, tmp_path, monkeypatch, caplog):
    class SlowClock:
        """The machine turns slow after the measurement: each reading is 1000 s later."""

        now = 0.0

        def perf_counter(self):
            SlowClock.now += 1000.0
            return SlowClock.now

    monkeypatch.setattr(keeper, "time", SlowClock())
    with caplog.at_level(logging.WARNING, logger="kerasseg"):
        result = kerasseg.train(tiny, "unet", output_dir=tmp_path, budget="2m", val_every=1,
                                **TINY)
    stored = json.loads((tmp_path / "run.json").read_text())["settings"]
    assert stored["epochs"] > 1  # the step time measured at the start fitted several epochs
    assert result.epochs_run == 1 and result.best_epoch == 1
    assert f"time budget spent: stopping after epoch 1 of {stored['epochs']}" in caplog.text
    assert read_info(result.best_model).epoch == 1
    # Not an early stop: resuming continues to the planned epochs (two here, to stay short).
    assert keeper.load_state(str(tmp_path))["stopped_early"] is False
    monkeypatch.undo()
    run_file = tmp_path / "run.json"
    stored_run = json.loads(run_file.read_text())
    stored_run["settings"]["epochs"] = 2
    run_file.write_text(json.dumps(stored_run))
    resumed = kerasseg.train(tiny, "unet", output_dir=tmp_path, resume=True, **TINY)
    assert resumed.epochs_run == 2 and [row["epoch"] for row in resumed.history] == [1, 2]
    settings = json.loads(run_file.read_text())["settings"]
    assert settings["budget"] == 120.0 and settings["epochs"] == 2


def test_epochs_and_budget_together_are_refused(tiny, tmp_path):
    with pytest.raises(ValueError, match="Give either `epochs` or `budget`"):
        kerasseg.train(tiny, "unet", output_dir=tmp_path, epochs=2, budget="1m", **TINY)
    # Also with resume=True where there is no run to resume (a fresh run).
    with pytest.raises(ValueError, match="Give either `epochs` or `budget`"):
        kerasseg.train(tiny, "unet", output_dir=tmp_path / "empty", epochs=2, budget="1m",
                       resume=True, **TINY)


def test_a_single_case_trains_and_validates_on_itself(sample, tmp_path, caplog):
    one = sample.subset([0])
    with caplog.at_level(logging.WARNING, logger="kerasseg"):
        result = kerasseg.train(one, "unet", output_dir=tmp_path, epochs=1, **TINY)
    stored = json.loads((tmp_path / "run.json").read_text())
    assert stored["split"]["train"] == stored["split"]["val"] == [one.case_ids[0]]
    assert "one case only" in caplog.text
    assert result.best_val_dice is not None


def _slices(case, stride):
    image = case.load().image[..., 0]
    image = (image - image.mean()) / image.std()
    height = -(-image.shape[1] // stride) * stride
    width = -(-image.shape[2] // stride) * stride
    padded = np.zeros((8, height, width, 1), np.float32)
    padded[:, :image.shape[1], :image.shape[2], 0] = image[10:18]
    return padded


def _mode_gap(path, case):
    model, info = load_model(path)
    x = _slices(case, info.stride)
    inference = keras.ops.convert_to_numpy(keras.ops.softmax(model(x, training=False)))
    training = keras.ops.convert_to_numpy(keras.ops.softmax(model(x, training=True)))
    return float(np.abs(inference - training).max())


def test_saved_model_agrees_in_inference_and_training_mode(tiny, tmp_path):
    """Instance normalization (planned) has no running statistics: both modes agree.

    The same short run with batch normalization shows what the planned layers avoid: after
    a few updates at momentum 0.99 its moving statistics are far from the data's.
    """
    settings = dict(TINY, epochs=1, steps_per_epoch=4, mixed_precision=False,
                    learning_rate=1e-2)
    planned = kerasseg.train(tiny, "unet", output_dir=tmp_path / "planned", **settings)
    assert read_info(planned.best_model).model_options["normalization"] == "instance"
    assert _mode_gap(planned.best_model, tiny[0]) < 1e-4
    batch = kerasseg.train(tiny, "unet", output_dir=tmp_path / "batch",
                           **{**settings, "model_options": {**TINY_UNET,
                                                            "normalization": "batch"}})
    assert _mode_gap(batch.best_model, tiny[0]) > 0.05


def test_diverging_thresholds():
    assert keeper.diverging(0.74, 0.19)
    assert not keeper.diverging(0.74, 0.45)  # gap 0.29 < 0.3
    assert keeper.diverging(0.80, 0.50)      # gap exactly 0.3
    assert not keeper.diverging(0.45, 0.0)   # training itself has not learned yet


def test_divergence_advice_names_batch_norm_only_when_present():
    with_bn = kerasseg.build("unet", input_shape=(None, None, 1), num_classes=2,
                             **TINY_UNET, normalization="batch")
    without = kerasseg.build("unet", input_shape=(None, None, 1), num_classes=2,
                             **TINY_UNET, normalization="instance")
    first = keeper.divergence_advice(0.74, 0.19, with_bn)
    assert "validation Dice 0.19 stays far below training Dice 0.74" in first
    assert "(1) batch-normalization statistics" in first
    assert "normalization=instance" in first
    other = keeper.divergence_advice(0.74, 0.19, without)
    assert "batch-normalization" not in other and "(1) overfitting" in other


def test_the_run_warns_once_after_two_diverging_validations(tiny, tmp_path, monkeypatch,
                                                             caplog):
    values = iter([(0.8, 0.1), (0.8, 0.7), (0.9, 0.2), (0.9, 0.1), (0.9, 0.1), (0.9, 0.1)])
    original = keeper.RunKeeper.on_epoch_end

    def fake(self, epoch, logs=None):
        logs = dict(logs or {})
        logs["dice"], logs["val_dice"] = next(values)
        return original(self, epoch, logs)

    monkeypatch.setattr(keeper.RunKeeper, "on_epoch_end", fake)
    with caplog.at_level(logging.WARNING, logger="kerasseg"):
        kerasseg.train(tiny, "unet", output_dir=tmp_path, val_every=1,
                       **{**TINY, "epochs": 6, "steps_per_epoch": 1})
    warnings = [r for r in caplog.records if "stays far below training Dice" in r.message]
    # Epoch 1 diverges, epoch 2 does not (the count restarts), epochs 3 and 4 do: one
    # warning, at the end of epoch 4 (before its log line), and none after it.
    assert len(warnings) == 1
    assert "validation Dice 0.10 stays far below training Dice 0.90" in warnings[0].message
    log = (tmp_path / "train.log").read_text()
    assert log.index("epoch 3:") < log.index("stays far below") < log.index("epoch 4:")


def test_cli_plan_prints_the_table_and_writes_json(tmp_path, capsys):
    output = tmp_path / "plan.json"
    code = main(["plan", "--data", hippocampus_path(), "--budget", "20m", "--batch-size", "8",
                 "--output", str(output)])
    assert code == 0
    out = capsys.readouterr().out
    assert "Plan for unet on 52 case(s), decathlon, 3-D, 1 channel(s) ['MRI']" in out
    assert "batch_size       8" in out and "budget           1200" in out
    stored = json.loads(output.read_text())
    rows = {row["name"]: row for row in stored["rows"]}
    assert rows["batch_size"] == {"name": "batch_size", "value": 8, "reason": "given",
                                  "given": True}
    assert rows["mode"]["value"] == "2.5d" and rows["slice_axis"]["value"] == [0, 1, 2]
    assert stored["fingerprint"]["cases"] == 52
    with pytest.raises(SystemExit):
        main(["plan", "--data", hippocampus_path(), "--budget", "20m", "--epochs", "3"])
