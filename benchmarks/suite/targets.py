"""The suite's targets, judged from a run's results.

* U-Net depth 4 / 32 filters, 256x256x1, batch 8 training (the default variant) reaches
  at least 60% of the measured 3x3-conv peak GFLOP/s;
* SavedModel batch-1 latency is within 1.1x of Keras for every family;
* the int8 TFLite file is at most 30% of the float32 file for every family.
"""

from benchmarks.suite.settings import UNET_TARGET

TRAINING_PEAK_FRACTION = 60.0
SAVEDMODEL_RATIO = 1.1
INT8_SIZE_RATIO = 0.30


def _training_target(results, settings):
    row = {"target": "U-Net depth 4/base 32, 256x256x1, batch 8 training",
           "threshold": f">= {TRAINING_PEAK_FRACTION:.0f}% of conv peak"}
    variants = [r for r in ((results.get("variants") or {}).get("rows") or []) if "error" not in r]
    default = next((r for r in variants if r["variant"] == "default"), None)
    peak = ((results.get("peak") or {}).get("conv3x3") or {}).get("gflops_best")
    if default is None or default.get("pct_conv_peak") is None or not peak:
        return {**row, "measured": "-", "met": None, "limit": "not measured"}
    target_config = (tuple(settings.variant_shape) == (256, 256, 1)
                     and settings.variant_batch == 8 and settings.variant_model == UNET_TARGET)
    best = max(variants, key=lambda r: r.get("pct_conv_peak") or 0)
    measured = (f"{default['pct_conv_peak']:.0f}% ({default['gflops_per_s']:.1f} of "
                f"{peak:.1f} GFLOP/s)")
    if not target_config:
        return {**row, "measured": measured, "met": None,
                "limit": "smoke shapes, not the target model"}
    return {**row, "measured": measured, "met": default["pct_conv_peak"] >= TRAINING_PEAK_FRACTION,
            "limit": f"default step {default['step_s_median']:.2f} s; best variant "
                     f"{best['variant']} {best['pct_conv_peak']:.0f}%"}


def _worst(summary, key):
    values = [(s[key], s) for s in summary if s.get(key) is not None]
    return (max(values, key=lambda item: item[0]), values) if values else (None, [])


def _worst_ratio_target(summary, key, target, threshold, bound, show, where):
    """A target met when every family's ``key`` ratio is at most ``bound``."""
    row = {"target": target, "threshold": threshold}
    worst, values = _worst(summary, key)
    if not worst:
        return {**row, "measured": "-", "met": None, "limit": "not measured"}
    ratio, which = worst
    return {**row, "measured": f"worst {show(ratio)} ({where(which)})", "met": ratio <= bound,
            "limit": ", ".join(f"{s['family']} {show(r)}" for r, s in values)}


def evaluate_targets(results, settings):
    """Judge the three targets.

    Args:
        results: a run's results dict (sections ``peak``, ``variants``, ``inference``).
        settings: the run's :class:`~benchmarks.suite.settings.Settings`.

    Returns:
        A list of three dicts with ``target``, ``threshold``, ``measured``, ``met``
        (True, False, or None when not measured at the target's configuration) and
        ``limit`` (the measurement that decides it).
    """
    summary = (results.get("inference") or {}).get("summary") or []
    return [
        _training_target(results, settings),
        _worst_ratio_target(
            summary, "savedmodel_keras_latency_ratio",
            "SavedModel inference vs Keras (batch-1 latency)", f"<= {SAVEDMODEL_RATIO}x",
            SAVEDMODEL_RATIO, lambda r: f"{r:.2f}x",
            lambda s: f"{s['family']} {'x'.join(map(str, s['shape']))}"),
        _worst_ratio_target(
            summary, "int8_float32_size_ratio", "TFLite int8 file vs float32 file",
            f"<= {100 * INT8_SIZE_RATIO:.0f}%", INT8_SIZE_RATIO, lambda r: f"{100 * r:.1f}%",
            lambda s: s["family"]),
    ]
