"""The sections of the benchmark report, rendered as Markdown from the results dict.

``benchmarks/run.py`` prints each section as soon as it is measured and writes them all
to ``RESULTS.md``; ``results.json`` holds the same numbers. A section whose measurement
failed holds ``{"error": "..."}`` and renders as a line saying so.
"""

from benchmarks.suite.measure import TRAINING_FLOPS_FACTOR
from benchmarks.suite.tables import fmt, markdown_table

#: Section key in the results dict -> heading, in report order.
SECTIONS = (
    ("machine", "Machine"),
    ("peak", "Machine peak"),
    ("training", "Training throughput per model family"),
    ("pipeline", "Input pipeline vs training"),
    ("inference", "Inference latency and throughput"),
    ("accuracy", "Accuracy of the zoo entries on held-out cases"),
    ("distribution", "MirroredStrategy vs the default strategy"),
    ("variants", "Training-step variants (U-Net)"),
    ("targets", "Targets"),
)

CONVENTIONS = (
    f"FLOPs: forward FLOPs per image are counted from each model by "
    f"`kerasseg.models.summary.count_flops` (TensorFlow's graph profiler, batch 1, a "
    f"multiply-add = 2 FLOPs); a training step costs {TRAINING_FLOPS_FACTOR}x the forward "
    f"FLOPs per image (forward, gradient w.r.t. activations, gradient w.r.t. weights). "
    f"Peaks: a float32 matmul (2n^3 FLOPs) and a 3x3 `tf.nn.conv2d` (2*B*H*W*Cin*Cout*9 "
    f"FLOPs), timed after warm-up; the peak is the best repeat (the median is shown too). "
    f"Training: `train_on_batch` on one fixed random batch with the training recipe "
    f"(AdamW, Dice + cross-entropy, Dice metric); img/s uses the median timed step. "
    f"Percentages of peak divide the achieved GFLOP/s by the best-repeat conv peak."
)


def _shape(shape):
    return "x".join(str(n) for n in shape) if shape else "-"


def _error(section):
    if isinstance(section, dict) and "error" in section:
        return f"Not measured: {section['error']}"
    return None


def _failed(width, message, *leading):
    """A table row for a failed measurement: its first cells, dashes, then ``message``."""
    return (*leading, *["-"] * (width - len(leading) - 1), message)


def render_machine(results):
    """The machine and software table."""
    machine = results.get("machine") or {}
    run = results.get("run") or {}
    rows = [
        ("CPU", machine.get("cpu_model")),
        ("cores (os.cpu_count / usable)",
         f"{machine.get('cpu_cores')} / {machine.get('usable_cores')}"),
        ("RAM", fmt(machine.get("memory_gib"), 1, " GiB")),
        ("GPUs", "not listed" if machine.get("gpus") is None
         else ", ".join(machine["gpus"]) or "none"),
        ("Python / TensorFlow / Keras", f"{machine.get('python')} / {machine.get('tensorflow')} / "
                                        f"{machine.get('keras')}"),
        ("NumPy / ai-edge-litert", f"{machine.get('numpy')} / {machine.get('ai_edge_litert')}"),
        ("oneDNN", machine.get("onednn_opts")),
        ("load average at start (1/5/15 min)",
         " / ".join(fmt(v, 2) for v in machine.get("load_average") or []) or "-"),
        ("date (UTC)", machine.get("date")),
        ("run", f"{run.get('mode', '-')}, {fmt(run.get('seconds'), 0)} s"
                + (f"; sections {', '.join(run['kept_from']['sections'])} from the run of "
                   f"{run['kept_from']['date']}" if run.get("kept_from") else "")),
    ]
    return markdown_table(["", "value"], rows) + "\n\n" + CONVENTIONS


def render_peak(results):
    """Matmul and conv peak GFLOP/s."""
    peak = results.get("peak") or {}
    if _error(peak):
        return _error(peak)
    rows = []
    if "matmul" in peak:
        m = peak["matmul"]
        rows.append(("matmul", f"{m['n']}x{m['n']} @ {m['n']}x{m['n']}", fmt(m["flops"] / 1e9, 2),
                     fmt(m["best_s"] * 1e3, 2), fmt(m["median_s"] * 1e3, 2),
                     fmt(m["gflops_best"]), fmt(m["gflops_median"]), m["repeats"]))
    for key, label in (("conv3x3", "conv2d 3x3"), ("conv3x3_nchw", "conv2d 3x3 NCHW"),
                       ("conv3x3_bfloat16", "conv2d 3x3 bfloat16")):
        if key not in peak:
            continue
        c = peak[key]
        b, h, w, cin, cout = c["shape"]
        rows.append((label, f"B{b} {h}x{w} {cin}->{cout}", fmt(c["flops"] / 1e9, 2),
                     fmt(c["best_s"] * 1e3, 2), fmt(c["median_s"] * 1e3, 2),
                     fmt(c["gflops_best"]), fmt(c["gflops_median"]), c["repeats"]))
    text = markdown_table(
        ["op", "shape", "GFLOP", "best ms", "median ms", "GFLOP/s (best)", "GFLOP/s (median)",
         "repeats"],
        rows, align="llrrrrrr")
    if "conv3x3_nchw" in peak and "conv3x3" in peak:
        text += (f"\n\nThe models are channels-last (NHWC): the same convolution in NCHW runs at "
                 f"{peak['conv3x3_nchw']['gflops_best'] / peak['conv3x3']['gflops_best']:.2f}x "
                 "the NHWC GFLOP/s.")
    if "conv3x3_bfloat16" in peak:
        text += ("\n\nPercentages of peak elsewhere are of the float32 conv peak, also for the "
                 "bfloat16 training variant.")
    return text


