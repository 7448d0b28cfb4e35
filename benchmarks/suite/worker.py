"""Measurements that need a fresh TensorFlow process.

Thread-pool sizes and logical devices are fixed when TensorFlow initializes, so these
measurements run in a child process: ``python benchmarks/run.py --worker SPEC_JSON
--worker-result FILE`` (with environment variables such as ``TF_ENABLE_ONEDNN_OPTS``
set by the parent). The child configures TensorFlow before any operation, measures, and
writes its result as JSON to ``FILE``.

Spec kinds:

* ``{"kind": "train", "threads": [intra, inter], "train": {...}}``: one
  :func:`~benchmarks.suite.training.measure_training` call (``0`` threads: TensorFlow's
  choice);
* ``{"kind": "distribution", "compare": {...}}``: one
  :func:`~benchmarks.suite.distribution.compare_strategies` call.
"""

import json
import os
import subprocess
import sys
import tempfile

RUN_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "run.py")


def resolve_threads(value):
    """A thread-setting value as an int: ``"cores"`` is the core count, 0 TensorFlow's choice.

    Example:
        >>> resolve_threads(2), resolve_threads(0)
        (2, 0)
    """
    if value == "cores":
        return os.cpu_count() or 1
    return int(value)


def run_spec(spec):
    """Carry out ``spec`` in this process (which must not have run TensorFlow yet).

    Args:
        spec: a spec dict (see the module docstring).

    Returns:
        The measurement's result dict.

    Raises:
        ValueError: for an unknown spec kind.
    """
    kind = spec.get("kind")
    if kind == "train":
        import tensorflow as tf

        intra, inter = (resolve_threads(v) for v in spec.get("threads", (0, 0)))
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
        from benchmarks.suite.training import measure_training

        train = dict(spec["train"])
        train["size"] = tuple(train["size"])
        return measure_training(**train)
    if kind == "distribution":
        from benchmarks.suite.distribution import compare_strategies, configure_devices

        configure_devices()
        compare = dict(spec.get("compare", {}))
        if "size" in compare:
            compare["size"] = tuple(compare["size"])
        return compare_strategies(**compare)
    raise ValueError(f"Unknown worker spec kind {kind!r}; expected 'train' or 'distribution'.")


def run_in_subprocess(spec, env=None, timeout=1800):
    """Run ``spec`` in a fresh Python process and return its result.

    Args:
        spec: a spec dict (JSON-serializable).
        env: extra environment variables for the child.
        timeout: seconds before the child is stopped.

    Returns:
        The child's result dict.

    Raises:
        RuntimeError: if the child fails; the message holds the end of its output.
    """
    with tempfile.TemporaryDirectory(prefix="kerasseg-bench-") as tmp:
        result_path = os.path.join(tmp, "result.json")
        child_env = {**os.environ, **(env or {})}
        process = subprocess.run(
            [sys.executable, RUN_SCRIPT, "--worker", json.dumps(spec),
             "--worker-result", result_path],
            env=child_env, capture_output=True, text=True, timeout=timeout,
        )
        if process.returncode != 0 or not os.path.exists(result_path):
            tail = (process.stdout + process.stderr)[-3000:]
            raise RuntimeError(f"benchmark worker failed (exit {process.returncode}):\n{tail}")
        with open(result_path, encoding="utf-8") as handle:
            return json.load(handle)
