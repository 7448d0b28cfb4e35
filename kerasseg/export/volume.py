"""The ``serving_volume`` signature: a whole volume of raw intensities in, labels out.

A client of an exported volume model (2-D, 2.5-D or multi-view slice models trained on
volumes, and 3-D models) sends one volume and gets the class probabilities and the label
volume on the volume's own grid. The graph does what
:meth:`kerasseg.inference.Predictor.predict_case` does (without test-time flips), with the
same numbers:

1. normalization of the whole volume (statistics per channel over the volume), as
   :func:`kerasseg.data.prepare.prepare_case` (every method of
   :mod:`kerasseg.data.normalization` has its TensorFlow form);
2. with a target spacing, linear resampling to it: the new shape along each array axis is
   ``max(1, round(n * spacing / target))`` (``round`` half to even, in float64), and the
   interpolation is :func:`scipy.ndimage.zoom`'s ``order=1, mode="nearest",
   grid_mode=True``: output voxel ``k`` samples input coordinate
   ``(k + 0.5) * n_in / n_out - 0.5``, clamped to ``[0, n_in - 1]``, linearly (computed in
   float64, as SciPy does, and separably, which for linear weights is the same sum);
3. slice models: slices across each axis of the spec with ``context`` neighbours on each
   side as channels (indices clipped at the edges, channel-major), each slice padded
   (centred) to a multiple of the stride and at least to the canvas, or cut into
   overlapping tiles of the training patch blended with a Gaussian when it is larger;
   each shift of ``shift_offsets`` predicted on a zero border and moved back; the views'
   probabilities averaged. 3-D models: sliding windows of the training patch, overlap 0.5,
   Gaussian importance (sigma = patch / 8), axes shorter than the patch padded centred
   (:mod:`kerasseg.sliding_window`);
4. the probabilities resampled linearly back to the input's grid, and their argmax.

Slices and windows go through the model a batch at a time inside ``tf.while_loop``; the
arrays of the volume's size are the volume, the preprocessed volume, one view's slices'
probabilities and the accumulators.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import tensorflow as tf

from kerasseg.data.normalization import normalization_spec, normalize_tensor

VOLUME_SIGNATURE = "serving_volume"
VOLUME_INPUT = "volume"
SPACING_INPUT = "spacing"
SLICE_BATCH = 16  # slices per forward pass, as the Predictor's default batch size
WINDOW_BATCH = 2  # 3-D windows per forward pass, as Predictor.predict_volume
OVERLAP = 0.5  # tile and window overlap, the Predictor's default
SIGMA_SCALE = 1.0 / 8


@dataclass(frozen=True)
class VolumeRecipe:
    """How the exported graph turns a volume into a prediction (see the module docstring).

    Attributes:
        mode: ``"2d"``, ``"2.5d"`` or ``"3d"``.
        axes: slicing axes (slice models), ``(0,)`` for 3-D models.
        context: neighbours on each side stacked as channels.
        image_channels: the volume's channels (the model's channels over
            ``2 * context + 1``).
        model_channels: the model's input channels.
        num_classes: the model's output channels.
        activation: ``"logits"``, ``"softmax"`` or ``"sigmoid"`` (what the model's outputs
            are, as :class:`kerasseg.inference.Predictor` reads it).
        normalization: canonical normalization dict.
        target_spacing: the spec's target spacing in its ``(x, y[, z])`` order, ``None``
            entries keeping an axis, or ``None`` for no resampling.
        patch: the training patch: tile size of slice models (``None``: never tile),
            window of 3-D models.
        stride: the slice model's total stride (slices are padded to multiples of it).
        canvas: ``(height, width)`` slices are padded to at least (``(0, 0)``: none).
        shifts: ``(row, column)`` offsets whose predictions are averaged.
    """

    mode: str
    axes: Tuple[int, ...]
    context: int
    image_channels: int
    model_channels: int
    num_classes: int
    activation: str
    normalization: dict
    target_spacing: Optional[Tuple[Optional[float], ...]]
    patch: Optional[Tuple[int, ...]]
    stride: int = 1
    canvas: Tuple[int, int] = (0, 0)
    shifts: Tuple[Tuple[int, int], ...] = ((0, 0),)

    @property
    def volumetric(self):
        """Whether the model is 3-D (sliding window) rather than a slice model."""
        return self.mode == "3d"

    @property
    def output_classes(self):
        """Channels of the returned probabilities (2 for a one-channel model)."""
        return 2 if self.num_classes == 1 else self.num_classes


def volume_recipe(volume, info, normalization, model_shape):
    """Build the :class:`VolumeRecipe` of an export from its validated volume spec.

    Args:
        volume: the export's volume dict (``mode``, ``context``, ``slice_axis``,
            ``target_spacing``, ``patch_size``, optional ``shift_offsets``).
        info: the export's :class:`kerasseg.export.signatures.GraphInfo`.
        normalization: canonical normalization dict.
        model_shape: the Keras model's own input shape (``None`` for dynamic sizes).

    Returns:
        A :class:`VolumeRecipe`.

    Raises:
        ValueError: for a 3-D model without a patch size or with a fixed size other than
            it, a fixed-size slice model with shift offsets, or a target spacing that is
            not 2 or 3 entries.
    """
    spec = normalization_spec(normalization)
    mode = volume["mode"]
    context = int(volume["context"])
    target = volume.get("target_spacing")
    if target is not None:
        target = tuple(None if value is None else float(value) for value in target)
        if len(target) not in (2, 3):
            raise ValueError(
                "`volume['target_spacing']` must have 2 or 3 entries in (x, y[, z]) order. "
                f"Received: target_spacing={list(target)!r}")
    patch = volume.get("patch_size")
    patch = None if patch is None else tuple(int(n) for n in patch)
    spatial = tuple(model_shape[1:-1])
    if mode == "3d":
        if patch is None:
            if any(n is None for n in spatial):
                raise ValueError(
                    "The `serving_volume` signature of a 3-D model needs its training patch "
                    "(`volume['patch_size']`, the sliding window); this model's input size "
                    f"is not fixed ({tuple(model_shape)}).")
            patch = tuple(int(n) for n in spatial)
        canvas = (0, 0)
    else:
        canvas = tuple(info.canvas)
        if all(n is not None for n in spatial):
            # A fixed-size slice model only takes its own size: slices are padded to it
            # (centred, the canvas) and larger ones tiled at it.
            patch = tuple(int(n) for n in spatial)
            canvas = (max(canvas[0], patch[0]), max(canvas[1], patch[1]))
    # What the model outputs, as the Predictor names it: logits, or probabilities already.
    activation = info.activation if info.outputs_probabilities else "logits"
    shifts = tuple(tuple(int(v) for v in pair) for pair in volume.get("shift_offsets") or ())
    if mode == "3d" and all(n is not None for n in spatial) and tuple(spatial) != patch:
        raise ValueError(
            f"The 3-D model takes windows of {tuple(spatial)} voxels only; its sliding window "
            f"(`volume['patch_size']`) must be that size. Received: patch_size={list(patch)}")
    if mode != "3d" and all(n is not None for n in spatial) and any(v for s in shifts for v in s):
        raise ValueError(
            f"A fixed-size slice model ({tuple(spatial)}) cannot average shifted predictions "
            "(they need a zero border around each slice); export it from a model that takes "
            f"any size, or without `shift_offsets`. Received: shift_offsets={list(shifts)}")
    return VolumeRecipe(
        mode=mode,
        axes=tuple(int(axis) for axis in volume["slice_axis"]),
        context=context,
        image_channels=info.channels // (2 * context + 1),
        model_channels=info.channels,
        num_classes=info.num_classes,
        activation=activation,
        normalization=spec,
        target_spacing=target,
        patch=patch,
        stride=int(info.stride) if mode != "3d" else 1,
        canvas=(int(canvas[0]), int(canvas[1])),
        shifts=shifts or ((0, 0),),
    )


# ---------------------------------------------------------------- model that traces


def _dynamic_layer(layer):
    """A bilinear ``UpSampling2D`` replaced by a layer that resizes to ``tf.shape`` sizes.

    Keras' own layer checks the target size with a Python ``if``, which fails when the
    height and width are unknown while tracing; the replacement runs the same op
    (``tf.image.resize``, bilinear, half-pixel centres, no antialiasing).
    """
    import keras

    factor = tuple(int(v) for v in layer.size)

    class DynamicUpSampling2D(keras.layers.Layer):
        def call(self, x):
            shape = tf.shape(x)
            return tf.image.resize(x, [shape[1] * factor[0], shape[2] * factor[1]],
                                   method="bilinear")

        def compute_output_shape(self, input_shape):
            b, h, w, c = input_shape
            return (b, None if h is None else h * factor[0],
                    None if w is None else w * factor[1], c)

    return DynamicUpSampling2D(name=layer.name + "_dynamic", dtype=layer.dtype_policy)


def traceable_model(model, channels):
    """``model``, or a copy sharing its weights that traces with unknown height and width.

    Args:
        model: a Keras slice model ``(B, H, W, C) -> (B, H, W, K)``.
        channels: its input channels.

    Returns:
        A Keras model computing the same function.

    Raises:
        ValueError: if neither traces with unknown height and width.
    """
    import keras

    spec = tf.TensorSpec([None, None, None, channels], tf.float32)

    def traces(candidate):
        try:
            tf.function(lambda x: candidate(x, training=False),
                        autograph=False).get_concrete_function(spec)
        except TypeError:  # includes OperatorNotAllowedInGraphError
            return False
        return True

    if any(n is not None for n in model.inputs[0].shape[1:3]) or traces(model):
        return model

    def clone(layer):
        if (isinstance(layer, keras.layers.UpSampling2D)
                and layer.interpolation == "bilinear"
                and layer.data_format == "channels_last"):
            return _dynamic_layer(layer)
        return layer

    try:
        copy = keras.models.clone_model(model, clone_function=clone)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Model {model.name!r} cannot be traced with unknown slice sizes, which the "
            f"`serving_volume` signature needs ({type(error).__name__}: {error})") from error
    if not traces(copy):
        raise ValueError(
            f"Model {model.name!r} cannot be traced with unknown slice sizes, which the "
            "`serving_volume` signature needs (slices of any size are padded to the "
            "stride inside the graph).")
    return copy


# ------------------------------------------------------------------------- pieces


def _forward(model, recipe, x):
    """Class probabilities of a batch, as ``Predictor._forward`` (``model`` is the
    function of :func:`_model_function`)."""
    out = tf.cast(model(x), tf.float32)
    if recipe.num_classes == 1:
        p = tf.sigmoid(out) if recipe.activation == "logits" else out
        return tf.concat([1.0 - p, p], axis=-1)
    if recipe.activation != "logits":
        return out
    return tf.nn.softmax(out, axis=-1)


def _resample_axis(x, axis, size):
    """Linear resampling of ``x`` along ``axis`` to ``size`` voxels (SciPy's zoom with
    ``order=1, mode="nearest", grid_mode=True``), in ``x``'s dtype."""
    n = tf.shape(x)[axis]
    n_in = tf.cast(n, tf.float64)
    coordinate = ((tf.cast(tf.range(size), tf.float64) + 0.5) * (n_in / tf.cast(size, tf.float64))
                  - 0.5)
    coordinate = tf.clip_by_value(coordinate, 0.0, n_in - 1.0)
    low = tf.floor(coordinate)
    weight = tf.cast(coordinate - low, x.dtype)
    i0 = tf.cast(low, tf.int32)
    i1 = tf.minimum(i0 + 1, n - 1)
    shape = [1] * x.shape.rank
    shape[axis] = -1
    weight = tf.reshape(weight, shape)
    return tf.gather(x, i0, axis=axis) * (1.0 - weight) + tf.gather(x, i1, axis=axis) * weight


