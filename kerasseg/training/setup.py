"""What a run is before it trains: its settings checked, its split, its plan, its data.

:func:`lay_out` turns the settings of :func:`kerasseg.train` (or those stored by a run
being resumed) into a :class:`RunLayout`: the data set and its split by case, the plan that
fills unset options (:mod:`kerasseg.plan`), the preprocessing spec, the training cases
prepared once (a :class:`~kerasseg.data.cache.CaseStore` that both measures the slices and
feeds the training pipeline), the patch size and the steps per epoch. :func:`describe_run`
then gives the model description and the stored run settings.
"""

import dataclasses
import inspect
import logging
import os
from typing import Any, Optional

from kerasseg._version import __version__
from kerasseg.data.augment import flipped_axes
from kerasseg.description import FIXED_DEFAULTS, ModelInfo, RunSettings, RunSpec
from kerasseg.files import write_json_atomic

log = logging.getLogger("kerasseg")

RUN_FILE = "run.json"
PLAN_FILE = "plan.json"
# The largest side of an automatic 3-D patch (whole volumes up to it; larger ones are
# trained on patches of it and predicted by sliding window).
MAX_PATCH_3D = 128


def check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return value


def family_dims(model):
    """The spatial dimensions (2 or 3) of a trainable model family (its name checked)."""
    from kerasseg.models import registry

    return registry.spatial_dims(registry.resolve_name(model))


def trained_flips(augment, mode):
    """The axes training mirrored (what flip/mirror test-time augmentation may use).

    Args:
        augment: the run's augmentation (a preset name or dict).
        mode: the slicing mode; ``"3d"`` reads 3-D parameters
            (:func:`kerasseg.data.augment3d.mirrored_axes`), the others 2-D ones
            (:func:`kerasseg.data.augment.flipped_axes`).

    Returns:
        A sorted list of axes.

    Raises:
        ValueError: for invalid augmentation parameters.

    Example:
        >>> trained_flips({"preset": "default", "mirror_axes": [1, 2]}, "3d")
        [1, 2]
    """
    if mode == "3d":
        from kerasseg.data.augment3d import get_augmentation_3d, mirrored_axes

        return list(mirrored_axes(get_augmentation_3d(augment)))
    return list(flipped_axes(augment))


def validate(settings):
    """Check the options that are set (``None`` ones are planned or fixed later)."""
    from kerasseg.plan import parse_duration
    from kerasseg.training.recipe import LOSSES, SCHEDULES

    dims = family_dims(settings["model"])
    mode = settings.get("mode")
    if mode is not None and (mode == "3d") != (dims == 3):
        fits = "'3d'" if dims == 3 else "'2d' or '2.5d'"
        raise ValueError(
            f"`mode` {mode!r} does not fit the {dims}-D family {settings['model']!r}: it "
            f"trains in mode {fits}. Received: mode={mode!r}")
    for name in ("epochs", "batch_size", "steps_per_epoch", "early_stopping", "val_every",
                 "warmup_epochs"):
        if name == "warmup_epochs" and settings.get(name) == 0:
            continue
        check_positive_int(name, settings.get(name), allow_none=True)
    if settings.get("budget") is not None:
        settings["budget"] = parse_duration(settings["budget"], "budget")
        # A stored run keeps both: the budget it was given and the epochs fitted to it,
        # which a resumed run continues to (``resume`` is true only for a stored run).
        if settings.get("epochs") is not None and not settings.get("resume"):
            raise ValueError(
                "Give either `epochs` or `budget`, not both: the budget sets the number of "
                f"epochs. Received: epochs={settings['epochs']!r}, budget={settings['budget']!r}")
    if settings["loss"] not in LOSSES:
        raise ValueError(f"`loss` must be one of {list(LOSSES)}. Received: loss={settings['loss']!r}")
    if settings.get("schedule") is not None and settings["schedule"] not in SCHEDULES:
        raise ValueError(
            f"`schedule` must be one of {list(SCHEDULES)}. Received: schedule={settings['schedule']!r}"
        )
    if settings.get("augment") is not None:
        # a clear error for bad augmentation parameters
        trained_flips(settings["augment"], "3d" if dims == 3 else "2d")
    test_fraction = settings.get("test_fraction", 0.0)
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(
            f"`test_fraction` must be in [0, 1). Received: test_fraction={test_fraction!r}"
        )
    val_fraction = settings.get("val_fraction")
    if val_fraction is not None and not 0.0 < float(val_fraction) < 1.0 \
            and not settings["val_cases"]:
        raise ValueError(
            f"`val_fraction` must be in (0, 1). Received: val_fraction={val_fraction!r}"
        )
    patch = settings["patch_size"]
    if patch not in ("auto", None) and not (
        isinstance(patch, int) and not isinstance(patch, bool) and patch > 0
        or isinstance(patch, (list, tuple)) and len(patch) == dims
        and all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in patch)
    ):
        sizes = "(depth, height, width) for a 3-D family" if dims == 3 else "(height, width)"
        raise ValueError(
            f"`patch_size` must be 'auto', a positive int or {sizes}. "
            f"Received: patch_size={patch!r}"
        )
    spacing = settings.get("target_spacing")
    if isinstance(spacing, str) and spacing != "keep":
        raise ValueError("`target_spacing` must be 'keep', None (planned) or (x, y[, z]) in mm. "
                         f"Received: target_spacing={spacing!r}")


