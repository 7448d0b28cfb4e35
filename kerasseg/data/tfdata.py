"""``tf.data`` building blocks shared by the 2-D and 3-D pipelines: options, sample streams."""

__all__ = ["dataset_options", "sampled_batches", "indexed_batches"]


def dataset_options(explicit_shard):
    """Deterministic ``tf.data.Options``, sharded by data unless the pipeline shards itself.

    Args:
        explicit_shard: whether the pipeline was given ``shard=(num, index)`` (then
            ``tf.distribute`` must not shard it again).

    Returns:
        ``tf.data.Options``.

    Example:
        >>> dataset_options(False).deterministic
        True
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF if explicit_shard
        else tf.data.experimental.AutoShardPolicy.DATA
    )
    return options


def sampled_batches(to_tensors, augment_fn, *, batch_size, repeat, samples_per_epoch, seed,
                    shard, num_parallel_calls, drop_remainder):
    """Batches of samples drawn by ``to_tensors(index, random_value)``, then augmented.

    With ``repeat`` sample ``i`` is a pure function of ``(seed, i)``: the stream is the
    same however often or wherever (a ``tf.distribute`` strategy, a resumed run) it is
    iterated. Otherwise each pass draws ``samples_per_epoch`` new, seed-determined samples.

    Args:
        to_tensors: maps ``(index, random_value)`` to ``(image, label, aug_seed)`` tensors.
        augment_fn: maps a batch ``(images, labels, seeds)`` to ``(images, labels)``, or
            ``None`` to drop the seeds unaugmented.
        batch_size, repeat, samples_per_epoch, seed, drop_remainder: as for
            :func:`kerasseg.data.pipeline.make_dataset`.
        shard: ``(num_shards, index)`` already checked, or ``None``.
        num_parallel_calls: map parallelism (``None``: AUTOTUNE).

    Returns:
        A prefetched ``tf.data.Dataset`` with :func:`dataset_options` set.

    Example:
        >>> ds = sampled_batches(to_tensors, None, batch_size=2, repeat=True,
        ...                      samples_per_epoch=None, seed=0, shard=None,
        ...                      num_parallel_calls=None, drop_remainder=True)  # doctest: +SKIP
    """
    import tensorflow as tf

    if repeat:
        dataset = tf.data.Dataset.counter().map(lambda i: (i, i))
    else:
        indices = tf.data.Dataset.range(samples_per_epoch)
        randoms = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip((indices, randoms))
    if shard is not None:
        dataset = dataset.shard(*shard)
    parallel = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls
    plain = tf.autograph.experimental.do_not_convert  # no Python control flow to convert
    dataset = dataset.map(plain(to_tensors), num_parallel_calls=parallel, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if augment_fn is not None:
        dataset = dataset.map(plain(augment_fn), num_parallel_calls=parallel, deterministic=True)
    else:
        dataset = dataset.map(plain(lambda x, y, s: (x, y)))
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(dataset_options(shard is not None))


def indexed_batches(indices, to_tensors, *, batch_size, shard, num_parallel_calls):
    """Batches of ``to_tensors(row)`` over the rows of ``indices``, in order (evaluation).

    Args:
        indices: an int array whose rows name what to extract (a slice, a tile).
        to_tensors: maps one row to the example's tensors.
        batch_size: examples per batch (the last batch may be smaller).
        shard: ``(num_shards, index)`` already checked, or ``None``.
        num_parallel_calls: map parallelism (``None``: AUTOTUNE).

    Returns:
        A prefetched ``tf.data.Dataset`` with :func:`dataset_options` set.

    Example:
        >>> import numpy as np
        >>> ds = indexed_batches(np.arange(5)[:, None], lambda row: row * 2, batch_size=2,
        ...                      shard=None, num_parallel_calls=None)
        >>> [b.numpy().ravel().tolist() for b in ds]
        [[0, 2], [4, 6], [8]]
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(indices)
    if shard is not None:
        dataset = dataset.shard(*shard)
    parallel = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls
    plain = tf.autograph.experimental.do_not_convert
    dataset = dataset.map(plain(to_tensors), num_parallel_calls=parallel, deterministic=True)
    dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(dataset_options(shard is not None))
