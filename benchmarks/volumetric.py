"""Volumetric (3-D) benchmarks: kerasseg's unet3d against MONAI on torch's CPU wheel.

Two measurements, each in child processes of its own:

1. 3-D U-Net training throughput (voxels/s after warm-up, GFLOP/s, % of the machine's
   measured conv peak): kerasseg's ``unet3d`` (depth 3, widths 32, 64, 128, 256, instance
   normalization) against MONAI's ``BasicUNet`` and ``DynUNet`` with the same widths per
   level, at the planned hippocampus patch 40x56x40 and at 64^3, batch 2, Dice +
   cross-entropy, AdamW, on one fixed synthetic batch. Target: kerasseg >= 1.5x MONAI.
2. Sliding-window inference of a whole volume (seconds per volume, peak RSS): kerasseg's
   ``Predictor.predict_volume`` against MONAI's ``sliding_window_inference``, overlap 0.5,
   Gaussian blending (sigma_scale 0.125), 2 windows per forward pass, each with its own
   3-D U-Net of the sizes above: the largest real hippocampus volume of the data folder
   (z-scored) at its patch 40x56x40, and a synthetic 512x512x300 volume at 128^3.
   Target: kerasseg >= 2x faster.

The MONAI side runs ``benchmarks/volumetric_peer.py`` with the Python of a separate
virtual environment (torch CPU wheel, MONAI, NumPy; ``benchmarks/requirements-monai.txt``),
by default ``benchmarks/out/monai-venv``, made on first use (or by ``--setup-peer``).

Usage:
    python benchmarks/volumetric.py --setup-peer     # make the MONAI environment, then exit
    python benchmarks/volumetric.py                  # full run; writes benchmarks/RESULTS.md
    python benchmarks/volumetric.py --quick          # tiny sizes: checks every measurement runs
    python benchmarks/volumetric.py --only training --monai-nets dynunet
    python benchmarks/volumetric.py --render         # the section again from the results

Writes the results to ``benchmarks/results/volumetric.json`` (kept with the project; a
``--quick`` run writes ``OUTPUT/results.json``, default ``benchmarks/out/volumetric-quick``)
and the section "Volumetric (3-D) benchmarks" between its markers in
``benchmarks/RESULTS.md`` (a ``--quick`` run writes ``OUTPUT/RESULTS.md`` instead). A run of
some parts (``--only training``) keeps the other part's rows from the results file and says
so under the tables. Run the full mode on an otherwise idle machine: it took 70 minutes on
2 cores in float32 only (most of it the 512x512x300 volume, 196 windows of 128^3 per
network); the bfloat16 training rows add about 10 minutes. A few GB of memory per child.
"""

import argparse
import json
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.suite import volumetric as vol  # noqa: E402
from benchmarks.suite.measure import machine_description, percent  # noqa: E402

