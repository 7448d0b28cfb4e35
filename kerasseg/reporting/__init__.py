"""Evaluation reports: JSON and CSV tables, a terminal summary, and PNG figures.

What ``kerasseg evaluate --report FILE`` writes, also usable from Python:

* :func:`write_report` writes ``FILE.json`` and ``FILE.csv`` (per case and class: Dice,
  Jaccard, sensitivity, specificity, HD95 and ASSD in mm, volumes; then mean, std, median,
  min, max); :func:`load_report` reads the JSON back; :func:`format_summary` gives the
  terminal table (:func:`format_ranking` the ranking of ensembles that
  ``kerasseg choose-ensemble`` prints).
* :func:`save_case_panels` draws image / ground truth / prediction for the best, median and
  worst case (:func:`select_cases`); :func:`save_overlay` draws one labelled image;
  :func:`plot_history` draws the training curves of a ``history.csv``.

Modules: :mod:`~kerasseg.reporting.tables` (numbers), :mod:`~kerasseg.reporting.figures`
(PNG, Matplotlib's object API only, loaded on first use). Files are written atomically
with :mod:`kerasseg.files`.

Example:
    >>> from kerasseg.scoring import evaluate_model
    >>> from kerasseg import reporting
    >>> evaluation = evaluate_model("best.keras", val_cases, keep_predictions=True)  # doctest: +SKIP
    >>> reporting.write_report(evaluation, "eval", extra={"model": "best.keras"})  # doctest: +SKIP
    >>> print(reporting.format_summary(evaluation))  # doctest: +SKIP
    >>> reporting.save_case_panels(evaluation, val_cases, "eval_cases.png")  # doctest: +SKIP
"""

from kerasseg.reporting.figures import (
    best_epoch,
    pick_slice,
    plot_history,
    read_history,
    save_case_panels,
    save_overlay,
)
from kerasseg.reporting.tables import (
    CSV_COLUMNS,
    SUMMARY_ROWS,
    describe,
    format_ranking,
    format_summary,
    load_report,
    report_paths,
    report_rows,
    select_cases,
    write_report,
)

__all__ = [
    "CSV_COLUMNS",
    "SUMMARY_ROWS",
    "best_epoch",
    "describe",
    "format_ranking",
    "format_summary",
    "load_report",
    "pick_slice",
    "plot_history",
    "read_history",
    "report_paths",
    "report_rows",
    "save_case_panels",
    "save_overlay",
    "select_cases",
    "write_report",
]
