"""The planner: training settings drawn from a data set's fingerprint.

Every rule here reads the :class:`~kerasseg.plan.fingerprint.Fingerprint`, never a
score: the settings a run gets follow from what its data looks like, as nnU-Net's
experiment planner does. An option the user gives explicitly replaces its row.

The rules (each row of :class:`Plan` records which one fired and why):

* **dimensionality**: 2-D images train in 2-D. Volumes train in 2.5-D (the slice and its
  neighbours as channels) with a 2-D family, in 3-D (patches of the volume, mode ``"3d"``)
  with a 3-D family (``unet3d``, ``vnet``), whose pooling, kernels, patch and batch follow
  nnU-Net's rules (:mod:`kerasseg.plan.topology`). Anisotropic volumes (coarsest spacing at least
  :data:`ANISOTROPY` times the finest) are sliced across their coarse axis with one
  neighbour on each side; near-isotropic ones across all three axes (a multi-view model
  whose prediction averages the three views) with two neighbours on each side.
* **target spacing**: none when all cases share one spacing; otherwise the median spacing
  of each axis, and for anisotropic data the 10th percentile along the coarse axis
  (nnU-Net's rule, so that thin-slice cases are not blurred).
* **intensity normalization**: CT gets a fixed window over the 0.5th-99.5th percentiles of
  the foreground intensities of all cases (as nnU-Net clips CT), scaled to [0, 1]; every
  other modality is z-scored per image and channel.
* **patch size**: whole slices, padded to the network's stride, when they fit in
  :data:`MAX_PATCH` pixels a side; otherwise patches of that size and tiled prediction.
* **network depth**: downsample while the smallest patch side stays at least
  :data:`MIN_BOTTLENECK` pixels, at most :data:`MAX_DEPTH` times (32 filters doubled per
  level then reach 512 at the bottleneck).
* **normalization layers**: instance normalization (no running statistics, so inference
  mode computes exactly what training computed, however short the run).
* **batch size**: as many patches as fill :data:`PIXELS_PER_BATCH` pixels, between 2 and 32.
* **iterations per epoch**: :data:`ITERATIONS_PER_EPOCH`, whatever the number of cases.
* **epochs**: fitted to a time budget at the start of training (the run measures its own
  step time, see :mod:`kerasseg.training.budget`); :data:`DEFAULT_BUDGET` seconds when
  neither epochs nor a budget is given.
* **validation**: validate every N-th epoch, where N keeps the estimated cost of
  validation at most a quarter of the training time.
* **augmentation**: the default preset; with more than one foreground class, no flips or
  90-degree rotations (classes may be told apart by where they lie, as left and right or
  anterior and posterior, and a mirrored image would swap them).
* **precision**: mixed bfloat16 on CPUs with bfloat16 instructions (mixed float16 on a
  GPU), float32 otherwise.
* **validation cases**: a fifth of the cases; a data set of one case validates on it.
"""

import dataclasses
import math
from typing import Any, List

import numpy as np

from kerasseg.plan.fingerprint import Fingerprint

ANISOTROPY = 3.0
MAX_PATCH = 256
MIN_BOTTLENECK = 4
MAX_DEPTH = 4
BASE_FILTERS = 32
PIXELS_PER_BATCH = 2**19
MIN_BATCH, MAX_BATCH = 2, 32
ITERATIONS_PER_EPOCH = 100
DEFAULT_BUDGET = 3600.0
MAX_EPOCHS = 1000
LEARNING_RATE = 1e-3
VALIDATION_SHARE = 0.25
# Inference on a slice costs about a third of a training step on it (forward only).
INFERENCE_COST = 1.0 / 3.0

# Options the planner fills, in the order of its table; each is a keyword of kerasseg.train.
PLANNED = ("mode", "context", "slice_axis", "target_spacing", "normalization", "model_options",
           "patch_size", "batch_size", "steps_per_epoch", "epochs", "budget",
           "learning_rate", "schedule", "warmup_epochs", "val_every", "augment",
           "mixed_precision", "val_fraction")