DEFAULT_DATA = pathlib.Path(os.environ.get("KERASSEG_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_OUTPUT = ROOT / "benchmarks" / "out" / "volumetric"
PEER_VENV = ROOT / "benchmarks" / "out" / "monai-venv"
PEER_SCRIPT = ROOT / "benchmarks" / "volumetric_peer.py"
PEER_REQUIREMENTS = ROOT / "benchmarks" / "requirements-monai.txt"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
#: A full run's results, kept with the project (the section can be rendered from it anywhere).
RESULTS_JSON = ROOT / "benchmarks" / "results" / "volumetric.json"
SAMPLE = ROOT / "kerasseg" / "sample" / "hippocampus"
PARTS = ("training", "inference")
VOLUMES = ("hippocampus", "synthetic")
#: Seconds before a child process is stopped.
CHILD_TIMEOUT = 3 * 3600


# ------------------------------------------------------------------ the command line


def _names(text, allowed, option):
    names = [n for n in (text or "").split(",") if n]
    unknown = sorted(set(names) - set(allowed))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{option}: expected a comma-separated list from {list(allowed)}; "
            f"received {text!r}")
    return names


def parse_args(argv=None):
    """Parse the command line (see the module docstring).

    Example:
        >>> args = parse_args(["--quick", "--monai-nets", "dynunet"])
        >>> args.mode, args.monai_nets, args.only
        ('quick', ['dynunet'], ['training', 'inference'])
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, single repeats: checks that every measurement runs")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to run, from {','.join(PARTS)}")
    parser.add_argument("--monai-nets", default=",".join(vol.MONAI_NETS),
                        help=f"MONAI networks to compare, from {','.join(vol.MONAI_NETS)}")
    parser.add_argument("--volumes", default=",".join(VOLUMES),
                        help=f"inference volumes, from {','.join(VOLUMES)}")
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="shared data folder holding msd_hippocampus/ (default "
                             "$KERASSEG_DATA or ../shared/data; else the bundled sample)")
    parser.add_argument("--output", default=None,
                        help="folder for the run's files (default benchmarks/out/volumetric, "
                             "or benchmarks/out/volumetric-quick with --quick)")
    parser.add_argument("--results", default=None,
                        help="the results file (default benchmarks/results/volumetric.json, "
                             "or OUTPUT/results.json with --quick); a run of some parts "
                             "(--only) keeps the other parts' rows from it")
    parser.add_argument("--results-md", default=None,
                        help="the file whose volumetric section is written (default "
                             "benchmarks/RESULTS.md; OUTPUT/RESULTS.md with --quick)")
    parser.add_argument("--peer-python", default=None,
                        help="Python with torch and MONAI (default benchmarks/out/monai-venv, "
                             "made when missing)")
    parser.add_argument("--setup-peer", action="store_true",
                        help="make the MONAI environment (benchmarks/out/monai-venv) and exit")
    parser.add_argument("--render", action="store_true",
                        help="write the section again from the results file; measure nothing")
    args = parser.parse_args(argv)
    try:
        args.only = _names(args.only, PARTS, "--only")
        args.monai_nets = _names(args.monai_nets, vol.MONAI_NETS, "--monai-nets")
        args.volumes = _names(args.volumes, VOLUMES, "--volumes")
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    args.mode = "quick" if args.quick else "full"
    if args.output is None:
        args.output = str(DEFAULT_OUTPUT.with_name("volumetric-quick") if args.quick
                          else DEFAULT_OUTPUT)
    if args.results is None:
        args.results = str(pathlib.Path(args.output) / "results.json" if args.quick
                           else RESULTS_JSON)
    if args.results_md is None:
        args.results_md = str(pathlib.Path(args.output) / "RESULTS.md" if args.quick
                              else RESULTS_MD)
    return args


# ------------------------------------------------------------------- child processes


def _write_json(path, data):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp",
                                     encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(handle.name, path)


def _write_text(path, text):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp",
                                     encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.replace(handle.name, path)


def run_child(command, spec, timeout=CHILD_TIMEOUT):
    """Run ``command + [SPEC_JSON, RESULT_FILE]`` and return the JSON it wrote.

    Raises:
        RuntimeError: if the child fails; the message holds the end of its output.
    """
    with tempfile.TemporaryDirectory(prefix="kerasseg-vol-") as tmp:
        result = os.path.join(tmp, "result.json")
        process = subprocess.run(command + [json.dumps(spec), result], capture_output=True,
                                 text=True, timeout=timeout, cwd=str(ROOT))
        if process.returncode != 0 or not os.path.exists(result):
            tail = (process.stdout + process.stderr)[-3000:]
            raise RuntimeError(f"child failed (exit {process.returncode}):\n{tail}")
        with open(result, encoding="utf-8") as handle:
            return json.load(handle)


def keras_command():
    """This interpreter running this script's worker mode (the spec and result follow)."""
    return [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker-spec"]


def peer_command(python):
    return [str(python), str(PEER_SCRIPT)]


def setup_peer(venv=PEER_VENV):
    """Make the MONAI environment: a venv and ``pip install -r requirements-monai.txt``.

    Returns:
        The environment's Python.
    """
    python = pathlib.Path(venv) / "bin" / "python"
    base = getattr(sys, "_base_executable", sys.executable)
    if not python.exists():
        print(f"making {venv} with {base} ...", flush=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    started = time.perf_counter()
    print(f"installing {PEER_REQUIREMENTS.name} into {venv} ...", flush=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r",
                    str(PEER_REQUIREMENTS)], check=True)
    print(f"peer environment ready ({time.perf_counter() - started:.0f} s)", flush=True)
    return python


def peer_python(args):
    """The peer's Python: ``--peer-python``, else the default venv (made when missing)."""
    if args.peer_python:
        return pathlib.Path(args.peer_python)
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        return setup_peer()
    return python


# ---------------------------------------------------------------------- the worker


def _configs(settings, nets, framework):
    widths = vol.level_widths(settings.depth, settings.base_filters)
    return [{"framework": framework, "net": net, "patch": list(patch), "precision": precision,
             "batch": settings.train_batch, "classes": settings.classes, "widths": widths,
             "depth": settings.depth, "base_filters": settings.base_filters,
             "warmup": settings.train_warmup, "steps": settings.train_steps, "seed": 0}
            for precision in settings.train_precisions
            for patch in settings.train_patches for net in nets]


def keras_train(config):
    """Train kerasseg's unet3d on one fixed random batch; time the steps after warm-up."""
    import statistics

    import keras
    import numpy as np

    import kerasseg
    from benchmarks.suite.training import compile_like_trainer, forward_flops

    patch, batch, classes = tuple(config["patch"]), config["batch"], config["classes"]
    options = {"depth": config["depth"], "base_filters": config["base_filters"],
               "normalization": "instance"}
    flops = forward_flops("unet3d", patch + (1,), classes, options)
    precision = config.get("precision", "float32")
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if precision == "bfloat16" else "float32")
    keras.utils.set_random_seed(config["seed"])
    model = kerasseg.build("unet3d", input_shape=patch + (1,), num_classes=classes, **options)
    compile_like_trainer(model, classes)
    rng = np.random.default_rng(config["seed"])
    images = rng.normal(size=(batch,) + patch + (1,)).astype("float32")
    labels = rng.integers(0, classes, size=(batch,) + patch).astype("int32")
    losses, times = [], []
    for step in range(config["warmup"] + config["steps"]):
        start = time.perf_counter()
        logs = model.train_on_batch(images, labels, return_dict=True)
        elapsed = time.perf_counter() - start
        losses.append(float(logs["loss"]))
        if step >= config["warmup"]:
            times.append(elapsed)
    median = statistics.median(times)
    params = model.count_params()
    del model
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    return {"framework": "kerasseg", "net": "unet3d", "patch": list(patch),
            "precision": precision, "batch": batch,
            "classes": classes, "params_m": params / 1e6, "forward_gflops": flops / 1e9,
            "step_s_median": median, "step_s_best": min(times), "steps": len(times),
            "voxels_per_s": batch * vol.voxels(patch) / median,
            "gflops_per_s": 3 * flops * batch / median / 1e9, "losses": losses}


def _load_volume(volume):
    import numpy as np

    if volume["kind"] == "npy":
        return np.load(volume["path"]).astype("float32", copy=False)
    rng = np.random.default_rng(volume.get("seed", 0))
    return rng.standard_normal(tuple(volume["shape"]), dtype=np.float32)


def keras_infer(spec):
    """``Predictor.predict_volume`` of one volume, after a one-window warm-up."""
    import resource
    import statistics

    import keras
    import numpy as np

    import kerasseg
    from kerasseg.description import ModelInfo, Preprocessing
    from kerasseg.inference import Predictor

    patch, classes = tuple(spec["patch"]), spec["classes"]
    data = _load_volume(spec["volume"])
    keras.utils.set_random_seed(spec.get("seed", 0))
    options = {"depth": spec["depth"], "base_filters": spec["base_filters"],
               "normalization": "instance"}
    model = kerasseg.build("unet3d", input_shape=patch + (1,), num_classes=classes, **options)
    info = ModelInfo(model="unet3d", num_classes=classes, channels=1, patch_size=patch,
                     stride=2 ** spec["depth"], model_options=options,
                     preprocessing=Preprocessing(mode="3d", patch_size=patch,
                                                 normalization={"method": "none", "params": {}}),
                     flip_axes=(), output_activation="logits")
    predictor = Predictor(model, info, overlap=spec["overlap"], batch_size=spec["sw_batch"])
    forward, counted = predictor._forward, {"windows": 0}

    def counting(batch):
        counted["windows"] += int(batch.shape[0])
        return forward(batch)

    predictor._forward = counting
    predictor.predict_volume(np.zeros(patch + (1,), "float32"))  # warm-up: traces the call
    counted["windows"] = 0
    before = _current_rss_mib()
    times = []
    for _ in range(spec.get("repeats", 1)):
        start = time.perf_counter()
        out = predictor.predict_volume(data[..., None])
        times.append(time.perf_counter() - start)
        shape = list(out.shape)
        del out
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"framework": "kerasseg", "net": "unet3d", "volume": spec["label"],
            "shape": list(data.shape), "patch": list(patch),
            "windows": counted["windows"] // len(times), "output_shape": shape,
            "seconds_median": statistics.median(times), "seconds_best": min(times),
            "repeats": len(times), "rss_before_mib": before, "peak_rss_mib": peak,
            "rss_rise_mib": peak - before}


