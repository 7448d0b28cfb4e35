"""The machine's measured peak: a large float32 matmul and a 3x3 convolution.

The convolution is also timed in bfloat16 when the run measures the ``mixed_bfloat16``
training variant, whose GFLOP/s can exceed the float32 peak. A 3x3x3 ``tf.nn.conv3d``
(:func:`conv3d_peak`) is the volumetric benchmark's (``benchmarks/volumetric.py``) second peak.

Both run as ``tf.function`` calls on random tensors created beforehand, timed after
warm-up calls; the GFLOP/s of the best and of the median call are reported. On a CPU
TensorFlow executes a call synchronously, so the call's wall time is the work's time.
"""

import tensorflow as tf

from benchmarks.suite.measure import (
    conv2d_flops,
    conv3d_flops,
    gflops_per_second,
    matmul_flops,
    summarize_times,
    time_calls,
)


def _result(flops, times):
    summary = summarize_times(times)
    return {
        "flops": flops,
        **summary,
        "gflops_best": gflops_per_second(flops, summary["best_s"]),
        "gflops_median": gflops_per_second(flops, summary["median_s"]),
    }


def matmul_peak(n=2048, repeats=10, warmup=2):
    """Time ``tf.linalg.matmul`` of two float32 ``n x n`` matrices.

    Args:
        n: the matrix side.
        repeats: timed calls.
        warmup: untimed calls first.

    Returns:
        dict with ``n``, ``flops`` (``2 * n**3``), ``best_s``, ``median_s``, ``repeats``,
        ``gflops_best`` and ``gflops_median``.

    Example:
        >>> matmul_peak(n=64, repeats=2)["flops"]
        524288
    """
    a = tf.random.stateless_normal((n, n), seed=(1, 2))
    b = tf.random.stateless_normal((n, n), seed=(3, 4))
    product = tf.function(tf.linalg.matmul)
    times = time_calls(lambda: product(a, b), repeats=repeats, warmup=warmup)
    return {"n": n, **_result(matmul_flops(n), times)}


def conv_peak(shape=(8, 128, 128, 64, 64), repeats=10, warmup=2, dtype="float32",
              data_format="NHWC"):
    """Time a stride-1 "same" 3x3 ``tf.nn.conv2d``.

    Args:
        shape: ``(batch, height, width, in_channels, out_channels)``.
        repeats: timed calls.
        warmup: untimed calls first.
        dtype: ``"float32"`` or ``"bfloat16"`` (the compute type of ``mixed_bfloat16``).
        data_format: ``"NHWC"`` (Keras ``channels_last``, what kerasseg models use) or
            ``"NCHW"`` (``channels_first``), to compare the layouts.

    Returns:
        dict with ``shape``, ``dtype``, ``data_format``, ``flops`` (``2 * B * H * W * Cin * Cout * 9``),
        ``best_s``, ``median_s``, ``repeats``, ``gflops_best`` and ``gflops_median``.

    Example:
        >>> conv_peak((1, 8, 8, 4, 4), repeats=2)["flops"]
        18432
    """
    batch, height, width, cin, cout = shape
    layout = (batch, height, width, cin) if data_format == "NHWC" else (batch, cin, height, width)
    x = tf.cast(tf.random.stateless_normal(layout, seed=(5, 6)), dtype)
    kernel = tf.cast(tf.random.stateless_normal((3, 3, cin, cout), seed=(7, 8)), dtype)

    @tf.function
    def conv(x, k):
        return tf.nn.conv2d(x, k, strides=1, padding="SAME", data_format=data_format)

    times = time_calls(lambda: conv(x, kernel), repeats=repeats, warmup=warmup)
    flops = conv2d_flops(batch, height, width, cin, cout)
    return {"shape": list(shape), "dtype": dtype, "data_format": data_format,
            **_result(flops, times)}


def conv3d_peak(shape=(2, 40, 56, 40, 32, 32), repeats=10, warmup=2):
    """Time a stride-1 "same" 3x3x3 float32 ``tf.nn.conv3d`` (NDHWC).

    Args:
        shape: ``(batch, depth, height, width, in_channels, out_channels)``.
        repeats: timed calls.
        warmup: untimed calls first.

    Returns:
        dict with ``shape``, ``flops`` (``2 * B * D * H * W * Cin * Cout * 27``), ``best_s``,
        ``median_s``, ``repeats``, ``gflops_best`` and ``gflops_median``.

    Example:
        >>> conv3d_peak((1, 4, 4, 4, 2, 2), repeats=1)["flops"]
        13824
    """
    batch, depth, height, width, cin, cout = shape
    x = tf.random.stateless_normal((batch, depth, height, width, cin), seed=(9, 10))
    kernel = tf.random.stateless_normal((3, 3, 3, cin, cout), seed=(11, 12))

    @tf.function
    def conv(x, k):
        return tf.nn.conv3d(x, k, strides=[1, 1, 1, 1, 1], padding="SAME")

    times = time_calls(lambda: conv(x, kernel), repeats=repeats, warmup=warmup)
    return {"shape": list(shape), **_result(conv3d_flops(*shape), times)}
