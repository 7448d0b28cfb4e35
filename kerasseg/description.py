"""Typed descriptions of a trained model and of a training run, versioned and validated.

Two records travel between the parts of kerasseg:

* :class:`ModelInfo`, what a trained model needs to be used: its family and build options,
  classes, input channels, the preprocessing of training (:class:`Preprocessing`), patch
  size and stride, the flips it was trained with, and how the file was made. Training
  builds it, :mod:`kerasseg.modelfile` stores it as ``kerasseg.json`` inside the ``.keras``
  file, and inference, export, deployment and the zoo read it.
* :class:`RunSpec`, the ``run.json`` of a training run: every setting of the run
  (:class:`RunSettings`), the case split, the patch size, the data and the model's info.

Each record has a ``schema_version``. ``to_dict()`` gives the JSON-able form that is stored;
``from_dict()`` validates a stored dict (a ``ValueError`` names the field and what was
expected) and migrates the forms that older versions wrote, so models and runs saved before
a change still load. A new field is one line in its class (name, type, default and check),
plus the code that sets and reads it.

Example:
    >>> info = ModelInfo(model="unet", num_classes=2, channels=1, patch_size=(64, 64),
    ...                  stride=8, preprocessing=Preprocessing(mode="2d"))
    >>> ModelInfo.from_dict(info.to_dict()) == info
    True
"""

import dataclasses
import json
import math
import numbers
import os
from typing import Any, Optional, Tuple

# ----------------------------------------------------------------------------- checks
#
# A check takes (where, value) and returns the value in its stored form, or raises a
# ValueError that names the field (``where``) and says what was expected.


def _fail(where, expected, value):
    raise ValueError(f"`{where}` must be {expected}. Received: {value!r}")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _optional(check):
    def checked(where, value):
        return None if value is None else check(where, value)
    return checked


def _string(where, value):
    if not isinstance(value, str):
        _fail(where, "a string", value)
    return value


def _boolean(where, value):
    if not isinstance(value, bool):
        _fail(where, "true or false", value)
    return value


def _integer(where, value):
    if not _is_int(value):
        _fail(where, "an integer", value)
    return int(value)


def _positive_int(where, value):
    if not _is_int(value) or value < 1:
        _fail(where, "a positive integer", value)
    return int(value)


def _non_negative_int(where, value):
    if not _is_int(value) or value < 0:
        _fail(where, "an integer >= 0", value)
    return int(value)


def _number(where, value):
    if not _is_number(value):
        _fail(where, "a finite number", value)
    return float(value)


def _fraction(where, value):
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        _fail(where, "a number in [0, 1]", value)
    return float(value)


