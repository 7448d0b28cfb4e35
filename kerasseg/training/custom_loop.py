"""A custom training loop for ``MultiWorkerMirroredStrategy``.

``model.fit`` under ``MultiWorkerMirroredStrategy`` fails in Keras 3 with the TensorFlow
backend ("Attempt to convert a value (PerReplica ...)"). This loop does the same work:
the model and optimizer are built in ``strategy.scope()``, the dataset is distributed
with ``strategy.experimental_distribute_dataset``, each step runs with ``strategy.run``,
per-example losses are averaged over the *global* batch with
``tf.nn.compute_average_loss`` and the loss is summed across replicas with
``strategy.reduce``. The training Dice is counted per replica (true/false positives and
negatives per class), summed across replicas and scored on the host, so it is the same
``dice`` that ``fit`` reports. Validation runs on every worker over the whole validation set (so
every worker reports the same numbers) and the :class:`~kerasseg.training.keeper.RunKeeper`
writes checkpoints on the chief.
"""

import logging

import keras
import numpy as np
import tensorflow as tf

log = logging.getLogger("kerasseg")


def fit_distributed(model, strategy, train_ds, val_ds, epochs, initial_epoch, steps,
                    global_batch, keeper, verbose=1, val_epochs=None):
    """Train ``model`` (compiled in ``strategy.scope()``) for ``epochs`` epochs.

    Args:
        model: a compiled Keras model built in ``strategy.scope()``.
        strategy: the ``tf.distribute`` strategy.
        train_ds: endless training dataset yielding global batches.
        val_ds: finite validation dataset.
        epochs: last epoch (exclusive end, as ``fit``'s ``epochs``).
        initial_epoch: epochs already done.
        steps: steps per epoch.
        global_batch: global batch size.
        keeper: a :class:`~kerasseg.training.keeper.RunKeeper` (checkpoints, history,
            early stopping).
        verbose: 0 silent, otherwise one progress line per epoch.
        val_epochs: the epochs (1-based) after which to validate; ``None`` validates after
            every epoch.

    Returns:
        The keeper's run state.
    """
    from kerasseg.training import recipe

    loss_object = model.loss
    loss_object.reduction = "none"
    optimizer = model.optimizer
    variables = model.trainable_variables
    with strategy.scope():
        train_loss = keras.metrics.Mean(name="loss")
    # Host-side totals; the replicas only return their counts.
    train_dice = recipe.make_metric(model.output_shape[-1])

    def replica_step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            per_example = loss_object(labels, logits)
            per_example = tf.reshape(per_example, [tf.shape(images)[0], -1])
            per_example = tf.reduce_mean(per_example, axis=1)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return (loss,) + tuple(train_dice.batch_counts(labels, logits))

    @tf.function
    def train_step(iterator):
        per_replica = strategy.run(replica_step, args=next(iterator))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for value in per_replica]

    iterator = iter(strategy.experimental_distribute_dataset(train_ds))
    keeper.set_model(model)
    for epoch in range(initial_epoch, epochs):
        keeper.on_epoch_begin(epoch)
        train_loss.reset_state()
        train_dice.reset_state()
        for _ in range(steps):
            loss, *counts = train_step(iterator)
            train_loss.update_state(loss)
            train_dice.add_counts(*counts)
        logs = {"dice": float(train_dice.result()), "loss": float(train_loss.result())}
        if val_ds is not None and (val_epochs is None or epoch + 1 in val_epochs):
            keeper.on_test_begin()
            logs.update(_validate(model, val_ds, loss_object))
            keeper.on_test_end()
        if verbose:
            log.info("epoch %d/%d (%d replicas): %s", epoch + 1, epochs,
                     strategy.num_replicas_in_sync,
                     ", ".join(f"{k}={v:.4f}" for k, v in logs.items()))
        keeper.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    return keeper.state


def _validate(model, val_ds, loss_object):
    from kerasseg.training import recipe

    dice = recipe.make_metric(model.output_shape[-1])
    losses, weights = [], []
    for images, labels in val_ds:
        logits = model(images, training=False)
        per_example = np.asarray(loss_object(labels, logits)).reshape(len(images), -1).mean(axis=1)
        losses.append(float(per_example.mean()))
        weights.append(len(images))
        dice.update_state(labels, logits)
    return {
        "val_loss": float(np.average(losses, weights=weights)),
        "val_dice": float(dice.result()),
    }
