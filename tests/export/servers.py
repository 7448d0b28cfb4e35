"""Stand-ins for tensorflow_model_server, for tests on 127.0.0.1.

The ``tensorflow_model_server`` binary is not installed here, so these servers reproduce
what it does with a SavedModel: load it into a TF1 session, look the signature up in the
MetaGraph, feed the request's tensors to the signature's input tensor names *without*
checking them against the declared shapes (as the C++ server does), and fetch the output
tensors by name. The REST server speaks the documented JSON format (row format,
``{"b64": ...}`` for binary values, ``{"error": ...}`` on failure); the gRPC server is a
``PredictionServiceServicer`` from ``tensorflow_serving.apis``.
"""

import base64
import json
import socket
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import tensorflow as tf


class SessionServable:
    """A SavedModel version loaded the way TF Serving loads it."""

    def __init__(self, version_dir, version=1):
        self.version = version
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.session = tf.compat.v1.Session(graph=self.graph)
            self.meta_graph = tf.compat.v1.saved_model.loader.load(
                self.session, ["serve"], str(version_dir)
            )
        self.lock = threading.Lock()

    def signature(self, name):
        name = name or "serving_default"
        if name not in self.meta_graph.signature_def:
            raise KeyError(f'Serving signature key "{name}" not found.')
        return self.meta_graph.signature_def[name]

    def run(self, signature_name, inputs):
        """Run a signature on ``{input_name: array}``; return ``{output_name: array}``.

        Raises:
            KeyError: unknown signature.
            ValueError: input names that do not match the signature.
            tf.errors.OpError: what the graph raises.
        """
        signature = self.signature(signature_name)
        if set(inputs) != set(signature.inputs):
            raise ValueError(
                f"input size does not match signature: {sorted(inputs)} != "
                f"{sorted(signature.inputs)}"
            )
        names = sorted(signature.outputs)
        feeds = {
            self.graph.get_tensor_by_name(signature.inputs[key].name)._as_tf_output(): value
            for key, value in inputs.items()
        }
        fetches = [
            self.graph.get_tensor_by_name(signature.outputs[key].name)._as_tf_output()
            for key in names
        ]
        with self.lock:
            # The raw session call, like TF Serving's Session::Run: no client-side shape
            # or dtype conversion of the fed arrays.
            values = self.session._call_tf_sessionrun(None, feeds, fetches, [], None)
        return dict(zip(names, values))

    def input_dtype(self, signature_name, input_name):
        dtype = self.signature(signature_name).inputs[input_name].dtype
        return tf.dtypes.as_dtype(dtype).as_numpy_dtype

    def close(self):
        self.session.close()


def _decode_json_value(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_json_value(v) for v in value]
    return value


def _to_array(values, dtype):
    if dtype == object:
        return np.array(values, dtype=object)
    return np.asarray(values, dtype=dtype)


class _RestHandler(BaseHTTPRequestHandler):
    server_version = "FakeTFServing/1.0"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, code, payload):
        body = json.dumps(payload).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _model(self, path):
        prefix = "/v1/models/"
        if not path.startswith(prefix):
            return None, None, None
        rest = path[len(prefix):]
        verb = None
        if ":" in rest:
            rest, verb = rest.split(":", 1)
        parts = rest.split("/")
        name, extra = parts[0], parts[1:]
        version = None
        if len(extra) >= 2 and extra[0] == "versions":
            version, extra = extra[1], extra[2:]
        servable = self.server.models.get(name)
        if servable is None or (version is not None and str(servable.version) != version):
            self._send(404, {"error": f"Servable not found for request: Latest({name})"})
            return None, None, None
        return servable, extra, verb

    def do_GET(self):
        servable, extra, verb = self._model(self.path)
        if servable is None:
            return
        if extra == ["metadata"]:
            from google.protobuf import json_format

            signatures = {
                key: json_format.MessageToDict(value)
                for key, value in servable.meta_graph.signature_def.items()
                if not key.startswith("__")
            }
            self._send(200, {
                "model_spec": {"name": self.path.split("/")[3], "signature_name": "",
                               "version": str(servable.version)},
                "metadata": {"signature_def": {"signature_def": signatures}},
            })
        elif not extra:
            self._send(200, {"model_version_status": [{
                "version": str(servable.version), "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }]})
        else:
            self._send(404, {"error": f"Malformed request: GET {self.path}"})

    def do_POST(self):
        servable, extra, verb = self._model(self.path)
        if servable is None:
            return
        if verb != "predict" or extra:
            self._send(404, {"error": f"Malformed request: POST {self.path}"})
            return
        self.server.requests.append(self.path)
        try:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        except ValueError as error:
            self._send(400, {"error": f"JSON Parse error: {error}"})
            return
        self.server.bodies.append(body)
        signature_name = body.get("signature_name", "serving_default")
        try:
            signature = servable.signature(signature_name)
            instances = body["instances"]
            names = list(signature.inputs)
            if instances and isinstance(instances[0], dict) and set(instances[0]) != {"b64"}:
                columns = {k: [_decode_json_value(row[k]) for row in instances] for k in names}
            else:
                columns = {names[0]: [_decode_json_value(row) for row in instances]}
            inputs = {
                key: _to_array(values, servable.input_dtype(signature_name, key))
                for key, values in columns.items()
            }
            outputs = servable.run(signature_name, inputs)
        except KeyError as error:
            self._send(400, {"error": str(error).strip("'\"")})
            return
        except (ValueError, tf.errors.OpError) as error:
            message = getattr(error, "message", None) or str(error)
            self._send(400, {"error": message})
            return
        count = len(next(iter(outputs.values())))
        predictions = [{k: v[i].tolist() for k, v in outputs.items()} for i in range(count)]
        self._send(200, {"predictions": predictions})


class RestServer:
    """A threaded HTTP server on 127.0.0.1 serving ``{name: SessionServable}``."""

    def __init__(self, models):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _RestHandler)
        self.httpd.models = models
        self.httpd.requests = []
        self.httpd.bodies = []
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def bodies(self):
        return self.httpd.bodies

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def grpc_server(models):
    """Start a gRPC PredictionService on 127.0.0.1; return ``(server, port)``."""
    import grpc
    from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def _servable(self, spec, context):
            servable = models.get(spec.name)
            if servable is None or (spec.HasField("version")
                                    and spec.version.value != servable.version):
                context.abort(grpc.StatusCode.NOT_FOUND,
                              f"Servable not found for request: Latest({spec.name})")
            return servable

        def Predict(self, request, context):
            servable = self._servable(request.model_spec, context)
            signature_name = request.model_spec.signature_name or "serving_default"
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            try:
                outputs = servable.run(signature_name, inputs)
            except KeyError as error:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error).strip("'\""))
            except ValueError as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            except tf.errors.OpError as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.message)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = request.model_spec.name
            response.model_spec.signature_name = signature_name
            response.model_spec.version.value = servable.version
            for key, value in outputs.items():
                if request.output_filter and key not in request.output_filter:
                    continue
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response

        def GetModelMetadata(self, request, context):
            servable = self._servable(request.model_spec, context)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for key, value in servable.meta_graph.signature_def.items():
                if not key.startswith("__"):
                    signature_map.signature_def[key].CopyFrom(value)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = request.model_spec.name
            response.model_spec.version.value = servable.version
            response.metadata["signature_def"].Pack(signature_map)
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def free_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (for timeouts)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()