def _json_dict(where, value):
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        _fail(where, "a dict with string keys", value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        _fail(where, "JSON-serializable", value)
    return dict(value)


def _choice(*options):
    def checked(where, value):
        if value not in options:
            _fail(where, f"one of {list(options)}", value)
        return value
    return checked


def _sequence(where, value, expected):
    if not isinstance(value, (list, tuple)):
        _fail(where, expected, value)
    return value


def _strings(where, value):
    items = _sequence(where, value, "a list of strings")
    if not all(isinstance(item, str) for item in items):
        _fail(where, "a list of strings", value)
    return tuple(items)


def _integers(where, value):
    items = _sequence(where, value, "a list of integers")
    if not all(_is_int(item) for item in items):
        _fail(where, "a list of integers", value)
    return tuple(int(item) for item in items)


def _case_ids(where, value):
    items = _sequence(where, value, "a list of case ids (strings or integers)")
    if not all(isinstance(item, str) or _is_int(item) for item in items):
        _fail(where, "a list of case ids (strings or integers)", value)
    return tuple(items)


def _size(where, value):
    expected = "(height, width) or (depth, height, width), positive integers"
    items = _sequence(where, value, expected)
    if len(items) not in (2, 3) or not all(_is_int(item) and item > 0 for item in items):
        _fail(where, expected, value)
    return tuple(int(item) for item in items)


def _image_axes(where, value):
    axes = _integers(where, value)
    if not all(axis in (0, 1, 2) for axis in axes):
        _fail(where, "a list of image axes (0 = rows, 1 = columns; for a 3-D model "
              "0..2 = depth, rows, columns)", value)
    return axes


def _offsets(where, value):
    expected = "a non-empty list of (row, column) integer pixel offsets"
    items = _sequence(where, value, expected)
    if not items or not all(isinstance(pair, (list, tuple)) and len(pair) == 2
                            and all(_is_int(v) for v in pair) for pair in items):
        _fail(where, expected, value)
    return tuple((int(row), int(column)) for row, column in items)


def _slice_axis(where, value):
    expected = "an axis in 0..2 or a list of distinct axes in 0..2"
    if _is_int(value):
        if value not in (0, 1, 2):
            _fail(where, expected, value)
        return int(value)
    axes = _sequence(where, value, expected)
    if (not axes or not all(_is_int(axis) and axis in (0, 1, 2) for axis in axes)
            or len(set(axes)) != len(axes)):
        _fail(where, expected, value)
    return tuple(int(axis) for axis in axes)


def _spacing(where, value):
    expected = "2 or 3 positive numbers (or null to keep an axis) in (x, y[, z]) order"
    items = _sequence(where, value, expected)
    if len(items) not in (2, 3) or not all(
            item is None or _is_number(item) and item > 0 for item in items):
        _fail(where, expected, value)
    return tuple(None if item is None else float(item) for item in items)


def _normalization(where, value):
    expected = "a dict {'method': NAME, 'params': {...}}"
    if not isinstance(value, dict) or not isinstance(value.get("method"), str) \
            or not isinstance(value.get("params", {}), dict) or set(value) - {"method", "params"}:
        _fail(where, expected, value)
    return {"method": value["method"], "params": _json_dict(f"{where}.params",
                                                            value.get("params", {}))}


def _nested(cls):
    def checked(where, value):
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            _fail(where, f"a {cls.__name__} or its dict form", value)
        return cls.from_dict(value, where=where)
    return checked


def _field(check, default=dataclasses.MISSING, factory=dataclasses.MISSING):
    """A dataclass field whose value ``check`` validates and converts."""
    return dataclasses.field(default=default, default_factory=factory,
                             metadata={"check": check})


def _plain(value):
    """The JSON form of a field value: tuples as lists, records as dicts."""
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


# ----------------------------------------------------------------------------- records


class _Record:
    """What the records share: checked fields, ``to_dict``, ``from_dict`` with migration.

    A subclass is a frozen dataclass whose fields carry a check (:func:`_field`); it sets
    ``SCHEMA_VERSION`` (and ``_VERSION_KEY``, the stored name of its version) and
    implements ``_migrate(data, version)`` for the dicts older versions wrote.
    """

    SCHEMA_VERSION = 1
    _VERSION_KEY = "schema_version"
    _OMIT_NONE = ()  # fields left out of to_dict() while None (files without them stay alike)

    def __post_init__(self):
        name = type(self).__name__
        for field in dataclasses.fields(self):
            check = field.metadata.get("check")
            if check is not None:
                value = check(f"{name}.{field.name}", getattr(self, field.name))
                object.__setattr__(self, field.name, value)

    @classmethod
    def _migrate(cls, data, version):
        return data

    def to_dict(self):
        """Return the JSON-able dict that is stored (lists, numbers, strings, dicts).

        Returns:
            A new dict with the record's ``schema_version`` and every field (optional
            fields that are ``None`` are left out of a :class:`ModelInfo`).

        Example:
            >>> Preprocessing(mode="2d").to_dict()["slice_axis"]
            0
        """
        out = {self._VERSION_KEY: self.SCHEMA_VERSION}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.name in self._OMIT_NONE:
                continue
            out[field.name] = _plain(value)
        return out

    @classmethod
    def from_dict(cls, data, where=None):
        """Validate a stored dict, migrating the forms older versions wrote.

        Args:
            data: a dict from :meth:`to_dict`, or one written by an older version.
            where: the field name used in error messages (default: the class name).

        Returns:
            An instance of the class.

        Raises:
            ValueError: if ``data`` is not a dict, comes from a newer schema version, holds
                an unknown field, lacks a required one, or a field has an invalid value
                (the message names the field and what was expected).

        Example:
            >>> Preprocessing.from_dict({"mode": "2.5d", "context": 1}).slice_axis
            0
            >>> Preprocessing.from_dict({"mode": "4d"})
            Traceback (most recent call last):
            ...
            ValueError: `Preprocessing.mode` must be one of ['2d', '2.5d', '3d']. Received: '4d'
        """
        where = where or cls.__name__
        if not isinstance(data, dict):
            _fail(where, f"a dict (the stored form of {cls.__name__})", data)
        data = dict(data)
        version = data.pop(cls._VERSION_KEY, None)
        for old in cls._OLD_VERSION_KEYS:
            old_version = data.pop(old, None)
            version = old_version if version is None else version
        version = 1 if version is None else version
        if not _is_int(version) or version < 1:
            _fail(f"{where}.{cls._VERSION_KEY}", "a positive integer", version)
        if version > cls.SCHEMA_VERSION:
            raise ValueError(
                f"`{where}` was written with schema version {version} by a newer kerasseg; "
                f"this one reads versions up to {cls.SCHEMA_VERSION}. Upgrade kerasseg.")
        data = cls._migrate(data, version)
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"`{where}` holds unknown field(s) {unknown}; known fields: "
                             f"{sorted(names)}")
        missing = [field.name for field in dataclasses.fields(cls)
                   if field.name not in data and field.default is dataclasses.MISSING
                   and field.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"`{where}` lacks the required field(s) {missing}")
        # Errors name the field as seen from the outer record (e.g. ModelInfo.preprocessing).
        try:
            return cls(**data)
        except ValueError as error:
            if where == cls.__name__:
                raise
            raise ValueError(str(error).replace(f"`{cls.__name__}.", f"`{where}.", 1)) from None

    _OLD_VERSION_KEYS = ()

    def replace(self, **changes):
        """Return a copy with ``changes`` applied (and validated).

        Args:
            **changes: new values of fields.

        Returns:
            A new record.

        Raises:
            ValueError: for an invalid value.
            TypeError: for an unknown field.

        Example:
            >>> Preprocessing(mode="2d").replace(slice_axis=[0, 2]).slice_axis
            (0, 2)
        """
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Preprocessing(_Record):
    """How a model's input was prepared in training (the spec of :mod:`kerasseg.data.spec`).

    Attributes:
        mode: ``"2d"`` (one slice per input), ``"2.5d"`` (neighbouring slices as channels)
            or ``"3d"`` (3-D patches).
        context: neighbours on each side in 2.5-D (0 in 2-D).
        slice_axis: the array axis of ``(D, H, W)`` volumes slices are taken across, or a
            tuple of axes for a multi-view model.
        normalization: intensity normalization ``{"method": ..., "params": {...}}``.
        target_spacing: resampling target in ``(x, y[, z])`` mm (``None`` entries keep an
            axis), or ``None`` for no resampling.
        patch_size: the training patch ``(h, w)`` (``(d, h, w)`` in mode ``"3d"``), or ``None``.
        version: the pipeline's spec version (``kerasseg.data.spec.SPEC_VERSION``),
            stored under ``version`` (the record's ``schema_version``).

    Raises:
        ValueError: when constructed with an invalid value (the field is named).

    Example:
        >>> spec = Preprocessing(mode="2.5d", context=2, slice_axis=[0, 1, 2])
        >>> spec.slice_axis, spec.to_dict()["slice_axis"]
        ((0, 1, 2), [0, 1, 2])
    """

    _VERSION_KEY = "version"

    mode: str = _field(_choice("2d", "2.5d", "3d"))
    context: int = _field(_non_negative_int, 0)
    slice_axis: Any = _field(_slice_axis, 0)
    normalization: dict = _field(_normalization,
                                 factory=lambda: {"method": "zscore", "params": {"nonzero": False}})
    target_spacing: Optional[Tuple[Optional[float], ...]] = _field(_optional(_spacing), None)
    patch_size: Optional[Tuple[int, int]] = _field(_optional(_size), None)

    def __post_init__(self):
        super().__post_init__()
        if self.mode == "2d" and self.context != 0:
            _fail("Preprocessing.context", "0 when mode is '2d'", self.context)
        if self.mode == "2.5d" and self.context < 1:
            _fail("Preprocessing.context", "at least 1 when mode is '2.5d'", self.context)
        if self.mode == "3d":
            if self.context != 0:
                _fail("Preprocessing.context", "0 when mode is '3d'", self.context)
            if self.slice_axes != (0,):
                _fail("Preprocessing.slice_axis", "0 when mode is '3d'", self.slice_axis)
            if self.patch_size is not None and len(self.patch_size) != 3:
                _fail("Preprocessing.patch_size", "(depth, height, width) when mode is '3d'",
                      list(self.patch_size))
        elif self.patch_size is not None and len(self.patch_size) != 2:
            _fail("Preprocessing.patch_size", f"(height, width) when mode is {self.mode!r}",
                  list(self.patch_size))

    @property
    def slice_axes(self):
        """The slicing axes as a tuple (one axis, or several views).

        Example:
            >>> Preprocessing(mode="2d", slice_axis=2).slice_axes
            (2,)
        """
        return self.slice_axis if isinstance(self.slice_axis, tuple) else (self.slice_axis,)

    @classmethod
    def _migrate(cls, data, version):
        # Specs written before multi-view models had no slice_axis: they sliced along axis 0;
        # before 2.5-D they had no context (0 in 2-D).
        data.setdefault("slice_axis", 0)
        return data


