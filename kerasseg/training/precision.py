"""Mixed precision: float16 on GPUs, bfloat16 where the hardware supports it.

Model heads are built with ``dtype="float32"`` so the last layer and the loss stay in
float32 under any policy. Keras wraps the optimizer in a ``LossScaleOptimizer`` when the
policy is ``mixed_float16``.
"""

import logging

import keras
import tensorflow as tf

log = logging.getLogger("kerasseg")


def _cpu_has_bfloat16():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_policy(requested=True):
    """Pick the dtype policy for this machine.

    Args:
        requested: ``False`` for float32; ``True`` to choose automatically
            (``mixed_float16`` on a GPU, ``mixed_bfloat16`` on a TPU or a CPU with
            bfloat16 instructions); or a policy name (``"mixed_float16"``,
            ``"mixed_bfloat16"``, ``"float32"``) to force one.

    Returns:
        A tuple ``(policy_name, message)``; the message says what was chosen and why,
        including a fall-back to float32 where mixed precision is unsupported.

    Raises:
        ValueError: for an unknown policy name.

    Example:
        >>> choose_policy(False)
        ('float32', 'mixed precision off: training in float32')
    """
    valid = (True, False, "mixed_float16", "mixed_bfloat16", "float32")
    if requested not in valid:
        raise ValueError(
            f"`mixed_precision` must be one of {list(valid)}. Received: mixed_precision={requested!r}"
        )
    if requested is False or requested == "float32":
        return "float32", "mixed precision off: training in float32"
    if isinstance(requested, str):
        return requested, f"mixed precision: {requested} (requested)"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16", "mixed precision: mixed_float16 on GPU, last layer in float32"
    if tf.config.list_logical_devices("TPU"):
        return "mixed_bfloat16", "mixed precision: mixed_bfloat16 on TPU, last layer in float32"
    if _cpu_has_bfloat16():
        return "mixed_bfloat16", "mixed precision: mixed_bfloat16 on a CPU with bfloat16 units"
    return "float32", (
        "mixed precision requested but unsupported here (no GPU, no TPU, and this CPU has "
        "no bfloat16 instructions): training in float32"
    )


def set_policy(requested=True):
    """Choose a policy with :func:`choose_policy`, make it global and log why.

    Args:
        requested: as for :func:`choose_policy`.

    Returns:
        The policy name that is now global.
    """
    name, message = choose_policy(requested)
    log.warning(message) if "unsupported" in message else log.info(message)
    keras.mixed_precision.set_global_policy(name)
    return name