def resample_volume(x, shape):
    """Resample ``x`` ``(D, H, W, C)`` float32 linearly to the spatial ``shape`` (3 int32),
    as :func:`kerasseg.data.preprocess.resample_to_shape` with ``order=1``: float64 inside,
    float32 out, unchanged when the shape is."""
    def resample():
        y = tf.cast(x, tf.float64)
        for axis in range(3):
            y = _resample_axis(y, axis, shape[axis])
        return tf.cast(y, tf.float32)

    same = tf.reduce_all(tf.equal(tf.shape(x)[:3], shape))
    out = tf.cond(same, lambda: tf.identity(x), resample)
    out.set_shape([None, None, None, x.shape[-1]])
    return out


def target_shape(shape, spacing, target):
    """``max(1, round(n * s / t))`` per array axis (``(z, y, x)``), ``n`` where ``t`` is
    ``None``, as :func:`kerasseg.data.preprocess.resample`; ``spacing`` in ``target``'s
    ``(x, y[, z])`` order."""
    target_zyx = tuple(reversed(target))
    spacing_zyx = tf.reverse(tf.cast(spacing, tf.float64), [0])
    if len(target_zyx) == 2:
        target_zyx = (None,) + target_zyx
        spacing_zyx = tf.concat([tf.ones([1], tf.float64), spacing_zyx], 0)
    out = []
    for axis, t in enumerate(target_zyx):
        if t is None:
            out.append(shape[axis])
        else:
            n = tf.cast(shape[axis], tf.float64)
            out.append(tf.maximum(1, tf.cast(tf.round(n * spacing_zyx[axis] / t), tf.int32)))
    return tf.stack(out)


