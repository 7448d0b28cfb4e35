"""Report figures as PNG: best / median / worst case panels, label overlays, training curves.

Figures are drawn with Matplotlib's object API (``matplotlib.figure.Figure`` on an Agg
canvas): ``pyplot`` is never imported and the global backend is never changed, so these
functions are safe in scripts, servers and notebooks alike. Every file is written
atomically (:func:`kerasseg.files.atomic_path`).

Label colours come from the colour-blind-safe Okabe-Ito palette: class 1 orange, class 2
sky blue, class 3 bluish green, then yellow, blue, vermillion, reddish purple (cycling).
"""

import csv
import math
import os
from collections.abc import Mapping

import numpy as np

from kerasseg.files import atomic_path
from kerasseg.reporting.tables import class_names_of, select_cases

#: RGB colours of classes 1, 2, ... (class ``k`` uses ``PALETTE[(k - 1) % len(PALETTE)]``).
PALETTE = ((0.902, 0.624, 0.0), (0.337, 0.706, 0.914), (0.0, 0.620, 0.451),
           (0.941, 0.894, 0.259), (0.0, 0.447, 0.698), (0.835, 0.369, 0.0),
           (0.800, 0.475, 0.655))
OVERLAY_ALPHA = 0.5
DPI = 110


def _save_png(figure, path):
    """Save ``figure`` as PNG to ``path`` atomically; return ``path`` as a string."""
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"`path` must end in '.png'. Received: path={path!r}")
    with atomic_path(path, ".png") as temp:
        figure.savefig(temp, format="png", dpi=DPI)
    return path


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def class_color(index):
    """RGB colour (floats in [0, 1]) of class ``index`` >= 1 in overlays.

    Example:
        >>> class_color(1)
        (0.902, 0.624, 0.0)
    """
    return PALETTE[(int(index) - 1) % len(PALETTE)]


# ------------------------------------------------------------------------------ image helpers


def pick_slice(truth, prediction=None):
    """Index along axis 0 of the slice with the most ground-truth foreground.

    Args:
        truth: label map ``(D, H, W)``; non-zero voxels are foreground.
        prediction: optional label map of the same shape, used only when ``truth`` has no
            foreground at all.

    Returns:
        The first slice with the most foreground voxels in ``truth``; if it is empty, the
        same for ``prediction``; if both are empty, the middle slice ``D // 2``.

    Raises:
        ValueError: if ``truth`` is not 3-D or ``prediction`` has another shape.

    Example:
        >>> truth = np.zeros((3, 4, 4), int); truth[2, :2, :2] = 1; truth[1, 0, 0] = 2
        >>> pick_slice(truth)
        2
    """
    truth = np.asarray(truth)
    if truth.ndim != 3:
        raise ValueError(f"`truth` must be a (D, H, W) label map. Received: shape={truth.shape}")
    candidates = [truth]
    if prediction is not None:
        prediction = np.asarray(prediction)
        if prediction.shape != truth.shape:
            raise ValueError(
                "`prediction` must have the shape of `truth`. Received: "
                f"prediction.shape={prediction.shape}, truth.shape={truth.shape}"
            )
        candidates.append(prediction)
    for labels in candidates:
        counts = np.count_nonzero(labels.reshape(labels.shape[0], -1), axis=1)
        if counts.max() > 0:
            return int(np.argmax(counts))
    return truth.shape[0] // 2


def _display_image(image):
    """``(H, W)`` grey or ``(H, W, 3)`` RGB values in [0, 1] with a robust window."""
    image = np.asarray(image, dtype="float64")
    if image.ndim == 3 and image.shape[-1] not in (1, 3):
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return np.zeros(image.shape)
    low, high = np.percentile(finite, [0.5, 99.5])
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.zeros(image.shape)
    return np.clip((np.nan_to_num(image, nan=low) - low) / (high - low), 0.0, 1.0)


def _label_rgba(label):
    label = np.asarray(label)
    rgba = np.zeros(label.shape + (4,))
    for value in np.unique(label):
        if value > 0:
            rgba[label == value] = class_color(value) + (OVERLAY_ALPHA,)
    return rgba


def _show(axes, image, label=None, aspect=1.0, title=None):
    shown = _display_image(image)
    axes.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0.0, vmax=1.0,
                interpolation="antialiased", aspect=aspect)
    if label is not None:
        axes.imshow(_label_rgba(label), interpolation="antialiased", aspect=aspect)
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=10)


