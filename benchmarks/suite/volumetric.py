"""The volumetric (3-D) benchmark's settings, comparisons and report, without TensorFlow or torch.

``benchmarks/volumetric.py`` measures, in child processes, kerasseg's ``unet3d`` against a
MONAI 3-D U-Net on the torch CPU wheel (a separate virtual environment runs
``benchmarks/volumetric_peer.py``):

* training throughput, voxels/s after warm-up, with the same patch, batch, widths per
  level, Dice + cross-entropy loss and AdamW;
* sliding-window inference of a whole volume, seconds and peak RSS, kerasseg's
  :meth:`kerasseg.inference.Predictor.predict_volume` against MONAI's
  ``sliding_window_inference`` at the same patch, overlap 0.5 and Gaussian blending
  (sigma = patch / 8).

This module holds what needs neither framework: what each mode measures
(:func:`get_settings`), the ratios and targets (:func:`training_comparisons`,
:func:`inference_comparisons`), the Markdown section (:func:`render_section`) and its
place in ``RESULTS.md`` between markers (:func:`replace_section`).
"""

import dataclasses
import math

from benchmarks.suite.tables import fmt, markdown_table

MODES = ("full", "quick")
#: MONAI networks the peer can build (see ``volumetric_peer.py``).
MONAI_NETS = ("basicunet", "dynunet")
#: kerasseg voxels/s over MONAI voxels/s, training (the issue's target).
TRAIN_TARGET = 1.5
#: MONAI seconds over kerasseg seconds per volume, sliding-window inference.
INFERENCE_TARGET = 2.0

