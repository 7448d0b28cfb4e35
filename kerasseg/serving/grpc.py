"""gRPC client for a kerasseg model served by TF Serving (port 8500 by default).

Uses the official protos of ``tensorflow-serving-api`` (``pip install
"kerasseg[serving]"``): a ``PredictRequest`` whose ``model_spec`` names the model,
optionally a version or label, and the signature, and whose ``inputs`` map input names
to ``TensorProto`` values; the answer's ``outputs`` map output names to tensors.

Example:
    >>> with GrpcClient("localhost", 8500, model_name="unet") as client:
    ...     masks = client.predict_files(["case1.png"])  # doctest: +SKIP
"""

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from kerasseg.serving._common import (
    BYTES_INPUT,
    BYTES_SIGNATURE,
    TENSOR_INPUT,
    TENSOR_SIGNATURE,
    check_encoded,
    check_images,
    crop_masks,
    read_encoded,
)
from kerasseg.serving.errors import ServingConnectionError, ServingError, ServingTimeoutError

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def predict_request(model_name, inputs, signature_name=TENSOR_SIGNATURE, version=None,
                    label=None, output_filter=None):
    """Build a ``PredictRequest``.

    Args:
        model_name: the served model's name.
        inputs: ``{input_name: array}``; arrays become ``TensorProto`` values (a list of
            ``bytes`` becomes a 1-D string tensor).
        signature_name: the signature to call.
        version: a version number to pin, or ``None``.
        label: a version label, or ``None``.
        output_filter: optional list of output names to return.

    Returns:
        A ``tensorflow_serving.apis.predict_pb2.PredictRequest``.

    Example:
        >>> png = b"\\x89PNG\\r\\n\\x1a\\n..."  # the bytes of a PNG file
        >>> request = predict_request("unet", {"image_bytes": [png]}, "serving_bytes")
        >>> request.model_spec.signature_name
        'serving_bytes'
        >>> request.inputs["image_bytes"].string_val == [png]
        True
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    elif label is not None:
        request.model_spec.version_label = label
    for name, value in inputs.items():
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], (bytes, bytearray)):
            proto = tf.make_tensor_proto([bytes(v) for v in value], dtype=tf.string,
                                         shape=[len(value)])
        else:
            proto = tf.make_tensor_proto(np.asarray(value))
        request.inputs[name].CopyFrom(proto)
    for name in output_filter or ():
        request.output_filter.append(name)
    return request


class GrpcClient:
    """Call a model on TF Serving's gRPC port.

    Args:
        host: server host name or address.
        port: gRPC port.
        model_name: the served model's name.
        version: a version number to pin, or ``None`` for the latest served.
        label: a version label instead of a number.
        timeout: seconds to wait for each answer (the call's deadline).
        max_message_bytes: largest message sent or received (probabilities of large
            images exceed gRPC's 4 MiB default).

    Raises:
        ValueError: for both ``version`` and ``label``, or a non-positive timeout.

    Example:
        >>> client = GrpcClient("localhost", 8500, model_name="unet", timeout=10)
        >>> client.predict(images)["mask"].shape  # doctest: +SKIP
        (2, 256, 256)
        >>> client.close()
    """

    def __init__(self, host="localhost", port=8500, model_name="model", version=None,
                 label=None, timeout=30.0, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
        if version is not None and label is not None:
            raise ValueError(
                f"Give `version` or `label`, not both. Received: version={version!r}, "
                f"label={label!r}"
            )
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"`timeout` must be a positive number. Received: timeout={timeout!r}")
        self.address = f"{host}:{int(port)}"
        self.model_name, self.version, self.label = model_name, version, label
        self.timeout = timeout
        self._channel = grpc.insecure_channel(self.address, options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def close(self):
        """Close the channel."""
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request, what):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code = error.code()
            details = error.details()
            if code == grpc.StatusCode.UNAVAILABLE:
                raise ServingConnectionError(
                    f"Cannot reach TF Serving at {self.address} ({details}). Is it running "
                    "with --port for gRPC and reachable from here?",
                    status=code.name, body=details, url=self.address,
                ) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ServingTimeoutError(
                    f"No answer from {self.address} to {what} within timeout={self.timeout} s.",
                    status=code.name, body=details, url=self.address,
                ) from None
            raise ServingError(
                f"TF Serving at {self.address} answered {code.name} to {what} for model "
                f"{self.model_name!r}: {details}",
                status=code.name, body=details, url=self.address,
            ) from None

    def predict_raw(self, inputs, signature_name=TENSOR_SIGNATURE, output_filter=None):
        """Send ``inputs`` to a signature and return ``{output_name: array}``.

        Raises:
            ServingError: for an error answer (the server's message is included).
            ServingConnectionError: if the server cannot be reached.
            ServingTimeoutError: if it does not answer within the timeout.
        """
        request = predict_request(self.model_name, inputs, signature_name, self.version,
                                  self.label, output_filter)
        response = self._call(self._stub.Predict, request, f"Predict({signature_name})")
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def predict(self, images, signature_name=TENSOR_SIGNATURE):
        """Segment float images with ``serving_default``.

        Args:
            images: float array ``(N, H, W, C)``, normalized as the model expects.
            signature_name: the tensor signature.

        Returns:
            ``{"probabilities": float32 (N, H, W, K), "mask": int32 (N, H, W)}``.

        Raises:
            ValueError: for a badly shaped ``images``.
            ServingError, ServingConnectionError, ServingTimeoutError: as :meth:`predict_raw`.
        """
        return self.predict_raw({TENSOR_INPUT: check_images(images)}, signature_name)

    def predict_bytes(self, encoded_images, signature_name=BYTES_SIGNATURE):
        """Segment PNG/JPEG images with ``serving_bytes``; one mask per image.

        Args:
            encoded_images: a list of file contents (``bytes``).
            signature_name: the bytes signature.

        Returns:
            A list of int32 masks, each at its image's original ``(height, width)``.

        Raises:
            ValueError: for an empty list or an element that is not PNG/JPEG bytes.
            ServingError, ServingConnectionError, ServingTimeoutError: as :meth:`predict_raw`.
        """
        if isinstance(encoded_images, (bytes, bytearray)):
            encoded_images = [encoded_images]
        encoded_images = list(encoded_images)
        if not encoded_images:
            raise ValueError("`encoded_images` must hold at least one image. Received: []")
        for index, data in enumerate(encoded_images):
            check_encoded(data, name=f"encoded_images[{index}]")
        out = self.predict_raw({BYTES_INPUT: encoded_images}, signature_name)
        return crop_masks(out["mask"], out["image_size"])

    def predict_files(self, paths, signature_name=BYTES_SIGNATURE):
        """Read PNG/JPEG files and segment them with ``serving_bytes``.

        Raises:
            FileNotFoundError: if a file is missing.
            ValueError, ServingError, ServingConnectionError, ServingTimeoutError: as
                :meth:`predict_bytes`.
        """
        return self.predict_bytes(read_encoded(paths), signature_name)

    def metadata(self):
        """Return the model's signature defs (``GetModelMetadata``) as a
        ``SignatureDefMap`` proto (``.signature_def[name].inputs`` / ``.outputs``).

        Raises:
            ServingError, ServingConnectionError, ServingTimeoutError: as :meth:`predict_raw`.
        """
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = self.model_name
        if self.version is not None:
            request.model_spec.version.value = int(self.version)
        elif self.label is not None:
            request.model_spec.version_label = self.label
        request.metadata_field.append("signature_def")
        response = self._call(self._stub.GetModelMetadata, request, "GetModelMetadata")
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return signature_map
