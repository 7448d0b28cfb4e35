"""Atomic writes of models and run state, so a run killed at any moment can resume.

Every file is written under a temporary name in its target folder and then renamed
over the target with ``os.replace``, which is atomic on POSIX file systems: a reader
(or a resumed run) sees either the previous complete file or the new complete file.
"""

import json
import os
import tempfile


def _temp_path(path, suffix):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=folder)
    os.close(handle)
    return temp


def write_json_atomic(path, data):
    """Write ``data`` as JSON to ``path`` atomically.

    Args:
        path: target file.
        data: a JSON-serializable object.

    Example:
        >>> write_json_atomic("/tmp/state.json", {"epoch": 3})
    """
    temp = _temp_path(path, ".json")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def save_model_atomic(model, path):
    """Save ``model`` as a ``.keras`` file at ``path`` atomically (optimizer state included).

    Args:
        model: a Keras model.
        path: target path ending in ``.keras``.

    Raises:
        ValueError: if ``path`` does not end in ``.keras``.

    Example:
        >>> save_model_atomic(model, "run/best.keras")  # doctest: +SKIP
    """
    if not str(path).endswith(".keras"):
        raise ValueError(f"`path` must end with '.keras'. Received: path={path!r}")
    temp = _temp_path(path, ".keras")
    try:
        model.save(temp)
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def read_json(path, default=None):
    """Read a JSON file, returning ``default`` if it does not exist."""
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
