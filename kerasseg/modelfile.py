"""Trained-model files: a ``.keras`` file that also carries what inference needs.

:func:`save_model` writes a standard Keras ``.keras`` archive (loadable by plain
``keras.saving.load_model``) with one extra member, ``kerasseg.json``, holding the
model's *info*, a :class:`kerasseg.description.ModelInfo`: class names, the preprocessing
spec (slicing mode, spacing, intensity normalization), the patch size used in training, the
model family and its build options. :func:`load_model` returns the model and that info, so
that predictions on raw files need no options. Files written before the info was typed
load as well: :meth:`ModelInfo.from_dict <kerasseg.description.ModelInfo.from_dict>`
migrates them.
"""

import json
import os
import zipfile

from kerasseg.description import ModelInfo
from kerasseg.files import atomic_path

INFO_MEMBER = "kerasseg.json"


def _register_custom_objects():
    """Import the modules whose custom layers, losses and metrics register with Keras."""
    import kerasseg.losses  # noqa: F401
    import kerasseg.metrics  # noqa: F401
    import kerasseg.models  # noqa: F401


def save_model(model, path, info=None):
    """Save ``model`` (and ``info``) to a ``.keras`` file atomically.

    Args:
        model: a Keras model.
        path: target file, ending in ``.keras``.
        info: a :class:`kerasseg.description.ModelInfo` (or its dict form, validated),
            stored as ``kerasseg.json`` inside the archive; ``None`` stores none.

    Raises:
        ValueError: if ``path`` does not end in ``.keras`` or ``info`` is not a valid
            model info (the field is named).

    Example:
        >>> save_model(model, "run/best.keras", info)  # doctest: +SKIP
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"`path` must end with '.keras'. Received: path={path!r}")
    payload = None if info is None else _payload(info)
    with atomic_path(path, ".keras") as temp:
        model.save(temp)
        if payload is not None:
            with zipfile.ZipFile(temp, "a") as archive:
                archive.writestr(INFO_MEMBER, payload)


def _payload(info):
    """The ``kerasseg.json`` text of ``info`` (a ModelInfo or its dict form)."""
    if not isinstance(info, ModelInfo):
        if not isinstance(info, dict):
            raise ValueError(f"`info` must be a ModelInfo or its dict form. Received: {info!r}")
        info = ModelInfo.from_dict(info)
    return json.dumps(info.to_dict(), indent=2, sort_keys=True)


def _read_info_dict(path):
    """The stored info dict of a ``.keras`` file, as written (``None`` when it has none)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            if INFO_MEMBER not in archive.namelist():
                return None
            return json.loads(archive.read(INFO_MEMBER).decode("utf-8"))
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path}: not a .keras model archive ({error})") from error


def read_info(path):
    """Return the model info stored in a ``.keras`` file.

    Args:
        path: a ``.keras`` file.

    Returns:
        The :class:`kerasseg.description.ModelInfo` saved by :func:`save_model` (older
        files' info migrated), or ``None`` for a ``.keras`` file without one (a model
        saved by plain Keras).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if ``path`` is not a ``.keras`` archive or its info is invalid (the
            file and the field are named).

    Example:
        >>> read_info("run/best.keras").class_names  # doctest: +SKIP
        ('background', 'Anterior', 'Posterior')
    """
    stored = _read_info_dict(path)
    if stored is None:
        return None
    try:
        return ModelInfo.from_dict(stored)
    except ValueError as error:
        raise ValueError(f"{os.fspath(path)}: {error}") from None


def load_model(path, compile=False):
    """Load a ``.keras`` model and the info stored with it.

    Args:
        path: a ``.keras`` file written by :func:`save_model` (or any ``.keras`` file).
        compile: whether to restore the training configuration (loss, optimizer).

    Returns:
        ``(model, info)``: ``info`` is a :class:`kerasseg.description.ModelInfo`, or
        ``None`` for a file without one.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if ``path`` is not a ``.keras`` archive or its info is invalid.

    Example:
        >>> model, info = load_model("run/best.keras")  # doctest: +SKIP
        >>> info.class_names  # doctest: +SKIP
    """
    import keras

    _register_custom_objects()

    info = read_info(path)
    return keras.saving.load_model(os.fspath(path), compile=compile), info


WEIGHTS_MEMBER = "model.weights.h5"


def _copy_h5(source, target, dtype, skip=()):
    import numpy as np

    for key, value in source.attrs.items():
        target.attrs[key] = value
    for key, item in source.items():
        if key in skip:
            continue
        if hasattr(item, "dtype"):
            array = item[()]
            if dtype is not None and getattr(array, "dtype", None) == np.float32:
                array = array.astype(dtype)
            target.create_dataset(key, data=array)
        else:
            _copy_h5(item, target.create_group(key), dtype)


_MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def _is_policy(value):
    return isinstance(value, dict) and value.get("class_name") == "DTypePolicy" and isinstance(
        value.get("config"), dict)


