"""The volumetric benchmark's pure parts: settings, ratios, tables, the section, the command line.

Nothing here needs torch, MONAI or the network, and nothing is timed; every expected value
is computed by hand in the comments.
"""

import pytest

from benchmarks import volumetric as driver
from benchmarks.suite import volumetric as vol


def _results(mode="full"):
    """kerasseg and two MONAI networks at one patch; one volume, one failed measurement."""
    train = [
        # 2 volumes of 40*56*40 = 89_600 voxels in 1.6 s: 112_000 voxels/s
        {"framework": "kerasseg", "net": "unet3d", "patch": [40, 56, 40], "batch": 2,
         "params_m": 5.65, "forward_gflops": 40.0, "step_s_median": 1.6,
         "voxels_per_s": 112_000.0, "gflops_per_s": 150.0, "pct_conv_peak": 75.0,
         "pct_conv3d_peak": 90.0},
        # 112_000 / 56_000 = 2.00x, met; GFLOP/s 150 / 100 = 1.5x
        {"framework": "monai", "net": "dynunet", "patch": [40, 56, 40], "batch": 2,
         "params_m": 5.6, "forward_gflops": 33.3, "step_s_median": 3.2,
         "voxels_per_s": 56_000.0, "gflops_per_s": 100.0, "pct_conv_peak": 50.0,
         "pct_conv3d_peak": 60.0},
        # 112_000 / 80_000 = 1.40x, not met
        {"framework": "monai", "net": "basicunet", "patch": [40, 56, 40], "batch": 2,
         "params_m": 6.1, "forward_gflops": 30.0, "step_s_median": 2.24,
         "voxels_per_s": 80_000.0, "gflops_per_s": 80.0},
        {"framework": "monai", "net": "dynunet", "patch": [64, 64, 64],
         "error": "RuntimeError: out of memory"},
    ]
    inference = [
        {"framework": "kerasseg", "net": "unet3d", "volume": "synthetic 512x512x300",
         "shape": [512, 512, 300], "patch": [128, 128, 128], "windows": 196,
         "seconds_median": 400.0, "peak_rss_mib": 3000.0, "rss_rise_mib": 1800.0, "repeats": 1},
        # 1000 / 400 = 2.50x (met); peak RSS 4500 / 3000 = 1.50x
        {"framework": "monai", "net": "dynunet", "volume": "synthetic 512x512x300",
         "shape": [512, 512, 300], "patch": [128, 128, 128], "windows": 196,
         "seconds_median": 1000.0, "peak_rss_mib": 4500.0, "rss_rise_mib": 3500.0, "repeats": 1},
        # 700 / 400 = 1.75x (not met); 2400 / 3000 = 0.80x
        {"framework": "monai", "net": "basicunet", "volume": "synthetic 512x512x300",
         "shape": [512, 512, 300], "patch": [128, 128, 128], "windows": 196,
         "seconds_median": 700.0, "peak_rss_mib": 2400.0, "rss_rise_mib": 1500.0, "repeats": 1},
    ]
    return {
        "run": {"mode": mode, "command": "python benchmarks/volumetric.py", "seconds": 3600.0},
        "machine": {"cpu_model": "Test CPU", "cpu_cores": 2, "usable_cores": 2,
                    "memory_gib": 24.0, "python": "3.11", "tensorflow": "2.21.0",
                    "keras": "3.15.1", "numpy": "2.4", "load_average": [0.1, 0.2, 0.3],
                    "load_average_end": [1.0, 0.5, 0.3], "date": "2026-12-03T00:00:00+00:00"},
        "peer": {"python": "3.11", "torch": "2.13.0+cpu", "monai": "1.6.1", "numpy": "2.4",
                 "torch_threads": 2},
        "peak": {"conv3x3": {"shape": [8, 128, 128, 64, 64], "gflops_best": 200.0},
                 "conv3x3x3": {"shape": [2, 40, 56, 40, 32, 32], "gflops_best": 166.7}},
        "config": {"depth": 3, "widths": [32, 64, 128, 256], "overlap": 0.5,
                   "sigma_scale": 0.125, "sw_batch": 2, "dynunet_strides": [1, 2, 2, 2],
                   "basicunet_features": [32, 64, 128, 256, 320, 32],
                   "hippocampus_note": "hippocampus_x"},
        "training": train,
        "inference": inference,
    }


def _cells(text, *keys):
    """The cells of the one table line that contains every key."""
    (line,) = [line for line in text.splitlines()
               if line.startswith("|") and all(key in line for key in keys)]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_training_ratios_are_kerasseg_over_monai_voxels_per_second():
    comparisons = vol.training_comparisons(_results())
    by_net = {c["net"]: c for c in comparisons}
    assert set(by_net) == {"dynunet", "basicunet"}  # the failed 64^3 row is left out
    assert by_net["dynunet"]["voxels_ratio"] == pytest.approx(2.0)
    assert by_net["dynunet"]["gflops_ratio"] == pytest.approx(1.5)
    assert by_net["dynunet"]["met"] is True
    assert by_net["basicunet"]["voxels_ratio"] == pytest.approx(1.4)
    assert by_net["basicunet"]["met"] is False
    # a quick run shows the ratios without judging them
    assert [c["met"] for c in vol.training_comparisons(_results("quick"))] == [None, None]


