"""The serving functions of an exported model: float tensor in, and encoded image in.

Both are plain ``tf.function`` bodies around the Keras model, so that the SavedModel
holds everything (decoding, resizing, normalization constants, the output activation
and the label map) and serving needs neither Python code nor kerasseg.

Names (the public contract; see ``export/README.md``):

* ``serving_default``: input ``image`` float32 ``[batch, H, W, C]``; outputs
  ``probabilities`` float32 ``[batch, H, W, K]`` (softmax, or sigmoid when ``K == 1``)
  and ``mask`` int32 ``[batch, H, W]`` (argmax, or ``probability > 0.5`` when ``K == 1``).
* ``serving_bytes``: input ``image_bytes`` string ``[batch]`` (PNG or JPEG files);
  outputs ``mask`` int32 ``[batch, H_max, W_max]`` at the original image size and
  ``image_size`` int32 ``[batch, 2]`` (each image's original height and width).
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import keras
import tensorflow as tf

from kerasseg.export.normalization import normalize_image, normalization_spec
from kerasseg.models.blocks import OUTPUT_ACTIVATIONS as MODEL_OUTPUT_ACTIVATIONS
from kerasseg.models.blocks import output_activation

TENSOR_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "serving_bytes"
TENSOR_INPUT = "image"
BYTES_INPUT = "image_bytes"
OUTPUT_ACTIVATIONS = ("auto",) + MODEL_OUTPUT_ACTIVATIONS  # "auto": the model's last layer
MASK_PAD_VALUE = -1
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class GraphInfo:
    """What the export needs to know about a segmentation model's graph (not the stored
    :class:`kerasseg.description.ModelInfo`, which describes its training).

    Attributes:
        height: input height, or ``None`` when the model takes any (stride-multiple) size.
        width: input width, or ``None``.
        channels: input channels ``C``.
        num_classes: output channels ``K``.
        activation: ``"softmax"`` or ``"sigmoid"``: how probabilities are formed.
        outputs_probabilities: whether the model already ends with that activation.
        stride: the total downsampling factor; dynamic sizes are padded to a multiple.
        canvas: ``(height, width)`` that dynamic sizes are padded to at least, centred, as
            in training (for models whose normalization layers average over the image:
            instance and group normalization); ``(0, 0)`` pads only to the stride, at the
            bottom and right.
        depth: a 3-D model's input depth (``None`` for 2-D models).
    """

    height: Optional[int]
    width: Optional[int]
    channels: int
    num_classes: int
    activation: str
    outputs_probabilities: bool
    stride: int
    canvas: Tuple[int, int] = (0, 0)
    depth: Optional[int] = None

    @property
    def volumetric(self):
        """Whether the model is 3-D: inputs ``(B, D, H, W, C)`` at the fixed ``depth``,
        ``height`` and ``width`` (its training patch, the sliding window)."""
        return self.depth is not None

    @property
    def dynamic(self):
        """Whether height or width is ``None`` (any stride-multiple size)."""
        return self.height is None or self.width is None

    @property
    def input_shape(self) -> Tuple:
        """``(H, W, C)`` (``(D, H, W, C)`` for a 3-D model) with ``None`` for dynamic
        dimensions."""
        if self.volumetric:
            return (self.depth, self.height, self.width, self.channels)
        return (self.height, self.width, self.channels)


def _last_activation(model):
    name = output_activation(model)
    return None if name == "logits" else name


def infer_stride(model, channels, sizes=(256, 512)):
    """Total downsampling factor of a fully convolutional model.

    The model is traced (not run) at two input sizes; every rank-4 tensor whose height
    doubles with the input is a feature map, and the largest ``input / height`` among
    them is the stride. Tensors that do not scale (kernels, globally pooled features)
    are ignored.

    Args:
        model: a Keras model taking ``(B, H, W, C)`` images.
        channels: input channels.
        sizes: two probe sizes, the second twice the first, multiples of any stride.

    Returns:
        The stride as an int (1 when nothing is downsampled).

    Example:
        >>> infer_stride(kerasseg.build("unet", depth=3), channels=1)
        8
    """
    heights = []
    for size in sizes:
        fn = tf.function(lambda x: model(x, training=False), autograph=False)
        graph = fn.get_concrete_function(
            tf.TensorSpec([1, size, size, channels], tf.float32)
        ).graph
        found = {}
        for op in graph.get_operations():
            for index, tensor in enumerate(op.outputs):
                shape = tensor.shape
                if shape.rank == 4 and shape[0] == 1 and shape[1] is not None and shape[1] > 0:
                    found[(op.name, index)] = shape[1]
        heights.append(found)
    small, large = sizes
    stride = 1
    for key, height in heights[0].items():
        if heights[1].get(key) == height * large // small and small % height == 0:
            stride = max(stride, small // height)
    return stride


def _check_size(input_size):
    if (not isinstance(input_size, (tuple, list)) or len(input_size) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in input_size)):
        raise ValueError(
            "`input_size` must be None or (height, width) positive ints. "
            f"Received: input_size={input_size!r}"
        )
    return int(input_size[0]), int(input_size[1])


def _activation_of(model, output_activation, num_classes):
    """``(activation, outputs_probabilities)`` of a model for ``output_activation``."""
    ending = _last_activation(model)
    if output_activation == "auto":
        outputs_probabilities = ending is not None
        activation = ending or ("sigmoid" if num_classes == 1 else "softmax")
    elif output_activation == "logits":
        outputs_probabilities = False
        activation = "sigmoid" if num_classes == 1 else "softmax"
    else:
        outputs_probabilities = True
        activation = output_activation
    if activation == "softmax" and num_classes == 1:
        raise ValueError(
            "A 1-class model needs a sigmoid output (softmax over one class is constant). "
            f"Received: output_activation={output_activation!r} with the model ending in "
            f"{ending!r}"
        )
    return activation, outputs_probabilities


def _model_info_3d(model, in_shape, out_shape, output_activation, input_size):
    """The :class:`GraphInfo` of a 3-D model, exported at one window size."""
    if in_shape[-1] is None or len(out_shape) != 5 or out_shape[-1] is None:
        raise ValueError(
            "A 3-D `model` must map (batch, depth, height, width, channels) to (batch, depth, "
            f"height, width, classes) with known channels. Received: input shape {in_shape}, "
            f"output shape {out_shape}")
    spatial = in_shape[1:4]
    if input_size is not None:
        if (not isinstance(input_size, (tuple, list)) or len(input_size) != 3
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                       for v in input_size)
                or any(fixed is not None and fixed != v
                       for fixed, v in zip(spatial, input_size))):
            raise ValueError(
                "`input_size` of a 3-D model must be (depth, height, width), positive ints "
                f"matching its fixed dimensions {spatial}. Received: input_size={input_size!r}")
        spatial = tuple(int(v) for v in input_size)
    if any(v is None for v in spatial):
        raise ValueError(
            f"A 3-D model is exported at one window size; model {model.name!r} takes any "
            f"size {in_shape[1:4]}: pass input_size=(depth, height, width), its training "
            "patch.")
    num_classes = int(out_shape[-1])
    activation, outputs_probabilities = _activation_of(model, output_activation, num_classes)
    return GraphInfo(
        height=int(spatial[1]),
        width=int(spatial[2]),
        channels=int(in_shape[-1]),
        num_classes=num_classes,
        activation=activation,
        outputs_probabilities=outputs_probabilities,
        stride=1,
        depth=int(spatial[0]),
    )


def model_info(model, output_activation="auto", stride=None, input_size=None, canvas=None):
    """Describe ``model`` for export, checking that it is a segmentation model.

    Args:
        model: a Keras model, one input ``(B, H, W, C)``, one output ``(B, H, W, K)``; or a
            3-D model, ``(B, D, H, W, C) -> (B, D, H, W, K)``, which is exported at one
            window size (its own fixed size, or ``input_size``).
        output_activation: ``"auto"`` (an ending softmax/sigmoid layer means the model
            outputs probabilities; otherwise logits), ``"logits"``, ``"softmax"`` or
            ``"sigmoid"`` (the model already applies it).
        stride: the model's total stride, or ``None`` to infer it for dynamic sizes.
        input_size: ``(height, width)`` to export a dynamic-size model at one fixed size
            (multiples of the stride); ``None`` keeps the model's own size. For a
            fixed-size model it must be ``None`` or that size. ``(depth, height, width)``
            for a 3-D model (required when its size is not fixed).
        canvas: ``(height, width)`` that dynamic sizes are padded to at least (centred),
            e.g. the training patch of a model with instance normalization; ``None`` pads
            to the stride only.

    Returns:
        A :class:`GraphInfo` (``stride`` is 1 for fixed sizes, where it is not used).

    Raises:
        ValueError: for a model that is not 2-D segmentation-shaped, an unknown
            ``output_activation``, a non-positive ``stride`` or an invalid ``input_size``.

    Example:
        >>> model_info(kerasseg.build("unet", input_shape=(64, 64, 1))).num_classes
        2
    """
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"`output_activation` must be one of {list(OUTPUT_ACTIVATIONS)}. "
            f"Received: output_activation={output_activation!r}"
        )
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            "`model` must have one input and one output. Received: "
            f"{len(model.inputs)} input(s) and {len(model.outputs)} output(s)"
        )
    in_shape = tuple(model.inputs[0].shape)
    out_shape = tuple(model.outputs[0].shape)
    if len(in_shape) == 5:
        return _model_info_3d(model, in_shape, out_shape, output_activation, input_size)
    if len(in_shape) != 4 or in_shape[-1] is None:
        raise ValueError(
            "`model` input must be (batch, height, width, channels) with a known channel "
            f"count. Received: input shape {in_shape}"
        )
    if len(out_shape) != 4 or out_shape[-1] is None:
        raise ValueError(
            "`model` output must be (batch, height, width, classes). "
            f"Received: output shape {out_shape}"
        )
    num_classes = int(out_shape[-1])
    activation, outputs_probabilities = _activation_of(model, output_activation, num_classes)
    if stride is not None and (
            isinstance(stride, bool) or not isinstance(stride, int) or stride < 1):
        raise ValueError(f"`stride` must be a positive int or None. Received: stride={stride!r}")
    height, width = in_shape[1], in_shape[2]
    dynamic = height is None or width is None
    if input_size is not None:
        size = _check_size(input_size)
        if not dynamic and size != (height, width):
            raise ValueError(
                f"`input_size` must be None or the model's fixed size {(height, width)}. "
                f"Received: input_size={input_size!r}"
            )
    if dynamic and stride is None:
        stride = infer_stride(model, int(in_shape[-1]))
    if dynamic and input_size is not None:
        if any(v % stride for v in size) or any(
                fixed is not None and fixed != v for fixed, v in zip((height, width), size)):
            raise ValueError(
                f"`input_size` must be multiples of the model's stride {stride} (and match "
                f"its fixed dimension, if any). Received: input_size={input_size!r}"
            )
        height, width = size
    return GraphInfo(
        height=None if height is None else int(height),
        width=None if width is None else int(width),
        channels=int(in_shape[-1]),
        num_classes=num_classes,
        activation=activation,
        outputs_probabilities=outputs_probabilities,
        stride=stride or 1,
        canvas=(0, 0) if canvas is None else (int(canvas[0]), int(canvas[1])),
    )


# ------------------------------------------------------------------------ shared pieces


def function_variables(concrete_functions):
    """The distinct ``tf.Variable`` objects read by traced functions, in first-use order.

    A ``tf.Module`` that holds these (rather than the Keras variables wrapping them) saves
    a SavedModel whose variables TF Serving restores and the TFLite converter freezes.
    """
    seen, out = set(), []
    for function in concrete_functions:
        for variable in function.variables:
            if id(variable) not in seen:
                seen.add(id(variable))
                out.append(variable)
    return out


def probabilities_and_mask(model, info, x):
    """Run ``model`` on a batch ``x`` of the model's size; return (probabilities, mask)."""
    y = tf.cast(model(x, training=False), tf.float32)
    if info.outputs_probabilities:
        probabilities = y
    elif info.activation == "sigmoid":
        probabilities = tf.sigmoid(y)
    else:
        probabilities = tf.nn.softmax(y, axis=-1)
    if info.activation == "sigmoid" and info.num_classes == 1:
        mask = tf.cast(probabilities[..., 0] > 0.5, tf.int32)
    else:
        mask = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return probabilities, mask


