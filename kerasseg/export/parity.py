"""Compare a ``.tflite`` export with its Keras model on real images.

:func:`parity_report` runs the file through LiteRT's
``ai_edge_litert.interpreter.Interpreter`` (the supported runtime; ``tf.lite.Interpreter``
is deprecated) and the Keras model on the same images and reports file size, probability
differences, pixel agreement of the masks and Dice of the TFLite mask against the Keras
mask (and against ground truth when given).

Example:
    >>> report = kerasseg.export.parity_report(model, "unet_int8.tflite", images)  # doctest: +SKIP
    >>> print(report)  # doctest: +SKIP
    >>> report["dice_vs_keras"] >= 0.97  # doctest: +SKIP
    True
"""

import os
import time

import numpy as np

from kerasseg.export.signatures import model_info

# Metric key -> (label, format) for the table.
_ROWS = (
    ("tflite_path", "file", "{}"),
    ("file_size_bytes", "file size (bytes)", "{:,}"),
    ("input_dtype", "input dtype", "{}"),
    ("output_dtype", "output dtype", "{}"),
    ("num_images", "images", "{}"),
    ("max_abs_prob_diff", "max |p_tflite - p_keras|", "{:.6f}"),
    ("mean_abs_prob_diff", "mean |p_tflite - p_keras|", "{:.6f}"),
    ("argmax_agreement", "mask agreement (pixels)", "{:.6f}"),
    ("dice_vs_keras", "Dice TFLite mask vs Keras mask", "{:.6f}"),
    ("dice_keras_vs_labels", "Dice Keras mask vs labels", "{:.6f}"),
    ("dice_tflite_vs_labels", "Dice TFLite mask vs labels", "{:.6f}"),
    ("tflite_ms_per_image", "TFLite ms / image", "{:.2f}"),
)


class ParityReport(dict):
    """The metrics of :func:`parity_report` (a dict) that prints as a table.

    Keys: ``tflite_path``, ``file_size_bytes``, ``input_dtype``, ``output_dtype``,
    ``num_images``, ``max_abs_prob_diff``, ``mean_abs_prob_diff``, ``argmax_agreement``
    (fraction of pixels whose masks agree), ``dice_vs_keras``, ``tflite_ms_per_image`` and,
    with labels, ``dice_keras_vs_labels`` and ``dice_tflite_vs_labels``.

    Example:
        >>> report = ParityReport(tflite_path="unet_int8.tflite", file_size_bytes=1234567,
        ...                       input_dtype="int8", output_dtype="int8", num_images=24,
        ...                       max_abs_prob_diff=0.0123, mean_abs_prob_diff=0.0009,
        ...                       argmax_agreement=0.9987, dice_vs_keras=0.9912,
        ...                       tflite_ms_per_image=3.2)
        >>> print(report.table())
        +--------------------------------+------------------+
        | metric                         | value            |
        +--------------------------------+------------------+
        | file                           | unet_int8.tflite |
        | file size (bytes)              |        1,234,567 |
        | input dtype                    |             int8 |
        | output dtype                   |             int8 |
        | images                         |               24 |
        | max |p_tflite - p_keras|       |         0.012300 |
        | mean |p_tflite - p_keras|      |         0.000900 |
        | mask agreement (pixels)        |         0.998700 |
        | Dice TFLite mask vs Keras mask |         0.991200 |
        | TFLite ms / image              |             3.20 |
        +--------------------------------+------------------+
    """

    def table(self):
        """Return the metrics as a two-column text table."""
        rows = [(label, fmt.format(self[key])) for key, label, fmt in _ROWS if key in self]
        width = max(len(label) for label, _ in rows)
        value_width = max(len(value) for _, value in rows)
        line = "+-" + "-" * width + "-+-" + "-" * value_width + "-+"
        out = [line, f"| {'metric'.ljust(width)} | {'value'.ljust(value_width)} |", line]
        out += [f"| {label.ljust(width)} | {value.rjust(value_width)} |" for label, value in rows]
        out.append(line)
        return "\n".join(out)

    def __str__(self):
        return self.table()


def foreground_classes(num_classes, activation):
    """The classes Dice is averaged over: 1..K-1, or the single sigmoid class 1."""
    return [1] if activation == "sigmoid" and num_classes == 1 else list(range(1, num_classes))


def mask_dice(first, second, classes):
    """Mean Dice over ``classes`` of two label maps, pooled over all pixels.

    Classes absent from both maps are skipped; if all are absent the maps agree and
    Dice is 1.0.

    Args:
        first: integer label map (any shape).
        second: integer label map of the same shape.
        classes: the class values to score.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: if the shapes differ.

    Example:
        >>> mask_dice(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]), [1])
        0.8
    """
    first, second = np.asarray(first), np.asarray(second)
    if first.shape != second.shape:
        raise ValueError(
            f"Label maps must have the same shape. Received: {first.shape} and {second.shape}"
        )
    scores = []
    for value in classes:
        a, b = first == value, second == value
        total = int(a.sum()) + int(b.sum())
        if total:
            scores.append(2.0 * int(np.logical_and(a, b).sum()) / total)
    return float(np.mean(scores)) if scores else 1.0


def _mask_from(probabilities, activation, num_classes):
    if activation == "sigmoid" and num_classes == 1:
        return (probabilities[..., 0] > 0.5).astype(np.int32)
    return np.argmax(probabilities, axis=-1).astype(np.int32)


def _keras_probabilities(model, info, images, batch_size):
    outputs = []
    for start in range(0, len(images), batch_size):
        y = np.asarray(model(images[start:start + batch_size], training=False), np.float32)
        if not info.outputs_probabilities:
            if info.activation == "sigmoid":
                y = 1.0 / (1.0 + np.exp(-y))
            else:
                y = np.exp(y - y.max(axis=-1, keepdims=True))
                y = y / y.sum(axis=-1, keepdims=True)
        outputs.append(y)
    return np.concatenate(outputs)