def _split(dataset, settings):
    from kerasseg.data.split import split_cases

    ids = dataset.case_ids
    if settings["val_cases"]:
        val = [str(case_id) for case_id in settings["val_cases"]]
        missing = sorted(set(val) - set(ids))
        if missing:
            raise ValueError(f"`val_cases` holds ids not in the data set: {missing[:10]}")
        train_ids = [case_id for case_id in ids if case_id not in set(val)]
        return train_ids, sorted(val), []
    if len(ids) == 1 and not settings.get("test_fraction"):
        log.warning("one case only: training and validating on %s (validation then "
                    "measures fit, not generalization)", ids[0])
        return list(ids), list(ids), []
    val_fraction = settings.get("val_fraction")
    split = split_cases(ids, val_fraction=float(0.2 if val_fraction is None else val_fraction),
                        test_fraction=float(settings.get("test_fraction", 0.0)),
                        seed=settings["seed"])
    return split.train, split.val, split.test


def _resolve(settings, dataset, train_ids, val_ids, output_dir, chief):
    """Fill the unset options: from a plan of the data, or from :data:`FIXED_DEFAULTS`.

    Returns the plan (``None`` with ``plan=False``); ``settings`` is updated in place.
    """
    from kerasseg.plan import PLANNED, fingerprint, plan_training

    unset = [name for name in PLANNED if settings.get(name) is None]
    if settings.get("patch_size") == "auto":
        unset.append("patch_size")
    plan = None
    if settings.get("plan", True):
        given = {name: settings.get(name) for name in PLANNED if name not in unset}
        given["model_options"] = _source_options(settings)
        planned = dataset.subset(sorted(set(train_ids) | set(val_ids)))
        plan = plan_training(fingerprint(planned), settings["model"], given=given)
        for name, value in plan.settings().items():
            if name in unset or name == "model_options":
                settings[name] = value
        for line in plan.table().splitlines():
            log.info("%s", line)
        if chief:
            write_json_atomic(os.path.join(output_dir, PLAN_FILE), plan.to_dict())
    else:
        volumetric = family_dims(settings["model"]) == 3
        for name in unset:
            settings[name] = FIXED_DEFAULTS[name]
            if volumetric and name == "mode":
                settings[name] = "3d"  # a 3-D family sees 3-D patches
    if settings.get("target_spacing") == "keep":
        settings["target_spacing"] = None
    return plan


def _source_options(settings):
    """The given model options; starting from other weights, theirs fill the rest.

    A model started from a zoo entry or a trained file keeps that model's architecture
    (depth, filters, normalization layers) unless the user set an option, so that its
    weights can be copied; the planner does not replace them.
    """
    options = dict(settings.get("model_options") or {})
    if settings.get("init_weights"):
        from kerasseg.training.transfer import source_info

        from kerasseg.models import registry
        from kerasseg.plan import PLANNED_MODEL_OPTIONS

        info = source_info(settings["init_weights"])
        name = registry.resolve_name(settings["model"])
        if info is not None and info.model == name:
            # The source's architecture in full: options it left at the family's default
            # keep that default rather than a planned value.
            params = inspect.signature(registry.get_builder(name)).parameters
            defaults = {key: param.default for key, param in params.items()
                        if key in PLANNED_MODEL_OPTIONS and param.default is not inspect.Parameter.empty}
            options = {**defaults, **info.model_options, **options}
    return options


