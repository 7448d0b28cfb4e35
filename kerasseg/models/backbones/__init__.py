"""Encoders that return named pyramid levels, for the DeepLab family.

A backbone maps an image tensor to a dict ``{"P1": ..., "P2": ..., ...}`` where level
``"P{k}"`` has stride ``2**k``; levels beyond the requested output stride are computed
with dilated convolutions and keep that stride. Decoders take skip features from this
dict by level name, never by layer index.

* ``"small"`` (:mod:`.small`): a residual encoder of about 1.2 M parameters for
  single-channel medical images trained from scratch; levels ``"P1"`` .. ``"P4"``.
* ``"resnet50"``, ``"mobilenetv2"`` (:mod:`.applications`): the ``keras.applications``
  networks, dilated; levels ``"P1"`` .. ``"P5"``; optional ImageNet weights.
"""

from kerasseg.models.backbones.applications import (
    APPLICATION_LEVELS,
    MOBILENETV2_LEVELS,
    RESNET50_LEVELS,
    adapt_input_kernel,
    applications_model,
    dilated_application,
    dilation_plan,
    transfer_weights,
)
from kerasseg.models.backbones.small import SMALL_FILTERS, small_encoder
from kerasseg.models.blocks import check_choice

BACKBONES = ("small", "resnet50", "mobilenetv2")
BACKBONE_WEIGHTS = {"small": (None,), "resnet50": (None, "imagenet"),
                    "mobilenetv2": (None, "imagenet")}


def build_backbone(inputs, backbone="small", *, output_stride=16, normalization="batch",
                   weights=None):
    """Apply a backbone to ``inputs`` and return its pyramid levels.

    Args:
        inputs: a ``keras.Input`` ``(B, H, W, C)`` with any channel count.
        backbone: ``"small"``, ``"resnet50"`` or ``"mobilenetv2"``.
        output_stride: 8 or 16, the stride of the deepest level.
        normalization: normalization of the small encoder (``"batch"``, ``"group"``,
            ``"instance"`` or ``"none"``); ResNet50 and MobileNetV2 keep their batch
            normalization so that ImageNet weights apply.
        weights: ``None``, or ``"imagenet"`` for ResNet50 and MobileNetV2.

    Returns:
        A dict of feature tensors keyed ``"P1"`` .. ``"P4"`` (small) or ``"P5"``.

    Raises:
        ValueError: for an unknown backbone, output stride, normalization, or weights the
            backbone does not have.

    Example:
        >>> import keras
        >>> levels = build_backbone(keras.Input((64, 64, 1)), "small", output_stride=16)
        >>> tuple(levels["P4"].shape)
        (None, 4, 4, 256)
    """
    check_choice("backbone", backbone, BACKBONES)
    if weights not in BACKBONE_WEIGHTS[backbone]:
        raise ValueError(
            f"`backbone_weights` must be one of {list(BACKBONE_WEIGHTS[backbone])} for "
            f"backbone={backbone!r}. Received: backbone_weights={weights!r}"
        )
    if backbone == "small":
        return small_encoder(inputs, output_stride=output_stride, normalization=normalization)
    return dilated_application(inputs, backbone, output_stride=output_stride, weights=weights)


__all__ = [
    "APPLICATION_LEVELS",
    "BACKBONES",
    "BACKBONE_WEIGHTS",
    "MOBILENETV2_LEVELS",
    "RESNET50_LEVELS",
    "SMALL_FILTERS",
    "adapt_input_kernel",
    "applications_model",
    "build_backbone",
    "dilated_application",
    "dilation_plan",
    "small_encoder",
    "transfer_weights",
]
