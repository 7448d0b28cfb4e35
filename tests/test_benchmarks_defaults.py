"""The defaults protocol's table: rows rendered from stored results, written between markers."""

import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("defaults", ROOT / "benchmarks" / "defaults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_from_stored_rows_and_section_replaced_in_place(tmp_path):
    defaults = _module()
    record = {"row": "d", "description": "hippocampus MRI, 166 cases / 42 held out",
              "budget": 1200.0, "dice": 0.8712, "train_seconds": 1190.4, "epochs": 11,
              "steps_per_epoch": 100, "mode": "2.5d", "slice_axis": [0, 1, 2],
              "model_options": {"depth": 3}, "patch_size": [64, 64], "batch_size": 32,
              "measured": {"step_seconds": 0.95}, "load": [2.1, 2.0, 2.0]}
    (tmp_path / "d.json").write_text(json.dumps(record))
    table = defaults.render(tmp_path)
    # 0.8712 - 0.883 = -0.0118: within 0.03 of the tuned entry.
    assert ("| d | hippocampus MRI, 166 cases / 42 held out | 20 min | 2.5d axis [0, 1, 2], "
            "depth 3, 64x64 x 32 | 11 x 100 | 1190 | 0.8712 | 0.883 | -0.012 | yes |") in table
    assert "| a | not measured yet |" in table
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nearlier sections\n")
    defaults.write_section(tmp_path, results)
    once = results.read_text()
    assert once.startswith("# Results\n\nearlier sections\n\n## Defaults protocol")
    defaults.write_section(tmp_path, results)
    assert results.read_text() == once
    record["dice"] = 0.80
    (tmp_path / "d.json").write_text(json.dumps(record))
    defaults.write_section(tmp_path, results)
    assert "| 0.8000 | 0.883 | -0.083 | no |" in results.read_text()
    assert results.read_text().count(defaults.START) == 1


def test_a_row_stopped_by_its_budget_shows_the_epochs_it_ran(tmp_path):
    defaults = _module()
    record = {"row": "c", "description": "the bundled sample", "budget": 1200.0,
              "dice": 0.85, "train_seconds": 1230.0, "epochs": 30, "epochs_run": 24,
              "steps_per_epoch": 100, "mode": "2.5d", "slice_axis": [0, 1, 2],
              "model_options": {"depth": 3}, "patch_size": [64, 64], "batch_size": 32,
              "measured": {"step_seconds": 0.3}, "load": [3.0, 2.0, 2.0]}
    (tmp_path / "c.json").write_text(json.dumps(record))
    table = defaults.render(tmp_path)
    assert "| 24 of 30 x 100 | 1230 | 0.8500 |" in table
    assert "stopped after 24 of 30 epochs when its budget was spent" in table
