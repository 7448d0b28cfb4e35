"""`kerasseg.train`: train any registered model on any supported data set.

A run lives in one folder::

    OUTPUT/
      run.json       every setting of the run, the case split and the data description
      plan.json      the plan drawn from the data (each setting, why, and the fingerprint)
      best.keras     best model by validation Dice (with class names and preprocessing)
      last.keras     last completed epoch, optimizer and run state (for --resume)
      history.csv    one row per epoch
      train.log      the log
      logs/          TensorBoard logs

Every option left unset is planned from the data (:mod:`kerasseg.plan`): dimensionality,
spacing, normalization, patch and batch size, network depth, fixed iterations per epoch,
epochs fitted to a time budget, learning rate, validation frequency, augmentation and
precision; the plan is logged as a table and stored. Fixed parts follow nnU-Net: Dice +
cross-entropy, AdamW, foreground oversampling. ``plan=False`` fills unset options with
:data:`FIXED_DEFAULTS` instead.
"""

import dataclasses
import logging
import inspect
import os
import shutil
import tempfile
import time

from kerasseg._version import __version__
from kerasseg.data.augment import flipped_axes
from kerasseg.description import FIXED_DEFAULTS, ModelInfo, RunSettings, RunSpec
from kerasseg.files import write_json_atomic
from kerasseg.training import keeper as keeper_lib

log = logging.getLogger("kerasseg")

RUN_FILE = "run.json"
PLAN_FILE = "plan.json"
VERBOSITY = (0, 1, 2)  # train(verbose=...): silent, progress bar and log, one line per epoch

