"""Export a segmentation model to TensorFlow Lite (LiteRT) for edge devices.

The ``.tflite`` file has one input, the model's input image ``[1, H, W, C]`` (already
normalized as in training: the normalization is the caller's, as with
``serving_default``), and one output, the class probabilities ``[1, H, W, K]``
(softmax, or sigmoid when ``K == 1``). The mask is ``argmax`` over the last axis (or
``probability > 0.5`` when ``K == 1``). The batch size is 1 and the spatial size is fixed
(a dynamic-size model needs ``input_size``), which is what edge delegates expect.

Quantization modes:

* ``"none"``: float32 weights and activations.
* ``"float16"``: float16 weights (half the file), float32 compute on CPU.
* ``"dynamic"``: int8 weights, activations quantized on the fly; float32 input/output.
* ``"int8"``: full integer: int8 weights and activations calibrated on
  ``representative_data``, and int8 input and output tensors (what microcontrollers,
  the Edge TPU and NPU delegates take). Their scale and zero point are in the file:
  ``q = round(x / scale) + zero_point`` on the way in, ``x = (q - zero_point) * scale``
  on the way out; :func:`kerasseg.export.parity_report` does this. Pass
  ``int8_io=False`` to keep float32 input/output around int8 internals.

Example:
    >>> kerasseg.export.tflite(model, "unet_int8.tflite", quantize="int8",
    ...                        representative_data=[train_batch])  # doctest: +SKIP
    'unet_int8.tflite'
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

from kerasseg.export.signatures import function_variables, model_info, probabilities_and_mask
from kerasseg.files import write_bytes_atomic
from kerasseg.modelfile import float32_model

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
DEFAULT_CALIBRATION_IMAGES = 100


def calibration_images(representative_data, shape, limit=DEFAULT_CALIBRATION_IMAGES):
    """Collect up to ``limit`` float32 images ``(1, H, W, C)`` from ``representative_data``.

    Args:
        representative_data: an iterable (list, generator, ``tf.data.Dataset``) of float32
            batches ``(N, H, W, C)`` or single images ``(H, W, C)``, or a callable
            returning one; ``(image, label)`` pairs are accepted (the image is used).
        shape: the expected ``(H, W, C)``.
        limit: the most images kept.

    Returns:
        A list of float32 arrays ``(1, H, W, C)``.

    Raises:
        ValueError: if an element has the wrong shape or there are no images.
    """
    data = representative_data() if callable(representative_data) else representative_data
    images = []
    try:
        iterator = iter(data)
    except TypeError:
        raise ValueError(
            "`representative_data` must be an iterable of float32 image batches "
            f"(N, H, W, C). Received: {type(data).__name__}"
        ) from None
    for element in iterator:
        if isinstance(element, (tuple, list)) and len(element) in (1, 2) and not isinstance(
                element, np.ndarray):
            element = element[0]
        batch = np.asarray(element, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or tuple(batch.shape[1:]) != tuple(shape):
            raise ValueError(
                "`representative_data` must yield float32 batches (N, "
                f"{', '.join(str(s) for s in shape)}). Received: an element of shape "
                f"{tuple(np.shape(element))}"
            )
        for image in batch:
            images.append(image[None])
            if len(images) >= limit:
                return images
    if not images:
        raise ValueError("`representative_data` yielded no images; int8 calibration needs some.")
    return images


def tflite(
    model,
    path,
    quantize="none",
    representative_data=None,
    *,
    input_size=None,
    output_activation="auto",
    int8_io=True,
    calibration_limit=DEFAULT_CALIBRATION_IMAGES,
):
    """Convert ``model`` to a ``.tflite`` file: input image, output probabilities.

    Args:
        model: a Keras segmentation model ``(B, H, W, C) -> (B, H, W, K)``.
        path: the ``.tflite`` file to write (atomically).
        quantize: one of ``"none"``, ``"float16"``, ``"dynamic"``, ``"int8"``.
        representative_data: required for ``"int8"``: an iterable (or a callable
            returning one) of float32 batches ``(N, H, W, C)`` of real, normalized
            training images, e.g. a few batches of the training pipeline; up to
            ``calibration_limit`` images are used.
        input_size: ``(height, width)`` of the file's input; required for dynamic-size
            models, otherwise the model's size.
        output_activation: ``"auto"``, ``"logits"``, ``"softmax"`` or ``"sigmoid"`` (as in
            :func:`kerasseg.export.saved_model`).
        int8_io: with ``"int8"``, make the input and output tensors int8 (default) rather
            than float32.
        calibration_limit: the most calibration images used.

    Returns:
        ``path``.

    Raises:
        ValueError: for an unknown ``quantize`` (the valid modes are listed), ``"int8"``
            without ``representative_data``, bad calibration data or ``input_size``.

    Example:
        >>> kerasseg.export.tflite(model, "unet_fp16.tflite", quantize="float16")  # doctest: +SKIP
        'unet_fp16.tflite'
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"`quantize` must be one of {list(QUANTIZE_MODES)}. Received: quantize={quantize!r}"
        )
    if quantize == "int8" and representative_data is None:
        raise ValueError(
            "`quantize='int8'` needs `representative_data`: an iterable of float32 image "
            "batches (N, H, W, C) drawn from the training data, normalized as in training, "
            "to calibrate the int8 ranges. Received: representative_data=None"
        )
    if int8_io not in (True, False):
        raise ValueError(f"`int8_io` must be one of [True, False]. Received: int8_io={int8_io!r}")
    model = float32_model(model)  # a mixed-precision model exports in float32
    info = model_info(model, output_activation=output_activation, input_size=input_size)
    if info.dynamic:
        raise ValueError(
            "`input_size` must be given as (height, width) for a model with dynamic "
            "height/width: a .tflite file has a fixed size. Received: input_size=None"
        )
    height, width = info.height, info.width
    shape = (height, width, info.channels)
    samples = None
    if quantize == "int8":
        samples = calibration_images(representative_data, shape, calibration_limit)

    def predict(image):
        probabilities, _ = probabilities_and_mask(model, info, image)
        return {"probabilities": probabilities}

    # Converting through a SavedModel of a bare tf.Module that tracks the tf.Variables the
    # function reads freezes them into constants (tracking the Keras variables instead, or
    # converting the concrete function directly, leaves uninitialized resource variables).
    signature = tf.function(
        predict, autograph=False,
        input_signature=[tf.TensorSpec([1, height, width, info.channels], tf.float32,
                                       name="image")],
    ).get_concrete_function()
    module = tf.Module()
    module.model_variables = function_variables([signature])
    with tempfile.TemporaryDirectory(prefix="kerasseg-tflite-") as tmp:
        tf.saved_model.save(module, tmp, signatures={"serving_default": signature})
        converter = tf.lite.TFLiteConverter.from_saved_model(
            tmp, signature_keys=["serving_default"]
        )
        flatbuffer = _convert(converter, quantize, samples, int8_io)
    path = os.fspath(path)
    write_bytes_atomic(path, flatbuffer)
    return path


def _convert(converter, quantize, samples, int8_io):
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image] for image in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()
