"""The run keeper: best and last checkpoints, history and early stopping, all resumable.

After every epoch the keeper writes, each atomically:

1. ``best.keras`` when the monitored validation Dice improved (the model plus its info);
2. ``last.keras``: the model *with its optimizer state* and, inside the same archive, the
   run state (epochs done, history, best value, early-stopping counter). Because state and
   weights live in one file that is replaced in one rename, a run killed at any moment
   resumes from a consistent epoch boundary;
3. ``history.csv``, rebuilt from that state. Each row also holds the epoch's wall-clock
   ``seconds`` (validation included) and, when it validated, ``val_seconds``.
"""

import csv
import io
import logging
import math
import os
import time

import keras

from kerasseg.files import write_text_atomic
from kerasseg.modelfile import read_info, save_model

log = logging.getLogger("kerasseg")

BEST = "best.keras"
LAST = "last.keras"
HISTORY = "history.csv"


def fresh_state():
    """Return the state of a run that has not completed an epoch."""
    return {"epoch": 0, "history": [], "best": None, "best_epoch": None, "wait": 0,
            "stopped_early": False}


def load_state(output_dir):
    """Return the run state stored in ``output_dir/last.keras`` or ``None`` if absent."""
    path = os.path.join(output_dir, LAST)
    if not os.path.exists(path):
        return None
    info = read_info(path)
    return None if info is None else info.state


def write_history_csv(path, history):
    """Write the per-epoch history (a list of dicts) as CSV, atomically."""
    keys = []
    for row in history:
        keys.extend(key for key in row if key not in keys)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(path, buffer.getvalue())


# A validation Dice this far below a training Dice of at least DIVERGENCE_MIN_TRAIN, for
# DIVERGENCE_VALIDATIONS validations in a row, triggers the divergence warning.
DIVERGENCE_GAP = 0.3
DIVERGENCE_MIN_TRAIN = 0.5
DIVERGENCE_VALIDATIONS = 2


def diverging(train_dice, val_dice):
    """Whether a validation Dice is far enough below the training Dice to warn.

    Args:
        train_dice: the epoch's training Dice (augmented patches, training mode).
        val_dice: the validation Dice (whole slices, inference mode).

    Returns:
        ``True`` when the training Dice is at least :data:`DIVERGENCE_MIN_TRAIN` and the
        validation Dice at least :data:`DIVERGENCE_GAP` below it.

    Example:
        >>> diverging(0.74, 0.19), diverging(0.74, 0.60), diverging(0.40, 0.05)
        (True, False, False)
    """
    return train_dice >= DIVERGENCE_MIN_TRAIN and train_dice - val_dice >= DIVERGENCE_GAP


def divergence_advice(train_dice, val_dice, model=None):
    """The warning logged when validation stays far below training: causes and remedies.

    Args:
        train_dice: the training Dice.
        val_dice: the validation Dice.
        model: the model being trained; the advice names batch normalization first when
            the model has such layers.

    Returns:
        A message of several sentences.

    Example:
        >>> "validation Dice 0.19" in divergence_advice(0.74, 0.19)
        True
    """
    causes = []
    if model is not None and any(isinstance(layer, keras.layers.BatchNormalization)
                                 for layer in model._flatten_layers()):
        causes.append("batch-normalization statistics that have not settled (few optimizer "
                      "steps or small batches): the model behaves differently in inference "
                      "mode; train with --model-option normalization=instance")
    causes += [
        "overfitting a small training set: more augmentation (--augment strong), fewer "
        "epochs, a smaller network (--model-option base_filters=16)",
        "validation cases unlike the training ones: check the split in run.json, the "
        "intensity ranges and the mask values of the validation cases",
    ]
    return (f"validation Dice {val_dice:.2f} stays far below training Dice {train_dice:.2f} "
            f"({DIVERGENCE_VALIDATIONS} validations in a row). Likely causes, most likely "
            "first: " + "; ".join(f"({i}) {c}" for i, c in enumerate(causes, 1)) + ".")


def out_of_time(now, next_epoch_seconds, deadline):
    """Whether a run should stop: the next epoch would end more than half an epoch late.

    Args:
        now: the current time (seconds, the clock of ``deadline``).
        next_epoch_seconds: the expected length of the next epoch.
        deadline: when training must end.

    Returns:
        bool.

    Example:
        >>> out_of_time(now=100, next_epoch_seconds=40, deadline=130)  # ends 10 s late
        False
        >>> out_of_time(now=100, next_epoch_seconds=40, deadline=115)  # 25 s late
        True
    """
    return now + next_epoch_seconds > deadline + 0.5 * next_epoch_seconds


