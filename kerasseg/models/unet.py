"""U-Net (Ronneberger, Fischer and Brox, MICCAI 2015) for 2-D segmentation.

The encoder has ``depth`` downsampling steps; filters double per level, so
``depth=4, base_filters=32`` gives 32, 64, 128, 256 and 512 filters. Each level is two
3x3 convolutions with normalization and ReLU. Encoder outputs are kept in a dict keyed by
pyramid level (``"P0"`` at full resolution .. ``"P{depth}"`` at the bottleneck) and the
decoder takes its skips from that dict by level. Padding is "same", so the output has the
input's size; height and width must be multiples of ``2 ** depth``.
"""

import keras
from keras import layers

from kerasseg.models.blocks import (
    ACTIVATIONS,
    NORMALIZATIONS,
    check_choice,
    conv_block,
    segmentation_head,
)
from kerasseg.models.registry import register_model

UPSAMPLINGS = ("transpose", "bilinear")


def _double_conv(x, filters, name, normalization, activation):
    x = conv_block(x, filters, f"{name}_1", normalization=normalization, activation=activation)
    return conv_block(x, filters, f"{name}_2", normalization=normalization, activation=activation)


def _upsample(x, filters, name, upsampling):
    if upsampling == "transpose":
        return layers.Conv2DTranspose(
            filters, 2, strides=2, padding="same", kernel_initializer="he_normal", name=name
        )(x)
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(x)
    return layers.Conv2D(
        filters, 1, padding="same", kernel_initializer="he_normal", name=name
    )(x)


@register_model("unet", stride=lambda depth, **_: 2**depth)
def build_unet(
    input_shape,
    num_classes,
    *,
    depth=4,
    base_filters=32,
    normalization="batch",
    dropout=0.0,
    upsampling="transpose",
    activation="relu",
    output_activation=None,
    name="unet",
):
    """Build a 2-D U-Net.

    Args:
        input_shape: ``(height, width, channels)``; height and width may be ``None`` and
            must otherwise be multiples of ``2 ** depth``.
        num_classes: output channels.
        depth: number of downsampling steps (1..6).
        base_filters: filters at full resolution; doubled at each level.
        normalization: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``.
        dropout: dropout rate applied to the two deepest levels (as in the original
            paper, at the end of the contracting path); ``0`` disables it.
        upsampling: ``"transpose"`` (learned 2x2 transposed convolution) or
            ``"bilinear"`` (bilinear resize followed by a 1x1 convolution).
        activation: activation of the convolution blocks.
        output_activation: ``None`` (logits), ``"softmax"`` or ``"sigmoid"``.
        name: model name.

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: for an option outside its valid range or set.

    Example:
        >>> model = build_unet((128, 128, 1), 3, depth=3, base_filters=16)
        >>> model.output_shape
        (None, 128, 128, 3)
    """
    if not isinstance(depth, int) or not 1 <= depth <= 6:
        raise ValueError(f"`depth` must be an int in [1, 6]. Received: depth={depth!r}")
    if not isinstance(base_filters, int) or base_filters < 1:
        raise ValueError(
            f"`base_filters` must be a positive int. Received: base_filters={base_filters!r}"
        )
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    check_choice("upsampling", upsampling, UPSAMPLINGS)
    check_choice("normalization", normalization, NORMALIZATIONS)
    check_choice("output_activation", output_activation, ACTIVATIONS)
    stride = 2**depth
    for size in input_shape[:2]:
        if size is not None and size % stride:
            raise ValueError(
                f"`input_shape` height and width must be multiples of 2**depth={stride}. "
                f"Received: input_shape={tuple(input_shape)!r}"
            )

    # Layers: encoder, bottleneck, decoder, head.
    inputs = keras.Input(shape=input_shape, name="image")
    levels = {}
    x = inputs
    for level in range(depth):
        filters = base_filters * 2**level
        x = _double_conv(x, filters, f"enc{level}", normalization, activation)
        if dropout and level == depth - 1:
            x = layers.Dropout(dropout, name=f"enc{level}_dropout")(x)
        levels[f"P{level}"] = x
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = _double_conv(x, base_filters * 2**depth, "bottleneck", normalization, activation)
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    levels[f"P{depth}"] = x

    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = _upsample(x, filters, f"dec{level}_up", upsampling)
        x = layers.Concatenate(name=f"dec{level}_concat")([x, levels[f"P{level}"]])
        x = _double_conv(x, filters, f"dec{level}", normalization, activation)

    outputs = segmentation_head(x, num_classes, output_activation)
    return keras.Model(inputs, outputs, name=name)
