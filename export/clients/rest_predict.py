"""Segment PNG/JPEG files with a kerasseg model on TF Serving's REST API.

Standard library only: runs on any machine with Python 3, without TensorFlow or kerasseg.

    python rest_predict.py --model unet slice1.png slice2.png --out-dir masks/
    python rest_predict.py --server localhost:8501 --model unet --version 2 slice.png

Each mask is written as an 8-bit PNG of class indices (0, 1, ...) next to the input or into
``--out-dir``; a summary line per image gives its size and pixel count per class.
"""

import argparse
import base64
import json
import os
import socket
import struct
import sys
import urllib.error
import urllib.request
import zlib


def predict(server, model, paths, version=None, timeout=60.0):
    """POST the files to ``serving_bytes``; return one mask (list of rows) per file."""
    url = f"http://{server}/v1/models/{model}"
    if version is not None:
        url += f"/versions/{version}"
    url += ":predict"
    instances = []
    for path in paths:
        with open(path, "rb") as handle:
            instances.append({"image_bytes": {"b64": base64.b64encode(handle.read()).decode()}})
    body = json.dumps({"signature_name": "serving_bytes", "instances": instances}).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            predictions = json.loads(answer.read())["predictions"]
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", errors="replace")
        try:
            text = json.loads(text).get("error", text)
        except ValueError:
            pass
        sys.exit(f"TF Serving answered HTTP {error.code} to POST {url}: {text}")
    except urllib.error.URLError as error:
        if isinstance(error.reason, (socket.timeout, TimeoutError)):
            sys.exit(f"No answer from {url} within {timeout} s.")
        sys.exit(f"Cannot connect to {url}: {error.reason}. Is TF Serving running?")
    except (socket.timeout, TimeoutError):
        sys.exit(f"No answer from {url} within {timeout} s.")
    masks = []
    for row in predictions:
        height, width = row["image_size"]
        masks.append([line[:width] for line in row["mask"][:height]])
    return masks


def write_png(path, rows):
    """Write a list of rows of small ints (0..255) as an 8-bit grayscale PNG."""
    height, width = len(rows), len(rows[0]) if rows else 0
    raw = b"".join(b"\x00" + bytes(rows[r]) for r in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", help="PNG or JPEG files")
    parser.add_argument("--server", default="localhost:8501", help="host:port of the REST API")
    parser.add_argument("--model", required=True, help="model name in models.config")
    parser.add_argument("--version", type=int, default=None, help="version (default: latest)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds")
    parser.add_argument("--out-dir", default=None, help="folder for the masks")
    args = parser.parse_args()
    for path in args.images:
        if not os.path.isfile(path):
            sys.exit(f"Image file not found: {path}")
    masks = predict(args.server, args.model, args.images, args.version, args.timeout)
    for path, mask in zip(args.images, masks):
        stem = os.path.splitext(os.path.basename(path))[0]
        folder = args.out_dir or os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        out = os.path.join(folder, f"{stem}_mask.png")
        write_png(out, mask)
        counts = {}
        for line in mask:
            for value in line:
                counts[value] = counts.get(value, 0) + 1
        print(f"{path}: {len(mask)}x{len(mask[0]) if mask else 0} -> {out}; "
              f"pixels per class {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    main()
