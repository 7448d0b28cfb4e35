"""3-D U-Net (Çiçek et al., MICCAI 2016) for volumes, with nnU-Net's configuration options.

The input is a volume ``(depth, height, width, channels)``. The encoder has ``depth``
levels of two convolutions (normalization and activation after each) followed by max
pooling, a bottleneck of two convolutions, and a decoder that upsamples with a transposed
convolution, concatenates the encoder features of the same level and applies two
convolutions; a 1x1x1 convolution gives the class scores. Padding is "same", so the output
has the input's size.

Widths double per level from ``base_filters`` and stop at ``max_filters`` (320, as in
nnU-Net (Isensee et al., Nature Methods 2021)): ``depth=4, base_filters=32`` gives 32, 64,
128, 256 and 320 filters. Both convolutions of a level have the level's width (nnU-Net;
the original 3-D U-Net halves the first one).

Anisotropic data (thick slices) takes per-level sizes, nnU-Net style: ``pool_sizes`` has
one entry per encoder level (the pooling after it, also the factor by which the decoder
upsamples back to it) and ``kernel_sizes`` one per level plus the bottleneck; an entry is
an int for every axis or a ``(depth, height, width)`` tuple. With
``pool_sizes=[(1, 2, 2), (2, 2, 2)]`` the first level pools in-plane only, so the stride is
``(2, 4, 4)``: depth must be a multiple of 2 and height and width of 4.

Deep supervision (``deep_supervision``) adds outputs at lower decoder resolutions; the model
then returns a list ``[full, level 1, level 2, ...]`` from fine to coarse, where level ``l``
has the size of the input divided by the product of the first ``l`` pool sizes on each
axis. The first output is the one a model without deep supervision has (the same layers,
``head_*``); the others are 1x1x1 classifiers named ``ds{l}_*`` with the same output
activation.
"""

import keras
from keras import layers

from kerasseg.models.blocks import (
    ACTIVATIONS,
    NORMALIZATIONS,
    check_axis_sizes,
    check_choice,
    check_positive_int,
    check_spatial_sizes,
    conv_block,
    conv_layer,
    segmentation_head,
)
from kerasseg.models.registry import register_model

MAX_DEPTH = 6


def _per_level(name, value, count, default):
    """``value`` as ``count`` 3-tuples, or ``count`` copies of ``default`` for ``None``."""
    if value is None:
        return [(default,) * 3] * count
    if not isinstance(value, (tuple, list)) or len(value) != count:
        raise ValueError(
            f"`{name}` must be None or a list of {count} entries (each an int or a tuple of "
            f"3 ints). Received: {name}={value!r}")
    try:
        return [check_axis_sizes(name, entry) for entry in value]
    except ValueError:
        raise ValueError(
            f"`{name}` entries must be positive ints or tuples of 3 positive ints. "
            f"Received: {name}={value!r}") from None


def _stride(depth, pool_sizes, **_):
    """The stride per axis: the product of the pool sizes (for ``register_model``)."""
    if not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise ValueError(
            f"`depth` must be an int in [1, {MAX_DEPTH}]. Received: depth={depth!r}")
    stride = [1, 1, 1]
    for pool in _per_level("pool_sizes", pool_sizes, depth, 2):
        stride = [s * p for s, p in zip(stride, pool)]
    return tuple(stride)


def level_filters(depth, base_filters, max_filters):
    """Return the widths of the encoder levels and the bottleneck.

    Args:
        depth: the number of pooling steps.
        base_filters: the width of the first level.
        max_filters: the largest width, or ``None`` for no cap.

    Returns:
        A list of ``depth + 1`` ints: ``base_filters * 2**level``, capped at ``max_filters``.

    Example:
        >>> level_filters(5, 32, 320)
        [32, 64, 128, 256, 320, 320]
    """
    widths = [base_filters * 2**level for level in range(depth + 1)]
    return widths if max_filters is None else [min(w, max_filters) for w in widths]


def _double_conv(x, filters, name, kernel_size, normalization, activation):
    for index in (1, 2):
        x = conv_block(x, filters, f"{name}_{index}", kernel_size=kernel_size,
                       normalization=normalization, activation=activation)
    return x