# Model options the planner may fill (entries of ``model_options``).
PLANNED_MODEL_OPTIONS = ("depth", "base_filters", "normalization", "pool_sizes",
                         "kernel_sizes")


@dataclasses.dataclass
class PlanRow:
    """One planned setting.

    Attributes:
        name: the :func:`kerasseg.train` keyword it sets.
        value: its value.
        reason: the rule that chose it, in words (or ``"given"``).
        given: whether the user set it (the planner then only records it).
    """

    name: str
    value: Any
    reason: str
    given: bool = False


@dataclasses.dataclass
class Plan:
    """Training settings planned from a fingerprint.

    Attributes:
        model: the model family the plan is for.
        rows: the :class:`PlanRow` of each planned option, in table order.
        fingerprint: the :class:`Fingerprint` it was drawn from.
        notes: warnings about the data (e.g. no case left out for validation).

    Example:
        >>> from kerasseg.data import load_dataset
        >>> from kerasseg.plan import fingerprint
        >>> from kerasseg.sample import hippocampus_path
        >>> fp = fingerprint(load_dataset(hippocampus_path()))
        >>> plan = plan_training(fp, "unet")
        >>> plan.settings()["batch_size"]
        32
    """

    model: str
    rows: List[PlanRow]
    fingerprint: Fingerprint
    notes: List[str] = dataclasses.field(default_factory=list)

    def __getitem__(self, name):
        return self.row(name).value

    def row(self, name):
        """Return the :class:`PlanRow` named ``name``."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def settings(self):
        """Return ``{option: value}`` for every row (keywords of :func:`kerasseg.train`)."""
        return {row.name: row.value for row in self.rows}

    def to_dict(self):
        """Return a JSON-ready dict: the model, each row, the notes and the fingerprint."""
        return {
            "model": self.model,
            "rows": [dataclasses.asdict(row) for row in self.rows],
            "notes": list(self.notes),
            "fingerprint": self.fingerprint.to_dict(),
        }

    def table(self):
        """Return the plan as a text table: option, value, and why (or ``given``).

        Example:
            >>> from kerasseg.data import load_dataset
            >>> from kerasseg.plan import fingerprint
            >>> from kerasseg.sample import hippocampus_path
            >>> plan = plan_training(fingerprint(load_dataset(hippocampus_path())), "unet")
            >>> print(plan.table())
            Plan for unet on 52 case(s), decathlon, 3-D, 1 channel(s) ['MRI']
              median shape 36x49x35 voxels at 1x1x1 mm (z, y, x); classes background 94.8%, ...
              mode             2.5d  ...
              ...
              batch_size       32  ...
              ...
        """
        fp = self.fingerprint
        shape = "x".join(f"{v:g}" for v in fp.median_shape)
        spacing = "x".join(f"{v:g}" for v in fp.median_spacing)
        lines = [
            f"Plan for {self.model} on {fp.cases} case(s), {fp.format}, "
            f"{fp.spatial_dims}-D, {fp.channels} channel(s) {list(fp.modalities)}",
            f"  median shape {shape} voxels at {spacing} mm (z, y, x); classes "
            + ", ".join(f"{name} {freq:.1%}" for name, freq in
                        zip(fp.class_names, fp.class_frequencies)),
        ]
        width = max(len(row.name) for row in self.rows)
        values = [_show(row.value) for row in self.rows]
        value_width = min(40, max(len(v) for v in values))
        for row, value in zip(self.rows, values):
            why = "given" if row.given else row.reason
            lines.append(f"  {row.name:<{width}}  {value:<{value_width}}  {why}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _round_up(value, multiple):
    return int(math.ceil(value / multiple) * multiple)


def auto_patch_size(slice_shapes, stride, max_size=MAX_PATCH):
    """Choose the training patch size from the slice shapes of a data set.

    Slices no larger than ``max_size`` are used whole, padded to the smallest multiple of
    ``stride`` that holds the largest slice. Larger images are trained on patches of
    ``max_size`` (rounded down to a multiple of ``stride``) and predicted by tiling.

    Args:
        slice_shapes: iterable of ``(height, width)`` of the preprocessed slices.
        stride: the model's total stride (height and width must be multiples of it).
        max_size: the largest patch side.

    Returns:
        ``((patch_h, patch_w), reason)``: the patch size and a sentence for the log.

    Raises:
        ValueError: if ``slice_shapes`` is empty.

    Example:
        >>> auto_patch_size([(35, 51), (40, 48)], stride=8)[0]
        (40, 56)
    """
    shapes = [tuple(int(n) for n in shape) for shape in slice_shapes]
    if not shapes:
        raise ValueError("`slice_shapes` must not be empty.")
    cap = max(stride, (max_size // stride) * stride)
    height = max(shape[0] for shape in shapes)
    width = max(shape[1] for shape in shapes)
    patch = (min(_round_up(height, stride), cap), min(_round_up(width, stride), cap))
    if patch[0] >= height and patch[1] >= width:
        reason = (
            f"slices up to {height}x{width}: whole slices, zero-padded to {patch[0]}x{patch[1]} "
            f"(a multiple of the model stride {stride})"
        )
    else:
        reason = (
            f"slices up to {height}x{width} exceed {cap}: training on {patch[0]}x{patch[1]} "
            "patches (foreground-oversampled); prediction tiles whole images with overlap"
        )
    return patch, reason


def _show(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_show(v) for v in value) + ")" if value else "()"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items()) or "{}"
    return str(value)


def _anisotropy(spacing):
    spacing = [s for s in spacing]
    return max(spacing) / min(spacing)


def _coarse_axis(fp):
    """The axis of the largest median spacing when the data is anisotropic, else ``None``."""
    spacing = fp.median_spacing
    if fp.is_volume and _anisotropy(spacing) >= ANISOTROPY:
        return int(np.argmax(spacing))
    return None


def _dimensionality(fp):
    """(mode, context, slice_axis, reason)."""
    if not fp.is_volume:
        return "2d", None, 0, "2-D images"
    ratio = _anisotropy(fp.median_spacing)
    axis = _coarse_axis(fp)
    if axis is not None:
        return "2.5d", 1, axis, (
            f"volumes with anisotropic spacing (coarsest/finest {ratio:.1f} >= {ANISOTROPY:g}): "
            f"slices across the coarse axis {axis}, one neighbour on each side as channels")
    return "2.5d", 2, [0, 1, 2], (
        f"near-isotropic volumes (coarsest/finest spacing {ratio:.1f} < {ANISOTROPY:g}): "
        "slices across all three axes with two neighbours on each side, the three views "
        "averaged at prediction")


def _slicing(fp, mode, planned_mode, planned_context, planned_axis):
    """Context and slice axis for ``mode`` (planned or given): (context, reason, axis, reason)."""
    if mode == planned_mode:
        if mode == "2d":
            return None, "2-D: no neighbouring slices", planned_axis, "2-D images: one plane"
        views = "each view" if isinstance(planned_axis, list) else "one view"
        return (planned_context, f"{planned_context} neighbouring slice(s) on each side",
                planned_axis, f"{views}; see mode")
    coarse = _coarse_axis(fp)
    axis = 0 if coarse is None else coarse
    axis_reason = ("across the coarse axis" if coarse is not None else
                   "across the first axis") if fp.is_volume else "2-D images: one plane"
    if mode == "2d":
        return None, "2-D: no neighbouring slices", axis, axis_reason
    return 1, "one neighbouring slice on each side", axis, axis_reason


def _target_spacing(fp):
    """(target spacing in (x, y[, z]) order or None, target in (z, y, x), reason)."""
    spacings = np.asarray(fp.spacings, float)
    if np.allclose(spacings, spacings[0], rtol=1e-3, atol=0):
        return None, tuple(spacings[0]), "every case has the same spacing: no resampling"
    target = np.median(spacings, axis=0)
    reason = "median spacing of each axis"
    if fp.is_volume and _anisotropy(target) >= ANISOTROPY:
        axis = int(np.argmax(target))
        target[axis] = np.percentile(spacings[:, axis], 10)
        reason += f", the coarse axis {axis} at its 10th percentile (anisotropic data)"
    zyx = tuple(float(round(v, 4)) for v in target)
    xyz = tuple(reversed(zyx)) if fp.spatial_dims == 3 else tuple(reversed(zyx[1:]))
    return list(xyz), zyx, reason


def _normalization(fp):
    if fp.is_ct:
        if fp.channels != 1:
            return "zscore", "CT with several channels: z-score per image and channel"
        stats = fp.intensity[0]
        width = max(stats.p99_5 - stats.p00_5, 1.0)
        center = (stats.p99_5 + stats.p00_5) / 2.0
        return ({"method": "ct_window", "params": {"center": round(center, 2),
                                                   "width": round(width, 2)}},
                "CT: a window over the foreground's 0.5th-99.5th intensity percentiles "
                f"[{stats.p00_5:g}, {stats.p99_5:g}] HU, scaled to [0, 1]")
    return "zscore", "z-score per image and channel (not CT)"


def _resampled(shape, spacing, target_zyx):
    """A case's array shape after resampling from ``spacing`` to ``target_zyx``."""
    return [max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target_zyx)]


