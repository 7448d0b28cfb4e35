"""``tf.data`` pipelines of 3-D patches, for the 3-D families (spec mode ``"3d"``).

* :func:`make_patch_dataset` samples 3-D patches from a
  :class:`~kerasseg.data.cache.CaseStore` (prepared once: resampled to the target spacing,
  normalized, cached in memory or on disk), with nnU-Net's foreground oversampling: a
  third of the patches (``foreground_prob``) are centred on a voxel of a foreground class
  drawn uniformly, the rest placed uniformly. Batches are augmented in the graph by
  :func:`kerasseg.data.augment3d.tf_augment_3d`. Fixed seeds give the same sequence.
* :func:`make_tile_dataset` cuts every case into patch-sized tiles that cover it (the last
  tile of an axis ends at the volume's end; a volume smaller than the patch is centred and
  zero-padded), in order and unaugmented: what validation during training scores.

:func:`kerasseg.data.pipeline.make_dataset` and
:func:`~kerasseg.data.pipeline.make_eval_dataset` call these for a ``"3d"`` spec, so a
caller passes a spec and never picks the pipeline itself.
"""

import numpy as np

from kerasseg.data.augment3d import get_augmentation_3d, tf_augment_3d
from kerasseg.data.tfdata import indexed_batches, sampled_batches
from kerasseg.data.preprocess import _window, sample_patch_start

__all__ = ["make_patch_dataset", "make_tile_dataset", "tile_starts"]


