"""How much the ``kerasseg`` command says: TensorFlow's start-up lines, logs and warnings.

The command takes ``-v`` before its sub-command, counted:

====================  ==============================================================
level                 shown on standard error
====================  ==============================================================
0 (default)           kerasseg's own messages and warnings; TensorFlow errors only
1 (``kerasseg -v``)   also kerasseg's log and TensorFlow's and Keras' warnings
2 (``kerasseg -vv``)  everything, TensorFlow's start-up and INFO lines included
====================  ==============================================================

TensorFlow 2.21 writes its start-up lines (oneDNN, CUDA drivers, CPU instructions)
through absl's C++ logging before that logging is set up, so ``TF_CPP_MIN_LOG_LEVEL``
does not hold them back. :func:`import_tensorflow` therefore imports TensorFlow with the
process' standard error captured, and passes on the lines at or above the C++ log level
(``TF_CPP_MIN_LOG_LEVEL``: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR), and every line
that is not an absl log line (a Python warning, say) unchanged.

A ``TF_CPP_MIN_LOG_LEVEL`` already set in the environment is kept unless ``-v`` is given.
``import kerasseg`` imports TensorFlow this way too, so a program that sets the variable
before importing kerasseg gets what it asked for; without the variable TensorFlow's own
behaviour stays. This module does not import TensorFlow at import time.

Example:
    >>> verbosity_from_argv(["-vv", "train", "--verbose", "0"])
    2
    >>> tf_log_level(0), tf_log_level(1), tf_log_level(2)
    ('2', '1', '0')
    >>> filter_startup_lines(
    ...     "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n"
    ...     "I0000 00:00:1.5  7 port.cc:153] oneDNN custom operations are on.\\n"
    ...     "E0000 00:00:1.6  7 cuda.cc:9] failed call\\n"
    ...     "a Python warning\\n", min_level=2)
    'E0000 00:00:1.6  7 cuda.cc:9] failed call\\na Python warning\\n'
"""

import importlib
import logging
import os
import re
import sys
import tempfile
import warnings

COMMAND_NAMES = ("kerasseg", "kerasseg.exe", "kerasseg-script.py")
COMMAND_MODULES = ("kerasseg", "kerasseg.cli")
MAX_LEVEL = 2

# absl's log line prefix: severity letter, MMDD, time (seconds since the epoch before absl
# is set up), thread id, file:line]
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]*\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_BEFORE_INIT = "WARNING: All log messages before absl::InitializeLog() is called"
# cpu_feature_guard's INFO message goes on over a second line.
_CONTINUATIONS = ("To enable the following instructions:",)
# Logged as errors on a machine without a GPU, though they only say that there is none:
# counted as INFO.
_NO_GPU_NOTICES = ("failed call to cuInit", "Could not find cuda drivers")
_NOISY_MODULES = r"(keras|tensorflow|tf_keras|absl|google\.protobuf|h5py)(\.|$)"
_PYTHON_LOGGERS = ("tensorflow", "absl", "keras", "h5py")


def tf_log_level(level):
    """Return the ``TF_CPP_MIN_LOG_LEVEL`` of a verbosity level (a string, as the variable).

    Args:
        level: 0, 1 or 2 (larger values count as 2).

    Returns:
        ``"2"`` (errors only) for 0, ``"1"`` (warnings) for 1, ``"0"`` (everything) for 2.
    """
    return str(MAX_LEVEL - min(max(int(level), 0), MAX_LEVEL))


def verbosity_from_argv(argv):
    """Count the ``-v``/``--verbose`` flags given before the sub-command.

    The command needs the level before TensorFlow is imported, that is before argparse
    runs; the sub-commands' own options (``train --verbose N``) are not counted.

    Args:
        argv: the arguments, without the program name.

    Returns:
        The level, 0 when no flag is given.
    """
    level = 0
    for token in argv:
        if not token.startswith("-"):
            break
        if token == "--verbose":
            level += 1
        elif re.fullmatch(r"-v+", token):
            level += len(token) - 1
    return level


def running_as_command(argv0=None, orig_argv=None):
    """Whether this process is the ``kerasseg`` command.

    True for the console script and for ``python -m kerasseg`` (or ``-m kerasseg.cli``);
    false when kerasseg is imported as a library, where TensorFlow's own behaviour stays.

    Example:
        >>> running_as_command("/venv/bin/kerasseg", ["/venv/bin/python", "/venv/bin/kerasseg"])
        True
        >>> running_as_command("-m", ["python", "-m", "kerasseg", "zoo", "list"])
        True
        >>> running_as_command("script.py", ["python", "script.py"])
        False
    """
    argv0 = (sys.argv[0] if sys.argv else "") if argv0 is None else argv0
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if os.path.basename(argv0) in COMMAND_NAMES:
        return True
    for index, token in enumerate(orig_argv[:-1]):
        if token == "-m":
            return orig_argv[index + 1] in COMMAND_MODULES
    return False


