"""``tf.data`` pipelines for training and evaluation.

* :func:`make_dataset` samples 2-D slices or patches per epoch from a
  :class:`~kerasseg.data.cache.CaseStore` (built from the source unless one is given), with
  foreground oversampling and augmentation. Fixed seeds give the same sequence.
* :func:`make_eval_dataset` yields every slice of every volume, in order, unaugmented.

With a ``"3d"`` spec both yield 3-D patches instead (:mod:`kerasseg.data.volume_pipeline`):
foreground-oversampled patches augmented in the graph, and tiles covering every case.

The spec that decides what a model sees is in :mod:`kerasseg.data.spec`, the preparation
of one case in :mod:`kerasseg.data.prepare`, the store of prepared cases in
:mod:`kerasseg.data.cache`.
"""

import numpy as np

from kerasseg.data.augment import AUGMENT_BACKENDS, AlbumentationsAugmenter, get_augmentation, tf_augment
from kerasseg.data.cache import CaseStore
from kerasseg.data.preprocess import _window, crop_or_pad, extract_slice, sample_patch_start
from kerasseg.data.tfdata import indexed_batches, sampled_batches
from kerasseg.data.spec import check_spec, make_preprocessing_spec, patch_dims, patch_shape

__all__ = ["make_dataset", "make_eval_dataset"]


def _check_shard(shard):
    if shard is None:
        return None
    try:
        num, index = (int(v) for v in shard)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`shard` must be a pair (num_shards, index). Received: shard={shard!r}") from error
    if num < 1 or not 0 <= index < num:
        raise ValueError(f"`shard` must satisfy num_shards >= 1 and 0 <= index < num_shards. Received: shard={shard!r}")
    return num, index


def _window_slice(volume, z, starts, size, context):
    image = extract_slice(volume.image, z, axis=0, context=context)
    return _window(image, starts, size, 0.0), _window(volume.label[z], starts, size, 0)


def _store(source, spec, cache, num_classes):
    """The source's prepared cases: the given CaseStore (checked against the spec) or a new one."""
    if isinstance(source, CaseStore):
        if not source.serves(spec):
            raise ValueError(
                "`source` is a CaseStore prepared by another spec than the one given; build "
                f"the store with the same spec. Store: {source.spec}; spec: {spec}")
        source.check(num_classes if num_classes is not None else source.num_classes,
                     spec["patch_size"])
        return source
    return CaseStore(source, spec, cache, True, num_classes, spec["patch_size"])


def _resolve(spec, mode, context, normalization, target_spacing, slice_axis, patch_size):
    if spec is None:
        return make_preprocessing_spec(mode, context, normalization, target_spacing, slice_axis, patch_size)
    spec = dict(check_spec(spec))
    if patch_size is not None:
        spec["patch_size"] = patch_shape(patch_size, patch_dims(spec["mode"]))
    return spec


