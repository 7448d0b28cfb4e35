"""Tests of kerasseg.reporting: JSON/CSV reports, the terminal table, case selection and PNGs.

Hand-made evaluations give known values; one real hippocampus label of the bundled sample (as
truth, and shifted as a "prediction", scored by the real ``evaluate_model``) checks the whole
path on real data.
"""

import csv
import json
import math
import os
import pathlib
import sys

import matplotlib
import numpy as np
import pytest
from matplotlib.image import imread

from kerasseg.data.types import CaseData, Geometry
from kerasseg.description import ModelInfo, Preprocessing
from kerasseg.reporting import (
    CSV_COLUMNS,
    best_epoch,
    format_summary,
    load_report,
    pick_slice,
    plot_history,
    read_history,
    report_paths,
    save_case_panels,
    save_overlay,
    select_cases,
    write_report,
)
from kerasseg.reporting.figures import DPI

NAN, INF = float("nan"), float("inf")


# ----------------------------------------------------------------------------- hand-made data


def _scores(dice, hd95=1.0, sensitivity=0.9, specificity=0.99, assd=0.5, vt=10.0, vp=11.0):
    jaccard = dice / (2 - dice) if math.isfinite(dice) else dice
    return {"dice": dice, "jaccard": jaccard, "sensitivity": sensitivity,
            "specificity": specificity, "hd95": hd95, "assd": assd, "tp": 1, "fp": 1,
            "fn": 1, "tn": 1, "volume_true": vt, "volume_pred": vp}


def _case(case_id, a, b):
    finite = [d["dice"] for d in (a, b) if math.isfinite(d["dice"])]
    return {"case_id": case_id, "spacing_zyx": [2.0, 1.0, 1.0], "shape": [4, 5, 5],
            "mean_foreground_dice": float(np.mean(finite)) if finite else NAN,
            "metrics": {"A": a, "B": b}}


@pytest.fixture
def evaluation():
    """Three cases, two classes; B is absent from c1 (NaN) and missed in c2 (inf)."""
    cases = [
        _case("c1", _scores(0.5, hd95=2.0), _scores(NAN, NAN, NAN, 1.0, NAN, 0.0, 0.0)),
        _case("c2", _scores(1.0, hd95=0.0), _scores(0.0, INF, 0.0, 1.0, INF, 8.0, 0.0)),
        _case("c3", _scores(0.75, hd95=4.0), _scores(0.8, hd95=3.0)),
    ]
    return {"cases": cases, "summary": {}, "mean_foreground_dice": 0.6,
            "tta": False, "predictions": {"c1": np.zeros((4, 5, 5), "int32")}}


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _png(path):
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 0 and pixels.shape[1] > 0
    assert float(pixels[..., :3].var()) > 0, f"{path} is blank"
    return pixels


def _strict_json(text):
    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


# ---------------------------------------------------------------------------------- JSON/CSV


def test_csv_rows_and_values(evaluation, tmp_path):
    paths = write_report(evaluation, tmp_path / "eval.csv")
    assert paths == {"json": str(tmp_path / "eval.json"), "csv": str(tmp_path / "eval.csv")}
    rows = _read_csv(paths["csv"])
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 3 * 2 + 5 * 2
    by_key = {(row["case_id"], row["class"]): row for row in rows}
    assert by_key[("c1", "A")]["dice"] == "0.5"
    assert by_key[("c1", "A")]["hd95_mm"] == "2.0"
    assert by_key[("c1", "B")]["dice"] == "nan"
    assert by_key[("c2", "B")]["hd95_mm"] == "inf" and by_key[("c2", "B")]["dice"] == "0.0"
    assert by_key[("c2", "B")]["volume_true"] == "8.0"
    # Summary over finite values: A dice [0.5, 1.0, 0.75], B dice [0.0, 0.8], B hd95 [3.0].
    assert [row["case_id"] for row in rows[6:11]] == ["mean", "std", "median", "min", "max"]
    assert float(by_key[("mean", "A")]["dice"]) == pytest.approx(0.75)
    assert float(by_key[("std", "A")]["dice"]) == pytest.approx(math.sqrt(0.125 / 3))
    assert float(by_key[("median", "A")]["dice"]) == 0.75
    assert float(by_key[("min", "A")]["dice"]) == 0.5
    assert float(by_key[("max", "A")]["dice"]) == 1.0
    assert float(by_key[("mean", "B")]["dice"]) == pytest.approx(0.4)
    assert float(by_key[("mean", "B")]["hd95_mm"]) == 3.0
    assert float(by_key[("std", "B")]["hd95_mm"]) == 0.0
    assert float(by_key[("mean", "A")]["volume_pred"]) == 11.0


