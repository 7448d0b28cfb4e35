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
import os
import shutil
import tempfile
import time

from kerasseg.description import RunSpec
from kerasseg.files import write_json_atomic
from kerasseg.training import keeper as keeper_lib
from kerasseg.training.setup import (
    PLAN_FILE, RUN_FILE, check_positive_int, describe_run, lay_out, load_for, validate)

log = logging.getLogger("kerasseg")

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
    check_positive_int("epochs", epochs)
    check_positive_int("val_every", val_every)
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
        model: a model family name (``kerasseg.list_models()``): a 2-D family trains on
            slices (modes ``"2d"``, ``"2.5d"``), a 3-D one (``"unet3d"``, ``"vnet"``) on
            3-D patches (mode ``"3d"``).
        output_dir: the run folder (created).
        epochs: total epochs of the run (a resumed run ends after the same number).
            Planned: fitted to ``budget``.
        budget: wall-clock seconds for the whole run (or a string such as ``"20m"``,
            ``"1.5h"``): the run measures its step and validation time on this machine
            and sets ``epochs`` to fit, validation and the final evaluation included;
            a run that falls behind (the machine got busier) stops when the budget is
            spent, keeping its best model. Used when ``epochs`` is not given; default
            one hour.
        batch_size: per-replica batch size; the global batch is this times the number of
            replicas of the strategy. Planned: patches filling 2**19 pixels, 2 to 32.
        steps_per_epoch: optimizer steps per epoch. Planned: 100, whatever the number of
            cases (fixed: training slices divided by the global batch size).
        patch_size: an int or ``(h, w)`` (``(d, h, w)`` for a 3-D family), or
            ``"auto"``/``None``: whole slices padded to a multiple of the model stride when
            they fit in 256x256, else 256x256 patches (3-D: whole volumes up to 128 a
            side, padded to the strides of each axis).
        mode: ``"2d"``, ``"2.5d"`` (neighbouring slices as channels) or ``"3d"`` (3-D
            patches; the mode of the 3-D families). Planned: 2-D for images, 2.5-D for
            volumes with a 2-D family, 3-D with a 3-D family.
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
            more than one foreground class. A 3-D family takes the 3-D presets and
            parameters of :func:`kerasseg.data.augment3d.get_augmentation_3d` (e.g.
            ``{"preset": "default", "mirror_axes": []}``), applied in the graph.
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
        ValueError: for invalid settings, a 3-D model family, or an ``output_dir`` that
            already holds a run (without ``resume`` or ``overwrite``).
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
        settings = {**stored.settings.to_dict(), "resume": True}
        settings.pop("output_dir", None)
        return _run(data, output_dir, settings, state, stored, verbose)
    if state is not None and not overwrite:
        raise ValueError(
            f"`output_dir` already holds a run ({os.path.join(output_dir, keeper_lib.LAST)}). "
            f"Pass resume=True (--resume) to continue it or overwrite=True (--overwrite) to "
            f"start again. Received: output_dir={output_dir!r}"
        )
    # Nothing stored to resume: a fresh run, whose options are checked as such.
    settings = {**settings, "resume": False}
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


