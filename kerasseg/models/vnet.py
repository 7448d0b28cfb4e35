"""V-Net (Milletari, Navab and Ahmadi, 3DV 2016) for volumes.

The input is a volume ``(depth, height, width, channels)``. Every stage is residual: its
input goes through ``convs_per_stage`` 5x5x5 convolutions (normalization, then PReLU
after each but the last) and is added to their output, and a PReLU follows the sum.
Stages are named by pyramid level (level ``l`` at ``1 / 2**l`` of the input size):

* ``enc{l}``: encoder stage of level ``l`` with ``base_filters * 2**l`` channels. The first
  stage's residual is the input image, projected to ``base_filters`` channels by a 1x1x1
  convolution (``enc0_skip``) when the channel counts differ (the paper repeats its one
  input channel instead); the others' is their input.
* ``down{l}``: a 2x2x2 convolution with stride 2 (no pooling) doubling the channels, with
  normalization and PReLU, from level ``l`` to ``l + 1``.
* ``bottom``: the stage at level ``depth``.
* ``up{l}``: a 2x2x2 transposed convolution with stride 2 to level ``l``, with
  ``base_filters * 2**l`` channels, normalization and PReLU.
* ``dec{l}``: decoder stage of level ``l`` on the upsampled features concatenated with
  ``enc{l}``'s output (twice the encoder's channels), with that concatenation as residual.
* ``head_*``: a 1x1x1 convolution to the classes and the output activation, in float32.

The paper's network is ``depth=4, base_filters=16`` with 1, 2, 3, 3 convolutions in the
encoder stages, 3 in the bottom stage and 3, 3, 2, 1 in the decoder stages (each decoder
stage has its encoder stage's count): the default ``convs_per_stage``. Deviations: the
normalization (none in the paper; instance normalization by default here, as batches of
volumes are small) and the projected first residual. The PReLU slopes are per channel,
shared over space, and start at 0.25 (He et al. 2015). Spatial sizes must be multiples of
``2 ** depth``.
"""

import keras
from keras import layers, ops

from kerasseg.models.blocks import (
    ACTIVATIONS,
    NORMALIZATIONS,
    apply_normalization,
    check_axis_sizes,
    check_choice,
    check_positive_int,
    check_spatial_sizes,
    conv_block,
    conv_layer,
    segmentation_head,
)
from kerasseg.models.registry import register_model

MAX_DEPTH = 5


@keras.saving.register_keras_serializable(package="kerasseg")
class PReLU(layers.PReLU):
    """``keras.layers.PReLU`` computed as ``max(x, 0) + alpha * min(x, 0)``.

    The same weights, configuration and outputs as Keras' layer, which computes
    ``relu(x) - alpha * relu(-x)``; on CPU, TensorFlow's graph optimizer fails to fuse that
    form after a biased convolution and a residual sum (logging a "remapper failed" error
    at every new trace), which this form avoids.

    Example:
        >>> layer = PReLU(shared_axes=[1, 2, 3],
        ...               alpha_initializer=keras.initializers.Constant(0.25))
        >>> x = keras.ops.convert_to_tensor([[[[[-2.0, 4.0]]]]])
        >>> keras.ops.convert_to_numpy(layer(x)).ravel().tolist()
        [-0.5, 4.0]
    """

    def call(self, inputs):
        alpha = ops.cast(self.alpha, inputs.dtype)
        return ops.maximum(inputs, 0) + alpha * ops.minimum(inputs, 0)


def _prelu(name):
    """A PReLU with one slope per channel, shared over space, starting at 0.25."""
    return PReLU(alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2, 3],
                 name=name)


def default_convs_per_stage(depth):
    """Return the paper's convolutions per stage for levels ``0..depth``: 1, 2, then 3.

    Args:
        depth: the number of downsampling steps.

    Returns:
        A list of ``depth + 1`` ints (encoder levels, then the bottom stage).

    Example:
        >>> default_convs_per_stage(4)
        [1, 2, 3, 3, 3]
    """
    return [min(level + 1, 3) for level in range(depth + 1)]


def _check_depth(depth):
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise ValueError(
            f"`depth` must be an int in [1, {MAX_DEPTH}]. Received: depth={depth!r}")
    return depth


def _residual_stage(x, residual, filters, convs, name, kernel_size, normalization):
    """``convs`` convolutions on ``x``, added to ``residual``, then a PReLU."""
    for index in range(1, convs + 1):
        last = index == convs
        x = conv_block(x, filters, f"{name}_conv{index}", kernel_size=kernel_size,
                       normalization=normalization,
                       activation=None if last else _prelu(f"{name}_conv{index}_act"))
    x = layers.Add(name=f"{name}_add")([x, residual])
    return _prelu(f"{name}_act")(x)