def _round_up(value, multiple):
    return (value + multiple - 1) // multiple * multiple


def _pad_to_stride(x, info):
    """Zero-pad a batch to multiples of the stride, and to at least the info's canvas.

    Returns ``(padded, top, left)``: without a canvas the padding goes at the bottom and
    right (``top = left = 0``); with one the image is centred, as training placed it.
    """
    shape = tf.shape(x)
    height = tf.maximum(_round_up(shape[1], info.stride), info.canvas[0])
    width = tf.maximum(_round_up(shape[2], info.stride), info.canvas[1])
    if info.canvas == (0, 0):
        top = left = tf.constant(0)
    else:
        top, left = (height - shape[1]) // 2, (width - shape[2]) // 2
    padded = tf.pad(x, [[0, 0], [top, height - shape[1] - top],
                        [left, width - shape[2] - left], [0, 0]])
    return padded, top, left


# ------------------------------------------------------------------- tensor signature


def tensor_signature_spec(info):
    """The ``TensorSpec`` of the ``image`` input of ``serving_default``."""
    return tf.TensorSpec([None, *info.input_shape], tf.float32, name=TENSOR_INPUT)


def make_tensor_fn(model, info):
    """Return the body of ``serving_default``: ``image`` -> probabilities and mask.

    Fixed sizes (the model's, or the ``input_size`` it is exported at; a 3-D model's
    window ``[batch, D, H, W, C]``) are taken exactly. Dynamic-size models take any size:
    the batch is zero-padded at the bottom and right to a multiple of the stride, and the
    outputs are cropped back to the input size.
    """
    expected = [None, *info.input_shape]

    def serve(image):
        # TF Serving feeds tensors without checking them against the signature, so the
        # shape is checked here, at run time, with the expected shape in the message.
        x = tf.ensure_shape(image, expected, name="image_must_be_float32_batch_h_w_c")
        if info.dynamic:
            height, width = tf.shape(x)[1], tf.shape(x)[2]
            padded, top, left = _pad_to_stride(x, info)
            probabilities, mask = probabilities_and_mask(model, info, padded)
            probabilities = probabilities[:, top:top + height, left:left + width, :]
            mask = mask[:, top:top + height, left:left + width]
        else:
            probabilities, mask = probabilities_and_mask(model, info, x)
        return {"probabilities": probabilities, "mask": mask}

    return serve


