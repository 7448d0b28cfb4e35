"""The kerasseg benchmark suite: speed next to the machine's measured peak, and accuracy.

Sections, each printed as a table as soon as it is measured:

1. machine peak: a float32 matmul and a 3x3 convolution (GFLOP/s);
2. training images/s and achieved GFLOP/s of each model family at 256x256x1 (EM) and at
   the hippocampus 2.5-D slice size 48x64x5 (rounded up to the family's stride);
3. input pipeline images/s (``benchmarks/pipeline_speed.py``) next to training images/s;
4. inference latency and throughput: Keras, SavedModel, TFLite float32/float16/int8;
5. accuracy of each zoo entry on its held-out cases, with and without flip TTA;
6. MirroredStrategy over two logical CPUs (or all GPUs) against the default strategy;
7. training-step variants of the U-Net (depth 4, 32 filters, 256x256x1, batch 8): XLA,
   batch sizes, bilinear upsampling, bfloat16, thread settings, oneDNN off;
8. the targets, met or not, with the measurement that limits each.

Usage:
    python benchmarks/run.py                     # full run (about 30 minutes on 2 cores)
    python benchmarks/run.py --quick             # under 10 minutes on 2 cores
    python benchmarks/run.py --smoke             # tiny shapes: checks that every section runs
    python benchmarks/run.py --only peak,training --output /tmp/bench

Writes ``OUTPUT/results.json`` (default ``benchmarks/out/``) and ``benchmarks/RESULTS.md``
(a ``--smoke`` run writes its ``RESULTS.md`` into ``OUTPUT`` instead). Set
``TF_CPP_MIN_LOG_LEVEL=2`` to silence TensorFlow's start-up messages. Numbers depend on
what else runs on the machine: the report gives the load average at the start.
"""

import argparse
import json
import math
import os
import pathlib
import sys
import time
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.pipeline_speed import DEFAULT_DATA  # noqa: E402
from benchmarks.suite import report  # noqa: E402
from benchmarks.suite.measure import cpu_has_flag, machine_description, percent  # noqa: E402
from benchmarks.suite.settings import FAMILIES, UNET_TARGET, get_settings  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "out"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
SECTION_KEYS = ("peak", "training", "pipeline", "inference", "accuracy", "distribution", "variants")
#: Loss trajectories of two float32 runs agree when no step differs by more than this.
LOSS_TOLERANCE = 1e-3
#: The same for a bfloat16 run against the float32 default.
BF16_LOSS_TOLERANCE = 5e-2
PIPELINE_DATA = {
    # shape label -> (data folder, make_dataset options)
    "hippocampus": ("msd_hippocampus", {"mode": "2.5d", "context": 2, "slice_axis": 2}),
    "EM": ("isbi2012_membrane/train", {}),
    "tiny": ("isbi2012_membrane/train", {}),
}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):
        return _jsonable(value.item())
    return value


