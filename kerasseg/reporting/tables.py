"""Evaluation reports as JSON, CSV and a terminal table, and the choice of cases to show.

The input is the dict returned by :func:`kerasseg.scoring.evaluate_model`: ``cases`` (one
entry per case with per-class ``metrics``), ``summary``, ``mean_foreground_dice``, ``tta``
and, with ``keep_predictions=True``, ``predictions`` (label arrays, never written here).

Non-finite values. A metric is NaN when it is undefined (Dice, Jaccard and distances when
the class is absent from both the truth and the prediction, sensitivity when it is absent
from the truth) and a distance is ``inf`` when the class is absent from exactly one of them
(see :mod:`kerasseg.evaluation`). JSON has no NaN or Infinity, so the JSON report
stays standard JSON: each such value is written as ``null`` and listed under
``"non_finite"`` as ``{JSON pointer (RFC 6901): "nan" | "inf" | "-inf"}``, e.g.
``{"/cases/3/metrics/Anterior/hd95": "inf"}``. :func:`load_report` puts the values back.
The CSV report writes them as ``nan`` and ``inf``, which ``float()``, NumPy and pandas read.
Summary statistics (mean, std, median, min, max) are taken over the finite values only.
"""

import csv
import datetime
import io
import math
import os
import pathlib

import numpy as np

from kerasseg._version import __version__
from kerasseg.files import (
    read_json,
    restore_non_finite,
    to_json_compatible,
    write_json_atomic,
    write_text_atomic,
)

#: CSV columns: one row per case and class, then the summary rows.
CSV_COLUMNS = ("case_id", "class", "dice", "jaccard", "sensitivity", "specificity",
               "hd95_mm", "assd_mm", "volume_true", "volume_pred")
#: CSV column -> metric key in the evaluation.
_COLUMN_METRIC = {"dice": "dice", "jaccard": "jaccard", "sensitivity": "sensitivity",
                  "specificity": "specificity", "hd95_mm": "hd95", "assd_mm": "assd",
                  "volume_true": "volume_true", "volume_pred": "volume_pred"}
#: The ``case_id`` values of the summary rows, in order.
SUMMARY_ROWS = ("mean", "std", "median", "min", "max")
#: Metrics of the terminal table: (key, heading, decimals).
_TABLE_METRICS = (("dice", "Dice", 3), ("jaccard", "Jaccard", 3),
                  ("sensitivity", "Sensitivity", 3), ("specificity", "Specificity", 3),
                  ("hd95", "HD95 (mm)", 2), ("assd", "ASSD (mm)", 2))
_NOTE = ("JSON has no NaN or Infinity: non-finite values are written as null and listed in "
         "`non_finite` by JSON pointer with their value ('nan': metric undefined because the "
         "class is absent, from both truth and prediction for Dice, Jaccard and distances, "
         "from the truth for sensitivity; 'inf': a surface distance with the class absent "
         "from exactly one of them). Summary statistics use finite values only.")
_UNITS = {"hd95": "mm", "assd": "mm", "volume_true": "mm^3", "volume_pred": "mm^3",
          "spacing_zyx": "mm"}


# ------------------------------------------------------------------------------- checking


def _check_evaluation(evaluation):
    if not isinstance(evaluation, dict) or not isinstance(evaluation.get("cases"), (list, tuple)):
        raise ValueError(
            "`evaluation` must be the dict returned by kerasseg.scoring.evaluate_model, with "
            f"a 'cases' list. Received: evaluation of type {type(evaluation).__name__}"
            + (f" with keys {sorted(evaluation)}" if isinstance(evaluation, dict) else "")
        )
    for index, case in enumerate(evaluation["cases"]):
        if not isinstance(case, dict) or "case_id" not in case or not isinstance(
                case.get("metrics"), dict):
            raise ValueError(
                "`evaluation['cases']` entries must be dicts with 'case_id' and 'metrics'. "
                f"Received at index {index}: {case!r:.200}"
            )
    return evaluation


def class_names_of(evaluation):
    """The class names scored in an evaluation, in the order they first appear.

    Args:
        evaluation: the dict returned by :func:`kerasseg.scoring.evaluate_model`.

    Returns:
        List of class names (strings); background is not scored, so not listed.

    Raises:
        ValueError: if ``evaluation`` does not have that form.

    Example:
        >>> class_names_of({"cases": [{"case_id": "a", "metrics": {"liver": {}}}]})
        ['liver']
    """
    names = []
    for case in _check_evaluation(evaluation)["cases"]:
        names.extend(str(name) for name in case["metrics"] if str(name) not in names)
    return names


def _metric(case, name, key):
    metrics = case["metrics"]
    values = metrics.get(name, metrics.get(_int_or_none(name)))
    if values is None or key not in values or values[key] is None:
        return None
    return float(values[key])