def test_inference_ratios_are_monai_over_kerasseg():
    by_net = {c["net"]: c for c in vol.inference_comparisons(_results())}
    assert by_net["dynunet"]["time_ratio"] == pytest.approx(2.5)
    assert by_net["dynunet"]["rss_ratio"] == pytest.approx(1.5)
    assert by_net["dynunet"]["met"] is True
    assert by_net["basicunet"]["time_ratio"] == pytest.approx(1.75)
    assert by_net["basicunet"]["rss_ratio"] == pytest.approx(0.8)
    assert by_net["basicunet"]["met"] is False
    # without kerasseg's measurement there is no ratio and nothing is judged
    results = _results()
    results["inference"] = results["inference"][1:]
    assert [c["time_ratio"] for c in vol.inference_comparisons(results)] == [None, None]
    assert [c["met"] for c in vol.inference_comparisons(results)] == [None, None]


def test_training_table():
    text = vol.render_training(_results())
    assert _cells(text, "kerasseg unet3d") == [
        # 112_000 voxels/s = 112.0 kvoxels/s; the ratio columns are empty on kerasseg's row
        "kerasseg unet3d", "40x56x40", "float32", "2", "5.65", "40.00", "1.600", "112.0",
        "150.0", "75%", "90%", "", ""]
    assert _cells(text, "MONAI dynunet", "40x56x40")[-2:] == ["2.00x", "met"]
    assert _cells(text, "MONAI basicunet")[-2:] == ["1.40x", "NOT met"]
    assert _cells(text, "MONAI basicunet")[9:11] == ["-", "-"]  # no peak percentages
    failed = _cells(text, "MONAI dynunet", "64x64x64")
    assert failed[-1] == "failed: RuntimeError: out of memory" and failed[3] == "-"


def test_bfloat16_rows_are_compared_with_bfloat16_rows_only():
    results = _results()
    results["training"] += [
        # kerasseg bf16: 168_000 voxels/s; MONAI dynunet bf16: 84_000 -> 2.00x (not the
        # float32 rows: 168_000 / 56_000 would be 3.00x, 112_000 / 84_000 1.33x)
        {"framework": "kerasseg", "net": "unet3d", "patch": [40, 56, 40], "batch": 2,
         "precision": "bfloat16", "step_s_median": 1.0667, "voxels_per_s": 168_000.0},
        {"framework": "monai", "net": "dynunet", "patch": [40, 56, 40], "batch": 2,
         "precision": "bfloat16", "step_s_median": 2.1333, "voxels_per_s": 84_000.0}]
    by_key = {(c["net"], c["precision"]): c for c in vol.training_comparisons(results)}
    assert by_key[("dynunet", "float32")]["voxels_ratio"] == pytest.approx(2.0)
    assert by_key[("dynunet", "bfloat16")]["voxels_ratio"] == pytest.approx(2.0)
    assert by_key[("basicunet", "float32")]["voxels_ratio"] == pytest.approx(1.4)
    assert ("basicunet", "bfloat16") not in by_key
    text = vol.render_training(results)
    row = _cells(text, "MONAI dynunet", "bfloat16")
    assert row[2] == "bfloat16" and row[-2:] == ["2.00x", "met"]


def test_a_run_of_one_part_keeps_the_other_parts_rows(tmp_path, monkeypatch):
    import json

    earlier = _results()
    earlier["machine"]["date"] = "2026-12-03T10:24:40+00:00"
    path = tmp_path / "volumetric.json"
    path.write_text(json.dumps(earlier))
    monkeypatch.setattr(driver, "machine_description", lambda: {"date": "later"})
    args = driver.parse_args(["--only", "training", "--results", str(path)])
    args.argv = ["--only", "training"]
    run = driver.Run(args)
    assert run.results["inference"] == earlier["inference"]
    assert "training" not in run.results  # measured again
    assert run.results["kept"] == {"inference": {
        "command": "python benchmarks/volumetric.py",
        "date": "2026-12-03T10:24:40+00:00", "seconds": 3600.0}}
    assert run.results["config"]["hippocampus_note"] == "hippocampus_x"
    notes = vol.render_notes(run.results)
    assert notes.startswith("- The inference rows come from an earlier run "
                            "(`python benchmarks/volumetric.py`, 2026-12-03T10:24:40+00:00, "
                            "3600 s) on the same machine.")
    # A full run keeps nothing; a quick run never takes a full run's rows.
    full = driver.parse_args(["--results", str(path)])
    full.argv = []
    assert "kept" not in driver.Run(full).results
    quick = driver.parse_args(["--quick", "--only", "training", "--results", str(path)])
    quick.argv = []
    assert "inference" not in driver.Run(quick).results