def normalize_volume(x, spec):
    """Normalize ``x`` ``(D, H, W, C)`` with statistics over the whole volume per channel,
    as :class:`kerasseg.data.preprocess.Normalizer` does."""
    shape = tf.shape(x)
    flat = tf.reshape(x, [-1, shape[2], shape[3]])  # (D * H, W, C): the same statistics
    return tf.reshape(normalize_tensor(flat, spec), shape)


def _round_up(value, multiple):
    return (value + multiple - 1) // multiple * multiple


def _gaussian_window(height, width):
    from kerasseg.inference import _gaussian_window as window

    return window(height, width)


def _tile_starts(size, tile, overlap=OVERLAP):
    """``kerasseg.inference._tile_starts`` for a dynamic ``size >= tile``."""
    step = max(1, int(tile * (1.0 - overlap)))
    starts = tf.range(0, size - tile + 1, step)
    last = size - tile
    return tf.cond(tf.equal(starts[-1], last), lambda: starts,
                   lambda: tf.concat([starts, [last]], 0))


def _window_starts(size, patch, overlap=OVERLAP):
    """:func:`kerasseg.sliding_window.window_starts` for a dynamic ``size``, in padded
    coordinates (``size`` already at least ``patch``)."""
    from kerasseg.sliding_window import _STEP_SLACK

    step = max(1, int(patch * (1.0 - overlap) + _STEP_SLACK))
    extra = size - patch
    count = (extra + step - 1) // step + 1
    spacing = tf.cast(extra, tf.float64) / tf.cast(tf.maximum(count - 1, 1), tf.float64)
    return tf.cast(tf.round(spacing * tf.cast(tf.range(count), tf.float64)), tf.int32)


