"""REST and gRPC clients against local stand-ins of TF Serving running the SavedModel."""

import base64
import json

import numpy as np
import pytest

from kerasseg.serving import (
    RestClient,
    ServingConnectionError,
    ServingError,
    ServingTimeoutError,
    bytes_request_body,
    crop_masks,
    tensor_request_body,
)
from kerasseg.serving.rest import parse_predictions
from tests.export.helpers import CROP, png, raw_crop, zscore
from tests.export.servers import RestServer, SessionServable, SilentServer, free_port, grpc_server

PNG_HEAD = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def servable(unet_export):
    servable = SessionServable(unet_export[1])
    yield servable
    servable.close()


@pytest.fixture(scope="module")
def rest(servable):
    with RestServer({"unet": servable}) as server:
        yield server


@pytest.fixture(scope="module")
def grpc_port(servable):
    server, port = grpc_server({"unet": servable})
    yield port
    server.stop(grace=None)


@pytest.fixture(scope="module")
def images():
    first, second = raw_crop(70, shape=(100, 80)), raw_crop(71, shape=(CROP, CROP))
    return first, second


# ---------------------------------------------------------------- request bodies


def test_bytes_body_is_tf_serving_row_format_with_b64():
    payload = PNG_HEAD + b"\x00\x01rest"
    body = bytes_request_body([payload, payload])
    assert body == {
        "signature_name": "serving_bytes",
        "instances": [{"image_bytes": {"b64": base64.b64encode(payload).decode("ascii")}}] * 2,
    }
    assert base64.b64decode(body["instances"][0]["image_bytes"]["b64"]) == payload
    json.dumps(body)  # serializable as is
    with pytest.raises(ValueError, match=r"encoded_images\[0\] is not a PNG or JPEG file"):
        bytes_request_body([b"GIF89a..."])
    with pytest.raises(ValueError, match="at least one image"):
        bytes_request_body([])


def test_tensor_body_and_response_parsing():
    body = tensor_request_body(np.array([[[[0.5], [1.0]], [[2.0], [-1.0]]]]))
    assert body == {"signature_name": "serving_default",
                    "instances": [{"image": [[[0.5], [1.0]], [[2.0], [-1.0]]]}]}
    with pytest.raises(ValueError, match=r"`images` must be a float array \(N, H, W, C\)"):
        tensor_request_body(np.zeros((2, 2)))
    parsed = parse_predictions({"predictions": [{"mask": [[0, 1]], "image_size": [1, 2]},
                                                {"mask": [[1, -1]], "image_size": [1, 1]}]})
    assert parsed["mask"].tolist() == [[[0, 1]], [[1, -1]]]
    assert [m.tolist() for m in crop_masks(parsed["mask"], parsed["image_size"])] == [
        [[0, 1]], [[1]]]
    with pytest.raises(ServingError, match="no 'predictions'"):
        parse_predictions({"outputs": []})


# ------------------------------------------------------------------------- REST