# -------------------------------------------------------------------- bytes signature


def bytes_signature_spec():
    """The ``TensorSpec`` of the ``image_bytes`` input of ``serving_bytes``."""
    return tf.TensorSpec([None], tf.string, name=BYTES_INPUT)


def _decode(encoded, channels):
    """Decode one PNG or JPEG to float32 ``(h, w, channels)`` stored intensities.

    16-bit PNGs keep their 0..65535 values; 8-bit images give 0..255. An RGBA image
    for a 3-channel model loses its alpha channel, as in :func:`kerasseg.data.io.read_image`.
    """
    head = tf.strings.substr(encoded, 0, 8)
    is_png = tf.equal(head, PNG_MAGIC)
    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), JPEG_MAGIC)
    check_format = tf.debugging.Assert(
        tf.logical_or(is_png, is_jpeg),
        ["`image_bytes` must hold PNG or JPEG files; received an element that is "
         "neither, of length (bytes):", tf.strings.length(encoded)],
        name="image_bytes_must_be_png_or_jpeg",
    )
    with tf.control_dependencies([check_format]):
        # Byte 24 of a PNG is the bit depth in its IHDR header.
        bit_depth = tf.cond(tf.strings.length(encoded) > 24,
                            lambda: tf.strings.substr(encoded, 24, 1),
                            lambda: tf.constant(b""))
    sixteen_bit = tf.logical_and(is_png, tf.equal(bit_depth, b"\x10"))
    image = tf.cond(
        sixteen_bit,
        lambda: tf.cast(tf.io.decode_png(encoded, channels=0, dtype=tf.uint16), tf.float32),
        lambda: tf.cast(
            tf.io.decode_image(encoded, channels=0, dtype=tf.uint8, expand_animations=False),
            tf.float32,
        ),
    )
    image.set_shape([None, None, None])
    found = tf.shape(image)[-1]
    if channels == 3:
        image = tf.cond(tf.equal(found, 4), lambda: image[..., :3], lambda: image)
        found = tf.shape(image)[-1]
    check_channels = tf.debugging.Assert(
        tf.equal(found, channels),
        [f"`image_bytes`: the model takes images with {channels} channel(s); received an "
         "image with shape (height, width, channels) =", tf.shape(image)],
        name="image_bytes_channel_count",
    )
    with tf.control_dependencies([check_channels]):
        image = tf.identity(image)
    image.set_shape([None, None, channels])
    return image


