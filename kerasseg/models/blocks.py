"""Building blocks shared by the model families: normalization, conv blocks, resizing.

The convolution helpers work on images ``(B, H, W, C)`` and on volumes ``(B, D, H, W, C)``
alike: they pick the 2-D or 3-D Keras layer from the rank of their input.
"""

import keras
from keras import layers

NORMALIZATIONS = ("batch", "group", "instance", "none")
# The builders' ``output_activation`` option: None (logits) or the activation of the head.
ACTIVATIONS = (None, "softmax", "sigmoid")
# What a model's outputs are, the contract between a model and its loss, metrics,
# inference and export: raw scores, softmax probabilities, or per-channel sigmoids.
OUTPUT_ACTIVATIONS = ("logits", "softmax", "sigmoid")


def check_choice(name, value, valid):
    """Raise ``ValueError`` unless ``value`` is one of ``valid``.

    Args:
        name: the argument's name, used in the message.
        value: the value received.
        valid: the accepted values.

    Raises:
        ValueError: "`name` must be one of [...]. Received: name=value".
    """
    if value not in valid:
        raise ValueError(f"`{name}` must be one of {list(valid)}. Received: {name}={value!r}")


_LAYOUTS = {2: "(height, width, channels)", 3: "(depth, height, width, channels)"}