HEADING = "## Volumetric (3-D) benchmarks"
START, END = "<!-- volumetric: start -->", "<!-- volumetric: end -->"
MIB = 1024 ** 2
#: Training precisions: float32 on both sides, and bfloat16 (Keras' ``mixed_bfloat16``
#: policy, which ``kerasseg train`` plans on CPUs with bfloat16 instructions; torch's
#: ``autocast`` to bfloat16 on the MONAI side).
PRECISIONS = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class VolumeSpec:
    """One inference volume: ``kind`` is ``"hippocampus"`` (a real case, patch ``patch``)
    or ``"synthetic"`` (standard-normal float32 of ``shape``, seeded)."""

    label: str
    kind: str
    patch: tuple
    shape: tuple = None
    repeats: int = 1


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one mode measures.

    Attributes:
        mode: ``"full"`` or ``"quick"``.
        classes: output classes of every network (3: background and the two hippocampus
            parts).
        depth: poolings of kerasseg's ``unet3d`` (and of MONAI's DynUNet).
        base_filters: the first level's width; widths double per level up to 320.
        train_patches: training patch sizes ``(D, H, W)``.
        train_batch: volumes per training step.
        train_warmup: untimed steps first (tracing, allocation).
        train_steps: timed steps.
        train_precisions: training precisions measured (:data:`PRECISIONS`).
        volumes: inference volumes (:class:`VolumeSpec`).
        overlap: sliding-window overlap.
        sigma_scale: the Gaussian's sigma as a fraction of the patch.
        sw_batch: windows per forward pass (kerasseg's Predictor uses 2 in 3-D).
        peak_shape: ``(B, H, W, Cin, Cout)`` of the suite's 3x3 conv peak.
        peak3d_shape: ``(B, D, H, W, Cin, Cout)`` of the 3x3x3 conv peak.
        peak_repeats: timed repeats of each peak.
    """

    mode: str
    classes: int
    depth: int
    base_filters: int
    train_patches: tuple
    train_batch: int
    train_warmup: int
    train_steps: int
    volumes: tuple
    overlap: float = 0.5
    sigma_scale: float = 0.125
    sw_batch: int = 2
    peak_shape: tuple = (8, 128, 128, 64, 64)
    peak3d_shape: tuple = (2, 40, 56, 40, 32, 32)
    peak_repeats: int = 10
    train_precisions: tuple = PRECISIONS


def get_settings(mode):
    """The settings of ``mode`` (``"full"`` or ``"quick"``).

    Example:
        >>> get_settings("full").train_patches
        ((40, 56, 40), (64, 64, 64))
    """
    if mode == "full":
        return Settings(
            mode="full", classes=3, depth=3, base_filters=32,
            train_patches=((40, 56, 40), (64, 64, 64)), train_batch=2, train_warmup=3,
            train_steps=10,
            volumes=(VolumeSpec("hippocampus", "hippocampus", (40, 56, 40), repeats=5),
                     VolumeSpec("synthetic 512x512x300", "synthetic", (128, 128, 128),
                                shape=(512, 512, 300))))
    if mode == "quick":
        return Settings(
            mode="quick", classes=3, depth=3, base_filters=4,
            train_patches=((16, 32, 16), (32, 32, 32)), train_batch=2, train_warmup=1,
            train_steps=2,
            volumes=(VolumeSpec("hippocampus", "hippocampus", (24, 32, 24)),
                     VolumeSpec("synthetic 48x48x40", "synthetic", (32, 32, 32),
                                shape=(48, 48, 40))),
            peak_shape=(2, 32, 32, 16, 16), peak3d_shape=(1, 16, 16, 16, 8, 8), peak_repeats=2)
    raise ValueError(f"`mode` must be one of {list(MODES)}. Received: mode={mode!r}")


def level_widths(depth, base_filters, max_filters=320):
    """kerasseg ``unet3d``'s widths: levels and bottleneck, doubling, capped at 320.

    Example:
        >>> level_widths(3, 32)
        [32, 64, 128, 256]
    """
    return [min(base_filters * 2 ** level, max_filters) for level in range(depth + 1)]


def voxels(shape):
    """The number of voxels of a spatial shape.

    Example:
        >>> voxels((40, 56, 40))
        89600
    """
    return int(math.prod(int(n) for n in shape))


def _shape(shape):
    return "x".join(str(n) for n in shape) if shape else "-"


def precision(row):
    """A training row's precision (rows measured before precisions were recorded: float32).

    Example:
        >>> precision({}), precision({"precision": "bfloat16"})
        ('float32', 'bfloat16')
    """
    return row.get("precision", "float32")


def _ok(row):
    return isinstance(row, dict) and "error" not in row


def _ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _judge(value, threshold, judged):
    if value is None or not judged:
        return None
    return value >= threshold


# ------------------------------------------------------------------------ comparisons


def training_comparisons(results):
    """kerasseg against each MONAI network at each training patch and precision.

    Args:
        results: the results dict (``training`` rows; ``run.mode``).

    Returns:
        A list of dicts: ``patch``, ``net`` (the MONAI network), ``precision``, ``voxels_ratio``
        (kerasseg voxels/s / MONAI voxels/s), ``gflops_ratio`` (achieved GFLOP/s, the
        same division), ``met`` (``voxels_ratio >= TRAIN_TARGET``; ``None`` when not judged:
        a quick run or a missing measurement).

    Example:
        >>> rows = [{"framework": "kerasseg", "net": "unet3d", "patch": [8, 8, 8],
        ...          "voxels_per_s": 300.0, "gflops_per_s": 30.0},
        ...         {"framework": "monai", "net": "dynunet", "patch": [8, 8, 8],
        ...          "voxels_per_s": 100.0, "gflops_per_s": 20.0}]
        >>> (c,) = training_comparisons({"run": {"mode": "full"}, "training": rows})
        >>> c["voxels_ratio"], c["gflops_ratio"], c["met"]
        (3.0, 1.5, True)
    """
    judged = (results.get("run") or {}).get("mode") == "full"
    rows = [r for r in results.get("training") or [] if _ok(r)]
    out = []
    for row in rows:
        if row["framework"] != "monai":
            continue
        ours = next((r for r in rows if r["framework"] == "kerasseg"
                     and list(r["patch"]) == list(row["patch"])
                     and precision(r) == precision(row)), None)
        voxels_ratio = _ratio(ours and ours.get("voxels_per_s"), row.get("voxels_per_s"))
        out.append({"patch": list(row["patch"]), "net": row["net"], "precision": precision(row),
                    "voxels_ratio": voxels_ratio,
                    "gflops_ratio": _ratio(ours and ours.get("gflops_per_s"),
                                           row.get("gflops_per_s")),
                    "met": _judge(voxels_ratio, TRAIN_TARGET, judged)})
    return out


def inference_comparisons(results):
    """kerasseg against each MONAI network on each inference volume.

    Returns:
        A list of dicts: ``volume``, ``net``, ``time_ratio`` (MONAI s / kerasseg s per
        volume: kerasseg's speed-up), ``rss_ratio`` (MONAI peak RSS / kerasseg peak RSS),
        ``met`` (``time_ratio >= INFERENCE_TARGET``; ``None`` when not judged).

    Example:
        >>> rows = [{"framework": "kerasseg", "net": "unet3d", "volume": "v",
        ...          "seconds_median": 2.0, "peak_rss_mib": 1000.0},
        ...         {"framework": "monai", "net": "basicunet", "volume": "v",
        ...          "seconds_median": 5.0, "peak_rss_mib": 1500.0}]
        >>> (c,) = inference_comparisons({"run": {"mode": "full"}, "inference": rows})
        >>> c["time_ratio"], c["rss_ratio"], c["met"]
        (2.5, 1.5, True)
    """
    judged = (results.get("run") or {}).get("mode") == "full"
    rows = [r for r in results.get("inference") or [] if _ok(r)]
    out = []
    for row in rows:
        if row["framework"] != "monai":
            continue
        ours = next((r for r in rows if r["framework"] == "kerasseg"
                     and r["volume"] == row["volume"]), None)
        time_ratio = _ratio(row.get("seconds_median"), ours and ours.get("seconds_median"))
        out.append({"volume": row["volume"], "net": row["net"], "time_ratio": time_ratio,
                    "rss_ratio": _ratio(row.get("peak_rss_mib"), ours and ours.get("peak_rss_mib")),
                    "met": _judge(time_ratio, INFERENCE_TARGET, judged)})
    return out


# --------------------------------------------------------------------------- report

_STATUS = {True: "met", False: "NOT met", None: "not judged"}


def _name(row):
    return "kerasseg unet3d" if row.get("framework") == "kerasseg" else f"MONAI {row.get('net')}"


def render_training(results):
    """The training table: one row per network and patch, the ratio on the MONAI rows."""
    comparisons = {(tuple(c["patch"]), c["net"], c["precision"]): c
                   for c in training_comparisons(results)}
    rows = []
    for r in results.get("training") or []:
        if not _ok(r):
            rows.append((_name(r), _shape(r.get("patch")), precision(r), *["-"] * 9,
                         f"failed: {str(r.get('error'))[:70]}"))
            continue
        c = comparisons.get((tuple(r["patch"]), r["net"], precision(r)), {})
        rows.append((_name(r), _shape(r["patch"]), precision(r), r["batch"],
                     fmt(r.get("params_m"), 2),
                     fmt(r.get("forward_gflops"), 2), fmt(r["step_s_median"], 3),
                     fmt(r["voxels_per_s"] / 1e3, 1), fmt(r.get("gflops_per_s"), 1),
                     fmt(r.get("pct_conv_peak"), 0, "%"), fmt(r.get("pct_conv3d_peak"), 0, "%"),
                     fmt(c.get("voxels_ratio"), 2, "x") if c else "",
                     _STATUS[c.get("met")] if c else ""))
    return markdown_table(
        ["network", "patch", "precision", "batch", "params M", "fwd GFLOP/volume",
         "step s (median)", "kvoxels/s", "GFLOP/s", "% conv2d peak", "% conv3d peak",
         "kerasseg / this (voxels/s)", f"target >= {TRAIN_TARGET}x"],
        rows, align="lllrrrrrrrrrl")


def render_inference(results):
    """The inference table: one row per network and volume, the ratios on the MONAI rows."""
    comparisons = {(c["volume"], c["net"]): c for c in inference_comparisons(results)}
    rows = []
    for r in results.get("inference") or []:
        if not _ok(r):
            rows.append((_name(r), str(r.get("volume")), *["-"] * 8,
                         f"failed: {str(r.get('error'))[:70]}"))
            continue
        c = comparisons.get((r["volume"], r["net"]), {})
        rows.append((_name(r), f"{r['volume']} ({_shape(r['shape'])})", _shape(r["patch"]),
                     r.get("windows", "-"), fmt(r["seconds_median"], 2),
                     fmt(r["peak_rss_mib"], 0), fmt(r.get("rss_rise_mib"), 0),
                     fmt(c.get("time_ratio"), 2, "x") if c else "",
                     fmt(c.get("rss_ratio"), 2, "x") if c else "",
                     _STATUS[c.get("met")] if c else "", r.get("repeats", 1)))
    return markdown_table(
        ["network", "volume", "patch", "windows", "s / volume (median)", "peak RSS MiB",
         "RSS rise MiB", "this / kerasseg (s)", "this / kerasseg (peak RSS)",
         f"target >= {INFERENCE_TARGET}x (s)", "repeats"],
        rows, align="lllrrrrrrlr")


def _peak_line(results):
    peak = results.get("peak") or {}
    parts = []
    conv = peak.get("conv3x3")
    if conv and "error" not in conv:
        b, h, w, cin, cout = conv["shape"]
        parts.append(f"3x3 `tf.nn.conv2d` B{b} {h}x{w} {cin}->{cout}: "
                     f"{conv['gflops_best']:.1f} GFLOP/s (the suite's conv peak)")
    conv3d = peak.get("conv3x3x3")
    if conv3d and "error" not in conv3d:
        b, d, h, w, cin, cout = conv3d["shape"]
        parts.append(f"3x3x3 `tf.nn.conv3d` B{b} {d}x{h}x{w} {cin}->{cout}: "
                     f"{conv3d['gflops_best']:.1f} GFLOP/s")
    if not parts:
        return "Machine peak: not measured."
    return "Machine peak (float32, best of the repeats): " + "; ".join(parts) + "."


def render_machine(results):
    """One paragraph: command, machine, versions, date, load."""
    machine = results.get("machine") or {}
    run = results.get("run") or {}
    peer = results.get("peer") or {}
    load = machine.get("load_average") or []
    load_end = machine.get("load_average_end") or []
    return (
        f"Command: `{run.get('command', 'python benchmarks/volumetric.py')}` ({run.get('mode')} "
        f"run, {fmt(run.get('seconds'), 0)} s). Machine: {machine.get('cpu_model')}, "
        f"{machine.get('cpu_cores')} cores ({machine.get('usable_cores')} usable), "
        f"{fmt(machine.get('memory_gib'), 1)} GiB RAM; load average "
        f"{' / '.join(fmt(v, 2) for v in load) or '-'} at the start, "
        f"{' / '.join(fmt(v, 2) for v in load_end) or '-'} at the end. Versions: Python "
        f"{machine.get('python')}, TensorFlow {machine.get('tensorflow')}, Keras "
        f"{machine.get('keras')}, NumPy {machine.get('numpy')}; peer: Python "
        f"{peer.get('python', '-')}, torch {peer.get('torch', '-')} "
        f"({peer.get('torch_threads', '-')} threads), MONAI {peer.get('monai', '-')}, NumPy "
        f"{peer.get('numpy', '-')}. Date (UTC): {machine.get('date')}.")


def render_notes(results):
    """What was compared, and how the two networks differ."""
    config = results.get("config") or {}
    widths = config.get("widths")
    widths_text = ", ".join(str(w) for w in widths) if widths else "-"
    basic = config.get("basicunet_features")
    kept = results.get("kept") or {}
    earlier = [f"- The {part} rows come from an earlier run (`{run.get('command')}`, "
               f"{run.get('date')}, {fmt(run.get('seconds'), 0)} s) on the same machine."
               for part, run in sorted(kept.items())]
    return "\n".join(earlier + [
        "- Data: training steps use one fixed synthetic batch per patch (standard-normal "
        "images, uniform random labels; throughput does not depend on the values). "
        f"Inference: {config.get('hippocampus_note', 'a hippocampus case')}, and a "
        "synthetic standard-normal volume. Networks have random weights.",
        f"- kerasseg `unet3d`: depth {config.get('depth')}, widths {widths_text} (levels, "
        "then bottleneck), two 3x3x3 convolutions per level, instance normalization, ReLU, "
        "max pooling, 2x2x2 transposed convolutions, concatenation; compiled as `kerasseg "
        "train` compiles (AdamW 1e-3 with weight decay 1e-4 and a cosine schedule, per-variable "
        "gradient clipping at 12, Dice + cross-entropy, Dice metric), timed with "
        "`train_on_batch`, in float32 and in mixed bfloat16 (Keras' `mixed_bfloat16` policy, "
        "which `kerasseg train` plans on CPUs with bfloat16 instructions; variables and the "
        "last layer in float32). Inference: `Predictor.predict_volume` (softmax, Gaussian "
        "blending in NumPy), float32.",
        f"- MONAI `dynunet`: `DynUNet` with the same widths, kernels 3, strides "
        f"{config.get('dynunet_strides', '-')}, transposed-convolution upsampling, instance "
        "normalization (affine), ReLU, no bias before a normalization. Differences: "
        "downsampling by the first convolution of each level at stride 2 instead of max "
        "pooling.",
        f"- MONAI `basicunet`: `BasicUNet` with features "
        f"{', '.join(str(f) for f in basic) if basic else '-'}, always four "
        "poolings (one more level than kerasseg's depth 3, its widths continued to the cap "
        "320; odd sizes are padded in its decoder), two 3x3x3 convolutions per level, instance "
        "normalization (affine), ReLU, no bias, max pooling, transposed convolutions.",
        "- MONAI training loop: `DiceCELoss(to_onehot_y=True, softmax=True, "
        "include_background=False)`, `torch.optim.AdamW(lr=1e-3, weight_decay=1e-4)`, "
        "per-parameter gradient clipping at 12, no metric; eager PyTorch, NCDHW "
        "(torch's default memory format), in float32 and in bfloat16 (forward pass and loss "
        "under `torch.autocast('cpu', dtype=torch.bfloat16)`). Inference, float32: "
        "`sliding_window_inference(..., overlap, mode='gaussian', sigma_scale)` under "
        "`torch.inference_mode()` with a softmax predictor.",
        f"- Same overlap ({config.get('overlap')}), Gaussian sigma_scale "
        f"({config.get('sigma_scale')}) and windows per forward pass "
        f"({config.get('sw_batch')}) on both sides; voxels/s = batch x patch voxels / median "
        "step. FLOPs per volume are each framework's own count of the forward pass (TensorFlow's "
        "profiler; `torch.utils.flop_counter`, which counts convolutions only), x3 for a "
        "training step. Each measurement runs in its own child process; peak RSS is the "
        "child's `ru_maxrss` (libraries, volume and model included), the rise is over its "
        "RSS just before the timed calls (after a warm-up window).",
    ])


def render_section(results):
    """The section's body (what goes between the markers)."""
    mode = (results.get("run") or {}).get("mode")
    lines = []
    if mode != "full":
        lines += [f"**{mode} run: tiny sizes that only check that every measurement runs. "
                  "These numbers are not measurements.**", ""]
    lines += [render_machine(results), "", _peak_line(results), "",
              "### Training throughput (3-D U-Net)", "", render_training(results), "",
              "### Sliding-window inference of a whole volume", "", render_inference(results),
              "", render_notes(results)]
    return "\n".join(lines) + "\n"


def replace_section(text, body):
    """Put ``body`` between the markers of ``text``, or append the section with its heading.

    Example:
        >>> once = replace_section("# R\\n", "a\\n")
        >>> once == replace_section(once, "a\\n"), replace_section(once, "b\\n").count(START)
        (True, 1)
    """
    block = f"{START}\n{body}{END}"
    if START in text and END in text and text.index(START) < text.index(END):
        return text[:text.index(START)] + block + text[text.index(END) + len(END):]
    return text.rstrip("\n") + f"\n\n{HEADING}\n\n" + block + "\n"
