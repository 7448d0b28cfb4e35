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
what else runs on the machine: the report gives the load average at the start and end.
"""

import argparse
import inspect
import json
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
from benchmarks.suite.measure import machine_description, percent  # noqa: E402
from benchmarks.suite.settings import FAMILIES, get_settings  # noqa: E402
from benchmarks.suite.targets import evaluate_targets  # noqa: E402
from kerasseg.files import write_json_atomic, write_text_atomic  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "out"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
SECTION_KEYS = ("peak", "training", "pipeline", "inference", "accuracy", "distribution",
                "variants")
#: measure_training's keyword defaults, left out of the reuse key.
TRAIN_DEFAULTS = {"jit_compile": False, "policy": "float32"}


def _builder_defaults(family):
    """The keyword defaults of a family's builder (``{"depth": 4, ...}`` for the U-Net)."""
    from kerasseg.models import registry

    builder = registry.get_builder(registry.resolve_name(family))
    return {name: p.default for name, p in inspect.signature(builder).parameters.items()
            if p.default is not inspect.Parameter.empty}




def _failure(error, **fields):
    traceback.print_exc()
    return {**fields, "error": f"{type(error).__name__}: {error}"}


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
        self.results = {"run": {"mode": settings.mode},
                        "machine": machine_description(list_gpus=True)}
        self.start = time.perf_counter()
        self.trained = {}  # configuration -> measure_training row, measured once
        self.calibration = {}  # shape label -> float32 images from the pipeline

    # ----------------------------------------------------------------- bookkeeping

    def save(self):
        """Write ``results.json`` (atomically)."""
        self.results["run"]["seconds"] = time.perf_counter() - self.start
        write_json_atomic(self.output / "results.json", self.results)

    def section(self, key):
        """Measure section ``key``, store it, print its table, save the JSON."""
        print(f"\n[{time.perf_counter() - self.start:6.0f} s] measuring {key} ...", flush=True)
        started = time.perf_counter()
        try:
            self.results[key] = getattr(self, f"measure_{key}")()
        except Exception as error:  # noqa: BLE001 - report it, go on with the next section
            self.results[key] = _failure(error)
        seconds = time.perf_counter() - started
        self.results["run"].setdefault("section_seconds", {})[key] = seconds
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

        defaults = _builder_defaults(family)
        options = {k: v for k, v in (options or {}).items() if defaults.get(k, object()) != v}
        kwargs = {k: v for k, v in kwargs.items() if TRAIN_DEFAULTS.get(k, object()) != v}
        key = (family, tuple(size), num_classes, batch, tuple(sorted(options.items())),
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
        peak = {"matmul": matmul_peak(s.matmul_n, repeats=s.peak_repeats),
                "conv3x3": conv_peak(s.conv_shape, repeats=s.peak_repeats),
                # The layout the models do not use, to show why they use NHWC.
                "conv3x3_nchw": conv_peak(s.conv_shape, repeats=s.peak_repeats,
                                          data_format="NCHW")}
        if "bfloat16" in s.variants:
            peak["conv3x3_bfloat16"] = conv_peak(s.conv_shape, repeats=s.peak_repeats,
                                                 dtype="bfloat16")
        return peak

    def measure_training(self):
        """Section 2: every family at every training shape."""
        from benchmarks.suite.training import padded_size

        rows = []
        for shape in self.settings.train_shapes:
            for family in FAMILIES:
                size = padded_size(family, shape.size) if shape.pad_to_stride else shape.size
                try:
                    row = self.train(family, size, shape.num_classes, shape.batch)
                except Exception as error:  # noqa: BLE001 - one family must not stop the rest
                    row = _failure(error, family=family, shape=list(size))
                row["input"] = shape.label
                rows.append(self._with_peaks(row))
                if "error" not in row:
                    print(f"  {family} {shape.label}: {row['images_per_s']:.2f} img/s, "
                          f"{row['gflops_per_s']:.1f} GFLOP/s", flush=True)
        return rows

    def _train_rate(self, shape):
        for row in self.results.get("training") or []:
            if (isinstance(row, dict) and "error" not in row and row.get("family") == "unet"
                    and row.get("input") == shape.label):
                return row["images_per_s"]
        return None

    def measure_pipeline(self):
        """Section 3: the input pipeline of each training shape, next to U-Net training."""
        import numpy as np

        from benchmarks.pipeline_speed import pipeline_rate
        from kerasseg.data.dataset import load_dataset

        s = self.settings
        rows = []
        for shape in s.train_shapes:
            if shape.data is None:
                continue
            path = self.data / shape.data
            if not path.is_dir():
                rows.append({"data": shape.label, "error": f"{path} not found"})
                continue
            cases = load_dataset(path)
            cases = cases.subset(cases.case_ids[: s.pipeline_cases])
            train_rate = self._train_rate(shape)
            for backend in s.pipeline_backends:
                rate, prepare_s, dataset = pipeline_rate(
                    cases, shape.size[:2], shape.batch, backend, s.pipeline_batches,
                    **shape.data_options)
                if shape.label not in self.calibration:
                    images = [np.asarray(batch[0]) for batch in dataset.take(4)]
                    self.calibration[shape.label] = np.concatenate(images)[: s.calibration_images]
                rows.append({
                    "data": f"{shape.label} ({shape.data})", "shape": list(shape.size),
                    "cases": len(cases), "batch": shape.batch, "backend": backend,
                    "prepare_s": prepare_s, "pipeline_images_per_s": rate,
                    "train_images_per_s": train_rate,
                    "ratio": rate / train_rate if train_rate else None,
                })
                print(f"  {shape.label} / {backend}: {rate:.0f} img/s", flush=True)
        return rows

    def _calibration(self, shape, size):
        """int8 calibration images of ``size``: the pipeline's (zero-padded), else random."""
        import numpy as np

        images = self.calibration.get(shape.label)
        if images is None or images.shape[-1] != size[-1]:
            rng = np.random.default_rng(0)
            count = self.settings.calibration_images
            return rng.normal(size=(count,) + tuple(size)).astype("float32"), "random"
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
                        family, size, shape.num_classes, str(self.output / "exports"),
                        calibration, latency_repeats=s.latency_repeats,
                        throughput_batch=s.throughput_batch,
                        throughput_repeats=s.throughput_repeats)
                except Exception as error:  # noqa: BLE001 - one family must not stop the rest
                    rows.append(_failure(error, family=family, shape=list(size)))
                    continue
                keras_ms = measured[0]["latency_ms"]
                for row in measured:
                    row["latency_vs_keras"] = row["latency_ms"] / keras_ms
                    print(f"  {family} {row['format']}: {row['latency_ms']:.2f} ms", flush=True)
                rows.extend(measured)
        note = (
            "Keras: `model(x, training=False)` in a `tf.function`, then softmax and argmax mask. "
            "SavedModel: the `serving_default` signature (probabilities and mask). TFLite: ai-edge-litert "
            f"Interpreter, default XNNPACK delegate, num_threads={os.cpu_count()}; a .tflite "
            f"file takes batch 1, so its throughput is a stream of {s.throughput_batch} single "
            f"images. int8 (int8 input and output) calibrated on {s.calibration_images} images "
            f"from {' and '.join(sorted(sources)) or '-'} data. Random weights.")
        ok = [r for r in rows if "error" not in r]
        return {"rows": rows, "summary": family_summary(ok), "note": note}

    def measure_accuracy(self):
        """Section 5: the zoo entries on their held-out cases."""
        from benchmarks.suite.accuracy import evaluate_zoo

        return evaluate_zoo(self.data, limit=self.settings.zoo_cases)

    def measure_distribution(self):
        """Section 6: MirroredStrategy against the default strategy, in a child process."""
        from benchmarks.suite.worker import run_in_subprocess

        s = self.settings
        smoke = s.mode == "smoke"
        compare = {"size": list(s.mirrored_shape), "options": s.mirrored_model,
                   "batch": 2 if smoke else 8, "warmup": 1 if smoke else 2,
                   "steps": s.mirrored_steps}
        return run_in_subprocess({"kind": "distribution", "compare": compare})

    def _variant_row(self, kind, arguments, batch, options):
        from benchmarks.suite.worker import run_in_subprocess

        s = self.settings
        if kind == "local":
            flags = {k: v for k, v in arguments.items() if k in ("jit_compile", "policy")}
            return self.train("unet", s.variant_shape, 2, batch, options=options, **flags)
        train = {"family": "unet", "size": list(s.variant_shape), "num_classes": 2,
                 "batch": batch, "steps": s.train_steps, "warmup": s.train_warmup,
                 "options": options}
        spec = {"kind": "train", "threads": arguments.get("threads", [0, 0]), "train": train}
        return run_in_subprocess(spec, env=arguments.get("env"))

    def measure_variants(self):
        """Section 7: training-step variants of the target U-Net."""
        from benchmarks.suite.variants import compare_with_default, variant_notes, variant_specs

        s = self.settings
        options, batch = dict(s.variant_model), s.variant_batch
        rows, default = [], None
        for name, setting, kind, arguments in variant_specs(s, os.cpu_count() or 1):
            run_batch = arguments.get("batch", batch)
            run_options = {**options, **arguments.get("options", {})}
            try:
                row = self._variant_row(kind, arguments, run_batch, run_options)
            except Exception as error:  # noqa: BLE001 - one variant must not stop the rest
                rows.append(_failure(error, variant=name, setting=setting))
                continue
            row.update({"variant": name, "setting": setting})
            self._with_peaks(row)
            if name == "default":
                default = row
                row.update(speedup=1.0, trajectory="reference")
            elif default is not None:
                compare_with_default(row, default, run_batch == batch, run_options == options)
            rows.append(row)
            print(f"  {name}: {row['images_per_s']:.2f} img/s "
                  f"({row.get('pct_conv_peak') or 0:.0f}% of conv peak)", flush=True)
        notes = variant_notes(rows, default)
        bf16_peak = ((self.results.get("peak") or {}).get("conv3x3_bfloat16") or {}).get(
            "gflops_best")
        for row in rows:
            if row.get("policy") == "mixed_bfloat16" and bf16_peak:
                row["pct_bf16_conv_peak"] = percent(row["gflops_per_s"], bf16_peak)
                notes.append(f"The {row['variant']} variant reaches "
                             f"{row['pct_bf16_conv_peak']:.0f}% of the bfloat16 conv peak "
                             f"({bf16_peak:.1f} GFLOP/s).")
        return {"rows": rows, "notes": notes}

    # ---------------------------------------------------------------------- finish

    def finish(self):
        """Judge the targets, print them, write ``results.json`` and ``RESULTS.md``."""
        # Percentages of peak against this results file's peak (kept sections included).
        for key in ("training", "variants"):
            section = self.results.get(key)
            rows = section.get("rows") or [] if isinstance(section, dict) else section or []
            for row in rows:
                if row.get("gflops_per_s") is not None:
                    self._with_peaks(row)
        self.results["targets"] = evaluate_targets(self.results, self.settings)
        self.results["machine"]["load_average_end"] = (
            list(os.getloadavg()) if hasattr(os, "getloadavg") else None)
        self.save()
        print("\n" + report.render_section("targets", self.results), flush=True)
        write_text_atomic(str(self.results_md), report.render_results(self.results))
        print(f"Wrote {self.output / 'results.json'} and {self.results_md} "
              f"({self.results['run']['seconds']:.0f} s)", flush=True)


