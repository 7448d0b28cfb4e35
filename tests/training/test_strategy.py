"""Distribution strategies: Mirrored over two logical CPUs, MultiWorkerMirrored on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kerasseg.training.strategy import get_strategy, is_chief, scaled_learning_rate

TRAIN = textwrap.dedent("""
    import json, os, sys
    import tensorflow as tf
    if sys.argv[1] == "two-cpus":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import kerasseg
    from kerasseg.data import load_dataset
    from kerasseg.sample import hippocampus_path
    data = load_dataset(hippocampus_path()).subset(list(range(6)))
    common = dict(epochs=2, steps_per_epoch=3, loss="ce", augment="none", verbose=0,
                  evaluate=False, seed=0, learning_rate=1e-2, mode="2d", val_every=1,
                  mixed_precision=False,
                  model_options={"depth": 2, "base_filters": 4, "normalization": "group"})
    results = {}
    for name, strategy, per_replica, devices, *more in json.loads(sys.argv[2]):
        options = {**common, "model": "unet", **(more[0] if more else {})}
        run = kerasseg.train(data, output_dir=os.path.join(sys.argv[3], name),
                             strategy=strategy, batch_size=per_replica, devices=devices, **options)
        results[name] = run.history
    print("RESULT" + json.dumps(results))
""")


def _run_script(args, env=None, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-c", TRAIN, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _result(completed):
    assert completed.returncode == 0, completed.stderr[-4000:]
    line = [line for line in completed.stdout.splitlines() if line.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


def test_default_strategy_and_helpers():
    strategy = get_strategy("default")
    assert strategy.num_replicas_in_sync == 1 and is_chief(strategy)
    assert get_strategy("auto").num_replicas_in_sync == 1  # no GPU here
    assert scaled_learning_rate(1e-3, 4) == pytest.approx(4e-3)


def test_invalid_strategy_and_missing_tf_config(monkeypatch):
    with pytest.raises(ValueError, match=r"`strategy` must be one of \['auto', 'default', 'mirrored', 'multiworker', 'tpu'\]"):
        get_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        get_strategy("multiworker")


@pytest.mark.slow
def test_mirrored_two_cpus_follows_default_strategy(tmp_path):
    runs = [["default", "default", 8, None],
            ["mirrored", "mirrored", 4, ["/cpu:0", "/cpu:1"]]]  # same global batch of 8
    results = _result(_run_script(["two-cpus", json.dumps(runs), str(tmp_path)]))
    default, mirrored = results["default"], results["mirrored"]
    assert len(default) == len(mirrored) == 2
    for a, b in zip(default, mirrored):
        assert a["loss"] == pytest.approx(b["loss"], rel=2e-3)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=2e-3)
    assert default[1]["loss"] < default[0]["loss"]


THREE_D = {"model": "unet3d", "mode": "3d", "patch_size": [16, 32, 32], "plan": False,
           "model_options": {"depth": 2, "base_filters": 4, "normalization": "group"}}


@pytest.mark.slow
def test_3d_training_under_mirrored_two_cpus_follows_default_strategy(tmp_path):
    runs = [["default", "default", 4, None, THREE_D],
            ["mirrored", "mirrored", 2, ["/cpu:0", "/cpu:1"], THREE_D]]  # global batch 4
    results = _result(_run_script(["two-cpus", json.dumps(runs), str(tmp_path)]))
    default, mirrored = results["default"], results["mirrored"]
    assert len(default) == len(mirrored) == 2
    for a, b in zip(default, mirrored):
        assert a["loss"] == pytest.approx(b["loss"], rel=2e-3)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=2e-3)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("options", [{}, THREE_D], ids=["2d", "3d"])
def test_two_multiworker_processes_complete_an_epoch(tmp_path, options):
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    runs = json.dumps([["mw", "multiworker", 4, None, options]])
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(config)}
        processes.append(subprocess.Popen(
            [sys.executable, "-c", TRAIN, "one-cpu", runs, str(tmp_path / f"w{index}")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=600)
            outputs.append((process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for code, stdout, stderr in outputs:
        assert code == 0, stderr[-4000:]
    histories = [json.loads([l for l in out.splitlines() if l.startswith("RESULT")][-1][6:])["mw"]
                 for _, out, _ in outputs]
    # Both workers ran both epochs in step and saw the same (all-reduced) training loss.
    assert [len(h) for h in histories] == [2, 2]
    np.testing.assert_allclose([r["loss"] for r in histories[0]],
                               [r["loss"] for r in histories[1]], rtol=1e-5)
    # The training Dice is all-reduced too: counted per replica, scored on the host.
    np.testing.assert_allclose([r["dice"] for r in histories[0]],
                               [r["dice"] for r in histories[1]], rtol=1e-5)
    assert all(0.0 <= r["dice"] <= 1.0 for r in histories[0])
    # Only the chief (worker 0) wrote the checkpoints.
    assert (tmp_path / "w0" / "mw" / "best.keras").exists()
    assert not (tmp_path / "w1" / "mw" / "best.keras").exists()


def test_custom_loop_validates_only_the_given_epochs():
    import tensorflow as tf

    import kerasseg
    from kerasseg.training import recipe
    from kerasseg.training.custom_loop import fit_distributed

    class Recorder:
        def __init__(self):
            self.logs, self.state = [], {}

        def set_model(self, model):
            self.model = model

        def on_epoch_begin(self, epoch, logs=None):
            self.events = [("begin", epoch + 1)]

        def on_test_begin(self, logs=None):
            self.events.append("test_begin")

        def on_test_end(self, logs=None):
            self.events.append("test_end")

        def on_epoch_end(self, epoch, logs):
            self.logs.append((epoch + 1, dict(logs), self.events))

    strategy = tf.distribute.get_strategy()
    net = kerasseg.build("unet", input_shape=(16, 16, 1), num_classes=2, depth=1, base_filters=2)
    net.compile(optimizer=recipe.make_optimizer(1e-3, 0.0), loss=recipe.make_loss("ce", 2))
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 16, 16, 1)).astype("float32")
    labels = (images[..., 0] > 0).astype("int32")
    train_ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4).repeat()
    val_ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    keeper = Recorder()
    fit_distributed(net, strategy, train_ds, val_ds, epochs=4, initial_epoch=1, steps=1,
                    global_batch=4, keeper=keeper, verbose=0, val_epochs=[3, 4])
    assert [epoch for epoch, _, _ in keeper.logs] == [2, 3, 4]
    assert ["val_dice" in logs for _, logs, _ in keeper.logs] == [False, True, True]
    # The keeper hears of each epoch's start and validation, as from fit (for its timings).
    assert [events for _, _, events in keeper.logs] == [
        [("begin", 2)], [("begin", 3), "test_begin", "test_end"],
        [("begin", 4), "test_begin", "test_end"]]
    assert 0.0 <= keeper.logs[1][1]["val_dice"] <= 1.0 and keeper.logs[1][1]["val_loss"] > 0.0