@dataclasses.dataclass
class RunLayout:
    """A run's data, split, plan and shapes, before any model exists.

    Attributes:
        dataset: the data set (a ``CaseDataset``).
        train_ids, val_ids, test_ids: the split by case.
        plan: the :class:`~kerasseg.plan.Plan` (``None`` with ``plan=False`` or on resume).
        spec: the preprocessing spec, its patch size set.
        train_store: the training cases, prepared once (:class:`~kerasseg.data.cache.CaseStore`).
        val_cases: the validation cases.
        model_name: the registered family name.
        model_options: its build options.
        stride: the model's total downsampling.
        patch: the training patch ``(h, w)``, or ``(d, h, w)`` in mode ``"3d"``.
        patch_reason: why that patch size.
        train_slices: the slices of all training views (in mode ``"3d"``: the cases).
        channels: the model's input channels.
        num_classes: the classes, background included.
        global_batch: the batch over all replicas.
        steps: training steps per epoch.
    """

    dataset: Any
    train_ids: list
    val_ids: list
    test_ids: list
    plan: Optional[Any]
    spec: dict
    train_store: Any
    val_cases: Any
    model_name: str
    model_options: dict
    stride: int
    patch: tuple
    patch_reason: str
    train_slices: int
    channels: int
    num_classes: int
    global_batch: int
    steps: int


def load_for(model, data):
    """Load the data set of a run and check that ``model``'s family can train on it.

    Args:
        model: the model family name.
        data: a data set folder or a ``CaseDataset``.

    Returns:
        The ``CaseDataset``.

    Raises:
        ValueError: for a data set without masks, or a 3-D family on 2-D images (the 2-D
            families are named).

    Example:
        >>> dataset = load_for("unet3d", "data/msd_hippocampus")  # doctest: +SKIP
    """
    from kerasseg.plan import trainable_model

    dataset = _load_labelled(data)
    trainable_model(model, volumes=dataset.spatial_dims == 3)
    return dataset


def _load_labelled(data):
    from kerasseg.data import load_dataset

    dataset = data if hasattr(data, "case_ids") else load_dataset(data)
    if not dataset.has_labels:
        unlabeled = [case.case_id for case in dataset.cases if not case.has_label][:10]
        raise ValueError(
            f"Training needs a mask for every case; {dataset.root} has cases without one "
            f"(first: {unlabeled}). Load it with on_missing_label='skip' to leave them out."
        )
    return dataset


def _subset(dataset, ids):
    return dataset.subset(ids) if hasattr(dataset, "subset") else [dataset[i] for i in ids]