@register_model("unet3d", stride=_stride, spatial_dims=3)
def build_unet3d(
    input_shape,
    num_classes,
    *,
    depth=4,
    base_filters=32,
    max_filters=320,
    normalization="instance",
    pool_sizes=None,
    kernel_sizes=None,
    deep_supervision=False,
    dropout=0.0,
    activation="relu",
    output_activation=None,
    name="unet3d",
):
    """Build a 3-D U-Net.

    Args:
        input_shape: ``(depth, height, width, channels)``; the spatial sizes may be
            ``None`` and must otherwise be multiples of the stride of their axis (the
            product of ``pool_sizes`` along it; ``2 ** depth`` by default).
        num_classes: output channels.
        depth: number of pooling steps (1..6).
        base_filters: filters of the first level; doubled at each level.
        max_filters: the largest number of filters of any level (320 in nnU-Net), or
            ``None`` for no cap; at least ``base_filters``.
        normalization: ``"instance"`` (default, as nnU-Net: volumes train in batches of
            one or two), ``"group"``, ``"batch"`` or ``"none"``.
        pool_sizes: ``None`` (2 on every axis at every level) or a list of ``depth``
            entries, the pooling after each encoder level: an int or a
            ``(depth, height, width)`` tuple, e.g. ``[(1, 2, 2), (2, 2, 2)]``.
        kernel_sizes: ``None`` (3 everywhere) or a list of ``depth + 1`` entries, the
            convolution kernels of each level (encoder and decoder alike) and, last, of the
            bottleneck: an int or a ``(depth, height, width)`` tuple, e.g.
            ``[(1, 3, 3), (3, 3, 3), (3, 3, 3)]``.
        deep_supervision: ``False`` (one output), ``True`` (an extra output at every
            decoder level below full resolution, ``depth - 1`` of them) or an int ``n`` in
            ``[1, depth - 1]`` (extra outputs at decoder levels 1..n). The model then
            returns the list ``[full, level 1, ..., level n]`` (see the module docstring).
        dropout: dropout rate after the deepest encoder level and the bottleneck; ``0``
            disables it.
        activation: activation of the convolution blocks (a Keras activation name).
        output_activation: ``None`` (logits), ``"softmax"`` or ``"sigmoid"``.
        name: model name.

    Returns:
        A functional ``keras.Model`` from ``(B, D, H, W, C)`` to
        ``(B, D, H, W, num_classes)``, or to the list of outputs with deep supervision.

    Raises:
        ValueError: for an option outside its valid range or set, or spatial sizes that
            are not multiples of their axis' stride.

    Example:
        >>> model = build_unet3d((16, 32, 32, 1), 2, depth=2, base_filters=4,
        ...                      pool_sizes=[(1, 2, 2), (2, 2, 2)])
        >>> model.output_shape
        (None, 16, 32, 32, 2)
        >>> model.get_layer("bottleneck_1_conv").output.shape
        (None, 8, 8, 8, 16)
        >>> model = build_unet3d((16, 16, 16, 1), 2, depth=2, base_filters=4,
        ...                      deep_supervision=True)
        >>> model.output_shape
        [(None, 16, 16, 16, 2), (None, 8, 8, 8, 2)]
    """
    strides = _stride(depth, pool_sizes)
    pools = _per_level("pool_sizes", pool_sizes, depth, 2)
    kernels = _per_level("kernel_sizes", kernel_sizes, depth + 1, 3)
    check_positive_int("base_filters", base_filters)
    if max_filters is not None and (isinstance(max_filters, bool)
                                    or not isinstance(max_filters, int)
                                    or max_filters < base_filters):
        raise ValueError(
            f"`max_filters` must be None or an int >= base_filters={base_filters}. "
            f"Received: max_filters={max_filters!r}")
    if deep_supervision is True:
        supervised = depth - 1
        if supervised < 1:
            raise ValueError(
                "`deep_supervision` needs depth >= 2 (a decoder level below full "
                f"resolution). Received: deep_supervision=True with depth={depth}")
    elif deep_supervision is False:
        supervised = 0
    elif isinstance(deep_supervision, int) and 0 <= deep_supervision <= depth - 1:
        supervised = deep_supervision
    else:
        raise ValueError(
            f"`deep_supervision` must be a bool or an int in [0, depth - 1 = {depth - 1}]. "
            f"Received: deep_supervision={deep_supervision!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    check_choice("normalization", normalization, NORMALIZATIONS)
    check_choice("output_activation", output_activation, ACTIVATIONS)
    check_spatial_sizes(input_shape, strides, "the product of `pool_sizes` per axis")
    widths = level_filters(depth, base_filters, max_filters)

    # Layers: encoder, bottleneck, decoder, heads.
    inputs = keras.Input(shape=input_shape, name="image")
    levels = {}
    x = inputs
    for level in range(depth):
        x = _double_conv(x, widths[level], f"enc{level}", kernels[level], normalization,
                         activation)
        if dropout and level == depth - 1:
            x = layers.Dropout(dropout, name=f"enc{level}_dropout")(x)
        levels[f"P{level}"] = x
        x = layers.MaxPooling3D(pools[level], name=f"enc{level}_pool")(x)
    x = _double_conv(x, widths[depth], "bottleneck", kernels[depth], normalization, activation)
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)

    decoded = {}
    for level in reversed(range(depth)):
        x = conv_layer(3, widths[level], pools[level], f"dec{level}_up", strides=pools[level],
                       transpose=True, kernel_initializer="he_normal")(x)
        x = layers.Concatenate(name=f"dec{level}_concat")([x, levels[f"P{level}"]])
        x = _double_conv(x, widths[level], f"dec{level}", kernels[level], normalization,
                         activation)
        decoded[level] = x

    # Every head has the same output activation, which `output_activation(model)` reads.
    outputs = segmentation_head(x, num_classes, output_activation)
    auxiliary = [segmentation_head(decoded[level], num_classes, output_activation,
                                   name=f"ds{level}")
                 for level in range(1, supervised + 1)]
    return keras.Model(inputs, [outputs, *auxiliary] if supervised else outputs, name=name)