@register_model("vnet", stride=lambda depth, **_: 2 ** _check_depth(depth), spatial_dims=3)
def build_vnet(
    input_shape,
    num_classes,
    *,
    depth=4,
    base_filters=16,
    convs_per_stage=None,
    kernel_size=5,
    normalization="instance",
    output_activation=None,
    name="vnet",
):
    """Build a V-Net.

    Args:
        input_shape: ``(depth, height, width, channels)``; the spatial sizes may be
            ``None`` and must otherwise be multiples of ``2 ** depth``.
        num_classes: output channels.
        depth: number of downsampling steps (1..5).
        base_filters: channels of the first stage; doubled at each level (16 in the paper).
        convs_per_stage: ``None`` (1, 2, then 3 per level, as in the paper), an int for
            every stage, or a list of ``depth + 1`` ints: the encoder stages of levels
            ``0..depth-1`` and the bottom stage; each decoder stage has its level's count.
        kernel_size: the stages' convolution kernel (5 in the paper), an int or a
            ``(depth, height, width)`` tuple.
        normalization: ``"instance"`` (default), ``"group"``, ``"batch"`` or ``"none"``.
        output_activation: ``None`` (logits), ``"softmax"`` or ``"sigmoid"``.
        name: model name.

    Returns:
        A functional ``keras.Model`` from ``(B, D, H, W, C)`` to
        ``(B, D, H, W, num_classes)``.

    Raises:
        ValueError: for an option outside its valid range or set, or spatial sizes that
            are not multiples of ``2 ** depth``.

    Example:
        >>> model = build_vnet((16, 16, 16, 1), 2, depth=2, base_filters=4)
        >>> model.output_shape
        (None, 16, 16, 16, 2)
        >>> model.get_layer("down0_conv").strides, model.get_layer("bottom_add").output.shape
        ((2, 2, 2), (None, 4, 4, 4, 16))
    """
    _check_depth(depth)
    check_positive_int("base_filters", base_filters)
    if convs_per_stage is None:
        convs = default_convs_per_stage(depth)
    else:
        valid = lambda n: isinstance(n, int) and not isinstance(n, bool) and n >= 1  # noqa: E731
        if valid(convs_per_stage):
            convs = [convs_per_stage] * (depth + 1)
        elif isinstance(convs_per_stage, (list, tuple)) and len(convs_per_stage) == depth + 1 \
                and all(map(valid, convs_per_stage)):
            convs = list(convs_per_stage)
        else:
            raise ValueError(
                f"`convs_per_stage` must be None, a positive int or a list of depth + 1 = "
                f"{depth + 1} positive ints. Received: convs_per_stage={convs_per_stage!r}")
    kernel = check_axis_sizes("kernel_size", kernel_size)
    check_choice("normalization", normalization, NORMALIZATIONS)
    check_choice("output_activation", output_activation, ACTIVATIONS)
    check_spatial_sizes(input_shape, (2**depth,) * 3, "2**depth")

    # Layers: encoder stages and downsampling, bottom stage, upsampling and decoder, head.
    inputs = keras.Input(shape=input_shape, name="image")
    residual = inputs
    if input_shape[-1] != base_filters:
        residual = conv_layer(3, base_filters, 1, "enc0_skip")(inputs)
    x = _residual_stage(inputs, residual, base_filters, convs[0], "enc0", kernel, normalization)
    levels = {"P0": x}
    for level in range(1, depth + 1):
        filters = base_filters * 2**level
        x = conv_block(x, filters, f"down{level - 1}", kernel_size=2, strides=2,
                       normalization=normalization, activation=_prelu(f"down{level - 1}_act"))
        stage = "bottom" if level == depth else f"enc{level}"
        x = _residual_stage(x, x, filters, convs[level], stage, kernel, normalization)
        levels[f"P{level}"] = x

    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = conv_layer(3, filters, 2, f"up{level}_conv", strides=2, transpose=True,
                       use_bias=normalization == "none", kernel_initializer="he_normal")(x)
        x = apply_normalization(x, normalization, f"up{level}_norm")
        x = _prelu(f"up{level}_act")(x)
        x = layers.Concatenate(name=f"dec{level}_concat")([x, levels[f"P{level}"]])
        x = _residual_stage(x, x, 2 * filters, convs[level], f"dec{level}", kernel,
                            normalization)

    outputs = segmentation_head(x, num_classes, output_activation)
    return keras.Model(inputs, outputs, name=name)
