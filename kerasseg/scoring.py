"""Scoring a model on labelled cases: per-case metrics at each case's original geometry.

:func:`evaluate_model` predicts every case with a :class:`~kerasseg.inference.Predictor`
(or an :class:`~kerasseg.ensemble.EnsemblePredictor` of several models) and scores it in 3-D against its label at the original grid
(:func:`kerasseg.evaluation.evaluate_case`: Dice, Jaccard, sensitivity, specificity, HD95
and ASSD in mm), then summarizes each metric per class over cases. Its result is what
:mod:`kerasseg.reporting` turns into tables and figures.
"""

import numpy as np

from kerasseg.ensemble import EnsemblePredictor, predictor as make_predictor
from kerasseg.evaluation import evaluate_case

__all__ = ["evaluate_model", "summarize"]

METRICS = ("dice", "jaccard", "sensitivity", "specificity", "hd95", "assd")


def summarize(rows, class_names):
    """Summarize per-case metrics per class: mean, std, median, min and max over cases.

    Non-finite values (HD95 of an empty prediction, say) are left out of the statistics
    and counted under ``n_not_finite``.

    Args:
        rows: per-case entries, each with ``metrics`` (class name to metric to value).
        class_names: the classes to summarize.

    Returns:
        dict: class name to metric to ``{mean, std, median, min, max, n, n_not_finite}``.

    Example:
        >>> rows = [{"metrics": {"A": {"dice": 0.5}}}, {"metrics": {"A": {"dice": 1.0}}},
        ...         {"metrics": {"A": {"dice": float("nan")}}}]
        >>> s = summarize(rows, ["A"])["A"]["dice"]
        >>> s["mean"], s["min"], s["n"], s["n_not_finite"]
        (0.75, 0.5, 2, 1)
    """
    summary = {}
    for name in class_names:
        per_metric = {}
        for metric in METRICS:
            values = np.array([row["metrics"][name][metric] for row in rows
                               if metric in row["metrics"].get(name, {})], dtype="float64")
            finite = values[np.isfinite(values)]
            if values.size == 0:
                continue
            per_metric[metric] = {
                "mean": float(finite.mean()) if finite.size else float("nan"),
                "std": float(finite.std()) if finite.size else float("nan"),
                "median": float(np.median(finite)) if finite.size else float("nan"),
                "min": float(finite.min()) if finite.size else float("nan"),
                "max": float(finite.max()) if finite.size else float("nan"),
                "n": int(finite.size),
                "n_not_finite": int(values.size - finite.size),
            }
        summary[name] = per_metric
    return summary


def evaluate_model(model, cases, tta=False, predictor=None, keep_predictions=False):
    """Evaluate a model per case, in 3-D at each case's original geometry.

    Args:
        model: a ``.keras`` path, a zoo entry name (an ensemble entry included), a list of
            them (an ensemble, see :func:`kerasseg.ensemble.predictor`), a
            :class:`Predictor` or an :class:`~kerasseg.ensemble.EnsemblePredictor`.
        cases: a ``CaseDataset`` or a list of cases with labels.
        tta: flip test-time augmentation.
        predictor: an existing :class:`Predictor` or
            :class:`~kerasseg.ensemble.EnsemblePredictor` to use instead of ``model``.
        keep_predictions: also return each case's predicted label map under
            ``"predictions"`` (case id to array).

    Returns:
        dict with ``cases`` (one entry per case: ``case_id``, ``spacing`` and per-class
        ``metrics``: Dice, Jaccard, sensitivity, specificity, HD95 and ASSD in mm),
        ``summary`` (per class: mean, std, median, min, max over cases),
        ``mean_foreground_dice`` (the mean over cases of each case's mean foreground Dice),
        ``tta`` and ``shifts`` (the predictor's; an ensemble's are described in
        :class:`~kerasseg.ensemble.EnsemblePredictor`) and, for an ensemble, ``ensemble``:
        each member's model, weight, TTA and shifts.

    Raises:
        ValueError: if a case has no label.

    Example:
        >>> report = evaluate_model("runs/h/best.keras", dataset.subset(val_ids))  # doctest: +SKIP
        >>> report["summary"]["Anterior"]["dice"]["mean"]  # doctest: +SKIP
    """
    predictor = predictor or make_predictor(model, tta=tta)
    class_names = list(predictor.info.class_names or range(predictor.num_classes))
    class_names = [str(name) for name in class_names]
    num_classes = max(2, predictor.num_classes)
    rows, predictions = [], {}
    for case in cases:
        data = case.load() if hasattr(case, "load") else case
        if data.label is None:
            raise ValueError(f"Case {getattr(case, 'case_id', '?')} has no label to evaluate against.")
        label = predictor.predict_case(data)
        spacing = data.geometry.spacing_zyx
        metrics = evaluate_case(label, data.label, num_classes, spacing=spacing,
                                class_names=class_names[:num_classes])
        case_id = str(getattr(case, "case_id", len(rows)))
        foreground = [metrics[name]["dice"] for name in class_names[1:num_classes]
                      if np.isfinite(metrics[name]["dice"])]
        rows.append({
            "case_id": case_id,
            "spacing_zyx": list(spacing),
            "shape": list(label.shape),
            "mean_foreground_dice": float(np.mean(foreground)) if foreground else float("nan"),
            "metrics": {name: {k: float(v) for k, v in values.items()}
                        for name, values in metrics.items()},
        })
        if keep_predictions:
            predictions[case_id] = label
    per_case = np.array([row["mean_foreground_dice"] for row in rows], dtype="float64")
    report = {
        "cases": rows,
        "summary": summarize(rows, class_names[1:num_classes]),
        "mean_foreground_dice": float(np.nanmean(per_case)) if per_case.size else float("nan"),
        "tta": predictor.tta,
        "shifts": [list(shift) for shift in predictor.shifts],
    }
    if isinstance(predictor, EnsemblePredictor):
        report["ensemble"] = predictor.member_settings()
    if keep_predictions:
        report["predictions"] = predictions
    return report