def test_json_is_standard_and_lists_non_finite(evaluation, tmp_path):
    paths = write_report(evaluation, tmp_path / "out" / "eval",
                         extra={"model": pathlib.Path("best.keras"), "tta": False})
    assert sorted(os.listdir(tmp_path / "out")) == ["eval.csv", "eval.json"]  # no temp files
    document = _strict_json(pathlib.Path(paths["json"]).read_text(encoding="utf-8"))
    assert "predictions" not in document
    assert document["meta"]["model"] == "best.keras" and document["meta"]["created"]
    assert document["cases"][0]["metrics"]["A"]["dice"] == 0.5
    assert document["cases"][0]["metrics"]["B"]["dice"] is None
    assert document["cases"][1]["metrics"]["B"]["hd95"] is None
    assert document["non_finite"]["/cases/0/metrics/B/dice"] == "nan"
    assert document["non_finite"]["/cases/1/metrics/B/hd95"] == "inf"
    assert len(document["non_finite"]) == 7  # c1/B: dice jaccard sens hd95 assd; c2/B: 2
    assert document["units"]["hd95"] == "mm"
    restored = load_report(paths["json"])
    assert math.isnan(restored["cases"][0]["metrics"]["B"]["dice"])
    assert restored["cases"][1]["metrics"]["B"]["hd95"] == INF
    assert restored["cases"][2]["metrics"]["B"]["dice"] == 0.8


def test_report_paths_and_bad_input(evaluation, tmp_path):
    assert report_paths("a/b.json") == {"json": "a/b.json", "csv": "a/b.csv"}
    assert report_paths("a/b") == {"json": "a/b.json", "csv": "a/b.csv"}
    with pytest.raises(ValueError, match=r"`path` must end in one of \['.json', '.csv'\]"):
        write_report(evaluation, tmp_path / "eval.txt")
    with pytest.raises(ValueError, match="`evaluation` must be the dict"):
        write_report({"summary": {}}, tmp_path / "eval")
    with pytest.raises(ValueError, match="`extra` must be None or a dict"):
        write_report(evaluation, tmp_path / "eval", extra=["model"])
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_report(tmp_path / "missing.json")


def test_format_summary(evaluation):
    text = format_summary(evaluation)
    lines = text.splitlines()
    assert lines[0] == "3 cases, TTA off, mean foreground Dice 0.600"
    assert lines[1].split()[:4] == ["class", "cases", "Dice", "Jaccard"]
    row_a = lines[2]
    assert row_a.startswith("A") and " 3 " in row_a
    assert f"0.750 ± {math.sqrt(0.125 / 3):.3f}" in row_a
    assert "2.00 ± 1.63" in row_a  # HD95 of A: [2, 0, 4]
    assert "0.400 ± 0.400" in lines[3]  # Dice of B over [0.0, 0.8]
    assert "  B: Dice 1 NaN" in text and "HD95 (mm) 1 NaN + 1 inf" in text


# ------------------------------------------------------------------------------ case selection


def _ranked(values):
    return {"cases": [{"case_id": f"k{i}", "metrics": {}, "mean_foreground_dice": v}
                      for i, v in enumerate(values)]}