def make_dataset(
    source,
    *,
    patch_size=None,
    batch_size=8,
    mode="2d",
    context=None,
    normalization="zscore",
    target_spacing=None,
    slice_axis=0,
    augment="default",
    augment_backend="albumentations",
    foreground_prob=0.33,
    cache="memory",
    shuffle=True,
    repeat=True,
    samples_per_epoch=None,
    seed=0,
    num_parallel_calls=None,
    shard=None,
    num_classes=None,
    drop_remainder=True,
    spec=None,
):
    """Build the training ``tf.data.Dataset`` of 2-D (or 2.5-D) slices or patches, or 3-D patches.

    Every case is loaded, preprocessed (normalized, resampled) and checked once, up front,
    in a thread pool; then each sample picks a case, a slice and a patch (centred on a
    random voxel of a random foreground class with probability ``foreground_prob``),
    augments it and batches. Sampling randomness comes from ``seed``: the same seed gives
    the same sequence of batches, whatever ``num_parallel_calls`` is.

    Args:
        source: a CaseDataset (:func:`kerasseg.data.load_dataset`), a list of its cases,
            a list of :class:`~kerasseg.data.types.CaseData`, or a
            :class:`~kerasseg.data.cache.CaseStore` already prepared by the same spec
            (then ``cache`` is not used).
        patch_size: ``(h, w)`` or int: slices are cropped/padded to it (needed when
            cases differ in slice shape). ``None`` uses whole slices. In mode ``"3d"``:
            ``(d, h, w)``, the 3-D patch.
        batch_size: examples per batch.
        mode: ``"2d"``, ``"2.5d"`` or ``"3d"`` (3-D patches: see
            :func:`kerasseg.data.volume_pipeline.make_patch_dataset`; ``augment`` then
            names a 3-D preset or dict of :mod:`kerasseg.data.augment3d`, applied in the
            graph whatever ``augment_backend`` says).
        context: neighbouring slices on each side as channels in ``"2.5d"`` (default 1).
        normalization: see :class:`~kerasseg.data.preprocess.Normalizer`.
        target_spacing: resampling target in ``(x, y[, z])`` order, ``None`` entries
            keeping an axis; ``None``: no resampling.
        slice_axis: axis of ``(D, H, W)`` to slice along, or several (multi-view: each
            sample comes from a case and view drawn uniformly).
        augment: one of ``"none"``, ``"light"``, ``"default"``, ``"strong"``, or a dict
            (see :func:`kerasseg.data.augment.get_augmentation`).
        augment_backend: ``"albumentations"`` (NumPy, per example) or ``"tf"`` (in-graph
            TF ops, per batch, faster); both apply every transform, elastic included.
        foreground_prob: fraction of samples centred on a foreground voxel.
        cache: ``"memory"`` (default), a folder path (preprocessed arrays stored as
            ``.npy`` and memory-mapped; reused across runs), or ``None`` (re-read and
            preprocess a case for each sample: slow, minimal memory).
        shuffle: pick the case of each sample at random; ``False`` cycles through cases.
        repeat: ``True`` for an endless dataset (pass ``steps_per_epoch`` to ``fit``);
            ``False`` for ``samples_per_epoch`` samples per iteration, each iteration
            drawing new (still seed-determined) samples.
        samples_per_epoch: samples per iteration when ``repeat=False``; default: the
            total number of slices.
        seed: seed of all sampling and augmentation.
        num_parallel_calls: parallelism of sampling/augmentation (default AUTOTUNE).
        shard: ``(num_shards, index)`` to give each worker a disjoint part of the sample
            stream; when ``None``, ``tf.distribute`` shards by data
            (``AutoShardPolicy.DATA``).
        num_classes: check labels against ``[0, num_classes)``; inferred if ``None``.
        drop_remainder: drop a last incomplete batch (fixed batch dimension).
        spec: a stored preprocessing spec; when given it replaces ``mode``, ``context``,
            ``normalization``, ``target_spacing`` and ``slice_axis``.

    Returns:
        ``tf.data.Dataset`` of ``(image float32 (B, h, w, C'), label int32 (B, h, w))``
        with ``C' = C * (2 * context + 1)``.

    Raises:
        DataError: for a case that cannot be read or holds invalid values (named).
        ValueError: for invalid arguments, or differing slice shapes without ``patch_size``.

    Example:
        >>> ds = make_dataset(load_dataset("msd_hippocampus"), patch_size=64, batch_size=8,
        ...                   mode="2.5d", augment="default")  # doctest: +SKIP
        >>> images, labels = next(iter(ds))  # doctest: +SKIP
    """
    import tensorflow as tf

    spec = _resolve(spec, mode, context, normalization, target_spacing, slice_axis, patch_size)
    volumetric = spec["mode"] == "3d"
    if not volumetric:
        params = get_augmentation(augment)
        if augment_backend not in AUGMENT_BACKENDS:
            raise ValueError(
                f"`augment_backend` must be one of {list(AUGMENT_BACKENDS)}. Received: augment_backend={augment_backend!r}"
            )
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    if not 0.0 <= foreground_prob <= 1.0:
        raise ValueError(f"`foreground_prob` must be in [0, 1]. Received: foreground_prob={foreground_prob}")
    shard = _check_shard(shard)
    store = _store(source, spec, cache, num_classes)
    if volumetric:
        from kerasseg.data.volume_pipeline import make_patch_dataset

        return make_patch_dataset(
            store, spec, batch_size=batch_size, augment=augment, foreground_prob=foreground_prob,
            shuffle=shuffle, repeat=repeat, samples_per_epoch=samples_per_epoch, seed=seed,
            num_parallel_calls=num_parallel_calls, shard=shard, drop_remainder=drop_remainder)
    context = spec["context"]
    if spec["patch_size"] is not None:
        height, width = spec["patch_size"]
    else:
        height, width = store.slice_shape
    channels = store.channels * (2 * context + 1)
    total_slices = sum(s[0] for s in store.shapes)
    if samples_per_epoch is None:
        samples_per_epoch = total_slices
    if not isinstance(samples_per_epoch, (int, np.integer)) or samples_per_epoch < 1:
        raise ValueError(f"`samples_per_epoch` must be a positive integer. Received: samples_per_epoch={samples_per_epoch!r}")
    if not repeat and drop_remainder:
        per_shard = -(-samples_per_epoch // shard[0]) if shard is not None else samples_per_epoch
        if per_shard < batch_size:
            raise ValueError(
                f"`samples_per_epoch` ({samples_per_epoch}{' over ' + str(shard[0]) + ' shards' if shard else ''}) "
                f"must give at least one full batch of batch_size={batch_size} when repeat=False and "
                "drop_remainder=True; pass a larger samples_per_epoch or drop_remainder=False."
            )
    augmenter = AlbumentationsAugmenter(params) if augment_backend == "albumentations" else None
    any_augment = any(v > 0 for k, v in params.items() if k.endswith("_prob"))
    n_cases = len(store)

    def sample(index, random_value):
        rng = np.random.default_rng([int(seed) % (2**63), int(random_value) % (2**63)])
        case_index = int(rng.integers(n_cases)) if shuffle else int(index) % n_cases
        volume = store.get(case_index)
        size = (1, height, width)
        start, _ = sample_patch_start(volume.label.shape, size, rng, foreground_prob, volume.locations)
        image, label = _window_slice(volume, start[0], start[1:], size[1:], context)
        aug_seed = rng.integers(0, 2**62, size=2, dtype=np.int64)
        if augmenter is not None and any_augment:
            image, label = augmenter(image, label, int(aug_seed[0]))
        return image.astype(np.float32, copy=False), label.astype(np.int32, copy=False), aug_seed

    def to_tensors(index, random_value):
        image, label, aug_seed = tf.numpy_function(
            sample, [index, random_value], [tf.float32, tf.int32, tf.int64], stateful=False
        )
        image.set_shape((height, width, channels))
        label.set_shape((height, width))
        aug_seed.set_shape((2,))
        return image, label, aug_seed

    augment_fn = (lambda x, y, s: tf_augment(x, y, s[0], params)) \
        if augment_backend == "tf" and any_augment else None
    return sampled_batches(to_tensors, augment_fn, batch_size=batch_size, repeat=repeat,
                           samples_per_epoch=samples_per_epoch, seed=seed, shard=shard,
                           num_parallel_calls=num_parallel_calls, drop_remainder=drop_remainder)


def make_eval_dataset(
    source,
    *,
    patch_size=None,
    batch_size=8,
    mode="2d",
    context=None,
    normalization="zscore",
    target_spacing=None,
    slice_axis=0,
    cache="memory",
    num_parallel_calls=None,
    shard=None,
    num_classes=None,
    return_index=False,
    spec=None,
):
    """Build the deterministic evaluation dataset: every slice of every case, in order.

    No augmentation, no shuffling, no foreground sampling. Each slice is centre-cropped or
    padded to ``patch_size`` when given (otherwise all slices must share one shape).

    Args:
        source: a CaseDataset, a list of cases, a list of ``CaseData`` or a
            :class:`~kerasseg.data.cache.CaseStore` prepared by the same spec.
        patch_size: ``(h, w)``/int to centre-crop or pad slices to, or ``None``.
        batch_size: slices per batch (the last batch may be smaller).
        mode, context, normalization, target_spacing, slice_axis, spec: as in
            :func:`make_dataset`.
        cache: as in :func:`make_dataset`.
        num_parallel_calls: parallelism of slice extraction (default AUTOTUNE).
        shard: ``(num_shards, index)``: this worker's disjoint share of the slices.
        num_classes: check labels against ``[0, num_classes)``; inferred if ``None``.
        return_index: also yield an int32 ``(B, 2)`` tensor of ``(case_index, slice_index)``
            (with a multi-view spec, the first entry counts views: case * views + view).
            In mode ``"3d"`` the dataset yields patch-sized tiles covering every case
            (:func:`kerasseg.data.volume_pipeline.make_tile_dataset`) and the index is
            ``(case, z, y, x)``.

    Returns:
        ``tf.data.Dataset`` of ``(image, label)`` or ``(image, label, index)`` batches.

    Raises:
        DataError: for a case that cannot be read or holds invalid values (named).
        ValueError: for invalid arguments, or differing slice shapes without ``patch_size``.

    Example:
        >>> ds = make_eval_dataset(load_dataset("msd_hippocampus"), patch_size=64)  # doctest: +SKIP
    """
    import tensorflow as tf

    spec = _resolve(spec, mode, context, normalization, target_spacing, slice_axis, patch_size)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    shard = _check_shard(shard)
    store = _store(source, spec, cache, num_classes)
    if spec["mode"] == "3d":
        from kerasseg.data.volume_pipeline import make_tile_dataset

        return make_tile_dataset(store, spec, batch_size=batch_size,
                                 num_parallel_calls=num_parallel_calls, shard=shard,
                                 return_index=return_index)
    context = spec["context"]
    height, width = spec["patch_size"] if spec["patch_size"] is not None else store.slice_shape
    channels = store.channels * (2 * context + 1)
    pairs = np.array([(c, z) for c, shape in enumerate(store.shapes) for z in range(shape[0])], dtype=np.int32)

    def extract(pair):
        case_index, z = int(pair[0]), int(pair[1])
        volume = store.get(case_index)
        image = extract_slice(volume.image, z, axis=0, context=context)
        image = crop_or_pad(image, (height, width), mode="center", pad_value=0.0)[0]
        label = crop_or_pad(volume.label[z], (height, width), mode="center", pad_value=0)[0]
        return image.astype(np.float32, copy=False), label.astype(np.int32, copy=False)

    def to_tensors(pair):
        image, label = tf.numpy_function(extract, [pair], [tf.float32, tf.int32], stateful=False)
        image.set_shape((height, width, channels))
        label.set_shape((height, width))
        return (image, label, pair) if return_index else (image, label)

    return indexed_batches(pairs, to_tensors, batch_size=batch_size, shard=shard,
                           num_parallel_calls=num_parallel_calls)