def test_inference_table():
    text = vol.render_inference(_results())
    assert _cells(text, "kerasseg unet3d") == [
        "kerasseg unet3d", "synthetic 512x512x300 (512x512x300)", "128x128x128", "196",
        "400.00", "3000", "1800", "", "", "", "1"]
    assert _cells(text, "MONAI dynunet")[7:10] == ["2.50x", "1.50x", "met"]
    assert _cells(text, "MONAI basicunet")[7:10] == ["1.75x", "0.80x", "NOT met"]


def test_section_has_command_machine_versions_and_both_tables():
    body = vol.render_section(_results())
    assert "Command: `python benchmarks/volumetric.py` (full run, 3600 s)" in body
    assert "Test CPU, 2 cores (2 usable), 24.0 GiB RAM" in body
    assert "torch 2.13.0+cpu (2 threads), MONAI 1.6.1" in body
    assert "Date (UTC): 2026-12-03T00:00:00+00:00" in body
    assert "200.0 GFLOP/s (the suite's conv peak)" in body and "166.7 GFLOP/s" in body
    assert "### Training throughput (3-D U-Net)" in body
    assert "### Sliding-window inference of a whole volume" in body
    assert "`BasicUNet` with features 32, 64, 128, 256, 320, 32," in body
    assert "`DynUNet` with the same widths, kernels 3, strides [1, 2, 2, 2]" in body
    assert "not measurements" not in body
    assert "not measurements" in vol.render_section(_results("quick"))


def test_section_goes_between_markers_once(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Targets\n\nkept\n")
    driver.write_section(_results(), path)
    once = path.read_text()
    assert once.startswith("# Benchmark results\n\n## Targets\n\nkept\n\n" + vol.HEADING)
    assert once.count(vol.START) == once.count(vol.END) == 1
    driver.write_section(_results(), path)
    assert path.read_text() == once
    changed = _results()
    changed["training"][1]["voxels_per_s"] = 112_000.0  # now 1.00x
    driver.write_section(changed, path)
    text = path.read_text()
    assert text.count(vol.HEADING) == 1 and "1.00x | NOT met" in text and "kept" in text
    # what follows the section is kept too
    path.write_text(text + "\n## Later\n\nafter\n")
    driver.write_section(_results(), path)
    assert path.read_text().endswith(vol.END + "\n\n## Later\n\nafter\n")


def test_settings():
    full, quick = vol.get_settings("full"), vol.get_settings("quick")
    assert full.train_patches == ((40, 56, 40), (64, 64, 64)) and full.train_batch == 2
    assert vol.level_widths(full.depth, full.base_filters) == [32, 64, 128, 256]
    assert (full.overlap, full.sigma_scale, full.sw_batch) == (0.5, 0.125, 2)
    synthetic = [v for v in full.volumes if v.kind == "synthetic"][0]
    assert synthetic.shape == (512, 512, 300) and synthetic.patch == (128, 128, 128)
    hippocampus = [v for v in full.volumes if v.kind == "hippocampus"][0]
    assert hippocampus.patch == (40, 56, 40)
    # every patch is a multiple of the stride 2**depth on every axis
    for settings in (full, quick):
        for patch in settings.train_patches + tuple(v.patch for v in settings.volumes):
            assert all(n % 2 ** settings.depth == 0 for n in patch), patch
    assert vol.voxels(quick.train_patches[0]) < vol.voxels(full.train_patches[0]) // 10
    with pytest.raises(ValueError, match="mode"):
        vol.get_settings("smoke")


def test_basicunet_features_follow_kerasseg_widths():
    # five levels: kerasseg's four, then 2 * 256 = 512 capped at 320; the last decoder's 32
    assert driver._basicunet_features([32, 64, 128, 256]) == (32, 64, 128, 256, 320, 32)
    assert driver._basicunet_features([4, 8, 16, 32]) == (4, 8, 16, 32, 64, 4)


def test_command_line():
    args = driver.parse_args([])
    assert args.mode == "full" and args.only == ["training", "inference"]
    assert args.monai_nets == ["basicunet", "dynunet"]
    assert args.volumes == ["hippocampus", "synthetic"]
    assert args.results_md == str(driver.RESULTS_MD)
    assert args.output == str(driver.DEFAULT_OUTPUT)
    quick = driver.parse_args(["--quick", "--only", "inference", "--volumes", "synthetic",
                               "--monai-nets", "dynunet", "--output", "/tmp/v"])
    assert (quick.mode, quick.only, quick.volumes, quick.monai_nets) == (
        "quick", ["inference"], ["synthetic"], ["dynunet"])
    assert quick.results_md == "/tmp/v/RESULTS.md"  # a quick run leaves RESULTS.md alone
    assert driver.parse_args(["--quick"]).output.endswith("volumetric-quick")


@pytest.mark.parametrize("argv", [["--only", "peak"], ["--monai-nets", "unetr"],
                                  ["--volumes", ""], ["--fast"]])
def test_command_line_refuses_unknown_names(argv, capsys):
    with pytest.raises(SystemExit):
        driver.parse_args(argv)
    assert "error" in capsys.readouterr().err