def _legend_handles(values, class_names):
    from matplotlib.patches import Patch

    handles = []
    for value in sorted(int(v) for v in values if v > 0):
        name = (str(class_names[value]) if class_names is not None and value < len(class_names)
                else f"class {value}")
        handles.append(Patch(facecolor=class_color(value), edgecolor="black", linewidth=0.5,
                             label=f"{value}: {name}"))
    return handles


def _check_image_label(image, label, names=("image2d", "label2d")):
    image, label = np.asarray(image), np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"`{names[1]}` must be a (H, W) label map. Received: shape={label.shape}")
    if image.ndim not in (2, 3) or image.shape[:2] != label.shape:
        raise ValueError(
            f"`{names[0]}` must be (H, W) or (H, W, C) with (H, W) = {names[1]}.shape. "
            f"Received: {names[0]}.shape={image.shape}, {names[1]}.shape={label.shape}"
        )
    return image, label


# --------------------------------------------------------------------------------- overlays


def save_overlay(image2d, label2d, path, class_names=None, title=None):
    """Save one image with its label map drawn over it in class colours, with a legend.

    Args:
        image2d: ``(H, W)`` or ``(H, W, C)`` image (any range; shown with a 0.5-99.5
            percentile window; channel 0 unless ``C == 3``).
        label2d: ``(H, W)`` label map of class indices (0 = background, not drawn).
        path: the ``.png`` file to write; its folder is created if missing.
        class_names: optional names, index = class (as a data set's ``class_names``).
        title: optional title.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: if the shapes do not fit or ``path`` does not end in ``.png``.

    Example:
        >>> image, _, _, _ = dataset[0].load()  # doctest: +SKIP
        >>> label = predictor.predict_case(dataset[0])  # doctest: +SKIP
        >>> save_overlay(image[12], label[12], "prediction.png",
        ...              class_names=dataset.class_names)  # doctest: +SKIP
    """
    image, label = _check_image_label(image2d, label2d)
    height, width = label.shape
    scale = 5.0 / max(height, width)
    figure = _figure(max(width * scale, 2.5) + 0.2, height * scale + (0.9 if title else 0.6))
    axes = figure.add_subplot()
    _show(axes, image, label, title=title)
    handles = _legend_handles(np.unique(label), class_names)
    if handles:
        figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
                      fontsize=9, frameon=False)
    return _save_png(figure, path)


def _find_case(cases, case_id):
    if isinstance(cases, Mapping):
        if case_id in cases:
            return cases[case_id]
    elif hasattr(cases, "case_ids"):
        if case_id in cases.case_ids:
            return cases[case_id]
    else:
        for index, case in enumerate(cases):
            if str(getattr(case, "case_id", index)) == case_id:
                return case
    raise ValueError(
        f"`cases` must hold every case of the evaluation; case {case_id!r} is missing. Pass "
        "the cases (data set, list or dict by case id) given to evaluate_model."
    )


def _row_title(rank, case_id, dice, index, depth):
    dice = "n/a" if dice is None or not math.isfinite(float(dice)) else f"{float(dice):.3f}"
    where = f", slice {index} of {depth} (axis 0)" if depth > 1 else ""
    return f"{rank.capitalize()}: {case_id}  —  mean foreground Dice {dice}{where}"