def run_tflite(tflite_path, images, num_threads=None):
    """Run a one-input, one-output ``.tflite`` file on float32 images with LiteRT.

    Integer inputs are quantized and integer outputs dequantized with the scale and
    zero point stored in the file.

    Args:
        tflite_path: the ``.tflite`` file.
        images: float32 array ``(N, H, W, C)`` (``(N, D, H, W, C)`` windows for 3-D).
        num_threads: interpreter threads (default: LiteRT's choice).

    Returns:
        ``(outputs, details)``: float32 array ``(N, ...)`` and a dict with
        ``input_dtype``, ``output_dtype`` and ``ms_per_image``.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the images do not match the file's input shape.
    """
    from ai_edge_litert.interpreter import Interpreter

    tflite_path = os.fspath(tflite_path)
    images = np.asarray(images, dtype=np.float32)
    if not os.path.isfile(tflite_path):
        raise FileNotFoundError(f"`tflite_path` not found: {tflite_path}")
    interpreter = Interpreter(model_path=tflite_path, num_threads=num_threads)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    expected = tuple(int(v) for v in inp["shape"][1:])
    if images.ndim != len(expected) + 1 or tuple(images.shape[1:]) != expected:
        raise ValueError(
            f"`images` must be float32 (N, {', '.join(map(str, expected))}) for "
            f"{tflite_path}. Received: images with shape {images.shape}"
        )
    results = []
    elapsed = 0.0
    for image in images:
        x = image[None]
        if np.issubdtype(inp["dtype"], np.integer):
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale) + zero, info.min, info.max)
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        start = time.perf_counter()
        interpreter.invoke()
        elapsed += time.perf_counter() - start
        y = interpreter.get_tensor(out["index"])
        if np.issubdtype(out["dtype"], np.integer):
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        results.append(y.astype(np.float32)[0])
    details = {
        "input_dtype": np.dtype(inp["dtype"]).name,
        "output_dtype": np.dtype(out["dtype"]).name,
        "ms_per_image": 1000.0 * elapsed / max(len(images), 1),
    }
    return np.stack(results), details


def parity_report(keras_model, tflite_path, images, labels=None, *,
                  output_activation="auto", batch_size=8, num_threads=None):
    """Measure how closely a ``.tflite`` export reproduces its Keras model.

    Args:
        keras_model: the Keras model the file was converted from.
        tflite_path: the ``.tflite`` file (from :func:`kerasseg.export.tflite`).
        images: float32 ``(N, H, W, C)`` images, normalized as the model expects
            (real images: on random inputs the numbers mean little); for a 3-D model,
            ``(N, D, H, W, C)`` windows of the file's size.
        labels: optional integer ground truth ``(N, H, W)`` (or ``(N, H, W, 1)``;
            ``(N, D, H, W)`` for windows).
        output_activation: as in :func:`kerasseg.export.tflite`.
        batch_size: Keras batch size.
        num_threads: LiteRT interpreter threads.

    Returns:
        A :class:`ParityReport` (a dict; ``print(report)`` shows a table) with the file
        size, maximum and mean absolute probability difference, the fraction of pixels
        whose masks agree, Dice of the TFLite mask against the Keras mask (mean over the
        foreground classes), TFLite time per image and, with labels, both masks' Dice
        against them.

    Raises:
        FileNotFoundError: if ``tflite_path`` does not exist.
        ValueError: if ``images`` or ``labels`` have the wrong shape.

    Example:
        >>> report = parity_report(model, "unet.tflite", images, labels)  # doctest: +SKIP
        >>> print(report)  # doctest: +SKIP
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    # A 3-D model is described at the windows' size (it may take any size).
    window = tuple(int(v) for v in images.shape[1:-1]) if images.ndim == 5 else None
    info = model_info(keras_model, output_activation=output_activation, stride=1,
                      input_size=window)
    lite, details = run_tflite(tflite_path, images, num_threads=num_threads)
    keras_probs = _keras_probabilities(keras_model, info, images, batch_size)
    if lite.shape != keras_probs.shape:
        raise ValueError(
            f"The TFLite output shape {lite.shape} differs from the Keras output shape "
            f"{keras_probs.shape}; was {tflite_path} converted from this model?"
        )
    keras_mask = _mask_from(keras_probs, info.activation, info.num_classes)
    lite_mask = _mask_from(lite, info.activation, info.num_classes)
    classes = foreground_classes(info.num_classes, info.activation)
    diff = np.abs(lite - keras_probs)
    report = ParityReport(
        tflite_path=os.fspath(tflite_path),
        file_size_bytes=os.path.getsize(tflite_path),
        input_dtype=details["input_dtype"],
        output_dtype=details["output_dtype"],
        num_images=int(len(images)),
        max_abs_prob_diff=float(diff.max()),
        mean_abs_prob_diff=float(diff.mean()),
        argmax_agreement=float(np.mean(keras_mask == lite_mask)),
        dice_vs_keras=mask_dice(lite_mask, keras_mask, classes),
        tflite_ms_per_image=float(details["ms_per_image"]),
    )
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim == keras_mask.ndim + 1 and labels.shape[-1] == 1:
            labels = labels[..., 0]
        if labels.shape != keras_mask.shape:
            raise ValueError(
                f"`labels` must have shape {keras_mask.shape} (N, H, W). "
                f"Received: labels with shape {labels.shape}"
            )
        report["dice_keras_vs_labels"] = mask_dice(keras_mask, labels, classes)
        report["dice_tflite_vs_labels"] = mask_dice(lite_mask, labels, classes)
    return report