def test_select_cases():
    assert select_cases(_ranked([0.2, 0.9, 0.5, 0.7, 0.6])) == {
        "best": "k1", "median": "k4", "worst": "k0"}
    # NaN cases are not ranked; even count: the lower middle case.
    assert select_cases(_ranked([0.2, 0.9, NAN, 0.5, 0.7])) == {
        "best": "k1", "median": "k3", "worst": "k0"}
    # Ties keep the evaluation's order.
    assert select_cases(_ranked([0.5, 0.5, 0.5])) == {"best": "k0", "median": "k1", "worst": "k0"}
    assert select_cases(_ranked([0.3])) == {"best": "k0", "median": "k0", "worst": "k0"}
    assert select_cases(_ranked([NAN, NAN])) == {"best": "k0", "median": "k0", "worst": "k0"}
    with pytest.raises(ValueError, match="at least one case"):
        select_cases({"cases": []})


def test_pick_slice():
    truth = np.zeros((4, 3, 3), "int32")
    truth[1, 0, :2] = 1
    truth[2, :2, :2] = 2  # 4 voxels, the most
    truth[3, 2, :] = 1
    assert pick_slice(truth) == 2
    truth[3, :2, :2] = 1  # 5 voxels now
    assert pick_slice(truth) == 3
    tie = np.zeros((3, 2, 2), "int32")
    tie[1, 0, 0] = tie[2, 1, 1] = 1
    assert pick_slice(tie) == 1
    empty = np.zeros((5, 2, 2), "int32")
    prediction = empty.copy()
    prediction[4, 0, 0] = 1
    assert pick_slice(empty, prediction) == 4
    assert pick_slice(empty, empty) == 2
    with pytest.raises(ValueError, match="`truth` must be a"):
        pick_slice(np.zeros((2, 2)))


# -------------------------------------------------------------------------------- real data


class _Case:
    def __init__(self, case_id, data):
        self.case_id, self.data = case_id, data

    def load(self):
        return self.data


class _ShiftPredictor:
    """Stands in for a model: predicts the truth shifted along y by a set number of voxels."""

    def __init__(self, shifts):
        self.shifts = list(shifts)
        self.info = ModelInfo(model="unet", num_classes=3, channels=1, patch_size=(64, 64),
                              stride=8, preprocessing=Preprocessing(mode="2d"),
                              class_names=("background", "Anterior", "Posterior"))
        self.num_classes, self.tta = 3, False

    def predict_case(self, data):
        return np.roll(data.label, self.shifts.pop(0), axis=1).astype("int32")


@pytest.fixture(scope="module")
def hippocampus_case(sample):
    return sample["hippocampus_001"].load()


@pytest.fixture(scope="module")
def real_evaluation(hippocampus_case):
    from kerasseg.scoring import evaluate_model

    cases = [_Case(f"shift{s}", hippocampus_case) for s in (3, 0, 1)]
    evaluation = evaluate_model(None, cases, predictor=_ShiftPredictor([3, 0, 1]),
                                keep_predictions=True)
    return evaluation, cases