def save_case_panels(evaluation, cases, path, class_names=None):
    """Save one PNG with the best, median and worst case of an evaluation.

    One row per case (best, median, worst by ``mean_foreground_dice``, see
    :func:`kerasseg.reporting.select_cases`; fewer rows when fewer distinct cases), three
    columns: the image, the ground truth over it, the prediction over it. For a volume the
    slice along axis 0 with the most ground-truth foreground is shown (see
    :func:`pick_slice`), with its pixel aspect from the case's spacing. Row titles give the
    case id, its mean foreground Dice and the slice; a legend names the class colours.

    Args:
        evaluation: the dict returned by ``evaluate_model(..., keep_predictions=True)``.
        cases: the evaluated cases: a ``CaseDataset``, a list of cases (or ``CaseData``, then
            identified by position as in ``evaluate_model``) or a dict by case id.
        path: the ``.png`` file to write; its folder is created if missing.
        class_names: optional names, index = class (background first, as a data set's
            ``class_names``); by default ``["background"]`` plus the evaluation's classes.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: if the evaluation has no ``predictions``, a shown case is missing from
            ``cases`` or has no label, a prediction's shape differs from the label's, or
            ``path`` does not end in ``.png``.

    Example:
        >>> evaluation = evaluate_model(model_path, val_cases, keep_predictions=True)  # doctest: +SKIP
        >>> save_case_panels(evaluation, val_cases, "runs/hippo/cases.png")  # doctest: +SKIP
    """
    predictions = evaluation.get("predictions") if isinstance(evaluation, dict) else None
    if predictions is None:
        raise ValueError(
            "`evaluation` must hold 'predictions' to draw case panels; run "
            "evaluate_model(..., keep_predictions=True)."
        )
    chosen = select_cases(evaluation)
    if class_names is None:
        class_names = ["background"] + class_names_of(evaluation)
    dice_of = {str(c["case_id"]): c.get("mean_foreground_dice") for c in evaluation["cases"]}
    rows = []
    ranks = {}
    for rank in ("best", "median", "worst"):
        ranks.setdefault(chosen[rank], []).append(rank)
    for case_id, shared in ranks.items():
        rank = " / ".join(shared)
        if case_id not in predictions:
            raise ValueError(f"`evaluation['predictions']` has no entry for case {case_id!r}.")
        case = _find_case(cases, case_id)
        data = case.load() if hasattr(case, "load") else case
        if data.label is None:
            raise ValueError(f"Case {case_id!r} has no label to show as ground truth.")
        truth, prediction = np.asarray(data.label), np.asarray(predictions[case_id])
        if prediction.shape != truth.shape:
            raise ValueError(
                f"The prediction of case {case_id!r} must have the label's shape "
                f"{truth.shape}. Received: shape={prediction.shape}"
            )
        index = pick_slice(truth, prediction)
        spacing = getattr(getattr(data, "geometry", None), "spacing_zyx", (1.0, 1.0, 1.0))
        aspect = float(spacing[1]) / float(spacing[2])
        rows.append((rank, case_id, np.asarray(data.image)[index], truth[index],
                     prediction[index], aspect, truth.shape[0], index))

    figure = _figure(9.0, 3.2 * len(rows) + 0.5)
    subfigures = figure.subfigures(len(rows), 1, squeeze=False)[:, 0]
    seen = set()
    for subfigure, (rank, case_id, image, truth, prediction, aspect, depth, index) in zip(
            subfigures, rows):
        subfigure.suptitle(_row_title(rank, case_id, dice_of.get(case_id), index, depth),
                           fontsize=11, fontweight="bold")
        axes = subfigure.subplots(1, 3)
        _show(axes[0], image, aspect=aspect, title="image")
        _show(axes[1], image, truth, aspect=aspect, title="ground truth")
        _show(axes[2], image, prediction, aspect=aspect, title="prediction")
        seen.update(np.unique(truth).tolist() + np.unique(prediction).tolist())
    seen.update(range(1, len(class_names)))
    handles = _legend_handles(seen, class_names)
    if handles:
        figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5),
                      fontsize=10, frameon=False)
    return _save_png(figure, path)


# ---------------------------------------------------------------------------- training curves


def _float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def read_history(history):
    """Normalize a training history to ``{column: list of floats}``.

    Args:
        history: a ``history.csv`` path (as written by training), a list of per-epoch
            dicts, a dict of lists, or a Keras ``History`` object. Missing or empty cells
            become NaN; without an ``epoch`` column epochs are numbered from 1.

    Returns:
        dict of equally long float lists, ``"epoch"`` included.

    Raises:
        FileNotFoundError: if a path is given that does not exist.
        ValueError: if the history is empty or of another type.

    Example:
        >>> read_history([{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.5}])
        {'epoch': [1.0, 2.0], 'loss': [0.9, 0.5]}
    """
    if isinstance(history, (str, os.PathLike)):
        path = os.fspath(history)
        if not os.path.exists(path):
            raise FileNotFoundError(f"History file not found: {path}")
        with open(path, encoding="utf-8", newline="") as handle:
            history = list(csv.DictReader(handle))
    elif hasattr(history, "history") and isinstance(history.history, dict):
        history = history.history
    if isinstance(history, Mapping):
        lengths = {len(values) for values in history.values()}
        if len(lengths) > 1:
            raise ValueError(f"`history` columns must have one length. Received: {lengths}")
        count = lengths.pop() if lengths else 0
        history = [{key: values[i] for key, values in history.items()} for i in range(count)]
    if not isinstance(history, (list, tuple)) or not all(isinstance(r, Mapping) for r in history):
        raise ValueError(
            "`history` must be a history.csv path, a list of per-epoch dicts, a dict of lists "
            f"or a Keras History. Received: {type(history).__name__}"
        )
    if not history:
        raise ValueError("`history` must hold at least one epoch. Received: 0 rows")
    columns = []
    for row in history:
        columns.extend(key for key in row if key not in columns)
    table = {key: [_float(row.get(key)) for row in history] for key in columns}
    if "epoch" not in table:
        table = {"epoch": [float(i + 1) for i in range(len(history))], **table}
    return table


