"""Export a segmentation model to TensorFlow Lite (LiteRT) for edge devices.

The ``.tflite`` file has one input, the model's input image ``[1, H, W, C]`` (already
normalized as in training: the normalization is the caller's, as with
``serving_default``), and one output, the class probabilities ``[1, H, W, K]``
(softmax, or sigmoid when ``K == 1``). The mask is ``argmax`` over the last axis (or
``probability > 0.5`` when ``K == 1``). The batch size is 1 and the spatial size is fixed
(a dynamic-size model needs ``input_size``), which is what edge delegates expect.

A 3-D model (unet3d, vnet) gives a ``.tflite`` file of one window ``[1, D, H, W, C]`` ->
``[1, D, H, W, K]`` (its fixed size, or ``input_size=(depth, height, width)``: the training
patch), the window a sliding-window prediction runs. TFLite has no 3-D max pooling, so
``MaxPooling3D`` layers are computed with builtin ops (strided slices, element-wise maximum
and 2-D max pooling; exactly the same values). Its 3-D convolutions have float32 kernels only,
so ``"int8"`` is refused for 3-D models with a ``ValueError`` naming them (the converter would
keep them in float32 between dequantize and quantize ops), and so is ``"dynamic"`` (no weight
would be quantized); ``"none"`` and ``"float16"`` work.

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

import keras
import numpy as np
import tensorflow as tf

from kerasseg.export.signatures import function_variables, model_info, probabilities_and_mask
from kerasseg.files import write_bytes_atomic
from kerasseg.modelfile import float32_model

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
DEFAULT_CALIBRATION_IMAGES = 100


def calibration_images(representative_data, shape, limit=DEFAULT_CALIBRATION_IMAGES):
    """Collect up to ``limit`` float32 images ``(1, *shape)`` from ``representative_data``.

    Args:
        representative_data: an iterable (list, generator, ``tf.data.Dataset``) of float32
            batches ``(N, H, W, C)`` or single images ``(H, W, C)`` (``(N, D, H, W, C)`` or
            ``(D, H, W, C)`` windows for a 3-D model), or a callable
            returning one; ``(image, label)`` pairs are accepted (the image is used).
        shape: the expected ``(H, W, C)`` (``(D, H, W, C)`` for a 3-D model).
        limit: the most images kept.

    Returns:
        A list of float32 arrays ``(1, *shape)``.

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
        if batch.ndim == len(shape):
            batch = batch[None]
        if batch.ndim != len(shape) + 1 or tuple(batch.shape[1:]) != tuple(shape):
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


