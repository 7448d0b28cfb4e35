"""Segment PNG/JPEG files with a kerasseg model on TF Serving's gRPC API.

Needs ``pip install tensorflow-serving-api`` (which brings TensorFlow and grpcio); kerasseg
is not needed.

    python grpc_predict.py --model unet slice1.png slice2.png --out-dir masks/
    python grpc_predict.py --server localhost:8500 --model unet --label stable slice.png
"""

import argparse
import os
import sys

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


def predict(server, model, paths, version=None, label=None, timeout=60.0):
    """Send the files to ``serving_bytes``; return one int32 mask per file."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_bytes"
    if version is not None:
        request.model_spec.version.value = version
    elif label is not None:
        request.model_spec.version_label = label
    encoded = []
    for path in paths:
        with open(path, "rb") as handle:
            encoded.append(handle.read())
    request.inputs["image_bytes"].CopyFrom(
        tf.make_tensor_proto(encoded, dtype=tf.string, shape=[len(encoded)]))
    options = [("grpc.max_receive_message_length", 256 * 1024 * 1024),
               ("grpc.max_send_message_length", 256 * 1024 * 1024)]
    with grpc.insecure_channel(server, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                sys.exit(f"Cannot reach TF Serving at {server}: {error.details()}")
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                sys.exit(f"No answer from {server} within {timeout} s.")
            sys.exit(f"TF Serving answered {error.code().name}: {error.details()}")
    mask = tf.make_ndarray(response.outputs["mask"])
    sizes = tf.make_ndarray(response.outputs["image_size"])
    return [mask[i, :h, :w] for i, (h, w) in enumerate(sizes)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", help="PNG or JPEG files")
    parser.add_argument("--server", default="localhost:8500", help="host:port of the gRPC API")
    parser.add_argument("--model", required=True, help="model name in models.config")
    parser.add_argument("--version", type=int, default=None, help="version (default: latest)")
    parser.add_argument("--label", default=None, help="version label, e.g. stable")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds")
    parser.add_argument("--out-dir", default=None, help="folder for the masks")
    args = parser.parse_args()
    for path in args.images:
        if not os.path.isfile(path):
            sys.exit(f"Image file not found: {path}")
    masks = predict(args.server, args.model, args.images, args.version, args.label,
                    args.timeout)
    for path, mask in zip(args.images, masks):
        stem = os.path.splitext(os.path.basename(path))[0]
        folder = args.out_dir or os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        out = os.path.join(folder, f"{stem}_mask.png")
        tf.io.write_file(out, tf.io.encode_png(mask.astype(np.uint8)[..., None]))
        classes, counts = np.unique(mask, return_counts=True)
        print(f"{path}: {mask.shape[0]}x{mask.shape[1]} -> {out}; pixels per class "
              f"{dict(zip(classes.tolist(), counts.tolist()))}")


if __name__ == "__main__":
    main()
