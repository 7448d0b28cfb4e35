"""The benchmark suite's pure helpers: FLOP arithmetic, tables, report rendering, targets.

Nothing here is timed; every expected value is computed by hand in the comments.
"""

import pytest

from benchmarks.suite import measure, report, settings, tables
from benchmarks.suite.accuracy import entry_plan, summarize_evaluation
from benchmarks.suite.inference import family_summary
from benchmarks.suite.targets import evaluate_targets
from benchmarks.suite.training import max_loss_difference
from benchmarks.suite.variants import compare_with_default, variant_specs


def test_conv_peak_flops():
    # 2 * B * H * W * Cin * Cout * 9 = 2 * 8 * 128 * 128 * 64 * 64 * 9
    # = 2 * 8 * 16384 * 4096 * 9 = 9_663_676_416
    assert measure.conv2d_flops(8, 128, 128, 64, 64) == 9_663_676_416
    # 1x1 kernel: 2 * 1 * 2 * 3 * 4 * 5 = 240
    assert measure.conv2d_flops(1, 2, 3, 4, 5, kernel=1) == 240


def test_matmul_and_training_flops():
    # 2 * 2048**3 = 2 * 8_589_934_592
    assert measure.matmul_flops(2048) == 17_179_869_184
    assert measure.training_flops(24_000_000_000) == 72_000_000_000
    # 9_663_676_416 FLOPs in 0.1 s = 96.63676416 GFLOP/s
    assert measure.gflops_per_second(9_663_676_416, 0.1) == pytest.approx(96.63676416)
    assert measure.percent(45.0, 150.0) == pytest.approx(30.0)
    assert measure.percent(None, 150.0) is None
    with pytest.raises(ValueError, match="seconds"):
        measure.gflops_per_second(1, 0)


def test_summarize_times_and_loss_difference():
    assert measure.summarize_times([0.4, 0.1, 0.3, 0.2]) == {
        "best_s": 0.1, "median_s": pytest.approx(0.25), "repeats": 4}
    assert max_loss_difference([1.0, 0.9, 0.8], [1.0, 0.95, 0.5]) == pytest.approx(0.3)
    assert max_loss_difference([], [1.0]) is None


def test_markdown_table_is_padded_and_aligned():
    text = tables.markdown_table(["model", "img/s"], [["unet", "1.5"], ["deeplab", "12.0"]],
                                 align="lr")
    assert text.splitlines() == [
        "| model   | img/s |",
        "| ------- | ----: |",
        "| unet    |   1.5 |",
        "| deeplab |  12.0 |",
    ]
    with pytest.raises(ValueError, match="Row 0 has 1 cells but there are 2 columns"):
        tables.markdown_table(["a", "b"], [["x"]])
    with pytest.raises(ValueError, match="align"):
        tables.markdown_table(["a"], [], align="c")


def test_fmt():
    assert tables.fmt(1234.567) == "1234.6"
    assert tables.fmt(0.2534, 3) == "0.253"
    assert tables.fmt(float("nan")) == "-"
    assert tables.fmt(None) == "-"
    assert tables.fmt(True) == "yes"
    assert tables.fmt(1.5, 2, "x") == "1.50x"


def test_family_summary_ratios():
    rows = [
        {"family": "unet", "shape": [48, 64, 5], "format": "keras", "file_mb": None,
         "latency_ms": 20.0, "throughput_images_per_s": 100.0},
        {"family": "unet", "shape": [48, 64, 5], "format": "savedmodel", "file_mb": 31.0,
         "latency_ms": 21.0, "throughput_images_per_s": 80.0},
        {"family": "unet", "shape": [48, 64, 5], "format": "tflite-float32", "file_mb": 31.0,
         "latency_ms": 40.0, "throughput_images_per_s": 25.0},
        {"family": "unet", "shape": [48, 64, 5], "format": "tflite-int8", "file_mb": 7.75,
         "latency_ms": 5.0, "throughput_images_per_s": 200.0},
    ]
    (summary,) = family_summary(rows)
    assert summary["int8_float32_size_ratio"] == pytest.approx(0.25)  # 7.75 / 31
    assert summary["savedmodel_keras_latency_ratio"] == pytest.approx(1.05)  # 21 / 20
    assert summary["keras_savedmodel_throughput_ratio"] == pytest.approx(1.25)  # 100 / 80