def _float32_policies(config, replaced):
    """Return ``config`` with every mixed-precision dtype policy replaced by float32.

    The names of the replaced policies are added to the set ``replaced``.
    """
    if _is_policy(config):
        name = config["config"].get("name")
        if name not in _MIXED_POLICIES:
            return config
        replaced.add(name)
        return dict(config, config=dict(config["config"], name="float32"))
    if isinstance(config, dict):
        out = {}
        for key, value in config.items():
            if key == "dtype" and isinstance(value, str) and value in _MIXED_POLICIES:
                replaced.add(value)
                value = "float32"
            out[key] = _float32_policies(value, replaced)
        return out
    if isinstance(config, list):
        return [_float32_policies(value, replaced) for value in config]
    return config


def float32_model(model):
    """Return ``model`` computing in float32 (for export and parity checks).

    A model trained under mixed precision keeps float32 variables but computes in bfloat16
    or float16, which the TFLite converter does not accept and which rounds a SavedModel's
    outputs. This rebuilds such a model with float32 dtype policies and the same weights;
    a float32 model is returned as it is.

    Args:
        model: a Keras model.

    Returns:
        ``model`` itself, or a float32 copy of it.

    Example:
        >>> import keras, kerasseg
        >>> keras.config.set_dtype_policy("mixed_bfloat16")
        >>> mixed = kerasseg.build("unet", input_shape=(None, None, 1), num_classes=2,
        ...                        depth=2, base_filters=4)
        >>> keras.config.set_dtype_policy("float32")
        >>> float32_model(mixed).layers[1].compute_dtype
        'float32'
    """
    replaced = set()
    config = _float32_policies(model.get_config(), replaced)
    if not replaced:
        return model
    _register_custom_objects()
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def compact_model(path, target, weights_dtype="float32", info_updates=None):
    """Write a smaller copy of a ``.keras`` file for distribution, atomically.

    The copy leaves out the training state (optimizer variables and compile settings: it
    loads for inference and fine-tuning, which compiles afresh) and is deflate-compressed.
    A model trained under mixed precision (``mixed_bfloat16`` or ``mixed_float16``; its
    variables are float32) is written with float32 dtype policies, so the copy computes in
    float32 on any machine; the info member records the training policy as
    ``trained_policy``.
    With ``weights_dtype="float16"`` it stores the float32 weights in half precision; Keras
    casts them back to float32 when the model is loaded, so the loaded model computes in
    float32 with weights rounded to float16 (check the effect on predictions before
    publishing such a file). The info member records ``weights_storage``.

    Args:
        path: a ``.keras`` file.
        target: the ``.keras`` file to write (may not be ``path``).
        weights_dtype: ``"float32"`` (lossless) or ``"float16"``.
        info_updates: optional dict of :class:`kerasseg.description.ModelInfo` fields to
            set in the copy's info, e.g. the ``shift_offsets`` that
            :class:`kerasseg.inference.Predictor` averages.

    Returns:
        The size of ``target`` in bytes.

    Raises:
        ValueError: for another ``weights_dtype``, a ``target`` not ending in ``.keras``
            or equal to ``path``, a ``path`` that is not a ``.keras`` archive or has no
            kerasseg info, or ``info_updates`` that is not a dict of valid field values.
        FileNotFoundError: if ``path`` does not exist.

    Example:
        >>> compact_model("run/best.keras", "hippocampus-unet.keras", "float16")  # doctest: +SKIP
        3912345
    """
    import io

    import h5py

    if weights_dtype not in ("float32", "float16"):
        raise ValueError(
            f"`weights_dtype` must be 'float32' or 'float16'. Received: weights_dtype={weights_dtype!r}")
    path, target = os.fspath(path), os.fspath(target)
    if not target.endswith(".keras") or os.path.abspath(target) == os.path.abspath(path):
        raise ValueError(
            f"`target` must be a new file ending in '.keras'. Received: target={target!r}")
    if info_updates is not None and not isinstance(info_updates, dict):
        raise ValueError(f"`info_updates` must be None or a dict. Received: {info_updates!r}")
    info = read_info(path)
    if info is None:
        raise ValueError(f"{path} holds no kerasseg model info (save it with save_model).")
    try:
        info = ModelInfo.from_dict({**info.to_dict(), **(info_updates or {}),
                                    "weights_storage": weights_dtype})
    except ValueError as error:
        raise ValueError(f"`info_updates` must hold valid ModelInfo fields: {error}") from None
    with atomic_path(target, ".keras") as temp:
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(
                temp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for name in source.namelist():
                if name == INFO_MEMBER:
                    continue
                data = source.read(name)
                if name == WEIGHTS_MEMBER:
                    buffer = io.BytesIO()
                    with h5py.File(io.BytesIO(data), "r") as weights, h5py.File(buffer, "w") as out:
                        _copy_h5(weights, out, None if weights_dtype == "float32" else "float16",
                                 skip=("optimizer",))
                    data = buffer.getvalue()
                elif name == "config.json":
                    config = json.loads(data.decode("utf-8"))
                    config.pop("compile_config", None)
                    mixed = set()
                    config = _float32_policies(config, mixed)
                    if mixed:
                        info = info.replace(trained_policy=sorted(mixed)[0])
                    data = json.dumps(config).encode("utf-8")
                archive.writestr(name, data)
            archive.writestr(INFO_MEMBER, _payload(info))
    return os.path.getsize(target)
