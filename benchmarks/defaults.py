"""The defaults protocol: train with nothing but the data and a time budget, score held out.

Each row trains ``kerasseg.train(data, MODEL, output_dir=..., budget=...)`` (the U-Net, or
the 3-D U-Net for row e): every other setting comes from the plan of the training data (the
same as ``kerasseg train --data DIR --output RUN --model MODEL --budget TIME``). The EM row also names its classes (membranes are the stored
0s), which defines the task rather than tuning it. Scores are the mean over held-out cases of
each case's mean foreground Dice (3-D per volume for MRI, per image for EM), at the original
grid, without test-time augmentation. No held-out case is read before scoring.

Rows:
  a  EM: 16 of the 30 ISBI 2012 images (seeded choice), scored on the other 14;
  b  hippocampus: 20 of the zoo's 166 training cases (seeded), scored on 40 of its 42
     held-out cases;
  c  the bundled sample as the quickstart splits it: 42 cases, scored on its 10 held out;
  d  hippocampus: the zoo's 166 training cases, scored on its 42 held-out cases;
  e  3-D U-Net on thick-slice hippocampus: row b's cases with every three slices of the first
     array axis averaged into one (1 x 1 x 3 mm voxels, as a thick-slice acquisition; the
     label of the middle slice), 20 training cases, scored on the same 40 held-out cases at
     that grid. The data the 3-D plan was not designed on: anisotropic and tiny.

Precision check (``--precision``): row c's planned run at a fixed number of epochs, once in
mixed bfloat16 (the plan's choice on CPUs that have it) and once in float32, each scored on
the same held-out cases, to show that mixed precision leaves the accuracy unchanged.

Usage:
    python benchmarks/defaults.py --budget 20m                 # every row, 20 minutes each
    python benchmarks/defaults.py --precision --epochs 4       # bfloat16 vs float32, row c
    python benchmarks/defaults.py --rows d --budget 20m
    python benchmarks/defaults.py --render                     # table from stored rows

``--rescore`` scores the stored rows' best models again on their held-out cases (after a
fix to scoring or prediction); the earlier scores stay in the row's ``earlier_scores``.

Results go to ``OUTPUT/<row>.json`` (default ``benchmarks/results/defaults``, kept with the
project so that the table can be rendered again anywhere); a row already there is not run
again (delete it to re-run). The trained runs go to ``RUNS/run_<row>`` (default
``benchmarks/out/defaults``, not kept). The table goes between the markers of the
defaults section in ``benchmarks/RESULTS.md``.
"""

import argparse
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = pathlib.Path(os.environ.get("KERASSEG_DATA", ROOT.parent / "shared" / "data"))
OUTPUT = ROOT / "benchmarks" / "results" / "defaults"
RUNS = ROOT / "benchmarks" / "out" / "defaults"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
START, END = "<!-- defaults protocol: start -->", "<!-- defaults protocol: end -->"
ROWS = ("a", "b", "c", "d", "e")
#: The family each row trains (the U-Net unless named here).
MODELS = {"e": "unet3d"}
#: Row e: slices of the first array axis averaged into one, and the new spacing's factor.
THICK = 3

# The tuned counterpart of each row: the zoo recipe's (or the quickstart's) held-out Dice.
TUNED = {
    "a": (0.818, "isbi2012-unet zoo entry (tuned recipe; 6 held-out images of its own split)"),
    "b": (0.883, "hippocampus-unet zoo entry (tuned recipe trained on 166 cases; 42 held out)"),
    "c": (0.842, "examples/quickstart.py (hand-set options, 177 s; the same 10 held out)"),
    "d": (0.883, "hippocampus-unet zoo entry (tuned recipe, same 166 / 42 split)"),
    # No recipe was ever tuned on thick-slice data: nothing to compare with.
    "e": (None, "none, no recipe was tuned on thick-slice data (row b is the same cases at "
                "1 mm with the 2.5-D U-Net)"),
}


def _zoo_split():
    """The hippocampus zoo entries' split: 166 training (+ selection) and 42 held out."""
    from kerasseg.data import load_dataset
    from kerasseg.data.split import split_cases

    data = load_dataset(DATA / "msd_hippocampus")
    split = split_cases(data.case_ids, val_fraction=0.1, test_fraction=0.2, seed=0)
    return data, sorted(split.train + split.val), split.test