@dataclasses.dataclass(frozen=True)
class ModelInfo(_Record):
    """The description stored with a trained model (``kerasseg.json`` in its ``.keras`` file).

    Attributes:
        model: the model family (``"unet"``, ``"deeplab"``, ...).
        num_classes: output channels (classes, background included).
        channels: input channels (image channels times ``2 * context + 1``).
        preprocessing: the training :class:`Preprocessing`.
        patch_size: the training patch ``(h, w)`` (``(d, h, w)`` in mode ``"3d"``); larger
            images are predicted in tiles (volumes by sliding window).
        stride: the model's total downsampling; inputs are padded to a multiple of it.
        model_options: the family's build options (``{"depth": 3, ...}``).
        class_names: a name per class.
        modalities: the input modalities of the data set (``("MRI",)``).
        spatial_dims: 2 for image data sets, 3 for volumes.
        format: the data set format (``"decathlon"``, ``"folder"``, ``"promise12"``, ...).
        training_data: the data set folder it was trained on.
        flip_axes: image axes (0 rows, 1 columns; 0..2 for a 3-D model) that training
            flipped, which flip TTA uses; ``None`` (files from before it was recorded)
            means both.
        label_values: the mask value of each class, when the data set declares them.
        shift_offsets: ``(row, column)`` pixel offsets whose predictions inference
            averages, or ``None``.
        epoch: the epoch the model was saved after.
        val_dice: its validation Dice (mean over foreground classes) then.
        state: the run state stored in ``last.keras`` for resuming, else ``None``.
        trained_policy: the mixed-precision policy it was trained under, when the file was
            written with float32 policies for distribution.
        weights_storage: ``"float32"`` or ``"float16"`` for a compacted file.
        zoo_entry: the zoo entry name it was loaded as (set by :func:`kerasseg.zoo.load`).
        created_with: the kerasseg version that trained it (``None`` for files from
            before it was recorded).
        output_activation: what its outputs are: ``"logits"``, ``"softmax"`` or
            ``"sigmoid"`` (``None`` for files from before it was recorded: inference then
            reads the model's last layer).

    Raises:
        ValueError: when constructed with an invalid value (the field is named).

    Example:
        >>> info = ModelInfo(model="unet", num_classes=3, channels=1, patch_size=(64, 64),
        ...                  stride=8, preprocessing=Preprocessing(mode="2d"),
        ...                  class_names=["background", "Anterior", "Posterior"])
        >>> info.class_names[1], info.to_dict()["patch_size"]
        ('Anterior', [64, 64])
    """

    SCHEMA_VERSION = 2
    _OLD_VERSION_KEYS = ("kerasseg_model_version",)  # the version key of schema 1
    _OMIT_NONE = ("label_values", "shift_offsets", "epoch", "val_dice", "state",
                  "trained_policy", "weights_storage", "zoo_entry", "created_with", "output_activation")

    model: str = _field(_string)
    num_classes: int = _field(_positive_int)
    channels: int = _field(_positive_int)
    preprocessing: Preprocessing = _field(_nested(Preprocessing))
    patch_size: Tuple[int, int] = _field(_size)
    stride: int = _field(_positive_int)
    model_options: dict = _field(_json_dict, factory=dict)
    class_names: Tuple[str, ...] = _field(_strings, ())
    modalities: Tuple[str, ...] = _field(_strings, ())
    spatial_dims: Optional[int] = _field(_optional(_choice(2, 3)), None)
    format: Optional[str] = _field(_optional(_string), None)
    training_data: Optional[str] = _field(_optional(_string), None)
    flip_axes: Optional[Tuple[int, ...]] = _field(_optional(_image_axes), None)
    label_values: Optional[Tuple[int, ...]] = _field(_optional(_integers), None)
    shift_offsets: Optional[Tuple[Tuple[int, int], ...]] = _field(_optional(_offsets), None)
    epoch: Optional[int] = _field(_optional(_non_negative_int), None)
    val_dice: Optional[float] = _field(_optional(_number), None)
    state: Optional[dict] = _field(_optional(_json_dict), None)
    trained_policy: Optional[str] = _field(_optional(_string), None)
    weights_storage: Optional[str] = _field(_optional(_choice("float32", "float16")), None)
    zoo_entry: Optional[str] = _field(_optional(_string), None)
    created_with: Optional[str] = _field(_optional(_string), None)
    output_activation: Optional[str] = _field(
        _optional(_choice("logits", "softmax", "sigmoid")), None)

    def __post_init__(self):
        super().__post_init__()
        if self.class_names and len(self.class_names) not in (self.num_classes,
                                                              max(2, self.num_classes)):
            _fail("ModelInfo.class_names", f"a name for each of the {self.num_classes} classes",
                  list(self.class_names))
        if self.label_values is not None and len(self.label_values) != self.num_classes:
            _fail("ModelInfo.label_values", f"a mask value for each of the {self.num_classes} "
                  "classes", list(self.label_values))
        dims = 3 if self.preprocessing.mode == "3d" else 2
        if len(self.patch_size) != dims:
            _fail("ModelInfo.patch_size", f"{dims} sizes for a model of mode "
                  f"{self.preprocessing.mode!r}", list(self.patch_size))
        if self.flip_axes is not None and any(axis >= dims for axis in self.flip_axes):
            _fail("ModelInfo.flip_axes", f"axes below {dims} for a model of mode "
                  f"{self.preprocessing.mode!r}", list(self.flip_axes))

    @classmethod
    def _migrate(cls, data, version):
        # Schema 1 (files written before this module, e.g. the shipped zoo entries) differs
        # only in the name of its version key, read above; its fields are these.
        return data


