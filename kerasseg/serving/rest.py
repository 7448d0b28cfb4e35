"""REST client for a kerasseg model served by TF Serving (standard library only).

Requests follow TF Serving's documented REST API
(https://www.tensorflow.org/tfx/serving/api_rest):

* status: ``GET /v1/models/NAME[/versions/N | /labels/L]``;
* metadata: ``GET /v1/models/NAME[...]/metadata``;
* predict: ``POST /v1/models/NAME[...]:predict`` with a JSON body in row format,
  ``{"signature_name": ..., "instances": [{"image_bytes": {"b64": "..."}}, ...]}``.
  Binary values are base64 in an object with the key ``b64``; the response is
  ``{"predictions": [{"mask": ..., "image_size": ...}, ...]}`` (one object per instance
  when the signature has several outputs) and errors are ``{"error": "..."}``.

Example:
    >>> client = RestClient("localhost", 8501, model_name="unet")
    >>> client.status()["model_version_status"][0]["state"]  # doctest: +SKIP
    'AVAILABLE'
    >>> masks = client.predict_files(["case1.png", "case2.png"])  # doctest: +SKIP
"""

import base64
import json
import socket
import urllib.error
import urllib.request

import numpy as np

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


def bytes_request_body(encoded_images, signature_name=BYTES_SIGNATURE, input_name=BYTES_INPUT):
    """Build the ``:predict`` body for encoded images (row format, base64 values).

    Args:
        encoded_images: a list of PNG/JPEG file contents (``bytes``).
        signature_name: the signature to call.
        input_name: the signature's string input.

    Returns:
        ``{"signature_name": ..., "instances": [{input_name: {"b64": ...}}, ...]}``.

    Raises:
        ValueError: for an empty list or an element that is not PNG/JPEG bytes.

    Example:
        >>> bytes_request_body([b"\\x89PNG\\r\\n\\x1a\\n..."])["instances"][0].keys()
        dict_keys(['image_bytes'])
    """
    if isinstance(encoded_images, (bytes, bytearray)):
        encoded_images = [encoded_images]
    encoded_images = list(encoded_images)
    if not encoded_images:
        raise ValueError("`encoded_images` must hold at least one image. Received: []")
    instances = []
    for index, data in enumerate(encoded_images):
        check_encoded(data, name=f"encoded_images[{index}]")
        instances.append({input_name: {"b64": base64.b64encode(bytes(data)).decode("ascii")}})
    return {"signature_name": signature_name, "instances": instances}


def tensor_request_body(images, signature_name=TENSOR_SIGNATURE, input_name=TENSOR_INPUT):
    """Build the ``:predict`` body for float images (row format, nested lists).

    Args:
        images: float array ``(N, H, W, C)`` (or one ``(H, W, C)`` image), normalized as
            the model expects.
        signature_name: the signature to call.
        input_name: the signature's input.

    Returns:
        ``{"signature_name": ..., "instances": [{input_name: [[[...]]]}, ...]}``.

    Raises:
        ValueError: if ``images`` is not a numeric ``(N, H, W, C)`` array.

    Example:
        >>> tensor_request_body(np.zeros((1, 2, 2, 1)))["instances"][0]["image"]
        [[[0.0], [0.0]], [[0.0], [0.0]]]
    """
    images = check_images(images)
    return {
        "signature_name": signature_name,
        "instances": [{input_name: image.tolist()} for image in images],
    }


def parse_predictions(response):
    """Turn a row-format ``:predict`` response into arrays stacked over instances.

    Args:
        response: the decoded JSON, ``{"predictions": [...]}``.

    Returns:
        ``{output_name: array}`` for multi-output signatures, ``{"output": array}`` when
        the response has a single unnamed output.

    Raises:
        ServingError: if the response has no ``predictions``.

    Example:
        >>> parse_predictions({"predictions": [{"mask": [[0, 1]]}]})["mask"].shape
        (1, 1, 2)
    """
    if not isinstance(response, dict) or "predictions" not in response:
        raise ServingError(
            f"Unexpected TF Serving response (no 'predictions'): {str(response)[:500]}"
        )
    rows = response["predictions"]
    if rows and isinstance(rows[0], dict):
        return {key: np.asarray([row[key] for row in rows]) for key in rows[0]}
    return {"output": np.asarray(rows)}


