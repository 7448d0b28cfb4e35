"""ResNet50 and MobileNetV2 from ``keras.applications`` as dilated feature extractors.

``keras.applications`` builds these networks at output stride 32 only. To reach output
stride 16 or 8 (DeepLab, Chen et al. 2017/2018), the stride of the last stage(s) is
removed and the convolutions after it are dilated, so the receptive field stays that of
the strided network. This is done by cloning the ``keras.applications`` graph with
``keras.models.clone_model`` and a clone function that rewrites the ``strides``,
``dilation_rate`` and padding of the layers named in a per-network plan. The clone keeps
every layer name, so:

* pyramid levels are taken by the layer names in :data:`RESNET50_LEVELS` and
  :data:`MOBILENETV2_LEVELS` (names written by ``keras.applications`` itself, such as
  ``"conv4_block6_out"`` or ``"block_12_add"``, not generated counters);
* ImageNet weights are copied layer by layer, by name, from the ``keras.applications``
  model built with ``weights="imagenet"`` (:func:`transfer_weights`). Removing a stride or
  adding dilation does not change any weight shape.

Which layers change, for a stage whose stride is removed and whose rate becomes ``r``
(the rate before it being ``r / 2``):

* ResNet50 puts the stride on the first block's 1x1 convolutions (``_0_conv`` shortcut
  and ``_1_conv``); they get stride 1, and every 3x3 ``_2_conv`` of the stage, all of
  which come after that stride, gets rate ``r``.
* MobileNetV2 puts the stride on the first block's 3x3 depthwise convolution; it gets
  stride 1 and keeps the rate ``r / 2`` in force before it, with its explicit zero
  padding widened to that rate; the depthwise convolutions of the later blocks get
  rate ``r``.

With this plan, the dilated features sampled every ``2**k`` pixels equal the features of
the strided network exactly (offset 0 for ResNet50, whose strided 1x1 convolutions sample
even positions; offset ``2**k - 1`` for MobileNetV2, whose padded strided 3x3 convolutions
are centred on odd positions). The tests check this.

Any input channel count is accepted. With ImageNet weights and a channel count other
than 3, the first convolution's kernel is adapted by :func:`adapt_input_kernel`: summed
over the RGB inputs and spread evenly over the new channels, so that an image whose
channels are all equal gives the features the RGB network gives for the grey image.
"""

import warnings

import numpy as np
import keras

from kerasseg.models.blocks import check_choice

RESNET50_LEVELS = {
    "P1": "conv1_relu",
    "P2": "conv2_block3_out",
    "P3": "conv3_block4_out",
    "P4": "conv4_block6_out",
    "P5": "conv5_block3_out",
}
"""ResNet50 layer whose output is each pyramid level (``"P{k}"`` at stride ``2**k``)."""

MOBILENETV2_LEVELS = {
    "P1": "expanded_conv_project_BN",
    "P2": "block_2_add",
    "P3": "block_5_add",
    "P4": "block_12_add",
    "P5": "block_16_project_BN",
}
"""MobileNetV2 layer whose output is each pyramid level. ``"P5"`` is the last inverted
residual block (320 channels), as in DeepLab's MobileNetV2 variant; the final 1x1
convolution to 1280 channels, a classifier feature, is not used."""

APPLICATION_LEVELS = {"resnet50": RESNET50_LEVELS, "mobilenetv2": MOBILENETV2_LEVELS}
APPLICATION_WEIGHTS = (None, "imagenet")
OUTPUT_STRIDES = (8, 16)

# Stages that can be dilated, by the level they produce.
_RESNET50_STAGES = {"P4": ("conv4", 6), "P5": ("conv5", 3)}
_MOBILENETV2_STAGES = {"P4": range(6, 13), "P5": range(13, 17)}


