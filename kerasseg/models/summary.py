"""Model size and cost: parameter and FLOP counts, counted from the model itself.

FLOPs are counted by TensorFlow's graph profiler on the model's forward pass traced at a
fixed input shape with batch size 1 (``tf.compat.v1.profiler`` with the
``float_operation`` view, on the traced graph, whose weights are variables of known
shape). A multiply-add counts as two FLOPs; convolutions, transposed convolutions, matrix
products, normalizations, activations and resizes are all included as the profiler
registers them.
"""

import tensorflow as tf


def count_flops(model, input_shape=None):
    """Count the forward-pass FLOPs of ``model`` for one image (or volume).

    Args:
        model: a Keras model with a single image input.
        input_shape: ``(height, width, channels)`` (``(depth, height, width, channels)``
            for a 3-D model) to trace at; required when the model's input has ``None``
            spatial sizes.

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

    def forward(x):
        return model(x, training=False)

    spec = tf.TensorSpec((1,) + shape, tf.float32)
    graph = tf.function(forward, autograph=False).get_concrete_function(spec).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=graph, options=options)
    return int(info.total_float_ops)


def model_table(input_shape=(256, 256, 1), num_classes=2):
    """Return one row per model family of the input's dimensionality: name, size, GFLOPs.

    Args:
        input_shape: ``(height, width, channels)`` to build and count the 2-D families
            at, or ``(depth, height, width, channels)`` for the 3-D families.
        num_classes: output classes.

    Returns:
        A list of dicts with keys ``model``, ``params`` and ``gflops``, one per family in
        ``list_models(spatial_dims=len(input_shape) - 1)``.

    Raises:
        ValueError: for an input shape of neither 3 nor 4 entries.

    Example:
        >>> rows = model_table((64, 64, 1))
        >>> sorted(row["model"] for row in rows)
        ['deeplab', 'fcn8s', 'unet']
    """
    from kerasseg.models import build, list_models

    if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (3, 4):
        raise ValueError("`input_shape` must be (height, width, channels) or (depth, height, "
                         f"width, channels). Received: input_shape={input_shape!r}")
    rows = []
    for name in list_models(spatial_dims=len(input_shape) - 1):
        model = build(name, input_shape=input_shape, num_classes=num_classes)
        rows.append({
            "model": name,
            "params": int(model.count_params()),
            "gflops": count_flops(model) / 1e9,
        })
    return rows


VOLUME_SHAPE = (128, 128, 128, 1)
"""The input shape of the README's table of 3-D families."""


def markdown_table(input_shape=(256, 256, 1), num_classes=2):
    """Return one of the README's model tables (default options) as Markdown text.

    Args:
        input_shape: ``(height, width, channels)`` to count the 2-D families at (the
            README's first table), or ``(depth, height, width, channels)`` for the 3-D
            families (its second, at :data:`VOLUME_SHAPE`).
        num_classes: output classes.

    Returns:
        A Markdown table with one row per model family of that dimensionality.

    Raises:
        ValueError: for an input shape of neither 3 nor 4 entries.
    """
    unit = "image" if len(input_shape) == 3 else "volume"
    lines = [
        f"| model | parameters | GFLOPs (1 {unit}) |",
        "| --- | ---: | ---: |",
    ]
    for row in model_table(input_shape, num_classes):
        lines.append(f"| `{row['model']}` | {row['params']:,} | {row['gflops']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m kerasseg.models.summary
    print(markdown_table())
    print()
    print(markdown_table(VOLUME_SHAPE))
