"""A small residual encoder for single-channel medical images, trained from scratch.

Four levels, each one step of 2x downsampling:

* ``"P1"`` (stride 2): two 3x3 convolutions, the first strided (32 filters);
* ``"P2"``, ``"P3"``, ``"P4"`` (strides 4, 8, 16): one residual block each (64, 128 and
  256 filters): a strided 3x3 convolution, a second 3x3 convolution and a strided 1x1
  projection shortcut, every convolution followed by normalization.

About 1.2 M parameters with the default widths. At output stride 8 the last block keeps
stride 8: its strided convolution becomes a plain one and its second convolution is dilated
with rate 2, so the receptive field matches the strided network.
"""

from keras import layers

from kerasseg.models.blocks import NORMALIZATIONS, apply_normalization, check_choice, conv_block

SMALL_FILTERS = (32, 64, 128, 256)
SMALL_OUTPUT_STRIDES = (8, 16)


def _residual_block(x, filters, name, strides, first_rate, rate, normalization):
    use_bias = normalization == "none"
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(
            filters, 1, strides=strides, use_bias=use_bias, kernel_initializer="he_normal",
            name=f"{name}_shortcut_conv",
        )(x)
        shortcut = apply_normalization(shortcut, normalization, f"{name}_shortcut_norm")
    y = conv_block(x, filters, f"{name}_conv1", strides=strides, dilation_rate=first_rate,
                   normalization=normalization)
    y = conv_block(y, filters, f"{name}_conv2", dilation_rate=rate,
                   normalization=normalization, activation=None)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def small_encoder(inputs, *, output_stride=16, normalization="batch", filters=SMALL_FILTERS,
                  name="small"):
    """Apply the small residual encoder to ``inputs`` and return its pyramid levels.

    Args:
        inputs: image tensor ``(B, H, W, C)`` with any channel count.
        output_stride: 16 (no dilation) or 8 (the ``"P4"`` block is dilated and keeps
            stride 8).
        normalization: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``.
        filters: four widths for levels ``"P1"`` .. ``"P4"``.
        name: prefix of every layer name.

    Returns:
        A dict ``{"P1": ..., "P2": ..., "P3": ..., "P4": ...}`` of feature tensors;
        ``"P{k}"`` has stride ``min(2**k, output_stride)``.

    Raises:
        ValueError: for an output stride other than 8 or 16, an unknown normalization or
            a ``filters`` that is not four positive ints.

    Example:
        >>> import keras
        >>> levels = small_encoder(keras.Input((64, 64, 1)), output_stride=8)
        >>> [tuple(levels[k].shape[1:3]) for k in ("P1", "P2", "P3", "P4")]
        [(32, 32), (16, 16), (8, 8), (8, 8)]
    """
    check_choice("output_stride", output_stride, SMALL_OUTPUT_STRIDES)
    check_choice("normalization", normalization, NORMALIZATIONS)
    if (len(tuple(filters)) != 4
            or not all(isinstance(f, int) and not isinstance(f, bool) and f > 0
                       for f in filters)):
        raise ValueError(f"`filters` must be four positive ints. Received: filters={filters!r}")
    x = conv_block(inputs, filters[0], f"{name}_stem1", strides=2, normalization=normalization)
    x = conv_block(x, filters[0], f"{name}_stem2", normalization=normalization)
    levels = {"P1": x}
    stride, rate = 2, 1
    for level, width in enumerate(filters[1:], start=2):
        first_rate = rate
        if stride < output_stride:
            strides = 2
            stride *= 2
        else:
            # Past the output stride: the stride is dropped and later convolutions dilate.
            strides = 1
            rate *= 2
        x = _residual_block(x, width, f"{name}_p{level}", strides, first_rate, rate,
                            normalization)
        levels[f"P{level}"] = x
    return levels
