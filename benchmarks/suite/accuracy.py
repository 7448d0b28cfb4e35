"""Accuracy of the zoo entries on their held-out cases, with and without flip TTA.

Each entry predicts as its file says, with the shift averaging it carries (if any).

Each registry entry names its data folder (``"training": {"data_folder": ...}``, relative to
the shared data folder, e.g. ``"msd_hippocampus"``), its class names and mask values, and its
held-out cases (``"split": {"test": [...]}``). The
entry is evaluated with :func:`kerasseg.scoring.evaluate_model` in 3-D at each case's
original geometry: per-class Dice and HD95 (mm), mean over the cases.
"""

import os
import time


def entry_plan(record, data_root, limit=None):
    """Where an entry's held-out cases are and which of them are evaluated.

    Args:
        record: the entry's registry record (``kerasseg.zoo.entry(name)``).
        data_root: the shared data folder.
        limit: evaluate only the first ``limit`` held-out cases (``None``: all).

    Returns:
        ``(data_path, case_ids)``.

    Raises:
        ValueError: if the record names no data folder or has no ``"split"`` ``"test"`` list.

    Example:
        >>> entry_plan({"training": {"data_folder": "msd_hippocampus"},
        ...             "split": {"test": ["a", "b", "c"]}}, "/data", limit=2)
        ('/data/msd_hippocampus', ['a', 'b'])
    """
    data = (record.get("training") or {}).get("data_folder") or record.get("data")
    test = (record.get("split") or {}).get("test")
    if not data or not isinstance(test, (list, tuple)) or not test:
        raise ValueError(
            f"Zoo entry {record.get('name')!r} needs 'training': {{'data_folder': ...}} (a folder "
            "under the shared data folder) and 'split': {'test': [case ids]} to be evaluated. "
            f"Received: data={data!r}, split={record.get('split')!r}"
        )
    ids = [str(case_id) for case_id in test]
    if limit is not None:
        ids = ids[:limit]
    return os.path.join(os.fspath(data_root), data), ids


def summarize_evaluation(evaluation):
    """Per-class mean Dice and HD95 of an :func:`~kerasseg.scoring.evaluate_model` report.

    Example:
        >>> summarize_evaluation({"summary": {"A": {"dice": {"mean": 0.9}, "hd95": {"mean": 2.0}}},
        ...                       "mean_foreground_dice": 0.9})
        {'per_class': {'A': {'dice': 0.9, 'hd95': 2.0}}, 'mean_foreground_dice': 0.9}
    """
    per_class = {}
    for name, metrics in evaluation["summary"].items():
        per_class[name] = {
            "dice": (metrics.get("dice") or {}).get("mean"),
            "hd95": (metrics.get("hd95") or {}).get("mean"),
        }
    return {"per_class": per_class, "mean_foreground_dice": evaluation.get("mean_foreground_dice")}


def evaluate_zoo(data_root, limit=None, names=None):
    """Evaluate every zoo entry (or ``names``) on its held-out cases, with and without TTA.

    Args:
        data_root: the shared data folder.
        limit: held-out cases per entry (``None``: all).
        names: entry names; default :func:`kerasseg.zoo.list_entries`.

    Returns:
        dict with ``entries``: one dict per entry and TTA setting (``entry``, ``data``,
        ``cases``, ``tta``, ``shifts`` (predictions averaged per slice and flip: the
        entry's shift offsets), ``per_class``, ``mean_foreground_dice``, ``seconds``,
        ``registry_metrics``), or with ``error`` for an entry that could not be
        evaluated.
    """
    from kerasseg import zoo
    from kerasseg.data.dataset import load_dataset
    from kerasseg.inference import Predictor, load_any, tta_flips
    from kerasseg.scoring import evaluate_model

    names = zoo.list_entries() if names is None else list(names)
    rows = []
    for name in names:
        record = zoo.entry(name)
        metrics = {k: v for k, v in (record.get("metrics") or {}).items()
                   if isinstance(v, (int, float))}
        try:
            data_path, ids = entry_plan({"name": name, **record}, data_root, limit)
            options = {"class_names": record.get("class_names")}
            if (record.get("input") or {}).get("label_values"):
                options["label_values"] = record["input"]["label_values"]
            cases = load_dataset(data_path, **options).subset(ids)
            model, info = load_any(name)
            # flip TTA only where the model was trained with flips (the Predictor refuses it)
            for tta in (False, True) if len(tta_flips(info.flip_axes)) > 1 else (False,):
                start = time.perf_counter()
                report = evaluate_model(name, cases, predictor=Predictor(model, info=info, tta=tta))
                rows.append({"entry": name, "data": os.path.basename(data_path), "cases": len(ids),
                             "tta": tta, "shifts": len(report["shifts"]),
                             "seconds": time.perf_counter() - start,
                             "registry_metrics": metrics, **summarize_evaluation(report)})
                print(f"  {name} tta={tta}: mean foreground Dice "
                      f"{rows[-1]['mean_foreground_dice']:.4f} on {len(ids)} cases", flush=True)
        except Exception as error:  # noqa: BLE001 - one broken entry must not stop the others
            rows.append({"entry": name, "data": None,
                         "error": f"{type(error).__name__}: {error}", "registry_metrics": metrics})
            print(f"  {name}: not evaluated: {rows[-1]['error']}", flush=True)
    return {"entries": rows, "registered": len(names)}
