"""Inference latency and throughput: Keras, SavedModel and TFLite float32/float16/int8.

* Keras: ``model(x, training=False)`` inside a ``tf.function``, followed by the softmax and
  the argmax mask, the same outputs as the SavedModel's signature.
* SavedModel: :func:`kerasseg.export.saved_model`, loaded back with
  ``tf.saved_model.load`` and called through its ``serving_default`` signature
  (probabilities and mask).
* TFLite: :func:`kerasseg.export.tflite` with ``quantize="none"``, ``"float16"`` and
  ``"int8"`` (calibrated on ``calibration`` images, int8 input and output), run with
  ai-edge-litert's ``Interpreter`` (its default XNNPACK delegate, ``num_threads`` = the
  core count). A ``.tflite`` file takes batch 1, so its throughput is that of a stream
  of single images.

Latency is the median batch-1 call in milliseconds; throughput is images per second of
the median call at ``throughput_batch``. The models have random weights: speed does not
depend on them.
"""

import os
import shutil
import time

import numpy as np

from benchmarks.suite.measure import summarize_times, time_calls

FORMATS = ("keras", "savedmodel", "tflite-float32", "tflite-float16", "tflite-int8")
_TFLITE_MODES = {"tflite-float32": "none", "tflite-float16": "float16", "tflite-int8": "int8"}


def folder_size(path):
    """Total size in bytes of the files under ``path`` (or of the file ``path``).

    Example:
        >>> folder_size(__file__) > 0
        True
    """
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def _timed_rates(call_one, call_batch, batch, latency_repeats, throughput_repeats):
    latency = summarize_times(time_calls(call_one, latency_repeats, warmup=2))
    if call_batch is None:
        return latency, None
    throughput = summarize_times(time_calls(call_batch, throughput_repeats, warmup=1))
    return latency, batch / throughput["median_s"]


def _tflite_runner(path, threads):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()

    def prepare(image):
        if np.issubdtype(inp["dtype"], np.integer):
            scale, zero = inp["quantization"]
            bounds = np.iinfo(inp["dtype"])
            image = np.clip(np.round(image / scale) + zero, bounds.min, bounds.max)
        return image.astype(inp["dtype"])

    def run(image):
        interpreter.set_tensor(inp["index"], image)
        interpreter.invoke()

    return prepare, run


