"""DeepLabv3+ (Chen et al., ECCV 2018) for 2-D segmentation.

Layout, each part with its own layer-name prefix:

* backbone (:mod:`kerasseg.models.backbones`): named pyramid levels; the deepest level,
  at the output stride (8 or 16, reached with dilated convolutions), feeds the ASPP and
  level ``"P2"`` (stride 4) feeds the decoder;
* ``aspp_*``: atrous spatial pyramid pooling: a 1x1 convolution, one 3x3 convolution per
  atrous rate, and an image-pooling branch (global average, 1x1 convolution, broadcast
  back over the feature grid by :class:`SpatialBroadcast`), concatenated, projected by a
  1x1 convolution and followed by dropout;
* ``decoder_*``: the ASPP output upsampled bilinearly to stride 4, concatenated with
  ``"P2"`` reduced by a 1x1 convolution, two 3x3 convolutions;
* ``head_*``: a 1x1 classifier, 4x bilinear upsampling of the logits to the input size,
  and the output activation, in float32.

All resizes are ``UpSampling2D(interpolation="bilinear")`` by integer factors (TF's
half-pixel bilinear resize, no ``align_corners``), which the TFLite converter maps to its
``RESIZE_BILINEAR`` op. Height and width may be ``None``; concrete sizes must be multiples
of the output stride, and sizes given at call time must be too.

Defaults that depend on the backbone:

* ``atrous_rates``: ``(6, 12, 18)`` at output stride 16 and ``(12, 24, 36)`` at 8 for
  ResNet50 and MobileNetV2, as in the paper (made for 513-pixel images). For the small
  encoder ``(1, 2, 3)`` at 16 and ``(2, 4, 6)`` at 8: the 3x3 branches then reach 16, 32
  and 48 input pixels from the centre at either stride, which covers 64-128 pixel medical
  slices and crops without most taps falling in the zero padding; the image-pooling
  branch adds the global context.
* ``aspp_filters``: 256, or 128 for the small encoder. ``decoder_filters``: the ASPP
  width.
"""

import keras
from keras import layers, ops

from kerasseg.models.backbones import BACKBONES, BACKBONE_WEIGHTS, build_backbone
from kerasseg.models.blocks import (
    ACTIVATIONS,
    NORMALIZATIONS,
    check_choice,
    conv_block,
    segmentation_head,
)
from kerasseg.models.registry import register_model

OUTPUT_STRIDES = (8, 16)
DEFAULT_RATES = {"small": (1, 2, 3), "resnet50": (6, 12, 18), "mobilenetv2": (6, 12, 18)}
"""ASPP rates at output stride 16 for each backbone; doubled at output stride 8."""
DEFAULT_ASPP_FILTERS = {"small": 128, "resnet50": 256, "mobilenetv2": 256}


@keras.saving.register_keras_serializable(package="kerasseg")
class SpatialBroadcast(layers.Layer):
    """Broadcast ``(B, 1, 1, C)`` features over the height and width of a reference.

    Used for the image-pooling branch of ASPP: unlike a resize to a fixed size, it works
    when the spatial size is only known at call time, and converts to TFLite.

    Call arguments:
        inputs: a list ``[features, reference]``: features ``(B, 1, 1, C)`` and any
            reference ``(B, H, W, D)``.

    Returns:
        ``(B, H, W, C)``: the features repeated at every position.

    Example:
        >>> pooled = keras.ops.ones((2, 1, 1, 8))
        >>> tuple(SpatialBroadcast()([pooled, keras.ops.zeros((2, 4, 6, 3))]).shape)
        (2, 4, 6, 8)
    """

    def call(self, inputs):
        features, reference = inputs
        shape = ops.shape(reference)
        return ops.broadcast_to(features, (shape[0], shape[1], shape[2], features.shape[-1]))

    def compute_output_shape(self, input_shape):
        features_shape, reference_shape = input_shape
        return tuple(reference_shape[:3]) + (features_shape[-1],)

    def get_config(self):
        return super().get_config()


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")


def _check_rates(atrous_rates):
    valid = (
        isinstance(atrous_rates, (tuple, list))
        and len(atrous_rates) > 0
        and all(isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in atrous_rates)
    )
    if not valid:
        raise ValueError(
            "`atrous_rates` must be None or a non-empty tuple of positive ints. "
            f"Received: atrous_rates={atrous_rates!r}"
        )
    return tuple(atrous_rates)