def _slice_shapes(fp, target_zyx, axes):
    shapes = []
    for shape, spacing in zip(fp.shapes, fp.spacings):
        resampled = _resampled(shape, spacing, target_zyx)
        for axis in axes:
            shapes.append(tuple(n for i, n in enumerate(resampled) if i != axis))
    return shapes


def trainable_model(model, volumes=None):
    """Return the canonical name of a model family that training accepts for the data.

    The 2-D families train on slices of images or volumes; the 3-D families
    (:func:`kerasseg.list_models` with ``spatial_dims=3``) train on 3-D patches and need
    volumes.

    Args:
        model: a model family name or alias.
        volumes: whether the data holds volumes (``False``: 2-D images), or ``None`` to
            check the name only.

    Returns:
        The canonical name.

    Raises:
        ValueError: for an unknown name (the valid ones are listed), or a 3-D family on
            data of 2-D images.

    Example:
        >>> trainable_model("UNet"), trainable_model("vnet")
        ('unet', 'vnet')
    """
    from kerasseg.models import registry

    canonical = registry.resolve_name(model)
    dims = registry.spatial_dims(canonical)
    if dims == 3 and volumes is not None and not volumes:
        raise ValueError(
            f"`model` {canonical!r} is a 3-D family and the data holds 2-D images; train one "
            f"of the 2-D families {registry.list_models(spatial_dims=2)}. "
            f"Received: model={model!r}")
    return canonical