def _keep_previous(run, path, chosen):
    """Copy the sections not in ``chosen`` from an earlier run of the same mode."""
    if not path.exists():
        return
    previous = json.loads(path.read_text())
    if previous.get("run", {}).get("mode") != run.settings.mode:
        print(f"{path} holds a {previous.get('run', {}).get('mode')!r} run; nothing kept")
        return
    kept = [key for key in SECTION_KEYS if key not in chosen and key in previous]
    for key in kept:
        run.results[key] = previous[key]
    seconds = previous["run"].get("section_seconds", {})
    run.results["run"]["section_seconds"] = {k: v for k, v in seconds.items() if k in kept}
    run.results["run"]["kept_from"] = {"sections": kept,
                                       "date": previous.get("machine", {}).get("date")}
    print(f"kept {kept} from {path}", flush=True)


def parse_args(argv=None):
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="fewer repeats and variants (under 10 minutes on 2 cores)")
    mode.add_argument("--smoke", action="store_true",
                      help="tiny shapes; checks that every section runs")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT),
                        help="folder for results.json and the exported models")
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="shared data folder (msd_hippocampus/, isbi2012_membrane/)")
    parser.add_argument("--results-md", default=None,
                        help="where to write RESULTS.md (default benchmarks/RESULTS.md; "
                             "OUTPUT/RESULTS.md with --smoke)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated sections to run, from {','.join(SECTION_KEYS)}")
    parser.add_argument("--keep", action="store_true",
                        help="with --only: keep the other sections from OUTPUT/results.json "
                             "when it holds a run of the same mode")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        unknown = sorted(set(args.only.split(",")) - set(SECTION_KEYS))
        if unknown:
            parser.error(f"--only: unknown section(s) {unknown}; choose from {list(SECTION_KEYS)}")
    return args


def main(argv=None):
    """Run the suite (or, with ``--worker``, one child-process measurement).

    Returns:
        The exit status, 0.
    """
    args = parse_args(argv)
    if args.worker:  # a child process: configure TensorFlow first, then measure
        from benchmarks.suite.worker import run_spec

        result = run_spec(json.loads(args.worker))
        write_json_atomic(args.worker_result, result)
        return 0
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    settings = get_settings(mode)
    output = pathlib.Path(args.output)
    results_md = args.results_md or (output / "RESULTS.md" if mode == "smoke" else RESULTS_MD)
    run = Run(settings, output, args.data, results_md)
    print(report.render_section("machine", run.results), flush=True)
    chosen = args.only.split(",") if args.only else SECTION_KEYS
    if args.keep and args.only:
        _keep_previous(run, output / "results.json", chosen)
    for key in SECTION_KEYS:
        if key in chosen:
            run.section(key)
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