class RestClient:
    """Call a model on TF Serving's REST port (8501 by default).

    Args:
        host: server host name or address.
        port: REST port.
        model_name: the served model's name.
        version: a version number to pin, or ``None`` for the latest served.
        label: a version label (``"stable"``) instead of a number.
        timeout: seconds to wait for each answer.
        scheme: ``"http"`` or ``"https"``.

    Raises:
        ValueError: for both ``version`` and ``label``, or a non-positive timeout.

    Example:
        >>> client = RestClient("localhost", 8501, model_name="unet", timeout=10)
        >>> out = client.predict(images)  # doctest: +SKIP
        >>> out["mask"].shape  # doctest: +SKIP
        (2, 256, 256)
    """

    def __init__(self, host="localhost", port=8501, model_name="model", version=None,
                 label=None, timeout=30.0, scheme="http"):
        if version is not None and label is not None:
            raise ValueError(
                f"Give `version` or `label`, not both. Received: version={version!r}, "
                f"label={label!r}"
            )
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"`timeout` must be a positive number. Received: timeout={timeout!r}")
        if scheme not in ("http", "https"):
            raise ValueError(
                f"`scheme` must be one of ['http', 'https']. Received: scheme={scheme!r}")
        self.host, self.port, self.model_name = host, int(port), model_name
        self.version, self.label, self.timeout, self.scheme = version, label, timeout, scheme

    @property
    def model_url(self):
        """``http://host:port/v1/models/NAME[/versions/N | /labels/L]``."""
        url = f"{self.scheme}://{self.host}:{self.port}/v1/models/{self.model_name}"
        if self.version is not None:
            url += f"/versions/{int(self.version)}"
        elif self.label is not None:
            url += f"/labels/{self.label}"
        return url

    def _request(self, method, url, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                text = answer.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            raw = error.read().decode("utf-8", errors="replace")
            try:
                message = json.loads(raw).get("error", raw)
            except (ValueError, AttributeError):
                message = raw
            raise ServingError(
                f"TF Serving answered HTTP {error.code} to {method} {url}: {message}",
                status=error.code, body=message, url=url,
            ) from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise ServingTimeoutError(
                    f"No answer from {url} within timeout={self.timeout} s.", url=url
                ) from None
            raise ServingConnectionError(
                f"Cannot connect to {url}: {reason}. Is TF Serving running with "
                f"--rest_api_port={self.port} and reachable from here?", url=url,
            ) from None
        except (socket.timeout, TimeoutError):
            raise ServingTimeoutError(
                f"No answer from {url} within timeout={self.timeout} s.", url=url
            ) from None
        except ConnectionError as error:
            raise ServingConnectionError(
                f"Connection to {url} failed: {error}.", url=url
            ) from None
        try:
            return json.loads(text)
        except ValueError:
            raise ServingError(
                f"TF Serving answered {method} {url} with text that is not JSON: {text[:200]!r}",
                url=url,
            ) from None

    def status(self):
        """Return the model's status (``GET /v1/models/NAME``), a dict with
        ``model_version_status``.

        Raises:
            ServingError: on an HTTP error (e.g. 404 for an unknown model).
            ServingConnectionError: if the server cannot be reached.
            ServingTimeoutError: if it does not answer in time.
        """
        return self._request("GET", self.model_url)

    def metadata(self):
        """Return the model's metadata (``GET .../metadata``): its signature defs.

        Raises:
            ServingError, ServingConnectionError, ServingTimeoutError: as :meth:`status`.
        """
        return self._request("GET", self.model_url + "/metadata")

    def predict_raw(self, body):
        """POST ``body`` to ``:predict`` and return the decoded JSON answer.

        Raises:
            ServingError, ServingConnectionError, ServingTimeoutError: as :meth:`status`.
        """
        return self._request("POST", self.model_url + ":predict", body)

    def predict(self, images, signature_name=TENSOR_SIGNATURE):
        """Segment float images with ``serving_default``.

        Args:
            images: float array ``(N, H, W, C)``, normalized as the model expects.
            signature_name: the tensor signature.

        Returns:
            ``{"probabilities": float32 (N, H, W, K), "mask": int32 (N, H, W)}``.

        Raises:
            ValueError: for a badly shaped ``images``.
            ServingError, ServingConnectionError, ServingTimeoutError: as :meth:`status`.
        """
        out = parse_predictions(self.predict_raw(tensor_request_body(images, signature_name)))
        return {
            key: value.astype(np.int32 if key == "mask" else np.float32)
            for key, value in out.items()
        }

    def predict_bytes(self, encoded_images, signature_name=BYTES_SIGNATURE):
        """Segment PNG/JPEG images with ``serving_bytes``; one mask per image.

        Args:
            encoded_images: a list of file contents (``bytes``).
            signature_name: the bytes signature.

        Returns:
            A list of int32 masks, each at its image's original ``(height, width)``.

        Raises:
            ValueError: for an element that is not PNG/JPEG bytes.
            ServingError, ServingConnectionError, ServingTimeoutError: as :meth:`status`.
        """
        out = parse_predictions(self.predict_raw(bytes_request_body(encoded_images,
                                                                    signature_name)))
        return crop_masks(out["mask"], out["image_size"])

    def predict_files(self, paths, signature_name=BYTES_SIGNATURE):
        """Read PNG/JPEG files and segment them with ``serving_bytes``.

        Args:
            paths: a path or a list of paths.
            signature_name: the bytes signature.

        Returns:
            A list of int32 masks at each image's size.

        Raises:
            FileNotFoundError: if a file is missing.
            ValueError, ServingError, ServingConnectionError, ServingTimeoutError: as
                :meth:`predict_bytes`.
        """
        return self.predict_bytes(read_encoded(paths), signature_name)
