"""The ``tf.data`` options every kerasseg pipeline sets."""

__all__ = ["dataset_options"]


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