def test_zoo_entry_plan_and_summary():
    record = {"name": "hippocampus-unet", "training": {"data_folder": "msd_hippocampus"},
              "split": {"test": ["hippocampus_001", "hippocampus_003", "hippocampus_004"]}}
    assert entry_plan(record, "/data", limit=2) == (
        "/data/msd_hippocampus", ["hippocampus_001", "hippocampus_003"])
    assert entry_plan(record, "/data")[1] == record["split"]["test"]
    with pytest.raises(ValueError, match="needs 'training'"):
        entry_plan({"name": "x", "training": {"data_folder": "msd_hippocampus"}}, "/data")
    evaluation = {"summary": {"Anterior": {"dice": {"mean": 0.88}, "hd95": {"mean": 1.5}},
                              "Posterior": {"dice": {"mean": 0.86}}},
                  "mean_foreground_dice": 0.87}
    assert summarize_evaluation(evaluation) == {
        "per_class": {"Anterior": {"dice": 0.88, "hd95": 1.5},
                      "Posterior": {"dice": 0.86, "hd95": None}},
        "mean_foreground_dice": 0.87}


def _results():
    """A small results dict with one row in every section."""
    train_row = {"family": "unet", "input": "EM 256x256x1", "shape": [256, 256, 1], "batch": 8,
                 "forward_gflops": 24.0, "train_gflops_per_image": 72.0, "step_s_median": 6.0,
                 "images_per_s": 8 / 6.0, "gflops_per_s": 96.0, "pct_conv_peak": 80.0,
                 "pct_matmul_peak": 75.0}
    variant = dict(train_row, variant="default", setting="jit_compile=False", speedup=1.0,
                   max_loss_diff=0.0, trajectory="same (tol 0.001)", step_s_best=5.9)
    inference_rows = [
        {"family": "unet", "shape": [48, 64, 5], "format": fmt, "file_mb": mb, "latency_ms": ms,
         "throughput_images_per_s": 1000.0 / ms, "throughput_batch": 8,
         "latency_vs_keras": ms / 20.0}
        for fmt, mb, ms in [("keras", None, 20.0), ("savedmodel", 31.0, 23.0),
                            ("tflite-float32", 31.0, 30.0), ("tflite-int8", 7.75, 5.0)]]
    return {
        "run": {"mode": "quick", "seconds": 500.0},
        "machine": {"cpu_model": "Test CPU", "cpu_cores": 2, "usable_cores": 2, "memory_gib": 24.0,
                    "gpus": [], "python": "3.11", "tensorflow": "2.21.0", "keras": "3.15.1",
                    "numpy": "2.4", "ai_edge_litert": "2.3.0", "onednn_opts": "default (on)",
                    "load_average": [0.1, 0.2, 0.3], "date": "2026-11-30T00:00:00+00:00"},
        "peak": {"matmul": {"n": 2048, "flops": 17_179_869_184, "best_s": 0.16, "median_s": 0.17,
                            "repeats": 5, "gflops_best": 107.4, "gflops_median": 101.1},
                 "conv3x3": {"shape": [8, 128, 128, 64, 64], "flops": 9_663_676_416, "best_s": 0.08,
                             "median_s": 0.09, "repeats": 5, "gflops_best": 120.0,
                             "gflops_median": 107.4}},
        "training": [train_row],
        "pipeline": [{"data": "EM", "shape": [256, 256, 1], "cases": 30, "batch": 8,
                      "backend": "tf", "prepare_s": 1.0, "pipeline_images_per_s": 500.0,
                      "train_images_per_s": 1.25,
                      "ratio": 400.0}],
        "inference": {"rows": inference_rows, "summary": family_summary(inference_rows),
                      "note": "n"},
        "accuracy": {"entries": [], "registered": 0},
        "distribution": {"kind": "cpu-logical", "devices": ["/cpu:0", "/cpu:1"],
                         "rows": [{"strategy": "default", "replicas": 1, "global_batch": 8,
                                   "steps": 4, "images_per_s": 40.0, "final_loss": 0.7},
                                  {"strategy": "mirrored", "replicas": 2, "global_batch": 8,
                                   "steps": 4, "images_per_s": 32.0, "final_loss": 0.7}],
                         "model": {"shape": [64, 64, 1], "depth": 3}, "loss": "ce",
                         "optimizer": "SGD", "overhead_ratio": 1.25,
                         "max_abs_weight_diff": 3e-8, "final_loss_diff": 0.0},
        "variants": {"rows": [variant], "notes": ["note"]},
    }