def _int_or_none(name):
    try:
        return int(name)
    except (TypeError, ValueError):
        return None


def describe(values):
    """Mean, std (population), median, min and max of the finite values.

    Args:
        values: numbers; NaN and infinite ones are left out (and counted).

    Returns:
        dict with ``mean``, ``std``, ``median``, ``min``, ``max`` (NaN when no value is
        finite), ``n`` (finite values) and ``n_not_finite``; the same rule as the summary of
        :func:`kerasseg.scoring.evaluate_model`.

    Example:
        >>> describe([0.5, 1.0, float("nan")])["mean"]
        0.75
    """
    values = np.asarray([v for v in values if v is not None], dtype="float64")
    finite = values[np.isfinite(values)]
    stats = {}
    for key, function in (("mean", np.mean), ("std", np.std), ("median", np.median),
                          ("min", np.min), ("max", np.max)):
        stats[key] = float(function(finite)) if finite.size else float("nan")
    stats["n"] = int(finite.size)
    stats["n_not_finite"] = int(values.size - finite.size)
    return stats


# ---------------------------------------------------------------------------- best / worst


def select_cases(evaluation):
    """Pick the best, median and worst case by ``mean_foreground_dice``.

    Cases whose mean foreground Dice is NaN (no foreground in truth nor prediction) are not
    ranked, unless no case has a finite value; then the cases keep their order. Ties keep
    the evaluation's order. With an even number of ranked cases the median is the lower of
    the two middle cases, so it is always a real case.

    Args:
        evaluation: the dict returned by :func:`kerasseg.scoring.evaluate_model`.

    Returns:
        ``{"best": case_id, "median": case_id, "worst": case_id}``; with one case all three
        are that case.

    Raises:
        ValueError: if ``evaluation`` holds no case.

    Example:
        >>> evaluation = {"cases": [
        ...     {"case_id": "a", "metrics": {}, "mean_foreground_dice": 0.9},
        ...     {"case_id": "b", "metrics": {}, "mean_foreground_dice": 0.4},
        ...     {"case_id": "c", "metrics": {}, "mean_foreground_dice": 0.7}]}
        >>> select_cases(evaluation)
        {'best': 'a', 'median': 'c', 'worst': 'b'}
    """
    cases = _check_evaluation(evaluation)["cases"]
    if not cases:
        raise ValueError("`evaluation` must hold at least one case. Received: 0 cases")
    scored = []
    for order, case in enumerate(cases):
        value = case.get("mean_foreground_dice")
        value = float("nan") if value is None else float(value)
        scored.append((value, order, str(case["case_id"])))
    ranked = [item for item in scored if math.isfinite(item[0])] or [
        (0.0, order, case_id) for _, order, case_id in scored]
    ranked.sort(key=lambda item: (item[0], item[1]))
    worst = ranked[0][2]
    best = max(ranked, key=lambda item: (item[0], -item[1]))[2]
    median = ranked[(len(ranked) - 1) // 2][2]
    return {"best": best, "median": median, "worst": worst}


# ------------------------------------------------------------------------------------ JSON
# NaN and infinities become null, listed under "non_finite" (kerasseg.files.to_json_compatible).


def load_report(path):
    """Read a JSON report written by :func:`write_report`, with NaN and inf restored.

    Args:
        path: the ``.json`` report.

    Returns:
        The report dict (``cases``, ``summary``, ``meta``, ...) with every value listed in
        its ``non_finite`` map set back to ``float("nan")``, ``float("inf")`` or
        ``float("-inf")``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.

    Example:
        >>> report = load_report("runs/hippo/eval.json")  # doctest: +SKIP
        >>> report["cases"][0]["metrics"]["Anterior"]["hd95"]  # doctest: +SKIP
        inf
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Report file not found: {path}")
    document = read_json(path)
    return restore_non_finite(document, document.get("non_finite", {}))


# ------------------------------------------------------------------------------------- CSV


def _cell(value):
    if value is None:
        return ""
    return repr(float(value)) if math.isfinite(value) else str(float(value))


def report_rows(evaluation):
    """The rows of the CSV report as dicts keyed by :data:`CSV_COLUMNS`.

    One row per case and class (in the evaluation's order), then for each class the rows
    ``mean``, ``std``, ``median``, ``min`` and ``max`` over the cases (finite values only;
    see :func:`describe`). Distances are in mm, volumes in mm^3; a metric the case lacks is
    ``None``.

    Args:
        evaluation: the dict returned by :func:`kerasseg.scoring.evaluate_model`.

    Returns:
        List of dicts (numbers as floats, possibly NaN or inf).

    Raises:
        ValueError: if ``evaluation`` does not have that form.

    Example:
        >>> rows = report_rows(evaluation)  # doctest: +SKIP
        >>> rows[-1]["case_id"], rows[-1]["class"]  # doctest: +SKIP
        ('max', 'Posterior')
    """
    names = class_names_of(evaluation)
    rows = []
    for case in evaluation["cases"]:
        for name in names:
            row = {"case_id": str(case["case_id"]), "class": name}
            row.update({column: _metric(case, name, key)
                        for column, key in _COLUMN_METRIC.items()})
            rows.append(row)
    for name in names:
        stats = {column: describe([_metric(case, name, key) for case in evaluation["cases"]])
                 for column, key in _COLUMN_METRIC.items()}
        for statistic in SUMMARY_ROWS:
            row = {"case_id": statistic, "class": name}
            row.update({column: stats[column][statistic] for column in _COLUMN_METRIC})
            rows.append(row)
    return rows


def _csv_text(evaluation):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report_rows(evaluation):
        writer.writerow([row["case_id"], row["class"]]
                        + [_cell(row[column]) for column in CSV_COLUMNS[2:]])
    return buffer.getvalue()


# ---------------------------------------------------------------------------------- writing


def report_paths(path):
    """The JSON and CSV paths for a report path.

    Args:
        path: ``X.json``, ``X.csv`` or ``X`` (no extension).

    Returns:
        ``{"json": "X.json", "csv": "X.csv"}``.

    Raises:
        ValueError: for another extension.

    Example:
        >>> report_paths("runs/eval.csv")
        {'json': 'runs/eval.json', 'csv': 'runs/eval.csv'}
    """
    text = os.fspath(path)
    suffix = pathlib.PurePath(text).suffix
    if suffix.lower() in (".json", ".csv"):
        base = text[: -len(suffix)]
    elif suffix == "":
        base = text
    else:
        raise ValueError(
            "`path` must end in one of ['.json', '.csv'] or have no extension. "
            f"Received: path={text!r}"
        )
    if not pathlib.PurePath(base).name:
        raise ValueError(f"`path` must name a file. Received: path={text!r}")
    return {"json": base + ".json", "csv": base + ".csv"}


def write_report(evaluation, path, extra=None):
    """Write an evaluation as ``X.json`` and ``X.csv``, each atomically.

    The JSON holds the whole evaluation except the ``predictions`` arrays, plus ``meta``
    (``extra``, e.g. model and data paths, with ``created``, an ISO 8601 UTC time, and
    ``kerasseg_version`` added unless given), ``units``, ``notes`` and ``non_finite``: NaN
    and inf are written as ``null`` and listed there by JSON pointer, so the file is standard
    JSON (see the module docstring; :func:`load_report` restores them). The CSV has one row
    per case and class with the columns :data:`CSV_COLUMNS` (distances in mm, volumes in
    mm^3; ``nan``/``inf`` written as such), then the summary rows ``mean``, ``std``,
    ``median``, ``min``, ``max`` of each class over the finite values.

    Args:
        evaluation: the dict returned by :func:`kerasseg.scoring.evaluate_model`.
        path: ``X.json``, ``X.csv`` or ``X``; both files are written either way, and the
            folder is created if missing.
        extra: optional dict of metadata for ``meta`` (model path, data path, tta, ...).

    Returns:
        ``{"json": path_of_json, "csv": path_of_csv}``.

    Raises:
        ValueError: if ``path`` has another extension, ``extra`` is not a dict or
            ``evaluation`` does not have the form of ``evaluate_model``'s result.

    Example:
        >>> evaluation = evaluate_model("runs/hippo/best.keras", val_cases)  # doctest: +SKIP
        >>> write_report(evaluation, "runs/hippo/eval", extra={"model": "best.keras"})  # doctest: +SKIP
        {'json': 'runs/hippo/eval.json', 'csv': 'runs/hippo/eval.csv'}
    """
    _check_evaluation(evaluation)
    if extra is not None and not isinstance(extra, dict):
        raise ValueError(
            f"`extra` must be None or a dict. Received: extra of type {type(extra).__name__}"
        )
    paths = report_paths(path)
    meta = dict(extra or {})
    meta.setdefault("created", datetime.datetime.now(datetime.timezone.utc)
                    .isoformat(timespec="seconds"))
    meta.setdefault("kerasseg_version", __version__)
    body = {key: value for key, value in evaluation.items() if key != "predictions"}
    body["meta"] = meta
    body["units"] = dict(_UNITS)
    non_finite = {}
    document = to_json_compatible(body, non_finite=non_finite)
    document["notes"] = _NOTE
    document["non_finite"] = non_finite
    write_json_atomic(paths["json"], document, sort_keys=False)
    write_text_atomic(paths["csv"], _csv_text(evaluation))
    return paths


# ----------------------------------------------------------------------------- terminal table


def _mean_std(stats, decimals):
    if stats["n"] == 0:
        return "n/a"
    return f"{stats['mean']:.{decimals}f} ± {stats['std']:.{decimals}f}"


def format_summary(evaluation):
    """A plain-text table of the evaluation for the terminal.

    One line per class with the number of cases and mean ± std (population) over cases of
    Dice, Jaccard, sensitivity, specificity, HD95 and ASSD (mm); values that are not finite
    are left out of the statistics and counted in a note under the table.

    Args:
        evaluation: the dict returned by :func:`kerasseg.scoring.evaluate_model`.

    Returns:
        The table as a string (lines joined by newlines, no trailing newline).

    Raises:
        ValueError: if ``evaluation`` does not have that form.

    Example:
        >>> print(format_summary(evaluation))  # doctest: +SKIP
        2 cases, TTA off, mean foreground Dice 0.874
        class      cases  Dice           Jaccard        ...  HD95 (mm)     ASSD (mm)
        Anterior       2  0.881 ± 0.012  0.788 ± 0.019  ...  1.50 ± 0.50   0.41 ± 0.03
    """
    names = class_names_of(evaluation)
    cases = evaluation["cases"]
    overall = evaluation.get("mean_foreground_dice")
    if overall is None:
        overall = describe([case.get("mean_foreground_dice") for case in cases])["mean"]
    overall = "n/a" if not math.isfinite(float(overall)) else f"{float(overall):.3f}"
    tta = evaluation.get("tta")
    header = [f"{len(cases)} case{'s' if len(cases) != 1 else ''}"]
    if tta is not None:
        header.append(f"TTA {'on' if tta else 'off'}")
    header.append(f"mean foreground Dice {overall}")
    table = [["class", "cases"] + [heading for _, heading, _ in _TABLE_METRICS]]
    notes = []
    for name in names:
        present = [case for case in cases
                   if name in {str(key) for key in case["metrics"]}]
        line = [name, str(len(present))]
        skipped = []
        for key, heading, decimals in _TABLE_METRICS:
            values = [_metric(case, name, key) for case in present]
            stats = describe(values)
            line.append(_mean_std(stats, decimals))
            nan = sum(1 for v in values if v is not None and math.isnan(v))
            inf = sum(1 for v in values if v is not None and math.isinf(v))
            if nan or inf:
                parts = ([f"{nan} NaN"] if nan else []) + ([f"{inf} inf"] if inf else [])
                skipped.append(f"{heading} {' + '.join(parts)}")
        table.append(line)
        if skipped:
            notes.append(f"  {name}: " + ", ".join(skipped))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [", ".join(header)]
    for row in table:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1])]
        cells += [cell.ljust(width) for cell, width in zip(row[2:], widths[2:])]
        lines.append("  ".join(cells).rstrip())
    if notes:
        lines.append("Left out of mean ± std (NaN: class absent, from truth and prediction "
                     "or for sensitivity from the truth; inf: distance with the class absent "
                     "from one of them):")
        lines.extend(notes)
    return "\n".join(lines)


def format_ranking(result):
    """Return the ranking of :func:`kerasseg.scoring.rank_ensembles` as a text table.

    Args:
        result: the dict that :func:`~kerasseg.scoring.rank_ensembles` returns.

    Returns:
        One line per combination, best first: rank, mean foreground Dice, each class's
        mean Dice and the members.

    Example:
        >>> print(format_ranking({"case_ids": ["a"], "models": ["m1", "m2"], "ranking": [
        ...     {"members": ["m1", "m2"], "mean_foreground_dice": 0.75, "dice": {"organ": 0.75},
        ...      "per_case": [0.75]},
        ...     {"members": ["m1"], "mean_foreground_dice": 0.5, "dice": {"organ": 0.5},
        ...      "per_case": [0.5]}]}))
        rank  mean Dice  organ   members
           1     0.7500  0.7500  m1 + m2
           2     0.5000  0.5000  m1
    """
    names = list(result["ranking"][0]["dice"]) if result["ranking"] else []
    widths = [max(6, len(name)) for name in names]
    head = "  ".join(["rank", "mean Dice"] + [n.ljust(w) for n, w in zip(names, widths)]
                     + ["members"])
    lines = [head]
    for rank, entry in enumerate(result["ranking"], 1):
        cells = [f"{rank:4d}", f"{entry['mean_foreground_dice']:9.4f}"]
        cells += [f"{entry['dice'][n]:.4f}".ljust(w) for n, w in zip(names, widths)]
        cells.append(" + ".join(entry["members"]))
        lines.append("  ".join(cells))
    return "\n".join(lines)