# FIXED_DEFAULTS (from kerasseg.description): what unset options become with plan=False,
# and what runs stored before an option existed used.


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        output_dir: the run folder.
        best_model: path of ``best.keras``.
        history: list of per-epoch dicts (loss, dice, val_loss, val_dice, learning rate).
        best_val_dice: best validation Dice (mean over foreground classes).
        best_epoch: the epoch it was reached at.
        epochs_run: epochs completed in total (including those before a resume).
        evaluation: per-case evaluation of the validation cases, or ``None``.
    """

    output_dir: str
    best_model: str
    history: list
    best_val_dice: float
    best_epoch: int
    epochs_run: int
    evaluation: dict = None


def _setup_logging(output_dir, verbose, to_file=True):
    os.makedirs(output_dir, exist_ok=True)
    logger = logging.getLogger("kerasseg")
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        if getattr(handler, "_kerasseg_run", False):
            logger.removeHandler(handler)
            handler.close()
    if to_file:
        path = os.path.abspath(os.path.join(output_dir, "train.log"))
        file_handler = logging.FileHandler(path)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        file_handler._kerasseg_run = True
        logger.addHandler(file_handler)
    if verbose:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("[kerasseg] %(message)s"))
        stream._kerasseg_run = True
        logger.addHandler(stream)
    logger.propagate = False


def _check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return value


def validation_epochs(epochs, val_every=1):
    """Return the epochs (1-based) after which a run validates.

    Args:
        epochs: the run's total epochs.
        val_every: validate after every ``val_every``-th epoch; the last epoch always
            validates, so the run ends with a validated model.

    Returns:
        A sorted list of epoch numbers in ``[1, epochs]``.

    Raises:
        ValueError: if ``epochs`` or ``val_every`` is not a positive int.

    Example:
        >>> validation_epochs(10, 4)
        [4, 8, 10]
    """
    _check_positive_int("epochs", epochs)
    _check_positive_int("val_every", val_every)
    return [epoch for epoch in range(1, epochs + 1) if epoch % val_every == 0 or epoch == epochs]


def _settings(locals_):
    return {key: value for key, value in locals_.items() if key not in ("data", "verbose")}


def train(
    data,
    model="unet",
    *,
    output_dir,
    epochs=None,
    budget=None,
    batch_size=None,
    steps_per_epoch=None,
    patch_size=None,
    mode=None,
    context=None,
    slice_axis=None,
    normalization=None,
    target_spacing=None,
    model_options=None,
    loss="dice_ce",
    learning_rate=None,
    weight_decay=1e-4,
    schedule=None,
    warmup_epochs=None,
    early_stopping=None,
    val_every=None,
    val_fraction=None,
    val_cases=None,
    test_fraction=0.0,
    seed=0,
    strategy="auto",
    devices=None,
    mixed_precision=None,
    augment=None,
    augment_backend="tf",
    foreground_prob=0.33,
    init_weights=None,
    freeze_encoder_epochs=0,
    plan=True,
    resume=False,
    overwrite=False,
    evaluate=True,
    verbose=1,
):
    """Train a segmentation model and keep the best checkpoint.

    Args:
        data: a data set folder (2-D image/mask folders, a Decathlon task, a PROMISE12
            tree; see :func:`kerasseg.data.load_dataset`) or a ``CaseDataset``.
        model: a model family name (:func:`kerasseg.list_models`).
        output_dir: the run folder (created).
        epochs: total epochs of the run (a resumed run ends after the same number).
            Planned: fitted to ``budget``.
        budget: wall-clock seconds for the whole run (or a string such as ``"20m"``,
            ``"1.5h"``): the run measures its step and validation time on this machine
            and sets ``epochs`` to fit, validation and the final evaluation included.
            Used when ``epochs`` is not given; default one hour.
        batch_size: per-replica batch size; the global batch is this times the number of
            replicas of the strategy. Planned: patches filling 2**19 pixels, 2 to 32.
        steps_per_epoch: optimizer steps per epoch. Planned: 100, whatever the number of
            cases (fixed: training slices divided by the global batch size).
        patch_size: an int or ``(h, w)``, or ``"auto"``/``None``: whole slices padded to a
            multiple of the model stride when they fit in 256x256, else 256x256 patches.
        mode: ``"2d"`` or ``"2.5d"`` (neighbouring slices as channels). Planned: 2-D for
            images, 2.5-D for volumes.
        context: neighbours on each side in 2.5-D. Planned: 1 for anisotropic volumes,
            2 otherwise.
        slice_axis: array axis of the ``(D, H, W)`` volumes that 2-D slices are taken
            across (0: the first axis, axial for most scans), or a list of axes for a
            multi-view model (trained on slices across each; prediction averages the
            views' probabilities). Planned: the coarse axis of anisotropic volumes, all
            three axes otherwise.
        normalization: intensity normalization (the registry
            :data:`kerasseg.data.normalization.METHOD_PARAMS`): a method name of
            :data:`~kerasseg.data.normalization.NAMED_NORMALIZATIONS` (``"none"``,
            ``"zscore"``, ``"minmax"``, ``"percentile_clip"``, ``"percentile_zscore"``), or
            a dict ``{"method": ..., "params": {...}}`` for any method, the ones with
            required parameters included (``"scale"``, ``"fixed"``, ``"ct_window"``,
            e.g. ``{"method": "ct_window", "params": {"center": 40, "width": 400}}``).
            Planned: a CT window from the foreground percentiles for CT, z-score
            otherwise.
        target_spacing: resampling target in (x, y[, z]) mm, ``None`` entries keep an
            axis; ``"keep"`` keeps the data's spacing. Planned: the median spacing.
        model_options: dict of family options (``{"depth": 4}``); planned entries
            (depth, base filters, instance normalization layers) fill the keys not given.
        loss: ``"dice_ce"``, ``"dice"``, ``"ce"``, ``"focal"`` or ``"tversky"``.
        learning_rate: peak learning rate (not scaled with replicas; see
            :func:`kerasseg.training.strategy.scaled_learning_rate`). Planned: 1e-3.
        weight_decay: AdamW weight decay.
        schedule: ``"cosine"``, ``"poly"`` or ``"constant"``. Planned: cosine.
        warmup_epochs: linear warm-up epochs (cosine). Planned: 1.
        early_stopping: stop after this many validations without a better validation
            Dice; ``None`` trains all epochs.
        val_every: validate (and consider ``best.keras``) after every ``val_every``-th
            epoch and after the last one; epochs in between only train. Validation of a
            large or multi-view validation set can cost more than the epoch's training.
            Planned: validation kept to about a quarter of the training time.
        val_fraction: fraction of cases held out for validation (split by case); 0.2
            when not given. A data set of one case trains and validates on it.
        val_cases: explicit validation case ids (overrides ``val_fraction``).
        test_fraction: fraction of cases held out from both training and model selection
            (split by case, recorded in ``run.json``); the final evaluation then reports
            them (``test_cases.json``) besides the validation cases.
        seed: seed of the split, initialization, sampling and augmentation.
        strategy: ``"auto"``, ``"default"``, ``"mirrored"``, ``"multiworker"`` or ``"tpu"``.
        devices: devices for ``"mirrored"`` (e.g. ``["/cpu:0", "/cpu:1"]``).
        mixed_precision: ``False``, ``True`` (automatic, with a message where it is
            unsupported) or a policy name. Planned: ``True``.
        augment: augmentation preset (``"none"``, ``"light"``, ``"default"``, ``"strong"``),
            or a dict of parameters (see :func:`kerasseg.data.augment.get_augmentation`),
            e.g. ``{"preset": "light", "flip_axes": [1]}`` to flip only across columns.
            The model's info records the flipped axes (``flip_axes``), which flip TTA uses.
            Planned: ``"default"``, without flips or 90-degree rotations when there is
            more than one foreground class.
        augment_backend: ``"tf"`` (in-graph, fast) or ``"albumentations"`` (NumPy, one
            example at a time); both apply the same transforms, elastic included.
        foreground_prob: fraction of samples centred on foreground.
        init_weights: start from these weights: a ``.keras``/``.weights.h5`` file or a zoo
            entry name; layers whose shapes differ (a new head) keep their initialization.
        freeze_encoder_epochs: with ``init_weights``, train only the decoder and head for
            this many epochs first.
        plan: plan unset options from the data (:mod:`kerasseg.plan`); ``False`` gives
            them :data:`FIXED_DEFAULTS`.
        resume: continue the run in ``output_dir`` from its last completed epoch, with its
            stored settings.
        overwrite: start afresh even if ``output_dir`` holds a run.
        evaluate: evaluate the best model per case on the validation cases at the end.
        verbose: 0 silent, 1 progress bar and log, 2 one line per epoch.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: for invalid settings, or an ``output_dir`` that already holds a run
            (without ``resume`` or ``overwrite``).
        kerasseg.data.DataError: for unreadable or invalid data (named).

    Example:
        >>> result = kerasseg.train("data/msd_hippocampus", "unet", output_dir="runs/h",
        ...                         epochs=20, model_options={"depth": 3})  # doctest: +SKIP
        >>> result.best_val_dice  # doctest: +SKIP
    """
    if verbose not in VERBOSITY:
        raise ValueError(f"`verbose` must be one of {list(VERBOSITY)}. Received: verbose={verbose!r}")
    settings = _settings(dict(locals()))
    import keras

    policy = keras.mixed_precision.global_policy().name
    try:
        return _start(data, output_dir, settings, resume, overwrite, verbose)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _start(data, output_dir, settings, resume, overwrite, verbose):
    output_dir = os.path.abspath(output_dir)
    run_path = os.path.join(output_dir, RUN_FILE)
    _remove_partial_writes(output_dir)
    state = keeper_lib.load_state(output_dir) if os.path.isdir(output_dir) else None
    if resume and state is not None:
        stored = RunSpec.read(run_path)
        if stored is None:
            raise ValueError(f"{run_path} is missing: cannot resume the run in {output_dir}.")
        # Settings a run stored before they existed get the values it ran with (RunSettings).
        settings = {**stored.settings.to_dict(), "resume": True, "verbose": verbose}
        settings.pop("output_dir", None)
        return _run(data, output_dir, settings, state, stored, verbose)
    if state is not None and not overwrite:
        raise ValueError(
            f"`output_dir` already holds a run ({os.path.join(output_dir, keeper_lib.LAST)}). "
            f"Pass resume=True (--resume) to continue it or overwrite=True (--overwrite) to "
            f"start again. Received: output_dir={output_dir!r}"
        )
    if state is not None and overwrite:
        for name in (keeper_lib.LAST, keeper_lib.BEST, keeper_lib.HISTORY, RUN_FILE, PLAN_FILE):
            path = os.path.join(output_dir, name)
            if os.path.exists(path):
                os.remove(path)
    return _run(data, output_dir, settings, keeper_lib.fresh_state(), None, verbose)


def _remove_partial_writes(output_dir):
    """Delete temporary files a killed run may have left (they never replaced a target)."""
    if not os.path.isdir(output_dir):
        return
    for name in os.listdir(output_dir):
        if name.startswith(".") and name.endswith((".keras", ".json", ".csv")):
            os.remove(os.path.join(output_dir, name))


def _validate(settings):
    """Check the options that are set (``None`` ones are planned or fixed later)."""
    from kerasseg.models import registry
    from kerasseg.plan import parse_duration
    from kerasseg.training.recipe import LOSSES, SCHEDULES

    registry.resolve_name(settings["model"])
    for name in ("epochs", "batch_size", "steps_per_epoch", "early_stopping", "val_every",
                 "warmup_epochs"):
        if name == "warmup_epochs" and settings.get(name) == 0:
            continue
        _check_positive_int(name, settings.get(name), allow_none=True)
    if settings.get("budget") is not None:
        settings["budget"] = parse_duration(settings["budget"], "budget")
        if settings.get("epochs") is not None:
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
        flipped_axes(settings["augment"])  # a clear error for bad augmentation parameters
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
        isinstance(patch, int) and patch > 0
        or isinstance(patch, (list, tuple)) and len(patch) == 2
        and all(isinstance(p, int) and p > 0 for p in patch)
    ):
        raise ValueError(
            "`patch_size` must be 'auto', a positive int or (height, width). "
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
        for name in unset:
            settings[name] = FIXED_DEFAULTS[name]
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


def _run(data, output_dir, settings, state, stored, verbose):
    import keras
    import numpy as np

    from kerasseg.data import load_dataset
    from kerasseg.data.pipeline import (
        make_dataset, make_eval_dataset, make_preprocessing_spec, prepare_cases, slice_axes)
    from kerasseg.models import build, output_activation, registry
    from kerasseg.plan import auto_patch_size
    from kerasseg.training import precision, recipe
    from kerasseg.training.strategy import get_strategy, is_chief

    _validate(settings)
    started = time.perf_counter()
    # The strategy comes first: multi-worker collectives must be set up before other TF work.
    strategy = get_strategy(settings["strategy"], devices=settings["devices"])
    replicas = strategy.num_replicas_in_sync
    chief = is_chief(strategy)
    _setup_logging(output_dir, verbose, to_file=chief)

    dataset = data if hasattr(data, "case_ids") else load_dataset(data)
    if not dataset.has_labels:
        unlabeled = [case.case_id for case in dataset.cases if not case.has_label][:10]
        raise ValueError(
            f"Training needs a mask for every case; {dataset.root} has cases without one "
            f"(first: {unlabeled}). Load it with on_missing_label='skip' to leave them out."
        )
    num_classes = dataset.num_classes
    plan = None
    if stored:
        train_ids, val_ids = stored.split["train"], stored.split["val"]
        test_ids = stored.split["test"]
    else:
        train_ids, val_ids, test_ids = _split(dataset, settings)
        plan = _resolve(settings, dataset, train_ids, val_ids, output_dir, chief)
        _validate(settings)
    policy = precision.set_policy(settings["mixed_precision"]) if settings["mixed_precision"] else (
        keras.mixed_precision.set_global_policy("float32") or "float32")
    train_cases = dataset.subset(train_ids) if hasattr(dataset, "subset") else [dataset[i] for i in train_ids]
    val_cases = dataset.subset(val_ids) if hasattr(dataset, "subset") else [dataset[i] for i in val_ids]
    model_name = registry.resolve_name(settings["model"])
    model_options = dict(settings["model_options"] or {})
    stride = registry.total_stride(model_name, **model_options)

    spec = make_preprocessing_spec(
        mode=settings["mode"], context=settings["context"],
        normalization=settings["normalization"], target_spacing=settings["target_spacing"],
        slice_axis=settings.get("slice_axis", 0),
    )
    if stored:
        patch, patch_reason = stored.patch_size, stored.patch_reason
        train_slices = stored.train_slices
    else:
        train_slices = None
        if settings["patch_size"] == "auto" or settings["steps_per_epoch"] is None:
            prepared = prepare_cases(train_cases, spec, num_classes=num_classes,
                                     patch_size=(1, 1))
            axes = slice_axes(spec)
            slice_shapes = {tuple(n for i, n in enumerate(case.image.shape[:3]) if i != axis)
                            for case in prepared for axis in axes}
            train_slices = int(sum(case.image.shape[axis] for case in prepared for axis in axes))
            del prepared
        if settings["patch_size"] == "auto":
            patch, patch_reason = auto_patch_size(slice_shapes, stride)
        else:
            raw = settings["patch_size"]
            patch = (raw, raw) if isinstance(raw, int) else tuple(raw)
            if patch[0] % stride or patch[1] % stride:
                raise ValueError(
                    f"`patch_size` must be a multiple of the model stride {stride} for "
                    f"{model_name} with {model_options}. Received: patch_size={raw!r}"
                )
            row = plan.row("patch_size") if plan is not None else None
            patch_reason = (row.reason if row is not None and not row.given
                            else f"patch size {patch[0]}x{patch[1]} (given)")
    spec["patch_size"] = list(patch)
    channels = dataset.num_channels * (2 * spec["context"] + 1)
    global_batch = settings["batch_size"] * replicas
    steps = settings["steps_per_epoch"] or max(1, train_slices // global_batch)
    initial_epoch = state["epoch"]

    def make_datasets():
        keras.utils.set_random_seed(settings["seed"] + 1009 * initial_epoch)
        train_ds = make_dataset(
            train_cases, patch_size=patch, batch_size=global_batch, spec=spec,
            augment=settings["augment"], augment_backend=settings["augment_backend"],
            foreground_prob=settings["foreground_prob"],
            seed=settings["seed"] + 7919 * initial_epoch, num_classes=num_classes,
        )
        val_ds = make_eval_dataset(val_cases, patch_size=patch, batch_size=global_batch,
                                   spec=spec, num_classes=num_classes)
        return train_ds, val_ds

    datasets = None
    if settings["epochs"] is None:
        datasets = make_datasets()
        settings["epochs"] = _fit_budget(settings, datasets, started, steps, len(test_ids) / max(
            1, len(val_ids)), lambda: _new_model(model_name, channels, num_classes, model_options,
                                                 settings, steps, strategy))
    total_steps = steps * settings["epochs"]
    info = ModelInfo(
        model=model_name,
        model_options=model_options,
        num_classes=num_classes,
        class_names=list(dataset.class_names),
        modalities=list(dataset.modalities),
        channels=channels,
        spatial_dims=dataset.spatial_dims,
        format=dataset.format,
        preprocessing=spec,
        patch_size=patch,
        stride=stride,
        training_data=dataset.root,
        # image axes that training flipped: the flips test-time augmentation may use
        flip_axes=flipped_axes(settings["augment"]),
        label_values=_stored_label_values(dataset, num_classes),
        created_with=__version__,
        # What the builders' option makes the outputs (checked against the built model).
        output_activation=model_options.get("output_activation") or "logits",
    )
    if not stored:
        stored = RunSpec(
            settings=RunSettings.from_dict({**settings, "output_dir": output_dir}),
            split={"train": list(train_ids), "val": list(val_ids), "test": list(test_ids)},
            patch_size=patch,
            patch_reason=patch_reason,
            train_slices=train_slices,
            data={"root": dataset.root, "format": dataset.format, "cases": len(dataset),
                  "class_names": list(dataset.class_names)},
            info=info,
        )
        if chief:
            stored.write(os.path.join(output_dir, RUN_FILE))

    log.info("data: %s, %d cases (%d train / %d validation / %d test, split by case, seed %d)",
             dataset.format, len(dataset), len(train_ids), len(val_ids), len(test_ids),
             settings["seed"])
    log.info("patch size: %s", patch_reason)
    log.info("model: %s %s, input (None, None, %d), %d classes %s", model_name, model_options,
             channels, num_classes, list(dataset.class_names))
    log.info("strategy: %s with %d replica(s); global batch %d = %d per replica x %d; "
             "%d steps/epoch, %d epochs; precision %s", type(strategy).__name__, replicas,
             global_batch, settings["batch_size"], replicas, steps, settings["epochs"], policy)

    if state["stopped_early"] or initial_epoch >= settings["epochs"]:
        log.info("run already complete after %d epochs", initial_epoch)
    else:
        train_ds, val_ds = datasets or make_datasets()
        keras.utils.set_random_seed(settings["seed"] + 1009 * initial_epoch)
        with strategy.scope():
            if initial_epoch > 0:
                from kerasseg.modelfile import load_model

                net = load_model(os.path.join(output_dir, keeper_lib.LAST), compile=True)[0]
                log.info("resumed from %s after epoch %d", keeper_lib.LAST, initial_epoch)
            else:
                net = build(model_name, input_shape=(None, None, channels),
                            num_classes=num_classes, **model_options)
                if settings["init_weights"]:
                    from kerasseg.training.transfer import load_init_weights

                    load_init_weights(net, settings["init_weights"])
                if settings["init_weights"] and settings["freeze_encoder_epochs"]:
                    from kerasseg.training.transfer import set_encoder_trainable

                    set_encoder_trainable(net, False)
                _compile(net, settings, num_classes, steps, total_steps, done_steps=0)
        # What inference and export apply to the outputs.
        info = info.replace(output_activation=output_activation(net))
        scratch = None if chief else tempfile.mkdtemp(prefix="kerasseg-worker-")
        keeper = keeper_lib.RunKeeper(output_dir, info, state, patience=settings["early_stopping"],
                                      chief=chief, scratch_dir=scratch)
        callbacks = [keeper]
        if chief:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "logs"),
                                                         write_graph=False))
        fit_verbose = int(verbose)
        # Runs stored before val_every existed validated after every epoch.
        val_epochs = validation_epochs(settings["epochs"], settings.get("val_every", 1))
        freeze = settings["freeze_encoder_epochs"] if settings["init_weights"] else 0
        import tensorflow as tf

        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            from kerasseg.training.custom_loop import fit_distributed

            fit_distributed(net, strategy, train_ds, val_ds, settings["epochs"], initial_epoch,
                            steps, global_batch, keeper, verbose=fit_verbose,
                            val_epochs=val_epochs)
        else:
            if freeze and initial_epoch < freeze:
                from kerasseg.training.transfer import set_encoder_trainable

                # The encoder was frozen when the model was built (a resumed model keeps
                # its frozen layers); train the decoder and head, then unfreeze everything
                # with a fresh optimizer that continues the learning-rate schedule.
                net.fit(train_ds, epochs=freeze, initial_epoch=initial_epoch,
                        steps_per_epoch=steps, validation_data=val_ds, callbacks=callbacks,
                        validation_freq=val_epochs, verbose=fit_verbose, shuffle=False)
                initial_epoch = state["epoch"]
                set_encoder_trainable(net, True)
                with strategy.scope():
                    _compile(net, settings, num_classes, steps, total_steps,
                             done_steps=initial_epoch * steps)
                log.info("encoder unfrozen after epoch %d", initial_epoch)
            if not state["stopped_early"] and initial_epoch < settings["epochs"]:
                net.fit(train_ds, epochs=settings["epochs"], initial_epoch=initial_epoch,
                        steps_per_epoch=steps, validation_data=val_ds, callbacks=callbacks,
                        validation_freq=val_epochs, verbose=fit_verbose, shuffle=False)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    best_path = os.path.join(output_dir, keeper_lib.BEST)
    evaluation = None
    if settings["evaluate"] and chief and os.path.exists(best_path):
        from kerasseg.inference import evaluate_model

        evaluation = evaluate_model(best_path, val_cases)
        write_json_atomic(os.path.join(output_dir, "validation_cases.json"), evaluation)
        _log_evaluation("validation", evaluation)
        if test_ids:
            evaluation["test"] = evaluate_model(best_path, dataset.subset(test_ids))
            write_json_atomic(os.path.join(output_dir, "test_cases.json"), evaluation["test"])
            _log_evaluation("held-out test", evaluation["test"])
    log.info("best model: %s (val_dice %s at epoch %s)", best_path,
             "-" if state["best"] is None else f"{state['best']:.4f}", state["best_epoch"])
    return TrainResult(
        output_dir=output_dir, best_model=best_path, history=state["history"],
        best_val_dice=state["best"], best_epoch=state["best_epoch"],
        epochs_run=state["epoch"], evaluation=evaluation,
    )


def _new_model(model_name, channels, num_classes, model_options, settings, steps, strategy):
    """A compiled model like the run's, for measuring its step time (then discarded)."""
    from kerasseg.models import build

    with strategy.scope():
        net = build(model_name, input_shape=(None, None, channels), num_classes=num_classes,
                    **model_options)
        _compile(net, settings, num_classes, steps, total_steps=steps, done_steps=0)
    return net


def _fit_budget(settings, datasets, started, steps, test_per_val, make_model):
    """Measure the step and validation time here and return the epochs that fit the budget."""
    from kerasseg.plan.planner import DEFAULT_BUDGET, MAX_EPOCHS
    from kerasseg.training import budget as budget_lib

    budget = settings.get("budget") or DEFAULT_BUDGET
    times = budget_lib.measure(make_model, *datasets)
    val_every = settings.get("val_every") or 1
    # The final evaluation predicts whole validation (and test) cases once.
    final = times.validation_seconds * (1.0 + test_per_val)
    epochs = budget_lib.fit_epochs(budget, time.perf_counter() - started, times, steps,
                                   val_every, final_evaluation=final, max_epochs=MAX_EPOCHS)
    log.info("budget %.0f s: %.3f s per step, %.1f s per validation (%d batches), measured "
             "in %.0f s; %d epochs of %d steps fit, validating every %d", budget,
             times.step_seconds, times.validation_seconds, times.val_batches,
             times.setup_seconds, epochs, steps, val_every)
    settings["measured"] = dataclasses.asdict(times)
    return epochs


def _log_evaluation(which, evaluation):
    means = evaluation["summary"]
    log.info("%s per case (%d cases, best model): %s", which, len(evaluation["cases"]),
             ", ".join(f"{name} Dice {means[name]['dice']['mean']:.4f}"
                       for name in means if "dice" in means[name]))


def _compile(net, settings, num_classes, steps, total_steps, done_steps):
    """Compile ``net`` with the run's loss, metric and a fresh AdamW at step ``done_steps``."""
    from kerasseg.models import output_activation
    from kerasseg.training import recipe

    schedule = recipe.make_schedule(
        settings["schedule"], settings["learning_rate"], total_steps,
        warmup_steps=settings["warmup_epochs"] * steps,
    )
    optimizer = recipe.make_optimizer(schedule, settings["weight_decay"])
    activation = output_activation(net)  # from_logits only for a model that outputs logits
    net.compile(
        optimizer=optimizer,
        loss=recipe.make_loss(settings["loss"], num_classes, activation),
        metrics=[recipe.make_metric(num_classes, output_activation=activation)],
    )
    if done_steps:
        optimizer.build(net.trainable_variables)
        optimizer.iterations.assign(done_steps)


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