def plan_training(fingerprint, model="unet", given=None):
    """Plan the training settings of ``model`` on the data ``fingerprint`` describes.

    Args:
        fingerprint: a :class:`~kerasseg.plan.fingerprint.Fingerprint`.
        model: a model family name (``kerasseg.list_models()``); a 3-D family is planned
            in mode ``"3d"`` (see :func:`plan_volumetric`).
        given: options the user set, as :func:`kerasseg.train` keywords; each replaces
            its row (``model_options`` entries replace planned entries one by one).

    Returns:
        A :class:`Plan`.

    Raises:
        ValueError: for an unknown model name, a 3-D family on 2-D images (see
            :func:`trainable_model`), or a given mode that does not fit the family.

    Example:
        >>> from kerasseg.data import load_dataset
        >>> from kerasseg.sample import hippocampus_path
        >>> from kerasseg.plan import fingerprint
        >>> plan = plan_training(fingerprint(load_dataset(hippocampus_path())), "unet")
        >>> plan["mode"], plan["context"], plan["slice_axis"]
        ('2.5d', 2, [0, 1, 2])
        >>> plan["model_options"]
        {'depth': 3, 'base_filters': 32, 'normalization': 'instance'}
    """
    from kerasseg.data.augment import get_augmentation
    from kerasseg.models import registry

    fp = fingerprint
    given = {k: v for k, v in dict(given or {}).items() if v is not None}
    model = trainable_model(model, fp.is_volume)
    if registry.spatial_dims(model) == 3:
        return plan_volumetric(fp, model, given)
    if given.get("mode") == "3d":
        raise ValueError(f"`mode` '3d' is for the 3-D families "
                         f"{registry.list_models(spatial_dims=3)}; {model!r} is a 2-D family. "
                         "Received: mode='3d'")
    rows, notes = [], []
    add = _row_adder(rows, given)

    planned_mode, context, axis, reason = _dimensionality(fp)
    mode = add("mode", planned_mode, reason)
    context, context_reason, axis, axis_reason = _slicing(fp, mode, planned_mode, context, axis)
    add("context", context, context_reason)
    axis = add("slice_axis", axis, axis_reason)
    planned_xyz, target_zyx, reason = _target(fp, given)
    add("target_spacing", planned_xyz, reason)
    add("normalization", *_normalization(fp))

    # Network depth and patch size depend on each other through the stride.
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    axes = [0] if not fp.is_volume else axes
    shapes = _slice_shapes(fp, target_zyx, axes)
    options = dict(given.get("model_options") or {})
    accepted = registry.builder_options(model)
    planned_options, option_reasons = {}, []
    smallest = min(min(int(np.median([s[i] for s in shapes])), MAX_PATCH) for i in (0, 1))
    if "depth" in accepted:
        depth = int(np.clip(math.floor(math.log2(max(smallest, 1) / MIN_BOTTLENECK)),
                            1, MAX_DEPTH))
        planned_options["depth"] = depth
        option_reasons.append(f"depth {depth}: the median slice's short side "
                              f"({smallest} px, capped at {MAX_PATCH}) halved {depth} times "
                              f"stays >= {MIN_BOTTLENECK} px")
    if "base_filters" in accepted and model == "unet":
        planned_options["base_filters"] = BASE_FILTERS
        option_reasons.append(f"{BASE_FILTERS} filters at full resolution")
    if "normalization" in accepted:
        planned_options["normalization"] = "instance"
        option_reasons.append("instance normalization: no running statistics, so the saved "
                              "model in inference mode computes what training computed")
    model_options = {**planned_options, **options}
    kept = [k for k in planned_options if k not in options]
    reason = "; ".join(r for k, r in zip(planned_options, option_reasons) if k in kept) or "given"
    rows.append(PlanRow("model_options", model_options, reason, given=not kept))
    stride = registry.total_stride(model, **model_options)
    patch, reason = auto_patch_size(shapes, stride, max_size=MAX_PATCH)
    patch = add("patch_size", list(patch), reason)
    if isinstance(patch, int):
        patch = [patch, patch]
    elif patch == "auto":
        patch = list(auto_patch_size(shapes, stride, max_size=MAX_PATCH)[0])
    pixels = int(patch[0]) * int(patch[1])
    batch = int(np.clip(PIXELS_PER_BATCH // pixels, MIN_BATCH, MAX_BATCH))
    batch = add("batch_size", batch, f"{PIXELS_PER_BATCH} pixels per batch at "
                f"{patch[0]}x{patch[1]}, within [{MIN_BATCH}, {MAX_BATCH}]")
    steps = _add_schedule(add, rows, given)

    views = len(axes) if fp.is_volume else 1
    val_share = 0.2 if fp.cases > 1 else 1.0
    val_slices = _validation_slices(fp, target_zyx, axes) * val_share
    val_cost = val_slices * INFERENCE_COST
    epoch_cost = steps * batch
    every = max(1, math.ceil(val_cost / (VALIDATION_SHARE * epoch_cost)))
    add("val_every", every, f"validation of about {val_slices:.0f} slices ({views} view(s)) "
        f"costs about {val_cost / epoch_cost:.2f} of an epoch's training; at most "
        f"{VALIDATION_SHARE:.0%} of the time")

    foreground = [name for name, freq in zip(fp.class_names[1:], fp.class_frequencies[1:])]
    if len(foreground) > 1:
        augment = {"preset": "default", "flip_prob": 0.0, "rot90_prob": 0.0}
        reason = (f"default preset without flips or 90-degree rotations: {len(foreground)} "
                  "foreground classes may be told apart by where they lie")
    else:
        augment, reason = "default", "default preset (one foreground class)"
    get_augmentation(augment)
    add("augment", augment, reason)
    _add_closing_rows(add, fp, notes)
    return Plan(model=model, rows=rows, fingerprint=fp, notes=notes)


def _row_adder(rows, given):
    """A function ``add(name, value, reason)`` that appends the planned row to ``rows``, or
    the given value when the user set ``name``, and returns the value the row holds."""
    def add(name, value, reason):
        if name in given and name != "model_options":
            rows.append(PlanRow(name, given[name], "given", True))
        else:
            rows.append(PlanRow(name, value, reason))
        return rows[-1].value
    return add


def _add_schedule(add, rows, given):
    """The rows every plan shares for its length and optimizer; returns the steps per epoch."""
    steps = add("steps_per_epoch", ITERATIONS_PER_EPOCH,
                "fixed, whatever the number of cases (patches are sampled)")
    if "epochs" in given:
        add("epochs", given["epochs"], "given")
        add("budget", given.get("budget"), "epochs given")
    else:
        budget = given.get("budget", DEFAULT_BUDGET)
        rows.append(PlanRow("epochs", None, f"fitted to the budget of {_duration(budget)} "
                            "from the step time measured when training starts"))
        add("budget", DEFAULT_BUDGET, "default budget (no epochs given)")
    add("learning_rate", LEARNING_RATE, "AdamW peak learning rate")
    add("schedule", "cosine", "cosine decay to 0")
    add("warmup_epochs", 1, "one epoch of linear warm-up")
    return steps


def _add_closing_rows(add, fp, notes):
    """Precision and validation split rows, and notes about the data; shared by all plans."""
    add("mixed_precision", True, "mixed precision where this machine has it (bfloat16 on a "
        "CPU with bfloat16 instructions, float16 on a GPU), float32 otherwise; the run logs "
        "which")
    if fp.cases == 1:
        add("val_fraction", 0.2, "one case: it is trained on and validated on")
        notes.append("one case only: validation scores the training case, so they measure "
                     "fit, not generalization")
    else:
        add("val_fraction", 0.2, "a fifth of the cases, split by case")
    small = [name for name, freq in zip(fp.class_names, fp.class_frequencies) if freq == 0]
    if small:
        notes.append(f"classes never present in the masks: {small}")


def _target(fp, given):
    """The planned target spacing (x, y[, z]) with its reason, and the spacing the run
    resamples to in (z, y, x): the given one where set (its ``None`` entries keep an axis)."""
    planned_xyz, target_zyx, reason = _target_spacing(fp)
    target_xyz = given.get("target_spacing", planned_xyz)
    if target_xyz is not None:
        values = list(reversed(target_xyz))
        values = values if len(values) == 3 else [None] + values
        target_zyx = tuple(s if t is None else t for s, t in zip(fp.median_spacing, values))
    return planned_xyz, target_zyx, reason


def plan_volumetric(fingerprint, model, given=None):
    """Plan the training of a 3-D family (mode ``"3d"``) on volumes.

    Dimensionality, target spacing and normalization follow the rules of
    :func:`plan_training`; the network's pooling and kernels per level, the patch and the
    batch come from :func:`kerasseg.plan.topology.plan_topology` for the median volume at
    the target spacing. Augmentation is the 3-D default preset
    (:mod:`kerasseg.data.augment3d`), without mirroring when several foreground classes may
    be told apart by side, and rotating in-plane only for anisotropic data.

    Args:
        fingerprint: a :class:`~kerasseg.plan.fingerprint.Fingerprint` of volumes.
        model: a 3-D family name (``"unet3d"``, ``"vnet"``).
        given: options the user set (each replaces its row).

    Returns:
        A :class:`Plan`.

    Raises:
        ValueError: for 2-D images, a 2-D family, or a given mode other than ``"3d"``.

    Example:
        >>> from kerasseg.data import load_dataset
        >>> from kerasseg.plan import fingerprint
        >>> from kerasseg.sample import hippocampus_path
        >>> plan = plan_volumetric(fingerprint(load_dataset(hippocampus_path())), "unet3d")
        >>> plan["mode"], plan["patch_size"], plan["batch_size"]
        ('3d', [40, 56, 40], 5)
    """
    from kerasseg.data.augment3d import get_augmentation_3d
    from kerasseg.models import registry
    from kerasseg.plan.topology import plan_topology

    fp = fingerprint
    given = {k: v for k, v in dict(given or {}).items() if v is not None}
    model = trainable_model(model, fp.is_volume)
    if registry.spatial_dims(model) != 3:
        raise ValueError(f"`model` must be a 3-D family {registry.list_models(spatial_dims=3)}. "
                         f"Received: model={model!r}")
    if given.get("mode", "3d") != "3d":
        raise ValueError(f"`mode` {given['mode']!r} does not fit the 3-D family {model!r}: it "
                         f"trains in mode '3d'. Received: mode={given['mode']!r}")
    rows, notes = [], []
    add = _row_adder(rows, given)

    ratio = _anisotropy(fp.median_spacing)
    add("mode", "3d", f"a 3-D family on volumes: 3-D patches (coarsest/finest spacing "
        f"{ratio:.1f})")
    add("context", 0, "3-D patches hold their neighbours: no neighbour channels")
    add("slice_axis", 0, "3-D: the volume is not sliced")
    planned_xyz, target_zyx, reason = _target(fp, given)
    add("target_spacing", planned_xyz, reason)
    add("normalization", *_normalization(fp))

    shapes = np.array([_resampled(shape, spacing, target_zyx)
                       for shape, spacing in zip(fp.shapes, fp.spacings)], float)
    median = np.median(shapes, axis=0)
    options = dict(given.get("model_options") or {})
    accepted = registry.builder_options(model)
    # A given depth bounds the planned pooling, so that the planned per-level pool and
    # kernel sizes fit the model the user asked for.
    given_depth = options.get("depth")
    depth_given = isinstance(given_depth, int) and not isinstance(given_depth, bool) \
        and given_depth >= 1
    bounds = {"max_depth": given_depth} if depth_given else {}
    topology = plan_topology(target_zyx, median, isotropic="pool_sizes" not in accepted,
                             **bounds)
    planned_options, option_reasons = {}, []
    if "depth" in accepted:
        planned_options["depth"] = topology.depth
        option_reasons.append(f"depth {topology.depth}: pooling while each pooled feature map "
                              "keeps at least 4 voxels")
    if "base_filters" in accepted and model == "unet3d":
        planned_options["base_filters"] = BASE_FILTERS
        option_reasons.append(f"{BASE_FILTERS} filters at full resolution")
    if "normalization" in accepted:
        planned_options["normalization"] = "instance"
        option_reasons.append("instance normalization (no running statistics)")
    if "pool_sizes" in accepted and (not depth_given or topology.depth == given_depth):
        planned_options["pool_sizes"] = [list(p) for p in topology.pool_sizes]
        planned_options["kernel_sizes"] = [list(k) for k in topology.kernel_sizes]
        if all(p == (2, 2, 2) for p in topology.pool_sizes):
            option_reasons += ["every axis pooled at every level (near-isotropic spacing)",
                               "3x3x3 kernels"]
        else:
            option_reasons += ["an axis is pooled once its spacing is within twice the finest",
                               "kernel 1 along an axis more than twice as coarse as the finest"]
    model_options = {**planned_options, **options}
    kept = [k for k in planned_options if k not in options]
    reason = "; ".join(r for k, r in zip(planned_options, option_reasons) if k in kept) or "given"
    rows.append(PlanRow("model_options", model_options, reason, given=not kept))
    strides = registry.stride_per_axis(model, **model_options)
    if kept:
        # Rounded up to the strides of the options used (the topology's own, unless a
        # given depth left its pooling unplanned).
        patch = [_round_up(int(n), s) for n, s in zip(topology.patch_size, strides)]
        reason = topology.reason
    else:  # the user's architecture: the median volume rounded to its strides, capped
        patch = [int(min(_round_up(n, s), max(s, (128 // s) * s))) for n, s in zip(median, strides)]
        reason = f"median volume rounded to the strides {strides} of the given model options"
    patch = add("patch_size", list(patch), reason)
    if isinstance(patch, int):
        patch = [patch] * 3
    voxels = int(np.prod([int(n) for n in patch]))
    from kerasseg.plan.topology import MAX_BATCH_3D, MIN_BATCH_3D, VOXELS_PER_BATCH

    batch = int(np.clip(VOXELS_PER_BATCH // voxels, MIN_BATCH_3D, MAX_BATCH_3D))
    batch = add("batch_size", batch, f"{VOXELS_PER_BATCH} voxels per batch at "
                f"{'x'.join(str(n) for n in patch)}, within [{MIN_BATCH_3D}, {MAX_BATCH_3D}]")
    steps = _add_schedule(add, rows, given)
    # Validation predicts patch-sized tiles covering each validation case; a tile costs
    # about a third of a training step on one patch.
    tiles = float(np.mean([np.prod(np.ceil(s / np.array(patch, float))) for s in shapes]))
    val_cases = max(1.0, 0.2 * fp.cases) if fp.cases > 1 else 1.0
    val_cost = val_cases * tiles * INFERENCE_COST
    every = max(1, math.ceil(val_cost / (VALIDATION_SHARE * steps * batch)))
    add("val_every", every, f"validation of about {val_cases * tiles:.0f} tiles costs about "
        f"{val_cost / (steps * batch):.2f} of an epoch's training; at most "
        f"{VALIDATION_SHARE:.0%} of the time")
    augment, reasons = {"preset": "default"}, ["3-D default preset"]
    if len(fp.class_names) > 2:
        augment["mirror_axes"] = []
        reasons.append(f"no mirroring: {len(fp.class_names) - 1} foreground classes may be "
                       "told apart by where they lie")
    coarse = _coarse_axis(fp)
    if coarse is not None:
        augment["rotate_axes"] = [coarse]
        reasons.append(f"rotation about the coarse axis {coarse} only (anisotropic data)")
    get_augmentation_3d(augment)
    add("augment", augment, "; ".join(reasons))
    _add_closing_rows(add, fp, notes)
    return Plan(model=model, rows=rows, fingerprint=fp, notes=notes)


def _validation_slices(fp, target_zyx, axes):
    """Mean slices per case over the views (resampled): what validating one case costs."""
    total = 0.0
    for shape, spacing in zip(fp.shapes, fp.spacings):
        resampled = _resampled(shape, spacing, target_zyx)
        total += sum(resampled[axis] for axis in axes) if fp.is_volume else 1
    return total


def _duration(seconds):
    seconds = float(seconds)
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def parse_duration(value, name="budget"):
    """Return a duration in seconds from a number or a string such as ``"20m"``.

    Args:
        value: seconds (int or float), or a string of a number with an optional unit
            ``s``, ``m``/``min`` or ``h`` (``"90s"``, ``"20m"``, ``"1.5h"``, ``"1200"``).
        name: the argument's name, for the error message.

    Returns:
        A positive float.

    Raises:
        ValueError: for anything else, or a duration that is not positive.

    Example:
        >>> parse_duration("20m"), parse_duration("1.5h"), parse_duration(90)
        (1200.0, 5400.0, 90.0)
    """
    units = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
    seconds = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
        unit = text[len(number):].strip()
        try:
            seconds = float(number) * units[unit]
        except (KeyError, ValueError):
            seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"`{name}` must be a positive duration such as 1200, '90s', '20m' or "
                         f"'1.5h'. Received: {name}={value!r}")
    return seconds