def _whole_volumes(shapes, strides):
    """An automatic 3-D patch: the largest volume's sides rounded up to the strides, capped."""
    patch, capped = [], False
    for axis, step in enumerate(strides):
        largest = max(int(shape[axis]) for shape in shapes)
        cap = max(step, (MAX_PATCH_3D // step) * step)
        side = -(-largest // step) * step
        capped |= side > cap
        patch.append(min(side, cap))
    largest = "x".join(str(max(int(s[a]) for s in shapes)) for a in range(3))
    size = "x".join(str(p) for p in patch)
    if capped:
        return tuple(patch), (f"volumes up to {largest} exceed {MAX_PATCH_3D} voxels a side: "
                              f"training on {size} patches (foreground-oversampled); "
                              "prediction by sliding window")
    return tuple(patch), (f"volumes up to {largest}: whole volumes, zero-padded to {size} "
                          f"(multiples of the model strides {tuple(strides)})")


def _patch(settings, plan, store, stride, model_name, model_options):
    """The training patch and why: planned from the prepared slices (volumes), or given."""
    from kerasseg.models import registry
    from kerasseg.plan import auto_patch_size

    strides = registry.stride_per_axis(model_name, **model_options)
    if settings["patch_size"] == "auto":
        if len(strides) == 3:
            return _whole_volumes(store.shapes, strides)
        return auto_patch_size(set(store.slice_shapes), stride)
    raw = settings["patch_size"]
    patch = (raw,) * len(strides) if isinstance(raw, int) else tuple(raw)
    if len(patch) != len(strides) or any(p % s for p, s in zip(patch, strides)):
        what = (f"stride {strides[0]}" if len(set(strides)) == 1
                else f"strides {tuple(strides)} (per axis)")
        raise ValueError(
            f"`patch_size` must be a multiple of the model {what} for {model_name} with "
            f"{model_options}. Received: patch_size={raw!r}"
        )
    row = plan.row("patch_size") if plan is not None else None
    return patch, (row.reason if row is not None and not row.given
                   else f"patch size {'x'.join(str(p) for p in patch)} (given)")


def lay_out(data, output_dir, settings, stored, chief, replicas=1):
    """Load the data, split it, plan the unset options and prepare the training cases once.

    Args:
        data: a data set folder or a ``CaseDataset``.
        output_dir: the run folder (``plan.json`` is written there by the chief).
        settings: the run's settings; unset ones are filled in place (planned or fixed).
        stored: the :class:`~kerasseg.description.RunSpec` of a run being resumed, or
            ``None`` for a new run.
        chief: whether this worker writes files.
        replicas: replicas in sync (the global batch is ``batch_size * replicas``).

    Returns:
        A :class:`RunLayout`.

    Raises:
        ValueError: for a data set without masks, an invalid setting (named), or a mode
            that does not fit the model family (3-D families train in mode ``"3d"``).
        kerasseg.data.DataError: for a case that cannot be read (named).

    Example:
        >>> layout = lay_out("data/msd_hippocampus", "runs/h", settings, None, True)  # doctest: +SKIP
        >>> layout.patch, layout.steps  # doctest: +SKIP
        ((64, 64), 100)
    """
    from kerasseg.data.cache import CaseStore
    from kerasseg.data.spec import make_preprocessing_spec
    from kerasseg.models import registry
    model_name = registry.resolve_name(settings["model"])
    dataset = _load_labelled(data)
    num_classes = dataset.num_classes
    plan = None
    if stored:
        train_ids, val_ids, test_ids = (stored.split["train"], stored.split["val"],
                                        stored.split["test"])
    else:
        train_ids, val_ids, test_ids = _split(dataset, settings)
        plan = _resolve(settings, dataset, train_ids, val_ids, output_dir, chief)
        validate(settings)
    model_options = dict(settings["model_options"] or {})
    stride = registry.total_stride(model_name, **model_options)
    spec = make_preprocessing_spec(
        mode=settings["mode"], context=settings["context"],
        normalization=settings["normalization"], target_spacing=settings["target_spacing"],
        slice_axis=settings.get("slice_axis", 0),
    )
    volumetric = spec["mode"] == "3d"
    # Prepared once: the slices measured here are the ones the training pipeline samples.
    store = CaseStore(_subset(dataset, train_ids), spec, num_classes=num_classes,
                      patch_size=(1, 1, 1) if volumetric else (1, 1))
    if stored:
        patch, patch_reason = tuple(stored.patch_size), stored.patch_reason
    else:
        patch, patch_reason = _patch(settings, plan, store, stride, model_name, model_options)
    spec["patch_size"] = list(patch)
    global_batch = settings["batch_size"] * replicas
    train_slices = len(store) if volumetric else store.total_slices
    return RunLayout(
        dataset=dataset, train_ids=list(train_ids), val_ids=list(val_ids),
        test_ids=list(test_ids), plan=plan, spec=spec, train_store=store,
        val_cases=_subset(dataset, val_ids), model_name=model_name,
        model_options=model_options, stride=stride, patch=tuple(patch),
        patch_reason=patch_reason, train_slices=train_slices,
        channels=dataset.num_channels * (2 * spec["context"] + 1), num_classes=num_classes,
        global_batch=global_batch,
        steps=settings["steps_per_epoch"] or max(1, train_slices // global_batch),
    )


def describe_run(layout, settings, output_dir):
    """The model description and the stored run settings of a laid-out run.

    Args:
        layout: the :class:`RunLayout`.
        settings: the run's settings (every option set, epochs included).
        output_dir: the run folder.

    Returns:
        ``(ModelInfo, RunSpec)``.

    Example:
        >>> info, spec = describe_run(layout, settings, "runs/h")  # doctest: +SKIP
    """
    dataset, options = layout.dataset, layout.model_options
    info = ModelInfo(
        model=layout.model_name,
        model_options=options,
        num_classes=layout.num_classes,
        class_names=list(dataset.class_names),
        modalities=list(dataset.modalities),
        channels=layout.channels,
        spatial_dims=dataset.spatial_dims,
        format=dataset.format,
        preprocessing=layout.spec,
        patch_size=layout.patch,
        stride=layout.stride,
        training_data=dataset.root,
        # image axes that training flipped: the flips test-time augmentation may use
        flip_axes=trained_flips(settings["augment"], layout.spec["mode"]),
        label_values=_stored_label_values(dataset, layout.num_classes),
        created_with=__version__,
        # What the builders' option makes the outputs (checked against the built model).
        output_activation=options.get("output_activation") or "logits",
    )
    run = RunSpec(
        settings=RunSettings.from_dict({**settings, "output_dir": output_dir}),
        split={"train": layout.train_ids, "val": layout.val_ids, "test": layout.test_ids},
        patch_size=layout.patch,
        patch_reason=layout.patch_reason,
        train_slices=layout.train_slices,
        data={"root": dataset.root, "format": dataset.format, "cases": len(dataset),
              "class_names": list(dataset.class_names)},
        info=info,
    )
    return info, run


def _stored_label_values(dataset, num_classes):
    """The mask value of each class when the data set declares them, so predictions are
    written back in the data's own convention; ``None`` otherwise."""
    cases = getattr(dataset, "cases", None) or []
    pairs = getattr(cases[0], "label_values", None) if cases else None
    if not pairs:
        return None
    stored = {int(index): int(value) for value, index in pairs}
    if sorted(stored) != list(range(num_classes)):
        return None
    return [stored[index] for index in range(num_classes)]
