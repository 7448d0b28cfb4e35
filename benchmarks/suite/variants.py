"""Training-step variants of the U-Net, compared with the default compile.

Each variant changes one thing against the default (``jit_compile=False``, float32,
TensorFlow's thread pools, oneDNN on, transposed-convolution upsampling, the run's batch):
XLA, another batch size, bilinear upsampling, the ``mixed_bfloat16`` policy, the intra-
and inter-op thread counts, or oneDNN off. A variant with the same batch and model starts
from the same weights and trains on the same batch as the default, so its loss trajectory
must match the default's: within :data:`LOSS_TOLERANCE` in float32, within
:data:`BF16_LOSS_TOLERANCE` in bfloat16.
"""

from benchmarks.suite.measure import cpu_has_flag
from benchmarks.suite.training import max_loss_difference

#: Two float32 trajectories agree when no step's loss differs by more than this.
LOSS_TOLERANCE = 1e-3
#: The same for a bfloat16 trajectory against the float32 default.
BF16_LOSS_TOLERANCE = 5e-2
#: A variant counts as faster than the default above this speed-up.
FASTER = 1.05


def _threads_label(intra, inter):
    if (intra, inter) == (0, 0):
        return "TF default threads"
    return f"intra={intra or 'TF'}, inter={inter or 'TF'}"


def variant_specs(settings, cores):
    """The variants a run measures, in order.

    Args:
        settings: a :class:`~benchmarks.suite.settings.Settings`.
        cores: the core count (what ``"cores"`` in a thread setting stands for).

    Returns:
        A list of ``(name, setting text, kind, arguments)``: ``kind`` is ``"local"``
        (measured in this process; arguments among ``batch``, ``options``,
        ``jit_compile``, ``policy``) or ``"process"`` (a fresh process; arguments
        ``threads`` and ``env``).

    Example:
        >>> from benchmarks.suite.settings import get_settings
        >>> [spec[0] for spec in variant_specs(get_settings("quick"), 2)]
        ['default', 'xla', 'bilinear', 'bfloat16']
    """
    specs = []
    for name in settings.variants:
        if name == "default":
            specs.append(("default", "jit_compile=False (Keras 'auto' on CPU)", "local", {}))
        elif name == "xla":
            specs.append(("xla", "jit_compile=True", "local", {"jit_compile": True}))
        elif name == "batch":
            for batch in settings.variant_batches:
                specs.append((f"batch {batch}", f"batch={batch}", "local", {"batch": batch}))
        elif name == "bilinear":
            specs.append(("bilinear", "upsampling='bilinear' (resize + 1x1 conv)", "local",
                          {"options": {"upsampling": "bilinear"}}))
        elif name == "bfloat16":
            specs.append(("bfloat16", "policy mixed_bfloat16", "local",
                          {"policy": "mixed_bfloat16"}))
        elif name == "threads":
            for intra, inter in settings.thread_settings:
                intra = cores if intra == "cores" else int(intra)
                inter = cores if inter == "cores" else int(inter)
                specs.append((f"threads {intra or 'tf'}/{inter or 'tf'}",
                              f"{_threads_label(intra, inter)} (fresh process)", "process",
                              {"threads": [intra, inter]}))
        elif name == "onednn_off":
            specs.append(("oneDNN off", "TF_ENABLE_ONEDNN_OPTS=0 (fresh process)", "process",
                          {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}}))
    return specs


def compare_with_default(row, default, same_batch, same_model):
    """Add ``speedup``, ``max_loss_diff`` and ``trajectory`` to a variant's row.

    Args:
        row: the variant's :func:`~benchmarks.suite.training.measure_training` row.
        default: the default's row.
        same_batch: whether the variant trains with the default's batch.
        same_model: whether it builds the same model.

    Returns:
        ``row``.

    Example:
        >>> row = compare_with_default({"images_per_s": 3.0, "losses": [1.0, 0.9]},
        ...                            {"images_per_s": 2.0, "losses": [1.0, 0.9004]}, True, True)
        >>> row["speedup"], row["trajectory"]
        (1.5, 'same (tol 0.001)')
    """
    row["speedup"] = row["images_per_s"] / default["images_per_s"]
    if not same_batch:
        row["trajectory"] = "n/a (other batch)"
    elif not same_model:
        row["trajectory"] = "n/a (other model)"
    else:
        diff = max_loss_difference(row["losses"], default["losses"])
        bf16 = row.get("policy") == "mixed_bfloat16"
        tolerance = BF16_LOSS_TOLERANCE if bf16 else LOSS_TOLERANCE
        row["max_loss_diff"] = diff
        agrees = diff is not None and diff <= tolerance
        row["trajectory"] = f"same (tol {tolerance:g})" if agrees else "differs"
    return row


def variant_notes(rows, default):
    """Notes under the variants table: how ``kerasseg train`` compiles, and the verdict.

    Args:
        rows: the variants' rows.
        default: the default's row (``None`` if it failed).

    Returns:
        A list of sentences.
    """
    notes = [
        "`kerasseg train` compiles with Keras' defaults: `jit_compile='auto'` (False on a "
        "CPU-only machine and under a distribution strategy, True on a single GPU) and "
        "`steps_per_execution=1`; with steps of seconds on a CPU the per-step Python "
        "overhead that `steps_per_execution` removes is negligible, so it is not a variant.",
    ]
    if not cpu_has_flag("avx512_bf16") and not cpu_has_flag("amx_bf16"):
        notes.append("This CPU has no bfloat16 instructions (avx512_bf16/amx_bf16): the "
                     "bfloat16 variant is emulated.")
    if default is None:
        return notes
    better = [r for r in rows if "error" not in r and r is not default
              and r.get("speedup", 0) > FASTER and str(r.get("trajectory")).startswith("same")]
    if better:
        best = max(better, key=lambda r: r["speedup"])
        notes.append(f"Faster than the default with the same loss trajectory: {best['variant']} "
                     f"({best['setting']}): {best['images_per_s']:.2f} vs "
                     f"{default['images_per_s']:.2f} img/s ({best['speedup']:.2f}x).")
    else:
        notes.append(f"No variant with the same loss trajectory is more than "
                     f"{100 * (FASTER - 1):.0f}% faster than the default.")
    return notes