def _run(data, output_dir, settings, state, stored, verbose):
    import keras

    from kerasseg.data.pipeline import make_dataset, make_eval_dataset
    from kerasseg.models import output_activation
    from kerasseg.training import fitting, precision
    from kerasseg.training.strategy import get_strategy, is_chief

    validate(settings)
    started = time.perf_counter()
    # The data first: a data set the model cannot train on is refused before any file is
    # written.
    data = load_for(settings["model"], data)
    # The strategy comes first: multi-worker collectives must be set up before other TF work.
    strategy = get_strategy(settings["strategy"], devices=settings["devices"])
    chief = is_chief(strategy)
    _setup_logging(output_dir, verbose, to_file=chief)

    # Plan: split, fill unset options, prepare the training cases once.
    layout = lay_out(data, output_dir, settings, stored, chief,
                     replicas=strategy.num_replicas_in_sync)
    policy = precision.set_policy(settings["mixed_precision"]) if settings["mixed_precision"] else (
        keras.mixed_precision.set_global_policy("float32") or "float32")
    initial_epoch = state["epoch"]

    def make_datasets():
        keras.utils.set_random_seed(settings["seed"] + 1009 * initial_epoch)
        train_ds = make_dataset(
            layout.train_store, patch_size=layout.patch, batch_size=layout.global_batch,
            spec=layout.spec, augment=settings["augment"],
            augment_backend=settings["augment_backend"],
            foreground_prob=settings["foreground_prob"],
            seed=settings["seed"] + 7919 * initial_epoch, num_classes=layout.num_classes,
        )
        val_ds = make_eval_dataset(layout.val_cases, patch_size=layout.patch,
                                   batch_size=layout.global_batch, spec=layout.spec,
                                   num_classes=layout.num_classes)
        return train_ds, val_ds

    # Build and fit: epochs fitted to the budget from step times measured here.
    datasets = deadline = None
    if settings["epochs"] is None:
        datasets = make_datasets()
        settings["epochs"], deadline = fitting.fit_budget(
            settings, datasets, started, layout.steps,
            len(layout.test_ids) / max(1, len(layout.val_ids)),
            lambda: fitting.new_model(layout.model_name, layout.channels, layout.num_classes,
                                      layout.model_options, settings, layout.steps, strategy))
    info, run_spec = describe_run(layout, settings, output_dir)
    if not stored and chief:
        run_spec.write(os.path.join(output_dir, RUN_FILE))
    _log_layout(layout, settings, strategy, policy)

    if state["stopped_early"] or initial_epoch >= settings["epochs"]:
        log.info("run already complete after %d epochs", initial_epoch)
    else:
        datasets = datasets or make_datasets()
        keras.utils.set_random_seed(settings["seed"] + 1009 * initial_epoch)
        net = fitting.open_model(layout, settings, initial_epoch, strategy, output_dir)
        # What inference and export apply to the outputs.
        info = info.replace(output_activation=output_activation(net))
        scratch = None if chief else tempfile.mkdtemp(prefix="kerasseg-worker-")
        keeper = keeper_lib.RunKeeper(
            output_dir, info, state, patience=settings["early_stopping"], chief=chief,
            scratch_dir=scratch,
            time_left=None if deadline is None else deadline - time.perf_counter())
        callbacks = [keeper]
        if chief:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "logs"),
                                                         write_graph=False))
        # Runs stored before val_every existed validated after every epoch.
        val_epochs = validation_epochs(settings["epochs"], settings.get("val_every", 1))
        fitting.fit(net, layout, settings, state, strategy, datasets, callbacks, val_epochs,
                    int(verbose))
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    # Evaluate the best model per case.
    best_path = os.path.join(output_dir, keeper_lib.BEST)
    evaluation = None
    if settings["evaluate"] and chief and os.path.exists(best_path):
        evaluation = _evaluate(best_path, layout, output_dir)
    log.info("best model: %s (val_dice %s at epoch %s)", best_path,
             "-" if state["best"] is None else f"{state['best']:.4f}", state["best_epoch"])
    return TrainResult(
        output_dir=output_dir, best_model=best_path, history=state["history"],
        best_val_dice=state["best"], best_epoch=state["best_epoch"],
        epochs_run=state["epoch"], evaluation=evaluation,
    )


def _log_layout(layout, settings, strategy, policy):
    dataset = layout.dataset
    log.info("data: %s, %d cases (%d train / %d validation / %d test, split by case, seed %d)",
             dataset.format, len(dataset), len(layout.train_ids), len(layout.val_ids),
             len(layout.test_ids), settings["seed"])
    log.info("patch size: %s", layout.patch_reason)
    log.info("model: %s %s, input %s, %d classes %s", layout.model_name,
             layout.model_options, (None,) * len(layout.patch) + (layout.channels,), layout.num_classes,
             list(dataset.class_names))
    replicas = strategy.num_replicas_in_sync
    log.info("strategy: %s with %d replica(s); global batch %d = %d per replica x %d; "
             "%d steps/epoch, %d epochs; precision %s", type(strategy).__name__, replicas,
             layout.global_batch, settings["batch_size"], replicas, layout.steps,
             settings["epochs"], policy)


def _evaluate(best_path, layout, output_dir):
    """Score the best model per case on the validation (and held-out test) cases."""
    from kerasseg.scoring import evaluate_model

    evaluation = evaluate_model(best_path, layout.val_cases)
    write_json_atomic(os.path.join(output_dir, "validation_cases.json"), evaluation)
    _log_evaluation("validation", evaluation)
    if layout.test_ids:
        evaluation["test"] = evaluate_model(best_path, layout.dataset.subset(layout.test_ids))
        write_json_atomic(os.path.join(output_dir, "test_cases.json"), evaluation["test"])
        _log_evaluation("held-out test", evaluation["test"])
    return evaluation


def _log_evaluation(which, evaluation):
    means = evaluation["summary"]
    log.info("%s per case (%d cases, best model): %s", which, len(evaluation["cases"]),
             ", ".join(f"{name} Dice {means[name]['dice']['mean']:.4f}"
                       for name in means if "dice" in means[name]))