class _MaxPooling3DByBuiltins(keras.layers.Layer):
    """``MaxPooling3D`` (valid padding, strides = pool size) in ops TFLite has kernels for.

    TFLite has no 3-D max pooling: the depth axis is pooled by the element-wise maximum of
    its strided slices, then height and width by a 2-D max pooling with the depth folded
    into the batch. The result is exactly that of ``MaxPooling3D``, in float and in int8.
    """

    def __init__(self, pool_size, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(int(v) for v in pool_size)

    def compute_output_shape(self, input_shape):
        batch, *spatial, channels = input_shape
        return (batch, *(None if v is None else v // p
                         for v, p in zip(spatial, self.pool_size)), channels)

    def call(self, x):
        pool_d, pool_h, pool_w = self.pool_size
        # The export traces fixed sizes; the dynamic ones are for cloning and Keras calls.
        shape = [static if static is not None else dynamic
                 for static, dynamic in zip(x.shape, tf.unstack(tf.shape(x)))]
        _, depth, height, width, channels = shape
        depth, height, width = depth // pool_d, height // pool_h, width // pool_w
        x = x[:, :depth * pool_d, :height * pool_h, :width * pool_w]
        if pool_d > 1:
            pooled = x[:, 0::pool_d]
            for offset in range(1, pool_d):
                pooled = tf.maximum(pooled, x[:, offset::pool_d])
            x = pooled
        if pool_h > 1 or pool_w > 1:
            x = tf.reshape(x, [-1, height * pool_h, width * pool_w, channels])
            x = tf.nn.max_pool2d(x, (pool_h, pool_w), (pool_h, pool_w), "VALID")
            x = tf.reshape(x, [-1, depth, height, width, channels])
        return x


def builtin_max_pooling(model):
    """``model`` with its ``MaxPooling3D`` layers computed in TFLite builtin ops.

    Other layers are shared with ``model`` (same weights); a model without 3-D max pooling
    is returned as it is. Only valid-padded pooling whose strides equal the pool size (what
    the 3-D families build) is replaced; any other stays, and the converter names it.
    """

    def replaceable(layer):
        return (isinstance(layer, keras.layers.MaxPooling3D) and layer.padding == "valid"
                and tuple(layer.strides) == tuple(layer.pool_size)
                and layer.data_format == "channels_last")

    if not any(replaceable(layer) for layer in model.layers):
        return model

    def clone(layer):
        if replaceable(layer):
            return _MaxPooling3DByBuiltins(layer.pool_size, name=layer.name)
        return layer

    return keras.models.clone_model(model, clone_function=clone)


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
        model: a Keras segmentation model ``(B, H, W, C) -> (B, H, W, K)``, or a 3-D one
            ``(B, D, H, W, C) -> (B, D, H, W, K)``.
        path: the ``.tflite`` file to write (atomically).
        quantize: one of ``"none"``, ``"float16"``, ``"dynamic"``, ``"int8"``.
        representative_data: required for ``"int8"``: an iterable (or a callable
            returning one) of float32 batches ``(N, H, W, C)`` of real, normalized
            training images, e.g. a few batches of the training pipeline; up to
            ``calibration_limit`` images are used.
        input_size: ``(height, width)`` of the file's input (``(depth, height, width)``
            for a 3-D model); required for dynamic-size models, otherwise the model's size.
        output_activation: ``"auto"``, ``"logits"``, ``"softmax"`` or ``"sigmoid"`` (as in
            :func:`kerasseg.export.saved_model`).
        int8_io: with ``"int8"``, make the input and output tensors int8 (default) rather
            than float32.
        calibration_limit: the most calibration images used.

    Returns:
        ``path``.

    Raises:
        ValueError: for an unknown ``quantize`` (the valid modes are listed), ``"int8"``
            without ``representative_data``, bad calibration data or ``input_size``; for a
            3-D model, ``"int8"`` or ``"dynamic"`` (naming the ops without int8 kernels) or an
            op TFLite has no kernel for (named).

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
    model = builtin_max_pooling(model)  # TFLite has no 3-D max pooling kernel
    info = model_info(model, output_activation=output_activation, input_size=input_size)
    if info.dynamic:
        raise ValueError(
            "`input_size` must be given as (height, width) for a model with dynamic "
            "height/width: a .tflite file has a fixed size. Received: input_size=None"
        )
    spatial = (info.height, info.width) if info.depth is None else (
        info.depth, info.height, info.width)
    shape = spatial + (info.channels,)
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
        input_signature=[tf.TensorSpec([1, *shape], tf.float32, name="image")],
    ).get_concrete_function()
    module = tf.Module()
    module.model_variables = function_variables([signature])
    with tempfile.TemporaryDirectory(prefix="kerasseg-tflite-") as tmp:
        tf.saved_model.save(module, tmp, signatures={"serving_default": signature})
        converter = tf.lite.TFLiteConverter.from_saved_model(
            tmp, signature_keys=["serving_default"]
        )
        try:
            flatbuffer = _convert(converter, quantize, samples, int8_io)
        except Exception as error:  # the converter raises its own ConverterError
            ops = unsupported_ops(str(error))
            if info.depth is None or not ops:
                raise
            raise ValueError(_refusal(
                model, quantize, ops, "no TFLite builtin kernel",
                "Replace the layer by one TFLite runs (e.g. a strided convolution in place "
                "of a 3-D pooling) or export a SavedModel.")) from None
    if quantize == "int8" and info.depth is not None:
        float_ops = float_compute_ops(flatbuffer)
        if float_ops:
            causes = [op for op in float_ops if op in FLOAT_ONLY_OPS] or float_ops
            others = [op for op in float_ops if op not in causes]
            raise ValueError(
                f"int8 is not supported for the 3-D model {model.name!r}: TFLite has no int8 "
                f"kernel for {', '.join(causes)} (float32 only), so the converter keeps "
                + ("it" if len(causes) == 1 else "them")
                + (f", and the ops between them ({', '.join(others)})," if others else "")
                + " in float32 between dequantize and quantize ops: the file would be "
                "neither full-integer nor smaller than float32. Export it with "
                "quantize='none' or 'float16'.")
    if quantize == "dynamic" and info.depth is not None and not _has_int8_tensors(flatbuffer):
        raise ValueError(
            f"`quantize='dynamic'` is not supported for the 3-D model {model.name!r}: TFLite "
            f"has no dynamic-range (int8 weight) kernel for {', '.join(FLOAT_ONLY_OPS)}, so no "
            "weight would be quantized and the file would be the float32 one. Export it with "
            "quantize='none' or 'float16'.")
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


# Converter errors name the TensorFlow ops it has no kernel for in either of these ways.
_UNSUPPORTED_OP_PATTERNS = (r"'tf\.(\w+)' op is neither a custom op nor a flex op",
                            r"TF Select ops: ([\w, ]+)")
# TFLite builtins with float32 kernels only, which the int8 converter leaves in float32.
FLOAT_ONLY_OPS = ("CONV_3D", "CONV_3D_TRANSPOSE")
# Ops whose float32 inputs are expected in an int8 file: the conversions themselves.
_CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")


def unsupported_ops(message):
    """The TensorFlow op names a converter error ``message`` says TFLite cannot run."""
    import re

    names = set()
    for pattern in _UNSUPPORTED_OP_PATTERNS:
        for match in re.findall(pattern, message):
            names.update(name.strip() for name in match.split(",") if name.strip())
    return sorted(names)


def float_compute_ops(flatbuffer):
    """The TFLite ops of a converted file that compute in float32 (other than the
    quantize/dequantize conversions), read with LiteRT's interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    names = set()
    for op in interpreter._get_ops_details():  # LiteRT has no public op listing
        if op["op_name"] in _CONVERSION_OPS:
            continue
        if any(index >= 0 and tensors[index]["dtype"] == np.float32
               for index in op["inputs"]):
            names.add(op["op_name"])
    return sorted(names)


def _has_int8_tensors(flatbuffer):
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=flatbuffer).get_tensor_details()
    return any(tensor["dtype"] == np.int8 for tensor in details)


def _refusal(model, quantize, ops, reason, advice):
    what = "int8" if quantize == "int8" else f"TFLite export (quantize={quantize!r})"
    verb = "has" if len(ops) == 1 else "have"
    return (f"{what} is not supported for the 3-D model {model.name!r}: "
            f"{', '.join(ops)} {verb} {reason}. {advice}")
