"""Building, compiling and fitting a run's model: from scratch, from other weights, or resumed.

:func:`open_model` builds the model of a :class:`~kerasseg.training.setup.RunLayout` (or
reloads ``last.keras`` to resume), :func:`compile_model` gives it the run's loss, metric and
optimizer, :func:`fit_budget` measures the step time here and fits the epochs to a time
budget, and :func:`fit` runs the epochs (with a frozen encoder first when asked, and the
custom loop under a multi-worker strategy).
"""

import dataclasses
import logging
import os
import time

log = logging.getLogger("kerasseg")


def new_model(model_name, channels, num_classes, model_options, settings, steps, strategy):
    """A compiled model like the run's, for measuring its step time (then discarded).

    Args:
        model_name: the registered family.
        channels: input channels.
        num_classes: output classes.
        model_options: the family's build options.
        settings: the run's settings (loss, schedule, learning rate, weight decay).
        steps: steps per epoch (the schedule's length for this stand-in).
        strategy: the ``tf.distribute`` strategy to build under.

    Returns:
        A compiled Keras model.

    Example:
        >>> net = new_model("unet", 5, 3, {"depth": 3}, settings, 100, strategy)  # doctest: +SKIP
    """
    from kerasseg.models import build, registry

    spatial = (None,) * registry.spatial_dims(registry.resolve_name(model_name))
    with strategy.scope():
        net = build(model_name, input_shape=spatial + (channels,), num_classes=num_classes,
                    **model_options)
        compile_model(net, settings, num_classes, steps, total_steps=steps, done_steps=0)
    return net


def fit_budget(settings, datasets, started, steps, test_per_val, make_model):
    """Measure the step and validation time here and return the epochs that fit the budget.

    Args:
        settings: the run's settings (``budget``, ``val_every``); the measured times are
            stored under ``settings["measured"]``.
        datasets: ``(train, validation)`` datasets of the run.
        started: ``time.perf_counter()`` at the run's start (time already spent counts).
        steps: steps per epoch.
        test_per_val: held-out cases per validation case (the final evaluation scores both).
        make_model: a function returning a compiled stand-in model (:func:`new_model`).

    Returns:
        ``(epochs, deadline)``: the number of epochs (at least 1, at most the planner's
        maximum) and the ``time.perf_counter()`` time by which training must end to leave
        the final evaluation its time.

    Example:
        >>> epochs, deadline = fit_budget(settings, datasets, started, 100, 0.0, make_model)  # doctest: +SKIP
    """
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
    return epochs, started + budget - final


def compile_model(net, settings, num_classes, steps, total_steps, done_steps):
    """Compile ``net`` with the run's loss, metric and a fresh AdamW at step ``done_steps``.

    Args:
        net: the model.
        settings: the run's settings (``loss``, ``schedule``, ``learning_rate``,
            ``warmup_epochs``, ``weight_decay``).
        num_classes: output classes.
        steps: steps per epoch (warm-up length).
        total_steps: the schedule's length.
        done_steps: steps already taken (the schedule continues from there).

    Example:
        >>> compile_model(net, settings, 3, 100, 2000, done_steps=0)  # doctest: +SKIP
    """
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


def open_model(layout, settings, initial_epoch, strategy, output_dir):
    """The run's model, compiled: reloaded from ``last.keras`` to resume, else built.

    A new model starts from ``init_weights`` when given (its encoder frozen for
    ``freeze_encoder_epochs``).

    Args:
        layout: the run's :class:`~kerasseg.training.setup.RunLayout`.
        settings: the run's settings.
        initial_epoch: epochs already done (0 for a new run).
        strategy: the ``tf.distribute`` strategy to build under.
        output_dir: the run folder.

    Returns:
        A compiled Keras model.

    Example:
        >>> net = open_model(layout, settings, 0, strategy, "runs/h")  # doctest: +SKIP
    """
    from kerasseg.models import build, registry

    spatial = (None,) * registry.spatial_dims(layout.model_name)
    total_steps = layout.steps * settings["epochs"]
    with strategy.scope():
        if initial_epoch > 0:
            from kerasseg.modelfile import load_model
            from kerasseg.training.keeper import LAST

            net = load_model(os.path.join(output_dir, LAST), compile=True)[0]
            log.info("resumed from %s after epoch %d", LAST, initial_epoch)
            return net
        net = build(layout.model_name, input_shape=spatial + (layout.channels,),
                    num_classes=layout.num_classes, **layout.model_options)
        if settings["init_weights"]:
            from kerasseg.training.transfer import load_init_weights, set_encoder_trainable

            load_init_weights(net, settings["init_weights"])
            if settings["freeze_encoder_epochs"]:
                set_encoder_trainable(net, False)
        compile_model(net, settings, layout.num_classes, layout.steps, total_steps, done_steps=0)
    return net


def fit(net, layout, settings, state, strategy, datasets, callbacks, val_epochs, verbose):
    """Train ``net`` from ``state["epoch"]`` to ``settings["epochs"]``.

    With ``init_weights`` and ``freeze_encoder_epochs``, the decoder and head train first,
    then everything, with a fresh optimizer that continues the learning-rate schedule.
    Under a multi-worker strategy the custom loop runs the epochs.

    Args:
        net: the compiled model (:func:`open_model`).
        layout: the run's :class:`~kerasseg.training.setup.RunLayout`.
        settings: the run's settings.
        state: the run state the keeper updates (``epoch``, ``stopped_early``).
        strategy: the ``tf.distribute`` strategy.
        datasets: ``(train, validation)`` ``tf.data`` datasets.
        callbacks: Keras callbacks, the run keeper first.
        val_epochs: the epochs after which to validate.
        verbose: Keras' ``fit`` verbosity.

    Example:
        >>> fit(net, layout, settings, state, strategy, datasets, [keeper], [5, 10], 2)  # doctest: +SKIP
    """
    import tensorflow as tf

    train_ds, val_ds = datasets
    steps, epochs, initial_epoch = layout.steps, settings["epochs"], state["epoch"]
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        from kerasseg.training.custom_loop import fit_distributed

        fit_distributed(net, strategy, train_ds, val_ds, epochs, initial_epoch, steps,
                        layout.global_batch, callbacks[0], verbose=verbose,
                        val_epochs=val_epochs)
        return
    freeze = settings["freeze_encoder_epochs"] if settings["init_weights"] else 0
    fit_args = dict(steps_per_epoch=steps, validation_data=val_ds, callbacks=callbacks,
                    validation_freq=val_epochs, verbose=verbose, shuffle=False)
    if freeze and initial_epoch < freeze:
        from kerasseg.training.transfer import set_encoder_trainable

        # The encoder was frozen when the model was built (a resumed model keeps its
        # frozen layers); train the decoder and head, then unfreeze everything with a
        # fresh optimizer that continues the learning-rate schedule.
        net.fit(train_ds, epochs=freeze, initial_epoch=initial_epoch, **fit_args)
        initial_epoch = state["epoch"]
        set_encoder_trainable(net, True)
        with strategy.scope():
            compile_model(net, settings, layout.num_classes, steps, steps * epochs,
                     done_steps=initial_epoch * steps)
        log.info("encoder unfrozen after epoch %d", initial_epoch)
    if not state["stopped_early"] and initial_epoch < epochs:
        net.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch, **fit_args)