def test_render_results_has_every_section():
    results = _results()
    text = report.render_results(results)
    for _, heading in report.SECTIONS:
        assert f"## {heading}\n" in text
    assert "Test CPU" in text and "2 / 2" in text and "24.0 GiB" in text
    assert "The zoo registry has no entries" in text
    assert "Overhead (default img/s / mirrored img/s): 1.25x" in text
    # the training row: 24 GFLOP forward, 72 per training image, 8 / 6 s = 1.3 img/s,
    # 96 GFLOP/s, 80% of the conv peak, 75% of the matmul peak
    (line,) = [line for line in text.splitlines()
               if line.startswith("| unet ") and "EM 256x256x1" in line]
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells == ["unet", "EM 256x256x1 (256x256x1)", "8", "24.00", "72.00", "6.000", "1.3",
                     "96.0", "80%", "75%"]
    assert "\n\n## Machine\n" in text
    assert "Smoke run" not in text


def test_render_smoke_and_failed_section():
    results = dict(_results(), run={"mode": "smoke"}, peak={"error": "RuntimeError: boom"})
    text = report.render_results(results)
    assert "Smoke run" in text
    assert "Not measured: RuntimeError: boom" in text
    del results["pipeline"]
    assert "Not measured in this run." in report.render_section("pipeline", results)


def test_targets_from_measurements():
    results = _results()
    results["variants"]["rows"][0]["pct_conv_peak"] = 50.0
    results["variants"]["rows"][0]["gflops_per_s"] = 60.0
    training, savedmodel, tflite = evaluate_targets(results, settings.get_settings("quick"))
    # 60 of 120 GFLOP/s: 50% < 60%
    assert training["met"] is False and training["measured"].startswith("50% (60.0 of 120.0")
    # 23 / 20 ms = 1.15x > 1.1x
    assert savedmodel["met"] is False and "1.15x" in savedmodel["measured"]
    # 7.75 / 31 MB = 25% <= 30%
    assert tflite["met"] is True and "25.0%" in tflite["measured"]
    # smoke shapes are not the target's model: measured, but not judged
    assert evaluate_targets(results, settings.get_settings("smoke"))[0]["met"] is None
    assert [t["met"] for t in evaluate_targets({}, settings.get_settings("full"))] == [None] * 3


def test_variant_specs_and_comparison():
    names = [spec[0] for spec in variant_specs(settings.get_settings("full"), cores=2)]
    assert names == ["default", "xla", "batch 4", "batch 16", "bilinear", "bfloat16",
                     "threads tf/tf", "threads 2/1", "threads 1/2", "oneDNN off"]
    default = {"images_per_s": 2.0, "losses": [1.0, 0.9, 0.8]}
    # |0.8 - 0.82| = 0.02: too far for float32 (1e-3), within bfloat16's 5e-2
    row = compare_with_default({"images_per_s": 3.0, "losses": [1.0, 0.9, 0.82]}, default,
                               same_batch=True, same_model=True)
    assert row["speedup"] == pytest.approx(1.5) and row["trajectory"] == "differs"
    assert row["max_loss_diff"] == pytest.approx(0.02)
    row = compare_with_default({"images_per_s": 1.0, "losses": [1.0, 0.9, 0.82],
                                "policy": "mixed_bfloat16"}, default, True, True)
    assert row["trajectory"] == "same (tol 0.05)"
    row = compare_with_default({"images_per_s": 4.0, "losses": []}, default, False, True)
    assert row["trajectory"] == "n/a (other batch)" and row["speedup"] == pytest.approx(2.0)


def test_settings_modes():
    quick, full = settings.get_settings("quick"), settings.get_settings("full")
    assert quick.train_steps < full.train_steps and quick.peak_repeats < full.peak_repeats
    assert full.variant_shape == (256, 256, 1) and full.variant_batch == 8
    assert full.variant_model == {"depth": 4, "base_filters": 32}
    with pytest.raises(ValueError, match="mode"):
        settings.get_settings("fast")


def test_conv_peak_in_both_layouts_counts_the_same_work():
    from benchmarks.suite.peak import conv_peak

    nhwc = conv_peak((1, 8, 8, 4, 4), repeats=1, warmup=0)
    nchw = conv_peak((1, 8, 8, 4, 4), repeats=1, warmup=0, data_format="NCHW")
    # 2 * B * H * W * Cin * Cout * 9 = 2 * 1 * 8 * 8 * 4 * 4 * 9
    assert nhwc["flops"] == nchw["flops"] == 18432
    assert (nhwc["data_format"], nchw["data_format"]) == ("NHWC", "NCHW")
