"""Model size and cost: parameter and FLOP counts, counted from the model itself.

FLOPs are counted by TensorFlow's graph profiler on the model's forward pass traced at a
fixed input shape with batch size 1 (``tf.compat.v1.profiler`` with the
``float_operation`` view). A multiply-add counts as two FLOPs; convolutions, transposed
convolutions, matrix products, normalizations, activations and resizes are all included
as the profiler registers them.
"""

import tensorflow as tf


def count_flops(model, input_shape=None):
    """Count the forward-pass FLOPs of ``model`` for one image.

    Args:
        model: a Keras model with a single image input.
        input_shape: ``(height, width, channels)`` to trace at; required when the
            model's input has ``None`` height or width.

    Returns:
        The number of floating-point operations (int) for a batch of one.

    Raises:
        ValueError: if the input shape is not fully known.

    Example:
        >>> import kerasseg
        >>> model = kerasseg.build("unet", input_shape=(64, 64, 1), depth=2, base_filters=4)
        >>> count_flops(model) > 0
        True
    """
    shape = tuple(input_shape) if input_shape is not None else tuple(model.input_shape[1:])
    if any(dim is None for dim in shape):
        raise ValueError(
            "`input_shape` must be fully known to count FLOPs (the model's input has "
            f"None dimensions). Received: input_shape={shape!r}"
        )
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec((1,) + shape, tf.float32)
    forward = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(forward)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return int(info.total_float_ops)


def model_table(input_shape=(256, 256, 1), num_classes=2):
    """Return one row per model family: name, parameters and GFLOPs at ``input_shape``.

    Args:
        input_shape: ``(height, width, channels)`` to build and count at.
        num_classes: output classes.

    Returns:
        A list of dicts with keys ``model``, ``params`` and ``gflops``.

    Example:
        >>> rows = model_table((64, 64, 1))
        >>> sorted(row["model"] for row in rows)
        ['deeplab', 'fcn8s', 'unet']
    """
    from kerasseg.models import build, list_models

    rows = []
    for name in list_models():
        model = build(name, input_shape=input_shape, num_classes=num_classes)
        rows.append({
            "model": name,
            "params": int(model.count_params()),
            "gflops": count_flops(model) / 1e9,
        })
    return rows


def markdown_table(input_shape=(256, 256, 1), num_classes=2):
    """Return the README's model table (default options) as Markdown text.

    Args:
        input_shape: ``(height, width, channels)`` to count at.
        num_classes: output classes.

    Returns:
        A Markdown table with one row per model family.
    """
    lines = [
        "| model | parameters | GFLOPs (1 image) |",
        "| --- | ---: | ---: |",
    ]
    for row in model_table(input_shape, num_classes):
        lines.append(f"| `{row['model']}` | {row['params']:,} | {row['gflops']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m kerasseg.models.summary
    print(markdown_table())