# --------------------------------------------------------------------- slice models


def _scores(model, recipe, batch):
    """``Predictor._scores`` without flips: shift averaging on a zero border."""
    largest = max(abs(value) for pair in recipe.shifts for value in pair)
    margin = -(-largest // recipe.stride) * recipe.stride
    if margin:
        batch = tf.pad(batch, [[0, 0], [margin, margin], [margin, margin], [0, 0]])
    total = None
    for shift in recipe.shifts:
        moved = tf.roll(batch, list(shift), axis=[1, 2]) if any(shift) else batch
        scores = _forward(model, recipe, moved)
        if any(shift):
            scores = tf.roll(scores, [-shift[0], -shift[1]], axis=[1, 2])
        total = scores if total is None else total + scores
    total = total / float(len(recipe.shifts))
    if margin:
        total = total[:, margin:-margin, margin:-margin]
    return total


def _predict_padded(model, recipe, slices):
    shape = tf.shape(slices)
    height, width = shape[1], shape[2]
    ph = tf.maximum(_round_up(height, recipe.stride), recipe.canvas[0])
    pw = tf.maximum(_round_up(width, recipe.stride), recipe.canvas[1])
    top, left = (ph - height) // 2, (pw - width) // 2
    padded = tf.pad(slices, [[0, 0], [top, ph - height - top], [left, pw - width - left],
                             [0, 0]])
    return _scores(model, recipe, padded)[:, top:top + height, left:left + width]


def _predict_tiled(model, recipe, slices):
    """``Predictor._predict_tiled``: tiles of the patch, Gaussian blending."""
    tile_h, tile_w = recipe.patch
    shape = tf.shape(slices)
    n, height, width = shape[0], shape[1], shape[2]
    ph, pw = tf.maximum(height, tile_h), tf.maximum(width, tile_w)
    padded = tf.pad(slices, [[0, 0], [0, ph - height], [0, pw - width], [0, 0]])
    window = tf.constant(_gaussian_window(tile_h, tile_w)[None, :, :, None])
    rows, cols = _tile_starts(ph, tile_h), _tile_starts(pw, tile_w)
    count = tf.size(rows) * tf.size(cols)
    classes = recipe.output_classes

    def body(index, total, weight):
        top, left = rows[index // tf.size(cols)], cols[index % tf.size(cols)]
        tile = padded[:, top:top + tile_h, left:left + tile_w]
        tile = tf.ensure_shape(tile, [None, tile_h, tile_w, recipe.model_channels])
        scores = _scores(model, recipe, tile) * window
        placement = [[0, 0], [top, ph - top - tile_h], [left, pw - left - tile_w], [0, 0]]
        return index + 1, total + tf.pad(scores, placement), weight + tf.pad(window, placement)

    _, total, weight = tf.while_loop(
        lambda index, *_: index < count, body,
        (tf.constant(0), tf.zeros([n, ph, pw, classes]), tf.zeros([1, ph, pw, 1])),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None, None, classes]),
                          tf.TensorShape([1, None, None, 1])))
    return (total / weight)[:, :height, :width]