def render_training(results):
    """Per-family training throughput next to the peak."""
    rows_in = results.get("training")
    if _error(rows_in):
        return _error(rows_in)
    rows = []
    for r in rows_in or []:
        if "error" in r:
            rows.append(_failed(10, r["error"][:60], r.get("family"), r.get("input")))
            continue
        rows.append((r["family"], f"{r['input']} ({_shape(r['shape'])})", r["batch"],
                     fmt(r["forward_gflops"], 2), fmt(r["train_gflops_per_image"], 2),
                     fmt(r["step_s_median"], 3), fmt(r["images_per_s"], 1),
                     fmt(r["gflops_per_s"], 1),
                     fmt(r.get("pct_conv_peak"), 0, "%"), fmt(r.get("pct_matmul_peak"), 0, "%")))
    return markdown_table(
        ["family", "input", "batch", "fwd GFLOP/img", "train GFLOP/img", "step s", "img/s",
         "GFLOP/s", "% conv peak", "% matmul peak"],
        rows, align="llrrrrrrrr")


def render_pipeline(results):
    """Input pipeline images/s next to training images/s."""
    rows_in = results.get("pipeline")
    if _error(rows_in):
        return _error(rows_in)
    rows = []
    for r in rows_in or []:
        if "error" in r:
            rows.append(_failed(9, r["error"][:60], r.get("data")))
            continue
        rows.append((r["data"], _shape(r["shape"]), r["cases"], r["batch"], r["backend"],
                     fmt(r["prepare_s"], 1), fmt(r["pipeline_images_per_s"], 0),
                     fmt(r.get("train_images_per_s"), 1), fmt(r.get("ratio"), 1, "x")))
    return markdown_table(
        ["data", "batch shape", "cases", "batch", "augment backend", "prepare s", "pipeline img/s",
         "train img/s (U-Net)", "pipeline/train"],
        rows, align="llrrlrrrr")


def render_inference(results):
    """Latency and throughput per family and format, with the size and speed ratios."""
    section = results.get("inference")
    if _error(section):
        return _error(section)
    section = section or {}
    rows = []
    for r in section.get("rows", []):
        if "error" in r:
            rows.append(_failed(8, r["error"][:60], r.get("family")))
            continue
        rows.append((r["family"], _shape(r["shape"]), r["format"], fmt(r.get("file_mb"), 2),
                     fmt(r["latency_ms"], 2), fmt(r.get("throughput_images_per_s"), 1),
                     r.get("throughput_batch"), fmt(r.get("latency_vs_keras"), 2, "x")))
    text = markdown_table(
        ["family", "input", "format", "file MB", "latency ms (batch 1)", "throughput img/s",
         "at batch", "latency vs Keras"], rows, align="lllrrrrr")
    summary = [(s["family"], _shape(s["shape"]), fmt(s.get("int8_float32_size_ratio"), 3),
                fmt(s.get("savedmodel_keras_latency_ratio"), 2, "x"),
                fmt(s.get("keras_savedmodel_throughput_ratio"), 2, "x"))
               for s in section.get("summary", [])]
    if summary:
        text += "\n\n" + markdown_table(
            ["family", "input", "int8 / float32 file", "SavedModel / Keras latency",
             "Keras / SavedModel throughput"], summary, align="llrrr")
    note = section.get("note")
    return text + (f"\n\n{note}" if note else "")


def render_accuracy(results):
    """Per-class Dice and HD95 of each zoo entry, with and without TTA, and time per case."""
    section = results.get("accuracy")
    if _error(section):
        return _error(section)
    section = section or {}
    entries = section.get("entries") or []
    if not entries:
        return "The zoo registry has no entries: nothing to evaluate."
    rows = []
    for r in entries:
        registry = ", ".join(f"{k} {fmt(float(v), 3)}"
                             for k, v in (r.get("registry_metrics") or {}).items())
        if "error" in r:
            rows.append(_failed(10, f"not evaluated: {r['error'][:80]}", r["entry"],
                                r.get("data") or "-"))
            continue
        shifts = r.get("shifts", 1)
        tta = ("flip" if r["tta"] else "none") + (f", {shifts} shifts" if shifts > 1 else "")
        per_case = r["seconds"] / r["cases"] if r.get("seconds") and r.get("cases") else None
        for name, metrics in r["per_class"].items():
            rows.append((r["entry"], r["data"], r["cases"], tta, name,
                         fmt(metrics.get("dice"), 4), fmt(metrics.get("hd95"), 2),
                         fmt(r.get("mean_foreground_dice"), 4), fmt(per_case, 2),
                         registry or "-"))
    return markdown_table(
        ["entry", "data", "cases", "TTA", "class", "Dice (mean)", "HD95 (mean; mm, px for 2-D)",
         "mean fg Dice", "s/case", "registry metrics"], rows, align="llrllrrrrl")