def _stage_rates(output_stride):
    """Dilation rate of each stage beyond ``output_stride``: {"P4": r4, "P5": r5}."""
    return {level: max(1, 2 ** int(level[1:]) // output_stride) for level in ("P4", "P5")}


def dilation_plan(backbone, output_stride):
    """Return the layer config changes that bring a network to ``output_stride``.

    Args:
        backbone: ``"resnet50"`` or ``"mobilenetv2"``.
        output_stride: 8 or 16.

    Returns:
        A dict ``{layer_name: {config_key: new_value}}``.

    Raises:
        ValueError: for an unknown backbone or output stride.

    Example:
        >>> dilation_plan("resnet50", 16)["conv5_block2_2_conv"]
        {'dilation_rate': (2, 2)}
    """
    check_choice("backbone", backbone, tuple(APPLICATION_LEVELS))
    check_choice("output_stride", output_stride, OUTPUT_STRIDES)
    plan = {}
    for level, rate in _stage_rates(output_stride).items():
        if rate == 1:
            continue
        if backbone == "resnet50":
            stage, blocks = _RESNET50_STAGES[level]
            for conv in ("0", "1"):
                plan[f"{stage}_block1_{conv}_conv"] = {"strides": (1, 1)}
            for block in range(1, blocks + 1):
                plan[f"{stage}_block{block}_2_conv"] = {"dilation_rate": (rate, rate)}
        else:
            first, *rest = _MOBILENETV2_STAGES[level]
            before = rate // 2
            plan[f"block_{first}_pad"] = {"padding": ((before, before), (before, before))}
            plan[f"block_{first}_depthwise"] = {
                "strides": (1, 1), "dilation_rate": (before, before),
            }
            for block in rest:
                plan[f"block_{block}_depthwise"] = {"dilation_rate": (rate, rate)}
    return plan


def applications_model(backbone, channels=3, weights=None):
    """Build the ``keras.applications`` network (without its classifier).

    Args:
        backbone: ``"resnet50"`` or ``"mobilenetv2"``.
        channels: input channel count (3 when ``weights="imagenet"``).
        weights: ``None`` or ``"imagenet"`` (downloaded by ``keras.utils.get_file`` and
            cached under ``~/.keras/models``).

    Returns:
        The ``keras.Model`` at output stride 32, input ``(None, None, channels)``
        (``(224, 224, 3)`` for ImageNet weights, where the input size only picks the
        weights file).

    Raises:
        ValueError: for an unknown backbone or weights, or ImageNet weights with a
            channel count other than 3.

    Example:
        >>> model = applications_model("mobilenetv2", channels=1)
        >>> model.get_layer("block_12_add").output.shape
        (None, None, None, 96)
    """
    check_choice("backbone", backbone, tuple(APPLICATION_LEVELS))
    check_choice("backbone_weights", weights, APPLICATION_WEIGHTS)
    if weights == "imagenet" and channels != 3:
        raise ValueError(
            "ImageNet weights need a 3-channel network; build it with 3 channels and "
            f"adapt it with `transfer_weights`. Received: channels={channels!r}"
        )
    input_shape = (224, 224, 3) if weights == "imagenet" else (None, None, channels)
    constructor = {
        "resnet50": keras.applications.ResNet50,
        "mobilenetv2": keras.applications.MobileNetV2,
    }[backbone]
    with warnings.catch_warnings():
        # keras.applications warns for channel counts other than 1 and 3, which are
        # supported here on purpose.
        warnings.filterwarnings("ignore", message="This model usually expects")
        return constructor(include_top=False, weights=weights, input_shape=input_shape)


def adapt_input_kernel(kernel, channels):
    """Adapt a first-layer kernel trained on RGB to ``channels`` input channels.

    The kernel is summed over its input channels and spread evenly over ``channels``
    copies: an image whose channels all equal a grey image then gives the output the
    original kernel gives for the grey image repeated as RGB.

    Args:
        kernel: array ``(kh, kw, in_channels, filters)``.
        channels: the new input channel count.

    Returns:
        A float array ``(kh, kw, channels, filters)``.

    Raises:
        ValueError: if ``kernel`` is not 4-D or ``channels`` is not a positive int.

    Example:
        >>> adapt_input_kernel(np.ones((1, 1, 3, 2)), 1)[0, 0]
        array([[3., 3.]])
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"`kernel` must be 4-D. Received: kernel.shape={kernel.shape}")
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"`channels` must be a positive int. Received: channels={channels!r}")
    summed = kernel.sum(axis=2, keepdims=True) / channels
    return np.repeat(summed, channels, axis=2).astype(kernel.dtype)


def _matched_weights(name, source_values, target_values):
    values = []
    for src, dst in zip(source_values, target_values):
        if src.shape == dst.shape:
            values.append(src)
        elif src.ndim == 4 and src.shape[:2] + src.shape[3:] == dst.shape[:2] + dst.shape[3:]:
            values.append(adapt_input_kernel(src, int(dst.shape[2])))
        else:
            raise ValueError(
                f"Layer {name!r}: weight shape {tuple(dst.shape)} of the target does not "
                f"match shape {tuple(src.shape)} of the source."
            )
    return values


def transfer_weights(source, target):
    """Copy weights from ``source`` into the layers of ``target`` with the same name.

    Every layer of ``target`` that has weights and whose name is a layer of ``source``
    gets the source's weights. A convolution kernel that differs only in its input
    channels (the first convolution of a network built for another channel count) is
    adapted with :func:`adapt_input_kernel`. Layers of ``target`` without a namesake in
    ``source`` (a segmentation head, say) are left as they are.

    Args:
        source: a ``keras.Model``, typically from :func:`applications_model`.
        target: a ``keras.Model`` containing layers with the same names, such as a
            DeepLab model with that backbone.

    Returns:
        The sorted names of the layers whose weights were copied.

    Raises:
        ValueError: if a namesake layer has a different number of weights or an
            incompatible weight shape.

    Example:
        >>> source = applications_model("mobilenetv2", channels=3)
        >>> target = kerasseg.build("deeplab", input_shape=(64, 64, 1),
        ...                         backbone="mobilenetv2")
        >>> copied = transfer_weights(source, target)
        >>> "Conv1" in copied  # the ImageNet stem, its first convolution
        True
    """
    sources = {layer.name: layer for layer in source.layers if layer.weights}
    copied = []
    for layer in target.layers:
        src = sources.get(layer.name)
        if src is None or not layer.weights:
            continue
        source_values = src.get_weights()
        target_values = layer.get_weights()
        if len(source_values) != len(target_values):
            raise ValueError(
                f"Layer {layer.name!r} has {len(target_values)} weights in the target and "
                f"{len(source_values)} in the source."
            )
        layer.set_weights(_matched_weights(layer.name, source_values, target_values))
        copied.append(layer.name)
    return sorted(copied)


def dilated_application(inputs, backbone, *, output_stride=16, weights=None):
    """Apply ResNet50 or MobileNetV2 at ``output_stride`` to ``inputs``.

    Args:
        inputs: a ``keras.Input`` ``(B, H, W, C)``, any channel count; height and width
            ``None`` or multiples of ``output_stride``.
        backbone: ``"resnet50"`` or ``"mobilenetv2"``.
        output_stride: 16 (the last stage dilated with rate 2) or 8 (the last two
            stages, rates 2 and 4).
        weights: ``None`` (random initialization) or ``"imagenet"`` (downloaded; adapted
            to ``C`` channels when ``C != 3``).

    Returns:
        A dict ``{"P1": ..., "P5": ...}`` of feature tensors; ``"P{k}"`` has stride
        ``min(2**k, output_stride)``. The layers keep their ``keras.applications`` names.

    Raises:
        ValueError: for an unknown backbone, output stride or weights.
        RuntimeError: if the ``keras.applications`` network lacks a layer the plan names.

    Example:
        >>> levels = dilated_application(keras.Input((64, 64, 1)), "resnet50",
        ...                              output_stride=8)
        >>> tuple(levels["P5"].shape)
        (None, 8, 8, 2048)
    """
    check_choice("backbone", backbone, tuple(APPLICATION_LEVELS))
    check_choice("output_stride", output_stride, OUTPUT_STRIDES)
    check_choice("backbone_weights", weights, APPLICATION_WEIGHTS)
    levels = APPLICATION_LEVELS[backbone]
    plan = dilation_plan(backbone, output_stride)

    base = applications_model(backbone, channels=int(inputs.shape[-1]))
    truncated = keras.Model(base.input, [base.get_layer(levels[k]).output for k in levels])
    changed = set()

    def clone_layer(layer):
        config = layer.get_config()
        if layer.name in plan:
            config.update(plan[layer.name])
            changed.add(layer.name)
        return layer.__class__.from_config(config)

    dilated = keras.models.clone_model(truncated, input_tensors=inputs,
                                       clone_function=clone_layer)
    missing = sorted(set(plan) - changed)
    if missing:
        raise RuntimeError(f"keras.applications {backbone} has no layers named {missing}.")

    if weights == "imagenet":
        source = applications_model(backbone, channels=3, weights="imagenet")
        copied = set(transfer_weights(source, dilated))
        uncopied = sorted(layer.name for layer in dilated.layers
                          if layer.weights and layer.name not in copied)
        if uncopied:
            raise RuntimeError(f"No ImageNet weights found for layers {uncopied}.")
    return dict(zip(levels, dilated.outputs))