def _predict_slices(model, recipe, slices):
    """``Predictor.predict_slices``: padding to the stride/canvas, or tiling."""
    if recipe.patch is None:
        return _predict_padded(model, recipe, slices)
    shape = tf.shape(slices)
    small = tf.logical_and(shape[1] <= recipe.patch[0], shape[2] <= recipe.patch[1])
    out = tf.cond(small, lambda: _predict_padded(model, recipe, slices),
                  lambda: _predict_tiled(model, recipe, slices))
    out.set_shape([None, None, None, recipe.output_classes])
    return out


def _predict_view(model, recipe, image, axis):
    """Probabilities ``(D, H, W, K)`` of the slices across ``axis``, with context."""
    perm = [axis] + [i for i in range(3) if i != axis] + [3]
    inverse = [perm.index(i) for i in range(4)]
    volume = tf.transpose(image, perm)  # (n, h, w, C)
    n = tf.shape(volume)[0]
    offsets = tf.range(-recipe.context, recipe.context + 1)
    k = 2 * recipe.context + 1
    batches = (n + SLICE_BATCH - 1) // SLICE_BATCH
    classes = recipe.output_classes

    def body(index, outputs):
        first = index * SLICE_BATCH
        positions = tf.range(first, tf.minimum(first + SLICE_BATCH, n))
        indices = tf.clip_by_value(positions[:, None] + offsets[None, :], 0, n - 1)
        block = tf.gather(volume, indices)  # (b, k, h, w, C)
        block = tf.transpose(block, [0, 2, 3, 4, 1])  # (b, h, w, C, k): channel-major
        shape = tf.shape(block)
        slices = tf.reshape(block, [shape[0], shape[1], shape[2], recipe.image_channels * k])
        slices = tf.ensure_shape(slices, [None, None, None, recipe.model_channels])
        return index + 1, outputs.write(index, _predict_slices(model, recipe, slices))

    _, outputs = tf.while_loop(
        lambda index, _: index < batches, body,
        (tf.constant(0), tf.TensorArray(tf.float32, size=batches, infer_shape=False,
                                        element_shape=tf.TensorShape([None, None, None,
                                                                      classes]))))
    view = outputs.concat()
    view.set_shape([None, None, None, classes])
    return tf.transpose(view, inverse)


# ------------------------------------------------------------------------ 3-D models


