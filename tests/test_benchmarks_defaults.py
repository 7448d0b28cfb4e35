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


def test_a_3d_row_without_a_tuned_recipe_shows_its_plan_and_no_gap(tmp_path):
    defaults = _module()
    record = {"row": "e", "model": "unet3d", "description": "thick slices, 20 / 40",
              "budget": 1200.0, "dice": 0.81234, "train_seconds": 1100.0, "epochs": 9,
              "steps_per_epoch": 100, "mode": "3d", "slice_axis": 0,
              "model_options": {"depth": 3}, "patch_size": [16, 56, 40], "batch_size": 6,
              "measured": {"step_seconds": 1.1}, "load": [2.0, 2.0, 2.0]}
    (tmp_path / "e.json").write_text(json.dumps(record))
    table = defaults.render(tmp_path)
    assert ("| e | thick slices, 20 / 40 | 20 min | unet3d 3d, depth 3, 16x56x40 x 6 | 9 x 100 "
            "| 1100 | 0.8123 | n/a | | n/a |") in table


def test_the_stored_rows_render_the_published_table():
    # The rows' records are kept with the project: rendering them gives the published table.
    defaults = _module()
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    published = text[text.index(defaults.START) + len(defaults.START) + 1:text.index(defaults.END)]
    assert defaults.render(defaults.OUTPUT) == published


def test_thick_slices_average_three_slices_and_keep_the_middle_label(tmp_path):
    import numpy as np

    from kerasseg.data import load_dataset
    from kerasseg.data.io import write_image, write_label
    from kerasseg.data.types import Geometry

    defaults = _module()
    image = np.arange(7 * 2 * 3, dtype="float32").reshape(7, 2, 3, 1)
    label = (np.arange(7)[:, None, None] % 3 * np.ones((7, 2, 3))).astype("uint8")
    geometry = Geometry(spacing=(0.5, 0.8, 1.5), origin=(10.0, 20.0, 30.0),
                        direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
    write_image(str(tmp_path / "src" / "images" / "c1.nii.gz"), image, geometry)
    write_label(str(tmp_path / "src" / "labels" / "c1.nii.gz"), label, geometry)
    data = load_dataset(tmp_path / "src", format="folder", class_names=["bg", "a", "b"])
    thick = defaults.thick_slices(data, ["c1"], tmp_path / "thick", factor=3)
    got_image, got_label, got_geometry = thick["c1"].load()[:3]
    # Slices 0-2 and 3-5 averaged (the seventh is dropped); labels of slices 1 and 4 (1, 1).
    np.testing.assert_allclose(got_image[0, ..., 0], image[1, ..., 0])
    np.testing.assert_allclose(got_image[1, ..., 0], image[4, ..., 0])
    assert got_image.shape == (2, 2, 3, 1)
    np.testing.assert_array_equal(got_label, np.ones((2, 2, 3)))
    np.testing.assert_allclose(got_geometry.spacing, (0.5, 0.8, 4.5))
    # The first thick slice is centred on the second thin one: z moves by one thin slice.
    np.testing.assert_allclose(got_geometry.origin, (10.0, 20.0, 31.5))
    assert list(thick.class_names) == ["bg", "a", "b"]
