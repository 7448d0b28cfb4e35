"""Atomic file writes, so that a run killed at any moment can resume.

Every file is written under a temporary name in its target folder and then renamed
over the target with ``os.replace``, which is atomic on POSIX file systems: a reader
(or a resumed run) sees either the previous complete file or the new complete file.
Temporary names start with a dot; a resumed run deletes any that a kill left behind.
"""

import json
import os
import tempfile


def file_mode():
    """Return the permissions a new file gets under the current umask.

    ``tempfile.mkstemp`` creates files readable by their owner only; files renamed into
    place get these ordinary permissions instead, so that a serving container or a
    colleague can read them as they could any other file.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_path(path, suffix):
    """Create and return an empty temporary file beside ``path`` (same folder).

    Args:
        path: the target file the temporary file will replace.
        suffix: file-name suffix of the temporary file (e.g. ``".keras"``).

    Returns:
        The temporary file's path.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=folder)
    os.close(handle)
    os.chmod(temp, file_mode())
    return temp


def write_bytes_atomic(path, data):
    """Write ``data`` to ``path`` atomically (a temporary file beside it, then a rename).

    Args:
        path: target file; its folder is created if missing.
        data: the contents (bytes).

    Returns:
        ``path``.

    Example:
        >>> write_bytes_atomic("/tmp/model.bin", b"...")
        '/tmp/model.bin'
    """
    temp = temp_path(path, os.path.splitext(os.fspath(path))[1] or ".tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return path


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` atomically (UTF-8, no newline translation).

    Args:
        path: target file.
        text: the contents.

    Returns:
        ``path``.

    Example:
        >>> write_text_atomic("/tmp/history.csv", "epoch,loss\n1,0.5\n")
        '/tmp/history.csv'
    """
    return write_bytes_atomic(path, text.encode("utf-8"))


def jsonable(value):
    """Return ``value`` with NumPy scalars, tuples and non-finite floats made JSON-safe.

    Dict keys become strings, tuples lists, NaN and infinities ``None``, NumPy scalars
    Python numbers; any other object its ``str``.

    Example:
        >>> import numpy as np
        >>> jsonable({1: (np.float32(0.5), float("nan"))})
        {'1': [0.5, None]}
    """
    import math

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):
        return jsonable(value.item())
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_json_atomic(path, data):
    """Write ``data`` as JSON to ``path`` atomically.

    Args:
        path: target file.
        data: a JSON-serializable object.

    Example:
        >>> write_json_atomic("/tmp/state.json", {"epoch": 3})
    """
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))


def read_json(path, default=None):
    """Read a JSON file, returning ``default`` if it does not exist."""
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