def _current_rss_mib():
    import resource

    pages = int(pathlib.Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / vol.MIB


def keras_peak(spec):
    from benchmarks.suite.peak import conv3d_peak, conv_peak

    return {"conv3x3": conv_peak(tuple(spec["shape"]), repeats=spec["repeats"]),
            "conv3x3x3": conv3d_peak(tuple(spec["shape3d"]), repeats=spec["repeats"])}


def run_worker(spec):
    """The kerasseg child: ``peak``, ``train`` (a list of configs) or ``infer``."""
    kind = spec["kind"]
    if kind == "peak":
        return keras_peak(spec)
    if kind == "train":
        rows = []
        for config in spec["configs"]:
            try:
                rows.append(keras_train(config))
            except Exception as error:  # noqa: BLE001 - one config must not stop the rest
                traceback.print_exc()
                rows.append({"framework": "kerasseg", "net": "unet3d",
                             "patch": config["patch"],
                             "error": f"{type(error).__name__}: {error}"})
        return rows
    if kind == "infer":
        return keras_infer(spec)
    raise ValueError(f"unknown worker spec kind {kind!r}")


# ------------------------------------------------------------------------ the parent


def hippocampus_volume(data, output):
    """Save the largest hippocampus image of the data folder, z-scored, as ``.npy``.

    The data folder's ``msd_hippocampus/imagesTr`` is used when it exists, else the
    bundled sample. The largest volume (most voxels; the first by name among equals)
    gives the most windows.

    Returns:
        ``(path of the .npy, its shape, a sentence naming the case)``.
    """
    import numpy as np
    import SimpleITK as sitk

    folder = pathlib.Path(data) / "msd_hippocampus" / "imagesTr"
    source = "the MSD hippocampus training set"
    if not folder.is_dir():
        folder, source = SAMPLE / "imagesTr", "the bundled hippocampus sample"
    sizes = []
    for path in sorted(folder.glob("*.nii.gz")):
        if path.name.startswith("."):
            continue
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        sizes.append((-vol.voxels(reader.GetSize()), path.name, path))
    if not sizes:
        raise FileNotFoundError(f"no .nii.gz image in {folder}")
    _, name, path = min(sizes)
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype("float32")  # (z, y, x)
    array = (array - array.mean()) / max(float(array.std()), 1e-8)
    target = pathlib.Path(output) / f"{name.split('.')[0]}.npy"
    target.parent.mkdir(parents=True, exist_ok=True)
    np.save(target, array.astype("float32"))
    note = (f"the largest real hippocampus volume of {source}, {name} "
            f"({vol._shape(array.shape)} voxels at 1 mm, z-scored)")
    return str(target), list(array.shape), note


class Run:
    """One run: settings, the two interpreters, the results dict and where it goes."""

    def __init__(self, args):
        self.args = args
        self.settings = vol.get_settings(args.mode)
        self.output = pathlib.Path(args.output)
        self.start = time.perf_counter()
        s = self.settings
        widths = vol.level_widths(s.depth, s.base_filters)
        self.results = {
            "run": {"mode": args.mode,
                    "command": "python benchmarks/volumetric.py"
                               + "".join(f" {shlex.quote(a)}" for a in (args.argv or []))},
            "machine": machine_description(),
            "config": {"depth": s.depth, "widths": widths, "classes": s.classes,
                       "overlap": s.overlap, "sigma_scale": s.sigma_scale,
                       "sw_batch": s.sw_batch, "monai_nets": args.monai_nets,
                       "dynunet_strides": [1] + [2] * s.depth,
                       "basicunet_features": list(_basicunet_features(widths))},
        }
        self.peer = None
        self._keep_earlier_parts()

    def _keep_earlier_parts(self):
        """A run of some parts keeps the other parts' rows from the results file (same mode)."""
        path = pathlib.Path(self.args.results)
        if not path.exists() or set(self.args.only) == set(PARTS):
            return
        earlier = json.loads(path.read_text())
        if (earlier.get("run") or {}).get("mode") != self.args.mode:
            return
        kept = {}
        for part in PARTS:
            if part not in self.args.only and earlier.get(part):
                self.results[part] = earlier[part]
                kept[part] = (earlier.get("kept") or {}).get(part) or {
                    "command": earlier["run"].get("command"),
                    "date": (earlier.get("machine") or {}).get("date"),
                    "seconds": earlier["run"].get("seconds")}
        if "inference" in kept and earlier.get("config", {}).get("hippocampus_note"):
            self.results["config"]["hippocampus_note"] = earlier["config"]["hippocampus_note"]
        if kept:
            self.results["kept"] = kept

    def save(self):
        self.results["run"]["seconds"] = time.perf_counter() - self.start
        _write_json(self.args.results, self.results)

    def _peer(self):
        if self.peer is None:
            self.peer = peer_python(self.args)
        return self.peer

    def _child(self, command, spec):
        started = time.perf_counter()
        result = run_child(command, spec)
        print(f"  [{spec['kind']} {spec.get('label', '')}] {time.perf_counter() - started:.0f} s",
              flush=True)
        return result

    def versions(self):
        try:
            self.results["peer"] = self._child(peer_command(self._peer()), {"kind": "versions"})
        except Exception as error:  # noqa: BLE001 - the report says so
            self.results["peer"] = {"error": f"{type(error).__name__}: {error}"}

    def peak(self):
        s = self.settings
        try:
            self.results["peak"] = self._child(keras_command(), {
                "kind": "peak", "shape": list(s.peak_shape), "shape3d": list(s.peak3d_shape),
                "repeats": s.peak_repeats})
        except Exception as error:  # noqa: BLE001
            self.results["peak"] = {"error": f"{type(error).__name__}: {error}"}

    def training(self):
        s = self.settings
        rows = []
        for command, configs in (
                (keras_command(), _configs(s, ["unet3d"], "kerasseg")),
                (peer_command(self._peer()), _configs(s, self.args.monai_nets, "monai"))):
            try:
                rows += self._child(command, {"kind": "train", "configs": configs})
            except Exception as error:  # noqa: BLE001 - every config of this side failed
                rows += [{"framework": c["framework"], "net": c["net"], "patch": c["patch"],
                          "error": f"{type(error).__name__}: {error}"} for c in configs]
        for row in rows:
            row["pct_conv_peak"] = percent(row.get("gflops_per_s"), self._peak("conv3x3"))
            row["pct_conv3d_peak"] = percent(row.get("gflops_per_s"), self._peak("conv3x3x3"))
        precisions = {name: i for i, name in enumerate(s.train_precisions)}
        patches = {tuple(p): i for i, p in enumerate(s.train_patches)}
        nets = {net: i for i, net in enumerate(["unet3d"] + self.args.monai_nets)}
        rows.sort(key=lambda r: (precisions.get(vol.precision(r), 99),
                                 patches.get(tuple(r["patch"]), 99), nets.get(r["net"], 99)))
        self.results["training"] = rows

    def _peak(self, key):
        return ((self.results.get("peak") or {}).get(key) or {}).get("gflops_best")

    def inference(self):
        s = self.settings
        widths = vol.level_widths(s.depth, s.base_filters)
        rows = []
        for volume in s.volumes:
            if volume.kind not in self.args.volumes:
                continue
            try:
                if volume.kind == "hippocampus":
                    path, shape, note = hippocampus_volume(self.args.data, self.output)
                    self.results["config"]["hippocampus_note"] = note
                    source = {"kind": "npy", "path": path}
                else:
                    source = {"kind": "synthetic", "shape": list(volume.shape), "seed": 0}
            except Exception as error:  # noqa: BLE001
                rows.append({"framework": "kerasseg", "net": "unet3d", "volume": volume.label,
                             "error": f"{type(error).__name__}: {error}"})
                continue
            base = {"kind": "infer", "label": volume.label, "volume": source,
                    "patch": list(volume.patch), "classes": s.classes, "widths": widths,
                    "depth": s.depth, "base_filters": s.base_filters, "overlap": s.overlap,
                    "sigma_scale": s.sigma_scale, "sw_batch": s.sw_batch,
                    "repeats": volume.repeats, "seed": 0}
            sides = [("kerasseg", "unet3d", keras_command)] + [
                ("monai", net, lambda: peer_command(self._peer())) for net in self.args.monai_nets]
            for framework, net, command in sides:
                try:
                    rows.append(self._child(command(), {**base, "net": net}))
                except Exception as error:  # noqa: BLE001 - the table says so
                    rows.append({"framework": framework, "net": net, "volume": volume.label,
                                 "error": f"{type(error).__name__}: {error}"})
                self.results["inference"] = rows
                self.save()
        self.results["inference"] = rows

    def finish(self):
        self.results["machine"]["load_average_end"] = (
            list(os.getloadavg()) if hasattr(os, "getloadavg") else None)
        self.save()
        return write_section(self.results, self.args.results_md)


def _basicunet_features(widths):
    # The same rule as volumetric_peer.basicunet_features (that file imports no kerasseg).
    levels = list(widths)
    while len(levels) < 5:
        levels.append(min(2 * levels[-1], 320))
    return tuple(levels[:5]) + (levels[0],)


def write_section(results, results_md):
    """Render the section, print it, and put it between the markers of ``results_md``."""
    body = vol.render_section(results)
    path = pathlib.Path(results_md)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    _write_text(path, vol.replace_section(text, body))
    print("\n" + body, flush=True)
    print(f"Wrote {path}", flush=True)
    return body


def main(argv=None):
    """Run the benchmark, a worker (``--worker-spec``), ``--setup-peer`` or ``--render``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--worker-spec"]:  # a kerasseg child: SPEC_JSON RESULT_FILE
        _write_json(argv[2], run_worker(json.loads(argv[1])))
        return 0
    args = parse_args(argv)
    args.argv = argv
    if args.setup_peer:
        setup_peer()
        return 0
    output = pathlib.Path(args.output)
    if args.render:
        write_section(json.loads(pathlib.Path(args.results).read_text()), args.results_md)
        return 0
    run = Run(args)
    print(f"{args.mode} run: {', '.join(args.only)}; MONAI {', '.join(args.monai_nets)}; "
          f"output {output}", flush=True)
    run.versions()
    run.peak()
    run.save()
    if "training" in args.only:
        run.training()
        run.save()
    if "inference" in args.only:
        run.inference()
        run.save()
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