def _dice(a, b):
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_real_case_report(real_evaluation, hippocampus_case, sample_dir, tmp_path):
    evaluation, _ = real_evaluation
    label = hippocampus_case.label
    assert select_cases(evaluation) == {"best": "shift0", "median": "shift1", "worst": "shift3"}
    paths = write_report(evaluation, tmp_path / "hippo.json", extra={"data": str(sample_dir)})
    rows = {(r["case_id"], r["class"]): r for r in _read_csv(paths["csv"])}
    assert len(rows) == 3 * 2 + 5 * 2
    assert float(rows[("shift0", "Anterior")]["dice"]) == 1.0
    assert float(rows[("shift0", "Posterior")]["hd95_mm"]) == 0.0
    expected = _dice(np.roll(label, 1, axis=1) == 1, label == 1)
    assert float(rows[("shift1", "Anterior")]["dice"]) == pytest.approx(expected, abs=1e-12)
    assert float(rows[("shift1", "Anterior")]["volume_true"]) == np.count_nonzero(label == 1)
    for name in ("Anterior", "Posterior"):  # same statistics as evaluate_model's summary
        for stat in ("mean", "std", "median", "min", "max"):
            assert float(rows[(stat, name)]["dice"]) == pytest.approx(
                evaluation["summary"][name]["dice"][stat], abs=1e-12)
    document = load_report(paths["json"])
    assert document["meta"]["data"] == str(sample_dir)
    assert document["cases"][2]["metrics"]["Anterior"]["dice"] == pytest.approx(
        evaluation["cases"][2]["metrics"]["Anterior"]["dice"])
    assert "3 cases" in format_summary(evaluation)


def test_real_case_panels(real_evaluation, hippocampus_case, tmp_path):
    evaluation, cases = real_evaluation
    label = hippocampus_case.label
    counts = [np.count_nonzero(label[z]) for z in range(label.shape[0])]
    assert pick_slice(label) == counts.index(max(counts))
    path = save_case_panels(evaluation, cases, tmp_path / "cases.png",
                            class_names=["background", "Anterior", "Posterior"])
    pixels = _png(path)
    assert pixels.shape[:2] == (round((3.2 * 3 + 0.5) * DPI), round(9.0 * DPI))
    one = {**evaluation, "cases": evaluation["cases"][:1]}
    single = _png(save_case_panels(one, {"shift3": cases[0]}, tmp_path / "one.png"))
    assert single.shape[0] == round((3.2 + 0.5) * DPI) < pixels.shape[0]
    without = {k: v for k, v in evaluation.items() if k != "predictions"}
    with pytest.raises(ValueError, match=r"keep_predictions=True"):
        save_case_panels(without, cases, tmp_path / "x.png")
    with pytest.raises(ValueError, match="case 'shift0' is missing"):
        save_case_panels(evaluation, cases[:1], tmp_path / "x.png")
    assert sorted(os.listdir(tmp_path)) == ["cases.png", "one.png"]


def test_panels_take_a_case_dataset(hippocampus_case, sample, tmp_path):
    dataset = sample.subset(["hippocampus_001"])
    metrics = {"Anterior": _scores(0.9), "Posterior": _scores(0.8)}
    evaluation = {"cases": [{"case_id": "hippocampus_001", "metrics": metrics,
                             "mean_foreground_dice": 0.85}],
                  "predictions": {"hippocampus_001": hippocampus_case.label}}
    pixels = _png(save_case_panels(evaluation, dataset, tmp_path / "ds.png"))
    assert pixels.shape[:2] == (round((3.2 + 0.5) * DPI), round(9.0 * DPI))


def test_panels_of_2d_cases(tmp_path):
    """Two 2-D cases (D == 1) given as CaseData, identified by position as evaluate_model does."""
    yy, xx = np.mgrid[:32, :40]
    image = (xx + yy).astype("float32")[None, :, :, None]
    truth = np.zeros((1, 32, 40), "int32")
    truth[0, 8:20, 10:30] = 1
    data = [CaseData(image, truth, Geometry.identity(2))] * 2
    evaluation = {
        "cases": [{"case_id": "0", "metrics": {"cell": _scores(1.0)}, "mean_foreground_dice": 1.0},
                  {"case_id": "1", "metrics": {"cell": _scores(0.6)}, "mean_foreground_dice": 0.6}],
        "predictions": {"0": truth, "1": np.roll(truth, 4, axis=2)},
    }
    pixels = _png(save_case_panels(evaluation, data, tmp_path / "two.png"))
    assert pixels.shape[0] == round((3.2 * 2 + 0.5) * DPI)
    evaluation["predictions"]["1"] = truth[:, :10]
    with pytest.raises(ValueError, match="must have the label's shape"):
        save_case_panels(evaluation, data, tmp_path / "bad.png")


