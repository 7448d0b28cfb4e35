"""Scoring a model on labelled cases: per-case metrics at each case's original geometry.

:func:`evaluate_model` predicts every case with a :class:`~kerasseg.inference.Predictor`
(or an :class:`~kerasseg.ensemble.EnsemblePredictor` of several models) and scores it in 3-D against its label at the original grid
(:func:`kerasseg.evaluation.evaluate_case`: Dice, Jaccard, sensitivity, specificity, HD95
and ASSD in mm), then summarizes each metric per class over cases. Its result is what
:mod:`kerasseg.reporting` turns into tables and figures. :func:`rank_ensembles` scores every
equal-weight combination of several models on model-selection cases, the way nnU-Net
chooses between its configurations and their ensembles before it touches held-out cases.
"""

import itertools
import os
import warnings

import numpy as np

from kerasseg.ensemble import EnsemblePredictor, predictor as make_predictor
from kerasseg.evaluation import check_labels, dice, evaluate_case

__all__ = ["evaluate_model", "rank_ensembles", "summarize"]

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


def _classes(predictor):
    """The number of classes scored (at least 2: a one-channel model's background and its
    class) and their names (the model's, else their indices as text)."""
    num_classes = max(2, predictor.num_classes)
    names = predictor.info.class_names or range(num_classes)
    return num_classes, [str(name) for name in names][:num_classes]


def _labelled(cases):
    """Yield ``(case_id, data)`` for each case, loaded; a case without a label is refused."""
    for index, case in enumerate(cases):
        data = case.load() if hasattr(case, "load") else case
        case_id = str(getattr(case, "case_id", index))
        if data.label is None:
            raise ValueError(f"Case {case_id} has no label to score against.")
        yield case_id, data


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
    num_classes, class_names = _classes(predictor)
    rows, predictions = [], {}
    for case_id, data in _labelled(cases):
        label = predictor.predict_case(data)
        spacing = data.geometry.spacing_zyx
        metrics = evaluate_case(label, data.label, num_classes, spacing=spacing,
                                class_names=class_names)
        foreground = [metrics[name]["dice"] for name in class_names[1:]
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
        "summary": summarize(rows, class_names[1:]),
        "mean_foreground_dice": float(np.nanmean(per_case)) if per_case.size else float("nan"),
        "tta": predictor.tta,
        "shifts": [list(shift) for shift in predictor.shifts],
    }
    if isinstance(predictor, EnsemblePredictor):
        report["ensemble"] = predictor.member_settings()
    if keep_predictions:
        report["predictions"] = predictions
    return report


def _case_dice(label, truth, num_classes):
    """Per foreground class Dice of two label maps (NaN where both are empty)."""
    return [dice(label == index, truth == index) for index in range(1, num_classes)]