def test_rest_status_and_metadata(rest):
    client = RestClient("127.0.0.1", rest.port, model_name="unet", timeout=30)
    status = client.status()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    signatures = client.metadata()["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "serving_bytes"}
    assert set(signatures["serving_bytes"]["inputs"]) == {"image_bytes"}


def test_rest_predict_files_and_tensors(rest, servable, images, tmp_path):
    paths = []
    for index, image in enumerate(images):
        path = tmp_path / f"{index}.png"
        path.write_bytes(png(image))
        paths.append(path)
    client = RestClient("127.0.0.1", rest.port, model_name="unet", version=1, timeout=60)
    masks = client.predict_files(paths)
    assert [m.shape for m in masks] == [(100, 80), (CROP, CROP)]
    for mask, image in zip(masks, images):
        direct = servable.run("serving_bytes", {"image_bytes": np.array([png(image)], object)})
        np.testing.assert_array_equal(mask, direct["mask"][0])
    assert rest.bodies[-1]["signature_name"] == "serving_bytes"
    assert "/v1/models/unet/versions/1:predict" in rest.httpd.requests[-1]

    x = zscore(images[1])[None]
    out = client.predict(x)
    direct = servable.run("serving_default", {"image": x})
    np.testing.assert_array_equal(out["mask"], direct["mask"])
    np.testing.assert_allclose(out["probabilities"], direct["probabilities"], atol=1e-6)


def test_rest_errors_are_clear(rest, images):
    client = RestClient("127.0.0.1", rest.port, model_name="nomodel", timeout=30)
    with pytest.raises(ServingError) as info:
        client.status()
    assert info.value.status == 404
    assert "HTTP 404" in str(info.value) and "Servable not found" in str(info.value)

    client = RestClient("127.0.0.1", rest.port, model_name="unet", timeout=30)
    rgb = png(raw_crop(72, channels=3))
    with pytest.raises(ServingError) as info:
        client.predict_bytes([rgb])
    assert info.value.status == 400
    assert "the model takes images with 1 channel(s)" in str(info.value)

    with pytest.raises(FileNotFoundError, match="missing.png"):
        client.predict_files(["missing.png"])

    refused = RestClient("127.0.0.1", free_port(), model_name="unet", timeout=5)
    with pytest.raises(ServingConnectionError, match="Connection refused") as info:
        refused.status()
    assert isinstance(info.value, ConnectionError)

    with SilentServer() as silent:
        slow = RestClient("127.0.0.1", silent.port, model_name="unet", timeout=0.5)
        with pytest.raises(ServingTimeoutError, match=r"within timeout=0\.5 s") as info:
            slow.status()
        assert isinstance(info.value, TimeoutError)


# ------------------------------------------------------------------------- gRPC


def test_grpc_round_trip(grpc_port, servable, images):
    from kerasseg.serving import GrpcClient

    with GrpcClient("127.0.0.1", grpc_port, model_name="unet", timeout=60) as client:
        masks = client.predict_bytes([png(image) for image in images])
        both = servable.run("serving_bytes",
                            {"image_bytes": np.array([png(image) for image in images], object)})
        np.testing.assert_array_equal(masks[0], both["mask"][0])
        np.testing.assert_array_equal(masks[1], both["mask"][1, :CROP, :CROP])

        x = zscore(images[1])[None]
        out = client.predict(x)
        direct = servable.run("serving_default", {"image": x})
        assert out["mask"].dtype == np.int32
        np.testing.assert_array_equal(out["mask"], direct["mask"])
        np.testing.assert_array_equal(out["probabilities"], direct["probabilities"])

        signatures = client.metadata().signature_def
        assert set(signatures) == {"serving_default", "serving_bytes"}
        assert signatures["serving_default"].inputs["image"].dtype == 1  # DT_FLOAT


def test_grpc_errors_are_clear(grpc_port):
    from kerasseg.serving import GrpcClient

    with GrpcClient("127.0.0.1", grpc_port, model_name="unet", timeout=30) as client:
        with pytest.raises(ServingError) as info:
            client.predict(np.zeros((1, CROP, CROP, 3), np.float32))
        assert info.value.status == "INVALID_ARGUMENT"
        assert "is not compatible with expected shape [?,64,64,1]" in str(info.value)
        with pytest.raises(ServingError, match='Serving signature key "nope" not found'):
            client.predict(np.zeros((1, CROP, CROP, 1), np.float32), signature_name="nope")
    with GrpcClient("127.0.0.1", grpc_port, model_name="other", timeout=30) as client:
        with pytest.raises(ServingError, match="NOT_FOUND"):
            client.predict(np.zeros((1, CROP, CROP, 1), np.float32))
    with GrpcClient("127.0.0.1", free_port(), model_name="unet", timeout=5) as client:
        with pytest.raises(ServingConnectionError, match="Cannot reach TF Serving"):
            client.predict(np.zeros((1, CROP, CROP, 1), np.float32))
    with SilentServer() as silent:
        with GrpcClient("127.0.0.1", silent.port, model_name="unet", timeout=0.5) as client:
            with pytest.raises(ServingTimeoutError, match=r"within timeout=0\.5 s") as info:
                client.predict(np.zeros((1, CROP, CROP, 1), np.float32))
            assert info.value.status == "DEADLINE_EXCEEDED"


# ------------------------------------------------------ the deployment folder export/


def _load_script(name):
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "export", "clients", name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_clients_round_trip(rest, grpc_port, servable, images, tmp_path):
    import tensorflow as tf

    paths = []
    for index, image in enumerate(images):
        path = tmp_path / f"slice{index}.png"
        path.write_bytes(png(image))
        paths.append(str(path))
    expected = [servable.run("serving_bytes", {"image_bytes": np.array([png(i)], object)})
                ["mask"][0] for i in images]

    rest_script = _load_script("rest_predict.py")
    masks = rest_script.predict(f"127.0.0.1:{rest.port}", "unet", paths, version=1)
    for mask, want in zip(masks, expected):
        np.testing.assert_array_equal(np.array(mask), want)
    rest_script.write_png(tmp_path / "m.png", masks[0])
    decoded = tf.io.decode_png(tf.io.read_file(str(tmp_path / "m.png"))).numpy()[..., 0]
    np.testing.assert_array_equal(decoded, expected[0])

    grpc_script = _load_script("grpc_predict.py")
    masks = grpc_script.predict(f"127.0.0.1:{grpc_port}", "unet", paths)
    for mask, want in zip(masks, expected):
        np.testing.assert_array_equal(mask, want)


def test_config_templates_parse():
    import os

    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    folder = os.path.join(os.path.dirname(__file__), "..", "..", "export")
    with open(os.path.join(folder, "models.config")) as handle:
        config = text_format.Parse(handle.read(), model_server_config_pb2.ModelServerConfig())
    names = [c.name for c in config.model_config_list.config]
    assert names == ["unet", "fcn8s"]
    assert dict(config.model_config_list.config[0].version_labels) == {"stable": 1, "canary": 2}
    with open(os.path.join(folder, "batching_parameters.txt")) as handle:
        lines = [line for line in handle.read().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "max_batch_size { value: 16 }"
    with open(os.path.join(folder, "README.md")) as handle:
        guide = handle.read()
    for flag in ("-p 8500:8500 -p 8501:8501", "--model_config_file=/models/models.config",
                 "--enable_batching", "--batching_parameters_file=/models/batching_parameters.txt",
                 "/v1/models/unet/metadata", '"b64"'):
        assert flag in guide