class RunKeeper(keras.callbacks.Callback):
    """Keras callback that checkpoints, logs history and stops early.

    Args:
        output_dir: the run folder.
        info: the :class:`kerasseg.description.ModelInfo` stored in every saved model;
            ``best.keras`` adds its ``epoch`` and ``val_dice``, ``last.keras`` the ``state``.
        state: the run state to continue from (see :func:`fresh_state`).
        monitor: the logs key to maximise (``"val_dice"``); the value stored in
            ``best.keras`` under the info field of that name, when there is one.
        patience: validated epochs without improvement before stopping (epochs whose
            logs lack ``monitor`` are not counted); ``None`` never stops.
        chief: whether this process writes files (the chief worker); other workers write
            to a scratch folder so that collective operations stay in step.
        scratch_dir: where a non-chief worker writes.
        time_left: seconds this run may still train (a time budget, less what the
            final evaluation needs), or ``None``. After each epoch the keeper stops the
            run when the next epoch would end more than half an epoch past that time (see
            :func:`out_of_time`), so that a budget holds when the machine turns slower
            than it was when the epochs were fitted to the budget.

    Example:
        >>> keeper = RunKeeper("run", info=info, state=fresh_state())  # doctest: +SKIP
        >>> model.fit(ds, epochs=10, callbacks=[keeper])  # doctest: +SKIP
    """

    def __init__(self, output_dir, info, state, monitor="val_dice", patience=None, chief=True,
                 scratch_dir=None, time_left=None):
        super().__init__()
        self.deadline = None if time_left is None else time.perf_counter() + time_left
        self._last_val_seconds = 0.0
        self.output_dir = output_dir
        self.info = info
        self.state = state
        self.monitor = monitor
        self.patience = patience
        self.chief = chief
        self.scratch_dir = scratch_dir
        # Wall-clock marks of the current epoch and its validation (see on_epoch_end).
        self._started = self._val_started = self._val_seconds = None
        # Validations in a row whose Dice stayed far below the training Dice.
        self._diverged, self._warned = 0, False

    def on_epoch_begin(self, epoch, logs=None):
        self._started, self._val_seconds = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        self._val_started = time.perf_counter()

    def on_test_end(self, logs=None):
        self._val_seconds = time.perf_counter() - self._val_started
        self._last_val_seconds = self._val_seconds

    def _check_divergence(self, row):
        """Warn once when validation Dice stays far below training Dice."""
        train, val = row.get("dice"), row.get("val_dice")
        if train is None or val is None:
            return
        if diverging(train, val):
            self._diverged += 1
        else:
            self._diverged = 0
        if self._diverged == DIVERGENCE_VALIDATIONS and not self._warned:
            self._warned = True
            log.warning("%s", divergence_advice(train, val, self.model))

    def _folder(self):
        return self.output_dir if self.chief else self.scratch_dir

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        row = {"epoch": epoch + 1}
        for key, value in logs.items():
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                continue
        if hasattr(self.model.optimizer, "learning_rate"):
            try:
                row["learning_rate"] = float(keras.ops.convert_to_numpy(
                    self.model.optimizer.learning_rate))
            except (TypeError, ValueError):
                pass
        if self._started is not None:
            row["seconds"] = round(time.perf_counter() - self._started, 2)
            if self._val_seconds is not None:
                row["val_seconds"] = round(self._val_seconds, 2)
        self._started = None
        state = self.state
        state["history"].append(row)
        state["epoch"] = epoch + 1
        value = row.get(self.monitor)
        improved = value is not None and not math.isnan(value) and (
            state["best"] is None or value > state["best"]
        )
        folder = self._folder()
        if improved:
            state["best"], state["best_epoch"], state["wait"] = value, epoch + 1, 0
            score = {"val_dice": value} if self.monitor == "val_dice" else {}
            save_model(self.model, os.path.join(folder, BEST),
                       self.info.replace(epoch=epoch + 1, **score))
        elif value is not None:
            # An epoch without validation neither improves nor counts towards patience.
            state["wait"] += 1
        if self.patience is not None and state["wait"] >= self.patience:
            state["stopped_early"] = True
            self.model.stop_training = True
        out_of_budget = self._out_of_budget(epoch, row)
        save_model(self.model, os.path.join(folder, LAST), self.info.replace(state=state))
        if self.chief:
            write_history_csv(os.path.join(folder, HISTORY), state["history"])
        best = "-" if state["best"] is None else f"{state['best']:.4f} (epoch {state['best_epoch']})"
        timing = ""
        if "seconds" in row:
            validation = (f", validation {row['val_seconds']:.0f} s" if "val_seconds" in row
                          else "")
            timing = f" ({row['seconds']:.0f} s{validation})"
        self._check_divergence(row)
        log.info("epoch %d: %s%s; best %s %s%s", epoch + 1,
                 ", ".join(f"{k}={v:.4f}" for k, v in row.items()
                           if k not in ("epoch", "seconds", "val_seconds")),
                 timing, self.monitor, best, "; stopping early" if state["stopped_early"] else "")
        if out_of_budget:
            log.warning("%s", out_of_budget)

    def _out_of_budget(self, epoch, row):
        """Stop the run when the next epoch would overrun the time left; say why."""
        planned = (self.params or {}).get("epochs")
        if self.deadline is None or "seconds" not in row or self.model.stop_training or (
                planned is not None and epoch + 1 >= planned):
            return None
        # The next epoch: this one's training time, and a validation (the longest case).
        train_seconds = row["seconds"] - row.get("val_seconds", 0.0)
        next_epoch = train_seconds + self._last_val_seconds
        if not out_of_time(time.perf_counter(), next_epoch, self.deadline):
            return None
        self.model.stop_training = True
        return (f"time budget spent: stopping after epoch {epoch + 1}"
                + (f" of {planned}" if planned else "")
                + f" (an epoch now takes about {next_epoch:.0f} s; the machine is slower than "
                "when the epochs were fitted to the budget, e.g. busy with other work). The "
                "best model so far is kept; --resume continues to the planned epochs.")