def best_epoch(history, monitor="val_dice"):
    """The epoch with the highest ``monitor`` value (first one on ties), and that value.

    Args:
        history: anything :func:`read_history` accepts.
        monitor: the column to maximise.

    Returns:
        ``(epoch, value)``, or ``(None, None)`` when the column is absent or all NaN.

    Example:
        >>> best_epoch([{"val_dice": 0.5}, {"val_dice": 0.8}, {"val_dice": 0.7}])
        (2, 0.8)
    """
    table = read_history(history)
    values = np.asarray(table.get(monitor, []), dtype="float64")
    if values.size == 0 or not np.isfinite(values).any():
        return None, None
    index = int(np.nanargmax(np.where(np.isfinite(values), values, np.nan)))
    return int(round(table["epoch"][index])), float(values[index])


_PANELS = (("Loss", ("loss", "val_loss")), ("Dice", ("dice", "val_dice")),
           ("Learning rate", ("learning_rate",)))


def plot_history(history_csv_or_list, path):
    """Save the training curves as one PNG.

    Panels, one above the other, each only when its columns are present: loss and
    ``val_loss``; ``dice`` and ``val_dice``; the learning rate (log scale when it spans
    more than a factor 10). The epoch with the best ``val_dice`` is marked in every panel
    with a dotted line, and on the Dice curve with a star and its value.

    Args:
        history_csv_or_list: a ``history.csv`` path or anything :func:`read_history`
            accepts.
        path: the ``.png`` file to write; its folder is created if missing.

    Returns:
        ``path`` as a string.

    Raises:
        FileNotFoundError: if the CSV does not exist.
        ValueError: if the history is empty or has none of the columns loss, val_loss,
            dice, val_dice, learning_rate, or ``path`` does not end in ``.png``.

    Example:
        >>> plot_history("runs/hippo/history.csv", "runs/hippo/curves.png")  # doctest: +SKIP
        'runs/hippo/curves.png'
    """
    table = read_history(history_csv_or_list)
    epochs = np.asarray(table["epoch"])
    panels = [(title, [c for c in columns if c in table and np.isfinite(table[c]).any()])
              for title, columns in _PANELS]
    panels = [(title, columns) for title, columns in panels if columns]
    if not panels:
        wanted = [c for _, columns in _PANELS for c in columns]
        raise ValueError(
            f"`history` must have at least one of the columns {wanted}. "
            f"Received columns: {sorted(table)}"
        )
    best, best_value = best_epoch(table)
    figure = _figure(7.0, 2.4 * len(panels) + 0.3)
    axes_list = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for axes, (title, columns) in zip(axes_list, panels):
        for column in columns:
            values = np.asarray(table[column])
            # Only the epochs with a value: a run validating every few epochs
            # (--val-every) gets a connected validation curve through them.
            kept = np.isfinite(values)
            validation = column.startswith("val_")
            axes.plot(epochs[kept], values[kept], marker="o", markersize=3, linewidth=1.5,
                      linestyle="--" if validation else "-",
                      label=column if column != "learning_rate" else "learning rate")
        if title == "Learning rate":
            values = np.asarray(table["learning_rate"])
            finite = values[np.isfinite(values)]
            if finite.size and finite.min() > 0 and finite.max() / finite.min() > 10:
                axes.set_yscale("log")
        if best is not None:
            axes.axvline(best, color="0.4", linestyle=":", linewidth=1.2,
                         label=f"best val_dice (epoch {best})" if title == "Dice" else None)
            if title == "Dice":
                axes.plot([best], [best_value], marker="*", markersize=14, color="tab:red",
                          linestyle="none")
                axes.annotate(f"{best_value:.4f}", (best, best_value), xytext=(6, -14),
                              textcoords="offset points", fontsize=9, color="tab:red")
        axes.set_ylabel(title)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8, loc="best")
    from matplotlib.ticker import MaxNLocator

    axes_list[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes_list[-1].set_xlabel("epoch")
    figure.suptitle("Training history", fontsize=12)
    return _save_png(figure, path)
