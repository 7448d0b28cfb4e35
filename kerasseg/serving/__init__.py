"""Clients for kerasseg models served by TF Serving.

* :class:`RestClient` (standard library only): status, metadata and predict over REST;
* :class:`GrpcClient` (needs ``tensorflow-serving-api``, the ``serving`` extra): the same
  over gRPC with ``PredictRequest``;
* :class:`ServingError` and its subclasses :class:`ServingConnectionError` (server not
  reachable) and :class:`ServingTimeoutError` (no answer in time).

Both clients call the signatures written by :func:`kerasseg.export.saved_model`:
``serving_default`` (float images) and ``serving_bytes`` (PNG/JPEG files).

Example:
    >>> from kerasseg.serving import RestClient
    >>> client = RestClient("localhost", 8501, model_name="unet")
    >>> masks = client.predict_files(["a.png"])  # doctest: +SKIP
"""

import importlib

from kerasseg.serving._common import crop_masks
from kerasseg.serving.errors import ServingConnectionError, ServingError, ServingTimeoutError
from kerasseg.serving.rest import RestClient, bytes_request_body, tensor_request_body


def __getattr__(name):
    # The gRPC client needs tensorflow-serving-api; import it on first use only.
    if name in ("GrpcClient", "predict_request"):
        return getattr(importlib.import_module("kerasseg.serving.grpc"), name)
    raise AttributeError(f"module 'kerasseg.serving' has no attribute {name!r}")


__all__ = [
    "RestClient",
    "GrpcClient",
    "ServingError",
    "ServingConnectionError",
    "ServingTimeoutError",
    "bytes_request_body",
    "tensor_request_body",
    "predict_request",
    "crop_masks",
]
