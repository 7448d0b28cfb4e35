"""FCN-8s (Long, Shelhamer and Darrell, CVPR 2015) for 2-D segmentation.

A VGG-style encoder (five stages of 3x3 convolutions, each ending in 2x2 max pooling)
is followed by the convolutionalised classifier ("fc6", "fc7"). Class score maps are
taken from the encoder by pyramid level (pool3 = ``"P3"``, pool4 = ``"P4"``, the last
stage = ``"P5"``) and fused coarse to fine with learned transposed convolutions: the
``P5`` scores are upsampled 2x and added to the ``P4`` scores, the sum is upsampled 2x
and added to the ``P3`` scores, and that sum is upsampled 8x to the input size. The
transposed convolutions start as bilinear interpolation and the skip score layers start
at zero, as in the paper, so training begins from the coarse FCN-32s prediction.

Deviations from the paper, each an option: ``base_filters`` (64 in the paper) sets the
width so a medical-size model stays small; ``fc_filters`` (4096) and ``fc_kernel_size``
(7) size the classifier; ``normalization`` (none in the paper, batch here by default)
makes training from scratch reliable. Padding is "same" instead of the paper's 100-pixel
input padding and crops, so height and width must be multiples of 32.
"""

import numpy as np
import keras
from keras import layers

from kerasseg.models.blocks import ACTIVATIONS, NORMALIZATIONS, check_choice, conv_block
from kerasseg.models.registry import register_model

STAGE_CONVS = (2, 2, 3, 3, 3)
STAGE_WIDTHS = (1, 2, 4, 8, 8)


@keras.saving.register_keras_serializable(package="kerasseg")
class BilinearUpsamplingInitializer(keras.initializers.Initializer):
    """Initializes a ``Conv2DTranspose`` kernel to bilinear interpolation per channel.

    The kernel shape is ``(k, k, out_channels, in_channels)``; channel ``c`` maps to
    channel ``c`` with the bilinear filter and all other pairs are zero. With
    ``kernel_size = 2 * factor`` and ``strides = factor`` the layer then upsamples by
    ``factor`` like a bilinear resize (away from the borders).

    Example:
        >>> layer = keras.layers.Conv2DTranspose(
        ...     3, 4, strides=2, padding="same",
        ...     kernel_initializer=BilinearUpsamplingInitializer())
    """

    def __call__(self, shape, dtype=None):
        size, _, out_channels, in_channels = shape
        factor = (size + 1) // 2
        center = factor - 1 if size % 2 == 1 else factor - 0.5
        grid = np.arange(size)
        filt1d = 1 - np.abs(grid - center) / factor
        filt = np.outer(filt1d, filt1d)
        kernel = np.zeros(shape, dtype="float32")
        for channel in range(min(out_channels, in_channels)):
            kernel[:, :, channel, channel] = filt
        return keras.ops.convert_to_tensor(kernel, dtype=dtype or "float32")

    def get_config(self):
        return {}


def _upscore(x, num_classes, factor, name):
    return layers.Conv2DTranspose(
        num_classes, 2 * factor, strides=factor, padding="same", use_bias=False,
        kernel_initializer=BilinearUpsamplingInitializer(), name=name, dtype="float32",
    )(x)


def _score(x, num_classes, name, zero_init):
    return layers.Conv2D(
        num_classes, 1, padding="same",
        kernel_initializer="zeros" if zero_init else "he_normal",
        name=name, dtype="float32",
    )(x)


@register_model("fcn8s", stride=lambda **_: 32)
def build_fcn8s(
    input_shape,
    num_classes,
    *,
    base_filters=32,
    fc_filters=512,
    fc_kernel_size=3,
    normalization="batch",
    dropout=0.5,
    output_activation=None,
    name="fcn8s",
):
    """Build an FCN-8s.

    Args:
        input_shape: ``(height, width, channels)``; height and width may be ``None`` and
            must otherwise be multiples of 32.
        num_classes: output channels.
        base_filters: filters of the first VGG stage; the stages use 1, 2, 4, 8 and 8
            times this (64 reproduces VGG16's widths).
        fc_filters: filters of the convolutionalised classifier layers fc6 and fc7.
        fc_kernel_size: kernel size of fc6 (7 in the paper; 3 by default, which at 1/32 of a
            medical image already spans most of it, for a third of the parameters).
        normalization: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``.
        dropout: dropout rate after fc6 and fc7 (0.5 in the paper).
        output_activation: ``None`` (logits), ``"softmax"`` or ``"sigmoid"``.
        name: model name.

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: for an option outside its valid range or set.

    Example:
        >>> model = build_fcn8s((128, 128, 1), 2, base_filters=16, fc_filters=128)
        >>> model.output_shape
        (None, 128, 128, 2)
    """
    for arg, value in (("base_filters", base_filters), ("fc_filters", fc_filters),
                       ("fc_kernel_size", fc_kernel_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{arg}` must be a positive int. Received: {arg}={value!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    check_choice("normalization", normalization, NORMALIZATIONS)
    check_choice("output_activation", output_activation, ACTIVATIONS)
    for size in input_shape[:2]:
        if size is not None and size % 32:
            raise ValueError(
                "`input_shape` height and width must be multiples of 32 for fcn8s. "
                f"Received: input_shape={tuple(input_shape)!r}"
            )

    # Layers: VGG encoder with pyramid levels P1..P5, classifier, score fusion.
    inputs = keras.Input(shape=input_shape, name="image")
    levels = {}
    x = inputs
    for stage, (convs, width) in enumerate(zip(STAGE_CONVS, STAGE_WIDTHS), start=1):
        for index in range(1, convs + 1):
            x = conv_block(x, base_filters * width, f"block{stage}_conv{index}",
                           normalization=normalization)
        x = layers.MaxPooling2D(2, name=f"block{stage}_pool")(x)
        levels[f"P{stage}"] = x

    x = conv_block(levels["P5"], fc_filters, "fc6", kernel_size=fc_kernel_size,
                   normalization=normalization)
    if dropout:
        x = layers.Dropout(dropout, name="fc6_dropout")(x)
    x = conv_block(x, fc_filters, "fc7", kernel_size=1, normalization=normalization)
    if dropout:
        x = layers.Dropout(dropout, name="fc7_dropout")(x)

    score = _score(x, num_classes, "score_fr", zero_init=False)
    score = _upscore(score, num_classes, 2, "upscore2")
    score = layers.Add(name="fuse_pool4", dtype="float32")(
        [score, _score(levels["P4"], num_classes, "score_pool4", zero_init=True)]
    )
    score = _upscore(score, num_classes, 2, "upscore_pool4")
    score = layers.Add(name="fuse_pool3", dtype="float32")(
        [score, _score(levels["P3"], num_classes, "score_pool3", zero_init=True)]
    )
    outputs = _upscore(score, num_classes, 8, "upscore8")
    if output_activation is not None:
        outputs = layers.Activation(
            output_activation, name=f"head_{output_activation}", dtype="float32"
        )(outputs)
    return keras.Model(inputs, outputs, name=name)