class Run:
    """One benchmark run: its settings, its results dict, and where it writes them.

    Args:
        settings: a :class:`~benchmarks.suite.settings.Settings`.
        output: the output folder (``results.json``, exported models).
        data: the shared data folder.
        results_md: where ``RESULTS.md`` is written.
    """

    def __init__(self, settings, output, data, results_md):
        self.settings = settings
        self.output = pathlib.Path(output)
        self.data = pathlib.Path(data)
        self.results_md = pathlib.Path(results_md)
        self.results = {"run": {"mode": settings.mode}, "machine": machine_description()}
        self.start = time.perf_counter()
        self.trained = {}  # (family, size, batch, options) -> measure_training result
        self.calibration = {}  # shape label -> float32 images from the pipeline

    # ----------------------------------------------------------------- bookkeeping

    def save(self):
        """Write ``results.json`` (atomically)."""
        from kerasseg.training.checkpoint import write_text_atomic

        self.results["run"]["seconds"] = time.perf_counter() - self.start
        write_text_atomic(str(self.output / "results.json"),
                          json.dumps(_jsonable(self.results), indent=2, sort_keys=True))

    def section(self, key, measure):
        """Measure section ``key``, store it, print its table, save the JSON."""
        print(f"\n[{time.perf_counter() - self.start:6.0f} s] measuring {key} ...", flush=True)
        started = time.perf_counter()
        try:
            self.results[key] = measure()
        except Exception as error:  # noqa: BLE001 - report it, go on with the next section
            traceback.print_exc()
            self.results[key] = {"error": f"{type(error).__name__}: {error}"}
        self.results["run"].setdefault("section_seconds", {})[key] = time.perf_counter() - started
        print("\n" + report.render_section(key, self.results), flush=True)
        self.save()

    def conv_peak(self):
        """The best-repeat 3x3-conv GFLOP/s, or ``None`` when it was not measured."""
        return ((self.results.get("peak") or {}).get("conv3x3") or {}).get("gflops_best")

    def matmul_peak(self):
        """The best-repeat matmul GFLOP/s, or ``None`` when it was not measured."""
        return ((self.results.get("peak") or {}).get("matmul") or {}).get("gflops_best")

    def _with_peaks(self, row):
        row["pct_conv_peak"] = percent(row.get("gflops_per_s"), self.conv_peak())
        row["pct_matmul_peak"] = percent(row.get("gflops_per_s"), self.matmul_peak())
        return row

    def train(self, family, size, num_classes, batch, options=None, **kwargs):
        """Measure (or reuse) the training throughput of one configuration in this process."""
        from benchmarks.suite.training import measure_training

        key = (family, tuple(size), num_classes, batch, tuple(sorted((options or {}).items())),
               tuple(sorted(kwargs.items())))
        if key not in self.trained:
            self.trained[key] = measure_training(
                family, tuple(size), num_classes, batch, steps=self.settings.train_steps,
                warmup=self.settings.train_warmup, options=options, **kwargs)
        return dict(self.trained[key])

    # -------------------------------------------------------------------- sections

    def measure_peak(self):
        """Section 1: matmul and 3x3-conv peak."""
        from benchmarks.suite.peak import conv_peak, matmul_peak

        s = self.settings
        return {"matmul": matmul_peak(s.matmul_n, repeats=s.peak_repeats),
                "conv3x3": conv_peak(s.conv_shape, repeats=s.peak_repeats)}

    def measure_training(self):
        """Section 2: every family at every training shape."""
        from benchmarks.suite.training import padded_size

        rows = []
        for shape in self.settings.train_shapes:
            for family in FAMILIES:
                size = padded_size(family, shape.size) if shape.pad_to_stride else shape.size
                try:
                    row = self.train(family, size, shape.num_classes, shape.batch)
                except Exception as error:  # noqa: BLE001
                    traceback.print_exc()
                    row = {"family": family, "error": f"{type(error).__name__}: {error}"}
                row["input"] = shape.label
                rows.append(self._with_peaks(row))
                if "error" not in row:
                    print(f"  {family} {shape.label}: {row['images_per_s']:.2f} img/s, "
                          f"{row['gflops_per_s']:.1f} GFLOP/s", flush=True)
        return rows

    def _train_rate(self, shape):
        for row in self.results.get("training") or []:
            if (isinstance(row, dict) and row.get("family") == "unet" and row.get("input") == shape.label
                    and "error" not in row):
                return row["images_per_s"]
        return None

    def measure_pipeline(self):
        """Section 3: the input pipeline of each training shape, next to U-Net training."""
        import numpy as np

        from benchmarks.pipeline_speed import pipeline_rate
        from kerasseg.data.dataset import load_dataset

        rows = []
        for shape in self.settings.train_shapes:
            folder, options = PIPELINE_DATA[shape.label.split()[0]]
            path = self.data / folder
            if not path.is_dir():
                rows.append({"data": shape.label, "error": f"{path} not found"})
                continue
            cases = load_dataset(path)
            if folder.startswith("msd_hippocampus"):
                cases = cases.subset(cases.case_ids[: self.settings.pipeline_cases])
            train_rate = self._train_rate(shape)
            for backend in self.settings.pipeline_backends:
                rate, prepare_s, dataset = pipeline_rate(
                    cases, shape.size[:2], shape.batch, backend, self.settings.pipeline_batches, **options)
                if shape.label not in self.calibration:
                    images = [np.asarray(batch[0]) for batch in dataset.take(4)]
                    self.calibration[shape.label] = np.concatenate(images)[: self.settings.calibration_images]
                rows.append({
                    "data": f"{shape.label} ({folder})", "shape": list(shape.size), "cases": len(cases),
                    "batch": shape.batch, "backend": backend, "prepare_s": prepare_s,
                    "pipeline_images_per_s": rate, "train_images_per_s": train_rate,
                    "ratio": rate / train_rate if train_rate else None,
                })
                print(f"  {shape.label} / {backend}: {rate:.0f} img/s", flush=True)
        return rows

    def _calibration(self, shape, size):
        import numpy as np

        images = self.calibration.get(shape.label)
        if images is None or images.shape[-1] != size[-1]:
            rng = np.random.default_rng(0)
            return rng.normal(size=(self.settings.calibration_images,) + tuple(size)).astype("float32"), "random"
        pad_h, pad_w = size[0] - images.shape[1], size[1] - images.shape[2]
        if pad_h or pad_w:  # a family with a larger stride: zero-pad bottom and right
            images = np.pad(images, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
        return images.astype("float32"), "pipeline"

    def measure_inference(self):
        """Section 4: every family in every format at the inference shapes."""
        from benchmarks.suite.inference import family_summary, measure_family
        from benchmarks.suite.training import padded_size

        s = self.settings
        rows, sources = [], set()
        for shape in s.inference_shapes:
            for family in FAMILIES:
                size = padded_size(family, shape.size) if shape.pad_to_stride else shape.size
                calibration, source = self._calibration(shape, size)
                sources.add(source)
                try:
                    measured = measure_family(
                        family, size, shape.num_classes, str(self.output / "exports"), calibration,
                        latency_repeats=s.latency_repeats, throughput_batch=s.throughput_batch,
                        throughput_repeats=s.throughput_repeats)
                except Exception as error:  # noqa: BLE001
                    traceback.print_exc()
                    rows.append({"family": family, "shape": list(size), "error": f"{type(error).__name__}: {error}"})
                    continue
                keras_ms = measured[0]["latency_ms"]
                for row in measured:
                    row["latency_vs_keras"] = row["latency_ms"] / keras_ms
                    print(f"  {family} {row['format']}: {row['latency_ms']:.2f} ms", flush=True)
                rows.extend(measured)
        note = (f"Keras: `model(x, training=False)` in a `tf.function` (logits). SavedModel: the "
                f"`serving_default` signature (probabilities and mask). TFLite: ai-edge-litert "
                f"Interpreter, default XNNPACK delegate, num_threads={os.cpu_count()}; its file "
                f"takes batch 1, so its throughput is a stream of {s.throughput_batch} single images. "
                f"int8 calibrated on {s.calibration_images} images from "
                f"{' and '.join(sorted(sources)) or '-'} data (int8 input/output). Random weights.")
        return {"rows": rows, "summary": family_summary([r for r in rows if "error" not in r]), "note": note}

    def measure_accuracy(self):
        """Section 5: the zoo entries on their held-out cases."""
        from benchmarks.suite.accuracy import evaluate_zoo

        return evaluate_zoo(self.data, limit=self.settings.zoo_cases)

    def measure_distribution(self):
        """Section 6: MirroredStrategy against the default strategy, in a child process."""
        from benchmarks.suite.worker import run_in_subprocess

        s = self.settings
        compare = {"size": list(s.mirrored_shape), "options": s.mirrored_model,
                   "batch": 8 if s.mode != "smoke" else 2, "warmup": 2 if s.mode != "smoke" else 1,
                   "steps": s.mirrored_steps}
        return run_in_subprocess({"kind": "distribution", "compare": compare})

    def _variant_specs(self):
        """(name, setting text, kind, arguments) of the variants this run measures."""
        s = self.settings
        specs = []
        for name in s.variants:
            if name == "default":
                specs.append(("default", "jit_compile=False (Keras 'auto' on CPU)", "local", {}))
            elif name == "xla":
                specs.append(("xla", "jit_compile=True", "local", {"jit_compile": True}))
            elif name == "batch":
                for batch in s.variant_batches:
                    specs.append((f"batch {batch}", f"batch={batch}", "local", {"batch": batch}))
            elif name == "bilinear":
                specs.append(("bilinear", "upsampling='bilinear' (resize + 1x1 conv)", "local",
                              {"options": {"upsampling": "bilinear"}}))
            elif name == "bfloat16":
                specs.append(("bfloat16", "policy mixed_bfloat16", "local", {"policy": "mixed_bfloat16"}))
            elif name == "threads":
                for intra, inter in s.thread_settings:
                    label = "TF default threads" if (intra, inter) == (0, 0) else f"intra={intra}, inter={inter}"
                    specs.append((f"threads {intra or 'tf'}/{inter or 'tf'}", f"{label} (fresh process)",
                                  "process", {"threads": [intra, inter]}))
            elif name == "onednn_off":
                specs.append(("oneDNN off", "TF_ENABLE_ONEDNN_OPTS=0 (fresh process)", "process",
                              {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}}))
        return specs

    def measure_variants(self):
        """Section 7: training-step variants of the target U-Net."""
        from benchmarks.suite.training import max_loss_difference
        from benchmarks.suite.worker import run_in_subprocess

        s = self.settings
        size, options, batch = s.variant_shape, dict(s.variant_model), s.variant_batch
        rows, default = [], None
        for name, setting, kind, arguments in self._variant_specs():
            run_batch = arguments.get("batch", batch)
            run_options = {**options, **arguments.get("options", {})}
            try:
                if kind == "local":
                    row = self.train("unet", size, 2, run_batch, options=run_options,
                                     **{k: v for k, v in arguments.items() if k in ("jit_compile", "policy")})
                else:
                    train = {"family": "unet", "size": list(size), "num_classes": 2, "batch": run_batch,
                             "steps": s.train_steps, "warmup": s.train_warmup, "options": run_options}
                    row = run_in_subprocess({"kind": "train", "threads": arguments.get("threads", [0, 0]),
                                             "train": train}, env=arguments.get("env"))
            except Exception as error:  # noqa: BLE001
                traceback.print_exc()
                rows.append({"variant": name, "setting": setting, "error": f"{type(error).__name__}: {error}"})
                continue
            row.update({"variant": name, "setting": setting})
            self._with_peaks(row)
            if name == "default":
                default = row
            if default is not None:
                row["speedup"] = row["images_per_s"] / default["images_per_s"]
                if run_batch != batch or run_options != options:
                    row["trajectory"] = "n/a (other batch)" if run_batch != batch else "n/a (other model)"
                else:
                    diff = max_loss_difference(row["losses"], default["losses"])
                    tolerance = BF16_LOSS_TOLERANCE if row.get("policy") == "mixed_bfloat16" else LOSS_TOLERANCE
                    row["max_loss_diff"] = diff
                    row["trajectory"] = (f"same (tol {tolerance:g})" if diff is not None and diff <= tolerance
                                         else "differs")
            rows.append(row)
            print(f"  {name}: {row['images_per_s']:.2f} img/s ({row.get('pct_conv_peak') or 0:.0f}% of conv peak)",
                  flush=True)
        return {"rows": rows, "notes": self._variant_notes(rows, default)}

    def _variant_notes(self, rows, default):
        notes = [
            "`kerasseg train` compiles with Keras' defaults: `jit_compile='auto'` (False on a "
            "CPU-only machine and under a distribution strategy, True on a single GPU) and "
            "`steps_per_execution=1`; with steps of seconds on a CPU the per-step Python overhead "
            "that `steps_per_execution` removes is negligible, so it is not a variant here.",
        ]
        if not cpu_has_flag("avx512_bf16") and not cpu_has_flag("amx_bf16"):
            notes.append("This CPU has no bfloat16 instructions (avx512_bf16/amx_bf16): the bfloat16 "
                         "variant is emulated.")
        if default is not None:
            better = [r for r in rows if "error" not in r and r is not default
                      and r.get("speedup", 0) > 1.05 and str(r.get("trajectory", "")).startswith("same")]
            if better:
                best = max(better, key=lambda r: r["speedup"])
                notes.append(f"Faster than the default with the same loss trajectory: {best['variant']} "
                             f"({best['setting']}): {best['images_per_s']:.2f} vs "
                             f"{default['images_per_s']:.2f} img/s ({best['speedup']:.2f}x).")
            else:
                notes.append("No variant with the same loss trajectory is more than 5% faster than the default.")
        return notes

    # --------------------------------------------------------------------- targets

    def targets(self):
        """The three targets as table rows (``met`` None when not measured)."""
        s = self.settings
        target_config = (tuple(s.variant_shape) == (256, 256, 1) and s.variant_batch == 8
                         and s.variant_model == UNET_TARGET)
        rows = []
        variants = [r for r in ((self.results.get("variants") or {}).get("rows") or []) if "error" not in r]
        default = next((r for r in variants if r["variant"] == "default"), None)
        row = {"target": "U-Net depth 4/base 32, 256x256x1, batch 8 training", "threshold": ">= 60% of conv peak"}
        if default is None or default.get("pct_conv_peak") is None:
            row.update(measured="-", met=None, limit="not measured")
        else:
            best = max(variants, key=lambda r: r.get("pct_conv_peak") or 0)
            row.update(
                measured=f"{default['pct_conv_peak']:.0f}% ({default['gflops_per_s']:.1f} of "
                         f"{self.conv_peak():.1f} GFLOP/s)",
                met=(default["pct_conv_peak"] >= 60) if target_config else None,
                limit=(f"default step {default['step_s_median']:.2f} s; best variant {best['variant']} "
                       f"{best['pct_conv_peak']:.0f}%") if target_config else "smoke shapes, not the target model")
        rows.append(row)
        summary = (self.results.get("inference") or {}).get("summary") or []
        ratios = [(s_["savedmodel_keras_latency_ratio"], s_) for s_ in summary
                  if s_.get("savedmodel_keras_latency_ratio") is not None]
        row = {"target": "SavedModel inference vs Keras (batch-1 latency)", "threshold": "<= 1.1x"}
        if ratios:
            worst, which = max(ratios, key=lambda item: item[0])
            row.update(measured=f"worst {worst:.2f}x ({which['family']} {'x'.join(map(str, which['shape']))})",
                       met=worst <= 1.1,
                       limit=", ".join(f"{s_['family']} {r:.2f}x" for r, s_ in ratios))
        else:
            row.update(measured="-", met=None, limit="not measured")
        rows.append(row)
        sizes = [(s_["int8_float32_size_ratio"], s_) for s_ in summary if s_.get("int8_float32_size_ratio")]
        row = {"target": "TFLite int8 file vs float32 file", "threshold": "<= 30%"}
        if sizes:
            worst, which = max(sizes, key=lambda item: item[0])
            row.update(measured=f"worst {100 * worst:.1f}% ({which['family']})", met=worst <= 0.30,
                       limit=", ".join(f"{s_['family']} {100 * r:.1f}%" for r, s_ in sizes))
        else:
            row.update(measured="-", met=None, limit="not measured")
        rows.append(row)
        return rows

    def finish(self):
        """Compute the targets, print them, write ``results.json`` and ``RESULTS.md``."""
        from kerasseg.training.checkpoint import write_text_atomic

        self.results["targets"] = self.targets()
        self.results["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        self.save()
        print("\n" + report.render_section("targets", self.results), flush=True)
        write_text_atomic(str(self.results_md), report.render_results(self.results))
        print(f"Wrote {self.output / 'results.json'} and {self.results_md} "
              f"({self.results['run']['seconds']:.0f} s)", flush=True)


def parse_args(argv=None):
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer repeats and variants (< 10 min on 2 cores)")
    mode.add_argument("--smoke", action="store_true", help="tiny shapes; checks that every section runs")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="folder for results.json and exports")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="shared data folder (msd_hippocampus/, ...)")
    parser.add_argument("--results-md", default=None,
                        help="where to write RESULTS.md (default benchmarks/RESULTS.md; OUTPUT/RESULTS.md "
                             "for --smoke)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated sections to run, from {','.join(SECTION_KEYS)}")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        unknown = sorted(set(args.only.split(",")) - set(SECTION_KEYS))
        if unknown:
            parser.error(f"--only: unknown section(s) {unknown}; choose from {list(SECTION_KEYS)}")
    return args


def main(argv=None):
    """Run the suite (or, with ``--worker``, one child-process measurement)."""
    args = parse_args(argv)
    if args.worker:
        from benchmarks.suite.worker import run_spec

        result = run_spec(json.loads(args.worker))
        from kerasseg.training.checkpoint import write_text_atomic

        write_text_atomic(args.worker_result, json.dumps(_jsonable(result)))
        return 0
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    settings = get_settings(mode)
    output = pathlib.Path(args.output)
    results_md = args.results_md or (output / "RESULTS.md" if mode == "smoke" else RESULTS_MD)
    run = Run(settings, output, args.data, results_md)
    print(report.render_section("machine", run.results), flush=True)
    chosen = args.only.split(",") if args.only else SECTION_KEYS
    for key in SECTION_KEYS:
        if key in chosen:
            run.section(key, getattr(run, f"measure_{key}"))
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
