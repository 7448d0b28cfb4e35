"""Fitting a run to a time budget: measure the step time here, then choose the epochs.

:func:`measure` times a few training steps and validation batches of a throw-away copy of
the run's model on the run's own data pipeline (after warm-up steps that pay for tracing),
so the estimate includes augmentation, data loading and the chosen precision on this
machine. :func:`fit_epochs` turns the measurement into the number of epochs that fits.
"""

import dataclasses
import logging
import math
import time

log = logging.getLogger("kerasseg")


@dataclasses.dataclass(frozen=True)
class StepTimes:
    """What :func:`measure` found.

    Attributes:
        step_seconds: seconds per training step (one global batch).
        val_batch_seconds: seconds per validation batch.
        val_batches: validation batches in one validation.
        setup_seconds: seconds the measurement itself took (tracing included).
    """

    step_seconds: float
    val_batch_seconds: float
    val_batches: int
    setup_seconds: float

    @property
    def validation_seconds(self):
        """Estimated seconds of one validation."""
        return self.val_batch_seconds * self.val_batches


class _BatchClock:
    """Keras callback that records the wall-clock end time of every training batch."""

    def __init__(self):
        import keras

        class Clock(keras.callbacks.Callback):
            def __init__(self, marks):
                super().__init__()
                self.marks = marks

            def on_train_batch_end(self, batch, logs=None):
                self.marks.append(time.perf_counter())

            def on_test_batch_end(self, batch, logs=None):
                self.marks.append(time.perf_counter())

        self.marks = []
        self.callback = Clock(self.marks)

    def per_batch(self, skip):
        """Median seconds between consecutive marks after the first ``skip`` batches."""
        marks = self.marks[skip:]
        if len(marks) < 2:
            raise RuntimeError("Too few batches were timed to measure the step time.")
        gaps = sorted(b - a for a, b in zip(marks, marks[1:]))
        return gaps[len(gaps) // 2]


def measure(make_model, train_ds, val_ds, warmup=3, steps=6, val_warmup=1, val_steps=3):
    """Time training steps and validation batches of a fresh model on the run's data.

    Args:
        make_model: function returning a compiled model like the run's (it is discarded
            afterwards; the run's own model does not see these steps).
        train_ds: the run's training ``tf.data.Dataset`` (repeating).
        val_ds: the run's validation dataset (finite, with a known cardinality).
        warmup: training steps before timing (tracing, pipeline start).
        steps: training steps timed.
        val_warmup, val_steps: the same for validation batches.

    Returns:
        A :class:`StepTimes`.

    Raises:
        RuntimeError: if the datasets yield too few batches to time.

    Example:
        >>> times = measure(lambda: compiled_model(), train_ds, val_ds)  # doctest: +SKIP
        >>> times.step_seconds  # doctest: +SKIP
        0.21
    """
    started = time.perf_counter()
    model = make_model()
    clock = _BatchClock()
    model.fit(train_ds, epochs=1, steps_per_epoch=warmup + steps, verbose=0,
              callbacks=[clock.callback], shuffle=False)
    step = clock.per_batch(warmup - 1)
    val_batches = int(val_ds.cardinality())
    if val_batches < 0:  # unknown or infinite: count once
        val_batches = sum(1 for _ in val_ds)
    clock = _BatchClock()
    timed = min(val_batches, val_warmup + val_steps)
    if timed >= 2:
        model.evaluate(val_ds.take(timed), verbose=0, callbacks=[clock.callback])
        val_batch = clock.per_batch(max(0, min(val_warmup, timed - 2)))
    else:
        val_batch = step / 3.0  # one batch: forward only, about a third of a step
    del model
    return StepTimes(float(step), float(val_batch), val_batches,
                     time.perf_counter() - started)


def fit_epochs(budget, spent, times, steps_per_epoch, val_every, final_evaluation=None,
               max_epochs=1000):
    """Return the number of epochs that fits in a budget.

    An epoch costs ``steps_per_epoch`` steps, and every ``val_every``-th epoch one
    validation more; the final per-case evaluation of the best model is reserved
    (estimated as one validation when not given).

    Args:
        budget: seconds for the whole run.
        spent: seconds already spent (loading, planning, measuring).
        times: the :class:`StepTimes` measured.
        steps_per_epoch: optimizer steps per epoch.
        val_every: validations happen after every ``val_every``-th epoch and the last.
        final_evaluation: seconds reserved for the evaluation after training.
        max_epochs: the most epochs to return.

    Returns:
        An int in ``[1, max_epochs]`` (1 when even one epoch does not fit; the run then
        overruns the budget and says so in the log).

    Example:
        >>> t = StepTimes(step_seconds=0.5, val_batch_seconds=0.1, val_batches=100,
        ...               setup_seconds=10.0)
        >>> fit_epochs(1200, 60, t, steps_per_epoch=100, val_every=2)
        20
    """
    final = times.validation_seconds if final_evaluation is None else final_evaluation
    left = budget - spent - final
    epoch = steps_per_epoch * times.step_seconds + times.validation_seconds / val_every
    # The last epoch always validates, which the average above may not include.
    epochs = math.floor((left - times.validation_seconds * (1 - 1 / val_every)) / epoch)
    if epochs < 1:
        log.warning("the budget of %.0f s leaves %.0f s after preparation, less than one "
                    "epoch (%.0f s): training one epoch", budget, left, epoch)
    return int(min(max(epochs, 1), max_epochs))
