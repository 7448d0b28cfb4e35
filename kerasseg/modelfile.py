"""Trained-model files: a ``.keras`` file that also carries what inference needs.

:func:`save_model` writes a standard Keras ``.keras`` archive (loadable by plain
``keras.saving.load_model``) with one extra member, ``kerasseg.json``, holding the
model's *info*: class names, the preprocessing spec (slicing mode, spacing, intensity
normalization), the patch size used in training, the model family and its build
options. :func:`load_model` returns the model and that info, so that predictions on raw
files need no options.
"""

import json
import os
import zipfile

INFO_MEMBER = "kerasseg.json"


def save_model(model, path, info=None):
    """Save ``model`` (and ``info``) to a ``.keras`` file atomically.

    Args:
        model: a Keras model.
        path: target file, ending in ``.keras``.
        info: a JSON-serializable dict stored as ``kerasseg.json`` inside the archive.

    Raises:
        ValueError: if ``path`` does not end in ``.keras`` or ``info`` is not JSON-able.

    Example:
        >>> save_model(model, "run/best.keras", {"class_names": ["bg", "fg"]})  # doctest: +SKIP
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"`path` must end with '.keras'. Received: path={path!r}")
    try:
        payload = json.dumps(info or {}, indent=2, sort_keys=True)
    except TypeError as error:
        raise ValueError(f"`info` must be JSON-serializable: {error}") from error
    from kerasseg.training.checkpoint import temp_path

    temp = temp_path(path, ".keras")
    try:
        model.save(temp)
        with zipfile.ZipFile(temp, "a") as archive:
            archive.writestr(INFO_MEMBER, payload)
        with open(temp, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def read_info(path):
    """Return the info dict stored in a ``.keras`` file (``{}`` when it has none).

    Args:
        path: a ``.keras`` file.

    Returns:
        The dict saved by :func:`save_model`.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if ``path`` is not a ``.keras`` archive.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            if INFO_MEMBER not in archive.namelist():
                return {}
            return json.loads(archive.read(INFO_MEMBER).decode("utf-8"))
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path}: not a .keras model archive ({error})") from error


def load_model(path, compile=False):
    """Load a ``.keras`` model and the info stored with it.

    Args:
        path: a ``.keras`` file written by :func:`save_model` (or any ``.keras`` file).
        compile: whether to restore the training configuration (loss, optimizer).

    Returns:
        ``(model, info)``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if ``path`` is not a ``.keras`` archive.

    Example:
        >>> model, info = load_model("run/best.keras")  # doctest: +SKIP
        >>> info["class_names"]  # doctest: +SKIP
    """
    import keras

    import kerasseg  # noqa: F401  (registers the custom objects)

    info = read_info(path)
    return keras.saving.load_model(os.fspath(path), compile=compile), info