def _predict_windows(model, recipe, image):
    """``sliding_window_predict`` without mirroring: Gaussian-blended windows."""
    from kerasseg.sliding_window import gaussian_importance

    patch = recipe.patch
    shape = tf.shape(image)[:3]
    padded_shape = tf.maximum(shape, patch)
    before = (padded_shape - shape) // 2
    padded = tf.pad(image, tf.concat([tf.stack([before, padded_shape - shape - before], 1),
                                      [[0, 0]]], 0))
    starts = [_window_starts(padded_shape[axis], patch[axis]) for axis in range(3)]
    counts = [tf.size(s) for s in starts]
    total = counts[0] * counts[1] * counts[2]
    importance = tf.constant(gaussian_importance(patch, SIGMA_SCALE))
    classes = recipe.output_classes
    grid = tf.stack(tf.meshgrid(*[tf.range(n) for n in patch], indexing="ij"), -1)

    def corner(index):
        index = tf.minimum(index, total - 1)
        z = index // (counts[1] * counts[2])
        y = index // counts[2] % counts[1]
        x = index % counts[2]
        return tf.stack([starts[0][z], starts[1][y], starts[2][x]])

    def body(index, scores, weights):
        corners = [corner(index + j) for j in range(WINDOW_BATCH)]
        batch = tf.stack([tf.slice(padded, tf.concat([c, [0]], 0),
                                   list(patch) + [recipe.model_channels]) for c in corners])
        probabilities = _forward(model, recipe, batch)
        for j, c in enumerate(corners):
            valid = index + j < total

            def add(scores=scores, weights=weights, c=c, j=j):
                at = grid + c
                return (tf.tensor_scatter_nd_add(scores, at,
                                                 probabilities[j] * importance[..., None]),
                        tf.tensor_scatter_nd_add(weights, at, importance))

            scores, weights = tf.cond(valid, add, lambda s=scores, w=weights: (s, w))
        return index + WINDOW_BATCH, scores, weights

    _, scores, weights = tf.while_loop(
        lambda index, *_: index < total, body,
        (tf.constant(0), tf.zeros(tf.concat([padded_shape, [classes]], 0)),
         tf.zeros(padded_shape)),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None, None, classes]),
                          tf.TensorShape([None, None, None])))
    scores = scores / weights[..., None]
    return scores[before[0]:before[0] + shape[0], before[1]:before[1] + shape[1],
                  before[2]:before[2] + shape[2]]


# ---------------------------------------------------------------------- signature


def volume_signature_specs(recipe):
    """The ``TensorSpec`` inputs of ``serving_volume``: the volume (any rank-3 or rank-4
    shape) and, with a target spacing, the voxel spacing."""
    specs = [tf.TensorSpec(None, tf.float32, name=VOLUME_INPUT)]
    if recipe.target_spacing is not None:
        specs.append(tf.TensorSpec([len(recipe.target_spacing)], tf.float32,
                                   name=SPACING_INPUT))
    return specs


def _checked_volume(volume, recipe):
    """The volume as ``(D, H, W, C)`` float32, after run-time checks of its shape and
    values (TF Serving does not check inputs against the signature)."""
    channels = recipe.image_channels
    rank = tf.rank(volume)
    shape = tf.shape(volume)
    ok_rank = tf.logical_or(
        tf.logical_and(tf.equal(rank, 3), channels == 1),
        tf.logical_and(tf.equal(rank, 4), tf.equal(shape[-1], channels)))
    form = "(D, H, W) or (D, H, W, 1)" if channels == 1 else f"(D, H, W, {channels})"
    checks = [
        tf.debugging.Assert(
            ok_rank, [f"`volume` must be float32 {form} intensities; received shape",
                      shape], name="volume_shape"),
        tf.debugging.Assert(
            tf.logical_and(tf.reduce_all(shape > 0), rank > 0),
            ["`volume` must not be empty; received shape", shape], name="volume_not_empty"),
    ]
    with tf.control_dependencies(checks):
        shape = tf.identity(shape)
    x = tf.reshape(volume, tf.concat([shape[:3], [channels]], 0))
    finite = tf.debugging.Assert(
        tf.reduce_all(tf.math.is_finite(x)),
        ["`volume` holds NaN or infinite values"], name="volume_finite")
    with tf.control_dependencies([finite]):
        x = tf.identity(x)
    x.set_shape([None, None, None, channels])
    return x