def aspp(x, filters, atrous_rates, image_pooling, normalization, dropout, name="aspp"):
    """Atrous spatial pyramid pooling.

    Args:
        x: features ``(B, H, W, C)``.
        filters: width of every branch and of the projection.
        atrous_rates: one 3x3 branch per rate.
        image_pooling: add the global-average-pooling branch.
        normalization: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``. The
            image-pooling branch has a 1x1 grid, where instance normalization would set
            every value to its offset, so it has no normalization in that case.
        dropout: dropout rate after the projection (0 for none).
        name: layer-name prefix.

    Returns:
        ``(B, H, W, filters)``.

    Example:
        >>> y = aspp(keras.Input((8, 8, 64)), 32, (1, 2, 3), True, "batch", 0.1)
        >>> tuple(y.shape)
        (None, 8, 8, 32)
    """
    branches = [conv_block(x, filters, f"{name}_1x1", kernel_size=1,
                           normalization=normalization)]
    for index, rate in enumerate(atrous_rates, start=1):
        branches.append(conv_block(x, filters, f"{name}_atrous{index}", dilation_rate=rate,
                                   normalization=normalization))
    if image_pooling:
        pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
        pooled = conv_block(pooled, filters, f"{name}_pool_proj", kernel_size=1,
                            normalization="none" if normalization == "instance" else normalization)
        branches.append(SpatialBroadcast(name=f"{name}_pool_broadcast")([pooled, x]))
    x = layers.Concatenate(name=f"{name}_concat")(branches)
    x = conv_block(x, filters, f"{name}_project", kernel_size=1, normalization=normalization)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def decoder(x, low_level, factor, low_level_filters, filters, normalization, name="decoder"):
    """The DeepLabv3+ decoder: upsample, fuse low-level features, refine.

    Args:
        x: ASPP output ``(B, h, w, C)``.
        low_level: stride-4 features ``(B, h * factor, w * factor, D)``.
        factor: integer upsampling factor from ``x`` to ``low_level``.
        low_level_filters: width of the 1x1 reduction of ``low_level``.
        filters: width of the two 3x3 refinement convolutions.
        normalization: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``.
        name: layer-name prefix.

    Returns:
        ``(B, h * factor, w * factor, filters)``.

    Example:
        >>> y = decoder(keras.Input((4, 4, 32)), keras.Input((16, 16, 24)), 4, 48, 32,
        ...             "batch")
        >>> tuple(y.shape)
        (None, 16, 16, 32)
    """
    if factor > 1:
        x = layers.UpSampling2D(factor, interpolation="bilinear", name=f"{name}_upsample")(x)
    low = conv_block(low_level, low_level_filters, f"{name}_low_level", kernel_size=1,
                     normalization=normalization)
    x = layers.Concatenate(name=f"{name}_concat")([x, low])
    x = conv_block(x, filters, f"{name}_conv1", normalization=normalization)
    return conv_block(x, filters, f"{name}_conv2", normalization=normalization)


