"""Building blocks shared by the model families: normalization, conv blocks, resizing."""

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
        x: input tensor ``(B, H, W, C)``.
        filters: output channels.
        name: prefix for the layer names (``{name}_conv``, ``{name}_norm``, ``{name}_act``).
        kernel_size: convolution kernel size.
        strides: convolution strides.
        dilation_rate: atrous rate.
        normalization: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``.
        activation: a Keras activation name or ``None``.
        separable: use a depthwise-separable convolution.

    Returns:
        The output tensor.
    """
    use_bias = normalization == "none"
    if separable:
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
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_act")(x)
    return x


def segmentation_head(x, num_classes, activation, name="head"):
    """A 1x1 classifier and the output activation, computed in float32.

    Args:
        x: features ``(B, H, W, C)``.
        num_classes: number of output channels.
        activation: ``None`` (logits), ``"softmax"`` or ``"sigmoid"``.
        name: layer name prefix.

    Returns:
        The model output ``(B, H, W, num_classes)`` in float32 (also under mixed precision).
    """
    check_choice("output_activation", activation, ACTIVATIONS)
    x = layers.Conv2D(num_classes, 1, padding="same", name=f"{name}_logits", dtype="float32")(x)
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_{activation}", dtype="float32")(x)
    return x
