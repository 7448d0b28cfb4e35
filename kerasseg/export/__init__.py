"""Export for serving and the edge: SavedModel for TF Serving, TFLite, parity checks.

* :func:`saved_model` writes ``DIR/<version>/`` with the ``serving_default`` (float
  tensor) and ``serving_bytes`` (PNG/JPEG bytes) signatures, and for models trained on
  volumes ``serving_volume`` (a raw volume in, probabilities and labels out), plus
  ``models.config``, ``batching_parameters.txt`` and ``MODEL_CARD.md`` beside it;
* :func:`tflite` converts to a ``.tflite`` file (``"none"``, ``"float16"``, ``"dynamic"``
  or full-integer ``"int8"``);
* :func:`parity_report` compares a ``.tflite`` file with its Keras model through LiteRT;
* :func:`write_model_config` and :func:`write_batching_config` write TF Serving's
  configuration files for several models and versions.

The normalization dict that ``serving_bytes`` applies is documented in
:mod:`kerasseg.export.normalization`; clients are in :mod:`kerasseg.serving`.

Example:
    >>> import kerasseg
    >>> model = kerasseg.build("unet", input_shape=(128, 128, 1), num_classes=2)
    >>> kerasseg.export.saved_model(model, "exported/unet", version=1)
    'exported/unet/1'
    >>> kerasseg.export.tflite(model, "unet.tflite", quantize="float16")
    'unet.tflite'
"""

from kerasseg.export.normalization import NORMALIZATION_METHODS, normalization_spec
from kerasseg.export.parity import ParityReport, mask_dice, parity_report
from kerasseg.export.saved_model import read_export_metadata, saved_model
from kerasseg.export.serving_config import (
    ModelEntry,
    write_batching_config,
    write_model_config,
)
from kerasseg.export.signatures import (
    BYTES_INPUT,
    BYTES_SIGNATURE,
    TENSOR_INPUT,
    TENSOR_SIGNATURE,
)
from kerasseg.export.tflite import QUANTIZE_MODES, tflite
from kerasseg.export.volume import SPACING_INPUT, VOLUME_INPUT, VOLUME_SIGNATURE

__all__ = [
    "saved_model",
    "tflite",
    "parity_report",
    "ParityReport",
    "mask_dice",
    "read_export_metadata",
    "write_model_config",
    "write_batching_config",
    "ModelEntry",
    "normalization_spec",
    "NORMALIZATION_METHODS",
    "QUANTIZE_MODES",
    "TENSOR_SIGNATURE",
    "TENSOR_INPUT",
    "BYTES_SIGNATURE",
    "BYTES_INPUT",
    "VOLUME_SIGNATURE",
    "VOLUME_INPUT",
    "SPACING_INPUT",
]
