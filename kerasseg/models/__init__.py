"""Model families and :func:`build`, the one way to construct them."""

from kerasseg.models.blocks import OUTPUT_ACTIVATIONS, output_activation
from kerasseg.models.build import build
from kerasseg.models.registry import builder_options, list_models, register_model, total_stride

# Importing the family modules registers them.
from kerasseg.models import deeplab, fcn, unet  # noqa: F401,E402

__all__ = ["build", "list_models", "register_model", "builder_options", "total_stride",
           "output_activation", "OUTPUT_ACTIVATIONS"]