def render_distribution(results):
    """Strategy comparison rows and the overhead or scaling line."""
    section = results.get("distribution")
    if _error(section):
        return _error(section)
    section = section or {}
    rows = [(r["strategy"], r["replicas"], r["global_batch"], r["steps"], fmt(r["images_per_s"], 1),
             fmt(r["final_loss"], 6)) for r in section.get("rows", [])]
    text = markdown_table(
        ["strategy", "replicas", "global batch", "timed steps", "img/s", "final loss"],
        rows, align="lrrrrr")
    model = section.get("model") or {}
    options = ", ".join(f"{k}={v}" for k, v in model.items() if k != "shape")
    text += (f"\n\nDevices: {', '.join(section.get('devices', []))} ({section.get('kind')}); "
             f"small U-Net {_shape(model.get('shape'))}, {options}, {section.get('loss')} loss, "
             f"{section.get('optimizer')}.")
    if section.get("kind") == "gpu":
        text += (f" Scaling (mirrored / default img/s): {fmt(section.get('scaling'), 2, 'x')}, "
                 f"efficiency {fmt(section.get('efficiency'), 2)}.")
    else:
        weights = section.get("max_abs_weight_diff", float("nan"))
        loss = section.get("final_loss_diff", float("nan"))
        text += (" Overhead (default img/s / mirrored img/s): "
                 f"{fmt(section.get('overhead_ratio'), 2, 'x')}; final weights max abs "
                 f"difference {weights:.2e}, final loss difference {loss:.2e}.")
    return text


def render_variants(results):
    """Training-step variants: img/s, GFLOP/s, % of conv peak, loss agreement."""
    section = results.get("variants")
    if _error(section):
        return _error(section)
    section = section or {}
    rows = []
    for r in section.get("rows", []):
        if "error" in r:
            rows.append(_failed(10, r["error"][:60], r["variant"], r.get("setting", "-")))
            continue
        rows.append((r["variant"], r["setting"], r["batch"], fmt(r["step_s_median"], 3),
                     fmt(r["images_per_s"], 2), fmt(r["gflops_per_s"], 1),
                     fmt(r.get("pct_conv_peak"), 0, "%"), fmt(r.get("speedup"), 2, "x"),
                     "-" if r.get("max_loss_diff") is None else f"{r['max_loss_diff']:.1e}",
                     r.get("trajectory", "-")))
    text = markdown_table(
        ["variant", "setting", "batch", "step s", "img/s", "GFLOP/s", "% conv peak",
         "vs default", "max abs loss diff", "loss trajectory"], rows, align="llrrrrrrrl")
    for note in section.get("notes", []):
        text += f"\n\n{note}"
    return text


def render_targets(results):
    """Each target, its threshold, the measurement and whether it is met."""
    rows_in = results.get("targets") or []
    status = {True: "met", False: "NOT met", None: "not judged"}
    rows = [(t["target"], t["threshold"], t["measured"], status[t.get("met")], t.get("limit", ""))
            for t in rows_in]
    return markdown_table(["target", "threshold", "measured", "status", "limited by"], rows)


_RENDERERS = {
    "machine": render_machine, "peak": render_peak, "training": render_training,
    "pipeline": render_pipeline, "inference": render_inference, "accuracy": render_accuracy,
    "distribution": render_distribution, "variants": render_variants, "targets": render_targets,
}


def render_section(key, results):
    """One section as Markdown: ``## heading``, then its table and notes.

    Args:
        key: a key of :data:`SECTIONS`.
        results: the results dict.

    Returns:
        The section's text.

    Raises:
        KeyError: for an unknown key.
    """
    heading = dict(SECTIONS)[key]
    if key not in results and key not in ("machine", "targets"):
        body = "Not measured in this run."
    else:
        body = _RENDERERS[key](results)
    return f"## {heading}\n\n{body}\n"


def render_results(results):
    """The whole ``RESULTS.md`` text.

    Args:
        results: the results dict of a run.

    Returns:
        Markdown text with a title, a note for smoke runs, and every section of
        :data:`SECTIONS` in order.
    """
    mode = (results.get("run") or {}).get("mode", "full")
    lines = ["# Benchmark results", "",
             f"Written by `python benchmarks/run.py{' --' + mode if mode != 'full' else ''}`; "
             "the same numbers are in `results.json`.", ""]
    if mode == "smoke":
        lines += ["**Smoke run: tiny shapes and single repeats that only check that every section "
                  "runs. These numbers are not measurements.**", ""]
    return "\n".join(lines) + "\n" + "\n".join(render_section(key, results) for key, _ in SECTIONS)