def _checked_spacing(spacing, recipe):
    spacing = tf.ensure_shape(spacing, [len(recipe.target_spacing)],
                              name="spacing_must_be_float32_x_y_z")
    check = tf.debugging.Assert(
        tf.reduce_all(tf.logical_and(tf.math.is_finite(spacing), spacing > 0)),
        ["`spacing` must hold positive voxel sizes in (x, y, z) order; received", spacing],
        name="spacing_positive")
    with tf.control_dependencies([check]):
        return tf.identity(spacing)


def _model_function(model, recipe):
    """The model's forward pass as one ``tf.function``: every place the graph runs the
    model (views, tiles, shifts) calls this one function instead of holding a copy."""
    if recipe.volumetric:
        shape = [None, *recipe.patch, recipe.model_channels]
    else:
        shape = [None, None, None, recipe.model_channels]
    return tf.function(lambda x: model(x, training=False),
                       input_signature=[tf.TensorSpec(shape, tf.float32)])


def make_volume_fn(model, recipe):
    """Return the body of ``serving_volume``: ``(volume[, spacing])`` -> probabilities
    ``(D, H, W, K)`` and ``label`` ``(D, H, W)`` int32 on the volume's grid.

    Args:
        model: the Keras model (a slice model that traces with unknown sizes, see
            :func:`traceable_model`, or a 3-D model).
        recipe: its :class:`VolumeRecipe`.

    Returns:
        A function of one argument (the volume) or two (volume and spacing), as
        :func:`volume_signature_specs` lists them.
    """

    model = _model_function(model, recipe)

    def predict(volume, spacing=None):
        x = _checked_volume(volume, recipe)
        original = tf.shape(x)[:3]
        x = normalize_volume(x, recipe.normalization)
        if recipe.target_spacing is not None:
            grid = target_shape(original, _checked_spacing(spacing, recipe),
                                recipe.target_spacing)
            x = resample_volume(x, grid)
        if recipe.volumetric:
            scores = _predict_windows(model, recipe, x)
        else:
            scores = None
            for axis in recipe.axes:
                view = _predict_view(model, recipe, x, axis)
                scores = view if scores is None else scores + view
            if len(recipe.axes) > 1:
                scores = scores / float(len(recipe.axes))
        scores.set_shape([None, None, None, recipe.output_classes])
        if recipe.target_spacing is not None:
            scores = resample_volume(scores, original)
        label = tf.argmax(scores, axis=-1, output_type=tf.int32)
        return {"probabilities": scores, "label": label}

    if recipe.target_spacing is None:
        return lambda volume: predict(volume)
    return predict


def trace_volume_fn(model, recipe):
    """The concrete function of ``serving_volume`` for ``model`` (a slice model is first
    made traceable with unknown sizes, :func:`traceable_model`)."""
    if not recipe.volumetric:
        model = traceable_model(model, recipe.model_channels)
    return tf.function(make_volume_fn(model, recipe),
                       input_signature=volume_signature_specs(recipe)).get_concrete_function()


def volume_signature_table(recipe):
    """The metadata entry of ``serving_volume`` (dtypes and shapes, ``-1`` unknown)."""
    inputs = {VOLUME_INPUT: {"dtype": "float32", "shape": [-1, -1, -1, recipe.image_channels]}}
    if recipe.target_spacing is not None:
        inputs[SPACING_INPUT] = {"dtype": "float32", "shape": [len(recipe.target_spacing)]}
    return {
        "inputs": inputs,
        "outputs": {
            "probabilities": {"dtype": "float32", "shape": [-1, -1, -1, recipe.output_classes]},
            "label": {"dtype": "int32", "shape": [-1, -1, -1]},
        },
    }


__all__ = ["VOLUME_SIGNATURE", "VOLUME_INPUT", "SPACING_INPUT", "VolumeRecipe", "volume_recipe",
           "make_volume_fn", "trace_volume_fn", "traceable_model", "volume_signature_specs",
           "volume_signature_table"]
