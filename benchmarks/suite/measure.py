"""Timing helpers, FLOP arithmetic and the description of the machine measured on.

FLOP conventions used throughout the suite:

* a multiply-add counts as two FLOPs;
* an ``n x n`` by ``n x n`` matrix product costs ``2 * n**3`` FLOPs;
* a ``k x k`` convolution of a ``(B, H, W, Cin)`` batch to ``Cout`` channels ("same"
  padding, stride 1) costs ``2 * B * H * W * Cin * Cout * k * k`` FLOPs;
* a model's forward FLOPs are counted from the model by
  :func:`kerasseg.models.summary.count_flops` (batch 1), and a training step costs three
  times the forward pass per image (forward, gradient with respect to the activations,
  gradient with respect to the weights).
"""

import datetime
import os
import platform
import statistics
import time

#: A training step costs this many forward passes (forward + two backward products).
TRAINING_FLOPS_FACTOR = 3


def matmul_flops(n):
    """FLOPs of one ``n x n`` by ``n x n`` float matrix product.

    Args:
        n: the matrix side.

    Returns:
        ``2 * n**3`` (int).

    Example:
        >>> matmul_flops(2)
        16
    """
    return 2 * int(n) ** 3


def conv2d_flops(batch, height, width, in_channels, out_channels, kernel=3):
    """FLOPs of a stride-1, "same"-padded ``kernel x kernel`` convolution.

    Args:
        batch: images in the batch.
        height: output height.
        width: output width.
        in_channels: input channels.
        out_channels: output channels (filters).
        kernel: the kernel side.

    Returns:
        ``2 * batch * height * width * in_channels * out_channels * kernel**2`` (int).

    Example:
        >>> conv2d_flops(1, 2, 2, 1, 1)
        72
    """
    return 2 * batch * height * width * in_channels * out_channels * kernel * kernel


def conv3d_flops(batch, depth, height, width, in_channels, out_channels, kernel=3):
    """FLOPs of a stride-1, "same"-padded ``kernel**3`` 3-D convolution.

    Returns:
        ``2 * batch * depth * height * width * in_channels * out_channels * kernel**3``.

    Example:
        >>> conv3d_flops(1, 2, 2, 2, 1, 1)
        432
    """
    return (2 * batch * depth * height * width * in_channels * out_channels
            * kernel * kernel * kernel)


def training_flops(forward_flops):
    """FLOPs of one training step for one image, given its forward FLOPs.

    Args:
        forward_flops: forward-pass FLOPs for one image.

    Returns:
        ``TRAINING_FLOPS_FACTOR * forward_flops``.

    Example:
        >>> training_flops(10)
        30
    """
    return TRAINING_FLOPS_FACTOR * forward_flops


def gflops_per_second(flops, seconds):
    """Achieved GFLOP/s of ``flops`` operations done in ``seconds``.

    Args:
        flops: operations done.
        seconds: the time they took (positive).

    Returns:
        ``flops / seconds / 1e9`` (float).

    Raises:
        ValueError: if ``seconds`` is not positive.

    Example:
        >>> gflops_per_second(4e9, 2.0)
        2.0
    """
    if not seconds > 0:
        raise ValueError(f"`seconds` must be positive. Received: seconds={seconds!r}")
    return flops / seconds / 1e9


def percent(part, whole):
    """``100 * part / whole``, or ``None`` when either is missing or ``whole`` is zero.

    Example:
        >>> percent(30.0, 120.0)
        25.0
    """
    if part is None or not whole:
        return None
    return 100.0 * part / whole


def time_calls(fn, repeats, warmup=1):
    """Call ``fn()`` ``warmup`` times untimed, then ``repeats`` times timed.

    Args:
        fn: a function of no argument that finishes its work before returning.
        repeats: timed calls (at least 1).
        warmup: untimed calls first (tracing, allocation, caches).

    Returns:
        The list of the timed calls' durations in seconds.

    Raises:
        ValueError: if ``repeats`` is below 1.

    Example:
        >>> len(time_calls(lambda: None, repeats=3, warmup=0))
        3
    """
    if repeats < 1:
        raise ValueError(f"`repeats` must be at least 1. Received: repeats={repeats!r}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summarize_times(times):
    """Best and median of a list of durations.

    Args:
        times: durations in seconds (non-empty).

    Returns:
        dict with ``best_s``, ``median_s`` and ``repeats``.

    Example:
        >>> summarize_times([3.0, 1.0, 2.0])
        {'best_s': 1.0, 'median_s': 2.0, 'repeats': 3}
    """
    times = list(times)
    if not times:
        raise ValueError("`times` must not be empty.")
    return {"best_s": min(times), "median_s": statistics.median(times), "repeats": len(times)}


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib():
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass
    return None


def _version(package):
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_has_flag(flag):
    """Whether ``/proc/cpuinfo`` lists the CPU flag ``flag`` (False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return any(flag in line.split() for line in handle if line.startswith("flags"))
    except OSError:
        return False


def machine_description(list_gpus=False):
    """Describe the machine and software versions the benchmarks run with.

    Args:
        list_gpus: import TensorFlow to list the GPUs it sees (otherwise they are listed
            only when TensorFlow is already imported).

    Returns:
        dict with ``cpu_model``, ``cpu_cores`` (``os.cpu_count()``), ``usable_cores``
        (the process' CPU affinity), ``memory_gib``, ``gpus`` (GPU names TensorFlow sees,
        or ``None`` when not listed), the versions of Python, TensorFlow, Keras, NumPy and
        ai-edge-litert, ``load_average`` (1, 5, 15 minutes) and ``date`` (UTC, ISO 8601).

    Example:
        >>> machine_description()["cpu_cores"] >= 1
        True
    """
    import sys

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    gpus = None
    if list_gpus:
        import tensorflow  # noqa: F401 - registers itself in sys.modules
    if "tensorflow" in sys.modules:
        gpus = [gpu.name for gpu in sys.modules["tensorflow"].config.list_physical_devices("GPU")]
    return {
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "gpus": gpus,
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "ai_edge_litert": _version("ai-edge-litert"),
        "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