@register_model("deeplab", aliases=("deeplabv3plus",), stride=lambda output_stride, **_: output_stride)
def build_deeplab(
    input_shape,
    num_classes,
    *,
    backbone="small",
    backbone_weights=None,
    output_stride=16,
    atrous_rates=None,
    aspp_filters=None,
    image_pooling=True,
    decoder_filters=None,
    low_level_filters=48,
    normalization="batch",
    dropout=0.1,
    output_activation=None,
    name=None,
):
    """Build a DeepLabv3+ model.

    Args:
        input_shape: ``(height, width, channels)``; height and width may be ``None`` and
            must otherwise be multiples of ``output_stride``; any channel count.
        num_classes: output channels.
        backbone: ``"small"`` (built-in encoder for 1-channel medical images, trained
            from scratch), ``"resnet50"`` or ``"mobilenetv2"`` (``keras.applications``
            networks, dilated).
        backbone_weights: ``None`` (random initialization) or ``"imagenet"`` (ResNet50 and
            MobileNetV2 only; downloaded once; with a channel count other than 3 the
            first convolution is adapted, see
            :func:`kerasseg.models.backbones.adapt_input_kernel`). The model does not
            include ImageNet input preprocessing: feed images scaled as
            ``keras.applications.resnet50.preprocess_input`` or
            ``keras.applications.mobilenet_v2.preprocess_input`` expect, or fine-tune.
        output_stride: 16 or 8, the stride of the features the ASPP sees.
        atrous_rates: rates of the 3x3 ASPP branches; ``None`` for the backbone's default
            (module docstring), doubled at output stride 8.
        aspp_filters: ASPP width; ``None`` for 256 (128 with the small encoder).
        image_pooling: include the ASPP image-pooling branch.
        decoder_filters: width of the decoder's 3x3 convolutions; ``None`` for
            ``aspp_filters``.
        low_level_filters: width of the 1x1 reduction of the stride-4 features.
        normalization: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``, used by the
            ASPP, the decoder and the small encoder (ResNet50 and MobileNetV2 keep their
            batch normalization).
        dropout: dropout rate after the ASPP projection, in ``[0, 1)``.
        output_activation: ``None`` (logits), ``"softmax"`` or ``"sigmoid"``.
        name: model name; ``None`` for ``"deeplabv3plus_{backbone}"``.

    Returns:
        A functional ``keras.Model`` mapping ``(B, H, W, C)`` to
        ``(B, H, W, num_classes)``.

    Raises:
        ValueError: for any option outside its valid set or range, ImageNet weights with
            the small encoder, or a height or width that is not a multiple of
            ``output_stride``.

    Example:
        >>> model = build_deeplab((64, 64, 1), 3, backbone="small", output_stride=8)
        >>> model.output_shape
        (None, 64, 64, 3)
    """
    check_choice("backbone", backbone, BACKBONES)
    if backbone_weights not in BACKBONE_WEIGHTS[backbone]:
        raise ValueError(
            f"`backbone_weights` must be one of {list(BACKBONE_WEIGHTS[backbone])} for "
            f"backbone={backbone!r}. Received: backbone_weights={backbone_weights!r}"
        )
    check_choice("output_stride", output_stride, OUTPUT_STRIDES)
    if atrous_rates is None:
        atrous_rates = tuple(r * 16 // output_stride for r in DEFAULT_RATES[backbone])
    atrous_rates = _check_rates(atrous_rates)
    if aspp_filters is None:
        aspp_filters = DEFAULT_ASPP_FILTERS[backbone]
    _check_positive_int("aspp_filters", aspp_filters)
    if decoder_filters is None:
        decoder_filters = aspp_filters
    _check_positive_int("decoder_filters", decoder_filters)
    _check_positive_int("low_level_filters", low_level_filters)
    check_choice("image_pooling", image_pooling, (True, False))
    check_choice("normalization", normalization, NORMALIZATIONS)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    check_choice("output_activation", output_activation, ACTIVATIONS)
    if name is not None and not isinstance(name, str):
        raise ValueError(f"`name` must be None or a string. Received: name={name!r}")
    for size in input_shape[:2]:
        if size is not None and size % output_stride:
            raise ValueError(
                "`input_shape` height and width must be multiples of "
                f"output_stride={output_stride}. Received: input_shape={tuple(input_shape)!r}"
            )

    # Layers: backbone, ASPP on the deepest level, decoder fed by P2, head.
    inputs = keras.Input(shape=input_shape, name="image")
    levels = build_backbone(inputs, backbone, output_stride=output_stride,
                            normalization=normalization, weights=backbone_weights)
    deepest = levels[max(levels, key=lambda level: int(level[1:]))]
    x = aspp(deepest, aspp_filters, atrous_rates, image_pooling, normalization, dropout)
    x = decoder(x, levels["P2"], output_stride // 4, low_level_filters, decoder_filters,
                normalization)
    x = segmentation_head(x, num_classes, None)
    outputs = layers.UpSampling2D(4, interpolation="bilinear", dtype="float32",
                                  name="head_upsample")(x)
    if output_activation is not None:
        outputs = layers.Activation(output_activation, dtype="float32",
                                    name=f"head_{output_activation}")(outputs)
    return keras.Model(inputs, outputs, name=name or f"deeplabv3plus_{backbone}")