# What unset options become with plan=False, and what runs stored before an option
# existed used (their run.json lacks it).
FIXED_DEFAULTS = dict(
    epochs=50, budget=None, batch_size=16, steps_per_epoch=None, patch_size="auto", mode="2d",
    context=None, slice_axis=0, normalization="zscore", target_spacing=None, model_options=None,
    learning_rate=1e-3, schedule="cosine", warmup_epochs=0, val_every=1, augment="default",
    mixed_precision=False, val_fraction=0.2,
)


def _run_patch(where, value):
    if value == "auto":
        return value
    if _is_int(value):
        return _positive_int(where, value)
    return _size(where, value)


def _normalization_setting(where, value):
    if isinstance(value, str):
        return value
    return _normalization(where, value)


def _augment(where, value):
    if isinstance(value, str):
        return value
    return _json_dict(where, value)


def _mixed_precision(where, value):
    if isinstance(value, (bool, str)):
        return value
    _fail(where, "true, false or a policy name", value)


def _spacing_setting(where, value):
    return value if value == "keep" else _spacing(where, value)


@dataclasses.dataclass(frozen=True)
class RunSettings(_Record):
    """Every setting of a training run, as :func:`kerasseg.train` resolved and stored it.

    The fields are :func:`kerasseg.train`'s arguments (see there), with the planned ones
    filled in. A run stored before a setting existed gets the value it ran with:
    :data:`FIXED_DEFAULTS` for the planned settings, the argument's default otherwise.

    Raises:
        ValueError: when constructed with an invalid value (the field is named).

    Example:
        >>> RunSettings.from_dict({"model": "unet", "epochs": 20}).batch_size
        16
    """

    model: str = _field(_string)
    output_dir: Optional[str] = _field(_optional(_string), None)
    epochs: Optional[int] = _field(_optional(_positive_int), FIXED_DEFAULTS["epochs"])
    budget: Optional[float] = _field(_optional(_number), None)
    batch_size: int = _field(_positive_int, FIXED_DEFAULTS["batch_size"])
    steps_per_epoch: Optional[int] = _field(_optional(_positive_int), None)
    patch_size: Any = _field(_optional(_run_patch), FIXED_DEFAULTS["patch_size"])
    mode: str = _field(_choice("2d", "2.5d", "3d"), FIXED_DEFAULTS["mode"])
    context: Optional[int] = _field(_optional(_non_negative_int), None)
    slice_axis: Any = _field(_slice_axis, FIXED_DEFAULTS["slice_axis"])
    normalization: Any = _field(_normalization_setting, FIXED_DEFAULTS["normalization"])
    target_spacing: Any = _field(_optional(_spacing_setting), None)
    model_options: Optional[dict] = _field(_optional(_json_dict), None)
    loss: str = _field(_string, "dice_ce")
    learning_rate: float = _field(_number, FIXED_DEFAULTS["learning_rate"])
    weight_decay: float = _field(_number, 1e-4)
    schedule: str = _field(_string, FIXED_DEFAULTS["schedule"])
    warmup_epochs: int = _field(_non_negative_int, FIXED_DEFAULTS["warmup_epochs"])
    early_stopping: Optional[int] = _field(_optional(_positive_int), None)
    val_every: int = _field(_positive_int, FIXED_DEFAULTS["val_every"])
    val_fraction: Optional[float] = _field(_optional(_fraction), FIXED_DEFAULTS["val_fraction"])
    val_cases: Optional[Tuple] = _field(_optional(_case_ids), None)
    test_fraction: float = _field(_fraction, 0.0)
    seed: int = _field(_integer, 0)
    strategy: str = _field(_string, "auto")
    devices: Optional[Tuple[str, ...]] = _field(_optional(_strings), None)
    mixed_precision: Any = _field(_mixed_precision, FIXED_DEFAULTS["mixed_precision"])
    augment: Any = _field(_optional(_augment), FIXED_DEFAULTS["augment"])
    augment_backend: str = _field(_choice("tf", "albumentations"), "tf")
    foreground_prob: float = _field(_fraction, 0.33)
    init_weights: Optional[str] = _field(_optional(_string), None)
    freeze_encoder_epochs: int = _field(_non_negative_int, 0)
    plan: bool = _field(_boolean, False)  # runs stored before planning were not planned
    resume: bool = _field(_boolean, False)
    overwrite: bool = _field(_boolean, False)
    evaluate: bool = _field(_boolean, True)
    measured: Optional[dict] = _field(_optional(_json_dict), None)

    def to_dict(self):
        """Return the stored settings (the arguments of :func:`kerasseg.train`).

        Returns:
            A new dict of every setting (without a version key: ``run.json`` holds it).

        Example:
            >>> RunSettings(model="unet").to_dict()["epochs"]
            50
        """
        out = super().to_dict()
        del out[self._VERSION_KEY]
        if self.measured is None:
            del out["measured"]
        return out