def _choose(ids, count, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return sorted(rng.choice(sorted(ids), size=count, replace=False).tolist())


def thick_slices(data, ids, folder, factor=THICK):
    """Write cases of ``data`` as thick-slice volumes: ``factor`` slices averaged into one.

    Along the first array axis, every ``factor`` consecutive slices of the image are
    averaged (a thick-slice acquisition of the same anatomy) and the label of the middle
    one is kept; the voxel grows ``factor`` times along that axis and the geometry moves
    with it. Cases already written are kept (the result is deterministic).

    Args:
        data: a :class:`kerasseg.data.CaseDataset` of volumes.
        ids: case ids to write.
        folder: output folder (``images/`` and ``labels/`` NIfTI files, a folder layout).
        factor: slices per thick slice.

    Returns:
        The :class:`kerasseg.data.CaseDataset` of the written folder, with ``data``'s classes.

    Example:
        >>> thick = thick_slices(data, ["hippocampus_001"], "out/thick")  # doctest: +SKIP
    """
    import dataclasses

    import numpy as np

    from kerasseg.data import load_dataset
    from kerasseg.data.io import write_image, write_label

    folder = pathlib.Path(folder)
    for case_id in ids:
        image_path = folder / "images" / f"{case_id}.nii.gz"
        label_path = folder / "labels" / f"{case_id}.nii.gz"
        if image_path.exists() and label_path.exists():
            continue
        image, label, geometry = data[case_id].load()[:3]
        count = image.shape[0] // factor
        thick = image[:count * factor].reshape((count, factor) + image.shape[1:]).mean(axis=1)
        middle = label[factor // 2:count * factor:factor]
        # The first array axis is the last of SimpleITK's (x, y, z); the thick slice's centre
        # is the middle thin slice's.
        spacing = tuple(geometry.spacing[:-1]) + (geometry.spacing[-1] * factor,)
        direction = np.asarray(geometry.direction, float).reshape(3, 3)
        origin = (np.asarray(geometry.origin, float)
                  + direction[:, 2] * geometry.spacing[-1] * (factor // 2))
        new = dataclasses.replace(geometry, spacing=spacing, origin=tuple(origin.tolist()))
        write_image(str(image_path), thick.astype("float32"), new)
        write_label(str(label_path), middle.astype("uint8"), new)
    return load_dataset(folder, format="folder", class_names=list(data.class_names))


def row_data(row):
    """Return ``(training dataset, held-out dataset, description)`` of a protocol row.

    Args:
        row: ``"a"``, ``"b"``, ``"c"``, ``"d"`` or ``"e"``.

    Returns:
        Two :class:`kerasseg.data.CaseDataset` and a sentence.

    Raises:
        ValueError: for another row name.
    """
    from kerasseg.data import load_dataset
    from kerasseg.data.split import split_cases

    if row == "a":
        data = load_dataset(DATA / "isbi2012_membrane" / "train",
                            class_names=["cell", "membrane"], label_values=[255, 0])
        train = _choose(data.case_ids, 16)
        test = [i for i in data.case_ids if i not in train]
        return data.subset(train), data.subset(test), "ISBI 2012 EM, 16 images / 14 held out"
    if row in ("b", "d", "e"):
        data, train, test = _zoo_split()
        if row == "d":
            return (data.subset(train), data.subset(test),
                    "hippocampus MRI, 166 cases / 42 held out")
        train, test = _choose(train, 20), _choose(test, 40)  # rows b and e: the same cases
        if row == "e":
            data = thick_slices(data, train + test, RUNS / "hippocampus_thick")
        where = f" in {THICK} mm thick slices" if row == "e" else ""
        return (data.subset(train), data.subset(test),
                f"hippocampus MRI{where}, 20 cases / 40 held out")
    if row == "c":
        from kerasseg.sample import hippocampus_path

        data = load_dataset(hippocampus_path())
        split = split_cases(data.case_ids, val_fraction=0.15, test_fraction=0.2, seed=0)
        return (data.subset(split.train + split.val), data.subset(split.test),
                "bundled hippocampus sample, 42 cases / 10 held out (the quickstart's split)")
    raise ValueError(f"`row` must be one of {list(ROWS)}. Received: row={row!r}")


def run_row(row, budget, output, runs=RUNS):
    """Train row ``row`` with the defaults and the budget, score it, store the result."""
    import kerasseg
    from kerasseg.scoring import evaluate_model
    from kerasseg.description import RunSpec
    from kerasseg.files import write_json_atomic

    train, held_out, description = row_data(row)
    run_dir = pathlib.Path(runs) / f"run_{row}"
    model = MODELS.get(row, "unet")
    started = time.perf_counter()
    result = kerasseg.train(train, model, output_dir=run_dir, budget=budget, overwrite=True,
                            verbose=0)
    train_seconds = time.perf_counter() - started
    evaluation = evaluate_model(result.best_model, held_out)
    settings = RunSpec.read(run_dir / "run.json").settings.to_dict()
    record = {
        "row": row, "model": model, "description": description, "budget": budget,
        "train_cases": len(train), "held_out_cases": len(held_out),
        "dice": evaluation["mean_foreground_dice"], "train_seconds": train_seconds,
        "epochs": settings["epochs"], "steps_per_epoch": settings["steps_per_epoch"],
        "measured": settings.get("measured"), "mode": settings["mode"],
        "slice_axis": settings.get("slice_axis"), "model_options": settings["model_options"],
        "patch_size": settings.get("patch_size"), "batch_size": settings["batch_size"],
        "best_val_dice": result.best_val_dice, "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run, "load": os.getloadavg(),
    }
    write_json_atomic(output / f"{row}.json", record)
    print(f"row {row}: held-out Dice {record['dice']:.4f} ({train_seconds:.0f} s)", flush=True)
    return record


def rescore(row, output, runs=RUNS):
    """Score a stored row's best model again on its held-out cases (after a scoring fix)."""
    from kerasseg.files import write_json_atomic
    from kerasseg.scoring import evaluate_model

    path = output / f"{row}.json"
    record = json.loads(path.read_text())
    _, held_out, _ = row_data(row)
    dice = evaluate_model(pathlib.Path(runs) / f"run_{row}" / "best.keras",
                          held_out)["mean_foreground_dice"]
    record.setdefault("earlier_scores", []).append(record["dice"])
    record["dice"] = dice
    write_json_atomic(str(path), record)
    print(f"row {row}: held-out Dice {dice:.4f} (earlier {record['earlier_scores']})")
    return record


def run_precision(epochs, output, runs=RUNS):
    """Row c at ``epochs`` epochs in mixed bfloat16 and in float32: held-out Dice of each."""
    import kerasseg
    from kerasseg.scoring import evaluate_model
    from kerasseg.files import write_json_atomic

    train, held_out, description = row_data("c")
    record = {"description": description, "epochs": epochs}
    for name, mixed in (("bfloat16", True), ("float32", False)):
        started = time.perf_counter()
        result = kerasseg.train(train, "unet", output_dir=pathlib.Path(runs) / f"precision_{name}",
                                epochs=epochs, mixed_precision=mixed, overwrite=True,
                                verbose=0)
        record[name] = {
            "dice": evaluate_model(result.best_model, held_out)["mean_foreground_dice"],
            "train_seconds": time.perf_counter() - started,
            "best_val_dice": result.best_val_dice}
        print(f"precision {name}: held-out Dice {record[name]['dice']:.4f}", flush=True)
    write_json_atomic(str(output / "precision.json"), record)
    return record


def render_precision(output):
    """The precision check's table (Markdown), or an empty string before it has run."""
    path = output / "precision.json"
    if not path.exists():
        return ""
    record = json.loads(path.read_text())
    lines = ["| precision | epochs | trained s | best validation Dice | held-out Dice |",
             "| --------- | -----: | --------: | -------------------: | ------------: |"]
    for name in ("bfloat16", "float32"):
        row = record[name]
        lines.append(f"| {name} | {record['epochs']} | {row['train_seconds']:.0f} | "
                     f"{row['best_val_dice']:.4f} | {row['dice']:.4f} |")
    gap = record["bfloat16"]["dice"] - record["float32"]["dice"]
    return ("\nMixed precision on " + record["description"] + ", planned settings otherwise:"
            "\n\n" + "\n".join(lines) + f"\n\nbfloat16 - float32 held-out Dice: {gap:+.4f}; "
            "speed-up " + f"{record['float32']['train_seconds'] / record['bfloat16']['train_seconds']:.2f}x.\n")


def _tuned(value):
    return "n/a" if value is None else f"{value:.3f}"


def _epochs(record):
    """Epochs trained, with the planned number when the budget stopped the run sooner."""
    run = record.get("epochs_run", record["epochs"])
    return f"{run}" if run == record["epochs"] else f"{run} of {record['epochs']}"


def render(output):
    """Return the defaults table (Markdown) from the stored rows."""
    lines = [
        "| row | data | budget | plan | epochs x steps | trained s | held-out Dice | tuned "
        "Dice | gap | within 0.03 |",
        "| --- | ---- | -----: | ---- | -------------: | --------: | ------------: | --------"
        "-: | --: | ----------- |",
    ]
    notes = []
    for row in ROWS:
        path = output / f"{row}.json"
        if not path.exists():
            lines.append(f"| {row} | not measured yet | | | | | | {_tuned(TUNED[row][0])} | | |")
            continue
        record = json.loads(path.read_text())
        tuned, source = TUNED[row]
        options = record["model_options"]
        patch = "x".join(str(size) for size in record["patch_size"])
        slicing = (f"{record.get('model', 'unet3d')} 3d" if record["mode"] == "3d"
                   else f"{record['mode']} axis {record['slice_axis']}")
        plan = f"{slicing}, depth {options.get('depth')}, {patch} x {record['batch_size']}"
        if tuned is None:
            compared = "n/a | | n/a"
        else:
            gap = record["dice"] - tuned
            compared = f"{tuned:.3f} | {gap:+.3f} | {'yes' if gap >= -0.03 else 'no'}"
        lines.append(
            f"| {row} | {record['description']} | {record['budget'] / 60:g} min | {plan} | "
            f"{_epochs(record)} x {record['steps_per_epoch']} | {record['train_seconds']:.0f} | "
            f"{record['dice']:.4f} | {compared} |")
        note = (f"{row}: tuned = {source}; measured step "
                f"{record['measured']['step_seconds']:.3f} s, load average at the end "
                f"{record['load'][0]:.1f}.")
        if record.get("epochs_run", record["epochs"]) < record["epochs"]:
            note += (f" The run stopped after {record['epochs_run']} of {record['epochs']} "
                     "epochs when its budget was spent: the machine ran slower than measured "
                     "at the start.")
        if record["train_seconds"] > 1.1 * record["budget"]:
            note += (" Training overran the budget: other work shared the CPU, so the step "
                     "time measured at the start was lower than the steps that followed.")
        if record.get("earlier_scores"):
            earlier = ", ".join(f"{v:.4f}" for v in record["earlier_scores"])
            note += f" Scored again after a prediction fix (earlier: {earlier})."
        notes.append(note)
    return ("\n".join(lines) + "\n\n" + "\n".join(f"- {note}" for note in notes) + "\n"
            + render_precision(output))


def write_section(output, results_md=RESULTS_MD):
    """Put the table between the defaults markers of ``results_md`` (appended if absent)."""
    from kerasseg.files import write_text_atomic

    table = render(output)
    text = results_md.read_text() if results_md.exists() else ""
    block = f"{START}\n{table}{END}"
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Defaults protocol (planned settings, time budget)" \
            "\n\n" + __doc__.split("\n\n")[1].replace("\n", " ") + "\n\n" + block + "\n"
    write_text_atomic(str(results_md), text)
    return table


def main(argv=None):
    from kerasseg.plan import parse_duration

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="rows to run, e.g. d,c")
    parser.add_argument("--budget", default="20m", help="time budget of each row")
    parser.add_argument("--output", default=str(OUTPUT), help="folder of the rows' results")
    parser.add_argument("--runs", default=str(RUNS), help="folder of the trained runs")
    parser.add_argument("--render", action="store_true", help="only render the table")
    parser.add_argument("--rescore", action="store_true",
                        help="score the stored rows' best models again, then render")
    parser.add_argument("--precision", action="store_true",
                        help="run the bfloat16 vs float32 check instead of the rows")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the precision check")
    args = parser.parse_args(argv)
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    if args.rescore:
        for row in args.rows.split(","):
            if (output / f"{row}.json").exists():
                rescore(row, output, args.runs)
    elif args.precision:
        run_precision(args.epochs, output, args.runs)
    elif not args.render:
        budget = parse_duration(args.budget)
        for row in args.rows.split(","):
            if (output / f"{row}.json").exists():
                print(f"row {row}: stored, skipped")
                continue
            run_row(row, budget, output, args.runs)
            write_section(output)
    print(write_section(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
