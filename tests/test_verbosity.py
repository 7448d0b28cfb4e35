"""A quiet command line: no TensorFlow start-up lines, ``kerasseg -v`` for more."""

import os
import pathlib
import subprocess
import sys

import pytest

from kerasseg import verbosity
from kerasseg.cli import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[1]

# What TensorFlow 2.21 writes to standard error while it starts on a CPU-only machine.
STARTUP = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796215743.436414    6855 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.\n"
    "I0000 00:00:1796215743.436856    6855 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n"
    "I0000 00:00:1796215743.579121    6855 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.\n"
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.\n"
    "E0000 00:00:1796216421.827081   13831 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
)
STARTUP_MARKS = ("oneDNN", "cpu_feature_guard", "absl", "This TensorFlow binary", "cuda",
                 "To enable the following instructions")


def test_the_command_prints_no_tensorflow_startup_lines():
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
           "HOME": os.environ.get("HOME", str(ROOT))}  # no TF_CPP_MIN_LOG_LEVEL
    result = subprocess.run([sys.executable, "-m", "kerasseg", "zoo", "list"], env=env,
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "hippocampus-unet" in result.stdout
    assert not [mark for mark in STARTUP_MARKS if mark in result.stderr], result.stderr


@pytest.mark.parametrize("level", [1, 2, 3])
def test_startup_lines_are_held_back_below_the_log_level(level):
    # The cuInit error only says that there is no GPU: it counts as INFO.
    assert verbosity.filter_startup_lines(STARTUP, level) == ""
    assert verbosity.filter_startup_lines(STARTUP, 0) == STARTUP


def test_other_lines_and_real_errors_stay():
    text = ("W0000 00:00:1.0  1 gpu.cc:1] a warning\n"
            "/site/keras/x.py:3: UserWarning: a Python warning\n"
            "E1231 23:59:59.000001  99 op.cc:7] a real error\n"
            "Traceback (most recent call last):\n")
    assert verbosity.filter_startup_lines(text, 1) == text
    assert verbosity.filter_startup_lines(text, 2) == text.split("\n", 1)[1]
    assert verbosity.filter_startup_lines(text, 3) == (
        "/site/keras/x.py:3: UserWarning: a Python warning\nTraceback (most recent call last):\n")


@pytest.mark.parametrize("argv,level", [
    (["zoo", "list"], 0), (["-v", "zoo", "list"], 1), (["-vv", "zoo", "info", "x"], 2),
    (["--verbose", "-v", "zoo", "list"], 2), (["train", "--output", "r", "--verbose", "2"], 0),
])
def test_level_before_the_sub_command(argv, level):
    # Counted before argparse runs (TensorFlow is imported first), as argparse counts it.
    assert verbosity.verbosity_from_argv(argv) == level
    assert build_parser().parse_args(argv).verbosity == level


def test_train_verbose_stays_the_progress_display():
    args = build_parser().parse_args(["-v", "train", "--output", "run", "--verbose", "0"])
    assert (args.verbosity, args.verbose) == (1, 0)
    args = build_parser().parse_args(["train", "--output", "run"])
    assert (args.verbosity, args.verbose) == (0, 1)


@pytest.mark.parametrize("level,tf_level", [(0, "2"), (1, "1"), (2, "0"), (5, "0")])
def test_levels_set_tf_cpp_min_log_level(level, tf_level, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    verbosity.set_environment(level or None)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == ("3" if level == 0 else tf_level)
    assert verbosity.tf_log_level(level) == tf_level