def check_positive_int(name, value):
    """Raise ``ValueError`` unless ``value`` is a positive int (``bool`` is not).

    Args:
        name: the argument's name, used in the message.
        value: the value received.

    Raises:
        ValueError: "`name` must be a positive int. Received: name=value".

    Example:
        >>> check_positive_int("base_filters", 0)
        Traceback (most recent call last):
        ...
        ValueError: `base_filters` must be a positive int. Received: base_filters=0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")


def check_spatial_sizes(input_shape, strides, what):
    """Raise ``ValueError`` unless ``input_shape`` has one size per stride plus channels, and
    each known spatial size is a multiple of its stride.

    Args:
        input_shape: ``(..., channels)`` with one size (or ``None``) per spatial axis.
        strides: one int per spatial axis.
        what: where the strides come from, for the message (e.g. ``"2**depth"``).

    Raises:
        ValueError: naming ``input_shape`` and its expected layout, or the stride of each
            axis.

    Example:
        >>> check_spatial_sizes((None, 32, 32, 1), (4, 8, 8), "the product of `pool_sizes`")
        >>> check_spatial_sizes((6, 32, 32, 1), (4, 8, 8), "the product of `pool_sizes`")
        Traceback (most recent call last):
        ...
        ValueError: `input_shape` spatial sizes must be multiples ... (4, 8, 8) ...
        Received: input_shape=(6, 32, 32, 1)
    """
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != len(strides) + 1:
        layout = _LAYOUTS.get(len(strides), f"({len(strides)} spatial sizes, channels)")
        raise ValueError(f"`input_shape` must be a tuple {layout}. "
                         f"Received: input_shape={input_shape!r}")
    sizes = tuple(input_shape)[:-1]
    if any(size is not None and size % stride for size, stride in zip(sizes, strides)):
        raise ValueError(
            "`input_shape` spatial sizes must be multiples of the stride of their axis, "
            f"{tuple(strides)} ({what}). Received: input_shape={tuple(input_shape)!r}"
        )


def check_axis_sizes(name, value, dims=3):
    """Return ``value`` as one positive int per spatial axis (an int stands for all of them).

    Args:
        name: the option's name, used in the message.
        value: a positive int, or a tuple/list of ``dims`` positive ints.
        dims: the number of spatial axes.

    Returns:
        A tuple of ``dims`` ints.

    Raises:
        ValueError: naming the option, for anything else.

    Example:
        >>> check_axis_sizes("kernel_size", 5), check_axis_sizes("kernel_size", [1, 3, 3])
        ((5, 5, 5), (1, 3, 3))
    """
    def positive(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1

    if positive(value):
        return (value,) * dims
    if isinstance(value, (tuple, list)) and len(value) == dims and all(map(positive, value)):
        return tuple(value)
    raise ValueError(f"`{name}` must be a positive int or a tuple of {dims} positive ints. "
                     f"Received: {name}={value!r}")


def output_activation(model):
    """Return what a segmentation model outputs: ``"logits"``, ``"softmax"`` or ``"sigmoid"``.

    The model declares it with its last layer: a softmax or sigmoid activation (such as the
    head the builders add for ``output_activation="softmax"``/``"sigmoid"``, or a
    ``keras.layers.Softmax``) means probabilities; anything else means logits. Training
    takes ``from_logits=True`` losses and metrics only for logits, inference and export
    apply softmax/sigmoid only to logits, and training stores the value in the model's
    info as ``output_activation``.

    Args:
        model: a Keras model.

    Returns:
        One of :data:`OUTPUT_ACTIVATIONS`.

    Example:
        >>> from kerasseg.models import build
        >>> output_activation(build("unet", depth=2, base_filters=4))
        'logits'
        >>> output_activation(build("unet", depth=2, base_filters=4, output_activation="softmax"))
        'softmax'
    """
    layer = model.layers[-1]
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    if name is None and isinstance(layer, layers.Softmax):
        name = "softmax"
    return name if name in OUTPUT_ACTIVATIONS[1:] else "logits"


def check_output_activation(activation, num_classes):
    """Check that ``activation`` is a valid output activation for ``num_classes`` outputs.

    Args:
        activation: one of :data:`OUTPUT_ACTIVATIONS`.
        num_classes: the number of output channels ``K``.

    Returns:
        ``activation``.

    Raises:
        ValueError: for an unknown activation, or ``"softmax"`` over one channel (a
            constant 1).

    Example:
        >>> check_output_activation("sigmoid", 1)
        'sigmoid'
    """
    check_choice("output_activation", activation, OUTPUT_ACTIVATIONS)
    if activation == "softmax" and num_classes == 1:
        raise ValueError(
            "A 1-class model needs sigmoid outputs or logits (softmax over one class is "
            "constant). Received: output_activation='softmax' with 1 output channel")
    return activation


def normalization_layer(kind, name, groups=8):
    """Return a normalization layer of the given kind, or ``None`` for ``"none"``.

    Args:
        kind: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``.
        name: layer name.
        groups: number of groups for group normalization (reduced to divide the channels
            at call time by :func:`apply_normalization`).

    Returns:
        A Keras layer or ``None``.

    Raises:
        ValueError: for an unknown kind.
    """
    check_choice("normalization", kind, NORMALIZATIONS)
    if kind == "batch":
        return layers.BatchNormalization(name=name)
    if kind == "group":
        return layers.GroupNormalization(groups=groups, name=name)
    if kind == "instance":
        # Instance normalization is group normalization with one channel per group.
        return layers.GroupNormalization(groups=-1, name=name)
    return None


def spatial_rank(x):
    """Return the number of spatial axes of a channels-last batch tensor: 2 or 3.

    Args:
        x: a tensor ``(B, H, W, C)`` or ``(B, D, H, W, C)``.

    Returns:
        2 or 3.

    Raises:
        ValueError: for a tensor of any other rank.

    Example:
        >>> spatial_rank(keras.Input((None, None, None, 1)))
        3
    """
    rank = len(x.shape) - 2
    if rank not in (2, 3):
        raise ValueError("Expected a batch of images (B, H, W, C) or volumes (B, D, H, W, C). "
                         f"Received a tensor of shape {tuple(x.shape)}")
    return rank


def conv_layer(rank, filters, kernel_size, name, strides=1, transpose=False, **kwargs):
    """Return a ``Conv2D``/``Conv3D`` (or transposed) layer with "same" padding.

    Args:
        rank: 2 or 3 spatial axes.
        filters: output channels.
        kernel_size: an int or one int per spatial axis.
        name: layer name.
        strides: an int or one int per spatial axis.
        transpose: a transposed convolution (``Conv2DTranspose``/``Conv3DTranspose``).
        **kwargs: further layer arguments (``use_bias``, ``kernel_initializer``, ``dtype``).

    Returns:
        The (unbuilt) Keras layer.

    Raises:
        ValueError: if ``rank`` is not 2 or 3.

    Example:
        >>> layer = conv_layer(3, 8, (1, 3, 3), "conv")
        >>> type(layer).__name__, layer.kernel_size
        ('Conv3D', (1, 3, 3))
    """
    classes = {(2, False): layers.Conv2D, (3, False): layers.Conv3D,
               (2, True): layers.Conv2DTranspose, (3, True): layers.Conv3DTranspose}
    if (rank, bool(transpose)) not in classes:
        raise ValueError(f"`rank` must be 2 or 3. Received: rank={rank!r}")
    return classes[rank, bool(transpose)](filters, kernel_size, strides=strides,
                                         padding="same", name=name, **kwargs)


def apply_normalization(x, kind, name, groups=8):
    """Apply normalization of ``kind`` to ``x`` (identity for ``"none"``).

    Group counts are reduced to the largest divisor of the channel count not above
    ``groups`` so that any width works.
    """
    channels = x.shape[-1]
    if kind == "group":
        groups = max(g for g in range(1, min(groups, channels) + 1) if channels % g == 0)
    layer = normalization_layer(kind, name, groups=groups)
    return x if layer is None else layer(x)


def conv_block(
    x,
    filters,
    name,
    kernel_size=3,
    strides=1,
    dilation_rate=1,
    normalization="batch",
    activation="relu",
    separable=False,
):
    """Convolution, optional normalization and activation, with explicit layer names.

    Args:
        x: input tensor ``(B, H, W, C)``, or ``(B, D, H, W, C)`` for a ``Conv3D``.
        filters: output channels.
        name: prefix for the layer names (``{name}_conv``, ``{name}_norm``, ``{name}_act``).
        kernel_size: convolution kernel size (an int, or one int per spatial axis).
        strides: convolution strides.
        dilation_rate: atrous rate.
        normalization: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``.
        activation: a Keras activation name, a layer (used as is, e.g.
            ``keras.layers.PReLU``) or ``None``.
        separable: use a depthwise-separable convolution (2-D only).

    Returns:
        The output tensor.

    Raises:
        ValueError: for ``separable=True`` on a volume (Keras has no separable 3-D
            convolution), or an unknown normalization.

    Example:
        >>> y = conv_block(keras.Input((8, 16, 16, 2)), 4, "enc", kernel_size=(1, 3, 3),
        ...                normalization="instance")
        >>> tuple(y.shape)
        (None, 8, 16, 16, 4)
    """
    use_bias = normalization == "none"
    rank = spatial_rank(x)
    if separable and rank == 3:
        raise ValueError("`separable` convolutions are 2-D only. Received: separable=True "
                         f"for an input of shape {tuple(x.shape)}")
    if rank == 3:
        x = layers.Conv3D(
            filters, kernel_size, strides=strides, dilation_rate=dilation_rate,
            padding="same", use_bias=use_bias, kernel_initializer="he_normal",
            name=f"{name}_conv",
        )(x)
    elif separable:
        x = layers.SeparableConv2D(
            filters, kernel_size, strides=strides, dilation_rate=dilation_rate,
            padding="same", use_bias=use_bias, name=f"{name}_conv",
        )(x)
    else:
        x = layers.Conv2D(
            filters, kernel_size, strides=strides, dilation_rate=dilation_rate,
            padding="same", use_bias=use_bias, kernel_initializer="he_normal",
            name=f"{name}_conv",
        )(x)
    x = apply_normalization(x, normalization, f"{name}_norm")
    if isinstance(activation, layers.Layer):
        x = activation(x)
    elif activation is not None:
        x = layers.Activation(activation, name=f"{name}_act")(x)
    return x


def segmentation_head(x, num_classes, activation, name="head"):
    """A 1x1 classifier and the output activation, computed in float32.

    Args:
        x: features ``(B, H, W, C)``, or ``(B, D, H, W, C)`` (a 1x1x1 classifier).
        num_classes: number of output channels.
        activation: ``None`` (logits), ``"softmax"`` or ``"sigmoid"``.
        name: layer name prefix.

    Returns:
        The model output ``(B, H, W, num_classes)`` (or ``(B, D, H, W, num_classes)``) in
        float32 (also under mixed precision).

    Raises:
        ValueError: for an unknown activation.

    Example:
        >>> y = segmentation_head(keras.Input((4, 8, 8, 6)), 3, "softmax")
        >>> tuple(y.shape)
        (None, 4, 8, 8, 3)
    """
    check_choice("output_activation", activation, ACTIVATIONS)
    x = conv_layer(spatial_rank(x), num_classes, 1, f"{name}_logits", dtype="float32")(x)
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_{activation}", dtype="float32")(x)
    return x