def make_bytes_fn(model, info, normalization=None):
    """Return the body of ``serving_bytes``: encoded images -> masks at their own size.

    Each image is decoded to its stored intensities, resized bilinearly to the model's
    fixed size (a dynamic-size model keeps the image's size), normalized per image as in
    training, and batched; dynamic sizes are zero-padded to a multiple of the stride. The
    mask is brought back to each image's original size (nearest neighbour, TF's
    half-pixel convention) and, when the images of one batch differ in size, padded at
    the bottom and right with ``-1`` to the largest; ``image_size`` gives each image's
    size.

    Args:
        model: the Keras model.
        info: its :class:`GraphInfo`.
        normalization: a normalization description (see
            :mod:`kerasseg.export.normalization`).

    Returns:
        A function ``serve(image_bytes) -> {"mask", "image_size"}``.
    """
    spec = normalization_spec(normalization)
    target = None if info.dynamic else (info.height, info.width)
    channels = info.channels

    def prepare(encoded):
        image = _decode(encoded, channels)
        size = tf.shape(image)[:2]
        if target is not None:
            image = tf.cond(
                tf.reduce_all(tf.equal(size, target)),
                lambda: image,
                lambda: tf.image.resize(image, target, method="bilinear"),
            )
            image = tf.ensure_shape(image, [target[0], target[1], channels])
        image = normalize_image(image, spec)
        ragged = tf.RaggedTensor.from_tensor(image, ragged_rank=1)
        return ragged, size

    def restore(args):
        mask, size, max_size = args
        mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
        pad = max_size - size
        return tf.pad(mask, [[0, pad[0]], [0, pad[1]]], constant_values=MASK_PAD_VALUE)

    def serve(image_bytes):
        encoded = tf.ensure_shape(image_bytes, [None], name="image_bytes_must_be_1d_batch")
        not_empty = tf.debugging.Assert(
            tf.size(encoded) > 0,
            ["`image_bytes` must hold at least one encoded image; received an empty batch"],
            name="image_bytes_not_empty",
        )
        with tf.control_dependencies([not_empty]):
            encoded = tf.identity(encoded)
        images, sizes = tf.map_fn(
            prepare,
            encoded,
            fn_output_signature=(
                tf.RaggedTensorSpec([None, None, channels], tf.float32, ragged_rank=1),
                tf.TensorSpec([2], tf.int32),
            ),
        )
        if target is None:
            batch = images.to_tensor(default_value=0.0)
        else:
            batch = images.to_tensor(default_value=0.0,
                                     shape=[None, target[0], target[1], channels])
        batch.set_shape([None, None, None, channels])
        max_size = tf.reduce_max(tf.concat([sizes, tf.zeros([1, 2], tf.int32)], 0), axis=0)
        if target is None:
            padded, top, left = _pad_to_stride(batch, info)
            _, mask = probabilities_and_mask(model, info, padded)
            mask = mask[:, top:top + max_size[0], left:left + max_size[1]]
            rows = tf.range(max_size[0])[None, :, None] < sizes[:, 0][:, None, None]
            cols = tf.range(max_size[1])[None, None, :] < sizes[:, 1][:, None, None]
            mask = tf.where(tf.logical_and(rows, cols), mask, MASK_PAD_VALUE)
        else:
            batch = tf.ensure_shape(batch, [None, target[0], target[1], channels])
            _, small = probabilities_and_mask(model, info, batch)
            max_sizes = tf.tile(max_size[None], [tf.shape(sizes)[0], 1])
            mask = tf.map_fn(
                restore, (small, sizes, max_sizes),
                fn_output_signature=tf.TensorSpec([None, None], tf.int32),
            )
        return {"mask": mask, "image_size": sizes}

    return serve
