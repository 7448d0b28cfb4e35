"""A training process killed with SIGKILL in the middle of an epoch resumes and finishes."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from kerasseg.modelfile import read_info
from kerasseg.sample import hippocampus_path

EPOCHS = 3


def _command(output, *extra):
    return [
        sys.executable, "-m", "kerasseg.cli", "train", "--data", hippocampus_path(),
        "--model", "unet", "--model-option", "depth=2", "--model-option", "base_filters=4",
        "--epochs", str(EPOCHS), "--steps-per-epoch", "25", "--batch-size", "4",
        "--augment", "light", "--output", str(output), "--verbose", "0", "--no-evaluate", *extra,
    ]


def _epochs_done(output):
    path = os.path.join(output, "last.keras")
    if not os.path.exists(path):
        return 0
    try:
        return read_info(path).state["epoch"]
    except (ValueError, KeyError, OSError):
        return 0


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(_command(tmp_path), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while _epochs_done(tmp_path) < 1:
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "the first epoch did not finish in time"
        time.sleep(0.2)
    time.sleep(1.0)  # well inside epoch 2 (25 steps)
    assert process.poll() is None, "the run ended before it could be killed mid-epoch"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = _epochs_done(tmp_path)
    assert killed_at in (1, 2)

    resumed = subprocess.run(_command(tmp_path, "--resume"), env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _epochs_done(tmp_path) == EPOCHS
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]
    with open(tmp_path / "history.csv") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == list(range(1, EPOCHS + 1))
    with open(tmp_path / "train.log") as handle:
        assert f"resumed from last.keras after epoch {killed_at}" in handle.read()