def filter_startup_lines(text, min_level):
    """Drop absl log lines below ``min_level`` (0 INFO .. 3 FATAL) from ``text``.

    Lines that are not absl log lines stay, except absl's notice that logging is not set up
    yet and the second line of a dropped message (both dropped from level 1 on).

    Args:
        text: what was written to standard error.
        min_level: the C++ log level, as ``TF_CPP_MIN_LOG_LEVEL``.

    Returns:
        The lines kept, each with its line end.
    """
    kept = []
    dropped_previous = False
    for line in text.splitlines(keepends=True):
        match = _ABSL_LINE.match(line)
        if match:
            severity = _SEVERITY[match.group(1)]
            if any(notice in line for notice in _NO_GPU_NOTICES):
                severity = 0
            dropped_previous = severity < min_level
        elif min_level >= 1 and line.startswith(_BEFORE_INIT):
            dropped_previous = True
        elif dropped_previous and line.startswith(_CONTINUATIONS):
            dropped_previous = True
        else:
            dropped_previous = False
        if not dropped_previous:
            kept.append(line)
    return "".join(kept)


def _env_log_level():
    try:
        return min(max(int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")), 0), 3)
    except ValueError:
        return 0


def _filtered_stderr(function):
    """Call ``function()`` with file descriptor 2 captured; write back what is kept."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            return function()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = filter_startup_lines(captured.read().decode(errors="replace"),
                                        _env_log_level())
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


def import_tensorflow():
    """Import TensorFlow, holding back its start-up lines below ``TF_CPP_MIN_LOG_LEVEL``.

    Standard error (file descriptor 2, which TensorFlow's C++ code writes to) goes to a
    temporary file during the import; what :func:`filter_startup_lines` keeps is written
    back afterwards, also when the import fails. Nothing is captured when TensorFlow is
    imported already or the level is 0.

    Returns:
        The ``tensorflow`` module.
    """
    if "tensorflow" in sys.modules or _env_log_level() == 0:
        return importlib.import_module("tensorflow")
    return _filtered_stderr(lambda: importlib.import_module("tensorflow"))


def find_devices():
    """List the physical devices as :func:`import_tensorflow` imports: start-up lines held back.

    TensorFlow looks for devices on their first use and logs, on a machine without a GPU,
    that CUDA could not be initialised; commands that compute call this first. Logical
    devices can still be configured afterwards.

    Returns:
        ``tf.config.list_physical_devices()``.
    """
    tf = import_tensorflow()
    if _env_log_level() == 0:
        return tf.config.list_physical_devices()
    return _filtered_stderr(tf.config.list_physical_devices)


def set_environment(level=None):
    """Set ``TF_CPP_MIN_LOG_LEVEL`` for a verbosity level, before TensorFlow is imported.

    Args:
        level: the verbosity level; ``None`` keeps a value the environment has and sets
            level 0's otherwise.
    """
    if level is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", tf_log_level(0))
    else:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = tf_log_level(level)


def configure(level=0, devices=False):
    """Set the command's logging for a verbosity level (see the module's table).

    Sets ``TF_CPP_MIN_LOG_LEVEL`` (a value from the environment stays at level 0), imports
    TensorFlow through :func:`import_tensorflow`, and sets the Python loggers of
    TensorFlow, absl and Keras and the filters of their Python warnings. From level 1 on,
    the ``kerasseg`` logger's messages go to standard error too.

    Args:
        level: 0, 1 or 2 (larger counts as 2).
        devices: also look for the devices (:func:`find_devices`), for commands that
            compute.
    """
    level = min(max(int(level), 0), MAX_LEVEL)
    set_environment(level or None)
    import_tensorflow()
    if devices:
        find_devices()
    python_level = {0: logging.ERROR, 1: logging.WARNING, 2: logging.DEBUG}[level]
    for name in _PYTHON_LOGGERS:
        logging.getLogger(name).setLevel(python_level)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity({0: "error", 1: "warning", 2: "debug"}[level])
    except ImportError:  # absl comes with TensorFlow; nothing to quiet without it
        pass
    if level == 0:
        warnings.filterwarnings("ignore", module=_NOISY_MODULES)
    else:
        kerasseg_log = logging.getLogger("kerasseg")
        kerasseg_log.setLevel(logging.INFO if level == 1 else logging.DEBUG)
        if not any(getattr(h, "_kerasseg_verbosity", False) for h in logging.root.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("[%(name)s] %(levelname)s: %(message)s"))
            handler._kerasseg_verbosity = True
            logging.root.addHandler(handler)