# --------------------------------------------------------------------------------- overlays


def test_save_overlay_draws_colours_without_pyplot(monkeypatch, tmp_path):
    backend = matplotlib.rcParams["backend"]
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # importing pyplot now fails
    image = np.tile(np.linspace(0, 255, 48, dtype="float32"), (48, 1))
    label = np.zeros((48, 48), "int32")
    label[10:30, 10:30] = 1
    label[35:45, 5:20] = 2
    path = save_overlay(image, label, tmp_path / "sub" / "overlay.png",
                        class_names=["background", "cell", "nucleus"], title="test")
    pixels = _png(path)
    rgb = pixels[..., :3]
    colour = np.abs(rgb[..., 0] - rgb[..., 2])  # grey pixels have R == B
    assert np.count_nonzero(colour > 0.2) > 200
    assert matplotlib.rcParams["backend"] == backend
    with pytest.raises(ValueError, match="`label2d` must be a"):
        save_overlay(image, label[None], tmp_path / "x.png")
    with pytest.raises(ValueError, match="`path` must end in '.png'"):
        save_overlay(image, label, tmp_path / "x.jpg")


# ------------------------------------------------------------------------------------ history


def _write_history(path, columns, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def test_history_plot_from_csv(tmp_path):
    columns = ["epoch", "loss", "dice", "val_loss", "val_dice", "learning_rate"]
    rows = [[1, 1.2, 0.30, 1.1, 0.40, 1e-3], [2, 0.8, 0.55, 0.9, 0.62, 8e-4],
            [3, 0.6, 0.70, 0.7, 0.80, 5e-4], [4, 0.5, 0.75, "", 0.78, 2e-4],
            [5, 0.45, 0.78, 0.75, 0.79, 5e-5]]
    csv_path = _write_history(tmp_path / "history.csv", columns, rows)
    table = read_history(csv_path)
    assert table["val_dice"] == [0.40, 0.62, 0.80, 0.78, 0.79]
    assert math.isnan(table["val_loss"][3])
    assert best_epoch(csv_path) == (3, 0.80)
    full = _png(plot_history(csv_path, tmp_path / "curves.png"))
    assert full.shape[:2] == (round((2.4 * 3 + 0.3) * DPI), round(7.0 * DPI))
    # Without the learning rate: two panels; a list of dicts is accepted too.
    short = [dict(zip(columns[:5], row[:5])) for row in rows]
    two = _png(plot_history(short, tmp_path / "two.png"))
    assert two.shape[0] == round((2.4 * 2 + 0.3) * DPI)
    assert read_history({"loss": [0.5, 0.4]})["epoch"] == [1.0, 2.0]
    assert best_epoch([{"loss": 1.0}]) == (None, None)
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        plot_history(tmp_path / "nothing.csv", tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one of the columns"):
        plot_history([{"epoch": 1, "accuracy": 0.5}], tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one epoch"):
        plot_history([], tmp_path / "x.png")


def test_history_plot_connects_validations_made_every_few_epochs(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    plotted, plot = {}, Axes.plot

    def recording(self, *args, **kwargs):
        if kwargs.get("label"):
            plotted[kwargs["label"]] = (list(args[0]), list(args[1]))
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", recording)
    # As written by a run with --val-every 2: empty validation cells on odd epochs.
    rows = [[1, 0.9, ""], [2, 0.7, 0.61], [3, 0.6, ""], [4, 0.5, 0.72], [5, 0.45, 0.74]]
    path = _write_history(tmp_path / "history.csv", ["epoch", "loss", "val_dice"], rows)
    _png(plot_history(path, tmp_path / "curves.png"))
    assert plotted["val_dice"] == ([2.0, 4.0, 5.0], [0.61, 0.72, 0.74])
    assert plotted["loss"][0] == [1.0, 2.0, 3.0, 4.0, 5.0]