def tile_starts(size, patch):
    """Start indices of the tiles that cover an axis of ``size`` voxels with ``patch``-long tiles.

    Tiles are laid end to end from 0; the last one is moved back to end at ``size`` (it
    overlaps its neighbour rather than reaching past the volume). An axis no longer than the
    patch has one tile, centred: its start is negative (zero padding on both sides).

    Args:
        size: the axis length (voxels).
        patch: the tile length.

    Returns:
        A list of ints.

    Raises:
        ValueError: if ``size`` or ``patch`` is not a positive int.

    Example:
        >>> tile_starts(10, 4), tile_starts(8, 4), tile_starts(3, 4), tile_starts(2, 5)
        ([0, 4, 6], [0, 4], [0], [-1])
    """
    for name, value in (("size", size), ("patch", patch)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    size, patch = int(size), int(patch)
    if size <= patch:
        return [-((patch - size) // 2)]
    starts = list(range(0, size - patch, patch))
    return starts + [size - patch]


def _check(store, spec):
    if spec["mode"] != "3d":
        raise ValueError(f"3-D patches need a spec with mode '3d'. Received: mode={spec['mode']!r}")
    patch = spec["patch_size"]
    if patch is None:
        shapes = sorted({tuple(s) for s in store.shapes})
        if len(shapes) > 1:
            raise ValueError(
                "`patch_size` must be given in mode '3d' when cases have different volume "
                f"shapes (found {shapes[:5]}); e.g. patch_size=(64, 64, 64).")
        patch = list(shapes[0])
    return [int(p) for p in patch]


def make_patch_dataset(store, spec, *, batch_size=2, augment="default", foreground_prob=0.33,
                       shuffle=True, repeat=True, samples_per_epoch=None, seed=0,
                       num_parallel_calls=None, shard=None, drop_remainder=True):
    """Build the training dataset of 3-D patches from a prepared store.

    Args:
        store: a :class:`~kerasseg.data.cache.CaseStore` prepared by ``spec`` (mode ``"3d"``).
        spec: the preprocessing spec; its ``patch_size`` ``(d, h, w)`` is the patch (``None``:
            whole volumes, which must then share one shape).
        batch_size: patches per batch.
        augment: a preset of :data:`kerasseg.data.augment3d.PRESETS_3D` or a dict
            (:func:`kerasseg.data.augment3d.get_augmentation_3d`).
        foreground_prob: fraction of patches centred on a foreground voxel.
        shuffle: pick each patch's case at random; ``False`` cycles through the cases.
        repeat: an endless dataset (``True``) or ``samples_per_epoch`` patches per pass.
        samples_per_epoch: patches per pass when ``repeat=False`` (default: the cases).
        seed: seed of all sampling and augmentation.
        num_parallel_calls: parallelism of patch extraction (default AUTOTUNE).
        shard: ``(num_shards, index)`` already checked, or ``None``.
        drop_remainder: drop a last incomplete batch.

    Returns:
        ``tf.data.Dataset`` of ``(image float32 (B, d, h, w, C), label int32 (B, d, h, w))``.

    Raises:
        ValueError: for a spec that is not ``"3d"``, differing volume shapes without a patch,
            or invalid augmentation parameters.

    Example:
        >>> ds = make_patch_dataset(store, spec, batch_size=2)  # doctest: +SKIP
        >>> images, labels = next(iter(ds))  # doctest: +SKIP
    """
    import tensorflow as tf

    patch = _check(store, spec)
    params = get_augmentation_3d(augment)
    any_augment = any(v > 0 for k, v in params.items() if k.endswith("_prob"))
    channels = store.channels
    n_cases = len(store)
    if samples_per_epoch is None:
        samples_per_epoch = n_cases
    if (isinstance(samples_per_epoch, bool) or not isinstance(samples_per_epoch, (int, np.integer))
            or samples_per_epoch < 1):
        raise ValueError("`samples_per_epoch` must be a positive integer. "
                         f"Received: samples_per_epoch={samples_per_epoch!r}")

    def sample(index, random_value):
        rng = np.random.default_rng([int(seed) % (2**63), int(random_value) % (2**63)])
        case_index = int(rng.integers(n_cases)) if shuffle else int(index) % n_cases
        volume = store.get(case_index)
        start, _ = sample_patch_start(volume.label.shape, patch, rng, foreground_prob,
                                      volume.locations)
        image = _window(volume.image, start, patch, 0.0)
        label = _window(volume.label, start, patch, 0)
        aug_seed = rng.integers(0, 2**62, size=2, dtype=np.int64)
        return (image.astype(np.float32, copy=False), label.astype(np.int32, copy=False),
                aug_seed)

    def to_tensors(index, random_value):
        image, label, aug_seed = tf.numpy_function(
            sample, [index, random_value], [tf.float32, tf.int32, tf.int64], stateful=False)
        image.set_shape((*patch, channels))
        label.set_shape(tuple(patch))
        aug_seed.set_shape((2,))
        return image, label, aug_seed

    augment_fn = (lambda x, y, s: tf_augment_3d(x, y, s[0], params)) if any_augment else None
    return sampled_batches(to_tensors, augment_fn, batch_size=batch_size, repeat=repeat,
                           samples_per_epoch=samples_per_epoch, seed=seed, shard=shard,
                           num_parallel_calls=num_parallel_calls, drop_remainder=drop_remainder)


def make_tile_dataset(store, spec, *, batch_size=2, num_parallel_calls=None, shard=None,
                      return_index=False):
    """Build the evaluation dataset of 3-D tiles that cover every case, in order.

    Args:
        store: a :class:`~kerasseg.data.cache.CaseStore` prepared by ``spec`` (mode ``"3d"``).
        spec: the preprocessing spec; its ``patch_size`` is the tile.
        batch_size: tiles per batch (the last batch may be smaller).
        num_parallel_calls: parallelism of tile extraction (default AUTOTUNE).
        shard: ``(num_shards, index)`` already checked, or ``None``.
        return_index: also yield an int32 ``(B, 4)`` tensor of ``(case, z, y, x)``: the
            case index and the tile's first voxel (negative: padding).

    Returns:
        ``tf.data.Dataset`` of ``(image, label)`` or ``(image, label, index)`` batches.

    Raises:
        ValueError: for a spec that is not ``"3d"``, or differing shapes without a patch.

    Example:
        >>> ds = make_tile_dataset(store, spec, batch_size=2)  # doctest: +SKIP
    """
    import tensorflow as tf

    patch = _check(store, spec)
    channels = store.channels
    tiles = np.array([(c, z, y, x) for c, shape in enumerate(store.shapes)
                      for z in tile_starts(shape[0], patch[0])
                      for y in tile_starts(shape[1], patch[1])
                      for x in tile_starts(shape[2], patch[2])], dtype=np.int32)

    def extract(tile):
        volume = store.get(int(tile[0]))
        start = [int(v) for v in tile[1:]]
        image = _window(volume.image, start, patch, 0.0)
        label = _window(volume.label, start, patch, 0)
        return image.astype(np.float32, copy=False), label.astype(np.int32, copy=False)

    def to_tensors(tile):
        image, label = tf.numpy_function(extract, [tile], [tf.float32, tf.int32], stateful=False)
        image.set_shape((*patch, channels))
        label.set_shape(tuple(patch))
        return (image, label, tile) if return_index else (image, label)

    return indexed_batches(tiles, to_tensors, batch_size=batch_size, shard=shard,
                           num_parallel_calls=num_parallel_calls)