@dataclasses.dataclass(frozen=True)
class RunSpec(_Record):
    """The record of a training run (``run.json``).

    Attributes:
        settings: the run's :class:`RunSettings`.
        split: case ids by role, ``{"train": [...], "val": [...], "test": [...]}``.
        patch_size: the training patch ``(h, w)``.
        patch_reason: why that patch size (logged and shown by the plan).
        train_slices: training slices counted to size epochs, or ``None``.
        data: the data set: ``{"root", "format", "cases", "class_names"}``.
        info: the :class:`ModelInfo` every saved model of the run carries.

    Raises:
        ValueError: when constructed with an invalid value (the field is named).

    Example:
        >>> spec = RunSpec.read("runs/hippo/run.json")  # doctest: +SKIP
        >>> spec.settings.seed, spec.split["test"][:2], spec.info.class_names  # doctest: +SKIP
    """

    SCHEMA_VERSION = 2

    settings: RunSettings = _field(_nested(RunSettings))
    split: dict = _field(lambda where, value: _split(where, value))
    patch_size: Tuple[int, int] = _field(_size)
    info: ModelInfo = _field(_nested(ModelInfo))
    patch_reason: str = _field(_string, "")
    train_slices: Optional[int] = _field(_optional(_non_negative_int), None)
    data: dict = _field(lambda where, value: _data(where, value), factory=dict)

    @classmethod
    def _migrate(cls, data, version):
        # Schema 1: run.json files written before this module; the same layout without a
        # version, whose settings lack the options added since (RunSettings fills them).
        return data

    @classmethod
    def read(cls, path):
        """Read and validate a ``run.json`` file.

        Args:
            path: the file (``OUTPUT/run.json``).

        Returns:
            A :class:`RunSpec`, or ``None`` if the file does not exist.

        Raises:
            ValueError: if the file is not valid JSON or not a valid run record.

        Example:
            >>> RunSpec.read("runs/hippo/run.json").settings.epochs  # doctest: +SKIP
            30
        """
        from kerasseg.files import read_json

        stored = read_json(os.fspath(path))
        if stored is None:
            return None
        try:
            return cls.from_dict(stored)
        except ValueError as error:
            raise ValueError(f"{os.fspath(path)}: {error}") from None

    def write(self, path):
        """Write the record to ``path`` atomically.

        Args:
            path: the file (``OUTPUT/run.json``).

        Raises:
            OSError: if the file cannot be written (nothing is left half-written).

        Example:
            >>> spec.write("runs/hippo/run.json")  # doctest: +SKIP
        """
        from kerasseg.files import write_json_atomic

        write_json_atomic(os.fspath(path), self.to_dict())


def _split(where, value):
    if not isinstance(value, dict) or not {"train", "val"} <= set(value) \
            or set(value) - {"train", "val", "test"}:
        _fail(where, "a dict {'train': [...], 'val': [...], 'test': [...]} of case ids", value)
    return {role: list(_case_ids(f"{where}.{role}", value.get(role, [])))
            for role in ("train", "val", "test")}


def _data(where, value):
    value = _json_dict(where, value)
    unknown = set(value) - {"root", "format", "cases", "class_names"}
    if unknown:
        _fail(where, "a dict with keys root, format, cases, class_names", value)
    return value