def rank_ensembles(models, cases, max_members=None, tta=False):
    """Score every equal-weight combination of several models on labelled cases, best first.

    Each model predicts each case once (its class probabilities at the case's original
    grid, as in :class:`~kerasseg.ensemble.EnsemblePredictor`); every non-empty
    combination of at most ``max_members`` models is then scored from those probabilities:
    the argmax of their mean, Dice per foreground class against the label, the case's mean
    over its classes, and the mean over cases (as ``mean_foreground_dice`` of
    :func:`evaluate_model`). Use it on model-selection (validation) cases, then score the
    chosen combination once on held-out cases with :func:`evaluate_model`.

    Args:
        models: a list of two or more ``.keras`` paths, zoo entry names or predictors (see
            :func:`kerasseg.ensemble.predictor`), each given once; they must predict the same
            classes.
        cases: a ``CaseDataset`` or a list of cases with labels.
        max_members: the largest combination scored (default: all models together).
        tta: flip test-time augmentation for the models built here from paths or names.

    Returns:
        dict with ``case_ids``, ``models`` (the members' names, in the given order) and
        ``ranking``: one entry per combination, best first (ties: fewer members first,
        then the given order), each with ``members`` (names), ``mean_foreground_dice``,
        ``dice`` (per class name, the mean over cases) and ``per_case`` (each case's mean
        foreground Dice, in ``case_ids`` order). A class absent from both a case's label and
        the combination's prediction has no Dice (NaN) and is left out of that case's mean;
        a case with no Dice at all is NaN in ``per_case`` and left out of the means, so
        two combinations' means may cover different cases.

    Raises:
        ValueError: for ``models`` that is not a list of two or more distinct models,
            ``max_members`` not an integer in ``[1, len(models)]``, models that disagree on
            the classes, no cases, a case without a label or with values that are not class
            indices.
        FileNotFoundError: for a model path that does not exist.

    Example:
        >>> result = rank_ensembles(  # doctest: +SKIP
        ...     ["runs/a/best.keras", "runs/b/best.keras"], dataset.subset(val_ids))
        >>> [(r["members"], round(r["mean_foreground_dice"], 3))  # doctest: +SKIP
        ...  for r in result["ranking"]]
        [(['runs/a/best.keras', 'runs/b/best.keras'], 0.891), ...]
    """
    if isinstance(models, (str, bytes, os.PathLike)) or hasattr(models, "predict_case"):
        raise ValueError("`models` must be a list of two or more models (paths, zoo entry "
                         f"names or predictors). Received: models={models!r}")
    models = list(models)
    if len(models) < 2:
        raise ValueError("`models` must name at least two models to combine. "
                         f"Received: models={models!r}")
    if max_members is None:
        max_members = len(models)
    if isinstance(max_members, bool) or not isinstance(max_members, (int, np.integer)) \
            or not 1 <= max_members <= len(models):
        raise ValueError(f"`max_members` must be an integer in [1, {len(models)}]. "
                         f"Received: max_members={max_members!r}")
    given = [os.fspath(model) for model in models if isinstance(model, (str, os.PathLike))]
    repeated = sorted({model for model in given if given.count(model) > 1})
    if repeated:
        raise ValueError(f"`models` names {repeated[0]!r} more than once; give each model "
                         f"once. Received: models={models!r}")
    ensemble = make_predictor(models, tta=tta)  # builds the members and checks their classes
    members, names = ensemble.members, ensemble.names
    num_classes, class_names = _classes(ensemble)
    combinations = [combination for size in range(1, int(max_members) + 1)
                    for combination in itertools.combinations(range(len(members)), size)]
    per_class = {combination: [] for combination in combinations}
    case_ids = []
    for case_id, data in _labelled(cases):
        truth = check_labels(f"the label of case {case_id}", data.label, num_classes)
        probabilities = [member.predict_case(data, return_probabilities=True)[1]
                         for member in members]
        for combination in combinations:
            mean = EnsemblePredictor.combine([probabilities[i] for i in combination],
                                             [1.0] * len(combination))
            per_class[combination].append(
                _case_dice(np.argmax(mean, axis=-1), truth, num_classes))
        case_ids.append(case_id)
    if not case_ids:
        raise ValueError("`cases` is empty: give the labelled cases to score the "
                         "combinations on.")
    ranking = []
    for order, combination in enumerate(combinations):
        scores = np.array(per_class[combination], dtype="float64")  # (cases, classes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row or column
            per_case = np.nanmean(scores, axis=1)
            per_name = np.nanmean(scores, axis=0)
            mean = float(np.nanmean(per_case))
        # Rounded, so that equal scores summed in another order still tie.
        key = (-round(mean, 12) if np.isfinite(mean) else np.inf, len(combination), order)
        ranking.append((key, {
            "members": [names[i] for i in combination],
            "mean_foreground_dice": mean,
            "dice": {name: float(value) for name, value in zip(class_names[1:], per_name)},
            "per_case": [float(value) for value in per_case],
        }))
    ranking.sort(key=lambda item: item[0])
    return {"case_ids": case_ids, "models": list(names),
            "ranking": [entry for _, entry in ranking]}