def measure_family(family, size, num_classes, workdir, calibration, latency_repeats=20,
                   throughput_batch=8, throughput_repeats=3, threads=None, seed=0):
    """Measure every format of one model family at one input size.

    Args:
        family: a model family name.
        size: ``(H, W, C)``.
        num_classes: output classes.
        workdir: folder for the exported files (created; its contents are replaced).
        calibration: float32 images ``(N, H, W, C)`` to calibrate the int8 file.
        latency_repeats: timed batch-1 calls.
        throughput_batch: batch of the Keras and SavedModel throughput calls.
        throughput_repeats: timed throughput calls (TFLite: streams of that many batches).
        threads: TFLite interpreter threads (default: the core count).
        seed: seed of the weights and of the input images.

    Returns:
        A list of dicts, one per format of :data:`FORMATS`, with ``family``, ``shape``,
        ``format``, ``file_mb`` (``None`` for Keras), ``latency_ms``, ``latency_best_ms``,
        ``throughput_images_per_s``, ``throughput_batch`` and ``export_s``.
    """
    import keras
    import tensorflow as tf

    import kerasseg

    threads = threads or os.cpu_count()
    os.makedirs(workdir, exist_ok=True)
    keras.utils.set_random_seed(seed)
    model = kerasseg.build(family, input_shape=tuple(size), num_classes=num_classes)
    rng = np.random.default_rng(seed)
    one = rng.normal(size=(1,) + tuple(size)).astype("float32")
    many = rng.normal(size=(throughput_batch,) + tuple(size)).astype("float32")
    rows = []

    def add(fmt, latency, throughput, batch, file_mb=None, export_s=None):
        rows.append({
            "family": family, "shape": list(size), "format": fmt, "file_mb": file_mb,
            "latency_ms": 1000.0 * latency["median_s"],
            "latency_best_ms": 1000.0 * latency["best_s"],
            "throughput_images_per_s": throughput, "throughput_batch": batch, "export_s": export_s,
        })

    @tf.function
    def forward(x):
        logits = model(x, training=False)
        return {"probabilities": tf.nn.softmax(logits, axis=-1),
                "mask": tf.argmax(logits, axis=-1)}

    one_t, many_t = tf.constant(one), tf.constant(many)
    latency, throughput = _timed_rates(
        lambda: forward(one_t)["mask"].numpy(), lambda: forward(many_t)["mask"].numpy(),
        throughput_batch, latency_repeats, throughput_repeats)
    add("keras", latency, throughput, throughput_batch)

    start = time.perf_counter()
    export_dir = os.path.join(workdir, f"{family}_savedmodel")
    shutil.rmtree(export_dir, ignore_errors=True)
    version_dir = kerasseg.export.saved_model(model, export_dir, version=1, bytes_signature=False,
                                              batching=False, overwrite=True)
    export_s = time.perf_counter() - start
    serving = tf.saved_model.load(version_dir).signatures["serving_default"]
    latency, throughput = _timed_rates(
        lambda: serving(image=one_t)["mask"].numpy(), lambda: serving(image=many_t)["mask"].numpy(),
        throughput_batch, latency_repeats, throughput_repeats)
    add("savedmodel", latency, throughput, throughput_batch, folder_size(version_dir) / 1e6,
        export_s)

    stream = np.concatenate([one, many])[:throughput_batch]
    for fmt, quantize in _TFLITE_MODES.items():
        path = os.path.join(workdir, f"{family}_{quantize}.tflite")
        start = time.perf_counter()
        kerasseg.export.tflite(model, path, quantize=quantize,
                               representative_data=[calibration] if quantize == "int8" else None,
                               calibration_limit=len(calibration))
        export_s = time.perf_counter() - start
        prepare, run = _tflite_runner(path, threads)
        first = prepare(one)
        inputs = [prepare(image[None]) for image in stream]

        def run_stream(inputs=inputs, run=run):
            for image in inputs:
                run(image)

        latency, throughput = _timed_rates(lambda: run(first), run_stream, len(inputs),
                                           latency_repeats, throughput_repeats)
        add(fmt, latency, throughput, 1, folder_size(path) / 1e6, export_s)
    del model, forward, serving
    keras.backend.clear_session()
    return rows


def family_summary(rows):
    """Ratios per family and size: int8/float32 file size and SavedModel/Keras speed.

    Args:
        rows: rows of :func:`measure_family` (one family and size, or several).

    Returns:
        A list of dicts with ``family``, ``shape``, ``int8_float32_size_ratio``,
        ``savedmodel_keras_latency_ratio`` and ``keras_savedmodel_throughput_ratio``
        (above 1: SavedModel is slower).

    Example:
        >>> rows = [{"family": "unet", "shape": [8, 8, 1], "format": f, "file_mb": mb,
        ...          "latency_ms": ms, "throughput_images_per_s": ips}
        ...         for f, mb, ms, ips in [("keras", None, 2.0, 100.0),
        ...                               ("savedmodel", 9.0, 2.2, 80.0),
        ...                               ("tflite-float32", 8.0, 3.0, 30.0),
        ...                               ("tflite-int8", 2.0, 1.0, 90.0)]]
        >>> summary = family_summary(rows)[0]
        >>> summary["int8_float32_size_ratio"], round(summary["savedmodel_keras_latency_ratio"], 2)
        (0.25, 1.1)
    """
    groups = {}
    for row in rows:
        groups.setdefault((row["family"], tuple(row["shape"])), {})[row["format"]] = row
    summary = []
    for (family, shape), by_format in groups.items():
        keras_row, saved = by_format.get("keras"), by_format.get("savedmodel")
        f32, int8 = by_format.get("tflite-float32"), by_format.get("tflite-int8")
        summary.append({
            "family": family,
            "shape": list(shape),
            "int8_float32_size_ratio": (int8["file_mb"] / f32["file_mb"]) if int8 and f32 else None,
            "savedmodel_keras_latency_ratio":
                (saved["latency_ms"] / keras_row["latency_ms"]) if saved and keras_row else None,
            "keras_savedmodel_throughput_ratio":
                (keras_row["throughput_images_per_s"] / saved["throughput_images_per_s"])
                if saved and keras_row and saved.get("throughput_images_per_s") else None,
        })
    return summary
