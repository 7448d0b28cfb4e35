"""Model families and :func:`build`, the one way to construct them."""

from kerasseg.models.blocks import OUTPUT_ACTIVATIONS, output_activation
from kerasseg.models.build import build
from kerasseg.models.registry import (
    builder_options,
    list_models,
    register_model,
    spatial_dims,
    stride_per_axis,
    total_stride,
)

# Importing the family modules registers them: 2-D (deeplab, fcn, unet), 3-D (unet3d, vnet).
from kerasseg.models import deeplab, fcn, unet, unet3d, vnet  # noqa: F401,E402

__all__ = ["build", "list_models", "register_model", "builder_options", "total_stride",
           "stride_per_axis", "spatial_dims", "output_activation", "OUTPUT_ACTIVATIONS"]
